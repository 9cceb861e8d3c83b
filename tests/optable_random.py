"""Op-table cases: sample_*/random_* distributions (deterministic properties only).
Imported by tests/optable.py, which collects every case into one table.

Random ops enter the table where their result does not depend on the draws:
degenerate parameters (a zero-width uniform, a zero-scale normal, Poisson and
negative binomial counts of rate 0), multinomial rows whose first category holds
more than the whole unit interval (its index and log-probability, and that
log-probability's gradient), shuffle up to the row order (sorted along axis 0),
and multinomial's fused backward.  Each runs on every device in every dtype the op
takes, so the table checks shapes, dtypes, devices and the parameters' layout;
the statistics are in tests/every_device/test_random_distributions.py.
"""
from __future__ import annotations

import numpy as np

import mxcore as mx
from mxcore.ops import random as R  # sample_*: mx.nd's names once it exports them
from tests.optable import FLOATS, INTS, NUMERIC, In, case

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
