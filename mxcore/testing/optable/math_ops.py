"""Op-table cases: unary math (trigonometric, hyperbolic, logarithms, roots, rounding, gamma
functions), hypot and logical ops with their scalar forms, smooth_l1, hard_sigmoid, softsign,
softmin, add_n, moments, where with a row condition, nansum/nanprod, argmax_channel and
softmax_cross_entropy.  Imported by mxcore.testing.optable, which collects every case into one table.

References are numpy/scipy formulas evaluated in float64, written from the definitions (MXNet
1.9.1's results were checked against them)."""
from __future__ import annotations

import numpy as np
from scipy import special

import mxcore as mx
from mxcore.testing.table import ALL, FLOATS, INTS, NUMERIC, In, collector

CASES: list = []
case = collector(CASES)


nd = mx.nd
S23, S234, _S222 = (2, 3), (2, 3, 4), (2, 2, 2)
_T16 = {"float16": (2e-2, 5e-3), "bfloat16": (3e-2, 2e-2)}  # larger values, 16-bit ulps


def _rint(x):
    """MXNet's rint: the nearer of floor and ceil, floor on a tie."""
    lo, hi = np.floor(x), np.ceil(x)
    return np.where(x - lo <= hi - x, lo, hi)


# --- unary math ------------------------------------------------------------------------
for _name, _ref, _kind, _g2, _tol in [
    ("arcsin", np.arcsin, "unit", True, {}),
    ("arccos", np.arccos, "unit", True, {}),
    ("arctan", np.arctan, "real", True, {}),
    ("sinh", np.sinh, "real", True, {}),
    ("cosh", np.cosh, "real", True, {}),
    ("tan", np.tan, "unit", True, {}),
    ("arcsinh", np.arcsinh, "real", True, {}),
    ("arctanh", np.arctanh, "unit", True, {}),
    ("degrees", np.degrees, "real", True, {"float16": (2e-2, 5e-2), "bfloat16": (3e-2, 0.5)}),
    ("radians", np.radians, "real", True, {}),
    ("log2", np.log2, "pos", True, {}),
    ("log10", np.log10, "pos", True, {}),
    ("cbrt", np.cbrt, "away0", True, {}),
    ("rcbrt", lambda x: 1 / np.cbrt(x), "away0", True, {}),
    ("rint", _rint, "frac", True, {}),
    ("fix", np.trunc, "frac", True, {}),
    ("trunc", np.trunc, "frac", True, {}),
    ("gamma", special.gamma, "pos", True, {}),
    ("gammaln", special.gammaln, "pos", True, {}),
    ("erfinv", special.erfinv, "unit", True, _T16),
    ("softsign", lambda x: x / (1 + np.abs(x)), "real", True, {}),
    # the derivatives of gammaln, used by the gradients of gamma and gammaln
    ("digamma", special.digamma, "pos", False, {}),
]:
    case(_name, getattr(nd, _name), _ref, (In(S23, _kind),), FLOATS, grad2=_g2, tol=_tol)
# negative arguments (negation is exact in every dtype)
for _name, _ref in [("arcsin", np.arcsin), ("arccos", np.arccos), ("tan", np.tan),
                    ("arctanh", np.arctanh), ("erfinv", special.erfinv)]:
    case(_name + "_negative", lambda x, _f=getattr(nd, _name): _f(-x),
         lambda x, _r=_ref: _r(-x), (In(S23, "unit"),), FLOATS, tol=_T16)
case("arccosh", lambda x: nd.arccosh(x + 1.0), lambda x: np.arccosh(x + 1.0), (In(S23, "pos"),),
     FLOATS)
# gamma functions between the poles of negative arguments (reflection formulas)
case("gamma_negative", nd.gamma, special.gamma, (In(S23, "frac"),), FLOATS, tol=_T16)
case("gammaln_negative", nd.gammaln, special.gammaln, (In(S23, "frac"),), FLOATS, tol=_T16)
case("digamma_negative", nd.digamma, special.digamma, (In(S23, "frac"),), FLOATS, grad2=False,
     tol=_T16)
case("trigamma", nd.trigamma, lambda x: special.polygamma(1, x), (In(S23, "frac"),), FLOATS,
     grad=False, tol=_T16)
case("trigamma_large", lambda x: nd.trigamma(x * 20.0), lambda x: special.polygamma(1, x * 20),
     (In(S23, "pos"),), FLOATS, grad=False)
case("logical_not", nd.logical_not, lambda x: (x == 0).astype(x.dtype),
     (In(S23, "index", arg=3),), ALL, grad=False)
# rounding leaves integers as they are, in their dtype
for _name, _ref in [("floor", np.floor), ("ceil", np.ceil), ("round", np.round),
                    ("rint", np.rint), ("fix", np.trunc), ("trunc", np.trunc)]:
    case(_name + "_int", getattr(nd, _name), _ref, (In(S23),), INTS, grad=False)

# --- binary: hypot and logical ops, their broadcasting and scalar forms ----------------------
_SMALL = (2, 1)
case("hypot", nd.hypot, np.hypot, (In(S23, "away0"), In(S23, "away0")), FLOATS)
case("broadcast_hypot", nd.broadcast_hypot, np.hypot, (In(_SMALL, "away0"), In((1, 3), "away0")),
     FLOATS)
case("hypot_scalar", lambda x: nd.hypot(x, 1.5), lambda x: np.hypot(x, 1.5), (In(S23),), FLOATS)
case("hypot_rscalar", lambda x: nd.hypot(2.0, x), lambda x: np.hypot(2.0, x), (In(S23),),
     FLOATS)
for _name, _ref in [("logical_and", np.logical_and), ("logical_or", np.logical_or),
                    ("logical_xor", np.logical_xor)]:
    def _logical(a, b, _r=_ref):
        return _r(a != 0, b != 0).astype(a.dtype)
    case(_name, getattr(nd, _name), _logical,
         (In(S23, "index", arg=3), In(S23, "index", arg=3)), ALL, grad=False)
    case("broadcast_" + _name, getattr(nd, "broadcast_" + _name), _logical,
         (In(_SMALL, "index", arg=2), In((1, 3), "index", arg=2)), ALL, grad=False)
    for _s in (0, 2):
        case(f"{_name}_scalar{_s}", lambda x, _f=getattr(nd, _name), _s=_s: _f(x, _s),
             lambda x, _l=_logical, _s=_s: _l(x, np.full_like(x, _s)),
             (In(S23, "index", arg=3),), NUMERIC, grad=False)
case("logical_or_rscalar", lambda x: nd.logical_or(0, x),
     lambda x: (x != 0).astype(x.dtype), (In(S23, "index", arg=3),), NUMERIC, grad=False)

# --- activations with attributes ---------------------------------------------------------------
def _smooth_l1(x, sigma=1.0):
    s2 = sigma * sigma
    return np.where(np.abs(x) < 1 / s2, 0.5 * s2 * x * x, np.abs(x) - 0.5 / s2)


case("smooth_l1", lambda x: nd.smooth_l1(x, scalar=1.0), _smooth_l1, (In(S23),), FLOATS)
case("smooth_l1_sigma2", lambda x: nd.smooth_l1(x, 2.0), lambda x: _smooth_l1(x, 2.0),
     (In(S23),), FLOATS)
case("smooth_l1_sigma_half", lambda x: nd.smooth_l1(x, 0.5), lambda x: _smooth_l1(x, 0.5),
     (In(S23),), FLOATS)
case("hard_sigmoid", nd.hard_sigmoid, lambda x: np.clip(0.2 * x + 0.5, 0, 1), (In(S23),), FLOATS)
case("hard_sigmoid_clipped", lambda x: nd.hard_sigmoid(x, alpha=0.5, beta=0.3),
     lambda x: np.clip(0.5 * x + 0.3, 0, 1), (In(S23),), FLOATS)
case("activation_softsign_op", lambda x: nd.Activation(x, act_type="softsign"),
     lambda x: x / (1 + np.abs(x)), (In(S23),), FLOATS)


def _softmin(x, axis=-1, t=1.0):
    z = -x / t
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


_SM_T = {"float32": (1e-5, 1e-6)}
case("softmin", nd.softmin, _softmin, (In(S23),), FLOATS, tol=_SM_T)
case("softmin_axis0_temperature", lambda x: nd.softmin(x, axis=0, temperature=0.5),
     lambda x: _softmin(x, 0, 0.5), (In(S23),), FLOATS, tol=_SM_T)
case("softmin_float64_output", lambda x: nd.softmin(x, axis=1, dtype="float64"),
     lambda x: _softmin(x, 1), (In(S23),), FLOATS, out_dtype="float64")
case("softmin_float32_output", lambda x: nd.softmin(x, dtype="float32"), _softmin, (In(S23),),
     ("float16", "bfloat16", "float32"), out_dtype="float32", grad=False, tol=_SM_T)

# --- add_n ----------------------------------------------------------------------------------
case("add_n", nd.add_n, lambda a, b, c: a + b + c, (In(S23), In(S23), In(S23)), NUMERIC)
case("add_n_one", nd.add_n, lambda a: a, (In(S23),), NUMERIC)
case("ElementWiseSum", nd.ElementWiseSum, lambda a, b: a + b, (In(S23), In(S23)), FLOATS,
     grad2=False)
case("add_n_repeated_input", lambda a, b: nd.add_n(a, b, a), lambda a, b: 2 * a + b,
     (In(S23), In(S23)), FLOATS)


# --- moments -------------------------------------------------------------------------------
def _moments(x, axes, keepdims=False):
    m = x.mean(axis=axes, keepdims=True)
    v = ((x - m) ** 2).mean(axis=axes, keepdims=True)
    if not keepdims:
        m, v = np.squeeze(m, axes), np.squeeze(v, axes)
    return np.atleast_1d(m), np.atleast_1d(v)


def _int_moments(x, axes):
    """Integer inputs: MXNet truncates the mean, then the variance around it."""
    a = x.astype(np.float64)
    m = np.trunc(a.mean(axis=axes, keepdims=True))
    v = np.trunc(((a - m) ** 2).mean(axis=axes))
    return np.squeeze(m, axes).astype(x.dtype), v.astype(x.dtype)


_MOM_T = {"float16": (2e-2, 5e-3), "float32": (2e-5, 1e-5)}
case("moments", lambda x: nd.moments(x, axes=(0, 2)), lambda x: _moments(x, (0, 2)),
     (In(_S222),), FLOATS, tol=_MOM_T)
case("moments_keepdims", lambda x: nd.moments(x, axes=1, keepdims=True),
     lambda x: _moments(x, (1,), True), (In(S23),), FLOATS, tol=_MOM_T)
case("moments_every_axis", lambda x: nd.moments(x, axes=(0, 1)),
     lambda x: _moments(x, (0, 1)), (In(S23),), FLOATS, tol=_MOM_T)
case("moments_int", lambda x: nd.moments(x, axes=(1,)), lambda x: _int_moments(x, (1,)),
     (In((3, 5)),), ("int32", "int64"), grad=False)

# --- where: MXNet's 1-D condition selects rows -------------------------------------------------
case("where_row_condition", nd.where, lambda c, x, y: np.where(c[:, None] != 0, x, y),
     (In((2,), "mask", diff=False), In(S23), In(S23)), NUMERIC)
case("where_row_condition_square", nd.where,
     lambda c, x, y: np.where(c[:, None, None] != 0, x, y),
     (In((3,), "mask", diff=False), In((3, 3, 1)), In((3, 3, 1))), FLOATS)

# --- reductions that skip NaNs; shapes of full reductions -------------------------------------
_NAN = float("nan")


def _with_nans(m, x):
    return np.where(m != 0, x, np.nan)


case("nansum", lambda m, x: nd.nansum(nd.where(m, x, _NAN)),
     lambda m, x: np.atleast_1d(np.nansum(_with_nans(m, x))),
     (In(S23, "mask", diff=False), In(S23)), FLOATS)
case("nansum_axis", lambda m, x: nd.nansum(nd.where(m, x, _NAN), axis=1),
     lambda m, x: np.nansum(_with_nans(m, x), axis=1), (In(S23, "mask", diff=False), In(S23)),
     FLOATS)
case("nanprod_axes_keepdims",
     lambda m, x: nd.nanprod(nd.where(m, x, _NAN), axis=(0, 2), keepdims=True),
     lambda m, x: np.nanprod(_with_nans(m, x), axis=(0, 2), keepdims=True),
     (In(_S222, "mask", diff=False), In(_S222, "pos")), FLOATS)
case("nanprod_all", lambda m, x: nd.nanprod(nd.where(m, x, _NAN)),
     lambda m, x: np.atleast_1d(np.nanprod(_with_nans(m, x))),
     (In(S23, "mask", diff=False), In(S23, "pos")), FLOATS)
case("nansum_int", lambda x: nd.nansum(x, axis=0), lambda x: x.sum(axis=0), (In(S23),), INTS,
     grad=False)
case("nanprod_int", nd.nanprod, lambda x: np.atleast_1d(x.prod()), (In(S23, "nonzero"),), INTS,
     grad=False)
case("sum_1d_axis0", lambda x: nd.sum(x, axis=0), lambda x: np.atleast_1d(x.sum()), (In((5,)),),
     NUMERIC)
case("max_all_keepdims", lambda x: nd.max(x, keepdims=True),
     lambda x: x.max(keepdims=True), (In(_S222, "distinct"),), NUMERIC)
case("norm_l1_all", lambda x: nd.norm(x, ord=1), lambda x: np.atleast_1d(np.abs(x).sum()),
     (In(S23, "away0"),), FLOATS)
case("argmax_channel", nd.argmax_channel, lambda x: x.argmax(axis=1),
     (In(S234, "distinct"),), NUMERIC, grad=False)


# --- softmax_cross_entropy: summed over the batch, shape (1,) ------------------------------------
def _softmax_cross_entropy(x, label):
    s = x - x.max(axis=1, keepdims=True)
    logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    return np.atleast_1d(-logp[np.arange(x.shape[0]), label.astype(np.int64)].sum())


case("softmax_cross_entropy", nd.softmax_cross_entropy, _softmax_cross_entropy,
     (In((3, 4)), In((3,), "index", diff=False, arg=4)), FLOATS,
     tol={"float32": (1e-5, 1e-6)})

# --- finiteness checks and SoftmaxActivation ---------------------------------------------------
case("all_finite", nd.all_finite, lambda x: np.atleast_1d(np.isfinite(x).all()).astype(np.float32),
     (In(S23),), FLOATS, grad=False, out_dtype="float32")
case("multi_all_finite_with_inf", lambda a, b: nd.multi_all_finite(a, b * np.inf, num_arrays=2),
     lambda a, b: np.zeros(1, np.float32), (In(S23), In((4,), "nonzero")), FLOATS, grad=False,
     out_dtype="float32")
case("SoftmaxActivation_instance", nd.SoftmaxActivation,
     lambda x: np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True), (In(S234),), FLOATS, tol=_SM_T)
case("SoftmaxActivation_channel", lambda x: nd.SoftmaxActivation(x, mode="channel"),
     lambda x: np.exp(x) / np.exp(x).sum(axis=1, keepdims=True), (In(_S222),), FLOATS, tol=_SM_T)
