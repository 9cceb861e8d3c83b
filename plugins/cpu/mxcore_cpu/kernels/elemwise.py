"""Elementwise kernels from tables of formulas (unary, binary, scalar forms)."""
from __future__ import annotations

import math

from mxcore_cpu.kernels._dtypes import ALL, FLOAT, NUM


def kernels(xp, special):
    def keep(fn):
        """Special functions may compute float16 in float32, and Python scalars
        promote bfloat16 to float32: cast back."""
        return lambda x: fn(x).astype(x.dtype, copy=False)

    def round_half_away(x):
        return xp.sign(x) * xp.floor(xp.abs(x) + 0.5)

    unary = {
        "negative": (xp.negative, NUM),
        "abs": (xp.abs, NUM),
        "sign": (xp.sign, NUM),
        "exp": (xp.exp, FLOAT),
        "log": (xp.log, FLOAT),
        "log1p": (xp.log1p, FLOAT),
        "expm1": (xp.expm1, FLOAT),
        "sqrt": (xp.sqrt, FLOAT),
        "rsqrt": (keep(lambda x: 1.0 / xp.sqrt(x)), FLOAT),
        "square": (xp.square, NUM),
        "reciprocal": (keep(lambda x: 1.0 / x), FLOAT),
        "sin": (xp.sin, FLOAT),
        "cos": (xp.cos, FLOAT),
        "tanh": (xp.tanh, FLOAT),
        "sigmoid": (keep(special.expit), FLOAT),
        "relu": (lambda x: xp.maximum(x, 0), NUM),
        "softrelu": (lambda x: xp.logaddexp(0, x), FLOAT),
        "erf": (keep(special.erf), FLOAT),
        "gelu": (keep(lambda x: 0.5 * x * (1.0 + special.erf(x * (1.0 / math.sqrt(2.0))))),
                 FLOAT),
        "floor": (xp.floor, FLOAT),
        "ceil": (xp.ceil, FLOAT),
        "round": (keep(round_half_away), FLOAT),
    }

    def leaky_relu(x, slope):
        return xp.where(x > 0, x, x * slope).astype(x.dtype, copy=False)

    def divide(a, b):
        if a.dtype.kind in "iu":  # C semantics: truncate toward zero (MXNet)
            with xp.errstate(divide="ignore", invalid="ignore"):
                return xp.trunc(xp.true_divide(a, b)).astype(a.dtype)
        return xp.true_divide(a, b)

    def compare(fn):
        return lambda a, b: fn(a, b).astype(a.dtype)

    binary = {
        "add": (xp.add, NUM), "subtract": (xp.subtract, NUM), "multiply": (xp.multiply, NUM),
        "divide": (divide, NUM), "power": (xp.power, NUM), "maximum": (xp.maximum, NUM),
        "minimum": (xp.minimum, NUM), "mod": (xp.mod, NUM),
        "equal": (compare(xp.equal), ALL), "not_equal": (compare(xp.not_equal), ALL),
        "greater": (compare(xp.greater), ALL), "greater_equal": (compare(xp.greater_equal), ALL),
        "less": (compare(xp.less), ALL), "less_equal": (compare(xp.less_equal), ALL),
    }

    def scalar(fn, reverse=False):
        # The scalar takes the array's dtype, as in MXNet (int array + 1.5 stays int).
        if reverse:
            return lambda x, scalar: fn(x.dtype.type(scalar), x)
        return lambda x, scalar: fn(x, x.dtype.type(scalar))

    scalars = {}
    for name, rname, bname in (("add_scalar", None, "add"), ("sub_scalar", "rsub_scalar",
                               "subtract"), ("mul_scalar", None, "multiply"),
                               ("div_scalar", "rdiv_scalar", "divide"),
                               ("pow_scalar", "rpow_scalar", "power"),
                               ("maximum_scalar", None, "maximum"),
                               ("minimum_scalar", None, "minimum"),
                               ("mod_scalar", "rmod_scalar", "mod"),
                               ("equal_scalar", None, "equal"),
                               ("not_equal_scalar", None, "not_equal"),
                               ("greater_scalar", None, "greater"),
                               ("greater_equal_scalar", None, "greater_equal"),
                               ("less_scalar", None, "less"),
                               ("less_equal_scalar", None, "less_equal")):
        fn, dtypes = binary[bname]
        scalars[name] = (scalar(fn), dtypes)
        if rname:
            scalars[rname] = (scalar(fn, reverse=True), dtypes)

    def clip(x, a_min, a_max):
        if x.dtype.kind in "iu":  # bounds outside the integer range would wrap
            info = xp.iinfo(x.dtype)
            a_min = None if a_min is None else min(max(a_min, info.min), info.max)
            a_max = None if a_max is None else min(max(a_max, info.min), info.max)
        return xp.clip(x, a_min, a_max).astype(x.dtype, copy=False)

    def where(cond, x, y):
        return xp.where(cond != 0, x, y)

    def relu_grad(g, x):
        return xp.multiply(g, x > 0)  # 3x faster than where() on small arrays

    return {**unary, **binary, **scalars, "leaky_relu": (leaky_relu, FLOAT),
            "relu_grad": (relu_grad, NUM),
            "clip": (clip, NUM), "where": (where, ALL)}
