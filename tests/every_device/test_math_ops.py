"""Elementwise math, small nn ops and reductions beyond the op table: MXNet 1.9.1's
particular semantics (rint's ties, reductions of shape (1,), where's row condition,
integer moments, logical ops' dtypes, zero gradients of rounding ops) and clear errors.
Expected values were checked against MXNet 1.9.1."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import special

import mxcore as mx
from mxcore.base import MXCoreError, OperatorError

nd = mx.nd


def _a(values, device, dtype="float32"):
    return nd.array(np.asarray(values), ctx=device, dtype=dtype)


def _grad(fn, *arrays, head=None):
    """Gradients of ``fn(*arrays)`` (backward with ``head``, default ones)."""
    for a in arrays:
        a.attach_grad()
    with mx.autograd.record():
        y = fn(*arrays)
    y.backward(head)
    return [a.grad.asnumpy() for a in arrays]


# --- rounding ------------------------------------------------------------------------------
def test_rint_ties_go_down_as_in_mxnet(device):
    x = _a([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.6, -2.4], device)
    # MXNet's rint takes floor on a tie (not numpy's round-half-to-even)
    np.testing.assert_array_equal(nd.rint(x).asnumpy(), [-3, -2, -1, 0, 1, 2, 3, -2])
    np.testing.assert_array_equal(nd.round(x).asnumpy(), [-3, -2, -1, 1, 2, 3, 3, -2])
    np.testing.assert_array_equal(nd.fix(x).asnumpy(), [-2, -1, 0, 0, 1, 2, 2, -2])
    np.testing.assert_array_equal(nd.trunc(x).asnumpy(), nd.fix(x).asnumpy())


@pytest.mark.parametrize("dtype", ["int32", "int8", "uint8", "int64"])
def test_rounding_keeps_integers_and_their_dtype(device, dtype):
    x = _a([[0, 3, 7]], device, dtype)
    for name in ("floor", "ceil", "round", "rint", "fix", "trunc"):
        y = getattr(nd, name)(x)
        assert y.dtype == np.dtype(dtype), name
        np.testing.assert_array_equal(y.asnumpy(), [[0, 3, 7]])


@pytest.mark.parametrize("name", ["rint", "fix", "trunc", "floor", "logical_not", "sign"])
def test_rounding_and_logical_ops_have_zero_gradient(device, name):
    x = _a([0.3, -1.7, 2.5], device)
    g, = _grad(lambda v: getattr(nd, name)(v) + v * 2.0, x)
    np.testing.assert_array_equal(g, [2.0, 2.0, 2.0])


def test_binary_logical_ops_have_zero_gradient(device):
    a, b = _a([0.0, 1.0, 2.0], device), _a([[1.0, 0.0, 3.0]], device)
    ga, gb = _grad(lambda u, v: nd.logical_and(u, v) + nd.logical_xor(u, v) + u, a, b)
    np.testing.assert_array_equal(ga, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(gb, [[0.0, 0.0, 0.0]])


# --- logical ops and hypot -------------------------------------------------------------------
def test_logical_ops_give_one_or_zero_in_the_input_dtype(device):
    a = _a([[0.3, 0.0, 1.7], [-2.2, 0.25, 0.0]], device)
    b = _a([[1.0, 0.0, -2.0]], device)
    np.testing.assert_array_equal(nd.broadcast_logical_and(a, b).asnumpy(),
                                  [[1, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(nd.logical_or(a, b).asnumpy(), [[1, 0, 1], [1, 1, 1]])
    np.testing.assert_array_equal(nd.logical_xor(a, b).asnumpy(), [[0, 0, 0], [0, 1, 1]])
    np.testing.assert_array_equal(nd.logical_xor(a, 2).asnumpy(), [[0, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(nd.logical_and(2, a).asnumpy(), [[1, 0, 1], [1, 1, 0]])
    np.testing.assert_array_equal(nd.logical_not(a).asnumpy(), [[0, 1, 0], [0, 0, 1]])
    assert nd.logical_and(a, b).dtype == np.float32
    i = nd.logical_or(a.astype("int32"), b.astype("int32"))  # 0.3 -> 0 in int32
    assert i.dtype == np.int32
    np.testing.assert_array_equal(i.asnumpy(), [[1, 0, 1], [1, 0, 1]])
    assert nd.logical_and(2, 3) == 1 and nd.logical_xor(2, 3) == 0 and nd.logical_or(0, 0) == 0


def test_hypot_and_its_gradients(device):
    x, y = _a([[3.0, -5.0], [0.5, 8.0]], device), _a([[4.0, 12.0]], device)
    np.testing.assert_allclose(nd.broadcast_hypot(x, y).asnumpy(),
                               [[5.0, 13.0], [np.hypot(0.5, 4.0), np.hypot(8.0, 12.0)]],
                               rtol=1e-6)
    gx, gy = _grad(nd.hypot, x, y)
    h = np.hypot(x.asnumpy(), y.asnumpy())
    np.testing.assert_allclose(gx, x.asnumpy() / h, rtol=1e-6)
    np.testing.assert_allclose(gy, (y.asnumpy() / h).sum(axis=0, keepdims=True), rtol=1e-6)
    g, = _grad(lambda v: nd.hypot(v, 2.0), _a([1.5], device))
    np.testing.assert_allclose(g, [1.5 / 2.5], rtol=1e-6)


# --- special functions -----------------------------------------------------------------------
def test_gamma_functions_and_derivatives_match_scipy(device):
    v = np.array([-2.7, -1.3, -0.4, 0.2, 0.9, 1.5, 3.3, 7.1, 25.0])
    x = _a(v, device, "float64")
    np.testing.assert_allclose(nd.gamma(x).asnumpy(), special.gamma(v), rtol=1e-12)
    np.testing.assert_allclose(nd.gammaln(x).asnumpy(), special.gammaln(v), rtol=1e-12)
    np.testing.assert_allclose(nd.digamma(x).asnumpy(), special.digamma(v), rtol=1e-12)
    # the series and reflection behind trigamma, to double precision
    np.testing.assert_allclose(nd.trigamma(x).asnumpy(), special.polygamma(1, v), rtol=1e-11)
    g, = _grad(nd.gammaln, x)
    np.testing.assert_allclose(g, special.digamma(v), rtol=1e-12)
    g, = _grad(nd.gamma, _a(v, device, "float64"))
    np.testing.assert_allclose(g, special.gamma(v) * special.digamma(v), rtol=1e-11)


def test_trigamma_is_not_differentiated_again(device):
    x = _a([0.5, 1.5], device, "float64")
    x.attach_grad()
    with mx.autograd.record():
        y = nd.trigamma(x)
    with pytest.raises(MXCoreError, match="trigamma .* has no gradient rule"):
        y.backward()


def test_inverse_functions_round_trip(device):
    v = np.array([-0.9, -0.3, 0.0, 0.4, 0.8])
    x = _a(v, device, "float64")
    for fwd, inv in (("sin", "arcsin"), ("tanh", "arctanh"), ("erf", "erfinv")):
        back = getattr(nd, fwd)(getattr(nd, inv)(x)).asnumpy()
        np.testing.assert_allclose(back, v, atol=1e-12, err_msg=inv)
    np.testing.assert_allclose(nd.arccosh(nd.cosh(x + 1.0)).asnumpy(), v + 1.0, atol=1e-12)
    np.testing.assert_allclose(nd.cbrt(x).asnumpy() ** 3, v, atol=1e-12)
    np.testing.assert_allclose(nd.radians(nd.degrees(x)).asnumpy(), v, atol=1e-12)
    np.testing.assert_allclose(nd.log2(_a([8.0, 0.25], device)).asnumpy(), [3.0, -2.0])
    np.testing.assert_allclose(nd.log10(_a([1000.0, 0.01], device)).asnumpy(), [3.0, -2.0],
                               rtol=1e-6)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # numpy's, as for log
def test_out_of_domain_gives_nan_as_in_mxnet(device):
    y = nd.arcsin(_a([2.0, -1.5], device)).asnumpy()
    assert np.isnan(y).all()
    assert np.isnan(nd.log2(_a([-1.0], device)).asnumpy()).all()


# --- activations with attributes -------------------------------------------------------------
def test_smooth_l1_values_and_gradient_at_the_threshold(device):
    x = _a([-1.0, 1.0, 0.0, 0.5, -3.0], device)
    np.testing.assert_allclose(nd.smooth_l1(x, scalar=1.0).asnumpy(),
                               [0.5, 0.5, 0.0, 0.125, 2.5])
    g, = _grad(lambda v: nd.smooth_l1(v, 1.0), x)
    np.testing.assert_array_equal(g, [-1.0, 1.0, 0.0, 0.5, -1.0])  # |x| = 1: the linear side
    # sigma = 0: every x is on the quadratic side of an infinite threshold (MXNet: zeros)
    np.testing.assert_array_equal(nd.smooth_l1(x, 0.0).asnumpy(), np.zeros(5))
    np.testing.assert_allclose(nd.smooth_l1(x, -2.0).asnumpy(), nd.smooth_l1(x, 2.0).asnumpy())


def test_hard_sigmoid_is_flat_at_and_past_its_ends(device):
    x = _a([-0.5, 0.5, 0.0, 2.0, -2.0], device)
    np.testing.assert_allclose(nd.hard_sigmoid(x, alpha=1.0, beta=0.5).asnumpy(),
                               [0.0, 1.0, 0.5, 1.0, 0.0])
    g, = _grad(lambda v: nd.hard_sigmoid(v, alpha=1.0, beta=0.5), x)
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0, 0.0, 0.0])


def test_softsign_activation_uses_the_op(device):
    x = _a([-3.0, 0.0, 1.0], device)
    np.testing.assert_allclose(nd.Activation(x, act_type="softsign").asnumpy(),
                               [-0.75, 0.0, 0.5])
    np.testing.assert_allclose(nd.softsign(x).asnumpy(), [-0.75, 0.0, 0.5])


# --- softmin ---------------------------------------------------------------------------------
def test_softmin_is_softmax_of_the_negated_input(device):
    v = np.array([[0.3, -0.5, 1.7], [-2.2, 0.25, -0.9]])
    x = _a(v, device, "float64")
    np.testing.assert_allclose(nd.softmin(x).asnumpy(), nd.softmax(-x).asnumpy(), rtol=1e-14)
    np.testing.assert_allclose(nd.softmin(x, axis=0, temperature=2.0).asnumpy(),
                               nd.softmax(x * -0.5, axis=0).asnumpy(), rtol=1e-14)
    # MXNet 1.9.1, head gradient [[1, 2, 3], [4, 5, 6]]
    head = _a([[1, 2, 3], [4, 5, 6]], device, "float64")
    g, = _grad(nd.softmin, x, head=head)
    np.testing.assert_allclose(g, [[0.22551, -0.13908, -0.08643], [0.34194, -0.034, -0.30794]],
                               atol=1e-5)


def test_softmin_output_dtype_and_its_gradient(device):
    x = _a([[1.0, 2.0, 3.0]], device, "float16")
    y = nd.softmin(x, dtype="float32")
    assert y.dtype == np.float32
    g, = _grad(lambda v: nd.softmin(v, dtype="float64"), x, head=_a([[1, 0, 0]], device,
                                                                      "float64"))
    assert g.dtype == np.float16  # the input's dtype


@pytest.mark.parametrize("call, message", [
    (lambda d: nd.softmin(_a([[1.0, 2.0]], d), use_length=True), "use_length=True"),
    (lambda d: nd.softmin(_a([[1, 2]], d, "int32")), "needs a float input, got int32"),
    (lambda d: nd.softmin(_a([[1.0, 2.0]], d), dtype="int32"), "dtype must be None or one of"),
    (lambda d: nd.softmin(_a([[1.0, 2.0]], d), axis=2), "axis 2 is out of range"),
])
def test_softmin_errors_name_the_op(device, call, message):
    with pytest.raises(OperatorError) as info:
        call(device)
    msg = str(info.value)
    assert msg.startswith("operator 'softmin'") and message in msg, msg


# --- add_n -----------------------------------------------------------------------------------
def test_add_n_sums_and_gives_each_input_its_gradient(device):
    a, b = _a([[0.5, -1.0]], device), _a([[2.0, 3.0]], device)
    np.testing.assert_array_equal(nd.add_n(a, b, a).asnumpy(), [[3.0, 1.0]])
    assert nd.ElementWiseSum is nd.add_n
    ga, gb = _grad(lambda u, v: nd.add_n(u, v, u), a, b)
    np.testing.assert_array_equal(ga, [[2.0, 2.0]])
    np.testing.assert_array_equal(gb, [[1.0, 1.0]])
    # float16 terms accumulate in float32: 2048 + 1 + 1 is 2050, not 2048 twice rounded
    h = [_a([2048.0], device, "float16"), _a([1.0], device, "float16"),
         _a([1.0], device, "float16")]
    assert float(nd.add_n(*h).asscalar()) == 2050.0
    # out= may be one of the inputs (MXNet's own test writes into its first input)
    r = nd.add_n(a, b, out=a)
    assert r is a
    np.testing.assert_array_equal(a.asnumpy(), [[2.5, 2.0]])


@pytest.mark.parametrize("args, message", [
    (lambda d: (_a([[1.0, 2.0]], d), _a([1.0, 2.0], d)), "shapes differ: (1, 2), (2,)"),
    (lambda d: (_a([1.0], d), _a([1.0], d, "float64")), "dtypes differ: float32, float64"),
])
def test_add_n_does_not_broadcast_or_promote(device, args, message):
    with pytest.raises(OperatorError) as info:
        nd.add_n(*args(device))
    msg = str(info.value)
    assert msg.startswith("operator 'add_n'") and message in msg and repr(device) in msg, msg


# --- moments ---------------------------------------------------------------------------------
def test_moments_values_gradient_and_integer_truncation(device):
    x = _a([[0.3, -0.5, 1.7], [-2.2, 0.25, -0.9]], device, "float64")
    m, v = nd.moments(x, axes=(0, 1))
    assert m.shape == v.shape == (1,)
    np.testing.assert_allclose([m.asscalar(), v.asscalar()], [-0.225, 1.4397916666666667])
    x.attach_grad()
    with mx.autograd.record():
        m, v = nd.moments(x, axes=(0, 1))
    mx.autograd.backward([m, v], [nd.ones_like(m), nd.ones_like(v) * 2])
    # MXNet 1.9.1: 1/N for the mean, 2 (x - mean) / N for the variance (head 2)
    np.testing.assert_allclose(x.grad.asnumpy(), [[0.51667, -0.01667, 1.45],
                                                  [-1.15, 0.48333, -0.28333]], atol=1e-5)
    i = _a([[1, -2, 4], [3, 4, 6]], device, "int32")
    m, v = nd.moments(i, axes=1)
    assert m.dtype == np.int32
    np.testing.assert_array_equal(m.asnumpy(), [1, 4])  # 13 / 3 truncated
    np.testing.assert_array_equal(v.asnumpy(), [6, 1])  # around the truncated mean


def test_moments_gradient_of_the_mean_alone(device):
    x = _a([[1.0, 2.0], [3.0, 5.0]], device, "float64")
    g, = _grad(lambda u: nd.moments(u, axes=(1,))[0], x)
    np.testing.assert_allclose(g, np.full((2, 2), 0.5))


@pytest.mark.parametrize("axes, message", [
    (None, "empty axes are not supported (MXNet); for moments over every axis pass them all"),
    ((), "empty axes are not supported"),
    ((2,), "axis 2 is out of range for 2-d input"),
])
def test_moments_errors(device, axes, message):
    with pytest.raises(OperatorError) as info:
        nd.moments(_a([[1.0, 2.0]], device), axes=axes)
    msg = str(info.value)
    assert msg.startswith("operator 'moments'") and message in msg, msg


# --- where -----------------------------------------------------------------------------------
def test_where_with_a_one_dimensional_condition_selects_rows(device):
    x = _a([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]], device)
    y = x * 10.0
    c = _a([0.0, 1.0, 0.0], device)
    # a square array: rows, never numpy's broadcasting along the last axis (columns)
    np.testing.assert_array_equal(nd.where(c, x, y).asnumpy(),
                                  [[10, 20, 30], [4, 5, 6], [70, 80, 90]])
    head = _a(np.arange(9).reshape(3, 3), device)
    gx, gy = _grad(lambda u, v: nd.where(c, u, v), x, y, head=head)
    np.testing.assert_array_equal(gx, [[0, 0, 0], [3, 4, 5], [0, 0, 0]])
    np.testing.assert_array_equal(gy, [[0, 1, 2], [0, 0, 0], [6, 7, 8]])
    # NaN is non-zero: true
    n = _a([np.nan, 0.0, 1.0], device)
    np.testing.assert_array_equal(nd.where(n, x, y).asnumpy()[:, 0], [1, 40, 7])


def test_where_keeps_numpy_broadcasting_and_scalars(device):
    c = _a([[1.0, 0.0], [0.0, 1.0]], device)
    np.testing.assert_array_equal(nd.where(c, _a([[1.0, 2.0]], device), 0.0).asnumpy(),
                                  [[1, 0], [0, 2]])


@pytest.mark.parametrize("args, message", [
    (lambda d: (_a([1.0, 0.0, 1.0], d), _a(np.ones((2, 3)), d), _a(np.zeros((2, 3)), d)),
     "a 1-D condition selects rows: its length 3 must be the first dimension of x and y (2, 3)"),
    (lambda d: (_a(np.ones((2, 3)), d), _a(np.ones((2, 3)), d),
                _a(np.zeros((2, 3)), d, "float64")),
     "x and y dtypes differ: float32 vs float64; cast one with .astype()"),
    (lambda d: (_a(np.ones((4, 3)), d), _a(np.ones((2, 3)), d), _a(np.zeros((2, 3)), d)),
     "do not broadcast"),
])
def test_where_errors(device, args, message):
    with pytest.raises(OperatorError) as info:
        nd.where(*args(device))
    msg = str(info.value)
    assert msg.startswith("operator 'where'") and message in msg and repr(device) in msg, msg


# --- reductions: shape (1,) ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sum", "mean", "prod", "max", "min", "nansum", "nanprod",
                                  "norm", "argmax", "argmin"])
def test_full_reductions_have_shape_one_as_in_mxnet_1x(device, name):
    x = _a([[0.3, -0.5, 1.7], [-2.2, 0.25, -0.9]], device)
    f = getattr(nd, name)
    assert f(x).shape == (1,)
    assert f(x, keepdims=True).shape == (1, 1)
    assert f(_a([1.0, 2.0, 3.0], device), axis=0).shape == (1,)
    expected = {"sum": -1.35, "mean": -0.225, "prod": -0.126225, "max": 1.7, "min": -2.2,
                "nansum": -1.35, "nanprod": -0.126225, "norm": 2.9904013, "argmax": 2.0,
                "argmin": 3.0}[name]
    np.testing.assert_allclose(f(x).asnumpy(), [expected], rtol=1e-6)


def test_full_reduction_methods_and_backward(device):
    x = _a([[1.0, 2.0], [3.0, 4.0]], device)
    for r in (x.sum(), x.mean(), x.max(), x.min(), x.prod(), x.norm(), x.argmax()):
        assert r.shape == (1,)
    assert x.sum().asscalar() == 10.0 and float(x.mean()) == 2.5
    # exclude with every axis listed reduces nothing (MXNet); axis=() is every axis
    assert nd.sum(x, axis=(0, 1), exclude=True).shape == (2, 2)
    assert nd.sum(x, axis=()).shape == (1,)
    g, = _grad(lambda v: (v * v).sum(), x)
    np.testing.assert_array_equal(g, 2 * x.asnumpy())
    g, = _grad(lambda v: nd.norm(v) * 2.0, _a([3.0, 4.0], device))
    np.testing.assert_allclose(g, [1.2, 1.6])


def test_nansum_and_nanprod_skip_nans(device):
    x = _a([[1.0, np.nan, 2.0], [np.nan, np.nan, 3.0]], device)
    np.testing.assert_array_equal(nd.nansum(x).asnumpy(), [6.0])
    np.testing.assert_array_equal(nd.nansum(x, axis=0).asnumpy(), [1.0, 0.0, 5.0])
    np.testing.assert_array_equal(nd.nanprod(x, axis=1).asnumpy(), [2.0, 3.0])
    np.testing.assert_array_equal(nd.nanprod(x, axis=0).asnumpy(), [1.0, 1.0, 6.0])
    assert np.isnan(nd.sum(x).asscalar())
    # gradients: zero at the NaNs (MXNet 1.9.1)
    g, = _grad(lambda v: nd.nansum(v, axis=1), x.copy())
    np.testing.assert_array_equal(g, [[1, 0, 1], [0, 0, 1]])
    g, = _grad(lambda v: nd.nanprod(v, axis=1), x.copy())
    np.testing.assert_array_equal(g, [[2, 0, 1], [0, 0, 1]])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_nansum_skips_nans_in_16_bit_floats(device, dtype):
    x = nd.array(np.array([1.0, np.nan, 2.0, np.nan]), ctx=device, dtype=dtype)
    assert float(nd.nansum(x).asscalar()) == 3.0
    assert float(nd.nanprod(x).asscalar()) == 2.0


def test_argmax_channel_and_mxnet_aliases(device):
    x = _a([[[1, 5], [3, 2]], [[0, 1], [7, 1]]], device)
    np.testing.assert_array_equal(nd.argmax_channel(x).asnumpy(), [[1, 0], [1, 0]])
    assert nd.sum_axis is nd.sum and nd.max_axis is nd.max and nd.min_axis is nd.min
    assert nd.broadcast_plus is nd.add and nd.broadcast_minus is nd.subtract
    assert nd.modulo is nd.mod and nd.true_divide is nd.divide
    assert nd.broadcast_hypot is nd.hypot


def test_softmax_cross_entropy_sums_over_the_batch(device):
    x = _a([[1.0, 2.0, 3.0], [0.5, 0.1, -1.0]], device)
    loss = nd.softmax_cross_entropy(x, _a([2, 0], device))
    assert loss.shape == (1,)
    np.testing.assert_allclose(loss.asnumpy(), [1.0460067], rtol=1e-6)  # MXNet 1.9.1
    with pytest.raises(OperatorError, match="operator 'softmax_cross_entropy'.*label"):
        nd.softmax_cross_entropy(x, _a([2, 0, 1], device))


# --- finiteness checks and SoftmaxActivation ---------------------------------------------------
def test_all_finite(device):
    ok, bad = _a([[1.0, -2.0]], device), _a([1.0, np.inf], device, "float16")
    assert nd.all_finite(ok).shape == (1,) and nd.all_finite(ok).dtype == np.float32
    assert nd.all_finite(ok).asscalar() == 1.0 and nd.all_finite(bad).asscalar() == 0.0
    assert nd.all_finite(_a([np.nan], device)).asscalar() == 0.0
    assert nd.multi_all_finite(ok, ok, num_arrays=2).asscalar() == 1.0
    assert nd.multi_all_finite(ok, bad, num_arrays=2).asscalar() == 0.0
    assert nd.multi_all_finite(ok, bad, num_arrays=1).asscalar() == 1.0  # the first only
    with pytest.raises(OperatorError, match="operator 'all_finite': only supports floating"):
        nd.all_finite(_a([1, 2], device, "int32"))
    with pytest.raises(OperatorError, match="init_output=False"):
        nd.all_finite(ok, init_output=False)


def test_softmax_activation_modes(device):
    x = _a(np.arange(12).reshape(2, 3, 2) / 5, device)
    # MXNet 1.9.1: 'instance' is the last axis, 'channel' axis 1
    np.testing.assert_allclose(nd.SoftmaxActivation(x).asnumpy()[0, 0], [0.450166, 0.549834],
                               rtol=1e-5)
    np.testing.assert_allclose(nd.SoftmaxActivation(x, mode="channel").asnumpy()[0, :, 0],
                               [0.21198273, 0.31624106, 0.47177625], rtol=1e-5)
    with pytest.raises(OperatorError, match="mode must be 'instance' or 'channel'"):
        nd.SoftmaxActivation(x, mode="spatial")
