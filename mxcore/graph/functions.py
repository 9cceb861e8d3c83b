"""From a node's op name to the function that runs it on NDArrays.

A node names its op as MXNet does: the name of a function in ``mx.nd``
(``FullyConnected``, ``broadcast_add``), or one of the internal names MXNet writes
for operators and scalars (``_plus_scalar``, ``_rminus_scalar``, ``_random_uniform``,
``_contrib_X``).  The same functions run eagerly, on meta arrays for shape inference,
and in the executor: there is one set of op functions.
"""
from __future__ import annotations

import inspect
import operator
from typing import Any, Callable, Dict, List, Sequence

from mxcore.base import MXCoreError


def _nd():
    from mxcore import ndarray
    return ndarray


def _scalar(fn):
    return lambda x, scalar=0.0: fn(x, scalar)


def _rscalar(fn):
    return lambda x, scalar=0.0: fn(scalar, x)


def _binary(fn):
    return lambda lhs, rhs: fn(lhs, rhs)


def _nullary(name):
    def run(shape=(), dtype="float32", ctx=None, **attrs):
        return getattr(_nd(), name)(shape, dtype=dtype, ctx=ctx, **attrs)
    run.takes_ctx = True
    return run


def _cmp(name):
    return lambda x, scalar=0.0: getattr(_nd(), name)(x, scalar)


def _identity(data, **_):
    return data.copy()


#: MXNet's internal operator names (what its Symbol arithmetic writes to JSON)
INTERNAL: Dict[str, Callable] = {
    "_plus_scalar": _scalar(operator.add), "_minus_scalar": _scalar(operator.sub),
    "_rminus_scalar": _rscalar(operator.sub), "_mul_scalar": _scalar(operator.mul),
    "_div_scalar": _scalar(operator.truediv), "_rdiv_scalar": _rscalar(operator.truediv),
    "_power_scalar": _scalar(operator.pow), "_rpower_scalar": _rscalar(operator.pow),
    "_mod_scalar": _scalar(operator.mod), "_rmod_scalar": _rscalar(operator.mod),
    "_maximum_scalar": lambda x, scalar=0.0: _nd().maximum(x, scalar),
    "_minimum_scalar": lambda x, scalar=0.0: _nd().minimum(x, scalar),
    "_equal_scalar": _cmp("equal"), "_not_equal_scalar": _cmp("not_equal"),
    "_greater_scalar": _cmp("greater"), "_greater_equal_scalar": _cmp("greater_equal"),
    "_lesser_scalar": _cmp("lesser"), "_lesser_equal_scalar": _cmp("lesser_equal"),
    "_hypot_scalar": _cmp("hypot"), "_logical_and_scalar": _cmp("logical_and"),
    "_logical_or_scalar": _cmp("logical_or"), "_logical_xor_scalar": _cmp("logical_xor"),
    "_plus": _binary(operator.add), "_Plus": _binary(operator.add),
    "_minus": _binary(operator.sub), "_Minus": _binary(operator.sub),
    "_mul": _binary(operator.mul), "_Mul": _binary(operator.mul),
    "_div": _binary(operator.truediv), "_Div": _binary(operator.truediv),
    "_power": _binary(operator.pow), "_Power": _binary(operator.pow),
    "_mod": _binary(operator.mod),
    "_maximum": lambda lhs, rhs: _nd().maximum(lhs, rhs),
    "_minimum": lambda lhs, rhs: _nd().minimum(lhs, rhs),
    "_equal": lambda lhs, rhs: _nd().equal(lhs, rhs),
    "_not_equal": lambda lhs, rhs: _nd().not_equal(lhs, rhs),
    "_greater": lambda lhs, rhs: _nd().greater(lhs, rhs),
    "_greater_equal": lambda lhs, rhs: _nd().greater_equal(lhs, rhs),
    "_lesser": lambda lhs, rhs: _nd().lesser(lhs, rhs),
    "_lesser_equal": lambda lhs, rhs: _nd().lesser_equal(lhs, rhs),
    "_copy": _identity, "identity": _identity, "_identity_with_attr_like_rhs":
        lambda lhs, rhs: lhs,
    "_zeros": _nullary("zeros"), "_ones": _nullary("ones"),
    "_full": lambda shape=(), value=0.0, dtype="float32", ctx=None:
        _nd().full(shape, value, dtype=dtype, ctx=ctx),
}
INTERNAL["_full"].takes_ctx = True
INTERNAL["_shuffle"] = lambda data: _nd().random.shuffle(data)
#: MXNet's prefixes for operators that mx.nd exposes in a sub-namespace
_PREFIXES = (("_random_", "random"), ("_sample_", "random"), ("_contrib_", "contrib"),
             ("_linalg_", "linalg"), ("_image_", "image"))

_CACHE: Dict[str, Callable] = {}


class UnknownGraphOpError(MXCoreError):
    """A graph names an operator mxcore does not provide."""


def _lookup(name: str):
    if name in INTERNAL:
        return INTERNAL[name]
    nd = _nd()
    for prefix, module in _PREFIXES:
        if name.startswith(prefix):
            sub = getattr(nd, module, None)
            fn = getattr(sub, name[len(prefix):], None) if sub is not None else None
            if fn is not None:
                return fn
    try:
        return getattr(nd, name)
    except AttributeError:
        return None


def op_function(name: str) -> Callable:
    """The function that runs op ``name`` on NDArrays; a clear error if there is none."""
    fn = _CACHE.get(name)
    if fn is None:
        fn = _lookup(name)
        if fn is None or not callable(fn):
            raise UnknownGraphOpError(f"operator {name!r} is not provided by mxcore "
                                      "(no mx.nd function or registered operator of that name)")
        _CACHE[name] = fn
    return fn


def takes_ctx(fn: Callable) -> bool:
    """Whether ``fn`` creates arrays (it takes ``ctx``): nullary nodes are given the
    executor's device."""
    flag = getattr(fn, "takes_ctx", None)
    if flag is None:
        try:
            flag = "ctx" in inspect.signature(fn).parameters
        except (TypeError, ValueError):
            flag = False
        try:
            fn.takes_ctx = flag
        except (AttributeError, TypeError):
            pass
    return flag


def accepted_names(fn: Callable):
    """The keyword names ``fn`` takes, or None when it takes any (``**kwargs``)."""
    names = getattr(fn, "accepted_names", False)
    if names is False:
        try:
            params = inspect.signature(fn).parameters.values()
            names = None if any(p.kind == p.VAR_KEYWORD for p in params) else \
                frozenset(p.name for p in params)
        except (TypeError, ValueError):
            names = None
        try:
            fn.accepted_names = names
        except (AttributeError, TypeError):
            pass
    return names


def run(op: str, inputs: Sequence[Any], attrs: Dict[str, Any], ctx) -> List[Any]:
    """Run op ``op`` on NDArray ``inputs``; always a list of outputs."""
    fn = op_function(op)
    if not inputs and takes_ctx(fn):
        attrs = dict(attrs, ctx=ctx)
    names = accepted_names(fn)
    if names is not None and not names.issuperset(attrs):
        # attributes that are not parameters of the function (MXNet's kernel tuning
        # hints such as cudnn_tune, user attributes such as lr_mult) are not passed
        attrs = {k: v for k, v in attrs.items() if k in names}
    out = fn(*inputs, **attrs)
    return list(out) if isinstance(out, (list, tuple)) else [out]
