"""How ``amp.init`` reaches every operator call: it replaces the listed functions of the
``mx.nd`` and ``mx.sym`` namespaces (and their ``contrib``/``linalg``/``random``/
``image`` sub-namespaces) and the arithmetic operators of NDArray and Symbol with
wrappers that cast the inputs first, as MXNet 1.x's AMP does.

Gluon layers call ``F.FullyConnected(...)`` with ``F`` the ``mxcore.ndarray`` module
(eager calls, and hybridize's tracing on meta arrays) or the ``mxcore.symbol`` module
(graphs, ``export``), looking the function up at each call, so the wrappers reach all
three.  Nothing is wrapped while AMP is off: the dispatch path is untouched.

Graph nodes name their ops, and the executor runs them through
``mxcore.graph.functions``; that table keeps the original functions (pinned before any
wrapping), so a graph runs exactly the casts written in it.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import hal

from mxcore.amp.lists import AmpLists
# mxcore's own casts, taken before anything is wrapped (a user's list may name them)
from mxcore.ndarray import amp_cast as _amp_cast, amp_multicast as _amp_multicast

#: MXNet's name prefixes of operators that mx.nd / mx.sym hold in a sub-namespace
_SUBNAMESPACES: Tuple[Tuple[str, str], ...] = (
    ("_contrib_", "contrib"), ("_linalg_", "linalg"), ("_random_", "random"),
    ("_sample_", "random"), ("_image_", "image"))

#: the float types AMP casts between (float64 and integer data pass through)
_AMP_FLOATS = frozenset({"float16", "bfloat16", "float32"})

#: NDArray method -> (MXNet op it runs with an array operand, with a number)
NDARRAY_OPERATORS: Dict[str, Tuple[Optional[str], str]] = {
    "__add__": ("broadcast_add", "_plus_scalar"), "__radd__": ("broadcast_add", "_plus_scalar"),
    "__sub__": ("broadcast_sub", "_minus_scalar"), "__rsub__": (None, "_rminus_scalar"),
    "__mul__": ("broadcast_mul", "_mul_scalar"), "__rmul__": ("broadcast_mul", "_mul_scalar"),
    "__truediv__": ("broadcast_div", "_div_scalar"), "__rtruediv__": (None, "_rdiv_scalar"),
    "__mod__": ("broadcast_mod", "_mod_scalar"), "__rmod__": (None, "_rmod_scalar"),
    "__pow__": ("broadcast_power", "_power_scalar"), "__rpow__": (None, "_rpower_scalar"),
    "__eq__": ("broadcast_equal", "_equal_scalar"),
    "__ne__": ("broadcast_not_equal", "_not_equal_scalar"),
    "__gt__": ("broadcast_greater", "_greater_scalar"),
    "__ge__": ("broadcast_greater_equal", "_greater_equal_scalar"),
    "__lt__": ("broadcast_lesser", "_lesser_scalar"),
    "__le__": ("broadcast_lesser_equal", "_lesser_equal_scalar"),
}

#: ops whose kernels may apply an activation (``act_type``) to their result in the same
#: pass: with an activation AMP runs in float32 (softrelu) they run without it, and the
#: activation runs after them, in float32, as a separate Activation would
_FUSED_ACTIVATION = frozenset({"FullyConnected", "fully_connected"})

log = logging.getLogger("mxcore.amp")


class Patches:
    """Attributes replaced on modules and classes, restored in reverse order."""

    def __init__(self) -> None:
        self._saved: List[Tuple[Any, str, bool, Any]] = []
        self._done = set()

    def replace(self, owner: Any, name: str, value: Any) -> None:
        """Set ``owner.name``; the first replacement of a name saves what it was."""
        key = (id(owner), name)
        if key not in self._done:
            self._done.add(key)
            own = vars(owner)
            self._saved.append((owner, name, name in own, own.get(name)))
        setattr(owner, name, value)

    def restore(self) -> None:
        for owner, name, had, value in reversed(self._saved):
            if had:
                setattr(owner, name, value)
            else:  # the name came from the module's __getattr__ (mx.sym.FullyConnected)
                delattr(owner, name)
        self._saved.clear()
        self._done.clear()


# casting single values -----------------------------------------------------------------------
def _nd():
    from mxcore import ndarray
    return ndarray


def _sym():
    from mxcore import symbol
    return symbol


def cast_array(x: Any, dtype: str) -> Any:
    """``x`` cast to ``dtype`` if it is a float32/float16/bfloat16 NDArray of another
    type (lists of NDArrays element by element); anything else as it is."""
    NDArray = _nd().NDArray
    if isinstance(x, NDArray):
        name = hal.dtype_name(x.dtype)
        return _amp_cast(x, dtype=dtype) if name in _AMP_FLOATS and name != dtype else x
    if isinstance(x, (list, tuple)) and x and all(isinstance(v, NDArray) for v in x):
        return type(x)(cast_array(v, dtype) for v in x)
    return x


def multicast_arrays(values: Sequence[Any]) -> List[Any]:
    """The NDArrays among ``values`` cast to their widest float type (amp_multicast);
    other values as they are."""
    NDArray = _nd().NDArray
    where = [i for i, v in enumerate(values) if isinstance(v, NDArray)]
    out = list(values)
    if len(where) > 1:
        cast = _amp_multicast(*[values[i] for i in where], num_outputs=len(where))
        for i, c in zip(where, cast):
            out[i] = c
    return out


def _cast_symbol(s, dtype: str):
    """An amp_cast node after ``s`` (none when ``s`` is already such a cast)."""
    node, _ = s._outputs[0]
    if node.op == "amp_cast" and str(node.attrs.get("dtype")) == dtype:
        return s
    return _original_symbol("amp_cast")(s, dtype=dtype)


_ORIGINAL_SYMBOL: Dict[str, Callable] = {}


def _original_symbol(name: str) -> Callable:
    """``mx.sym.<name>`` as mxcore defines it, whatever AMP wrapped."""
    fn = _ORIGINAL_SYMBOL.get(name)
    if fn is None:
        from mxcore.symbol.symbol import op_maker
        fn = _ORIGINAL_SYMBOL[name] = op_maker(name)
    return fn


def multicast_symbols(values: Sequence[Any]) -> List[Any]:
    Symbol = _sym().Symbol
    where = [i for i, v in enumerate(values) if isinstance(v, Symbol)]
    out = list(values)
    if len(where) > 1:
        cast = _original_symbol("amp_multicast")(*[values[i] for i in where],
                                                 num_outputs=len(where))
        for k, i in enumerate(where):
            out[i] = cast[k]
    return out


# wrappers of namespace functions -------------------------------------------------------------
def _condition_holds(cond: Optional[Tuple[str, Tuple[str, ...]]], kwargs: Dict) -> bool:
    return cond is None or (cond[0] in kwargs and str(kwargs[cond[0]]) in cond[1])


def _named_like(wrapper: Callable, f: Callable) -> Callable:
    for attr in ("__name__", "__qualname__", "__doc__", "__module__"):
        try:
            setattr(wrapper, attr, getattr(f, attr))
        except (AttributeError, TypeError):
            pass
    wrapper.__wrapped__ = f
    return wrapper


def nd_cast(f: Callable, dtype: str, cond=None,
            split_activation: Optional[Callable[[str], bool]] = None) -> Callable:
    """``f`` of mx.nd with its float inputs cast to ``dtype`` first (when ``cond``,
    (attribute, values), holds)."""
    def wrapped(*args, **kwargs):
        if not _condition_holds(cond, kwargs):
            return f(*args, **kwargs)
        args = [cast_array(a, dtype) for a in args]
        kwargs = {k: cast_array(v, dtype) for k, v in kwargs.items()}
        act = kwargs.get("act_type")
        if split_activation is not None and act is not None and split_activation(str(act)):
            kwargs["act_type"] = None
            return _nd().Activation(f(*args, **kwargs), act_type=act)
        return f(*args, **kwargs)
    return _named_like(wrapped, f)


def nd_widest(f: Callable) -> Callable:
    """``f`` of mx.nd with its array inputs cast to their widest float type."""
    def wrapped(*args, **kwargs):
        args = multicast_arrays(args)
        if kwargs:
            keys = list(kwargs)
            kwargs = dict(zip(keys, multicast_arrays([kwargs[k] for k in keys])))
        return f(*args, **kwargs)
    return _named_like(wrapped, f)


def sym_cast(f: Callable, dtype: str, cond=None) -> Callable:
    """``f`` of mx.sym recording its node with amp_cast nodes before its inputs
    (auxiliary states excepted), as MXNet's AMP does."""
    def wrapped(*args, **kwargs):
        out = f(*args, **kwargs)
        if not _condition_holds(cond, kwargs):
            return out
        _cast_node_inputs(out._outputs[0][0], dtype)
        return out
    return _named_like(wrapped, f)


def _cast_node_inputs(node, dtype: str) -> None:
    from mxcore.graph import opinfo
    Symbol = _sym().Symbol
    row = opinfo.info(node.op, node.attrs)
    aux = set()
    if row is not None and row.aux:
        names = opinfo.present_inputs(row, node.attrs)
        aux = {i for i, n in enumerate(names) if n in row.aux}
    node.inputs = tuple(out if i in aux else _cast_symbol(Symbol([out]), dtype)._outputs[0]
                        for i, out in enumerate(node.inputs))


def sym_widest(f: Callable) -> Callable:
    """``f`` of mx.sym with its symbol inputs passed through one amp_multicast node."""
    def wrapped(*args, **kwargs):
        args = multicast_symbols(args)
        if kwargs:
            keys = list(kwargs)
            kwargs = dict(zip(keys, multicast_symbols([kwargs[k] for k in keys])))
        return f(*args, **kwargs)
    return _named_like(wrapped, f)


def nd_loss_output(f: Callable, scaler: Callable[[], Any]) -> Callable:
    """An output layer of mx.nd whose gradient is also multiplied by the loss scale
    (its ``grad_scale``).  While a hybridized block is traced the scale would be frozen
    into the plan, so it is left alone there, with a warning, as MXNet does."""
    def wrapped(*args, **kwargs):
        data = args[0] if args else kwargs.get("data")
        if getattr(getattr(data, "context", None), "kind", None) == "meta":
            log.warning("%s does not support dynamic loss scaling in symbolic and "
                        "hybridized execution.", getattr(f, "__name__", f))
            return f(*args, **kwargs)
        kwargs["grad_scale"] = float(kwargs.get("grad_scale", 1.0)) * scaler().loss_scale
        return f(*args, **kwargs)
    return _named_like(wrapped, f)


def sym_loss_output(f: Callable) -> Callable:
    def wrapped(*args, **kwargs):
        log.warning("%s does not support dynamic loss scaling in symbolic and hybridized "
                    "execution.", getattr(f, "__name__", f))
        return f(*args, **kwargs)
    return _named_like(wrapped, f)


# where each list name lives ---------------------------------------------------------------------
def targets(name: str) -> List[Tuple[Any, Any, str]]:
    """(nd owner, sym owner, attribute) for the mx.nd and mx.sym functions of MXNet
    operator ``name``; empty when only graphs use the name (``_plus_scalar``: Symbol
    and NDArray arithmetic, wrapped through ``NDARRAY_OPERATORS`` / ``Symbol._binary``)."""
    nd, sym = _nd(), _sym()
    for prefix, sub in _SUBNAMESPACES:
        if name.startswith(prefix):
            attr = name[len(prefix):]
            nd_owner, sym_owner = getattr(nd, sub), getattr(sym, sub)
            if _has(nd_owner, attr):
                return [(nd_owner, sym_owner, attr)]
            return []
    return [(nd, sym, name)] if _has(nd, name) else []


def _has(owner: Any, attr: str) -> bool:
    try:
        return callable(getattr(owner, attr))
    except AttributeError:
        return False


def pin_graph_functions(names: Iterable[str]) -> None:
    """Fix the functions graph nodes of these ops run to mxcore's own, before wrapping."""
    from mxcore.graph import functions
    for name in names:
        try:
            functions.op_function(name)
        except functions.UnknownGraphOpError:
            pass


# installing --------------------------------------------------------------------------------------
def install(lists: AmpLists, target: str, patches: Patches, scaler: Callable[[], Any],
            lp16: Sequence[str], fp32: Sequence[str],
            conditional: Sequence[Tuple[str, str, Sequence[str]]]) -> None:
    """Wrap the namespaces and operators for ``target`` ('float16' or 'bfloat16')."""
    widest = lists.widest
    loss_output = lists.loss_output
    pin_graph_functions(set(lp16) | set(fp32) | {c[0] for c in conditional} | set(widest)
                        | set(loss_output))
    softrelu_like = {v for op, _, values in conditional if op == "Activation" for v in values}

    def wrap_all(names, make_nd, make_sym):
        seen = set()  # two list names of one function (_sample_normal, _random_normal)
        for name in names:
            for nd_owner, sym_owner, attr in targets(name):
                if (id(nd_owner), attr) in seen:
                    continue
                seen.add((id(nd_owner), attr))
                patches.replace(nd_owner, attr, make_nd(getattr(nd_owner, attr), name))
                patches.replace(sym_owner, attr, make_sym(getattr(sym_owner, attr), name))

    wrap_all(lp16, lambda f, n: nd_cast(f, target, split_activation=(
        softrelu_like.__contains__ if n in _FUSED_ACTIVATION else None)),
             lambda f, n: sym_cast(f, target))
    wrap_all(fp32, lambda f, n: nd_cast(f, "float32"), lambda f, n: sym_cast(f, "float32"))
    for op, attr, values in conditional:
        cond = (attr, tuple(str(v) for v in values))
        wrap_all([op], lambda f, n: nd_cast(f, "float32", cond),
                 lambda f, n: sym_cast(f, "float32", cond))
    wrap_all(widest, lambda f, n: nd_widest(f), lambda f, n: sym_widest(f))
    wrap_all(loss_output, lambda f, n: nd_loss_output(f, scaler),
             lambda f, n: sym_loss_output(f))
    categories = {**{n: "widest" for n in widest}, **{n: "fp32" for n in fp32},
                  **{n: "lp16" for n in lp16}}
    _install_operators(categories, target, patches)


def _install_operators(categories: Dict[str, str], target: str, patches: Patches) -> None:
    """NDArray's and Symbol's arithmetic and comparison operators."""
    nd = _nd()
    NDArray, Symbol = nd.NDArray, _sym().Symbol
    cast_to = {"fp32": "float32", "lp16": target}

    def operands(category: Optional[str], self, other, is_array: bool):
        if category == "widest" and is_array:
            return multicast_arrays([self, other])
        if category in cast_to:
            dtype = cast_to[category]
            return [cast_array(self, dtype), cast_array(other, dtype)]
        return [self, other]

    for method, (array_op, scalar_op) in NDARRAY_OPERATORS.items():
        on_array, on_number = categories.get(array_op), categories.get(scalar_op)
        if on_array is None and on_number is None:
            continue
        original = vars(NDArray)[method]

        def amp_method(self, other, _f=original, _a=on_array, _n=on_number):
            is_array = type(other) is NDArray
            return _f(*operands(_a if is_array else _n, self, other, is_array))
        patches.replace(NDArray, method, _named_like(amp_method, original))

    original_binary = vars(Symbol)["_binary"]

    def amp_binary(self, other, op, scalar_op, _f=original_binary):
        if isinstance(other, Symbol):
            category = categories.get(op)
            if category == "widest":
                self, other = multicast_symbols([self, other])
            elif category in cast_to:
                self = _cast_symbol(self, cast_to[category])
                other = _cast_symbol(other, cast_to[category])
        elif categories.get(scalar_op) in cast_to:
            self = _cast_symbol(self, cast_to[categories[scalar_op]])
        return _f(self, other, op, scalar_op)
    patches.replace(Symbol, "_binary", _named_like(amp_binary, original_binary))
