"""Elementwise operators: unary math, binary with numpy broadcasting, the
scalar forms MXNet uses for ``x + 2``, comparisons, clip and where.

Comparisons return the input dtype (1/0), as MXNet's ``mx.nd`` does.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from mxcore.autograd import STATE as _AG_STATE
from mxcore.base import MXCoreError, OperatorError
from mxcore.dispatch import invoke, invoke_binary, invoke_unary
from mxcore.ndarray.ndarray import NDArray
from mxcore.op import Op
from mxcore.ops.rules import broadcast, same_as_first, unbroadcast

OPS: list = []


def _op(name, nin=1, **kw) -> Op:
    op = Op(name, nin, **kw)
    op.def_infer(broadcast if nin == 2 else same_as_first)
    OPS.append(op)
    return op


# unary ---------------------------------------------------------------------------------
NEGATIVE = _op("negative")
ABS = _op("abs")
SIGN = _op("sign")
EXP = _op("exp", saves_output=True)
LOG = _op("log")
LOG1P = _op("log1p")
EXPM1 = _op("expm1", saves_output=True)
SQRT = _op("sqrt", saves_output=True)
RSQRT = _op("rsqrt", saves_output=True)
SQUARE = _op("square")
RECIPROCAL = _op("reciprocal", saves_output=True)
SIN = _op("sin")
COS = _op("cos")
TANH = _op("tanh", saves_output=True)
SIGMOID = _op("sigmoid", saves_output=True)
RELU = _op("relu")
LEAKY_RELU = _op("leaky_relu", attrs={"slope": 0.25})
SOFTRELU = _op("softrelu", aliases=("softplus",))
ERF = _op("erf")
GELU = _op("gelu")
FLOOR = _op("floor")
CEIL = _op("ceil")
ROUND = _op("round")

NEGATIVE.def_grad(lambda c, g: (-g,))
ABS.def_grad(lambda c, g: (g * sign(c.inputs[0]),))
EXP.def_grad(lambda c, g: (g * c.outputs[0],))
LOG.def_grad(lambda c, g: (g / c.inputs[0],))
LOG1P.def_grad(lambda c, g: (g / (c.inputs[0] + 1.0),))
EXPM1.def_grad(lambda c, g: (g * (c.outputs[0] + 1.0),))
SQRT.def_grad(lambda c, g: (g / (c.outputs[0] * 2.0),))
RSQRT.def_grad(lambda c, g: (g * c.outputs[0] / c.inputs[0] * -0.5,))
SQUARE.def_grad(lambda c, g: (g * c.inputs[0] * 2.0,))
RECIPROCAL.def_grad(lambda c, g: (-(g * c.outputs[0] * c.outputs[0]),))
SIN.def_grad(lambda c, g: (g * cos(c.inputs[0]),))
COS.def_grad(lambda c, g: (-(g * sin(c.inputs[0])),))
TANH.def_grad(lambda c, g: (g * (1.0 - square(c.outputs[0])),))
SIGMOID.def_grad(lambda c, g: (g * c.outputs[0] * (1.0 - c.outputs[0]),))
RELU_GRAD = _op("relu_grad", 2)  # g * (x > 0) in one kernel, for first-order backward


@RELU.def_grad
def _relu_grad(c, g):
    if not _AG_STATE.recording:
        return (invoke_binary(RELU_GRAD, g, c.inputs[0]),)
    return (g * (c.inputs[0] > 0),)  # create_graph: differentiable form
SOFTRELU.def_grad(lambda c, g: (g * sigmoid(c.inputs[0]),))
ERF.def_grad(lambda c, g: (g * exp(-square(c.inputs[0])) * (2.0 / math.sqrt(math.pi)),))
for _zero_grad_op in (SIGN, FLOOR, CEIL, ROUND):
    _zero_grad_op.def_grad(lambda c, g: (None,))


@LEAKY_RELU.def_grad
def _leaky_relu_grad(c, g):
    x, slope = c.inputs[0], c.attrs["slope"]
    pos = x > 0
    return (g * (pos + (1.0 - pos) * slope),)


@GELU.def_grad
def _gelu_grad(c, g):
    x = c.inputs[0]
    cdf = (erf(x * (1.0 / math.sqrt(2.0))) + 1.0) * 0.5
    pdf = exp(square(x) * -0.5) * (1.0 / math.sqrt(2.0 * math.pi))
    return (g * (cdf + x * pdf),)


def _unary_api(op: Op):
    def f(data: NDArray) -> NDArray:
        return invoke_unary(op, data)
    f.__name__ = op.name
    f.__doc__ = f"Elementwise ``{op.name}``."
    return f


negative, abs, sign, exp, log, log1p, expm1, sqrt, rsqrt, square, reciprocal = map(
    _unary_api, (NEGATIVE, ABS, SIGN, EXP, LOG, LOG1P, EXPM1, SQRT, RSQRT, SQUARE, RECIPROCAL))
sin, cos, tanh, sigmoid, relu, softrelu, erf, gelu, floor, ceil, round = map(
    _unary_api, (SIN, COS, TANH, SIGMOID, RELU, SOFTRELU, ERF, GELU, FLOOR, CEIL, ROUND))
softplus = softrelu


def leaky_relu(data: NDArray, slope: float = 0.25) -> NDArray:
    return invoke_unary(LEAKY_RELU, data, {"slope": float(slope)})


# binary --------------------------------------------------------------------------------
ADD = _op("add", 2, aliases=("broadcast_add", "elemwise_add"))
SUBTRACT = _op("subtract", 2, aliases=("broadcast_sub", "elemwise_sub"))
MULTIPLY = _op("multiply", 2, aliases=("broadcast_mul", "elemwise_mul"))
DIVIDE = _op("divide", 2, aliases=("broadcast_div", "elemwise_div"))
POWER = _op("power", 2, saves_output=True, aliases=("broadcast_power",))
MAXIMUM = _op("maximum", 2, aliases=("broadcast_maximum",))
MINIMUM = _op("minimum", 2, aliases=("broadcast_minimum",))
MOD = _op("mod", 2, aliases=("broadcast_mod",))
EQUAL = _op("equal", 2, aliases=("broadcast_equal",))
NOT_EQUAL = _op("not_equal", 2, aliases=("broadcast_not_equal",))
GREATER = _op("greater", 2, aliases=("broadcast_greater",))
GREATER_EQUAL = _op("greater_equal", 2, aliases=("broadcast_greater_equal",))
LESS = _op("less", 2, aliases=("broadcast_lesser", "lesser"))
LESS_EQUAL = _op("less_equal", 2, aliases=("broadcast_lesser_equal", "lesser_equal"))


def _ub(c, ga, gb):
    a, b = c.inputs
    return (None if ga is None else unbroadcast(ga, a.shape),
            None if gb is None else unbroadcast(gb, b.shape))


ADD.def_grad(lambda c, g: _ub(c, g, g))
SUBTRACT.def_grad(lambda c, g: _ub(c, g, -g))
MULTIPLY.def_grad(lambda c, g: _ub(c, g * c.inputs[1], g * c.inputs[0]))
DIVIDE.def_grad(lambda c, g: _ub(c, g / c.inputs[1],
                                 -(g * c.inputs[0]) / square(c.inputs[1])))
POWER.def_grad(lambda c, g: _ub(c, g * c.inputs[1] * power(c.inputs[0], c.inputs[1] - 1.0),
                                g * c.outputs[0] * log(c.inputs[0])))
MAXIMUM.def_grad(lambda c, g: _ub(c, g * (c.inputs[0] >= c.inputs[1]),
                                  g * (c.inputs[0] < c.inputs[1])))
MINIMUM.def_grad(lambda c, g: _ub(c, g * (c.inputs[0] <= c.inputs[1]),
                                  g * (c.inputs[0] > c.inputs[1])))
MOD.def_grad(lambda c, g: _ub(c, g, -(g * floor(c.inputs[0] / c.inputs[1]))))


# scalar forms: x (op) s and s (op) x ------------------------------------------------------
def _sop(name, **kw) -> Op:
    return _op(name, attrs={"scalar": 0.0}, volatile_attrs=("scalar",), **kw)


ADD_SCALAR = _sop("add_scalar")
SUB_SCALAR = _sop("sub_scalar")
RSUB_SCALAR = _sop("rsub_scalar")
MUL_SCALAR = _sop("mul_scalar")
DIV_SCALAR = _sop("div_scalar")
RDIV_SCALAR = _sop("rdiv_scalar", saves_output=True)
POW_SCALAR = _sop("pow_scalar")
RPOW_SCALAR = _sop("rpow_scalar", saves_output=True)
MAXIMUM_SCALAR = _sop("maximum_scalar")
MINIMUM_SCALAR = _sop("minimum_scalar")
MOD_SCALAR = _sop("mod_scalar")
RMOD_SCALAR = _sop("rmod_scalar")
EQUAL_SCALAR = _sop("equal_scalar")
NOT_EQUAL_SCALAR = _sop("not_equal_scalar")
GREATER_SCALAR = _sop("greater_scalar")
GREATER_EQUAL_SCALAR = _sop("greater_equal_scalar")
LESS_SCALAR = _sop("less_scalar")
LESS_EQUAL_SCALAR = _sop("less_equal_scalar")

ADD_SCALAR.def_grad(lambda c, g: (g,))
SUB_SCALAR.def_grad(lambda c, g: (g,))
RSUB_SCALAR.def_grad(lambda c, g: (-g,))
MUL_SCALAR.def_grad(lambda c, g: (g * c.attrs["scalar"],))
DIV_SCALAR.def_grad(lambda c, g: (g / c.attrs["scalar"],))
RDIV_SCALAR.def_grad(lambda c, g: (-(g * c.outputs[0]) / c.inputs[0],))
POW_SCALAR.def_grad(lambda c, g: (g * power(c.inputs[0], c.attrs["scalar"] - 1.0)
                                  * c.attrs["scalar"],))
RPOW_SCALAR.def_grad(lambda c, g: (g * c.outputs[0] * math.log(c.attrs["scalar"]),))
MAXIMUM_SCALAR.def_grad(lambda c, g: (g * (c.inputs[0] >= c.attrs["scalar"]),))
MINIMUM_SCALAR.def_grad(lambda c, g: (g * (c.inputs[0] <= c.attrs["scalar"]),))
MOD_SCALAR.def_grad(lambda c, g: (g,))
RMOD_SCALAR.def_grad(lambda c, g: (-(g * floor(c.attrs["scalar"] / c.inputs[0])),))

# scalar op -> (binary op, operands swapped) for NDArray (op) numpy-array expressions
_AS_BINARY = {
    ADD_SCALAR: (ADD, False), SUB_SCALAR: (SUBTRACT, False), RSUB_SCALAR: (SUBTRACT, True),
    MUL_SCALAR: (MULTIPLY, False), DIV_SCALAR: (DIVIDE, False), RDIV_SCALAR: (DIVIDE, True),
    POW_SCALAR: (POWER, False), RPOW_SCALAR: (POWER, True), MAXIMUM_SCALAR: (MAXIMUM, False),
    MINIMUM_SCALAR: (MINIMUM, False), MOD_SCALAR: (MOD, False), RMOD_SCALAR: (MOD, True),
    EQUAL_SCALAR: (EQUAL, False), NOT_EQUAL_SCALAR: (NOT_EQUAL, False),
    GREATER_SCALAR: (GREATER, False), GREATER_EQUAL_SCALAR: (GREATER_EQUAL, False),
    LESS_SCALAR: (LESS, False), LESS_EQUAL_SCALAR: (LESS_EQUAL, False),
}

_SCALAR_TYPES = (numbers.Number, np.number, np.bool_)


def scalar_op(op: Op, x: NDArray, s):
    """``x (op) s`` for a Python/numpy scalar ``s`` (numpy arrays are converted)."""
    if isinstance(s, _SCALAR_TYPES):
        if isinstance(s, complex):
            raise OperatorError(op.name, "complex scalars are not supported")
        return invoke_unary(op, x, {"scalar": s})
    if isinstance(s, (np.ndarray, list, tuple)):
        from mxcore.ops.creation import array
        other = array(s, ctx=x.context, dtype=x.dtype)
        bop, swapped = _AS_BINARY[op]
        return invoke_binary(bop, other, x) if swapped else invoke_binary(bop, x, other)
    return NotImplemented


def _binary_api(op: Op, sop: Op, rsop: Op, pyop):
    def f(lhs, rhs):
        if isinstance(lhs, NDArray):
            if isinstance(rhs, NDArray):
                return invoke_binary(op, lhs, rhs)
            return scalar_op(sop, lhs, rhs)
        if isinstance(rhs, NDArray):
            return scalar_op(rsop, rhs, lhs)
        return pyop(lhs, rhs)
    f.__name__ = op.name
    f.__doc__ = f"Elementwise ``{op.name}`` with numpy broadcasting; either side may be a scalar."
    return f


import operator as _pyop  # noqa: E402

add = _binary_api(ADD, ADD_SCALAR, ADD_SCALAR, _pyop.add)
subtract = _binary_api(SUBTRACT, SUB_SCALAR, RSUB_SCALAR, _pyop.sub)
multiply = _binary_api(MULTIPLY, MUL_SCALAR, MUL_SCALAR, _pyop.mul)
divide = _binary_api(DIVIDE, DIV_SCALAR, RDIV_SCALAR, _pyop.truediv)
power = _binary_api(POWER, POW_SCALAR, RPOW_SCALAR, _pyop.pow)
maximum = _binary_api(MAXIMUM, MAXIMUM_SCALAR, MAXIMUM_SCALAR, max)
minimum = _binary_api(MINIMUM, MINIMUM_SCALAR, MINIMUM_SCALAR, min)
mod = _binary_api(MOD, MOD_SCALAR, RMOD_SCALAR, _pyop.mod)
equal = _binary_api(EQUAL, EQUAL_SCALAR, EQUAL_SCALAR, _pyop.eq)
not_equal = _binary_api(NOT_EQUAL, NOT_EQUAL_SCALAR, NOT_EQUAL_SCALAR, _pyop.ne)
greater = _binary_api(GREATER, GREATER_SCALAR, LESS_SCALAR, _pyop.gt)
greater_equal = _binary_api(GREATER_EQUAL, GREATER_EQUAL_SCALAR, LESS_EQUAL_SCALAR, _pyop.ge)
less = _binary_api(LESS, LESS_SCALAR, GREATER_SCALAR, _pyop.lt)
less_equal = _binary_api(LESS_EQUAL, LESS_EQUAL_SCALAR, GREATER_EQUAL_SCALAR, _pyop.le)
subtract.__name__, lesser, lesser_equal = "subtract", less, less_equal
broadcast_add, broadcast_sub, broadcast_mul, broadcast_div = add, subtract, multiply, divide
broadcast_power, broadcast_maximum, broadcast_minimum, broadcast_mod = power, maximum, minimum, mod
broadcast_equal, broadcast_not_equal, broadcast_greater = equal, not_equal, greater
broadcast_greater_equal, broadcast_lesser, broadcast_lesser_equal = greater_equal, less, less_equal
elemwise_add, elemwise_sub, elemwise_mul, elemwise_div = add, subtract, multiply, divide


# clip and where ----------------------------------------------------------------------------
CLIP = _op("clip", attrs={"a_min": None, "a_max": None})
CLIP.def_grad(lambda c, g: (g * _clip_mask(c.inputs[0], c.attrs),))


def _clip_mask(x, attrs):
    mask = None
    if attrs["a_min"] is not None:
        mask = x >= attrs["a_min"]
    if attrs["a_max"] is not None:
        upper = x <= attrs["a_max"]
        mask = upper if mask is None else mask * upper
    return mask if mask is not None else x * 0.0 + 1.0


def clip(data: NDArray, a_min=None, a_max=None) -> NDArray:
    if a_min is not None and a_max is not None and a_min > a_max:
        raise OperatorError("clip", f"a_min ({a_min}) is greater than a_max ({a_max})",
                            [data.shape], [data.dtype], data.context)
    return invoke_unary(CLIP, data, {"a_min": a_min, "a_max": a_max})


WHERE = Op("where", 3, dtype_arg=1)
OPS.append(WHERE)


@WHERE.def_infer
def _where_infer(shapes, dtypes, attrs):
    if dtypes[1] != dtypes[2]:
        raise MXCoreError(f"x and y dtypes differ: {dtypes[1]} vs {dtypes[2]}")
    shape, _ = broadcast(shapes, (dtypes[1],) * 3, attrs)
    return shape, [dtypes[1]]


@WHERE.def_grad
def _where_grad(c, g):
    cond, x, y = c.inputs
    zero = g * 0.0
    return (None, unbroadcast(where(cond, g, zero), x.shape),
            unbroadcast(where(cond, zero, g), y.shape))


def where(condition: NDArray, x: NDArray, y: NDArray) -> NDArray:
    """Elements of ``x`` where ``condition`` is non-zero, else of ``y``."""
    if not isinstance(x, NDArray):
        x = _full_like(y, x)
    if not isinstance(y, NDArray):
        y = _full_like(x, y)
    if x._data.dtype != y._data.dtype:  # numpy would promote silently
        raise OperatorError("where", f"x and y dtypes differ ({x.dtype} vs {y.dtype}); cast "
                            "one with .astype()", [condition.shape, x.shape, y.shape],
                            [condition.dtype, x.dtype, y.dtype], x.context)
    return invoke(WHERE, (condition, x, y))


def _full_like(ref: NDArray, value) -> NDArray:
    from mxcore.ops.creation import full
    return full((), value, ctx=ref.context, dtype=ref.dtype)
