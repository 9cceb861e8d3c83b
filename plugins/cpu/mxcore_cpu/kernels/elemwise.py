"""Elementwise kernels from tables of formulas (unary, binary, scalar forms).

Transcendental functions added for MXNet parity compute float16 and bfloat16 in
float32 and round once (``f32``); rounding ops return integer inputs unchanged."""
from __future__ import annotations

import math

from mxcore_cpu.kernels._dtypes import ALL, BFLOAT16, FLOAT, NUM, as_float32
from mxcore_cpu.kernels.logistic import sigmoid, softrelu


def kernels(xp, special):
    def keep(fn):
        """Special functions may compute float16 in float32, and Python scalars
        promote bfloat16 to float32: cast back."""
        return lambda x: fn(x).astype(x.dtype, copy=False)

    def f32(fn):
        """``fn`` in float32 for 16-bit floats, rounded once to the input dtype."""
        return lambda x: fn(as_float32(xp, x)).astype(x.dtype, copy=False)

    def rounding(fn):
        """Integers are already rounded: a copy (numpy's floor would give float64)."""
        return lambda x: x.copy() if x.dtype.kind in "iub" else fn(x)

    def round_half_away(x):
        return xp.sign(x) * xp.floor(xp.abs(x) + 0.5)

    def rint_half_down(x):
        # MXNet's rint: the nearer of floor and ceil, floor on ties (2.5 -> 2, -2.5 -> -3)
        lo, hi = xp.floor(x), xp.ceil(x)
        return xp.where(x - lo <= hi - x, lo, hi)

    def trigamma(x):
        # psi'(x): shift up by psi'(x) = psi'(x + 1) + 1/x^2 until x >= 10, then the
        # asymptotic series (error < 1e-12 there); x < 0.5 by reflection,
        # psi'(1 - x) + psi'(x) = pi^2 / sin^2(pi x).  CuPy's polygamma would need two
        # arguments, which not every special-functions module here takes.
        refl = x < 0.5
        z = xp.where(refl, 1.0 - x, x)
        acc = xp.zeros_like(z)
        for _ in range(10):
            small = z < 10.0
            acc += xp.where(small, 1.0 / (z * z), 0.0)
            z = xp.where(small, z + 1.0, z)
        r = 1.0 / z
        r2 = r * r
        series = r + r2 * (0.5 + r * (1.0 / 6 + r2 * (-1.0 / 30 + r2 * (
            1.0 / 42 + r2 * (-1.0 / 30 + r2 * (5.0 / 66))))))
        out = acc + series
        return xp.where(refl, (math.pi / xp.sin(math.pi * x)) ** 2 - out, out)

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
        "sigmoid": (lambda x: sigmoid(xp, x), FLOAT),
        "relu": (lambda x: relu(x), NUM),
        "softrelu": (lambda x: softrelu(xp, x), FLOAT),
        "erf": (keep(special.erf), FLOAT),
        "gelu": (keep(lambda x: 0.5 * x * (1.0 + special.erf(x * (1.0 / math.sqrt(2.0))))),
                 FLOAT),
        "floor": (rounding(xp.floor), NUM),
        "ceil": (rounding(xp.ceil), NUM),
        "round": (rounding(keep(round_half_away)), NUM),
        "rint": (rounding(rint_half_down), NUM),
        "fix": (rounding(xp.trunc), NUM),
        "trunc": (rounding(xp.trunc), NUM),
        "arcsin": (f32(xp.arcsin), FLOAT),
        "arccos": (f32(xp.arccos), FLOAT),
        "arctan": (f32(xp.arctan), FLOAT),
        "sinh": (f32(xp.sinh), FLOAT),
        "cosh": (f32(xp.cosh), FLOAT),
        "tan": (f32(xp.tan), FLOAT),
        "arcsinh": (f32(xp.arcsinh), FLOAT),
        "arccosh": (f32(xp.arccosh), FLOAT),
        "arctanh": (f32(xp.arctanh), FLOAT),
        "degrees": (f32(xp.degrees), FLOAT),
        "radians": (f32(xp.radians), FLOAT),
        "log2": (f32(xp.log2), FLOAT),
        "log10": (f32(xp.log10), FLOAT),
        "cbrt": (f32(xp.cbrt), FLOAT),
        "rcbrt": (f32(lambda x: 1.0 / xp.cbrt(x)), FLOAT),
        "gamma": (f32(special.gamma), FLOAT),
        "gammaln": (f32(special.gammaln), FLOAT),
        "erfinv": (f32(special.erfinv), FLOAT),
        "digamma": (f32(special.digamma), FLOAT),
        "trigamma": (f32(trigamma), FLOAT),
        "softsign": (f32(lambda x: x / (xp.abs(x) + 1.0)), FLOAT),
        "logical_not": (lambda x: (x == 0).astype(x.dtype, copy=False), ALL),
    }

    def leaky_relu(x, slope):
        return xp.where(x > 0, x, x * slope).astype(x.dtype, copy=False)

    def smooth_l1(x, scalar):
        a = as_float32(xp, x)
        s2 = scalar * scalar
        ax = xp.abs(a)
        inside = ax < (math.inf if s2 == 0 else 1.0 / s2)
        r = xp.where(inside, (0.5 * s2) * a * a, ax - (0.0 if s2 == 0 else 0.5 / s2))
        return r.astype(x.dtype, copy=False)

    def hard_sigmoid(x, alpha, beta):
        a = as_float32(xp, x)
        return xp.clip(a * alpha + beta, 0.0, 1.0).astype(x.dtype, copy=False)

    def divide(a, b):
        if a.dtype.kind in "iu":  # C semantics: truncate toward zero (MXNet)
            with xp.errstate(divide="ignore", invalid="ignore"):
                return xp.trunc(xp.true_divide(a, b)).astype(a.dtype)
        return xp.true_divide(a, b)

    def compare(fn):
        return lambda a, b: fn(a, b).astype(a.dtype)

    def logical(fn):  # non-zero is true; 1/0 in the input dtype (MXNet)
        return lambda a, b: fn(a != 0, b != 0).astype(a.dtype)

    def hypot(a, b):
        return xp.hypot(as_float32(xp, a), as_float32(xp, b)).astype(a.dtype, copy=False)

    binary = {
        "add": (xp.add, NUM), "subtract": (xp.subtract, NUM), "multiply": (xp.multiply, NUM),
        "divide": (divide, NUM), "power": (xp.power, NUM), "maximum": (xp.maximum, NUM),
        "minimum": (xp.minimum, NUM), "mod": (xp.mod, NUM),
        "equal": (compare(xp.equal), ALL), "not_equal": (compare(xp.not_equal), ALL),
        "greater": (compare(xp.greater), ALL), "greater_equal": (compare(xp.greater_equal), ALL),
        "less": (compare(xp.less), ALL), "less_equal": (compare(xp.less_equal), ALL),
        "hypot": (hypot, FLOAT), "logical_and": (logical(xp.logical_and), ALL),
        "logical_or": (logical(xp.logical_or), ALL),
        "logical_xor": (logical(xp.logical_xor), ALL),
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
                               ("less_equal_scalar", None, "less_equal"),
                               ("hypot_scalar", None, "hypot"),
                               ("logical_and_scalar", None, "logical_and"),
                               ("logical_or_scalar", None, "logical_or"),
                               ("logical_xor_scalar", None, "logical_xor")):
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
        c = cond != 0
        ndim = max(x.ndim, y.ndim)
        if c.ndim == 1 and ndim > 1:  # MXNet: a 1-D condition selects rows
            c = c.reshape((-1,) + (1,) * (ndim - 1))
        return xp.where(c, x, y)

    def add_n(*arrays):
        # one buffer for any number of inputs; 16-bit floats accumulate in float32
        out = as_float32(xp, arrays[0])
        out = out + arrays[1] if len(arrays) > 1 else out.copy()
        for a in arrays[2:]:
            out += a
        return out.astype(arrays[0].dtype, copy=False)

    import numpy
    #: bit pattern of +inf per 16-bit float type: above it (in magnitude) lie the NaNs
    inf_bits = {numpy.dtype(numpy.float16): 0x7C00}
    if BFLOAT16 is not None:
        inf_bits[numpy.dtype(BFLOAT16)] = 0x7F80
    if xp is not numpy:
        inf_bits = {}  # CuPy computes 16-bit floats natively

    def relu(x):
        top = inf_bits.get(x.dtype)
        if top is None:
            return xp.maximum(x, 0)
        # numpy computes 16-bit floats one element at a time in software (relu 2 ms on
        # 221k float16 values); their bit patterns as int16 say the same: keep the
        # positive values (sign bit clear, not zero) and NaNs (MXNet's relu passes NaN)
        bits = x.view(xp.int16)
        keep = (bits > 0) | ((bits & 0x7FFF) > top)
        out = xp.zeros_like(x)
        xp.copyto(out, x, where=keep)
        return out

    def relu_grad(g, x):
        top = inf_bits.get(x.dtype)
        if top is None:
            return xp.multiply(g, x > 0)  # 3x faster than where() on small arrays
        bits = x.view(xp.int16)  # x > 0 from the bits (NaN is not > 0): see relu
        out = xp.zeros_like(g)
        xp.copyto(out, g, where=(bits > 0) & (bits <= top))
        return out

    return {**unary, **binary, **scalars, "leaky_relu": (leaky_relu, FLOAT),
            "relu_grad": (relu_grad, NUM), "smooth_l1": (smooth_l1, FLOAT),
            "hard_sigmoid": (hard_sigmoid, FLOAT), "add_n": (add_n, ALL),
            "clip": (clip, NUM), "where": (where, ALL)}
