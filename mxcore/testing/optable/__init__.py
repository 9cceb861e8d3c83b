"""mxcore's own operator table: every core op as a ``Case`` (numpy reference, input
domains, dtypes, gradient flags). Op families keep their cases in modules of their own
(``conv``, ``linalg``, ``math_ops``...), which this package collects into ``CASES``.
``pytest --pyargs mxcore.testing.core --mxcore-device KIND`` runs the whole table on a
device; mxcore's ``tests/every_device`` runs it on every installed device."""
from __future__ import annotations

import math

import numpy as np
from scipy import special

import mxcore as mx
from mxcore.testing.table import (ALL, FLOATS, INTS, NUMERIC, TOLERANCES, Case, In, collector,
                                  make_input)

nd = mx.nd

__all__ = ["ALL", "BY_NAME", "CASES", "FLOATS", "INTS", "NUMERIC", "TOLERANCES", "Case", "In",
           "case", "make_input", "nd"]

# --- reference helpers ------------------------------------------------------------
def _cmp(fn):
    return lambda a, b: fn(a, b).astype(np.result_type(a))


def _int_div(a, b):
    if a.dtype.kind in "iu":
        return np.trunc(a / b).astype(a.dtype)
    return a / b


def _sc(fn, s, reverse=False):
    """Reference for MXNet scalar ops: the scalar takes the array's dtype."""
    def ref(x):
        sv = x.dtype.type(s)
        return fn(sv, x) if reverse else fn(x, sv)
    return ref


def _round_away(x):
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _gelu(x):
    return 0.5 * x * (1 + special.erf(x / math.sqrt(2)))


def _softmax(x, axis=-1, t=1.0):
    x = x / t
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x, axis=-1, t=1.0):
    x = x / t
    s = x - x.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def _pick(x, idx, axis=-1, keepdims=False):
    idx = np.clip(idx.astype(np.int64), 0, x.shape[axis] - 1)
    r = np.take_along_axis(x, np.expand_dims(idx, axis), axis)
    return r if keepdims else np.squeeze(r, axis)


def _one_hot(idx, depth):
    return (np.arange(depth) == idx.astype(np.int64)[..., None]).astype(np.float32)


def _argx(fn, axis):
    # MXNet 1.x: a reduction over every axis is shape (1,), never 0-d
    return lambda x: np.atleast_1d(fn(x, axis=axis)).astype(np.float32)


S23, S3, S21, S13 = (2, 3), (3,), (2, 1), (1, 3)
S234 = (2, 3, 4)

CASES: list = []
case = collector(CASES)


# --- unary --------------------------------------------------------------------------
for _name, _ref, _kind, _dtypes, _g2 in [
    ("negative", np.negative, "real", NUMERIC, True),
    ("abs", np.abs, "away0", NUMERIC, True),
    ("sign", np.sign, "away0", NUMERIC, True),
    ("square", np.square, "real", NUMERIC, True),
    ("exp", np.exp, "real", FLOATS, True),
    ("log", np.log, "pos", FLOATS, True),
    ("log1p", np.log1p, "pos", FLOATS, True),
    ("expm1", np.expm1, "real", FLOATS, True),
    ("sqrt", np.sqrt, "pos", FLOATS, True),
    ("rsqrt", lambda x: 1 / np.sqrt(x), "pos", FLOATS, True),
    ("reciprocal", lambda x: 1 / x, "nonzero", FLOATS, True),
    ("sin", np.sin, "real", FLOATS, True),
    ("cos", np.cos, "real", FLOATS, True),
    ("tanh", np.tanh, "real", FLOATS, True),
    ("sigmoid", special.expit, "real", FLOATS, True),
    ("relu", lambda x: np.maximum(x, 0), "away0", NUMERIC, True),
    ("softrelu", lambda x: np.logaddexp(0, x), "real", FLOATS, True),
    ("erf", special.erf, "real", FLOATS, True),
    ("gelu", _gelu, "real", FLOATS, True),
    ("floor", np.floor, "frac", FLOATS, True),
    ("ceil", np.ceil, "frac", FLOATS, True),
    ("round", _round_away, "frac", FLOATS, True),
]:
    case(_name, getattr(nd, _name), _ref, (In(S23, _kind),), _dtypes, grad2=_g2)
case("softplus_alias", nd.softplus, lambda x: np.logaddexp(0, x), (In(S23),))
case("leaky_relu", lambda x: nd.leaky_relu(x, slope=0.1),
     lambda x: np.where(x > 0, x, 0.1 * x), (In(S23, "away0"),))
case("method_exp", lambda x: x.exp(), np.exp, (In(S23),), ("float32", "float64"))

# --- binary with broadcasting ------------------------------------------------------------
_BIN = [
    ("add", nd.add, np.add, "real", "real", NUMERIC),
    ("subtract", nd.subtract, np.subtract, "real", "real", NUMERIC),
    ("multiply", nd.multiply, np.multiply, "real", "real", NUMERIC),
    ("divide", nd.divide, _int_div, "real", "nonzero", NUMERIC),
    ("power", nd.power, np.power, "pos", "real", FLOATS),
    ("maximum", nd.maximum, np.maximum, "distinct", "distinct", NUMERIC),
    ("minimum", nd.minimum, np.minimum, "distinct", "distinct", NUMERIC),
    ("mod", nd.mod, np.mod, "unit", "pos", FLOATS),
]
for _name, _fn, _ref, _ka, _kb, _dtypes in _BIN:
    case(_name, _fn, _ref, (In(S23, _ka), In(S23, _kb)), _dtypes)
    case(_name + "_bcast", _fn, _ref, (In(S21, _ka), In(S13, _kb)), _dtypes)
    case(_name + "_bcast_rank", _fn, _ref, (In(S23, _ka), In(S3, _kb)), _dtypes)
for _name, _ref in [("equal", np.equal), ("not_equal", np.not_equal), ("greater", np.greater),
                    ("greater_equal", np.greater_equal), ("less", np.less),
                    ("less_equal", np.less_equal)]:
    case(_name, getattr(nd, _name), _cmp(_ref), (In(S23, "index", arg=3), In(S13, "index", arg=3)),
         ALL, grad=False)
case("op_add", lambda a, b: a + b, np.add, (In(S23), In(S23)), NUMERIC)
case("op_sub", lambda a, b: a - b, np.subtract, (In(S23), In(S21)), NUMERIC)
case("op_mul", lambda a, b: a * b, np.multiply, (In(S23), In(S23)), NUMERIC)
case("op_div", lambda a, b: a / b, _int_div, (In(S23), In(S23, "nonzero")), NUMERIC)
case("op_pow", lambda a, b: a ** b, np.power, (In(S23, "pos"), In(S23)))
case("op_neg", lambda a: -a, np.negative, (In(S23),), NUMERIC)
case("op_gt", lambda a, b: a > b, _cmp(np.greater), (In(S23), In(S23)), NUMERIC, grad=False)

# --- scalar forms ----------------------------------------------------------------------------
for _name, _fn, _ref, _kind, _dtypes in [
    ("add_scalar", lambda x: x + 3, _sc(np.add, 3), "real", NUMERIC),
    ("radd_scalar", lambda x: 3 + x, _sc(np.add, 3), "real", NUMERIC),
    ("sub_scalar", lambda x: x - 2, _sc(np.subtract, 2), "real", NUMERIC),
    ("rsub_scalar", lambda x: 2 - x, _sc(np.subtract, 2, True), "real", NUMERIC),
    ("mul_scalar", lambda x: x * 3, _sc(np.multiply, 3), "real", NUMERIC),
    ("mul_scalar_float", lambda x: x * 1.5, _sc(np.multiply, 1.5), "real", FLOATS),
    ("div_scalar", lambda x: x / 4.0, _sc(np.divide, 4.0), "real", FLOATS),
    ("div_scalar_int", lambda x: x / 2, lambda x: _int_div(x, x.dtype.type(2)), "real", INTS),
    ("rdiv_scalar", lambda x: 2.0 / x, _sc(np.divide, 2.0, True), "nonzero", FLOATS),
    ("pow_scalar", lambda x: x ** 3, _sc(np.power, 3), "real", FLOATS),
    ("pow_scalar_frac", lambda x: x ** 0.5, _sc(np.power, 0.5), "pos", FLOATS),
    ("rpow_scalar", lambda x: 2.0 ** x, _sc(np.power, 2.0, True), "real", FLOATS),
    ("maximum_scalar", lambda x: nd.maximum(x, 0.5), _sc(np.maximum, 0.5), "away0", FLOATS),
    ("minimum_scalar", lambda x: nd.minimum(0.5, x), _sc(np.minimum, 0.5), "away0", FLOATS),
    ("mod_scalar", lambda x: x % 3.0, _sc(np.mod, 3.0), "unit", FLOATS),
    ("greater_scalar", lambda x: x > 1, _sc(_cmp(np.greater), 1),
     "real", NUMERIC),
    ("less_equal_scalar", lambda x: x <= 1, _sc(_cmp(np.less_equal), 1), "real", NUMERIC),
    ("equal_scalar", lambda x: x == 1, _sc(_cmp(np.equal), 1), "real", NUMERIC),
    ("rgreater_scalar", lambda x: nd.greater(1, x), _sc(_cmp(np.less), 1), "real", NUMERIC),
]:
    case(_name, _fn, _ref, (In(S23, _kind),), _dtypes,
         grad="greater" not in _name and "equal" not in _name)

case("clip", lambda x: nd.clip(x, -1.0, 1.0), lambda x: np.clip(x, -1, 1), (In(S23, "frac"),))
case("clip_int", lambda x: nd.clip(x, -2, 3), lambda x: np.clip(x, -2, 3), (In(S23),), INTS,
     grad=False)
case("where", nd.where, lambda c, x, y: np.where(c != 0, x, y),
     (In(S23, "mask", diff=False), In(S23), In(S23)), NUMERIC)
case("where_bcast", nd.where, lambda c, x, y: np.where(c != 0, x, y),
     (In(S23, "mask", diff=False), In(S13), In(S21)))

# --- reductions -------------------------------------------------------------------------------
for _red, _np in [("sum", np.sum), ("mean", np.mean), ("prod", np.prod), ("max", np.max),
                  ("min", np.min)]:
    _kind = {"prod": "pos", "max": "distinct", "min": "distinct"}.get(_red, "real")
    _dt = NUMERIC if _red in ("sum", "max", "min") else FLOATS
    _f = getattr(nd, _red)
    case(_red + "_all", _f, lambda x, _np=_np: np.asarray(_np(x)).reshape(1), (In(S234, _kind),),
         _dt)
    case(_red + "_axis1", lambda x, _f=_f: _f(x, axis=1),
         lambda x, _np=_np: _np(x, axis=1), (In(S234, _kind),), _dt)
    case(_red + "_axes_keep", lambda x, _f=_f: _f(x, axis=(0, 2), keepdims=True),
         lambda x, _np=_np: _np(x, axis=(0, 2), keepdims=True), (In(S234, _kind),), _dt)
    case(_red + "_exclude", lambda x, _f=_f: _f(x, axis=1, exclude=True),
         lambda x, _np=_np: _np(x, axis=(0, 2)), (In(S234, _kind),), _dt)
case("sum_method", lambda x: x.sum(axis=-1), lambda x: x.sum(axis=-1), (In(S234),))
case("norm_l2", nd.norm, lambda x: np.sqrt((x * x).sum()).reshape(1), (In(S234, "away0"),))
case("norm_l2_axis", lambda x: nd.norm(x, axis=1, keepdims=True),
     lambda x: np.sqrt((x * x).sum(axis=1, keepdims=True)), (In(S234, "away0"),))
case("norm_l1_axis", lambda x: nd.norm(x, ord=1, axis=(0, 2)),
     lambda x: np.abs(x).sum(axis=(0, 2)), (In(S234, "away0"),))
for _arg, _np in [("argmax", np.argmax), ("argmin", np.argmin)]:
    case(_arg + "_axis", lambda x, _a=_arg: getattr(nd, _a)(x, axis=1), _argx(_np, 1),
         (In(S234, "distinct"),), NUMERIC, grad=False, out_dtype="float32")
    case(_arg + "_all", lambda x, _a=_arg: getattr(nd, _a)(x), _argx(_np, None),
         (In(S234, "distinct"),), NUMERIC, grad=False, out_dtype="float32")

case("histogram_counts", lambda x: nd.histogram(x, bins=5, range=(-2.0, 2.0))[0],
     lambda x: np.histogram(x, 5, range=(-2.0, 2.0))[0], (In(S234),), grad=False,
     out_dtype="int64")
case("histogram_edges", lambda x, b: nd.histogram(x, bins=nd.sort(b))[0],
     lambda x, b: np.histogram(x, np.sort(b))[0], (In(S234), In((4,), "distinct")),
     ("float32", "float64"), grad=False, out_dtype="int64")
case("index_array_axes", lambda x: nd.contrib.index_array(x, axes=(2, 0)),
     lambda x: np.moveaxis(np.indices(x.shape), 0, -1)[..., [2, 0]], (In(S234),), ALL,
     grad=False, out_dtype="int64")

# --- linear algebra ----------------------------------------------------------------------------
_MM_T = {"float32": (1e-4, 1e-5), "float16": (2e-2, 1e-2)}
case("dot", nd.dot, np.dot, (In((3, 4)), In((4, 5))), NUMERIC, tol=_MM_T)
case("dot_ta", lambda a, b: nd.dot(a, b, transpose_a=True), lambda a, b: a.T @ b,
     (In((4, 3)), In((4, 5))), tol=_MM_T)
case("dot_tb", lambda a, b: nd.dot(a, b, transpose_b=True), lambda a, b: a @ b.T,
     (In((3, 4)), In((5, 4))), tol=_MM_T)
case("dot_tab", lambda a, b: nd.dot(a, b, True, True), lambda a, b: a.T @ b.T,
     (In((4, 3)), In((5, 4))), tol=_MM_T)
case("dot_vec", nd.dot, lambda a, b: np.dot(a, b).reshape(1), (In((4,)), In((4,))), tol=_MM_T)
case("dot_vec_mat", nd.dot, np.dot, (In((4,)), In((4, 3))), tol=_MM_T)
case("dot_3d", nd.dot, lambda a, b: np.tensordot(a, b, axes=1), (In((2, 3, 4)), In((4, 2))),
     tol=_MM_T)
case("batch_dot", nd.batch_dot, np.matmul, (In((2, 3, 4)), In((2, 4, 5))), NUMERIC, tol=_MM_T)
for _ta in (False, True):
    for _tb in (False, True):
        if _ta or _tb:
            case(f"batch_dot_t{int(_ta)}{int(_tb)}",
                 lambda a, b, _ta=_ta, _tb=_tb: nd.batch_dot(a, b, _ta, _tb),
                 lambda a, b, _ta=_ta, _tb=_tb: np.matmul(a.swapaxes(1, 2) if _ta else a,
                                                          b.swapaxes(1, 2) if _tb else b),
                 (In((2, 4, 3) if _ta else (2, 3, 4)), In((2, 5, 4) if _tb else (2, 4, 5))),
                 tol=_MM_T)
case("matmul", nd.matmul, np.matmul, (In((3, 4)), In((4, 2))), NUMERIC, tol=_MM_T)
case("matmul_bcast", nd.matmul, np.matmul, (In((2, 1, 3, 4)), In((3, 4, 2))), tol=_MM_T)
case("matmul_vec", nd.matmul, np.matmul, (In((2, 3, 4)), In((4,))), tol=_MM_T)
case("matmul_vec_left", nd.matmul, np.matmul, (In((4,)), In((2, 4, 3))), tol=_MM_T)
case("op_matmul", lambda a, b: a @ b, np.matmul, (In((3, 4)), In((4, 2))), tol=_MM_T)

# --- shape ------------------------------------------------------------------------------------
case("reshape", lambda x: nd.reshape(x, (4, 6)), lambda x: x.reshape(4, 6), (In(S234),), ALL)
case("reshape_codes_0_m1", lambda x: nd.reshape(x, (0, -1)), lambda x: x.reshape(2, 12),
     (In(S234),), ALL)
case("reshape_code_m3", lambda x: nd.reshape(x, (-3, 4)), lambda x: x.reshape(6, 4), (In(S234),))
case("reshape_code_m4", lambda x: nd.reshape(x, (-4, 1, 2, -2)), lambda x: x.reshape(1, 2, 3, 4),
     (In(S234),))
case("reshape_code_m2b", lambda x: nd.reshape(x, (0, -2)), lambda x: x, (In(S234),))
case("method_reshape", lambda x: x.reshape(3, -1), lambda x: x.reshape(3, 8), (In(S234),))
case("transpose", nd.transpose, lambda x: x.transpose(), (In(S234),), ALL)
case("transpose_axes", lambda x: nd.transpose(x, (1, 0, 2)), lambda x: x.transpose(1, 0, 2),
     (In(S234),), ALL)
case("T", lambda x: x.T, lambda x: x.T, (In(S23),))
case("swapaxes", lambda x: nd.swapaxes(x, 0, 2), lambda x: x.swapaxes(0, 2), (In(S234),))
case("expand_dims", lambda x: nd.expand_dims(x, 1), lambda x: np.expand_dims(x, 1), (In(S23),),
     ALL)
case("expand_dims_neg", lambda x: nd.expand_dims(x, -1), lambda x: x[..., None], (In(S23),))
case("squeeze", nd.squeeze, np.squeeze, (In((2, 1, 3, 1)),), ALL)
case("squeeze_axis", lambda x: nd.squeeze(x, axis=1), lambda x: np.squeeze(x, 1),
     (In((2, 1, 3, 1)),))
case("flatten", nd.flatten, lambda x: x.reshape(2, -1), (In(S234),), ALL)
case("broadcast_to", lambda x: nd.broadcast_to(x, (2, 3, 3)),
     lambda x: np.broadcast_to(x, (2, 3, 3)), (In(S13),), ALL)
case("broadcast_to_zero_code", lambda x: nd.broadcast_to(x, (4, 0, 3)),
     lambda x: np.broadcast_to(x, (4, 2, 3)), (In(S21),))
case("concat", lambda a, b, c: nd.concat(a, b, c, dim=1),
     lambda a, b, c: np.concatenate([a, b, c], 1), (In((2, 1)), In((2, 3)), In((2, 2))), ALL)
case("concat_dim0", lambda a, b: nd.concat(a, b, dim=0),
     lambda a, b: np.concatenate([a, b], 0), (In(S23), In((1, 3))))
case("stack", lambda a, b: nd.stack(a, b, axis=1), lambda a, b: np.stack([a, b], 1),
     (In(S23), In(S23)), ALL)
case("split", lambda x: tuple(nd.split(x, 3, axis=1)), lambda x: tuple(np.split(x, 3, 1)),
     (In((2, 3, 2)),), ALL)
case("split_squeeze", lambda x: tuple(nd.split(x, 2, axis=0, squeeze_axis=True)),
     lambda x: (x[0], x[1]), (In(S23),))
case("split_one_used", lambda x: nd.split(x, 3, axis=1)[1], lambda x: x[:, 1:2], (In((2, 3)),))
case("tile", lambda x: nd.tile(x, (2, 1, 2)), lambda x: np.tile(x, (2, 1, 2)), (In(S23),), ALL)
case("tile_short_reps", lambda x: nd.tile(x, (3,)), lambda x: np.tile(x, 3), (In(S23),))
case("repeat", lambda x: nd.repeat(x, 2, axis=1), lambda x: np.repeat(x, 2, 1), (In(S23),), ALL)
case("repeat_flat", lambda x: nd.repeat(x, 3), lambda x: np.repeat(x, 3), (In(S23),))
for _mode in ("constant", "edge", "reflect"):
    case(f"pad_{_mode}", lambda x, _m=_mode: nd.pad(x, _m, (0, 0, 1, 2, 2, 1)),
         lambda x, _m=_mode: np.pad(x, ((0, 0), (1, 2), (2, 1)), mode=_m), (In(S234),))
case("pad_constant_value", lambda x: nd.pad(x, "constant", (1, 1, 0, 2), constant_value=2.5),
     lambda x: np.pad(x, ((1, 1), (0, 2)), constant_values=2.5), (In(S23),))

# --- indexing -------------------------------------------------------------------------------
case("getitem_basic", lambda x: x[1:, ::2], lambda x: x[1:, ::2], (In((3, 4)),), ALL)
case("getitem_int", lambda x: x[1], lambda x: x[1], (In(S234),), ALL)
case("getitem_mixed", lambda x: x[:, 1, None, 1:3], lambda x: x[:, 1, None, 1:3], (In(S234),))
case("getitem_ellipsis", lambda x: x[..., 2], lambda x: x[..., 2], (In(S234),))
case("getitem_advanced_dups", lambda x: x[[0, 2, 0]], lambda x: x[[0, 2, 0]], (In((3, 4)),), ALL)
case("getitem_advanced_nd", lambda x: x[nd.array([1, 0, 1], dtype="int64"), 1:],
     lambda x: x[[1, 0, 1], 1:], (In(S23),))
case("getitem_bool_mask", lambda x: x[np.array([True, False, True])],
     lambda x: x[np.array([True, False, True])], (In((3, 2)),))
case("slice", lambda x: nd.slice(x, (0, 1), (2, None)), lambda x: x[0:2, 1:], (In(S234),), ALL)
case("slice_step", lambda x: nd.slice(x, (None, 3), (None, 0), (None, -2)),
     lambda x: x[:, 3:0:-2], (In((2, 5)),))
case("slice_axis", lambda x: nd.slice_axis(x, 2, 1, 3), lambda x: x[:, :, 1:3], (In(S234),), ALL)
case("slice_axis_none_end", lambda x: nd.slice_axis(x, 1, -2, None), lambda x: x[:, -2:],
     (In(S234),))
case("take", lambda a, i: nd.take(a, i), lambda a, i: np.take(a, i.astype(int), 0),
     (In((4, 3)), In((2, 3), "index", "int64", False, 4)), NUMERIC)
case("take_axis1_float_idx", lambda a, i: nd.take(a, i, axis=1),
     lambda a, i: np.take(a, i.astype(int), 1), (In((2, 4)), In((5,), "index", "float32", False, 4)))
case("take_clip", lambda a, i: nd.take(a, i), lambda a, i: np.take(a, np.clip(i.astype(int), 0, 3), 0),
     (In((4, 2)), In((3,), "index", "int32", False, 9)))
case("take_wrap", lambda a, i: nd.take(a, i, mode="wrap"),
     lambda a, i: np.take(a, i.astype(int) % 4, 0), (In((4, 2)), In((5,), "index", "int32", False, 9)))
case("pick", nd.pick, _pick, (In((3, 4)), In((3,), "index", "float32", False, 4)), NUMERIC)
case("pick_axis0_keep", lambda x, i: nd.pick(x, i, axis=0, keepdims=True),
     lambda x, i: _pick(x, i, 0, True), (In((3, 4)), In((4,), "index", "int64", False, 3)))
case("one_hot", lambda i: nd.one_hot(i, 5), lambda i: _one_hot(i, 5),
     (In((2, 3), "index", None, False, 5),), ("float32", "int32", "int64"), grad=False,
     out_dtype="float32")

# --- nn -------------------------------------------------------------------------------------
_SM_T = {"float32": (1e-5, 1e-6)}
case("softmax", nd.softmax, _softmax, (In(S234),), tol=_SM_T)
case("softmax_axis0_temp", lambda x: nd.softmax(x, axis=0, temperature=2.0),
     lambda x: _softmax(x, 0, 2.0), (In(S234),), tol=_SM_T)
case("log_softmax", nd.log_softmax, _log_softmax, (In(S234),), tol=_SM_T)
case("log_softmax_axis1_temp", lambda x: nd.log_softmax(x, axis=1, temperature=0.5),
     lambda x: _log_softmax(x, 1, 0.5), (In(S234),), tol=_SM_T)

def _fc(x, w, b=None, flatten=True):
    x2 = x.reshape(x.shape[0], -1) if flatten else x
    out = x2 @ w.T
    return out if b is None else out + b


def _ce(x, label, axis=-1):
    lp = _log_softmax(x, axis)
    idx = np.expand_dims(label.astype(np.int64), axis)
    return -np.take_along_axis(lp, idx, axis).squeeze(axis)


def _elu(x, a):
    return np.where(x > 0, x, a * np.expm1(x))


case("fully_connected", nd.FullyConnected, _fc, (In((4, 3, 2)), In((5, 6)), In((5,))),
     tol=_MM_T)
case("fully_connected_no_bias", lambda x, w: nd.FullyConnected(x, w, no_bias=True),
     lambda x, w: _fc(x, w), (In((4, 6)), In((3, 6))), tol=_MM_T)
case("fully_connected_no_flatten", lambda x, w, b: nd.FullyConnected(x, w, b, flatten=False),
     lambda x, w, b: _fc(x, w, b, False), (In((2, 3, 4)), In((5, 4)), In((5,))), tol=_MM_T)
# fully_connected's fused activations (gradients through the kept output)
for _act, _aref in [("relu", lambda v: np.maximum(v, 0)), ("sigmoid", special.expit),
                    ("tanh", np.tanh), ("softrelu", lambda v: np.logaddexp(0, v)),
                    ("softsign", lambda v: v / (1 + np.abs(v)))]:
    case(f"fully_connected_{_act}",
         lambda x, w, b, _a=_act: nd.FullyConnected(x, w, b, act_type=_a),
         lambda x, w, b, _r=_aref: _r(_fc(x, w, b)), (In((4, 3, 2)), In((5, 6)), In((5,))),
         tol=_MM_T)
case("fully_connected_relu_no_bias",
     lambda x, w: nd.FullyConnected(x, w, no_bias=True, act_type="relu"),
     lambda x, w: np.maximum(_fc(x, w), 0), (In((4, 6)), In((3, 6))), tol=_MM_T)
_FC_DERIV = {None: lambda g, y: g, "relu": lambda g, y: g * (y > 0),
             "sigmoid": lambda g, y: g * y * (1 - y), "tanh": lambda g, y: g * (1 - y * y),
             "softrelu": lambda g, y: g * -np.expm1(-y),
             "softsign": lambda g, y: g * (1 - np.abs(y)) ** 2}


def _fc_backward(g, x, w, y, act, grads=(True, True, True)):
    d = _FC_DERIV[act](g.reshape(-1, w.shape[0]), y.reshape(-1, w.shape[0]))
    out = ((d @ w).reshape(x.shape), d.T @ x.reshape(-1, w.shape[1]), d.sum(0))
    return tuple(v for v, wanted in zip(out, grads) if wanted)


for _act in _FC_DERIV:
    case(f"fully_connected_backward_{_act}",
         lambda g, x, w, y, _a=_act: nd.fully_connected_backward(g, x, w, y, act_type=_a),
         lambda g, x, w, y, _a=_act: _fc_backward(g, x, w, y, _a),
         (In((4, 5)), In((4, 3, 2)), In((5, 6)), In((4, 5), "unit")), grad=False, tol=_MM_T)
case("fully_connected_backward_weight_only",
     lambda g, x, w, y: nd.fully_connected_backward(g, x, w, y, no_bias=True, flatten=False,
                                                    act_type="relu", grads=(0, 1, 0)),
     lambda g, x, w, y: _fc_backward(g, x, w, y, "relu", (0, 1, 0)),
     (In((2, 3, 5)), In((2, 3, 4)), In((5, 4)), In((2, 3, 5), "away0")), grad=False, tol=_MM_T)
# --- convolution and pooling: direct loops over output positions (tiny shapes) ----
def _conv_ref(x, w, b=None, stride=None, pad=None, dilate=None, groups=1):
    nd_ = x.ndim - 2
    stride, pad, dilate = stride or (1,) * nd_, pad or (0,) * nd_, dilate or (1,) * nd_
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in pad])
    f_, cg = w.shape[:2]
    k = w.shape[2:]
    out = [(xp.shape[2 + i] - dilate[i] * (k[i] - 1) - 1) // stride[i] + 1 for i in range(nd_)]
    y = np.zeros((x.shape[0], f_, *out))
    for n in range(x.shape[0]):
        for f in range(f_):
            g = f // (f_ // groups)
            for o in np.ndindex(*out):
                acc = 0.0 if b is None else b[f]
                for c in range(cg):
                    for kk in np.ndindex(*k):
                        at = tuple(o[i] * stride[i] + kk[i] * dilate[i] for i in range(nd_))
                        acc += xp[(n, g * cg + c) + at] * w[(f, c) + kk]
                y[(n, f) + o] = acc
    return y


def _pool_ref(x, kernel, stride=None, pad=None, pool_type="max", full=False,
              include_pad=True, p=2):
    nd_ = x.ndim - 2
    stride, pad = stride or (1,) * nd_, pad or (0,) * nd_
    sp = x.shape[2:]
    out = []
    for i in range(nd_):
        span = sp[i] + 2 * pad[i] - kernel[i]
        out.append((-(-span // stride[i]) if full else span // stride[i]) + 1)
    y = np.zeros(x.shape[:2] + tuple(out))
    for nc in np.ndindex(*x.shape[:2]):
        for o in np.ndindex(*out):
            lo = [o[i] * stride[i] - pad[i] for i in range(nd_)]
            hi = [lo[i] + kernel[i] for i in range(nd_)]
            # MXNet: avg counts the window clipped to the padded input, or to the input
            inner = tuple(slice(max(lo[i], 0), min(hi[i], sp[i])) for i in range(nd_))
            vals = x[nc + inner]
            if pool_type == "max":
                y[nc + o] = vals.max()
            elif pool_type == "sum":
                y[nc + o] = vals.sum()
            elif pool_type == "lp":
                y[nc + o] = (vals ** p).sum() ** (1.0 / p)
            else:
                if include_pad:
                    count = np.prod([min(hi[i], sp[i] + pad[i]) - lo[i] for i in range(nd_)])
                else:
                    count = vals.size
                y[nc + o] = vals.sum() / count
    return y


_CONV_T = {"float32": (1e-4, 1e-5), "float16": (2e-2, 2e-2), "bfloat16": (3e-2, 3e-2)}
case("convolution_2d", lambda x, w, b: nd.Convolution(x, w, b, kernel=(3, 3), num_filter=4),
     _conv_ref, (In((2, 3, 5, 5)), In((4, 3, 3, 3)), In((4,))), grad2=False, tol=_CONV_T)
case("convolution_2d_stride_pad_dilate",
     lambda x, w, b: nd.Convolution(x, w, b, kernel=(2, 3), num_filter=3, stride=(2, 1),
                                    pad=(1, 2), dilate=(2, 1)),
     lambda x, w, b: _conv_ref(x, w, b, (2, 1), (1, 2), (2, 1)),
     (In((2, 2, 6, 5)), In((3, 2, 2, 3)), In((3,))), grad2=False, tol=_CONV_T)
case("convolution_grouped_no_bias",
     lambda x, w: nd.Convolution(x, w, kernel=(3, 3), num_filter=4, num_group=2,
                                 no_bias=True, pad=(1, 1)),
     lambda x, w: _conv_ref(x, w, None, None, (1, 1), None, 2),
     (In((2, 4, 4, 4)), In((4, 2, 3, 3))), grad2=False, tol=_CONV_T)
case("convolution_depthwise",
     lambda x, w, b: nd.Convolution(x, w, b, kernel=(3, 3), num_filter=3, num_group=3,
                                    stride=(2, 2)),
     lambda x, w, b: _conv_ref(x, w, b, (2, 2), None, None, 3),
     (In((1, 3, 5, 5)), In((3, 1, 3, 3)), In((3,))), grad2=False, tol=_CONV_T)
case("convolution_1d",
     lambda x, w, b: nd.Convolution(x, w, b, kernel=(3,), num_filter=2, stride=2, pad=1),
     lambda x, w, b: _conv_ref(x, w, b, (2,), (1,)),
     (In((2, 3, 7)), In((2, 3, 3)), In((2,))), grad2=False, tol=_CONV_T)
case("convolution_3d",
     lambda x, w, b: nd.Convolution(x, w, b, kernel=(2, 2, 2), num_filter=2, pad=(1, 0, 1)),
     lambda x, w, b: _conv_ref(x, w, b, None, (1, 0, 1)),
     (In((1, 2, 3, 3, 3)), In((2, 2, 2, 2, 2)), In((2,))), grad2=False, tol=_CONV_T)
case("convolution_nhwc",
     lambda x, w, b: nd.Convolution(x, w, b, kernel=(3, 3), num_filter=2, layout="NHWC"),
     lambda x, w, b: _conv_ref(x.transpose(0, 3, 1, 2), w.transpose(0, 3, 1, 2), b)
     .transpose(0, 2, 3, 1),
     (In((2, 5, 5, 3)), In((2, 3, 3, 3)), In((2,))), grad2=False, tol=_CONV_T)
for _pt in ("max", "avg", "sum", "lp"):
    case(f"pooling_{_pt}_2d",
         lambda x, _p=_pt: nd.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type=_p),
         lambda x, _p=_pt: _pool_ref(x, (2, 2), (2, 2), pool_type=_p),
         (In((2, 3, 5, 4), "distinct" if _pt == "max" else ("pos" if _pt == "lp" else "real")),),
         grad2=False, tol=_CONV_T)
case("pooling_max_pad_full_3x3s2",
     lambda x: nd.Pooling(x, kernel=(3, 3), stride=(2, 2), pad=(1, 1),
                          pooling_convention="full"),
     lambda x: _pool_ref(x, (3, 3), (2, 2), (1, 1), full=True),
     (In((1, 2, 6, 5), "distinct"),), grad2=False, tol=_CONV_T)
case("pooling_avg_pad_full",
     lambda x: nd.Pooling(x, kernel=(3, 2), stride=(2, 2), pad=(1, 1), pool_type="avg",
                          pooling_convention="full"),
     lambda x: _pool_ref(x, (3, 2), (2, 2), (1, 1), "avg", full=True),
     (In((2, 2, 6, 5)),), grad2=False, tol=_CONV_T)
case("pooling_avg_exclude_pad",
     lambda x: nd.Pooling(x, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="avg",
                          count_include_pad=False),
     lambda x: _pool_ref(x, (3, 3), (2, 2), (1, 1), "avg", include_pad=False),
     (In((2, 2, 5, 5)),), grad2=False, tol=_CONV_T)
case("pooling_global_avg", lambda x: nd.Pooling(x, global_pool=True, pool_type="avg",
                                                kernel=(1, 1)),
     lambda x: _pool_ref(x, x.shape[2:], pool_type="avg"), (In((2, 3, 4, 3)),),
     grad2=False, tol=_CONV_T)
case("pooling_global_max_1d", lambda x: nd.Pooling(x, global_pool=True),
     lambda x: _pool_ref(x, x.shape[2:]), (In((2, 3, 5), "distinct"),), grad2=False,
     tol=_CONV_T)
case("pooling_max_3d", lambda x: nd.Pooling(x, kernel=(2, 2, 2), stride=(1, 2, 2)),
     lambda x: _pool_ref(x, (2, 2, 2), (1, 2, 2)), (In((1, 2, 3, 4, 4), "distinct"),),
     grad2=False, tol=_CONV_T)
case("pooling_avg_1d_nwc",
     lambda x: nd.Pooling(x, kernel=(3,), stride=(2,), pool_type="avg", layout="NWC"),
     lambda x: _pool_ref(x.transpose(0, 2, 1), (3,), (2,), pool_type="avg")
     .transpose(0, 2, 1), (In((2, 7, 3)),), grad2=False, tol=_CONV_T)
# --- batch normalisation ----------------------------------------------------------
def _bn_ref(x, g, b, m, v, axis=1, eps=1e-3, batch=False, fix_gamma=False):
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    red = tuple(i for i in range(x.ndim) if i != axis % x.ndim)
    if batch:
        m, v = x.mean(axis=red), x.var(axis=red)
    g = np.ones_like(g) if fix_gamma else g
    return (x - m.reshape(shape)) / np.sqrt(v.reshape(shape) + eps) * g.reshape(shape) \
        + b.reshape(shape)


def _bn_train(*args, **kw):
    with mx.autograd.train_mode():
        return nd.BatchNorm(*args, **kw)


_BN_IN = (In((4, 3, 2, 2)), In((3,)), In((3,)), In((3,), diff=False),
          In((3,), "pos", diff=False))
_BN_T = {"float16": (2e-2, 2e-2), "bfloat16": (3e-2, 3e-2), "float32": (1e-4, 1e-5)}
case("batch_norm_global_stats",
     lambda x, g, b, m, v: nd.BatchNorm(x, g, b, m, v, fix_gamma=False, use_global_stats=True),
     _bn_ref, _BN_IN, grad2=False, tol=_BN_T)
def _bn_predict(*args, **kw):
    with mx.autograd.predict_mode():
        return nd.BatchNorm(*args, **kw)


case("batch_norm_moving_stats_in_predict_mode",
     lambda x, g, b, m, v: _bn_predict(x, g, b, m, v, fix_gamma=False),
     _bn_ref, _BN_IN, grad2=False, tol=_BN_T)
case("batch_norm_training",
     lambda x, g, b, m, v: _bn_train(x, g, b, m, v, fix_gamma=False, eps=1e-5),
     lambda x, g, b, m, v: _bn_ref(x, g, b, m, v, eps=1e-5, batch=True),
     (In((4, 3, 2), "distinct"),) + _BN_IN[1:], grad2=False, tol=_BN_T)
case("batch_norm_training_fix_gamma_last_axis",
     lambda x, g, b, m, v: _bn_train(x, g, b, m, v, axis=-1),
     lambda x, g, b, m, v: _bn_ref(x, g, b, m, v, axis=-1, batch=True, fix_gamma=True),
     (In((5, 2, 3), "distinct"), In((3,)), In((3,)), In((3,), diff=False),
      In((3,), "pos", diff=False)), grad2=False, tol=_BN_T)
case("softmax_ce_loss", nd.softmax_ce_loss, _ce,
     (In((4, 5)), In((4,), "index", "float32", False, 5)), tol=_SM_T)
case("softmax_ce_loss_axis0", lambda x, i: nd.softmax_ce_loss(x, i, axis=0),
     lambda x, i: _ce(x, i, 0), (In((5, 3)), In((3,), "index", "int32", False, 5)), tol=_SM_T)


def _ce_with_grad(x, label, g, axis=-1):
    """The loss and g * (softmax - one_hot) along ``axis``."""
    p = np.exp(_log_softmax(x, axis))
    np.put_along_axis(p, np.expand_dims(label.astype(np.int64), axis),
                      np.take_along_axis(p, np.expand_dims(label.astype(np.int64), axis),
                                         axis) - 1, axis)
    return _ce(x, label, axis), p * np.expand_dims(g, axis)


case("softmax_ce_loss_with_grad", nd.softmax_ce_loss_with_grad, _ce_with_grad,
     (In((4, 5)), In((4,), "index", "int32", False, 5), In((4,))), grad=False, tol=_SM_T)
case("softmax_ce_loss_with_grad_axis0",
     lambda x, i, g: nd.softmax_ce_loss_with_grad(x, i, g, axis=0),
     lambda x, i, g: _ce_with_grad(x, i, g, 0),
     (In((5, 3)), In((3,), "index", "float32", False, 5), In((3,))), grad=False, tol=_SM_T)


def _layer_norm(x, g, b, axis=-1, eps=1e-5):
    mean = x.mean(axis=axis, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axis, keepdims=True)
    shape = [1] * x.ndim
    shape[axis] = -1
    return (x - mean) / np.sqrt(var + eps) * g.reshape(shape) + b.reshape(shape)


_LN_T = {"float16": (2e-2, 1e-2), "float32": (1e-4, 1e-5), "bfloat16": (5e-2, 3e-2)}
case("layer_norm", nd.LayerNorm, _layer_norm, (In((4, 5)), In((5,)), In((5,))), tol=_LN_T)
case("layer_norm_axis1_eps", lambda x, g, b: nd.LayerNorm(x, g, b, axis=1, eps=1e-3),
     lambda x, g, b: _layer_norm(x, g, b, 1, 1e-3), (In(S234), In((3,)), In((3,))), tol=_LN_T)


def _layer_norm_backward(dy, x, g, axis=-1, eps=1e-5):
    """(dx, dgamma, dbeta) of _layer_norm, from x_hat's definition."""
    axis %= x.ndim
    n = x.shape[axis]
    shape = [1] * x.ndim
    shape[axis] = -1
    xc = x - x.mean(axis=axis, keepdims=True)
    rstd = 1 / np.sqrt((xc ** 2).mean(axis=axis, keepdims=True) + eps)
    xhat = xc * rstd
    dxhat = dy * g.reshape(shape)
    dx = rstd / n * (n * dxhat - dxhat.sum(axis=axis, keepdims=True)
                     - xhat * (dxhat * xhat).sum(axis=axis, keepdims=True))
    others = tuple(i for i in range(x.ndim) if i != axis)
    return dx, (dy * xhat).sum(axis=others), dy.sum(axis=others)


# the fused first-order backward (not differentiable: second order records the composed form)
case("layer_norm_backward", nd.layer_norm_backward, _layer_norm_backward,
     (In((4, 5)), In((4, 5)), In((5,))), tol=_LN_T, grad=False)
case("layer_norm_backward_axis1_eps",
     lambda dy, x, g: nd.layer_norm_backward(dy, x, g, axis=1, eps=1e-3),
     lambda dy, x, g: _layer_norm_backward(dy, x, g, 1, 1e-3),
     (In(S234), In(S234), In((3,))), tol=_LN_T, grad=False)
case("layer_norm_backward_1d", nd.layer_norm_backward, _layer_norm_backward,
     (In((6,)), In((6,)), In((6,))), tol=_LN_T, grad=False)
case("activation_softsign", lambda x: nd.Activation(x, "softsign"), lambda x: x / (1 + np.abs(x)),
     (In(S23, "away0"),))
case("activation_tanh", lambda x: nd.Activation(x, act_type="tanh"), np.tanh, (In(S23),))
case("leakyrelu_elu", lambda x: nd.LeakyReLU(x, act_type="elu", slope=0.7),
     lambda x: _elu(x, 0.7), (In(S23, "away0"),))
case("leakyrelu_selu", lambda x: nd.LeakyReLU(x, act_type="selu"),
     lambda x: 1.0507009873554805 * _elu(x, 1.6732632423543772), (In(S23, "away0"),))
case("leakyrelu_prelu", lambda x, g: nd.LeakyReLU(x, g, act_type="prelu"),
     lambda x, g: np.where(x > 0, x, g.reshape(1, 3, 1) * x), (In(S234, "away0"), In((3,))))

# --- creation / copies -------------------------------------------------------------------------
case("zeros_like", nd.zeros_like, np.zeros_like, (In(S23),), ALL, grad=False)
case("ones_like", nd.ones_like, np.ones_like, (In(S23),), ALL, grad=False)
case("copy", nd.copy, np.copy, (In(S23),), ALL)
case("astype_f64", lambda x: x.astype("float64"), lambda x: x.astype(np.float64), (In(S23),),
     ("float32", "float64"), out_dtype="float64")
case("cast_to_f32", lambda x: nd.cast(x, "float32"), lambda x: x.astype(np.float32), (In(S23),),
     ("float64",), out_dtype="float32", grad=False)
case("cast_to_int", lambda x: nd.cast(x, "int32"), lambda x: x.astype(np.int32), (In(S23),),
     FLOATS, grad=False, out_dtype="int32")

# --- composites (exercise the tape across several ops) ---------------------------------------
case("composite_mlp", lambda x, w, b: nd.relu(nd.dot(x, w) + b).sum(axis=1),
     lambda x, w, b: np.maximum(x @ w + b, 0).sum(axis=1), (In((4, 3)), In((3, 2)), In((2,))),
     tol=_MM_T, grad2=False)
case("composite_reuse", lambda x: x * x + nd.exp(x) * x, lambda x: x * x + np.exp(x) * x,
     (In(S23),))
case("composite_softmax_ce", lambda x, i: -nd.pick(nd.log_softmax(x), i).mean(),
     lambda x, i: np.asarray(-_pick(_log_softmax(x), i).mean()).reshape(1),
     (In((4, 5)), In((4,), "index", "float32", False, 5)))

# op families whose cases live in modules of their own (each calls case() on import)
from mxcore.testing.optable import (conv, ctc, linalg, math_ops, norm,  # noqa: E402,I001
                                    ordering, random_ops, rnn, sampling)

for _family in (conv, linalg, math_ops, norm, ordering, random_ops, rnn, ctc, sampling):
    CASES.extend(_family.CASES)

BY_NAME = {c.name: c for c in CASES}
assert len(BY_NAME) == len(CASES), "duplicate case names"
