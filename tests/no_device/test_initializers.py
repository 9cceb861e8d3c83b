"""mx.initializer / mx.init: in-place filling, name dispatch, distributions, registry."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import mxcore as mx
from mxcore import initializer as I


def _fill(init, shape, name="fc_weight", dtype="float32"):
    arr = mx.nd.zeros(shape, dtype=dtype)
    init(I.InitDesc(name), arr)
    return arr


def _xavier_scale(shape, factor_type, magnitude):
    hw = float(np.prod(shape[2:])) if len(shape) > 2 else 1.0
    fan_in, fan_out = shape[1] * hw, shape[0] * hw
    factor = {"avg": (fan_in + fan_out) / 2.0, "in": fan_in, "out": fan_out}[factor_type]
    return math.sqrt(magnitude / factor)


ALL_WEIGHT_INITS = [
    I.Zero(), I.One(), I.Constant(0.5), I.Uniform(0.2), I.Normal(0.3), I.Xavier(),
    I.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2), I.MSRAPrelu(),
    I.Orthogonal(), I.Orthogonal(rand_type="normal"), I.Bilinear(), I.LSTMBias(),
]


# -- in place -------------------------------------------------------------------------------------
@pytest.mark.parametrize("init", ALL_WEIGHT_INITS, ids=repr)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_fills_in_place_keeping_shape_and_dtype(init, dtype):
    shape = (8, 4, 3, 3)
    arr = mx.nd.full(shape, 123.0, dtype=dtype)
    view = arr.reshape(-1)              # shares arr's buffer
    buf = arr._data
    ret = init(I.InitDesc("conv0_weight"), arr)
    assert ret is None
    assert arr._data is buf             # same buffer object, written into
    assert arr.shape == shape and arr.dtype == np.dtype(dtype)
    host = arr.asnumpy()
    assert not (host == 123.0).any()
    np.testing.assert_array_equal(view.asnumpy(), host.reshape(-1))
    assert np.isfinite(host).all()


def test_constant_zero_one_values():
    np.testing.assert_array_equal(_fill(I.Zero(), (3, 4)).asnumpy(), 0)
    np.testing.assert_array_equal(_fill(I.One(), (3, 4)).asnumpy(), 1)
    np.testing.assert_array_equal(_fill(I.Constant(2.5), (3, 4)).asnumpy(), 2.5)
    value = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(_fill(I.Constant(mx.nd.array(value)), (3, 4)).asnumpy(), value)
    np.testing.assert_array_equal(_fill(I.Constant(value[0]), (3, 4)).asnumpy(),
                                  np.broadcast_to(value[0], (3, 4)))


# -- distributions ---------------------------------------------------------------------------------
def test_uniform_and_normal_statistics():
    mx.random.seed(11)
    u = _fill(I.Uniform(0.3), (400, 500)).asnumpy().astype(np.float64)
    assert np.abs(u).max() <= 0.3 and np.abs(u).max() > 0.299
    assert abs(u.std() - 0.3 / math.sqrt(3)) < 0.01 * 0.3 / math.sqrt(3)
    assert abs(u.mean()) < 0.003
    n = _fill(I.Normal(0.2), (400, 500)).asnumpy().astype(np.float64)
    assert abs(n.std() - 0.2) < 0.01 * 0.2
    assert abs(n.mean()) < 0.003
    assert I.Uniform().scale == 0.07 and I.Normal().sigma == 0.01


@pytest.mark.parametrize("shape", [(64, 32, 3, 3), (300, 200), (200, 300), (16, 8, 5, 5, 2)])
@pytest.mark.parametrize("factor_type", ["avg", "in", "out"])
@pytest.mark.parametrize("magnitude", [3, 2.34])
def test_xavier_uniform_bound(shape, factor_type, magnitude):
    mx.random.seed(5)
    s = _xavier_scale(shape, factor_type, magnitude)
    w = _fill(I.Xavier("uniform", factor_type, magnitude), shape).asnumpy().astype(np.float64)
    assert np.abs(w).max() <= s * (1 + 1e-6)
    assert np.abs(w).max() > 0.99 * s
    assert abs(w.std() - s / math.sqrt(3)) < 0.03 * s / math.sqrt(3)


def test_xavier_default_is_glorot_uniform():
    # MXNet's docstring: c = sqrt(3 / (0.5 * (n_in + n_out))) with n = channels * kernel size
    shape = (64, 32, 3, 3)
    c = math.sqrt(3.0 / (0.5 * (32 * 9 + 64 * 9)))
    assert math.isclose(_xavier_scale(shape, "avg", 3), c)
    mx.random.seed(2)
    w = _fill(I.Xavier(), shape).asnumpy()
    assert np.abs(w).max() <= c * (1 + 1e-6) and np.abs(w).max() > 0.99 * c


@pytest.mark.parametrize("factor_type", ["avg", "in", "out"])
def test_xavier_gaussian_std(factor_type):
    mx.random.seed(9)
    shape = (128, 64, 3, 3)
    s = _xavier_scale(shape, factor_type, 2.5)
    w = _fill(I.Xavier("gaussian", factor_type, 2.5), shape).asnumpy().astype(np.float64)
    assert abs(w.std() - s) < 0.02 * s
    assert abs(w.mean()) < 0.02 * s


@pytest.mark.parametrize("slope,factor_type", [(0.25, "avg"), (0.0, "in"), (0.1, "out")])
def test_msraprelu_is_xavier_gaussian_with_he_magnitude(slope, factor_type):
    mx.random.seed(4)
    shape = (128, 64, 3, 3)
    s = _xavier_scale(shape, factor_type, 2.0 / (1 + slope ** 2))
    init = I.MSRAPrelu(factor_type, slope)
    assert init.rnd_type == "gaussian" and init.magnitude == pytest.approx(2 / (1 + slope ** 2))
    w = _fill(init, shape).asnumpy().astype(np.float64)
    assert abs(w.std() - s) < 0.02 * s
    assert json.loads(init.dumps()) == ["msraprelu", {"factor_type": factor_type,
                                                      "slope": slope}]


@pytest.mark.parametrize("shape,scale,rand_type", [
    ((20, 50), 1.414, "uniform"),       # wide: orthonormal rows
    ((50, 20), 2.0, "normal"),          # tall: orthonormal columns
    ((30, 30), 1.0, "uniform"),         # square: orthogonal
    ((16, 4, 3, 3), 1.5, "normal"),     # conv: rows of the (16, 36) matrix
    ((40, 2, 3), 0.5, "uniform"),       # conv, tall (40, 6)
])
def test_orthogonal(shape, scale, rand_type):
    mx.random.seed(1)
    w = _fill(I.Orthogonal(scale, rand_type), shape).asnumpy().astype(np.float64)
    m = w.reshape(shape[0], -1)
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    np.testing.assert_allclose(gram, scale ** 2 * np.eye(gram.shape[0]), atol=1e-5 * scale ** 2)


def test_bilinear_matches_mxnet_loop():
    shape = (2, 3, 4, 5)
    w = _fill(I.Bilinear(), shape).asnumpy()
    ref = np.zeros(int(np.prod(shape)), dtype="float32")
    f = np.ceil(shape[3] / 2.0)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    for i in range(ref.size):      # MXNet's formula, element by element
        x = i % shape[3]
        y = (i // shape[3]) % shape[2]
        ref[i] = (1 - abs(x / f - c)) * (1 - abs(y / f - c))
    np.testing.assert_allclose(w, ref.reshape(shape), rtol=1e-6)


def test_lstm_bias():
    b = _fill(I.LSTMBias(2.0), (16,), name="lstm_i2h_bias")   # bias name: zeros
    np.testing.assert_array_equal(b.asnumpy(), 0)
    b = mx.nd.zeros((16,))
    I.Uniform()(I.InitDesc("lstm_i2h_bias", {"__init__": I.LSTMBias(2.0)}), b)
    np.testing.assert_array_equal(b.asnumpy(), [0] * 4 + [2] * 4 + [0] * 8)


# -- reproducibility ---------------------------------------------------------------------------------
@pytest.mark.parametrize("init", [I.Uniform(), I.Normal(), I.Xavier(), I.MSRAPrelu(),
                                  I.Orthogonal(), I.Xavier(rnd_type="gaussian")], ids=repr)
def test_reproducible_under_seed(init):
    shape = (12, 6, 3)
    mx.random.seed(42)
    a = _fill(init, shape).asnumpy()
    b = _fill(init, shape).asnumpy()
    mx.random.seed(42)
    c = _fill(init, shape).asnumpy()
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)


# -- name dispatch -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,value", [
    ("dense0_bias", 0), ("bn0_gamma", 1), ("bn0_beta", 0),
    ("bn0_running_mean", 0), ("bn0_running_var", 1),
    ("bn0_moving_mean", 0), ("bn0_moving_var", 1), ("bn0_moving_inv_var", 0),
    ("q_min", 0), ("q_max", 1),
])
@pytest.mark.parametrize("as_desc", [True, False])
def test_name_dispatch(name, value, as_desc):
    arr = mx.nd.full((3, 4), 7.0)
    I.Xavier()(I.InitDesc(name) if as_desc else name, arr)
    np.testing.assert_array_equal(arr.asnumpy(), value)


def test_weight_goes_to_init_weight_and_attrs_override():
    arr = mx.nd.zeros((3, 4))
    I.Constant(3.0)(I.InitDesc("fc_weight"), arr)
    np.testing.assert_array_equal(arr.asnumpy(), 3)
    arr[:] = 0
    I.Constant(3.0)("fc_weight", arr)          # legacy: a plain str name
    np.testing.assert_array_equal(arr.asnumpy(), 3)
    # attrs["__init__"] wins over the name: a name, a dumps() string or an instance
    for spec, expected in (("ones", 1), (I.Constant(5.0).dumps(), 5), (I.Constant(6.0), 6)):
        desc = I.InitDesc("bn_running_var", {"__init__": spec})
        I.Zero()(desc, arr)
        np.testing.assert_array_equal(arr.asnumpy(), expected)
        assert desc.global_init == I.Zero()


def test_initdesc_is_a_str():
    d = I.InitDesc("fc_weight", {"lr_mult": "1"})
    assert isinstance(d, str) and d == "fc_weight" and d.attrs == {"lr_mult": "1"}
    assert d.global_init is None and I.InitDesc("x").attrs == {}


def test_legacy_string_rules():
    arr = mx.nd.zeros((6,))
    I.Uniform()("stn_loc_bias", arr)
    np.testing.assert_array_equal(arr.asnumpy(), [1, 0, 0, 0, 1, 0])
    w = mx.nd.ones((2, 3))
    I.Uniform()("stn_loc_weight", w)
    np.testing.assert_array_equal(w.asnumpy(), 0)
    up = mx.nd.zeros((1, 1, 4, 4))
    I.Uniform()("upsampling0_foo", up)
    np.testing.assert_allclose(up.asnumpy(), _fill(I.Bilinear(), (1, 1, 4, 4)).asnumpy())


def test_mixed():
    # the first pattern that re.match-es the name picks the initializer, which then
    # applies its own name rules (so a bias is still zeroed)
    init = I.Mixed(["conv", ".*dense", ".*"], [I.Constant(2.0), I.Constant(3.0), I.One()])
    vals = {}
    for name in ("conv0_weight", "net_dense1_weight", "fc_weight", "conv0_bias"):
        arr = mx.nd.full((2, 2), 9.0)
        init(name, arr)
        vals[name] = arr.asnumpy()[0, 0]
    assert vals == {"conv0_weight": 2.0, "net_dense1_weight": 3.0, "fc_weight": 1.0,
                    "conv0_bias": 0.0}
    with pytest.raises(ValueError, match="fc_weight"):
        I.Mixed(["bias"], [I.Zero()])("fc_weight", mx.nd.zeros((2,)))
    with pytest.raises(ValueError):
        I.Mixed(["a", "b"], [I.Zero()])


# -- errors ---------------------------------------------------------------------------------------------
def test_xavier_refuses_vectors():
    arr = mx.nd.full((5,), 7.0)
    with pytest.raises(ValueError, match="dense1_weight.*at least 2"):
        I.Xavier()(I.InitDesc("dense1_weight"), arr)
    np.testing.assert_array_equal(arr.asnumpy(), 7)     # nothing written
    with pytest.raises(ValueError, match="at least 2"):
        I.MSRAPrelu()(I.InitDesc("w_weight"), mx.nd.zeros((5,)))


def test_unknown_name_is_a_clear_error():
    for desc in (I.InitDesc("layer3_scale"), "layer3_scale"):
        with pytest.raises(ValueError, match="layer3_scale"):
            I.Uniform()(desc, mx.nd.zeros((2, 2)))


def test_bad_arguments():
    with pytest.raises(ValueError, match="factor_type"):
        I.Xavier(factor_type="fan")
    with pytest.raises(ValueError, match="rnd_type"):
        I.Xavier(rnd_type="normal")
    with pytest.raises(ValueError, match="rand_type"):
        I.Orthogonal(rand_type="gaussian")
    with pytest.raises(TypeError, match="NDArray"):
        I.Uniform()(I.InitDesc("w_weight"), np.zeros((2, 2)))
    with pytest.raises(NotImplementedError):
        I.Initializer()(I.InitDesc("w_weight"), mx.nd.zeros((2, 2)))


# -- registry and serialisation ---------------------------------------------------------------------------
@pytest.mark.parametrize("name,cls", [
    ("xavier", I.Xavier), ("Xavier", I.Xavier), ("uniform", I.Uniform), ("normal", I.Normal),
    ("zero", I.Zero), ("zeros", I.Zero), ("one", I.One), ("ones", I.One),
    ("msraprelu", I.MSRAPrelu), ("orthogonal", I.Orthogonal), ("bilinear", I.Bilinear),
    ("lstmbias", I.LSTMBias),
])
def test_create_by_name(name, cls):
    assert type(I.create(name)) is cls


def test_create_variants_and_dumps_round_trip():
    x = I.create("xavier", rnd_type="gaussian", magnitude=2)
    assert (x.rnd_type, x.factor_type, x.magnitude) == ("gaussian", "avg", 2.0)
    assert I.create(x) is x
    with pytest.raises(ValueError):
        I.create(x, magnitude=3)
    assert json.loads(I.Normal(0.5).dumps()) == ["normal", {"sigma": 0.5}]
    assert json.loads(I.Xavier(factor_type="in", magnitude=2.34).dumps()) == \
        ["xavier", {"rnd_type": "uniform", "factor_type": "in", "magnitude": 2.34}]
    for init in (I.Normal(0.5), I.Xavier("gaussian", "out", 1.5), I.Orthogonal(2.0, "normal"),
                 I.MSRAPrelu("in", 0.1), I.Constant(3), I.Zero()):
        assert I.create(init.dumps()) == init
    c = I.create(I.Constant(mx.nd.array([1.0, 2.0])).dumps())
    assert c.value == [1.0, 2.0]
    assert I.create({"initializer": "uniform", "scale": 0.5}) == I.Uniform(0.5)
    assert I.Uniform(0.1) != I.Uniform(0.2) and I.Uniform(0.1) != I.Normal(0.1)
    with pytest.raises(ValueError, match="unknown initializer 'nosuch'.*xavier"):
        I.create("nosuch")


@pytest.mark.parametrize("make", [lambda a: mx.nd.array(a), np.asarray])
def test_constant_array_value_dumps_and_equality(make):
    """MXNet's test_const_init_dumps: dumps() equals json.dumps([name, init._kwargs]),
    so _kwargs holds the array as nested lists; the array itself fills weights."""
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    init = I.Constant(make(a))
    assert init.dumps() == json.dumps(["constant", init._kwargs])
    assert json.loads(init.dumps()) == ["constant", {"value": a.tolist()}]
    assert init == I.Constant(a.tolist()) and init != I.Constant(1)
    out = mx.nd.zeros((2, 3))
    init("fc_weight", out)
    np.testing.assert_array_equal(out.asnumpy(), a)
    rebuilt = mx.nd.zeros((2, 3))
    I.create(init.dumps())("fc_weight", rebuilt)
    np.testing.assert_array_equal(rebuilt.asnumpy(), a)
    assert I.Constant(1).dumps() == '["constant", {"value": 1}]'
    assert I.Constant(np.float32(2.5)).dumps() == '["constant", {"value": 2.5}]'


def test_register_custom_initializer():
    @I.register
    @I.alias("my_test_init")
    class MyTestInit(I.Initializer):
        def _init_weight(self, _, arr):
            arr[:] = 0.25

    for name in ("mytestinit", "my_test_init"):
        arr = mx.nd.zeros((2, 3))
        I.create(name)(I.InitDesc("w_weight"), arr)
        np.testing.assert_array_equal(arr.asnumpy(), 0.25)
    with pytest.raises(TypeError):
        I.register(object)


def test_module_aliases():
    assert mx.init is mx.initializer
    assert mx.init.Xavier is I.Xavier
