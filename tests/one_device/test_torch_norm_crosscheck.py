"""InstanceNorm, GroupNorm, L2Normalization, LRN and Embedding against PyTorch CPU with
the same inputs: forward values and gradients, in float64.  Skips when torch is not
installed (it is never a dependency)."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx

torch = pytest.importorskip("torch")
F = torch.nn.functional
TOL = {"rtol": 1e-10, "atol": 1e-10}


def _pair(rng, shape):
    a = rng.standard_normal(shape)
    x = mx.nd.array(a, dtype="float64")
    x.attach_grad()
    return x, torch.tensor(a, requires_grad=True)


def _backward(y, ty, rng):
    """Backpropagate the same random weighting of the outputs through both."""
    w = rng.standard_normal(y.shape)
    return mx.nd.array(w, dtype="float64"), torch.tensor(w)


def _check(pairs, y, ty):
    np.testing.assert_allclose(y.asnumpy(), ty.detach().numpy(), **TOL)
    for x, tx in pairs:
        np.testing.assert_allclose(x.grad.asnumpy(), tx.grad.numpy(), **TOL)


@pytest.mark.parametrize("shape, eps", [((2, 3, 5), 1e-3), ((3, 4, 3, 2), 1e-5),
                                        ((2, 2, 2, 3, 2), 0.1)])
def test_instance_norm_matches_torch(shape, eps):
    rng = np.random.default_rng(len(shape))
    pairs = [_pair(rng, shape), _pair(rng, shape[1:2]), _pair(rng, shape[1:2])]
    (x, tx), (g, tg), (b, tb) = pairs
    with mx.autograd.record():
        y = mx.nd.InstanceNorm(x, g, b, eps=eps)
    ty = F.instance_norm(tx, weight=tg, bias=tb, eps=eps)
    w, tw = _backward(y, ty, rng)
    y.backward(w)
    ty.backward(tw)
    _check(pairs, y, ty)


@pytest.mark.parametrize("shape, groups", [((2, 6, 4), 3), ((2, 4, 3, 3), 2),
                                           ((3, 4, 5), 1), ((2, 4, 3), 4)])
def test_group_norm_matches_torch(shape, groups):
    """MXNet 1.x's gamma/beta are per group: torch's per-channel affine repeats them."""
    rng = np.random.default_rng(groups)
    pairs = [_pair(rng, shape), _pair(rng, (groups,)), _pair(rng, (groups,))]
    (x, tx), (g, tg), (b, tb) = pairs
    with mx.autograd.record():
        y = mx.nd.GroupNorm(x, g, b, num_groups=groups, eps=1e-4)
    per = shape[1] // groups
    ty = F.group_norm(tx, groups, tg.repeat_interleave(per), tb.repeat_interleave(per), 1e-4)
    w, tw = _backward(y, ty, rng)
    y.backward(w)
    ty.backward(tw)
    _check(pairs, y, ty)


@pytest.mark.parametrize("mode", ["instance", "channel", "spatial"])
def test_l2_normalization_matches_torch(mode):
    rng = np.random.default_rng(len(mode))
    shape = (2, 3, 4, 2)
    x, tx = _pair(rng, shape)
    with mx.autograd.record():
        y = mx.nd.L2Normalization(x, eps=0.0, mode=mode)
    # torch divides by max(norm, eps): with eps = 0 both divide by the norm itself
    if mode == "instance":
        ty = F.normalize(tx.reshape(2, -1), dim=1, eps=0.0).reshape(shape)
    elif mode == "channel":
        ty = F.normalize(tx, dim=1, eps=0.0)
    else:
        ty = F.normalize(tx.reshape(2, 3, -1), dim=2, eps=0.0).reshape(shape)
    w, tw = _backward(y, ty, rng)
    y.backward(w)
    ty.backward(tw)
    _check([(x, tx)], y, ty)


@pytest.mark.parametrize("nsize, alpha, beta, knorm", [(3, 1e-4, 0.75, 2.0), (5, 0.5, 0.75, 1.0),
                                                       (1, 0.3, 0.5, 1.5), (7, 2.0, 1.2, 0.5)])
def test_lrn_matches_torch(nsize, alpha, beta, knorm):
    rng = np.random.default_rng(nsize)
    x, tx = _pair(rng, (2, 6, 3, 4))
    with mx.autograd.record():
        y = mx.nd.LRN(x, alpha=alpha, beta=beta, knorm=knorm, nsize=nsize)
    ty = F.local_response_norm(tx, nsize, alpha=alpha, beta=beta, k=knorm)
    w, tw = _backward(y, ty, rng)
    y.backward(w)
    ty.backward(tw)
    _check([(x, tx)], y, ty)


@pytest.mark.parametrize("index_dtype", ["int32", "int64", "float32"])
def test_embedding_matches_torch(index_dtype):
    rng = np.random.default_rng(7)
    idx = rng.integers(0, 6, size=(4, 5))  # in range: torch does not clip; repeats likely
    w, tw = _pair(rng, (6, 3))
    with mx.autograd.record():
        y = mx.nd.Embedding(mx.nd.array(idx, dtype=index_dtype), w, input_dim=6, output_dim=3)
    ty = F.embedding(torch.tensor(idx), tw)
    g, tg = _backward(y, ty, rng)
    y.backward(g)
    ty.backward(tg)
    _check([(w, tw)], y, ty)
