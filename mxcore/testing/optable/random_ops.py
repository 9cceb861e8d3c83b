"""Op-table cases: sample_*/random_* distributions (deterministic properties only) and
their densities (random_pdf_*).  Imported by mxcore.testing.optable, which collects every
case into one table.

Random ops enter the table where their result does not depend on the draws:
degenerate parameters (a zero-width uniform, a zero-scale normal, Poisson and
negative binomial counts of rate 0), multinomial rows whose first category holds
more than the whole unit interval (its index and log-probability, and that
log-probability's gradient), shuffle up to the row order (sorted along axis 0),
and multinomial's fused backward.  The densities are checked against scipy.stats
(or loops), with float64 finite-difference gradients of the sample and parameters.
Each runs on every device in every dtype the op takes, so the table checks shapes,
dtypes, devices and the parameters' layout; the statistics are in
tests/every_device/test_random_distributions.py.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.stats as ss

import mxcore as mx
from mxcore.ops import random as R  # sample_*: mx.nd's names once it exports them
from mxcore.testing.table import FLOATS, INTS, NUMERIC, In, collector

CASES: list = []
case = collector(CASES)


nd = mx.nd


def _like(dist, **params):
    """A nullary sampler with the input's shape, dtype and device."""
    return lambda x: getattr(nd.random, dist)(**params, shape=x.shape, dtype=x.dtype,
                                              ctx=x.context)


def _per_element(x, n):
    """``x`` repeated ``n`` times along a new last axis (sample_*'s layout)."""
    return np.broadcast_to(x[..., None], x.shape + (n,))


case("random_uniform_zero_width", _like("uniform", low=1.5, high=1.5),
     lambda x: np.full(x.shape, 1.5), (In((2, 3)),), FLOATS, grad=False)
case("random_poisson_rate0", _like("poisson", lam=0.0), np.zeros_like, (In((3, 2)),),
     FLOATS, grad=False)
case("random_negative_binomial_k0", _like("negative_binomial", k=0, p=0.3), np.zeros_like,
     (In((2, 2)),), FLOATS, grad=False)
case("random_generalized_negative_binomial_mu0",
     _like("generalized_negative_binomial", mu=0.0, alpha=0.5), np.zeros_like, (In((4,)),),
     FLOATS, grad=False)
case("random_randint_one_value", _like("randint", low=3, high=4),
     lambda x: np.full(x.shape, 3), (In((2, 3)),), INTS, grad=False)

case("sample_uniform_zero_width", lambda a: R.sample_uniform(a, a, shape=(4,), dtype=a.dtype),
     lambda a: _per_element(a, 4), (In((2, 3)),), FLOATS, grad=False)
case("sample_normal_zero_sigma",
     lambda m: nd.random.normal(m, nd.zeros_like(m), shape=(2, 3), dtype=m.dtype),
     lambda m: np.broadcast_to(m[..., None, None], m.shape + (2, 3)), (In((3,)),), FLOATS,
     grad=False)
case("sample_poisson_rate0",
     lambda lam: R.sample_poisson(lam * 0, shape=(3,), dtype=lam.dtype),
     lambda lam: np.zeros(lam.shape + (3,)), (In((2, 2), "pos"),), FLOATS, grad=False)


def _certain_first(d):
    """``d`` with 1 added to its first category: every draw (in [0, 1)) picks it."""
    shift = nd.one_hot(nd.zeros(d.shape[:-1], ctx=d.context), d.shape[-1], dtype=d.dtype)
    return d + shift


for _shape in [(3, 4), (5,)]:
    case(f"multinomial_certain_first_{len(_shape)}d",
         lambda d: nd.random.multinomial(_certain_first(d), shape=(2, 3), get_prob=True,
                                         dtype=d.dtype),
         lambda d: (np.zeros(d.shape[:-1] + (2, 3)),
                    np.broadcast_to(np.log(d[..., :1, None] + 1), d.shape[:-1] + (2, 3))),
         (In(_shape, "pos"),), FLOATS, grad2=False)
case("multinomial_one_hot_rows",
     lambda i: R.sample_multinomial(nd.one_hot(i, 4, dtype=i.dtype), shape=(3,),
                                     dtype=i.dtype),
     lambda i: _per_element(i, 3), (In((2, 3), "index", None, False, 4),), FLOATS,
     grad=False)


def _multinomial_backward(g, data, sample):
    """out_grad / data[sample], added up per category of each row (loops)."""
    k = data.shape[-1]
    rows, grads = data.reshape(-1, k), g.reshape(data.size // k, -1)
    idx = sample.reshape(grads.shape).astype(np.int64)
    out = np.zeros_like(rows)
    for r in range(rows.shape[0]):
        for j in range(grads.shape[1]):
            out[r, idx[r, j]] += grads[r, j] / rows[r, idx[r, j]]
    return out.reshape(data.shape)


case("sample_multinomial_backward",
     lambda g, d, s: nd.invoke("sample_multinomial_backward", g, d, s), _multinomial_backward,
     (In((2, 5)), In((2, 3), "pos"), In((2, 5), "index", "int32", False, 3)), FLOATS,
     grad=False, tol={"float16": (1e-2, 2e-3), "bfloat16": (2e-2, 2e-2)})
case("sample_multinomial_backward_float_sample_3d",
     lambda g, d, s: nd.invoke("sample_multinomial_backward", g, d, s), _multinomial_backward,
     (In((2, 2, 3, 2)), In((2, 2, 4), "pos"), In((2, 2, 3, 2), "index", "float32", False, 4)),
     ("float32", "float64"), grad=False)

case("shuffle_rows_sorted", lambda x: nd.sort(nd.random.shuffle(x), axis=0),
     lambda x: np.sort(x, axis=0), (In((5, 3), "distinct"),), NUMERIC, grad=False)
case("shuffle_1d_sorted", lambda x: nd.sort(R.shuffle(x), axis=0), np.sort,
     (In((7,), "distinct"),), NUMERIC, grad=False)


# random_pdf_*: densities against scipy.stats -------------------------------------------------
# Parameters of shape S, samples S + T; scipy gets the parameters on a trailing axis.
_S, _ST = (2, 3), (2, 3, 4)
_COUNTS = In(_ST, "index", None, False, 6)  # integer counts 0..5: no gradient (as MXNet)


def _pdf(dist, is_log):
    return lambda x, *p: getattr(nd, f"random_pdf_{dist}")(x, *p, is_log=is_log)


def _scipy_density(dist, args, discrete, is_log):
    """scipy's (log-)pdf or (log-)pmf with ``args(*params)``, the parameters broadcast
    against the samples' trailing axis."""
    method = getattr(dist, ("log" if is_log else "") + ("pmf" if discrete else "pdf"))
    return lambda x, *p: method(x, **args(*(q[..., None] for q in p)))


# (op suffix, sample, parameters, scipy distribution, its arguments, discrete)
_DENSITIES = [
    ("normal", In(_ST), (In(_S), In(_S, "pos")), ss.norm,
     lambda mu, sigma: {"loc": mu, "scale": sigma}, False),
    ("gamma", In(_ST, "pos"), (In(_S, "pos"), In(_S, "pos")), ss.gamma,
     lambda alpha, beta: {"a": alpha, "scale": 1 / beta}, False),  # beta: a rate
    ("exponential", In(_ST, "pos"), (In(_S, "pos"),), ss.expon,
     lambda lam: {"scale": 1 / lam}, False),
    ("poisson", _COUNTS, (In(_S, "pos"),), ss.poisson, lambda lam: {"mu": lam}, True),
    ("negative_binomial", _COUNTS, (In(_S, "pos"), In(_S, "unit")), ss.nbinom,
     lambda k, p: {"n": k, "p": p}, True),
    ("generalized_negative_binomial", _COUNTS, (In(_S, "pos"), In(_S, "pos")), ss.nbinom,
     lambda mu, alpha: {"n": 1 / alpha, "p": 1 / (1 + mu * alpha)}, True),
]
for _dist, _sample, _params, _scipy, _args, _discrete in _DENSITIES:
    for _log in (False, True):
        case(f"random_pdf_{_dist}" + "_log" * _log, _pdf(_dist, _log),
             _scipy_density(_scipy, _args, _discrete, _log), (_sample, *_params), grad2=False)

# uniform: samples u - 0.5 inside [-a, b) (a, b >= 0.5); the density ignores the sample
for _log in (False, True):
    case("random_pdf_uniform" + "_log" * _log,
         lambda u, a, b, _log=_log: nd.random_pdf_uniform(u - 0.5, -a, b, is_log=_log),
         lambda u, a, b, _log=_log: getattr(ss.uniform, "logpdf" if _log else "pdf")(
             u - 0.5, -a[..., None], (a + b)[..., None]),
         (In(_ST, "unit"), In(_S, "pos"), In(_S, "pos")), grad2=False)

# MXNet 1.9.1 evaluates the formulas outside the support: 1 / (high - low) above high,
# lam * exp(-lam * x) for negative x, NaN for the gamma at negative x
case("random_pdf_uniform_outside_support",
     lambda x, a, b: nd.random_pdf_uniform(x + 3, -a, b),  # x + 3 > 3 > b
     lambda x, a, b: np.broadcast_to(1 / (a + b)[..., None], x.shape),
     (In(_ST, "pos"), In(_S, "pos"), In(_S, "pos")), grad2=False)
case("random_pdf_exponential_negative_sample",
     lambda x, lam: nd.random_pdf_exponential(-x, lam),
     lambda x, lam: lam[..., None] * np.exp(lam[..., None] * x),
     (In(_ST, "unit"), In(_S, "pos")), grad2=False)
case("random_pdf_gamma_negative_sample_nan",
     lambda x, a, b: nd.random_pdf_gamma(-x, a, b, is_log=True),
     lambda x, a, b: np.full(x.shape, np.nan), (In(_ST, "pos"), In(_S, "pos"), In(_S, "pos")),
     grad=False)

# layouts: several sample axes, none (one sample per distribution), 0-d parameters
case("random_pdf_normal_two_sample_axes", _pdf("normal", True),
     lambda x, mu, sigma: ss.norm.logpdf(x, mu[:, None, None], sigma[:, None, None]),
     (In((2, 3, 4)), In((2,)), In((2,), "pos")), grad2=False)
case("random_pdf_gamma_one_sample_each", _pdf("gamma", False),
     lambda x, a, b: ss.gamma.pdf(x, a, scale=1 / b),
     (In(_S, "pos"), In(_S, "pos"), In(_S, "pos")), grad2=False)
case("random_pdf_exponential_0d_rate", _pdf("exponential", True),
     lambda x, lam: ss.expon.logpdf(x, scale=1 / lam), (In((3, 2), "pos"), In((), "pos")),
     grad2=False)


# dirichlet: alpha S + (K,), samples S + T + (K,) -> S + T --------------------------------------
def _dirichlet_log(x, alpha):
    """The log-density of each sample row (loops; rows need not lie on the simplex)."""
    k = alpha.shape[-1]
    rows, alphas = x.reshape(-1, k), alpha.reshape(-1, k)
    per = rows.shape[0] // alphas.shape[0]
    out = np.empty(rows.shape[0])
    for r in range(rows.shape[0]):
        a = alphas[r // per]
        out[r] = (math.lgamma(a.sum()) - sum(math.lgamma(v) for v in a)
                  + sum((v - 1) * math.log(u) for v, u in zip(a, rows[r])))
    return out.reshape(x.shape[:-1] or (1,))


def _simplex(x):
    return x / x.sum(axis=-1, keepdims=True)


for _log in (False, True):
    _ref = (lambda x, a: _dirichlet_log(x, a)) if _log else (
        lambda x, a: np.exp(_dirichlet_log(x, a)))
    case("random_pdf_dirichlet" + "_log" * _log, _pdf("dirichlet", _log), _ref,
         (In((2, 4, 3), "unit"), In((2, 3), "pos")), grad2=False)
case("random_pdf_dirichlet_simplex",
     lambda x, a: nd.random_pdf_dirichlet(_simplex(x), a, is_log=True),
     lambda x, a: np.stack([ss.dirichlet.logpdf(_simplex(x[i]).T, a[i]) for i in range(2)]),
     (In((2, 5, 4), "pos"), In((2, 4), "pos")), ("float32", "float64"), grad2=False)
case("random_pdf_dirichlet_one_sample",
     lambda x, a: nd.random_pdf_dirichlet(_simplex(x), a),
     lambda x, a: np.atleast_1d(ss.dirichlet.pdf(_simplex(x), a)),
     (In((3,), "unit"), In((3,), "pos")), ("float32", "float64"), grad=False)
case("random_pdf_dirichlet_two_sample_axes", _pdf("dirichlet", True), _dirichlet_log,
     (In((2, 3, 2, 4), "unit"), In((2, 4), "pos")), grad2=False)
