"""Offline conversion of a float32 model to mixed precision (MXNet's ``convert_symbol``,
``convert_model``, ``convert_hybrid_block``): the graph gets amp_cast nodes before the
operators of the lists (and amp_multicast nodes before widest-type operators whose
input types are not known), its outputs are cast back to float32, and with
``cast_optional_params`` the parameters that only low-precision operators read are
stored in the low-precision type instead of being cast at each call."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Set, Tuple

from mxcore.amp import lists as _lists
from mxcore.amp.amp import (Conditional, check_op_lists, conditional_rows, op_names,
                            target_name)
from mxcore.base import MXCoreError

if TYPE_CHECKING:
    from mxcore.gluon import HybridBlock, SymbolBlock
    from mxcore.symbol import Symbol

Entry = Tuple[Any, int]  # (node, output index)

#: ops whose output dtype is their ``dtype`` attribute
_CAST_OPS = frozenset({"amp_cast", "Cast", "cast"})
#: operators of the either-precision lists whose output dtype is not their input's
_NOT_DTYPE_KEEPING = frozenset({"argmax", "argmin", "argmax_channel", "shape_array",
                                "size_array", "one_hot", "amp_multicast", "sort"})


class _Rewriter:
    """One pass over the graph in topological order, mirroring each node and recording
    which mirrored outputs are known to be float32 or low precision."""

    def __init__(self, target: str, lp16: Set[str], fp32: Set[str], widest: Set[str],
                 conditional: Dict[str, Tuple[str, Tuple[str, ...]]], keeping: Set[str],
                 excluded: Set[str], params: Set[str], lp16_params: Set[str]):
        self.target, self.lp16, self.fp32, self.widest = target, lp16, fp32, widest
        self.conditional, self.keeping, self.excluded = conditional, keeping, excluded
        self.params, self.lp16_params = params, lp16_params
        self.mirror: Dict[int, Any] = {}
        self.known: Dict[str, Dict[Tuple[int, int], Entry]] = {"float32": {}, target: {}}

    # helpers --------------------------------------------------------------------------------
    def mirrored(self, entry: Entry) -> Entry:
        return self.mirror[id(entry[0])], entry[1]

    def cast(self, entry: Entry, dtype: str) -> Entry:
        """The mirrored ``entry`` in ``dtype``: known already, or through a (shared)
        amp_cast node."""
        from mxcore.graph.ir import Node
        key = (id(entry[0]), entry[1])
        have = self.known[dtype].get(key)
        if have is not None:
            return have
        src, i = entry
        node = Node("amp_cast", f"{src.name}{_suffix(entry)}_amp_cast_{dtype}",
                    {"dtype": dtype}, [self.mirrored(entry)])
        self.known[dtype][key] = (node, 0)
        return node, 0

    def _aux_inputs(self, node) -> Set[int]:
        from mxcore.graph import opinfo
        row = opinfo.info(node.op, node.attrs)
        if row is None or not row.aux:
            return set()
        names = opinfo.present_inputs(row, node.attrs)
        return {k for k, n in enumerate(names) if n in row.aux}

    def _outputs_are(self, node, new, dtype: str) -> None:
        for i in range(node.nout):
            self.known[dtype][(id(node), i)] = (new, i)

    def _dtype_of(self, entry: Entry) -> Optional[str]:
        key = (id(entry[0]), entry[1])
        for dtype, table in self.known.items():
            if key in table:
                return dtype
        return None

    def _conditional_fp32(self, node) -> bool:
        cond = self.conditional.get(node.op)
        return cond is not None and str(node.attrs.get(cond[0])) in cond[1]

    # the pass ---------------------------------------------------------------------------------
    def visit(self, node) -> None:
        from mxcore.graph.ir import Node
        new = Node(node.op, node.name, dict(node.attrs), (), node.nout)
        self.mirror[id(node)] = new
        if node.is_variable:
            if node.name in self.lp16_params:
                new.attrs["__dtype__"] = self.target
                self.known[self.target][(id(node), 0)] = (new, 0)
            elif node.name in self.params:  # parameters of a float32 model, as MXNet marks
                new.attrs.setdefault("__dtype__", "float32")
            return
        excluded = node.name in self.excluded
        if node.op in self.fp32 or excluded or self._conditional_fp32(node):
            new.inputs = tuple(self.mirrored(e) if e[0].is_variable else self.cast(e, "float32")
                               for e in node.inputs)
            self._outputs_are(node, new, "float32")
        elif node.op in self.lp16:
            aux = self._aux_inputs(node)
            new.inputs = tuple(self.mirrored(e) if k in aux else self.cast(e, self.target)
                               for k, e in enumerate(node.inputs))
            self._outputs_are(node, new, self.target)
        elif node.op in self.widest and node.inputs:
            self._widest(node, new)
        else:
            new.inputs = tuple(self.mirrored(e) for e in node.inputs)
            if node.op in _CAST_OPS:
                dtype = str(node.attrs.get("dtype"))
                if dtype in self.known:
                    self._outputs_are(node, new, dtype)
            elif (node.op in self.keeping or node.op in self.conditional) and node.inputs:
                dtype = self._dtype_of(node.inputs[0])
                if dtype is not None:
                    self._outputs_are(node, new, dtype)

    def _widest(self, node, new) -> None:
        from mxcore.graph.ir import Node
        dtypes = [self._dtype_of(e) for e in node.inputs]
        if None in dtypes:  # decided when the graph runs
            first = node.inputs[0][0]
            cast = Node("amp_multicast", f"{first.name}{_suffix(node.inputs[0])}_amp_multicast",
                        {"num_outputs": len(node.inputs)},
                        [self.mirrored(e) for e in node.inputs], len(node.inputs))
            new.inputs = tuple((cast, k) for k in range(len(node.inputs)))
            return
        dtype = "float32" if "float32" in dtypes else self.target
        new.inputs = tuple(self.cast(e, dtype) for e in node.inputs)
        self._outputs_are(node, new, dtype)

    def output(self, entry: Entry) -> Entry:
        """Graph outputs are float32, as in MXNet."""
        return self.cast(entry, "float32")


def _suffix(entry: Entry) -> str:
    """MXNet's name part for a cast of ``entry``: none for a variable, else ``_`` and the
    output's name (FListOutputNames: ``fc_output``) or index (``add_0``)."""
    from mxcore.graph.op_names import output_names
    src, i = entry
    return "" if src.is_variable else f"_{output_names(src)[i]}"


def _casts_to(node, target: str) -> bool:
    """Whether ``node`` is an amp_cast to ``target`` (a reader that wants the 16-bit
    type: a parameter read only by such casts is stored in it, as MXNet does)."""
    import hal
    if node.op != "amp_cast" or node.attrs.get("dtype") is None:
        return False
    try:
        return hal.dtype_name(node.attrs["dtype"]) == target
    except TypeError:
        return False


def _lp16_only_params(order, params: Set[str], lp16: Set[str], excluded: Set[str],
                      target: str) -> Set[str]:
    """Parameters read by low-precision (not excluded) operators, or casts to the
    target type, only."""
    readers: Dict[str, List[bool]] = {}
    for node in order:
        if node.is_variable:
            continue
        low = (node.op in lp16 or _casts_to(node, target)) and node.name not in excluded
        for src, _ in node.inputs:
            if src.is_variable and src.name in params:
                readers.setdefault(src.name, []).append(low)
    return {name for name, lows in readers.items() if all(lows)}


def _op_lists(where: str, target: str, target_dtype_ops, fp32_ops, conditional_fp32_ops,
              excluded_sym_names):
    defaults = _lists.lists_for(target)
    for label, value in (("conditional_fp32_ops", conditional_fp32_ops),
                         ("excluded_sym_names", excluded_sym_names)):
        if value is not None and not isinstance(value, (list, tuple)):
            raise TypeError(f"{where}: {label} must be a list, got {type(value).__name__}")
    lp16 = op_names(target_dtype_ops, "target_dtype_ops", where) \
        if target_dtype_ops is not None else defaults.lp16
    fp32 = op_names(fp32_ops, "fp32_ops", where) if fp32_ops is not None else defaults.fp32
    conditional = conditional_rows(conditional_fp32_ops, where) \
        if conditional_fp32_ops is not None else defaults.conditional_fp32
    check_op_lists(where, lp16, fp32, conditional)
    known = set(defaults.lp16) | set(defaults.fp32) | set(defaults.lp16_fp32) | {
        c[0] for c in defaults.conditional_fp32}
    illegal = sorted((set(lp16) | set(fp32) | {c[0] for c in conditional}) - known)
    if illegal:
        raise ValueError(f"{where}: {illegal} are in none of AMP's lists for {target} "
                         "(list_lp16_ops, list_fp32_ops, list_lp16_fp32_ops, "
                         "list_conditional_fp32_ops); only those operators can be moved")
    return lp16, fp32, conditional, defaults


def convert_symbol(sym: "Symbol", target_dtype: str = "float16",
                   target_dtype_ops: Optional[Sequence[str]] = None,
                   fp32_ops: Optional[Sequence[str]] = None,
                   conditional_fp32_ops: Optional[Conditional] = None,
                   excluded_sym_names: Optional[Sequence[str]] = None,
                   data_names: Optional[Sequence[str]] = None,
                   cast_optional_params: bool = False) -> "Symbol":
    """A copy of float32 graph ``sym`` with AMP's casts (see the module docstring).
    ``excluded_sym_names`` (node names, e.g. ``dense0_fwd``) stay float32;
    ``data_names`` are the graph's data inputs (default: the variables without a
    ``__dtype__`` attribute); the others are parameters."""
    from mxcore.graph.ir import topological
    from mxcore.symbol import Symbol
    if not isinstance(sym, Symbol):
        raise TypeError(f"amp.convert_symbol: sym must be a Symbol, got {type(sym).__name__}")
    target = target_name(target_dtype, "amp.convert_symbol")
    lp16, fp32, conditional, defaults = _op_lists(
        "amp.convert_symbol", target, target_dtype_ops, fp32_ops, conditional_fp32_ops,
        excluded_sym_names)
    excluded = set(excluded_sym_names or ())
    order = topological(sym._outputs)
    names = {n.name for n in order if n.is_variable}
    if data_names is None:
        data_names = [n.name for n in order if n.is_variable and "__dtype__" not in n.attrs]
    params = names - set(data_names)
    lp16_params = _lp16_only_params(order, params, set(lp16), excluded, target) \
        if cast_optional_params else set()
    keeping = set(defaults.lp16_fp32) - _NOT_DTYPE_KEEPING
    rewriter = _Rewriter(target, set(lp16), set(fp32), set(defaults.widest),
                         {op: (attr, values) for op, attr, values in conditional},
                         keeping, excluded, params, lp16_params)
    for node in order:
        rewriter.visit(node)
    return Symbol([rewriter.output(e) for e in sym._outputs])


def convert_model(sym: "Symbol", arg_params: Dict[str, Any], aux_params: Dict[str, Any],
                  target_dtype: str = "float16",
                  target_dtype_ops: Optional[Sequence[str]] = None,
                  fp32_ops: Optional[Sequence[str]] = None,
                  conditional_fp32_ops: Optional[Conditional] = None,
                  excluded_sym_names: Optional[Sequence[str]] = None,
                  cast_optional_params: bool = False) -> Tuple["Symbol", Dict[str, Any],
                                                                Dict[str, Any]]:
    """``convert_symbol`` on a model's graph, with its parameters: returns
    ``(sym, arg_params, aux_params)``, the parameters whose variables the converted
    graph marks low precision cast to it (new dicts; the given ones are kept)."""
    from mxcore.symbol import Symbol
    if not isinstance(sym, Symbol):
        raise TypeError(f"amp.convert_model: sym must be a Symbol, got {type(sym).__name__}")
    for label, value in (("arg_params", arg_params), ("aux_params", aux_params)):
        if not isinstance(value, dict):
            raise TypeError(f"amp.convert_model: {label} must be a dict of name -> NDArray, "
                            f"got {type(value).__name__}")
    target = target_name(target_dtype, "amp.convert_model")
    data_names = [n for n in sym.list_inputs() if n not in arg_params and n not in aux_params]
    converted = convert_symbol(sym, target, target_dtype_ops, fp32_ops, conditional_fp32_ops,
                               excluded_sym_names, data_names, cast_optional_params)
    low = _lp16_variables(converted)
    return (converted, {k: _as_dtype(v, low.get(k)) for k, v in arg_params.items()},
            {k: _as_dtype(v, low.get(k)) for k, v in aux_params.items()})


def _lp16_variables(sym) -> Dict[str, str]:
    """Variable name -> its ``__dtype__`` where the conversion set a 16-bit one."""
    out = {}
    for name, attrs in sym.attr_dict().items():
        dtype = attrs.get("__dtype__")
        if dtype in _lists.TARGET_DTYPES:
            out[name] = dtype
    return out


def _as_dtype(value, dtype: Optional[str]):
    if dtype is None or value.dtype == dtype:
        return value
    return value.astype(dtype)


def convert_hybrid_block(block: "HybridBlock", target_dtype: str = "float16",
                         target_dtype_ops: Optional[Sequence[str]] = None,
                         fp32_ops: Optional[Sequence[str]] = None,
                         conditional_fp32_ops: Optional[Conditional] = None,
                         excluded_sym_names: Optional[Sequence[str]] = None, ctx=None,
                         cast_optional_params: bool = False) -> "SymbolBlock":
    """A ``SymbolBlock`` running ``block``'s graph converted by ``convert_symbol``, with
    its parameters (cast where the graph stores them in low precision) on ``ctx``
    (default: where the block's parameters are).  The block must have run hybridized
    once, as for ``export``."""
    from mxcore.gluon.block import HybridBlock
    from mxcore.gluon.parameter import assign_loaded
    from mxcore.gluon.symbol_block import SymbolBlock
    from mxcore.graph import trace as _trace
    from mxcore import symbol as _sym
    if not isinstance(block, HybridBlock):
        raise TypeError(f"amp.convert_hybrid_block: block must be a HybridBlock, got "
                        f"{type(block).__name__}")
    target = target_name(target_dtype, "amp.convert_hybrid_block")
    if block._last_inputs is None:
        raise MXCoreError(f"amp.convert_hybrid_block: {block.name} has no graph yet; call "
                          "block.hybridize() and run a forward pass first")
    structure, n = block._last_inputs
    names = ["data"] if n == 1 else [f"data{i}" for i in range(n)]
    inputs = [_sym.var(name) for name in names]
    leaves, _ = _trace.flatten(block(*_trace.unflatten(inputs, structure)))
    graph = leaves[0] if len(leaves) == 1 else _sym.Group(leaves)
    converted = convert_symbol(graph, target, target_dtype_ops, fp32_ops,
                               conditional_fp32_ops, excluded_sym_names, names,
                               cast_optional_params)
    params = {p.name: p for p in block.collect_params().values()}
    low = _lp16_variables(converted)
    result = SymbolBlock(converted, inputs)
    arrays = {}
    for name, param in result._var_params.items():
        source = params.get(name)
        if source is None:
            raise MXCoreError(f"amp.convert_hybrid_block: the graph's variable {name!r} is "
                              f"not a parameter of {block.name}")
        value = _as_dtype(source._reduce(), low.get(name))
        if ctx is None:
            ctx = source.list_ctx()
        param.dtype = value.dtype
        arrays[name] = value.asnumpy()
    assign_loaded(dict(result._var_params), arrays, f"{block.name} (converted)", ctx)
    return result
