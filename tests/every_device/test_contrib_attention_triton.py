"""The flash-attention Triton kernels of scaled_dot_product_attention on ``cuda``
(contrib_ops/mxcore_contrib_ops/attention_triton.py).

On a cuda device (the interpreted one, ``MXCORE_CUDA_INTERPRET=1``, or a GPU): the
output, the logsumexp and the gradients against the float64 reference and against the
array-module kernel at the same dtype, over sequence lengths that end inside a block,
Lq != Lk, causal, bool and additive masks (broadcast), head dims up to 128 that are not
powers of two, float32/float16/bfloat16; fully masked rows; that the registry picks the
Triton kernel where its guard accepts a call and the array-module kernel otherwise
(dropout, head dims past 128, float64).  Without a cuda device the checks run in a
subprocess on the interpreted one (``test_on_the_interpreted_device``).  The wider grid
is marked long.
"""
from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest

import hal
import mxcore as mx
from tests.every_device.interpreted_cuda import run_cuda_checks
from tests.every_device.test_contrib_attention import reference

pytest.importorskip("mxcore_cuda")
pytest.importorskip("triton")

from mxcore_contrib_ops import attention  # noqa: E402

DTYPES = [d for d in ("float32", "float16", "bfloat16") if d in hal.DTYPES]
#: |Triton - float64 reference| <= TOL * (1 + |reference|), and the same bound against
#: the array-module kernel at that dtype (16-bit results round once: a few ulps apart)
TOL = {"float32": 2e-5, "float16": 2e-3, "bfloat16": 1e-2}


def _cuda(device) -> None:
    if device.kind != "cuda":
        pytest.skip("the flash-attention Triton kernels are the cuda device's")


def _launches() -> dict:
    from mxcore_cuda.triton._runtime import LAUNCHES
    return {k: LAUNCHES[k] for k in ("attention.forward", "attention.backward")}


# float64 references ----------------------------------------------------------------------

def _allowed(lq, lk, mask, causal):
    allowed = np.ones((lq, lk), dtype=bool)
    if mask is not None and mask.dtype == np.bool_:
        allowed = allowed & mask
    if causal:
        allowed = allowed & np.tril(np.ones((lq, lk), dtype=bool))
    return allowed


def reference_lse(q, k, mask, causal, scale):
    """float64 logsumexp of the scaled, masked scores (-inf for rows attending nowhere)."""
    q, k = np.asarray(q, np.float64), np.asarray(k, np.float64)
    s = np.einsum("bhqd,bhkd->bhqk", q, k) * (1 / math.sqrt(q.shape[-1]) if scale is None
                                              else scale)
    if mask is not None and mask.dtype != np.bool_:
        s = s + np.asarray(mask, np.float64)
    s = np.where(_allowed(q.shape[2], k.shape[2], mask, causal), s, -np.inf)
    m = s.max(-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    with np.errstate(divide="ignore"):
        return (np.log(np.exp(s - m).sum(-1, keepdims=True)) + m)[..., 0]


def reference_grads(g, q, k, v, mask, causal, scale):
    """float64 (dq, dk, dv): the array-module kernel run in float64 (itself checked
    against torch autograd and finite differences in test_contrib_attention.py)."""
    table = attention._table(np)
    f64 = [np.asarray(a, np.float64) for a in (g, q, k, v)]
    ms = () if mask is None else (mask if mask.dtype == np.bool_ else mask.astype(np.float64),)
    _, lse = table[attention._name(mask is not None, False)][0](
        *f64[1:], *ms, causal=causal, scale=scale)
    return table[attention._name(mask is not None, False, True)][0](
        *f64, lse, *ms, causal=causal, scale=scale)


# one call through dispatch --------------------------------------------------------------

def _mask(kind, b, h, lq, lk, rng, dtype):
    """bool (batch, 1, Lq, Lk), additive (Lq, Lk) or none; the last query row masked
    everywhere (a row that attends to nothing)."""
    if kind is None:
        return None
    if kind == "bool":
        m = rng.random((b, 1, lq, lk)) > 0.4
        m[..., -1, :] = False
        return m
    m = rng.normal(size=(lq, lk)) + np.where(rng.random((lq, lk)) > 0.7, -np.inf, 0)
    m[-1] = -np.inf
    return m.astype(hal.to_dtype(dtype))


def _inputs(shape_q, lk, dv, dtype, mask_kind, seed):
    rng = np.random.default_rng(seed)
    b, h, lq, d = shape_q
    dt = hal.to_dtype(dtype)
    q = rng.normal(size=shape_q).astype(dt)
    k = rng.normal(size=(b, h, lk, d)).astype(dt)
    v = rng.normal(size=(b, h, lk, dv)).astype(dt)
    g = rng.normal(size=(b, h, lq, dv)).astype(dt)
    return g, q, k, v, _mask(mask_kind, b, h, lq, lk, rng, dtype)


def _nd(a, device, dtype):
    if a is None:
        return None
    return mx.nd.array(a, ctx=device, dtype="bool" if a.dtype == np.bool_ else dtype)


def _through_dispatch(device, dtype, g, q, k, v, mask, causal, scale):
    """(out, lse, dq, dk, dv) as float64 numpy arrays: the forward op and the gradients
    of the user function, both on ``device``."""
    xs = [_nd(a, device, dtype) for a in (q, k, v, mask)]
    masked = mask is not None
    _, lse = mx.nd.invoke(attention._name(masked, False), *[x for x in xs if x is not None],
                          causal=causal, scale=scale)
    for x in xs[:3]:
        x.attach_grad()
    with mx.autograd.record():
        out = mx.nd.contrib.scaled_dot_product_attention(*xs[:3], mask=xs[3], causal=causal,
                                                          scale=scale)
    out.backward(_nd(g, device, dtype))
    assert out.dtype == hal.to_dtype(dtype) and lse.dtype == np.float32
    assert all(x.grad.dtype == hal.to_dtype(dtype) for x in xs[:3])
    return [a.asnumpy().astype(np.float64) for a in (out, lse, *(x.grad for x in xs[:3]))]


def _array_module(dtype, g, q, k, v, mask, causal, scale, device):
    """(out, lse, dq, dk, dv) of the array-module kernel at ``dtype``, on the device's
    array module (numpy when interpreted, CuPy on a GPU)."""
    from mxcore_contrib_ops._devices import array_modules
    xp = dict(array_modules())["cuda"]
    table = attention._table(xp)
    dev = [None if a is None else xp.asarray(a) for a in (g, q, k, v, mask)]
    ms = () if mask is None else (dev[4],)
    out, lse = table[attention._name(mask is not None, False)][0](
        *dev[1:4], *ms, causal=causal, scale=scale)
    grads = table[attention._name(mask is not None, False, True)][0](
        dev[0], *dev[1:4], lse, *ms, causal=causal, scale=scale)
    host = (lambda a: a.get()) if xp is not np else (lambda a: a)
    return [host(a).astype(np.float64) for a in (out, lse, *grads)]


def _close(got, want, tol, what):
    both_inf = np.isneginf(got) & np.isneginf(want)
    assert np.array_equal(np.isneginf(got), np.isneginf(want)), f"{what}: -inf differ"
    g, w = np.where(both_inf, 0, got), np.where(both_inf, 0, want)
    err = np.abs(g - w) - tol * (1 + np.abs(w))
    assert np.isfinite(g).all() and err.max(initial=-1) <= 0, \
        f"{what}: max |error| {np.abs(g - w).max()} (tolerance {tol} * (1 + |want|))"


def check(device, shape_q, lk, dv, dtype, mask_kind=None, causal=False, scale=None, seed=0):
    """The Triton kernels run (launch counter) and agree with the float64 reference and
    with the array-module kernel."""
    g, q, k, v, mask = _inputs(shape_q, lk, dv, dtype, mask_kind, seed)
    before = _launches()
    got = _through_dispatch(device, dtype, g, q, k, v, mask, causal, scale)
    after = _launches()
    assert after["attention.forward"] == before["attention.forward"] + 2  # invoke + user fn
    assert after["attention.backward"] == before["attention.backward"] + 1
    want = [reference(q, k, v, mask, causal, scale), reference_lse(q, k, mask, causal, scale),
            *reference_grads(g, q, k, v, mask, causal, scale)]
    names = ("out", "lse", "dq", "dk", "dv")
    tol = TOL[dtype]
    for a, b, name in zip(got, want, names):
        _close(a, b, tol, f"{name} vs float64")
    for a, b, name in zip(got, _array_module(dtype, g, q, k, v, mask, causal, scale, device),
                          names):
        _close(a, b, tol, f"{name} vs the array-module kernel")
    return got


# the default grid: small, a few seconds interpreted -------------------------------------
# (name: q shape, Lk, Dv, mask, causal, scale); interpreted blocks are 32 rows/keys
SMALL = {
    "plain_ragged": ((2, 2, 37, 16), 45, 16, None, False, None),
    "causal_lq_gt_lk": ((1, 2, 50, 32), 20, 24, None, True, None),
    "causal_lq_lt_lk_d20": ((1, 1, 19, 20), 70, 8, None, True, 0.3),
    "bool_mask_heads_broadcast": ((2, 3, 33, 16), 40, 16, "bool", False, None),
    "additive_mask_causal": ((1, 2, 37, 16), 45, 16, "additive", True, None),
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_matches_references_float32(device, name):
    _cuda(device)
    shape_q, lk, dv, mask, causal, scale = SMALL[name]
    check(device, shape_q, lk, dv, "float32", mask, causal, scale)


@pytest.mark.parametrize("dtype", [d for d in DTYPES if d != "float32"])
def test_matches_references_16bit(device, dtype):
    _cuda(device)
    check(device, (1, 2, 35, 32), 41, 32, dtype, "bool", True)


def test_fully_masked_rows_give_zeros_and_minus_inf(device):
    _cuda(device)
    for kind in ("bool", "additive"):
        out, lse, dq, dk, dv = check(device, (1, 2, 34, 16), 36, 16, "float32", kind, seed=3)
        np.testing.assert_array_equal(out[:, :, -1], 0)
        assert np.isneginf(lse[:, :, -1]).all() and np.isfinite(lse[:, :, :-1]).all()
        np.testing.assert_array_equal(dq[:, :, -1], 0)
    # a mask that excludes everything: zero outputs and zero gradients everywhere
    g, q, k, v, _ = _inputs((1, 1, 5, 16), 7, 16, "float32", None, 4)
    mask = np.zeros((5, 7), dtype=bool)
    out, lse, dq, dk, dv = _through_dispatch(device, "float32", g, q, k, v, mask, False, None)
    assert np.isneginf(lse).all()
    for a in (out, dq, dk, dv):
        np.testing.assert_array_equal(a, 0)


def _resolve(op, dtype, shapes, attrs):
    from mxcore.plugins import registry
    dtypes = [dtype] * 3 + (["bool"] if len(shapes) > 3 else [])
    return registry().resolve(op, "cuda", dtype, shapes, dtypes, attrs).name


def test_registry_picks_triton_where_the_guard_accepts(device):
    _cuda(device)
    q, kv = (2, 3, 37, 64), (2, 3, 45, 64)
    attrs = {"causal": True, "scale": None}
    fwd, bwd = attention._name(False, False), attention._name(False, False, True)
    assert _resolve(fwd, "float32", [q, kv, kv], attrs) == f"attention_triton.{fwd}"
    assert _resolve(attention._name(True, False), "float16", [q, kv, kv, (37, 45)],
                    attrs) == f"attention_triton.{attention._name(True, False)}"
    assert _resolve(bwd, "bfloat16" if "bfloat16" in DTYPES else "float32",
                    [q, q, kv, kv, q[:3]], attrs) == f"attention_triton.{bwd}"
    # declined: head dims past 128, float64, dropout (no Triton kernel registered)
    wide, wide_kv = (1, 1, 8, 160), (1, 1, 8, 160)
    assert _resolve(fwd, "float32", [wide, wide_kv, wide_kv], attrs) == f"attention.{fwd}"
    assert _resolve(fwd, "float32", [q, kv, kv[:3] + (192,)], attrs) == f"attention.{fwd}"
    assert _resolve(fwd, "float64", [q, kv, kv], attrs) == f"attention.{fwd}"
    drop = attention._name(False, True)
    assert _resolve(drop, "float32", [q, kv, kv], dict(attrs, dropout=0.1, seed=1)) \
        == f"attention.{drop}"


def test_dispatch_runs_triton_only_where_it_applies(device):
    _cuda(device)
    rng = np.random.default_rng(7)
    sdpa = mx.nd.contrib.scaled_dot_product_attention

    def launches_of(shape_kv_d, dtype="float32", dropout=0.0, train=False):
        q, k, v = (_nd(rng.normal(size=(1, 2, 9, shape_kv_d)), device, dtype)
                   for _ in range(3))
        before = _launches()["attention.forward"]
        if train:
            with mx.autograd.train_mode():
                sdpa(q, k, v, dropout=dropout).wait_to_read()
        else:
            sdpa(q, k, v).wait_to_read()
        return _launches()["attention.forward"] - before

    assert launches_of(48) == 1                 # not a power of two: padded, accepted
    assert launches_of(130) == 0                # past MAX_HEAD_DIM: array-module kernel
    assert launches_of(16, "float64") == 0
    assert launches_of(16, dropout=0.2, train=True) == 0


def test_guard_reads_the_forward_and_backward_layouts(device):
    _cuda(device)
    from mxcore_contrib_ops import attention_triton as t
    q, kv = (1, 2, 9, 128), (1, 2, 11, 128)
    assert t.forward_applies([q, kv, kv], ["float32"] * 3, {})
    assert t.backward_applies([q, q, kv, kv, q[:3]], ["float32"] * 4 + ["float32"], {})
    assert not t.forward_applies([q[:3] + (129,), kv[:3] + (129,), kv], ["float32"] * 3, {})
    assert not t.backward_applies([q[:3] + (129,), q, kv, kv[:3] + (129,), q[:3]],
                                  ["float32"] * 5, {})
    assert not t.forward_applies([(0, 2, 9, 16), (0, 2, 11, 16), (0, 2, 11, 16)],
                                 ["float32"] * 3, {})


def test_a_gpu_too_small_for_the_tiles_gets_the_array_module_kernel(device, monkeypatch):
    """Triton raises OutOfResources at launch when a kernel's tiles need more shared
    memory than the GPU has (float32 backward tiles before sm_80): forward and backward
    then run the array-module kernel, with one warning per configuration."""
    _cuda(device)
    from triton.runtime.errors import OutOfResources
    from mxcore_contrib_ops import attention_triton as t

    tried = []

    def no_room(kernel, grid, *args, **meta):
        tried.append(kernel)
        raise OutOfResources(160 * 1024, 64 * 1024, "shared memory")

    monkeypatch.setattr(t, "launch", no_room)
    monkeypatch.setattr(t, "_DECLINED", set())
    g, q, k, v, mask = _inputs((1, 2, 9, 16), 7, 16, "float32", "bool", 0)
    before = _launches()
    from mxcore_cuda.triton._runtime import LAUNCHES
    fallbacks = LAUNCHES["attention.fallback"]
    with pytest.warns(RuntimeWarning, match="does not fit this GPU.*shared memory"):
        got = _through_dispatch(device, "float32", g, q, k, v, mask, True, None)
    assert _launches() == before  # the Triton kernels never ran
    assert LAUNCHES["attention.fallback"] == fallbacks + 3  # invoke, user fn, backward
    assert len(tried) == 2  # forward and backward tried once; declined since
    for a, b, name in zip(got, _array_module("float32", g, q, k, v, mask, True, None,
                                             device), ("out", "lse", "dq", "dk", "dv")):
        np.testing.assert_array_equal(a, b, err_msg=name)
    with warnings.catch_warnings():  # once per configuration
        warnings.simplefilter("error")
        _through_dispatch(device, "float32", g, q, k, v, mask, True, None)
    assert len(tried) == 2


def test_no_triton_kernels_without_triton(monkeypatch):
    """Where Triton is not installed the plugin registers the array-module kernels only
    (and never imports Triton to find out)."""
    import importlib.util
    from mxcore_contrib_ops import _devices
    # a cuda kind built (as when interpreted or with CuPy), whatever this machine has
    monkeypatch.setattr(_devices, "array_modules", lambda: [("cpu", np), ("cuda", np)])
    with_triton = [k for k in attention.kernels() if k.priority > 0]
    assert sorted(k.op for k in with_triton) == sorted(attention._TRITON)
    assert all(k.device == "cuda" and k.priority == _devices.TRITON_PRIORITY and k.applies
               for k in with_triton)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "triton" else real(name, *a))
    assert [k for k in attention.kernels() if k.priority > 0] == []
    assert {k.device for k in attention.kernels()} == {"cpu", "cuda"}


# the wide grid ---------------------------------------------------------------------------

LONG = [(b, h, lq, lk, d, dv, causal, mask)
        for b, h in ((1, 1), (2, 3))
        for lq, lk in ((1, 1), (31, 33), (64, 64), (65, 17), (17, 96))
        for d, dv in ((16, 16), (32, 48), (64, 64), (100, 128))
        for causal, mask in ((False, None), (True, None), (False, "bool"), (True, "additive"))
        # within the interpreter's default size window (MXCORE_CUDA_INTERPRET_MAX)
        if b * h * (lq * d + lk * (d + dv)) <= 1 << 16]


@pytest.mark.long
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", LONG, ids=lambda c: "x".join(map(str, c)))
def test_grid(device, case, dtype):
    _cuda(device)
    b, h, lq, lk, d, dv, causal, mask = case
    if mask is not None and lq == 1:  # the last row is masked: nothing left to compare
        mask = None
    check(device, (b, h, lq, d), lk, dv, dtype, mask, causal, seed=lq * 131 + lk)


# compiled for a GPU ----------------------------------------------------------------------

#: (kernel, dtype, mask pointer's type, mask kind, causal, head dim, value head dim)
GPU_BUILDS = [("_forward_kernel", "fp16", "u8", 1, True, 64, 64)] + [
    pytest.param(b, marks=pytest.mark.long) for b in (
        ("_backward_dq_kernel", "fp16", "u8", 1, True, 64, 64),
        ("_backward_dkdv_kernel", "fp16", "u8", 1, True, 64, 64),
        ("_forward_kernel", "bf16", "bf16", 2, False, 128, 128),
        ("_backward_dq_kernel", "bf16", "bf16", 2, False, 128, 128),
        ("_backward_dkdv_kernel", "bf16", "bf16", 2, False, 128, 128),
        ("_forward_kernel", "fp32", "fp32", 0, True, 48, 24),
        ("_backward_dq_kernel", "fp32", "fp32", 0, True, 48, 24),
        ("_backward_dkdv_kernel", "fp32", "fp32", 0, True, 48, 24))]


@pytest.mark.parametrize("build", GPU_BUILDS, ids=lambda b: "-".join(map(str, b)))
def test_kernels_compile_for_sm90(build):
    """What the interpreter cannot show: the kernels compile for an sm_90 GPU with the
    GPU block configuration (Triton's compiler and bundled ptxas, no GPU needed), within
    the shared memory of one block on any GPU since sm_80 (99 KiB)."""
    from mxcore_cuda import INTERPRET
    if INTERPRET:
        pytest.skip("Triton's compiler is not used by interpreted processes")
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from mxcore_contrib_ops import attention_triton as t
    name, ty, mask_ty, mask, causal, d, dv = build
    fn = getattr(t, name)
    floats = {"LSE": "*fp32", "DELTA": "*fp32", "Mk": f"*{mask_ty}"}
    pointers = {"Q", "K", "V", "O", "DO", "DQ", "DK", "DV"}
    sig = {a: floats.get(a) or (f"*{ty}" if a in pointers else "fp32" if a == "scale"
                                else "i32" if a in ("H", "D") or not a.isupper()
                                else "constexpr")
           for a in fn.arg_names}
    bm, bn, warps, stages = t._config(d, dv)
    consts = dict(MASK=mask, CAUSAL=causal, UPCAST=ty == "fp32", BLOCK_M=bm, BLOCK_N=bn,
                  BLOCK_D=max(16, t.next_pow2(d)), BLOCK_DV=max(16, t.next_pow2(dv)))
    compiled = triton.compile(ASTSource(fn, sig, constexprs=consts),
                              target=GPUTarget("cuda", 90, 32),
                              options={"num_warps": warps, "num_stages": stages})
    ptx = compiled.asm["ptx"]
    if ty == "fp32":  # IEEE float32 products (as numpy's), no TF32 tensor-core rounding
        assert "fma.rn.f32" in ptx and "tf32" not in ptx
    else:  # 16-bit q @ k^T on tensor cores
        assert "mma" in ptx
    assert compiled.metadata.shared <= 99 * 1024


# without a cuda device -------------------------------------------------------------------

def test_on_the_interpreted_device():
    """Without a cuda device, this file's checks on the interpreted one."""
    tail = run_cuda_checks([__file__])
    if os.environ.get("MXCORE_LONG_TESTS") == "1":
        assert "skipped" not in tail, tail
