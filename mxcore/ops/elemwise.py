"""Elementwise operators: unary math (trigonometric, hyperbolic, logarithms, roots,
rounding, gamma functions), activations with attributes (smooth_l1, hard_sigmoid),
binary with numpy broadcasting (arithmetic, hypot, logical), the scalar forms MXNet
uses for ``x + 2``, comparisons, clip, where and add_n.

Comparisons and logical ops return the input dtype (1/0), as MXNet's ``mx.nd`` does;
rounding and logical ops have no gradient (zero in MXNet).
"""
from __future__ import annotations

import math
import numbers
from typing import Optional

import numpy as np

from mxcore.autograd import STATE as _AG_STATE
from mxcore.base import MXCoreError, OperatorError
from mxcore.dispatch import invoke, invoke_binary, invoke_unary
from mxcore.array import NDArray
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
ARCSIN = _op("arcsin")
ARCCOS = _op("arccos")
ARCTAN = _op("arctan")
SINH = _op("sinh")
COSH = _op("cosh")
TAN = _op("tan", saves_output=True)
ARCSINH = _op("arcsinh")
ARCCOSH = _op("arccosh")
ARCTANH = _op("arctanh")
DEGREES = _op("degrees")
RADIANS = _op("radians")
LOG2 = _op("log2")
LOG10 = _op("log10")
CBRT = _op("cbrt", saves_output=True)
RCBRT = _op("rcbrt", saves_output=True)
RINT = _op("rint")
FIX = _op("fix")
TRUNC = _op("trunc")
GAMMA = _op("gamma", saves_output=True)
GAMMALN = _op("gammaln")
ERFINV = _op("erfinv", saves_output=True)
LOGICAL_NOT = _op("logical_not")
SOFTSIGN = _op("softsign")
# the derivatives of gamma and gammaln (not MXNet names; reachable as mx.nd.digamma)
DIGAMMA = _op("digamma")
TRIGAMMA = _op("trigamma")

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
for _zero_grad_op in (SIGN, FLOOR, CEIL, ROUND, RINT, FIX, TRUNC, LOGICAL_NOT):
    _zero_grad_op.def_grad(lambda c, g: (None,))

_LN2, _LN10 = math.log(2.0), math.log(10.0)
ARCSIN.def_grad(lambda c, g: (g * rsqrt(1.0 - square(c.inputs[0])),))
ARCCOS.def_grad(lambda c, g: (-(g * rsqrt(1.0 - square(c.inputs[0]))),))
ARCTAN.def_grad(lambda c, g: (g / (square(c.inputs[0]) + 1.0),))
SINH.def_grad(lambda c, g: (g * cosh(c.inputs[0]),))
COSH.def_grad(lambda c, g: (g * sinh(c.inputs[0]),))
TAN.def_grad(lambda c, g: (g * (square(c.outputs[0]) + 1.0),))
ARCSINH.def_grad(lambda c, g: (g * rsqrt(square(c.inputs[0]) + 1.0),))
ARCCOSH.def_grad(lambda c, g: (g * rsqrt(square(c.inputs[0]) - 1.0),))
ARCTANH.def_grad(lambda c, g: (g / (1.0 - square(c.inputs[0])),))
DEGREES.def_grad(lambda c, g: (g * (180.0 / math.pi),))
RADIANS.def_grad(lambda c, g: (g * (math.pi / 180.0),))
LOG2.def_grad(lambda c, g: (g / (c.inputs[0] * _LN2),))
LOG10.def_grad(lambda c, g: (g / (c.inputs[0] * _LN10),))
# cbrt' = 1 / (3 cbrt(x)^2); rcbrt' = -rcbrt(x) / (3 x)
CBRT.def_grad(lambda c, g: (g / (square(c.outputs[0]) * 3.0),))
RCBRT.def_grad(lambda c, g: (g * c.outputs[0] / c.inputs[0] * (-1.0 / 3.0),))
GAMMA.def_grad(lambda c, g: (g * c.outputs[0] * digamma(c.inputs[0]),))
GAMMALN.def_grad(lambda c, g: (g * digamma(c.inputs[0]),))
# erfinv'(x) = sqrt(pi) / 2 * exp(erfinv(x)^2)
ERFINV.def_grad(lambda c, g: (g * exp(square(c.outputs[0])) * (math.sqrt(math.pi) / 2.0),))
SOFTSIGN.def_grad(lambda c, g: (g / square(abs(c.inputs[0]) + 1.0),))
DIGAMMA.def_grad(lambda c, g: (g * trigamma(c.inputs[0]),))


@TRIGAMMA.def_grad
def _trigamma_grad(c, g):
    raise MXCoreError("trigamma (the second derivative of gammaln) has no gradient rule: "
                      "gamma and gammaln are differentiable twice")


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
    def f(data: NDArray, out=None, name=None) -> NDArray:
        result = invoke_unary(op, data)
        if out is None:
            return result
        out[:] = result
        return out
    f.__name__ = op.name
    f.__doc__ = f"Elementwise ``{op.name}``."
    return f


negative, abs, sign, exp, log, log1p, expm1, sqrt, rsqrt, square, reciprocal = map(
    _unary_api, (NEGATIVE, ABS, SIGN, EXP, LOG, LOG1P, EXPM1, SQRT, RSQRT, SQUARE, RECIPROCAL))
sin, cos, tanh, sigmoid, relu, softrelu, erf, gelu, floor, ceil, round = map(
    _unary_api, (SIN, COS, TANH, SIGMOID, RELU, SOFTRELU, ERF, GELU, FLOOR, CEIL, ROUND))
arcsin, arccos, arctan, sinh, cosh, tan, arcsinh, arccosh, arctanh = map(
    _unary_api, (ARCSIN, ARCCOS, ARCTAN, SINH, COSH, TAN, ARCSINH, ARCCOSH, ARCTANH))
degrees, radians, log2, log10, cbrt, rcbrt, rint, fix, trunc = map(
    _unary_api, (DEGREES, RADIANS, LOG2, LOG10, CBRT, RCBRT, RINT, FIX, TRUNC))
gamma, gammaln, erfinv, logical_not, softsign, digamma, trigamma = map(
    _unary_api, (GAMMA, GAMMALN, ERFINV, LOGICAL_NOT, SOFTSIGN, DIGAMMA, TRIGAMMA))
softplus = softrelu


def leaky_relu(data: NDArray, slope: float = 0.25) -> NDArray:
    return invoke_unary(LEAKY_RELU, data, {"slope": float(slope)})


# activations with attributes -----------------------------------------------------------
SMOOTH_L1 = _op("smooth_l1", attrs={"scalar": 1.0},
                doc="0.5 (sigma x)^2 where |x| < 1/sigma^2, else |x| - 0.5/sigma^2 "
                    "(sigma = ``scalar``)")
HARD_SIGMOID = _op("hard_sigmoid", attrs={"alpha": 0.2, "beta": 0.5}, saves_output=True,
                   doc="clip(alpha x + beta, 0, 1)")


def _inverse(s2: float) -> float:
    """1 / sigma^2; sigma = 0 makes every x quadratic (all zeros), as in MXNet."""
    return math.inf if s2 == 0 else 1.0 / s2


@SMOOTH_L1.def_grad
def _smooth_l1_grad(c, g):
    x, s2 = c.inputs[0], c.attrs["scalar"] ** 2
    quad = abs(x) < _inverse(s2)  # 1/0 mask: sigma^2 x inside, sign(x) outside (MXNet)
    return (g * (quad * x * s2 + (1.0 - quad) * sign(x)),)


@HARD_SIGMOID.def_grad
def _hard_sigmoid_grad(c, g):
    y = c.outputs[0]  # the slope inside (0, 1) strictly; flat (zero) at and past the ends
    return (g * ((y > 0.0) * (y < 1.0)) * c.attrs["alpha"],)


def smooth_l1(data: NDArray, scalar: float = 1.0) -> NDArray:
    """MXNet's smooth_l1: ``0.5 * (scalar * x) ** 2`` where ``|x| < 1 / scalar ** 2``,
    else ``|x| - 0.5 / scalar ** 2``."""
    return invoke_unary(SMOOTH_L1, data, {"scalar": float(scalar)})


def hard_sigmoid(data: NDArray, alpha: float = 0.2, beta: float = 0.5) -> NDArray:
    """MXNet's hard_sigmoid: ``clip(alpha * x + beta, 0, 1)``."""
    return invoke_unary(HARD_SIGMOID, data, {"alpha": float(alpha), "beta": float(beta)})


# binary --------------------------------------------------------------------------------
ADD = _op("add", 2, aliases=("broadcast_add", "elemwise_add", "broadcast_plus"))
SUBTRACT = _op("subtract", 2, aliases=("broadcast_sub", "elemwise_sub", "broadcast_minus"))
MULTIPLY = _op("multiply", 2, aliases=("broadcast_mul", "elemwise_mul"))
DIVIDE = _op("divide", 2, aliases=("broadcast_div", "elemwise_div", "true_divide"))
POWER = _op("power", 2, saves_output=True, aliases=("broadcast_power",))
MAXIMUM = _op("maximum", 2, aliases=("broadcast_maximum",))
MINIMUM = _op("minimum", 2, aliases=("broadcast_minimum",))
MOD = _op("mod", 2, aliases=("broadcast_mod", "modulo"))
EQUAL = _op("equal", 2, aliases=("broadcast_equal",))
NOT_EQUAL = _op("not_equal", 2, aliases=("broadcast_not_equal",))
GREATER = _op("greater", 2, aliases=("broadcast_greater",))
GREATER_EQUAL = _op("greater_equal", 2, aliases=("broadcast_greater_equal",))
LESS = _op("less", 2, aliases=("broadcast_lesser", "lesser"))
LESS_EQUAL = _op("less_equal", 2, aliases=("broadcast_lesser_equal", "lesser_equal"))
HYPOT = _op("hypot", 2, saves_output=True, aliases=("broadcast_hypot",))
LOGICAL_AND = _op("logical_and", 2, aliases=("broadcast_logical_and",))
LOGICAL_OR = _op("logical_or", 2, aliases=("broadcast_logical_or",))
LOGICAL_XOR = _op("logical_xor", 2, aliases=("broadcast_logical_xor",))


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
HYPOT.def_grad(lambda c, g: _ub(c, g * c.inputs[0] / c.outputs[0],
                                g * c.inputs[1] / c.outputs[0]))
for _zero_grad_op in (LOGICAL_AND, LOGICAL_OR, LOGICAL_XOR):
    _zero_grad_op.def_grad(lambda c, g: (None, None))


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
HYPOT_SCALAR = _sop("hypot_scalar", saves_output=True)
LOGICAL_AND_SCALAR = _sop("logical_and_scalar")
LOGICAL_OR_SCALAR = _sop("logical_or_scalar")
LOGICAL_XOR_SCALAR = _sop("logical_xor_scalar")

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
HYPOT_SCALAR.def_grad(lambda c, g: (g * c.inputs[0] / c.outputs[0],))
for _zero_grad_op in (LOGICAL_AND_SCALAR, LOGICAL_OR_SCALAR, LOGICAL_XOR_SCALAR):
    _zero_grad_op.def_grad(lambda c, g: (None,))

# scalar op -> (binary op, operands swapped) for NDArray (op) numpy-array expressions
_AS_BINARY = {
    ADD_SCALAR: (ADD, False), SUB_SCALAR: (SUBTRACT, False), RSUB_SCALAR: (SUBTRACT, True),
    MUL_SCALAR: (MULTIPLY, False), DIV_SCALAR: (DIVIDE, False), RDIV_SCALAR: (DIVIDE, True),
    POW_SCALAR: (POWER, False), RPOW_SCALAR: (POWER, True), MAXIMUM_SCALAR: (MAXIMUM, False),
    MINIMUM_SCALAR: (MINIMUM, False), MOD_SCALAR: (MOD, False), RMOD_SCALAR: (MOD, True),
    EQUAL_SCALAR: (EQUAL, False), NOT_EQUAL_SCALAR: (NOT_EQUAL, False),
    GREATER_SCALAR: (GREATER, False), GREATER_EQUAL_SCALAR: (GREATER_EQUAL, False),
    LESS_SCALAR: (LESS, False), LESS_EQUAL_SCALAR: (LESS_EQUAL, False),
    HYPOT_SCALAR: (HYPOT, False), LOGICAL_AND_SCALAR: (LOGICAL_AND, False),
    LOGICAL_OR_SCALAR: (LOGICAL_OR, False), LOGICAL_XOR_SCALAR: (LOGICAL_XOR, False),
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
    def f(lhs, rhs, out=None, name=None, **kwargs):  # MXNet ignores other attributes
        if isinstance(lhs, NDArray):
            result = invoke_binary(op, lhs, rhs) if isinstance(rhs, NDArray) \
                else scalar_op(sop, lhs, rhs)
        elif isinstance(rhs, NDArray):
            result = scalar_op(rsop, rhs, lhs)
        else:
            return pyop(lhs, rhs)
        if out is None:
            return result
        out[:] = result
        return out
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
hypot = _binary_api(HYPOT, HYPOT_SCALAR, HYPOT_SCALAR, math.hypot)
# MXNet's Python forms of two scalars give 1/0
logical_and = _binary_api(LOGICAL_AND, LOGICAL_AND_SCALAR, LOGICAL_AND_SCALAR,
                          lambda a, b: int(bool(a) and bool(b)))
logical_or = _binary_api(LOGICAL_OR, LOGICAL_OR_SCALAR, LOGICAL_OR_SCALAR,
                         lambda a, b: int(bool(a) or bool(b)))
logical_xor = _binary_api(LOGICAL_XOR, LOGICAL_XOR_SCALAR, LOGICAL_XOR_SCALAR,
                          lambda a, b: int(bool(a) != bool(b)))
subtract.__name__, lesser, lesser_equal = "subtract", less, less_equal
broadcast_add, broadcast_sub, broadcast_mul, broadcast_div = add, subtract, multiply, divide
broadcast_power, broadcast_maximum, broadcast_minimum, broadcast_mod = power, maximum, minimum, mod
broadcast_equal, broadcast_not_equal, broadcast_greater = equal, not_equal, greater
broadcast_greater_equal, broadcast_lesser, broadcast_lesser_equal = greater_equal, less, less_equal
elemwise_add, elemwise_sub, elemwise_mul, elemwise_div = add, subtract, multiply, divide
broadcast_plus, broadcast_minus, modulo, true_divide = add, subtract, mod, divide
broadcast_hypot, broadcast_logical_and = hypot, logical_and
broadcast_logical_or, broadcast_logical_xor = logical_or, logical_xor


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


def clip(data: NDArray, a_min=None, a_max=None, out=None, name=None) -> NDArray:
    if a_min is not None and a_max is not None and a_min > a_max:
        raise OperatorError("clip", f"a_min ({a_min}) is greater than a_max ({a_max})",
                            [data.shape], [data.dtype], data.context)
    result = invoke_unary(CLIP, data, {"a_min": a_min, "a_max": a_max})
    if out is None:
        return result
    out[:] = result
    return out


WHERE = Op("where", 3, dtype_arg=1,
           doc="x where condition is non-zero, else y; a 1-D condition of a multi-dimensional "
               "output selects its rows (MXNet), other shapes broadcast as in numpy")
OPS.append(WHERE)


def _row_condition(cond, out) -> bool:
    """MXNet's rule: a 1-D condition picks whole rows (first-axis slices)."""
    return len(cond) == 1 and len(out) > 1


@WHERE.def_infer
def _where_infer(shapes, dtypes, attrs):
    if dtypes[1] != dtypes[2]:
        raise MXCoreError(f"x and y dtypes differ: {dtypes[1]} vs {dtypes[2]}")
    cond, x, y = shapes
    (out,), _ = broadcast((x, y), (dtypes[1],) * 2, attrs)
    if _row_condition(cond, out):
        if cond[0] != out[0]:
            raise MXCoreError(f"a 1-D condition selects rows: its length {cond[0]} must be "
                              f"the first dimension of x and y {out}")
        return [out], [dtypes[1]]
    shape, _ = broadcast((cond, out), (dtypes[1],) * 2, attrs)
    return shape, [dtypes[1]]


@WHERE.def_grad
def _where_grad(c, g):
    cond, x, y = c.inputs
    zero = g * 0.0
    return (None, unbroadcast(where(cond, g, zero), x.shape),
            unbroadcast(where(cond, zero, g), y.shape))


def where(condition: NDArray, x: NDArray, y: NDArray) -> NDArray:
    """Elements of ``x`` where ``condition`` is non-zero, else of ``y``.

    As in MXNet, ``condition`` has the shape of ``x`` and ``y``, or is 1-D with one
    value per row (``x.shape[0]``) selecting whole rows.  mxcore also broadcasts
    shapes as numpy does, and takes a Python scalar for ``x`` or ``y``."""
    if not isinstance(x, NDArray):
        x = _full_like(y, x)
    if not isinstance(y, NDArray):
        y = _full_like(x, y)
    if x._data.dtype != y._data.dtype or not (condition.shape == x.shape == y.shape):
        try:  # numpy would promote dtypes silently and broadcast a 1-D condition by columns
            _where_infer((condition.shape, x.shape, y.shape),
                         (condition.dtype, x.dtype, y.dtype), {})
        except MXCoreError as exc:
            hint = "; cast one with .astype()" if x.dtype != y.dtype else ""
            raise OperatorError("where", f"{exc}{hint}", [condition.shape, x.shape, y.shape],
                                [condition.dtype, x.dtype, y.dtype], x.context) from None
    return invoke(WHERE, (condition, x, y))


def _full_like(ref: NDArray, value) -> NDArray:
    from mxcore.ops.creation import full
    return full((), value, ctx=ref.context, dtype=ref.dtype)


# add_n ----------------------------------------------------------------------------------------
ADD_N = Op("add_n", -1, aliases=("ElementWiseSum",),
           doc="the sum of any number of arrays of one shape and dtype")
OPS.append(ADD_N)


@ADD_N.def_infer
def _add_n_infer(shapes, dtypes, attrs):
    if not shapes:
        raise MXCoreError("add_n needs at least one array")
    if len(set(shapes)) > 1:  # MXNet does not broadcast here
        raise MXCoreError(f"shapes differ: {', '.join(str(s) for s in shapes)}")
    if len(set(dtypes)) > 1:
        raise MXCoreError(f"dtypes differ: {', '.join(str(d) for d in dtypes)}")
    return [shapes[0]], [dtypes[0]]


ADD_N.def_grad(lambda c, g: (g,) * len(c.inputs))


def add_n(*args: NDArray, out: Optional[NDArray] = None) -> NDArray:
    """The elementwise sum of ``args`` (MXNet's add_n / ElementWiseSum): same shapes
    and dtypes, no broadcasting; written into ``out`` when given (it may be one of
    ``args``)."""
    if len(args) == 1 and isinstance(args[0], (list, tuple)):
        args = tuple(args[0])
    if not args or any(not isinstance(a, NDArray) for a in args):
        raise OperatorError("add_n", "expected one or more NDArrays, got "
                            f"{[type(a).__name__ for a in args]}")
    try:
        _add_n_infer(tuple(a.shape for a in args), tuple(a._data.dtype for a in args), {})
    except MXCoreError as exc:
        raise OperatorError("add_n", str(exc), [a.shape for a in args],
                            [a.dtype for a in args], args[0].context) from None
    result = invoke(ADD_N, args)
    if out is None:
        return result
    out[:] = result
    return out


ElementWiseSum = add_n
