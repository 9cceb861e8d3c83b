"""The mxcore-contrib-ops plugin's rms_norm, swiglu, bias_gelu and rotary_embedding on
every available device: the op-table checks (forward in every float dtype, float64
finite-difference gradients of first and second order), PyTorch's numbers where torch
is installed, error messages, the frontends, autograd and hybridized Gluon blocks."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special

import mxcore as mx
from mxcore.base import MXCoreError
from mxcore.testing import checks as conformance
from mxcore.testing.optable import Case, In

nd = mx.nd


# numpy references (float64) --------------------------------------------------------------

def _rms_norm(x, gamma, axis=-1, eps=1e-6):
    shape = [1] * x.ndim
    shape[axis] = -1
    return x / np.sqrt(np.mean(x * x, axis=axis, keepdims=True) + eps) * gamma.reshape(shape)


def _swiglu(x, axis=-1):
    a, b = np.split(x, 2, axis=axis)
    return a * special.expit(a) * b


def _gelu(z, approximate=False):
    if approximate:
        return 0.5 * z * (1 + np.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z ** 3)))
    return 0.5 * z * (1 + special.erf(z / math.sqrt(2)))


def _bias_gelu(x, bias):
    return _gelu(x + bias)


def _rope(x, offset=0, base=10000.0, interleaved=False):
    """Pairs as complex numbers, multiplied by exp(i * angle)."""
    seq, dim = x.shape[-2:]
    inv_freq = 1.0 / base ** (np.arange(0, dim, 2) / dim)
    rot = np.exp(1j * np.outer(np.arange(offset, offset + seq), inv_freq))
    if interleaved:
        z = (x[..., 0::2] + 1j * x[..., 1::2]) * rot
        return np.stack([z.real, z.imag], axis=-1).reshape(x.shape)
    z = (x[..., :dim // 2] + 1j * x[..., dim // 2:]) * rot
    return np.concatenate([z.real, z.imag], axis=-1)


CASES = [
    Case("rms_norm", nd.contrib.rms_norm, _rms_norm, (In((2, 3, 8)), In((8,)))),
    Case("rms_norm_axis1_eps", lambda x, g: nd.contrib.rms_norm(x, g, axis=1, eps=1e-2),
         lambda x, g: _rms_norm(x, g, 1, 1e-2), (In((2, 4, 3)), In((4,)))),
    Case("rms_norm_1d", nd.contrib.rms_norm, _rms_norm, (In((6,)), In((6,)))),
    Case("swiglu", nd.contrib.swiglu, _swiglu, (In((2, 3, 8)),)),
    Case("swiglu_axis0", lambda x: nd.contrib.swiglu(x, axis=0),
         lambda x: _swiglu(x, 0), (In((4, 3)),)),
    Case("bias_gelu", nd.contrib.bias_gelu, _bias_gelu, (In((2, 3, 5)), In((5,)))),
    Case("bias_gelu_tanh", lambda x, b: nd.contrib.bias_gelu(x, b, approximate=True),
         lambda x, b: _gelu(x + b, True), (In((3, 4)), In((4,)))),
    Case("bias_gelu_1d", nd.contrib.bias_gelu, _bias_gelu, (In((4,)), In((4,)))),
    Case("rotary_embedding", nd.contrib.rotary_embedding, _rope, (In((2, 2, 5, 8)),)),
    Case("rotary_embedding_interleaved",
         lambda x: nd.contrib.rotary_embedding(x, interleaved=True),
         lambda x: _rope(x, interleaved=True), (In((1, 2, 4, 6)),)),
    Case("rotary_embedding_offset_base",
         lambda x: nd.contrib.rotary_embedding(x, offset=7, base=100.0),
         lambda x: _rope(x, 7, 100.0), (In((2, 1, 3, 4)),)),
    Case("rotary_embedding_2d", nd.contrib.rotary_embedding, _rope, (In((3, 4)),)),
]
FORWARD = [pytest.param(c, dt, id=f"{c.name}-{dt}") for c in CASES for dt in c.dtypes]


@pytest.mark.parametrize("case,dtype", FORWARD)
def test_forward(case, dtype, device):
    conformance.check_forward(case, dtype, device)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_gradient(case, device):
    conformance.check_gradient(case, device)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_second_order_gradient(case, device):
    conformance.check_second_order_gradient(case, device)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_outputs_are_fresh(case, device):
    conformance.check_outputs_are_fresh(case, device)


# the frontends -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["rms_norm", "swiglu", "bias_gelu", "rotary_embedding"])
def test_frontend_is_the_plugins_function(name):
    from mxcore.plugins import registry
    fn = getattr(nd.contrib, name)
    assert fn is getattr(nd, name) is registry().ops[name].frontend
    assert fn.__module__.startswith("mxcore_contrib_ops.") and fn.__doc__


def test_rotary_reverse_undoes_the_rotation(device):
    x = nd.array(np.random.default_rng(0).normal(size=(2, 3, 4, 6)), ctx=device)
    for interleaved in (False, True):
        y = nd.contrib.rotary_embedding(x, offset=5, interleaved=interleaved)
        back = nd.invoke("rotary_embedding", y, offset=5, interleaved=interleaved, reverse=True)
        np.testing.assert_allclose(back.asnumpy(), x.asnumpy(), rtol=1e-5, atol=1e-6)


def test_half_precision_keeps_its_dtype(device):
    pytest.importorskip("ml_dtypes")
    x = nd.array(np.linspace(-3, 3, 16).reshape(2, 8), ctx=device)
    for dtype in ("float16", "bfloat16"):
        h = x.astype(dtype)
        g = nd.ones((8,), ctx=device, dtype=dtype)
        for out in (nd.contrib.rms_norm(h, g), nd.contrib.swiglu(h),
                    nd.contrib.bias_gelu(h, g), nd.contrib.rotary_embedding(h)):
            assert out.dtype == h.dtype


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_first_order_gradients_take_one_backward_op_each(device, dtype, monkeypatch):
    """rms_norm, swiglu and bias_gelu differentiate through one fused backward op each;
    with create_graph=True through core ops (differentiable again); both agree."""
    rng = np.random.default_rng(5)
    x, gamma, bias = (nd.array(rng.normal(size=s), ctx=device, dtype=dtype)
                      for s in ((3, 4, 8), (8,), (8,)))
    head = nd.array(rng.normal(size=(3, 4, 4)), ctx=device, dtype=dtype)
    calls = []
    real = nd.invoke

    def spy(name, *args, **kwargs):
        calls.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(nd, "invoke", spy)
    for a in (x, gamma, bias):
        a.attach_grad()
    with mx.autograd.record():
        y = nd.contrib.swiglu(nd.contrib.bias_gelu(nd.contrib.rms_norm(x, gamma), bias))
    calls.clear()
    fused = mx.autograd.grad(y, [x, gamma, bias], head_grads=head, retain_graph=True)
    assert {"rms_norm_backward", "swiglu_backward", "bias_gelu_backward"} <= set(calls)
    calls.clear()
    composite = mx.autograd.grad(y, [x, gamma, bias], head_grads=head, create_graph=True)
    assert not [c for c in calls if c.endswith("_backward")]
    tol = 1e-5 if dtype == "float32" else 1e-12
    for f, c in zip(fused, composite):
        np.testing.assert_allclose(f.asnumpy(), c.asnumpy(), rtol=tol, atol=tol)


def test_backward_ops_check_their_inputs_and_refuse_a_gradient():
    x = nd.ones((2, 8))
    with pytest.raises(MXCoreError, match="swiglu_backward.*out_grad shape \\(2, 3\\)"):
        nd.invoke("swiglu_backward", nd.ones((2, 3)), x)
    with pytest.raises(MXCoreError, match="rms_norm_backward.*out_grad shape \\(2, 4\\)"):
        nd.invoke("rms_norm_backward", nd.ones((2, 4)), x, nd.ones((8,)))
    with pytest.raises(MXCoreError, match="bias_gelu_backward.*bias shape"):
        nd.invoke("bias_gelu_backward", x, x, nd.ones((3,)))
    g = nd.ones((2, 4))
    g.attach_grad()
    with mx.autograd.record():
        dx = nd.invoke("swiglu_backward", g, x)
    with pytest.raises(MXCoreError, match="no gradient rule"):
        dx.backward()


# PyTorch's numbers ------------------------------------------------------------------------

def _torch():
    torch = pytest.importorskip("torch")
    return torch, torch.nn.functional


def _pair(rng, *shapes):
    return [rng.normal(size=s) for s in shapes]


def test_rms_norm_matches_torch(device):
    torch, F = _torch()
    x, g = _pair(np.random.default_rng(1), (3, 4, 16), (16,))
    tx, tg = torch.tensor(x, requires_grad=True), torch.tensor(g, requires_grad=True)
    if hasattr(F, "rms_norm"):  # torch >= 2.4
        ty = F.rms_norm(tx, (16,), tg, eps=1e-6)
    else:
        ty = tx * torch.rsqrt(tx.pow(2).mean(-1, keepdim=True) + 1e-6) * tg
    w = np.random.default_rng(2).normal(size=ty.shape)
    (ty * torch.tensor(w)).sum().backward()
    mx_x, mx_g = nd.array(x, ctx=device, dtype="float64"), nd.array(g, ctx=device,
                                                                     dtype="float64")
    mx_x.attach_grad()
    mx_g.attach_grad()
    with mx.autograd.record():
        y = nd.contrib.rms_norm(mx_x, mx_g, eps=1e-6)
        (y * nd.array(w, ctx=device, dtype="float64")).sum().backward()
    np.testing.assert_allclose(y.asnumpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mx_x.grad.asnumpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mx_g.grad.asnumpy(), tg.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("approximate", [False, True])
def test_bias_gelu_matches_torch(device, approximate):
    torch, F = _torch()
    x, b = _pair(np.random.default_rng(3), (4, 7), (7,))
    tx, tb = torch.tensor(x, requires_grad=True), torch.tensor(b, requires_grad=True)
    ty = F.gelu(tx + tb, approximate="tanh" if approximate else "none")
    ty.sum().backward()
    mx_x, mx_b = nd.array(x, ctx=device, dtype="float64"), nd.array(b, ctx=device,
                                                                     dtype="float64")
    mx_x.attach_grad()
    mx_b.attach_grad()
    with mx.autograd.record():
        y = nd.contrib.bias_gelu(mx_x, mx_b, approximate=approximate)
    y.backward()
    np.testing.assert_allclose(y.asnumpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(mx_x.grad.asnumpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(mx_b.grad.asnumpy(), tb.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_swiglu_matches_torch(device):
    torch, F = _torch()
    x = np.random.default_rng(4).normal(size=(3, 10)) * 4
    tx = torch.tensor(x)
    a, b = tx.chunk(2, dim=-1)
    want = (F.silu(a) * b).numpy()
    got = nd.contrib.swiglu(nd.array(x, ctx=device, dtype="float64")).asnumpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    # float32: within rounding of PyTorch's float32 result
    got32 = nd.contrib.swiglu(nd.array(x, ctx=device, dtype="float32")).asnumpy()
    a32, b32 = tx.float().chunk(2, dim=-1)
    np.testing.assert_allclose(got32, (F.silu(a32) * b32).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("interleaved", [False, True])
def test_rotary_embedding_matches_torch_implementations(device, interleaved):
    """Against the usual PyTorch code: Llama's rotate_half and GPT-J's rotate_every_two."""
    torch, _ = _torch()
    batch, heads, seq, dim, offset = 2, 3, 6, 8, 4
    x = torch.tensor(np.random.default_rng(5).normal(size=(batch, heads, seq, dim)))
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    freqs = torch.outer(torch.arange(offset, offset + seq, dtype=torch.float64), inv_freq)
    if interleaved:
        cos, sin = (f.repeat_interleave(2, dim=-1) for f in (freqs.cos(), freqs.sin()))
        rotated = torch.stack((-x[..., 1::2], x[..., 0::2]), dim=-1).flatten(-2)
    else:
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        rotated = torch.cat((-x[..., dim // 2:], x[..., :dim // 2]), dim=-1)
    want = (x * cos + rotated * sin).numpy()
    got = nd.contrib.rotary_embedding(nd.array(x.numpy(), ctx=device, dtype="float64"),
                                      offset=offset, interleaved=interleaved)
    np.testing.assert_allclose(got.asnumpy(), want, rtol=1e-12, atol=1e-12)


# errors -----------------------------------------------------------------------------------

def _raises(match, fn, *shapes, dtype="float32", **attrs):
    arrays = [nd.zeros(s, dtype=dtype) for s in shapes]
    with pytest.raises(MXCoreError, match=match):
        fn(*arrays, **attrs)


def test_errors_name_the_op_and_the_shapes():
    _raises(r"rms_norm.*gamma shape \(5,\) does not match axis 2 of data shape \(2, 3, 4\) "
            r"\(expected \(4,\)\)", nd.contrib.rms_norm, (2, 3, 4), (5,))
    _raises(r"rms_norm.*gamma shape \(4,\) does not match axis 1", nd.contrib.rms_norm,
            (2, 3, 4), (4,), axis=1)
    _raises(r"rms_norm.*axis 3 is out of range", nd.contrib.rms_norm, (2, 3, 4), (4,), axis=3)
    _raises(r"rms_norm.*floating-point input, got int32", nd.contrib.rms_norm, (2, 4), (4,),
            dtype="int32")
    _raises(r"swiglu.*axis 1 of shape \(2, 5\) has odd size 5", nd.contrib.swiglu, (2, 5))
    _raises(r"swiglu.*axis 0 of shape \(3, 4\) has odd size 3", nd.contrib.swiglu, (3, 4),
            axis=0)
    _raises(r"bias_gelu.*bias shape \(3,\) does not match the last axis of data shape "
            r"\(2, 4\)", nd.contrib.bias_gelu, (2, 4), (3,))
    _raises(r"rotary_embedding.*shape \(1, 2, 3, 5\) is odd \(5\)",
            nd.contrib.rotary_embedding, (1, 2, 3, 5))
    _raises(r"rotary_embedding.*at least \(seq, dim\)", nd.contrib.rotary_embedding, (4,))
    _raises(r"rotary_embedding.*offset must be a non-negative integer, got -1",
            nd.contrib.rotary_embedding, (1, 1, 2, 4), offset=-1)
    _raises(r"rotary_embedding.*base must be a positive number", nd.contrib.rotary_embedding,
            (1, 1, 2, 4), base=0.0)


def test_mixed_dtypes_are_refused():
    with pytest.raises(MXCoreError, match=r"rms_norm.*gamma dtype float64 differs from data "
                                          r"dtype float32"):
        nd.contrib.rms_norm(nd.zeros((2, 4)), nd.zeros((4,), dtype="float64"))
    with pytest.raises(MXCoreError, match=r"bias_gelu.*bias dtype float16 differs"):
        nd.contrib.bias_gelu(nd.zeros((2, 4)), nd.zeros((4,), dtype="float16"))


# autograd and Gluon -----------------------------------------------------------------------

def test_autograd_through_a_chain_of_the_ops(device):
    """A transformer-like chain: gradients of every input reach the right shapes and
    agree with finite differences (float64)."""
    rng = np.random.default_rng(6)
    host = [rng.normal(size=(1, 2, 3, 8)), rng.normal(size=(8,)), rng.normal(size=(8,))]

    def loss(x, gamma, bias):
        h = nd.contrib.rms_norm(x, gamma)
        h = nd.contrib.rotary_embedding(h, offset=2, interleaved=True)
        h = nd.contrib.bias_gelu(h, bias, approximate=True)
        return (nd.contrib.swiglu(h) ** 2).sum()

    xs = [nd.array(a, ctx=device, dtype="float64") for a in host]
    for x in xs:
        x.attach_grad()
    with mx.autograd.record():
        L = loss(*xs)
    L.backward()
    numeric = conformance._numeric_grad(
        lambda h: float(loss(*conformance._to_nd(h, device)).asscalar()), host, [0, 1, 2],
        device)
    for x, n in zip(xs, numeric):
        assert x.grad.shape == x.shape
        np.testing.assert_allclose(x.grad.asnumpy(), n, rtol=1e-5, atol=1e-6)


class _Block(mx.gluon.HybridBlock):
    def __init__(self, dim: int, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.gamma = self.params.get("gamma", shape=(dim,), init=mx.init.Uniform(1.0))
            self.bias = self.params.get("bias", shape=(dim,), init=mx.init.Uniform(1.0))

    def hybrid_forward(self, F, x, gamma, bias):
        h = F.contrib.rms_norm(x, gamma, eps=1e-5)
        h = F.contrib.rotary_embedding(h, offset=3)
        h = F.bias_gelu(h, bias)
        return F.contrib.swiglu(h)


def test_hybridized_block_matches_eager(device):
    block = _Block(8)
    block.initialize(ctx=device)
    x = nd.array(np.random.default_rng(7).normal(size=(2, 2, 5, 8)), ctx=device)

    def run():
        x.attach_grad()
        with mx.autograd.record():
            out = block(x)
            L = (out * out).sum()
        L.backward()
        grads = [p.grad().asnumpy().copy() for p in block.collect_params().values()]
        return out.asnumpy(), x.grad.asnumpy().copy(), grads

    eager = run()
    block.hybridize()
    for _ in range(2):  # the first call traces the plan, the second replays it
        got = run()
        assert block.last_plan() is not None
        np.testing.assert_allclose(got[0], eager[0], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(got[1], eager[1], rtol=1e-5, atol=1e-6)
        for a, b in zip(got[2], eager[2]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
