"""Random sampling on every device: the distributions' moments and chi-square fits
(scipy.stats as the reference, fixed seeds), the random_*/sample_* layouts, dtypes,
devices and ``out=``, seeding, parameter errors where MXNet 1.9.1 raises them,
multinomial (frequencies, log-probabilities and their gradient) and shuffle."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.stats as ss

import mxcore as mx
from mxcore.base import MXCoreError
from mxcore.ops import random as R

nd = mx.nd
FLOATS = ("float16", "float32", "float64", "bfloat16")
#: spacing of each dtype's values relative to their magnitude (rounding slack)
EPS = {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7, "float32": 2.0 ** -23,
       "float64": 2.0 ** -52}

# name -> (mx.nd.random parameters, the scipy.stats distribution they define)
DISTS = {
    "uniform": ({"low": -1.5, "high": 3.0}, lambda low, high: ss.uniform(low, high - low)),
    "normal": ({"loc": 1.0, "scale": 2.0}, lambda loc, scale: ss.norm(loc, scale)),
    "gamma": ({"alpha": 2.5, "beta": 0.8}, lambda alpha, beta: ss.gamma(alpha, scale=beta)),
    "exponential": ({"scale": 0.5}, lambda scale: ss.expon(scale=scale)),
    "poisson": ({"lam": 4.0}, lambda lam: ss.poisson(lam)),
    "negative_binomial": ({"k": 3, "p": 0.4}, lambda k, p: ss.nbinom(k, p)),
    "generalized_negative_binomial": (
        {"mu": 2.0, "alpha": 0.3}, lambda mu, alpha: ss.nbinom(1 / alpha, 1 / (mu * alpha + 1))),
}
DISCRETE = ("poisson", "negative_binomial", "generalized_negative_binomial")
# per-element parameters of the sample_* form (positional, in the order of DISTS)
ARRAY_PARAMS = {
    "uniform": ([[0.0, 2.5], [-9.75, -1.0]], [[1.0, 3.7], [4.2, 10.5]]),
    "normal": ([[0.0, 2.5], [-9.75, -7.0]], [[1.0, 3.7], [4.2, 1.5]]),
    "gamma": ([[0.1, 2.5], [9.75, 11.0]], [[1.0, 0.7], [0.5, 0.3]]),
    "exponential": ([[1.0, 1 / 8.5], [1 / 2.7, 2.0]],),
    "poisson": ([[25.0, 8.5], [2.7, 0.5]],),
    "negative_binomial": ([[3, 4], [5, 6]], [[0.4, 0.77], [0.5, 0.84]]),
    "generalized_negative_binomial": ([[2.0, 2.5], [1.3, 1.9]], [[1.0, 0.1], [0.2, 0.5]]),
}


def _f64(x):
    return x.asnumpy().astype(np.float64)


def _draw(dist, device, dtype, n, seed=7, **params):
    mx.random.seed(seed, ctx=device)
    x = getattr(nd.random, dist)(**(params or DISTS[dist][0]), shape=(n,), dtype=dtype,
                                 ctx=device)
    assert x.shape == (n,) and x.dtype == np.dtype(dtype) and x.context == device
    return _f64(x)


def _check_moments(x, ref, eps, what=""):
    """Sample mean and variance within 6 standard errors of ``ref``'s (plus the
    dtype's rounding of values of that size)."""
    mean, var, _, kurt = (float(v) for v in ref.stats(moments="mvsk"))
    n = x.size
    size = abs(mean) + 4 * np.sqrt(var)
    assert abs(x.mean() - mean) <= 6 * np.sqrt(var / n) + 2 * eps * size, \
        f"{what}mean {x.mean()} vs {mean}"
    var_se = np.sqrt((kurt + 2) * var * var / n)
    assert abs(x.var() - var) <= 6 * var_se + 4 * eps * size * np.sqrt(var), \
        f"{what}variance {x.var()} vs {var}"


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("dist", list(DISTS))
def test_moments_of_each_distribution(device, dist, dtype):
    params, ref = DISTS[dist]
    x = _draw(dist, device, dtype, 200_000)
    _check_moments(x, ref(**params), EPS[dtype])
    if dist in DISCRETE:
        np.testing.assert_array_equal(x, np.round(x))
        assert x.min() >= 0


def _chi_square_p(x, ref, discrete):
    if discrete:  # the counts 0..m-1 and the tail, m where the tail falls below 1%
        m = int(ref.ppf(0.99))
        probs = np.append(ref.pmf(np.arange(m)), ref.sf(m - 1))
        counts = np.bincount(np.minimum(x.astype(np.int64), m), minlength=m + 1)
    else:  # ten buckets of equal probability
        edges = ref.ppf(np.linspace(0, 1, 11))
        counts = np.histogram(x, edges)[0]
        probs = np.full(10, 0.1)
    assert counts.sum() == x.size
    return ss.chisquare(counts, probs * x.size).pvalue


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("dist", list(DISTS))
def test_chi_square_fit_of_each_distribution(device, dist, dtype):
    params, ref = DISTS[dist]
    x = _draw(dist, device, dtype, 100_000, seed=11)
    assert _chi_square_p(x, ref(**params), dist in DISCRETE) > 1e-4


def test_chi_square_fit_notices_a_wrong_parameter(device):
    # the fit above can fail: a rate taken for a scale is rejected
    x = _draw("exponential", device, "float32", 100_000, seed=11, scale=0.5)
    assert _chi_square_p(x, ss.expon(scale=2.0), False) < 1e-6
    assert _chi_square_p(x, ss.expon(scale=0.45), False) < 1e-6


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "bfloat16"])
@pytest.mark.parametrize("low,high", [(-1.0, 1.0), (1.0, 3.0)])
def test_uniform_buckets_of_representable_edges_get_their_width(device, dtype, low, high):
    # 16-bit samples are rounded down: each representable value v gets the mass of
    # [v, next(v)), so buckets with representable edges get exactly their width
    edges = np.linspace(low, high, 6).astype(dtype).astype(np.float64)
    x = _draw("uniform", device, dtype, 100_000, seed=3, low=low, high=high)
    assert x.min() >= low and x.max() < high
    counts = np.histogram(x, edges)[0]
    assert counts.sum() == x.size
    assert ss.chisquare(counts, np.diff(edges) / (high - low) * x.size).pvalue > 1e-4


@pytest.mark.parametrize("dist", list(DISTS))
def test_sample_form_draws_per_parameter_element(device, dist):
    params, ref = DISTS[dist]
    arrays = [nd.array(a, ctx=device) for a in ARRAY_PARAMS[dist]]
    mx.random.seed(5, ctx=device)
    x = getattr(nd.random, dist)(*arrays, shape=(20_000,))
    assert x.shape == (2, 2, 20_000) and x.dtype == np.float32 and x.context == device
    x = _f64(x)
    names = list(params)
    for i, j in itertools.product(range(2), range(2)):
        values = {n: float(np.asarray(a)[i, j]) for n, a in zip(names, ARRAY_PARAMS[dist])}
        _check_moments(x[i, j], ref(**values), EPS["float32"], f"element {(i, j)}: ")


@pytest.mark.parametrize("dtype", FLOATS)
def test_sample_ops_shape_dtype_and_out(device, dtype):
    mu = nd.array([[0.0, 5.0, -5.0]], ctx=device, dtype=dtype)
    sigma = nd.array([[1.0, 2.0, 0.5]], ctx=device, dtype=dtype)
    x = R.sample_normal(mu, sigma, shape=(2, 4))
    assert x.shape == (1, 3, 2, 4) and x.dtype == np.float32 and x.context == device
    assert R.sample_normal(mu, sigma).shape == (1, 3)
    y = R.sample_normal(mu, sigma, shape=5, dtype="float64")
    assert y.shape == (1, 3, 5) and y.dtype == np.float64
    out = nd.zeros((1, 3, 6), ctx=device, dtype=dtype)
    assert R.sample_uniform(mu, mu + 1, out=out) is out
    got = _f64(out)
    lo = _f64(mu)[..., None]
    assert (got >= lo).all() and (got <= lo + 1).all() and len(np.unique(got)) > 3
    # ints as parameters: float samples
    k = nd.array([[2, 3]], ctx=device, dtype="int32")
    assert R.sample_poisson(k, shape=(3,)).dtype == np.float32


def test_sample_form_parameters_are_not_checked_as_in_mxnet(device):
    # MXNet checks the random_* scalars only; the formulas apply to arrays
    mx.random.seed(1, ctx=device)
    neg = nd.array([-1.0, -2.0], ctx=device)
    x = _f64(nd.random.normal(nd.zeros((2,), ctx=device), neg, shape=(50_000,)))
    np.testing.assert_allclose(x.std(axis=1), [1.0, 2.0], rtol=0.02)  # mirrored samples
    assert (_f64(nd.random.poisson(neg, shape=(10,))) == 0).all()
    g = _f64(nd.random.gamma(nd.array([-1.0, 0.0], ctx=device),
                             nd.array([1.0, 1.0], ctx=device), shape=(4,)))
    assert np.isnan(g[0]).all() and (g[1] == 0).all()
    nb = _f64(nd.random.negative_binomial(nd.array([3.0, 3.0], ctx=device),
                                          nd.array([1.0, 1.5], ctx=device), shape=(5,)))
    assert (nb == 0).all()  # success certain: no failures


def test_generalized_negative_binomial_without_dispersion_is_poisson(device):
    x = _draw("generalized_negative_binomial", device, "float64", 100_000, mu=3.0, alpha=0.0)
    _check_moments(x, ss.poisson(3.0), 0.0)


def test_defaults_shapes_and_devices(device):
    x = nd.random.uniform(ctx=device)
    assert x.shape == (1,) and x.dtype == np.float32 and x.context == device
    assert nd.random.normal(shape=3, ctx=device).shape == (3,)
    assert nd.random.gamma(shape=[2, 3], ctx=device).shape == (2, 3)
    assert nd.random.poisson(2, (4,), "float64", device).dtype == np.float64
    r = nd.random.randn(2, 3, loc=1.0, scale=2.0, dtype="float64", ctx=device)
    assert r.shape == (2, 3) and r.dtype == np.float64 and r.context == device
    assert nd.random.randn(4, ctx=device).shape == (4,)
    i = nd.random.randint(-3, 5, shape=(1000,), ctx=device)
    assert i.dtype == np.int32 and _f64(i).min() == -3 and _f64(i).max() == 4
    big = nd.random.randint(50_000_000, 50_000_010, dtype="int64", ctx=device)
    assert big.shape == (1,) and 50_000_000 <= int(big.asscalar()) < 50_000_010
    wide = _f64(nd.random.randint(-2 ** 40, 2 ** 40, shape=(100,), dtype="int64", ctx=device))
    assert np.abs(wide).max() > 2 ** 32
    with device:
        assert nd.random.exponential(shape=(2,)).context == device


@pytest.mark.parametrize("dtype", FLOATS)
def test_like_functions_take_data_shape_dtype_and_device(device, dtype):
    data = nd.ones((3, 4), ctx=device, dtype=dtype)
    for fn, kw in [(nd.random.uniform_like, {"low": 2, "high": 3}),
                   (nd.random.normal_like, {"loc": 1}), (nd.random.gamma_like, {}),
                   (nd.random.exponential_like, {"lam": 2}), (nd.random.poisson_like, {}),
                   (nd.random.negative_binomial_like, {"k": 2, "p": 0.5}),
                   (nd.random.generalized_negative_binomial_like, {})]:
        x = fn(data, **kw)
        assert x.shape == (3, 4) and x.dtype == data.dtype and x.context == device
    assert (_f64(nd.random.uniform_like(data, low=2, high=3)) >= 2).all()
    with pytest.raises(MXCoreError, match="float"):
        nd.random.uniform_like(nd.ones((2,), ctx=device, dtype="int32"))


def test_out_writes_in_place(device):
    out = nd.zeros((3, 3), ctx=device, dtype="float64")
    assert nd.random.uniform(2, 3, out=out) is out  # shape and dtype from out
    assert (_f64(out) >= 2).all()
    assert nd.random.normal(0, 1, shape=(3, 3), out=out) is out
    with pytest.raises(MXCoreError, match="dtype"):
        nd.random.uniform(0, 1, shape=(3, 3), dtype="float16", out=out)
    with pytest.raises(MXCoreError, match="shape"):
        nd.random.uniform(0, 1, shape=(2,), out=out)
    iout = nd.zeros((4,), ctx=device, dtype="int64")
    assert nd.random.randint(0, 3, out=iout) is iout
    mout = nd.zeros((5,), ctx=device, dtype="int32")
    assert nd.random.multinomial(nd.array([0.0, 1.0], ctx=device), shape=5, out=mout) is mout
    assert (_f64(mout) == 1).all()


def test_same_seed_same_numbers_per_device(device):
    def draws():
        return [_f64(nd.random.uniform(-1, 1, shape=(50,), ctx=device)),
                _f64(nd.random.gamma(2.0, 1.0, shape=(50,), ctx=device)),
                _f64(nd.random.multinomial(nd.array([0.3, 0.7], ctx=device), shape=50)),
                _f64(nd.random.normal(nd.zeros((2,), ctx=device), nd.ones((2,), ctx=device),
                                      shape=(25,))),
                _f64(nd.random.shuffle(nd.arange(50, ctx=device)))]
    mx.random.seed(123, ctx=device)
    a = draws()
    mx.random.seed(123)  # every device
    b = draws()
    c = draws()
    mx.random.seed(124, ctx=device)
    d = draws()
    for x, y, z, w in zip(a, b, c, d):
        np.testing.assert_array_equal(x, y)
        assert (x != z).any() and (x != w).any()


def test_seed_values_as_mxnet_takes_them(device):
    def sample(seed):
        mx.random.seed(seed, ctx=device)
        return _f64(nd.random.uniform(shape=(20,), ctx=device))
    np.testing.assert_array_equal(sample(-5), sample(-5))  # negative seeds are seeds
    assert (sample(-5) != sample(5)).any()
    np.testing.assert_array_equal(sample(np.int64(9)), sample(9))
    np.testing.assert_array_equal(sample(2 ** 40 + 1), sample(2 ** 40 + 1))
    with pytest.raises(ValueError, match="seed_state must be int"):
        mx.random.seed(1.5)


@pytest.mark.parametrize("call,match", [
    (lambda d: nd.random.uniform(2, 1, ctx=d), "low"),
    (lambda d: nd.random.normal(0, 0, ctx=d), "scale must be positive"),
    (lambda d: nd.random.normal(0, -1, ctx=d), "scale must be positive"),
    (lambda d: nd.random.gamma(0, 1, ctx=d), "alpha must be positive"),
    (lambda d: nd.random.gamma(1, -1, ctx=d), "beta must be positive"),
    (lambda d: nd.random.exponential(-1, ctx=d), "scale must be positive"),
    (lambda d: nd.random.exponential(0, ctx=d), "scale must be positive"),
    (lambda d: nd.random.poisson(-1, ctx=d), "lam must be non-negative"),
    (lambda d: nd.random.negative_binomial(-1, 0.5, ctx=d), "k must be non-negative"),
    (lambda d: nd.random.negative_binomial(2.5, 0.5, ctx=d), "k must be an integer"),
    (lambda d: nd.random.generalized_negative_binomial(-2, 0.3, ctx=d), "mu"),
    (lambda d: nd.random.generalized_negative_binomial(2, -0.3, ctx=d), "alpha"),
    (lambda d: nd.random.randint(5, 5, ctx=d), "high"),
    (lambda d: nd.random.randint(0.5, 4, ctx=d), "integer"),
    (lambda d: nd.random.randint(0, 300, dtype="int8", ctx=d), "int8"),
    (lambda d: nd.random.uniform(0, 1, dtype="int32", ctx=d), "dtype"),
    (lambda d: nd.random.randint(0, 3, dtype="float32", ctx=d), "dtype"),
    (lambda d: nd.random.uniform(nd.ones((2,), ctx=d), 2.0), "numbers or all NDArrays"),
    (lambda d: nd.random.normal(nd.ones((2,), ctx=d), nd.ones((3,), ctx=d)), "shape"),
    (lambda d: nd.random.normal(nd.ones((2,), ctx=d), nd.ones((2,), ctx=d, dtype="float64")),
     "dtype"),
    (lambda d: nd.random.multinomial(nd.array([1, 2], ctx=d, dtype="int32")), "float"),
    (lambda d: nd.random.multinomial(nd.zeros((), ctx=d)), "axis"),
    (lambda d: nd.random.multinomial(nd.ones((2,), ctx=d), dtype="int8"), "dtype"),
    (lambda d: nd.random.shuffle(nd.zeros((), ctx=d)), "axis"),
])
def test_bad_parameters_name_the_operator(device, call, match):
    with pytest.raises(MXCoreError, match=match) as err:
        call(device)
    assert "operator" in str(err.value)


def test_multinomial_index_dtype_must_hold_every_category(device):
    for dtype, k in [("uint8", 257), ("float16", 2050)]:
        with pytest.raises(MXCoreError, match="cannot hold"):
            nd.random.multinomial(nd.zeros((k,), ctx=device), dtype=dtype)
    assert nd.random.multinomial(nd.zeros((256,), ctx=device), dtype="uint8").dtype == np.uint8


@pytest.mark.parametrize("dtype", FLOATS)
def test_multinomial_frequencies_and_log_probabilities(device, dtype):
    probs = np.array([0.125, 0.25, 0.25, 0.0625, 0.125, 0.1875])  # exact in every dtype
    data = nd.array(np.stack([probs, probs[::-1]]), ctx=device, dtype=dtype)
    mx.random.seed(3, ctx=device)
    idx, logp = nd.random.multinomial(data, shape=(50_000,), get_prob=True)
    assert idx.shape == logp.shape == (2, 50_000)
    assert idx.dtype == np.int32 and logp.dtype == np.dtype(dtype)
    idx = idx.asnumpy()
    for row, p in enumerate([probs, probs[::-1]]):
        counts = np.bincount(idx[row], minlength=6)
        assert counts.sum() == 50_000
        assert ss.chisquare(counts, p * 50_000).pvalue > 1e-4
        np.testing.assert_allclose(_f64(logp)[row], np.log(p[idx[row]]), rtol=2 * EPS[dtype])


def test_multinomial_layout_and_unnormalised_rows_as_mxnet(device):
    data = nd.array([[1.0, 2.0, 7.0], [0.1, 0.1, 0.1]], ctx=device)
    mx.random.seed(2, ctx=device)
    idx = nd.random.multinomial(data, shape=(4, 1000)).asnumpy()
    assert idx.shape == (2, 4, 1000)
    assert (idx[0] == 0).all()  # the first running sum (1) exceeds every draw
    # a row summing to 0.3 leaves 70% of the draws past its last category: index 3
    assert set(np.unique(idx[1])) == {0, 1, 2, 3}
    assert abs((idx[1] == 3).mean() - 0.7) < 0.03
    one = nd.random.multinomial(nd.array([0.2, 0.8], ctx=device))
    assert one.shape == (1,)
    assert nd.random.multinomial(data).shape == (2,)
    assert isinstance(nd.random.multinomial(data, shape=3, get_prob=True), list)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_multinomial_log_probability_gradient_as_mxnet(device, dtype):
    # MXNet's test: d(5 * sum log p[y]) / dp = 5 / p[y] added up per drawn category
    x = nd.array(np.array([[0, 1, 2, 3, 4], [4, 3, 2, 1, 0]]) / 10.0, ctx=device, dtype=dtype)
    x.attach_grad()
    with mx.autograd.record():
        y, prob = nd.random.multinomial(x, shape=1000, get_prob=True, dtype="float32")
        (prob * 5).backward()
    y = y.asnumpy().astype(np.int64)
    xs = x.asnumpy().astype(np.float64)
    for i in range(2):
        want = np.bincount(y[i], weights=5.0 / xs[i][y[i]], minlength=5)
        np.testing.assert_allclose(_f64(x.grad)[i], want, rtol=1e-5)
    # the indices carry no gradient; without get_prob the data's gradient is zero
    x.attach_grad()
    with mx.autograd.record():
        idx = nd.random.multinomial(x, shape=10)
        (idx.astype(dtype) * 3).backward()
    assert (_f64(x.grad) == 0).all()


def test_sample_parameters_get_zero_gradients_as_mxnet(device):
    # MXNet 1.9.1 does not reparameterise: the parameters' gradients are zero
    for dist in ("uniform", "normal", "gamma", "poisson"):
        arrays = [nd.array(np.array(a) + 0.5, ctx=device) for a in ARRAY_PARAMS[dist]]
        for a in arrays:
            a.attach_grad()
            a.grad[:] = 7
        with mx.autograd.record():
            y = getattr(nd.random, dist)(*arrays, shape=(3,))
            (y * 2).sum().backward()
        for a in arrays:
            assert (_f64(a.grad) == 0).all(), dist


@pytest.mark.parametrize("dtype", ["float32", "int32", "bool", "bfloat16"])
def test_shuffle_permutes_the_first_axis_uniformly(device, dtype):
    base = np.arange(18).reshape(3, 2, 3)
    data = nd.array(base if dtype != "bool" else base % 2, ctx=device, dtype=dtype)
    mx.random.seed(4, ctx=device)
    seen = {}
    for _ in range(1200):
        got = nd.random.shuffle(data)
        assert got.shape == data.shape and got.dtype == data.dtype
        rows = got.asnumpy().astype(np.float64)
        if dtype != "bool":
            order = tuple((rows[:, 0, 0] // 6).astype(int))
            np.testing.assert_array_equal(rows, base[list(order)])  # whole rows move
            seen[order] = seen.get(order, 0) + 1
    np.testing.assert_array_equal(data.asnumpy().astype(np.float64),
                                  (base if dtype != "bool" else base % 2))  # not in place
    if dtype != "bool":
        assert len(seen) == 6
        assert ss.chisquare(list(seen.values())).pvalue > 1e-4


def test_shuffle_out_and_no_gradient(device):
    x = nd.arange(10, ctx=device)
    out = nd.zeros((10,), ctx=device)
    assert nd.random.shuffle(x, out=out) is out
    np.testing.assert_array_equal(np.sort(out.asnumpy()), np.arange(10))
    x.attach_grad()
    with mx.autograd.record():
        y = nd.random.shuffle(x)
    with pytest.raises(MXCoreError):
        y.backward()  # as MXNet: shuffle is not differentiable


def test_unique_zipfian_draws_distinct_log_uniform_classes(device):
    mx.random.seed(6, ctx=device)
    classes, trials = R.sample_unique_zipfian(793_472, shape=(4, 8192), ctx=device)
    assert classes.shape == (4, 8192) and trials.shape == (4,)
    assert classes.dtype == trials.dtype == np.int64 and classes.context == device
    c = classes.asnumpy()
    assert all(len(np.unique(row)) == 8192 for row in c) and c.min() >= 0
    assert c.max() < 793_472
    # MXNet's bounds for this draw (its test's reference count from another implementation)
    assert ((trials.asnumpy() > 14_500) & (trials.asnumpy() < 17_000)).all()
    # one class per row: the first draw, P(c) = log((c + 2) / (c + 1)) / log(range_max + 1)
    first, tries = R.sample_unique_zipfian(6, shape=(3000, 1), ctx=device)
    assert (tries.asnumpy() == 1).all()
    p = np.log((np.arange(6) + 2) / (np.arange(6) + 1)) / np.log(7)
    counts = np.bincount(first.asnumpy()[:, 0], minlength=6)
    assert ss.chisquare(counts, p / p.sum() * 3000).pvalue > 1e-4
    with pytest.raises(MXCoreError, match="distinct"):
        R.sample_unique_zipfian(5, shape=(1, 6), ctx=device)
