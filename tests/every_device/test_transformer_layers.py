"""gluon.nn.RMSNorm and MultiHeadAttention (ops from the mxcore-contrib-ops plugin):
results against numpy compositions, deferred shapes, hybridize, training."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore import autograd, gluon

nd = mx.nd


def test_rms_norm_layer_matches_numpy_and_defers_its_shape(device):
    x = np.random.default_rng(0).standard_normal((2, 3, 8)).astype(np.float32)
    layer = gluon.nn.RMSNorm(epsilon=1e-5)
    assert "deferred" in repr(layer)
    layer.initialize(ctx=device)
    layer.gamma.set_data(nd.array(np.linspace(0.5, 1.5, 8), ctx=device))
    out = layer(nd.array(x, ctx=device)).asnumpy()
    want = x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-5) * np.linspace(0.5, 1.5, 8)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    assert layer.gamma.shape == (8,) and "RMSNorm(8" in repr(layer)


def _mha_reference(x, mask, params, heads):
    """Multi-head self-attention in numpy (float64) from the layer's parameters."""
    def proj(name, a):
        return a @ params[f"{name}_weight"].T + params[f"{name}_bias"]
    b, length, units = x.shape
    d = units // heads

    def split(a):
        return a.reshape(b, length, heads, d).transpose(0, 2, 1, 3)
    q, k, v = (split(proj(n, x)) for n in ("query", "key", "value"))
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    w = np.exp(scores - scores.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    out = (w @ v).transpose(0, 2, 1, 3).reshape(b, length, units)
    return proj("out", out)


@pytest.mark.parametrize("causal", [False, True])
def test_multi_head_attention_matches_numpy(device, causal):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 8))
    layer = gluon.nn.MultiHeadAttention(8, num_heads=2, causal=causal, in_units=8)
    layer.initialize(mx.init.Xavier(), ctx=device)
    params = {}
    for block, name in ((layer.query_proj, "query"), (layer.key_proj, "key"),
                        (layer.value_proj, "value"), (layer.out_proj, "out")):
        params[f"{name}_weight"] = block.weight.data().asnumpy().astype(np.float64)
        params[f"{name}_bias"] = rng.standard_normal(8)
        block.bias.set_data(nd.array(params[f"{name}_bias"], ctx=device))
    mask = np.tril(np.ones((5, 5), bool)) if causal else None
    out = layer(nd.array(x, ctx=device, dtype="float32")).asnumpy()
    np.testing.assert_allclose(out, _mha_reference(x, mask, params, 2), rtol=1e-4, atol=1e-5)


def test_multi_head_attention_hybridizes_and_trains(device):
    mx.random.seed(2)
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.MultiHeadAttention(8, num_heads=2, in_units=8), gluon.nn.RMSNorm())
    net.initialize(mx.init.Xavier(), ctx=device)
    x = nd.array(np.random.default_rng(3).standard_normal((2, 4, 8)), ctx=device)
    mask = nd.array(np.ones((1, 1, 4, 4)), ctx=device).astype("bool")
    attention = net[0]
    np.testing.assert_allclose(attention(x, x, x, mask).asnumpy(), attention(x).asnumpy(),
                               rtol=1e-5, atol=1e-6)  # an all-True mask changes nothing
    eager = net(x).asnumpy()
    net.hybridize()
    np.testing.assert_allclose(net(x).asnumpy(), eager, rtol=1e-5, atol=1e-6)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    before = attention.query_proj.weight.data().asnumpy()
    with autograd.record():
        loss = (net(x) ** 2).mean()
    loss.backward()
    trainer.step(1)
    assert np.isfinite(attention.query_proj.weight.grad().asnumpy()).all()
    assert not np.array_equal(attention.query_proj.weight.data().asnumpy(), before)


def test_units_must_split_into_heads():
    with pytest.raises(ValueError, match="units \\(10\\) must be a multiple of num_heads"):
        gluon.nn.MultiHeadAttention(10, num_heads=4)
