"""``mx.sym``: symbolic graphs over the same op functions as ``mx.nd``.

A :class:`Symbol` is a list of outputs of graph nodes (``mxcore.graph.ir``).  Calling
``mx.sym.<op>`` on symbols records a node naming the op; nothing runs until the graph
is bound to a device (``bind``/``simple_bind`` give an :class:`Executor`) or evaluated
(``eval``).  Shapes and dtypes are inferred by running the same op functions on meta
arrays (``mxcore.graph.infer``), and ``tojson``/``load`` read and write MXNet 1.x
``-symbol.json`` files.
"""
from __future__ import annotations

import inspect
from numbers import Number
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from mxcore.attribute import AttrScope
from mxcore.base import MXCoreError, NotImplementedForSymbol
from mxcore.graph import functions, infer as _infer, ir, op_names, opinfo
from mxcore.graph.ir import Node, Output
from mxcore.name import NameManager


class Symbol:
    """Outputs of a graph (MXNet 1.x's Symbol)."""

    __slots__ = ("_outputs", "__weakref__")
    __array_ufunc__ = None  # numpy scalars on the left come back to Symbol's operators

    def __init__(self, outputs: Sequence[Output]):
        self._outputs: Tuple[Output, ...] = tuple(outputs)

    # structure -----------------------------------------------------------------------------
    @property
    def name(self) -> Optional[str]:
        return self._outputs[0][0].name if len(self._outputs) == 1 else None

    def _order(self) -> List[Node]:
        return ir.topological(self._outputs)

    def _aux_ids(self, order=None) -> set:
        aux = set()
        for node in order if order is not None else self._order():
            row = None if node.is_variable else opinfo.info(node.op, node.attrs)
            if row is None or not row.aux:
                continue
            for name, (src, _) in zip(opinfo.present_inputs(row, node.attrs), node.inputs):
                if name in row.aux and src.is_variable:
                    aux.add(id(src))
        return aux

    def list_arguments(self) -> List[str]:
        order = self._order()
        aux = self._aux_ids(order)
        return [n.name for n in order if n.is_variable and id(n) not in aux]

    def list_auxiliary_states(self) -> List[str]:
        order = self._order()
        aux = self._aux_ids(order)
        return [n.name for n in order if n.is_variable and id(n) in aux]

    def list_inputs(self) -> List[str]:
        return [n.name for n in self._order() if n.is_variable]

    def list_outputs(self) -> List[str]:
        return [_output_name(node, i) for node, i in self._outputs]

    def get_internals(self) -> "Symbol":
        """Every output of every node, in topological order."""
        return Symbol([(n, i) for n in self._order() for i in range(n.nout)])

    def get_children(self) -> Optional["Symbol"]:
        nodes, seen = [], set()
        for node, _ in self._outputs:  # outputs of one node share its inputs
            if id(node) not in seen:
                seen.add(id(node))
                nodes.append(node)
        inputs = [src for node in nodes for src in node.inputs]
        return Symbol(inputs) if inputs else None

    def _gen_atomic_symbol(self) -> "Symbol":
        """The symbol's op alone: one node of the same op and attributes, no inputs
        and no name, with all its outputs (MXNet's ``_gen_atomic_symbol``)."""
        nodes = {id(n): n for n, _ in self._outputs}
        node = next(iter(nodes.values()))
        if len(nodes) != 1 or node.is_variable:
            raise MXCoreError("_gen_atomic_symbol needs the outputs of one operator node, "
                              f"got {self.list_outputs()}")
        atom = Node(node.op, "", node.attrs, (), node.nout)
        return Symbol([(atom, i) for i in range(atom.nout)])

    def __len__(self) -> int:
        return len(self._outputs)

    def __iter__(self):
        return (Symbol([o]) for o in self._outputs)

    def __getitem__(self, index: Union[int, str, slice]) -> "Symbol":
        if isinstance(index, str):
            names = self.list_outputs()
            matches = [i for i, n in enumerate(names) if n == index]
            if not matches:
                raise ValueError(f"Symbol has no output named {index!r} (outputs: {names})")
            if len(matches) > 1:
                raise ValueError(f"Symbol has several outputs named {index!r}")
            index = matches[0]
        if isinstance(index, slice):
            return Symbol(self._outputs[index])
        if not -len(self._outputs) <= index < len(self._outputs):
            raise IndexError(f"Symbol output index {index} out of range "
                             f"({len(self._outputs)} outputs)")
        return Symbol([self._outputs[index]])

    def __repr__(self) -> str:
        if len(self._outputs) == 1:
            return f"<Symbol {self.name}>"
        return f"<Symbol group [{', '.join(self.list_outputs())}]>"

    def __copy__(self) -> "Symbol":
        return Symbol(self._outputs)

    def __deepcopy__(self, memo) -> "Symbol":
        return load_json(self.tojson(remove_amp_cast=False))

    def __bool__(self) -> bool:
        raise NotImplementedForSymbol(self.__bool__, "bool")

    def __reduce__(self):  # pickling keeps the graph's JSON: loading it runs no code
        return load_json, (self.tojson(remove_amp_cast=False),)

    __hash__ = object.__hash__

    # attributes ------------------------------------------------------------------------------
    def _node(self) -> Node:
        if len(self._outputs) != 1:
            raise MXCoreError("attributes belong to a single symbol, not a group")
        return self._outputs[0][0]

    def attr(self, key: str) -> Optional[str]:
        """An attribute as a string; ``attr('lr_mult')`` also finds ``__lr_mult__``."""
        attrs = self._node().attrs
        value = attrs.get(key)
        if value is None and not _dunder(key):
            value = attrs.get(f"__{key}__")
        return None if value is None else ir.attr_to_str(value)

    def list_attr(self, recursive: bool = False) -> Dict[str, str]:
        if recursive:
            raise MXCoreError("list_attr(recursive=True) was removed in MXNet; use attr_dict()")
        return {k: ir.attr_to_str(v) for k, v in self._node().attrs.items()}

    def attr_dict(self) -> Dict[str, Dict[str, str]]:
        return {n.name: {k: ir.attr_to_str(v) for k, v in n.attrs.items()}
                for n in self._order() if n.attrs}

    def _set_attr(self, **kwargs: str) -> None:
        for key, value in kwargs.items():
            if not isinstance(value, str):
                raise ValueError(f"attribute {key!r} must be a string, got {value!r}")
        _add_attrs(self._node().attrs, kwargs)

    # composition -------------------------------------------------------------------------------
    def __call__(self, *args: "Symbol", **kwargs: "Symbol") -> "Symbol":
        """A copy of the graph with variables replaced: positionally in
        ``list_arguments`` order, or by name (``net2(data=net1)``)."""
        out = Symbol(self._outputs)
        out._compose(*args, **kwargs)
        return out

    def _compose(self, *args, name: Optional[str] = None, **kwargs) -> None:
        if args and kwargs:
            raise TypeError("compose takes symbols positionally or by name, not both")
        if args:
            kwargs = dict(zip(self.list_arguments(), args))
        for key, value in kwargs.items():
            if not isinstance(value, Symbol) or len(value) != 1:
                raise TypeError(f"compose: {key!r} must be a single-output Symbol")
        repl = {k: v._outputs[0] for k, v in kwargs.items()}
        memo: Dict[int, Node] = {}
        new_out = []
        for node in self._order():
            if node.is_variable:
                continue
            inputs = []
            for src, i in node.inputs:
                if src.is_variable and src.name in repl:
                    inputs.append(repl[src.name])
                else:
                    inputs.append((memo.get(id(src), src), i))
            memo[id(node)] = Node(node.op, node.name, node.attrs, inputs, node.nout)
        for node, i in self._outputs:
            if node.is_variable and node.name in repl:
                new_out.append(repl[node.name])
            else:
                new_out.append((memo.get(id(node), node), i))
        self._outputs = tuple(new_out)

    # inference ---------------------------------------------------------------------------------
    def _named(self, args, kwargs, what) -> Dict[str, Any]:
        if args and kwargs:
            raise TypeError(f"{what} takes arguments positionally or by name, not both")
        names = self.list_arguments()
        if args:
            if len(args) > len(names):
                raise TypeError(f"{what}: {len(args)} values for {len(names)} arguments")
            return {n: a for n, a in zip(names, args) if a is not None}
        known = set(self.list_inputs())
        unknown = [k for k in kwargs if k not in known]
        if unknown:
            raise MXCoreError(f"{what}: {unknown} are not inputs of the symbol "
                              f"(its inputs: {sorted(known)})")
        return {k: v for k, v in kwargs.items() if v is not None}

    def _infer(self, shapes, dtypes):
        return _infer.infer(self._outputs, shapes, dtypes)

    @staticmethod
    def _shape_kwargs(kwargs):
        """As MXNet, keywords whose value is not a shape (a tuple or list) are ignored:
        ``simple_bind(ctx, data=(2, 3), axis=0)``."""
        return {k: v for k, v in kwargs.items() if isinstance(v, (tuple, list)) or v is None}

    def infer_shape_partial(self, *args, **kwargs):
        """(argument shapes, output shapes, auxiliary shapes); unknown shapes are ()."""
        kwargs = self._shape_kwargs(kwargs)
        shapes = {k: tuple(v) for k, v in self._named(args, kwargs, "infer_shape").items()}
        out_shape, _ = self._infer(shapes, {})
        return self._collect(out_shape, lambda s: () if s is None else s)

    def infer_shape(self, *args, **kwargs):
        """(argument shapes, output shapes, auxiliary shapes), or (None, None, None) when
        the given shapes do not decide every one (``infer_shape_partial`` keeps them)."""
        kwargs = self._shape_kwargs(kwargs)
        shapes = {k: tuple(v) for k, v in self._named(args, kwargs, "infer_shape").items()}
        out_shape, _ = self._infer(shapes, {})
        result = self._collect(out_shape, lambda s: s)
        if any(s is None or _infer.is_partial(s) for part in result for s in part):
            return None, None, None
        return result

    def infer_type_partial(self, *args, **kwargs):
        """(argument dtypes, output dtypes, auxiliary dtypes) as numpy types, None where
        unknown: untyped arguments take the dtype of the data they meet."""
        given = self._named(args, kwargs, "infer_type")
        dtypes = {k: _np_name(v) for k, v in given.items()}
        _, out_dtype = self._infer({}, dtypes)
        return self._collect(out_dtype, lambda d: None if d is None else
                             np.dtype(_np_name(d)).type)

    def infer_type(self, *args, **kwargs):
        """Like ``infer_type_partial``, or (None, None, None) when a dtype is unknown."""
        result = self.infer_type_partial(*args, **kwargs)
        if any(t is None for part in result for t in part):
            return None, None, None
        return result

    def _collect(self, table, conv):
        order = self._order()
        aux = self._aux_ids(order)
        args = [conv(table.get((id(n), 0))) for n in order if n.is_variable and id(n) not in aux]
        auxs = [conv(table.get((id(n), 0))) for n in order if n.is_variable and id(n) in aux]
        outs = [conv(table.get((id(n), i))) for n, i in self._outputs]
        return args, outs, auxs

    # serialisation -------------------------------------------------------------------------
    def tojson(self, remove_amp_cast: bool = True) -> str:
        """MXNet 1.x symbol JSON; AMP's cast nodes are left out unless
        ``remove_amp_cast=False`` (as MXNet writes graphs)."""
        from mxcore.util import is_np_shape
        heads = ir.remove_amp_cast(self._outputs) if remove_amp_cast else self._outputs
        text = ir.to_json(heads)
        if not is_np_shape():
            return text
        import json  # MXNet marks graphs written under NumPy shape semantics
        doc = json.loads(text)
        doc["attrs"] = {"is_np_shape": ["int", 1], **doc["attrs"]}
        return json.dumps(doc, indent=2)

    def save(self, fname: str, remove_amp_cast: bool = True) -> None:
        """Write the graph as MXNet 1.x symbol JSON (atomically), without AMP's cast
        nodes unless ``remove_amp_cast=False``."""
        from mxcore.serialization import atomic_path
        with atomic_path(fname) as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.write(self.tojson(remove_amp_cast=remove_amp_cast))

    def debug_str(self) -> str:
        """The graph as MXNet prints it: outputs, then each variable and op node with
        its inputs and attributes."""
        lines = ["Symbol Outputs:"]
        lines.extend(f"\toutput[{k}]={node.name}({i})"
                     for k, (node, i) in enumerate(self._outputs))
        for node in self._order():
            if node.is_variable:
                lines.append(f"Variable:{node.name}")
                continue
            lines.append("-" * 20)
            lines.append(f"Op:{node.op}, Name={node.name}")
            lines.append("Inputs:")
            for k, (src, i) in enumerate(node.inputs):
                version = " version=0" if src.is_variable else ""
                lines.append(f"\targ[{k}]={src.name}({i}){version}")
            if node.attrs:
                lines.append("Attrs:")
                lines.extend(f"\t{k}={ir.attr_to_str(v)}" for k, v in node.attrs.items())
        return "\n".join(lines) + "\n"

    # binding ------------------------------------------------------------------------------------
    def bind(self, ctx, args, args_grad=None, grad_req="write", aux_states=None,
             group2ctx=None, shared_exec=None):
        from mxcore.graph.executor import Executor
        return Executor.bind(self, ctx, args, args_grad, grad_req, aux_states)

    def simple_bind(self, ctx, grad_req="write", type_dict=None, stype_dict=None,
                    group2ctx=None, shared_arg_names=None, shared_exec=None,
                    shared_buffer=None, **kwargs):
        from mxcore.graph.executor import Executor
        return Executor.simple_bind(self, ctx, grad_req, type_dict or {}, kwargs)

    def _bind(self, *args, **kwargs):
        return self.bind(*args, **kwargs)

    def eval(self, ctx=None, **kwargs) -> List[Any]:
        """Run the graph once on the given arrays; returns the outputs."""
        from mxcore.device import default_device
        ctx = ctx if ctx is not None else default_device()
        exe = self.bind(ctx, kwargs, grad_req="null")
        return exe.forward()

    # arithmetic --------------------------------------------------------------------------------
    # as in MXNet, two symbols combine elementwise (same shapes, which lets inference run
    # both ways: a + b with b unknown gives b a's shape); mx.sym.broadcast_* broadcast
    def _binary(self, other, op: str, scalar_op: str):
        if isinstance(other, Symbol):
            return _create(op, (self, other), {}, None, None, _HINTS.get(op, op))
        if isinstance(other, (Number, np.generic)):
            return _create(scalar_op, (self,), {"scalar": _py(other)}, None, None,
                           _HINTS.get(scalar_op, scalar_op))
        return NotImplemented

    def __add__(self, o):
        return self._binary(o, "elemwise_add", "_plus_scalar")

    __radd__ = __add__

    def __sub__(self, o):
        return self._binary(o, "elemwise_sub", "_minus_scalar")

    def __rsub__(self, o):
        return self._binary(o, "elemwise_sub", "_rminus_scalar")

    def __mul__(self, o):
        return self._binary(o, "elemwise_mul", "_mul_scalar")

    __rmul__ = __mul__

    def __truediv__(self, o):
        return self._binary(o, "elemwise_div", "_div_scalar")

    def __rtruediv__(self, o):
        return self._binary(o, "elemwise_div", "_rdiv_scalar")

    __div__, __rdiv__ = __truediv__, __rtruediv__

    def __mod__(self, o):
        return self._binary(o, "_mod", "_mod_scalar")

    def __rmod__(self, o):
        return self._binary(o, "_mod", "_rmod_scalar")

    def __pow__(self, o):
        return self._binary(o, "_power", "_power_scalar")

    def __rpow__(self, o):
        return self._binary(o, "_power", "_rpower_scalar")

    def __neg__(self):  # MXNet's: a product with -1
        return self._binary(-1.0, "elemwise_mul", "_mul_scalar")

    def __abs__(self):
        return _create("abs", (self,), {}, None, None)

    def __eq__(self, o):  # noqa: D105 - elementwise, as MXNet's Symbol
        return self._binary(o, "_equal", "_equal_scalar")

    def __ne__(self, o):
        return self._binary(o, "_not_equal", "_not_equal_scalar")

    def __gt__(self, o):
        return self._binary(o, "_greater", "_greater_scalar")

    def __ge__(self, o):
        return self._binary(o, "_greater_equal", "_greater_equal_scalar")

    def __lt__(self, o):
        return self._binary(o, "_lesser", "_lesser_scalar")

    def __le__(self, o):
        return self._binary(o, "_lesser_equal", "_lesser_equal_scalar")

    # reflected comparisons: Python swaps the operands
    # fluent methods (x.reshape(...), x.sum(axis=1)...) ----------------------------------------
    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            functions.op_function(name)
        except functions.UnknownGraphOpError:
            raise AttributeError(f"'Symbol' object has no attribute {name!r}") from None
        make = _maker(name)

        def fluent(*args, **kwargs):
            return make(self, *args, **kwargs)
        fluent.__name__ = name
        return fluent

    def astype(self, dtype) -> "Symbol":
        return _create("cast", (self,), {"dtype": np.dtype(_np_name(dtype)).name}, None, None)


def _dunder(key: str) -> bool:
    return key.startswith("__") and key.endswith("__")


def _add_attrs(attrs: Dict[str, Any], extra: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """User attributes as MXNet keeps them: ``k`` also as ``__k__`` (so both spellings
    read back); ``__k__`` as given."""
    for key, value in (extra or {}).items():
        value = value if isinstance(value, str) else str(value)
        attrs[key] = value
        if not _dunder(key):
            attrs[f"__{key}__"] = value
    return attrs


def _np_name(d) -> str:
    import hal
    return hal.dtype_name(d) if not isinstance(d, str) else d


def _py(v):
    return v.item() if isinstance(v, np.generic) else v


def _output_name(node: Node, i: int) -> str:
    if node.is_variable:
        return node.name
    row = opinfo.info(node.op, node.attrs) if node.op in opinfo.BY_ATTRS else None
    if row is not None and row.outputs is not None:
        return f"{node.name}_{row.outputs[i]}"
    return op_names.list_output_name(node, i)  # MXNet's (bn1_mean), else output<i>


# making nodes ---------------------------------------------------------------------------------
_SIGS: Dict[str, Tuple[List[str], bool, frozenset]] = {}


def _signature(op: str) -> Tuple[List[str], bool]:
    """(names of the op function's positional parameters, whether it takes *args)."""
    return _full_signature(op)[:2]


def _full_signature(op: str):
    """``_signature`` plus the names of parameters whose default is not None (an
    explicit None for them is a value: ``sort(axis=None)`` sorts the flattened array)."""
    sig = _SIGS.get(op)
    if sig is None:
        fn = functions.op_function(op)
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            params = ()
        names = [p.name for p in params
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        variadic = any(p.kind == p.VAR_POSITIONAL for p in params)
        keep_none = frozenset(p.name for p in params
                              if p.default is not p.empty and p.default is not None)
        sig = _SIGS[op] = (names, variadic, keep_none)
    return sig


def _is_sym_list(v) -> bool:
    return isinstance(v, (list, tuple)) and v and all(isinstance(s, Symbol) for s in v)


def _single(s: Symbol, op: str, what: str) -> Output:
    if len(s._outputs) != 1:
        raise MXCoreError(f"{op}: input {what!r} is a group of {len(s._outputs)} symbols; "
                          "give one output (sym[i])")
    return s._outputs[0]


def _create(op: str, args: Sequence[Any], kwargs: Dict[str, Any], name: Optional[str],
            attr: Optional[Dict[str, str]], hint: Optional[str] = None) -> Symbol:
    names, variadic, keep_none = _full_signature(op)
    by_name: Dict[str, Output] = {}
    extra: List[Output] = []
    attrs: Dict[str, Any] = {}
    for k, value in enumerate(args):
        if variadic and (isinstance(value, Symbol) or _is_sym_list(value)):
            for s in (value if _is_sym_list(value) else [value]):
                extra.append(_single(s, op, f"#{len(extra)}"))
        elif k < len(names):
            if isinstance(value, Symbol):
                by_name[names[k]] = _single(value, op, names[k])
            elif _is_sym_list(value):  # an op taking a list of arrays
                extra.extend(_single(s, op, names[k]) for s in value)
            elif value is not None or names[k] in keep_none:
                attrs[names[k]] = value
        else:
            raise TypeError(f"mx.sym.{op}: too many positional arguments")
    accepted = functions.accepted_names(functions.op_function(op))
    user: Dict[str, Any] = _add_attrs({}, AttrScope.current.get(attr))
    for key, value in kwargs.items():
        if isinstance(value, Symbol):
            by_name[key] = _single(value, op, key)
        elif accepted is not None and key not in accepted and not _dunder(key):
            _add_attrs(user, {key: value})  # not a parameter of the op: a plain attribute
        elif value is not None or key in keep_none:
            attrs[key] = _py(value) if isinstance(value, np.generic) else value
    hint = hint or op.lower().lstrip("_")
    node_name = NameManager.current.get(name, hint)
    row = opinfo.info(op, attrs)
    inputs: List[Output] = []
    if row is not None:
        present = opinfo.present_inputs(row, attrs)
        for input_name in present:
            if input_name in by_name:
                inputs.append(by_name.pop(input_name))
            elif extra:  # positional inputs of a variadic function (mx.sym.Custom)
                inputs.append(extra.pop(0))
            else:
                inputs.append(_auto_variable(node_name, input_name, row, user))
        if by_name:
            raise MXCoreError(f"mx.sym.{op}: {sorted(by_name)} are not inputs of {op} with "
                              f"these attributes (its inputs: {list(present)})")
    else:
        for input_name in names:
            if input_name in by_name:
                inputs.append(by_name.pop(input_name))
            elif input_name == "data" and not extra and input_name not in attrs:
                # MXNet makes a variable for a data input the call leaves out:
                # mx.sym.softmax(axis=1) takes `softmax0_data`
                inputs.append((Node(None, f"{node_name}_data", dict(user)), 0))
        if by_name:  # keyword inputs the signature does not name (variadic ops)
            inputs.extend(by_name.values())
    inputs.extend(extra)
    node_attrs = dict(user)
    node_attrs.update(attrs)
    if op in _NUM_ARGS and "num_args" not in node_attrs:
        node_attrs["num_args"] = len(inputs)
    node = Node(op, node_name, node_attrs, inputs, opinfo.num_outputs(op, node_attrs))
    return Symbol([(node, i) for i in range(node.nout)])


#: node-name hints of the ops Symbol arithmetic records, as MXNet names them (other
#: arithmetic and comparison ops: their own name)
_HINTS = {"elemwise_add": "_plus", "elemwise_sub": "_minus", "elemwise_mul": "_mul",
          "elemwise_div": "_div", **{f"_{op}_scalar": f"_{op}scalar" for op in (
              "plus", "minus", "rminus", "mul", "div", "rdiv", "mod", "rmod", "power",
              "rpower")}}

#: variadic ops whose MXNet form records the number of inputs
_NUM_ARGS = {"Concat", "concat", "add_n", "ElementWiseSum", "stack"}


def _auto_variable(node_name: str, input_name: str, row, user: Dict[str, Any]) -> Output:
    """The variable MXNet makes for an input a symbol call leaves out; it carries the
    call's attributes (``attr=`` and the AttrScope's)."""
    attrs = dict(user)
    if row.init and input_name in row.init:
        attrs["__init__"] = row.init[input_name]
    return (Node(None, f"{node_name}_{input_name}", attrs), 0)


_MAKERS: Dict[str, Any] = {}


def _maker(op: str):
    """``mx.sym.<op>``: a function that records a node of ``op``."""
    make = _MAKERS.get(op)
    if make is None:
        fn = functions.op_function(op)

        def make(*args, name=None, attr=None, out=None, **kwargs):
            if out is not None:
                raise MXCoreError(f"mx.sym.{op}: symbols take no out= array")
            return _create(op, args, kwargs, name, attr)
        make.__name__ = op
        make.__doc__ = getattr(fn, "__doc__", None)
        _MAKERS[op] = make
    return make


# constructors -----------------------------------------------------------------------------------
def var(name: str, attr: Optional[Dict[str, str]] = None, shape=None, lr_mult=None,
        wd_mult=None, dtype=None, init=None, stype=None, profiler_scope=None,
        **kwargs) -> Symbol:
    """A named input of the graph (an argument or auxiliary state once used)."""
    if not isinstance(name, str):
        raise TypeError("Variable name must be a string")
    attrs: Dict[str, Any] = _add_attrs({}, AttrScope.current.get(attr))
    if shape is not None:
        attrs["__shape__"] = tuple(int(s) for s in shape)
    if lr_mult is not None:
        attrs["__lr_mult__"] = str(lr_mult)
    if wd_mult is not None:
        attrs["__wd_mult__"] = str(wd_mult)
    if dtype is not None:
        attrs["__dtype__"] = _np_name(dtype) if not isinstance(dtype, str) else dtype
    if init is not None:
        attrs["__init__"] = init if isinstance(init, str) else init.dumps()
    if stype is not None and stype != "default":
        raise MXCoreError(f"Variable {name!r}: storage type {stype!r} is not provided "
                          "(mxcore arrays are dense)")
    for key, value in kwargs.items():
        if not (key.startswith("__") and key.endswith("__")):
            raise ValueError(f"Variable {name!r}: extra attribute {key!r} must look like "
                             "__key__")
        attrs[key] = str(value)
    return Symbol([(Node(None, name, attrs), 0)])


Variable = var


def Group(symbols: Sequence[Symbol]) -> Symbol:
    """One symbol whose outputs are those of ``symbols``, in order."""
    symbols = list(symbols)  # a list, or a multi-output Symbol (its outputs)
    if not symbols or any(not isinstance(s, Symbol) for s in symbols):
        raise TypeError("Group expects a non-empty list of Symbols")
    return Symbol([o for s in symbols for o in s._outputs])


def load_json(json_str: str) -> Symbol:
    """A Symbol from MXNet 1.x (or mxcore) symbol JSON text."""
    if not isinstance(json_str, str):
        raise TypeError("load_json expects a JSON string")
    return Symbol(ir.from_json(json_str, "<json>", opinfo.num_outputs))


fromjson = load_json


def load(fname: str) -> Symbol:
    """A Symbol from an MXNet 1.x ``-symbol.json`` file."""
    try:
        with open(fname, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ir.GraphFormatError(f"{fname}: cannot read the symbol file ({exc.strerror})") \
            from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ir.GraphFormatError(f"{fname}: not a symbol file (not UTF-8 JSON text)") from None
    return Symbol(ir.from_json(text, fname, opinfo.num_outputs))


def _shape_tuple(shape) -> Tuple[int, ...]:
    """A shape given as an int or a sequence."""
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)


def zeros(shape, dtype="float32", **kwargs) -> Symbol:
    return _create("_zeros", (), {"shape": _shape_tuple(shape), "dtype": _np_name(dtype),
                                  **kwargs}, kwargs.pop("name", None), None)


def ones(shape, dtype="float32", **kwargs) -> Symbol:
    return _create("_ones", (), {"shape": _shape_tuple(shape), "dtype": _np_name(dtype),
                                 **kwargs}, kwargs.pop("name", None), None)


def full(shape, val, dtype="float32", **kwargs) -> Symbol:
    return _create("_full", (), {"shape": _shape_tuple(shape), "value": float(val),
                                 "dtype": _np_name(dtype), **kwargs},
                   kwargs.pop("name", None), None)


def pow(base, exp):  # noqa: A001 - MXNet's name
    if isinstance(base, Symbol):
        return base ** exp
    if isinstance(exp, Symbol):
        return exp.__rpow__(base)
    return base ** exp


power = pow


def maximum(left, right):
    return _minmax(left, right, "broadcast_maximum", "_maximum_scalar", max)


def minimum(left, right):
    return _minmax(left, right, "broadcast_minimum", "_minimum_scalar", min)


def _minmax(left, right, op, scalar_op, py):
    if isinstance(left, Symbol) and isinstance(right, Symbol):
        return _create(op, (left, right), {}, None, None)
    if isinstance(left, Symbol):
        return _create(scalar_op, (left,), {"scalar": _py(right)}, None, None)
    if isinstance(right, Symbol):
        return _create(scalar_op, (right,), {"scalar": _py(left)}, None, None)
    return py(left, right)


def op_maker(name: str):
    """``mx.sym.<name>`` for any op function ``mx.nd`` has (module ``__getattr__``)."""
    functions.op_function(name)  # raises for unknown names
    return _maker(name)


