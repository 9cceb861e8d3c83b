"""mx.nd.contrib.scaled_dot_product_attention (the mxcore-contrib-ops plugin): forward
against a float64 numpy reference, a composition of core ops and PyTorch; gradients
against finite differences and torch autograd; every float dtype; dropout; errors;
hybridized Gluon blocks."""
from __future__ import annotations

import math

import numpy as np
import pytest

import hal
import mxcore as mx
from mxcore.base import MXCoreError
from mxcore.testing import checks as conformance
from mxcore.testing.optable import FLOATS, Case, In

sdpa = mx.nd.contrib.scaled_dot_product_attention


# references --------------------------------------------------------------------------------

def _allowed(lq, lk, mask=None, causal=False):
    """Boolean (.., Lq, Lk): where a query may attend (None: everywhere)."""
    allowed = None
    if mask is not None and mask.dtype == np.bool_:
        allowed = mask
    if causal:
        tri = np.tril(np.ones((lq, lk), dtype=bool))
        allowed = tri if allowed is None else allowed & tri
    return allowed


def reference(q, k, v, mask=None, causal=False, scale=None):
    """float64 attention written out by hand; fully masked rows give zeros."""
    q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = np.einsum("bhqd,bhkd->bhqk", q, k) * scale
    if mask is not None and mask.dtype != np.bool_:
        s = s + np.asarray(mask, np.float64)
    allowed = _allowed(q.shape[2], k.shape[2], mask, causal)
    if allowed is not None:
        s = np.where(allowed, s, -np.inf)
    m = s.max(-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    e = np.exp(s - m)
    total = e.sum(-1, keepdims=True)
    w = e / np.where(total == 0, 1, total)
    return np.einsum("bhqk,bhkv->bhqv", w, v)


def composed(q, k, v, mask=None, causal=False, scale=None):
    """The same in core mxcore ops (batch_dot, softmax)."""
    b, h, lq, d = q.shape
    lk, dv = k.shape[2], v.shape[3]
    scale = 1 / math.sqrt(d) if scale is None else scale
    s = mx.nd.batch_dot(q.reshape((b * h, lq, d)), k.reshape((b * h, lk, d)),
                        transpose_b=True).reshape((b, h, lq, lk)) * scale
    excluded = mx.nd.zeros_like(s) - np.inf
    if mask is not None:
        if mask.dtype == np.bool_:
            s = mx.nd.where(mx.nd.broadcast_to(mask, s.shape), s, excluded)
        else:
            s = s + mask
    if causal:
        tri = mx.nd.array(np.tril(np.ones((lq, lk), dtype=bool)), ctx=q.context, dtype="bool")
        s = mx.nd.where(mx.nd.broadcast_to(tri, s.shape), s, excluded)
    w = mx.nd.softmax(s, axis=-1)
    return mx.nd.batch_dot(w.reshape((b * h, lq, lk)), v.reshape((b * h, lk, dv))) \
        .reshape((b, h, lq, dv))


# configurations: (name, q shape, k shape, v shape, mask kind, causal, scale)
CONFIGS = {
    "plain": ((2, 3, 5, 4), (2, 3, 5, 4), (2, 3, 5, 4), None, False, None),
    "bool_mask": ((2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 4), "bool", False, None),
    "float_mask": ((2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 4), "float", False, None),
    "causal": ((2, 2, 6, 4), (2, 2, 6, 4), (2, 2, 6, 4), None, True, None),
    "causal_lq_lt_lk": ((1, 2, 3, 4), (1, 2, 5, 4), (1, 2, 5, 4), None, True, None),
    "causal_lq_gt_lk": ((1, 2, 5, 4), (1, 2, 3, 4), (1, 2, 3, 4), None, True, None),
    "lq_ne_lk": ((2, 2, 3, 4), (2, 2, 7, 4), (2, 2, 7, 4), None, False, None),
    "dv_ne_d": ((2, 2, 4, 3), (2, 2, 5, 3), (2, 2, 5, 6), None, False, None),
    "scale": ((2, 2, 4, 4), (2, 2, 4, 4), (2, 2, 4, 4), None, False, 0.7),
    "broadcast_mask": ((2, 3, 4, 4), (2, 3, 5, 4), (2, 3, 5, 4), "bool_row", False, None),
    "mask_and_causal": ((1, 2, 5, 4), (1, 2, 5, 4), (1, 2, 5, 4), "bool", True, 0.5),
}


def _mask(kind, q_shape, k_shape, rng):
    shape = q_shape[:3] + (k_shape[2],)
    if kind == "bool":
        m = rng.random(shape) > 0.3
        m[..., 0] = True  # every row attends somewhere (fully masked rows: own test)
        return m
    if kind == "bool_row":  # (B, 1, 1, Lk): key padding
        m = rng.random((shape[0], 1, 1, shape[3])) > 0.4
        m[..., 0] = True
        return m
    if kind == "float":
        return rng.normal(size=shape) + np.where(rng.random(shape) > 0.8, -np.inf, 0)
    return None


def _host(name, rng):
    qs, ks, vs, kind, causal, scale = CONFIGS[name]
    q, k, v = (rng.normal(size=s) for s in (qs, ks, vs))
    return q, k, v, _mask(kind, qs, ks, rng), causal, scale


def _nd(a, device, dtype="float64"):
    if a is None:
        return None
    return mx.nd.array(a, ctx=device, dtype="bool" if a.dtype == np.bool_ else dtype)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_forward_matches_references(device, name):
    q, k, v, mask, causal, scale = _host(name, np.random.default_rng(0))
    xs = [_nd(a, device) for a in (q, k, v, mask)]
    out = sdpa(*xs[:3], mask=xs[3], causal=causal, scale=scale)
    assert out.shape == q.shape[:3] + (v.shape[3],) and out.dtype == np.float64
    assert out.context == device
    want = reference(q, k, v, mask, causal, scale)
    np.testing.assert_allclose(out.asnumpy(), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out.asnumpy(), composed(*xs[:3], xs[3], causal, scale).asnumpy(),
                               rtol=1e-12, atol=1e-12)


def _torch_run(q, k, v, mask, causal, scale, w):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    ts = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    tm = None if mask is None else torch.tensor(mask)
    if causal and mask is not None:  # PyTorch takes one or the other: combine them here
        tri = torch.ones(q.shape[2], k.shape[2], dtype=torch.bool).tril()
        tm, causal = tm & tri, False
    out = F.scaled_dot_product_attention(*ts, attn_mask=tm, is_causal=causal, scale=scale)
    (out * torch.tensor(w)).sum().backward()
    return out.detach().numpy(), [t.grad.numpy() for t in ts]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_matches_torch_forward_and_gradients(device, name):
    rng = np.random.default_rng(1)
    q, k, v, mask, causal, scale = _host(name, rng)
    w = rng.normal(size=q.shape[:3] + (v.shape[3],))
    want, want_grads = _torch_run(q, k, v, mask, causal, scale, w)
    xs = [_nd(a, device) for a in (q, k, v, mask)]
    for x in xs[:3]:
        x.attach_grad()
    with mx.autograd.record():
        out = sdpa(*xs[:3], mask=xs[3], causal=causal, scale=scale)
        loss = (out * _nd(w, device)).sum()
    loss.backward()
    np.testing.assert_allclose(out.asnumpy(), want, rtol=1e-10, atol=1e-12)
    for role, x, g in zip("qkv", xs, want_grads):
        np.testing.assert_allclose(x.grad.asnumpy(), g, rtol=1e-9, atol=1e-11,
                                   err_msg=f"gradient of {role}")


# the conformance suite's checks, on cases of this op ---------------------------------------

def _case(name, q, k, v, mask=None, causal=False, scale=None, tol=None):
    inputs = [In(q), In(k), In(v)]
    if mask == "bool":
        inputs.append(In(q[:3] + (k[2],), kind="mask", dtype="bool", diff=False))
    elif mask == "float":
        inputs.append(In(q[:3] + (k[2],), diff=False))

    def fn(*xs):
        return sdpa(*xs[:3], mask=xs[3] if len(xs) > 3 else None, causal=causal, scale=scale)

    def ref(*xs):
        return reference(*xs[:3], xs[3] if len(xs) > 3 else None, causal, scale)

    return Case(name, fn, ref, tuple(inputs), grad2=False, tol=tol or {})


# float16/bfloat16 inputs are exact in the reference; the error is the kernel's float32
# work and the final rounding
CASES = [
    _case("sdpa", (2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 3)),
    _case("sdpa_bool_mask", (1, 2, 4, 3), (1, 2, 5, 3), (1, 2, 5, 2), mask="bool"),
    _case("sdpa_float_mask", (1, 2, 4, 3), (1, 2, 3, 3), (1, 2, 3, 3), mask="float"),
    _case("sdpa_causal", (1, 2, 4, 3), (1, 2, 4, 3), (1, 2, 4, 2), causal=True, scale=0.8),
]


@pytest.mark.parametrize("case", CASES, ids=repr)
@pytest.mark.parametrize("dtype", FLOATS)
def test_conformance_forward(case, dtype, device):
    conformance.check_forward(case, dtype, device)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_gradient_against_finite_differences(case, device):
    conformance.check_gradient(case, device)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_outputs_are_fresh(case, device):
    conformance.check_outputs_are_fresh(case, device)


@pytest.mark.parametrize("dtype,rtol,atol", [("float16", 2e-2, 2e-2), ("bfloat16", 8e-2, 8e-2),
                                             ("float32", 1e-4, 1e-5), ("float64", 1e-10, 1e-12)])
def test_gradients_in_every_float_dtype(device, dtype, rtol, atol):
    rng = np.random.default_rng(2)
    q, k, v, mask, causal, scale = _host("bool_mask", rng)
    q, k, v = (a.astype(hal.to_dtype(dtype)) for a in (q, k, v))
    w = rng.normal(size=q.shape[:3] + (v.shape[3],))
    _, want = _torch_run(*(a.astype(np.float64) for a in (q, k, v)), mask, causal, scale, w)
    xs = [_nd(a, device, dtype) for a in (q, k, v, mask)]
    for x in xs[:3]:
        x.attach_grad()
    with mx.autograd.record():
        out = sdpa(*xs[:3], mask=xs[3], causal=causal, scale=scale)
        loss = (out * _nd(w, device, dtype)).sum()
    loss.backward()
    assert out.dtype == hal.to_dtype(dtype)
    for x, g in zip(xs, want):
        assert x.grad.dtype == hal.to_dtype(dtype)
        np.testing.assert_allclose(x.grad.asnumpy().astype(np.float64), g, rtol=rtol, atol=atol)


def test_float_mask_in_float16(device):
    rng = np.random.default_rng(3)
    q, k, v, mask, causal, scale = _host("float_mask", rng)
    q, k, v, mask = (a.astype(np.float16) for a in (q, k, v, mask))
    xs = [_nd(a, device, "float16") for a in (q, k, v, mask)]
    out = sdpa(*xs[:3], mask=xs[3])
    np.testing.assert_allclose(out.asnumpy().astype(np.float64), reference(q, k, v, mask),
                               rtol=1e-2, atol=2e-3)


def test_large_scores_do_not_overflow(device):
    rng = np.random.default_rng(4)
    q, k, v = (rng.normal(size=(1, 1, 4, 8)) * 30 for _ in range(3))
    for dtype, tol in (("float32", 1e-4), ("float16", 1e-1)):
        out = sdpa(*(_nd(a.astype(dtype), device, dtype) for a in (q, k, v)))
        got = out.asnumpy().astype(np.float64)
        assert np.isfinite(got).all()
        want = reference(*(a.astype(dtype) for a in (q, k, v)))
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


def test_fully_masked_rows_give_zeros_and_zero_gradients(device):
    rng = np.random.default_rng(5)
    q, k, v = (rng.normal(size=(1, 2, 3, 4)) for _ in range(3))
    mask = np.ones((1, 2, 3, 3), dtype=bool)
    mask[0, 1, 2] = False                       # one row of one head attends nowhere
    fmask = np.where(mask, 0.0, -np.inf)        # the same as a float mask
    for m in (mask, fmask):
        xs = [_nd(a, device) for a in (q, k, v, m)]
        for x in xs[:3]:
            x.attach_grad()
        with mx.autograd.record():
            out = sdpa(*xs[:3], mask=xs[3])
            (out * out).sum().backward()
        got = out.asnumpy()
        assert np.isfinite(got).all()
        np.testing.assert_array_equal(got[0, 1, 2], 0)
        np.testing.assert_allclose(got, reference(q, k, v, mask), rtol=1e-12, atol=1e-12)
        assert all(np.isfinite(x.grad.asnumpy()).all() for x in xs[:3])
        np.testing.assert_array_equal(xs[0].grad.asnumpy()[0, 1, 2], 0)


# dropout -----------------------------------------------------------------------------------

def _qkv(device, shape=(2, 2, 6, 5), seed=6):
    rng = np.random.default_rng(seed)
    return [_nd(rng.normal(size=shape), device) for _ in range(3)]


def test_dropout_zero_is_no_dropout(device):
    q, k, v = _qkv(device)
    with mx.autograd.train_mode():
        np.testing.assert_array_equal(sdpa(q, k, v, dropout=0.0).asnumpy(),
                                      sdpa(q, k, v).asnumpy())


def test_dropout_only_in_training_mode(device):
    q, k, v = _qkv(device)
    plain = sdpa(q, k, v).asnumpy()
    np.testing.assert_array_equal(sdpa(q, k, v, dropout=0.5).asnumpy(), plain)
    with mx.autograd.record(train_mode=False):
        np.testing.assert_array_equal(sdpa(q, k, v, dropout=0.5).asnumpy(), plain)
    with mx.autograd.train_mode():
        assert not np.allclose(sdpa(q, k, v, dropout=0.5).asnumpy(), plain)


def test_dropout_is_reproducible_with_the_seed(device):
    q, k, v = _qkv(device)
    outs = []
    for _ in range(2):
        mx.random.seed(42)
        with mx.autograd.train_mode():
            outs.append([sdpa(q, k, v, dropout=0.3).asnumpy() for _ in range(2)])
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    assert not np.array_equal(outs[0][0], outs[0][1])  # a fresh mask per call


def test_dropout_drops_attention_weights(device):
    # with value = identity the output is the (dropped-out) weight matrix itself
    p, lk = 0.4, 64
    rng = np.random.default_rng(7)
    q = _nd(rng.normal(size=(2, 4, 32, 8)), device)
    k = _nd(rng.normal(size=(2, 4, lk, 8)), device)
    v = _nd(np.broadcast_to(np.eye(lk), (2, 4, lk, lk)).copy(), device)
    weights = sdpa(q, k, v).asnumpy()
    with mx.autograd.train_mode():
        got = sdpa(q, k, v, dropout=p).asnumpy()
    kept = got != 0
    np.testing.assert_allclose(got[kept], weights[kept] / (1 - p), rtol=1e-12)
    assert abs((~kept).mean() - p) < 0.02


@pytest.mark.parametrize("masked", [False, True])
def test_dropout_gradient_against_finite_differences(device, masked):
    # a fixed seed (the op called by name) gives the same mask on every evaluation
    name = "scaled_dot_product_attention" + ("_masked" if masked else "") + "_dropout"

    def fn(*xs):
        return mx.nd.invoke(name, *xs, causal=True, dropout=0.3, seed=1234)[0]

    def ref(*xs):  # not used by the gradient check
        raise NotImplementedError

    inputs = [In((1, 2, 4, 3)), In((1, 2, 4, 3)), In((1, 2, 4, 2))]
    if masked:
        inputs.append(In((1, 1, 4, 4), kind="mask", dtype="bool", diff=False))
    conformance.check_gradient(Case(f"sdpa_dropout_{masked}", fn, ref, tuple(inputs)), device)


def test_dropout_gradient_matches_the_dropped_weights(device):
    # with value = identity, d out / d value is the dropped-out weight matrix
    p, lk = 0.5, 8
    rng = np.random.default_rng(8)
    q = _nd(rng.normal(size=(1, 2, 5, 4)), device)
    k = _nd(rng.normal(size=(1, 2, lk, 4)), device)
    v = _nd(np.broadcast_to(np.eye(lk), (1, 2, lk, lk)).copy(), device)
    v.attach_grad()
    with mx.autograd.record():
        out = sdpa(q, k, v, dropout=p)
    out.backward()
    want = np.swapaxes(out.asnumpy(), -1, -2).sum(-1)  # d sum(out) / d v[.., j, :]
    np.testing.assert_allclose(v.grad.asnumpy()[..., 0], want, rtol=1e-12, atol=1e-14)


# errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("shapes,match", [
    (((1, 2, 3, 4), (1, 2, 5, 4), (1, 2, 6, 4)), r"sequence lengths differ.*\(1, 2, 5, 4\)"),
    (((1, 2, 3, 4), (1, 2, 5, 3), (1, 2, 5, 4)), r"feature size 3 differs.*\(1, 2, 3, 4\)"),
    (((2, 3, 4), (2, 3, 4), (2, 3, 4)), r"query must be 4-d.*\(2, 3, 4\)"),
    (((1, 2, 3, 4), (1, 2, 3, 4, 1), (1, 2, 3, 4)), r"key must be 4-d"),
    (((1, 2, 3, 4), (1, 3, 3, 4), (1, 3, 3, 4)), r"batch and head axes differ"),
])
def test_mismatched_shapes_are_clear_errors(device, shapes, match):
    xs = [mx.nd.zeros(s, ctx=device) for s in shapes]
    with pytest.raises(MXCoreError, match=match):
        sdpa(*xs)


def test_bad_mask_and_arguments_are_clear_errors(device):
    q, k, v = (mx.nd.zeros((1, 2, 3, 4), ctx=device) for _ in range(3))
    with pytest.raises(MXCoreError, match=r"mask shape \(1, 2, 3, 5\) does not broadcast"):
        sdpa(q, k, v, mask=mx.nd.zeros((1, 2, 3, 5), ctx=device, dtype="bool"))
    with pytest.raises(MXCoreError, match="mask must be bool or of query's dtype"):
        sdpa(q, k, v, mask=mx.nd.zeros((3, 3), ctx=device, dtype="int32"))
    with pytest.raises(MXCoreError, match="dtypes differ"):
        sdpa(q, k.astype("float64"), v)
    with pytest.raises(MXCoreError, match=r"dropout must be in \[0, 1\)"):
        sdpa(q, k, v, dropout=1.0)


def test_mask_gets_no_gradient(device):
    q, k, v = _qkv(device, (1, 1, 3, 2))
    mask = _nd(np.zeros((1, 1, 3, 3)), device)
    mask.attach_grad()
    with mx.autograd.record():
        out = sdpa(q, k, v, mask=mask)
    out.backward()
    np.testing.assert_array_equal(mask.grad.asnumpy(), 0)


def test_second_order_gradient_is_refused_clearly(device):
    q, k, v = _qkv(device, (1, 1, 3, 2))
    q.attach_grad()
    with mx.autograd.record():
        (gq,) = mx.autograd.grad(sdpa(q, k, v).sum(), [q], create_graph=True)
        total = gq.sum()
    with pytest.raises(MXCoreError, match="differentiable once"):
        total.backward()


# Gluon -------------------------------------------------------------------------------------

class _Attention(mx.gluon.HybridBlock):
    def __init__(self, dropout=0.0):
        super().__init__()
        self.dropout = dropout

    def hybrid_forward(self, F, q, k, v, mask):
        return F.contrib.scaled_dot_product_attention(q, k, v, mask=mask, causal=True,
                                                      dropout=self.dropout)


def _block_run(block, xs, training):
    for x in xs[:3]:
        x.attach_grad()
    with mx.autograd.record(train_mode=training):
        out = block(*xs)
        loss = (out * out).sum()
    loss.backward()
    return [out.asnumpy()] + [x.grad.asnumpy().copy() for x in xs[:3]]


@pytest.mark.parametrize("dropout,training", [(0.0, False), (0.0, True), (0.3, True)])
def test_hybridized_block_equals_eager(device, dropout, training):
    rng = np.random.default_rng(9)
    xs = _qkv(device, (2, 2, 4, 3)) + [_nd(rng.random((2, 1, 1, 4)) > 0.3, device)]
    block = _Attention(dropout)
    mx.random.seed(5)
    eager = [_block_run(block, xs, training) for _ in range(2)]
    block.hybridize()
    mx.random.seed(5)
    hybrid = [_block_run(block, xs, training) for _ in range(2)]
    for e, h in zip(eager, hybrid):
        for a, b in zip(e, h):
            np.testing.assert_array_equal(a, b)
    if dropout:
        assert not np.array_equal(hybrid[0][0], hybrid[1][0])  # a fresh mask per call
