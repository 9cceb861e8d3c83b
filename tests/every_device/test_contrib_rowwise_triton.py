"""The Triton kernels of rms_norm, swiglu, bias_gelu and rotary_embedding, and of the
first three's backward ops, on ``cuda`` (contrib_ops/mxcore_contrib_ops/rowwise_triton.py).

On a cuda device (the interpreted one, ``MXCORE_CUDA_INTERPRET=1``, or a GPU): each
kernel runs (launch counter) and agrees with the float64 reference and with the
array-module kernel at the same dtype, in float32, float16 and bfloat16, over shapes
whose rows and element counts end inside a block, other axes (swiglu), both GELU forms,
both rotary layouts, offsets and the reverse rotation; gradients through autograd; and
the registry picks the Triton kernel where its guard accepts a call and the array-module
kernel otherwise (rms_norm over another axis, float64).  The same ops' op-table checks
(tests/every_device/test_contrib_norm_act_rope.py) run on the cuda device too, so on
these kernels.  Without a cuda device both files' cuda checks run in a subprocess on
the interpreted one (``test_on_the_interpreted_device``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hal
import mxcore as mx
from tests.every_device.interpreted_cuda import run_cuda_checks
from tests.every_device.test_contrib_norm_act_rope import (_bias_gelu, _gelu, _rms_norm,
                                                           _rope, _swiglu)

pytest.importorskip("mxcore_cuda")
pytest.importorskip("triton")

from mxcore_contrib_ops import activation, normalization, rotary  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
nd = mx.nd
DTYPES = [d for d in ("float32", "float16", "bfloat16") if d in hal.DTYPES]
#: |Triton - float64 reference| <= TOL * (1 + |reference|); the same against the
#: array-module kernel at the dtype (16-bit results round once: an ulp or two apart)
TOL = {"float32": 2e-6, "float16": 2e-3, "bfloat16": 1.6e-2}


def _cuda(device) -> None:
    if device.kind != "cuda":
        pytest.skip("the row-wise Triton kernels are the cuda device's")


def _launches(name: str) -> int:
    from mxcore_cuda.triton._runtime import LAUNCHES
    mx.nd.waitall()  # the threaded engine runs kernels on its workers
    return LAUNCHES[f"contrib.{name}"]


def _nd(a, device, dtype):
    return nd.array(np.asarray(a, np.float64), ctx=device).astype(dtype)


def _close(got, want, tol, what):
    err = np.abs(got - want) - tol * (1 + np.abs(want))
    assert np.isfinite(got).all() and err.max(initial=-1) <= 0, \
        f"{what}: max |error| {np.abs(got - want).max()} (tolerance {tol} * (1 + |want|))"


def _array_module(family, op, args, attrs):
    """The array-module kernel of ``op`` on the cuda device's module (numpy when
    interpreted, CuPy on a GPU), as float64 numpy."""
    from mxcore_contrib_ops._devices import array_modules
    xp = dict(array_modules())["cuda"]
    out = family._table(xp)[op][0](*(xp.asarray(a.asnumpy()) for a in args), **attrs)
    return (out.get() if xp is not np else out).astype(np.float64)


def check(device, family, op, ref, arrays, attrs, dtype):
    """``op`` through dispatch on ``device``: the Triton kernel ran once, and agrees with
    the float64 reference and the array-module kernel at ``dtype``."""
    args = [_nd(a, device, dtype) for a in arrays]
    before = _launches(op)
    out = nd.invoke(op, *args, **attrs)
    assert _launches(op) == before + 1, f"{op}: the Triton kernel did not run"
    assert out.dtype == hal.to_dtype(dtype)
    got = out.asnumpy().astype(np.float64)
    # the reference sees the inputs as rounded to the dtype
    _close(got, ref(*(a.asnumpy().astype(np.float64) for a in args)), TOL[dtype],
           f"{op} {dtype} vs float64")
    _close(got, _array_module(family, op, args, attrs), TOL[dtype],
           f"{op} {dtype} vs the array-module kernel")


RNG = np.random.default_rng(3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 37), (2, 5, 64), (4, 1000)])
def test_rms_norm(device, dtype, shape):
    _cuda(device)
    x, g = RNG.normal(size=shape) * 3, RNG.normal(size=shape[-1:])
    check(device, normalization, "rms_norm", lambda a, b: _rms_norm(a, b, -1, 1e-3),
          [x, g], {"axis": -1, "eps": 1e-3}, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [((2, 3, 8), -1), ((4, 6, 5), 1), ((6, 7), 0),
                                        ((3, 2050), 1)])
def test_swiglu(device, dtype, shape, axis):
    _cuda(device)
    x = RNG.normal(size=shape) * 4
    x.flat[:4] = [-100.0, 100.0, -30.0, 0.0]  # sigmoid saturating at both ends
    check(device, activation, "swiglu", lambda a: _swiglu(a, axis), [x], {"axis": axis},
          dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", [False, True])
@pytest.mark.parametrize("shape", [(7,), (3, 45), (2, 4, 33)])
def test_bias_gelu(device, dtype, approximate, shape):
    _cuda(device)
    x, b = RNG.normal(size=shape) * 3, RNG.normal(size=shape[-1:])
    x.flat[:3] = [-40.0, 40.0, 1e-4]  # tanh saturating; near zero
    check(device, activation, "bias_gelu", lambda a, c: _gelu(a + c, approximate), [x, b],
          {"approximate": approximate}, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,interleaved,offset,base,reverse", [
    ((2, 3, 5, 8), False, 0, 10000.0, False),
    ((1, 2, 7, 6), True, 0, 10000.0, False),
    ((2, 1, 3, 36), False, 4000, 500.0, False),
    ((3, 10), True, 2, 10000.0, True),
    ((2, 2, 9, 130), False, 1, 10000.0, True),
])
def test_rotary_embedding(device, dtype, shape, interleaved, offset, base, reverse):
    _cuda(device)
    x = RNG.normal(size=shape)

    turn = _unrotate if reverse else _rope  # reverse: the rotation by minus the angles
    ref = lambda a: turn(a, offset, base, interleaved)  # noqa: E731
    check(device, rotary, "rotary_embedding", ref, [x],
          {"offset": offset, "base": base, "interleaved": interleaved, "reverse": reverse},
          dtype)


def check_backward(device, family, op, arrays, attrs, dtype):
    """A backward op through dispatch on ``device``: its Triton kernel ran once, and each
    output agrees with the array-module kernel run in float64 (on the inputs rounded to
    ``dtype``; the ops' gradient checks hold that kernel to finite differences) and with
    the array-module kernel at ``dtype``."""
    args = [_nd(a, device, dtype) for a in arrays]
    before = _launches(op)
    outs = nd.invoke(op, *args, **attrs)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    assert _launches(op) == before + 1, f"{op}: the Triton kernel did not run"
    f64 = family._table(np)[op][0](*(a.asnumpy().astype(np.float64) for a in args), **attrs)
    at_dtype = _array_module(family, op, args, attrs) if len(outs) == 1 else None
    f64 = f64 if isinstance(f64, tuple) else (f64,)
    for i, (out, want) in enumerate(zip(outs, f64)):
        assert out.dtype == hal.to_dtype(dtype)
        got = out.asnumpy().astype(np.float64)
        # sums over rows (gamma, bias) add up a row's worth of rounding
        tol = TOL[dtype] * (1 if i == 0 else 8)
        _close(got, want, tol, f"{op} output {i} {dtype} vs float64")
        if at_dtype is not None:
            _close(got, at_dtype, tol, f"{op} {dtype} vs the array-module kernel")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 3), (5, 37), (2, 9, 64), (20, 300)])
def test_rms_norm_backward(device, dtype, shape):
    _cuda(device)
    g, x, gamma = RNG.normal(size=shape), RNG.normal(size=shape) * 2, RNG.normal(size=shape[-1:])
    check_backward(device, normalization, "rms_norm_backward", [g, x, gamma],
                   {"axis": -1, "eps": 1e-3}, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [((2, 3, 8), -1), ((4, 6, 5), 1), ((3, 2050), 1)])
def test_swiglu_backward(device, dtype, shape, axis):
    _cuda(device)
    x = RNG.normal(size=shape) * 4
    x.flat[:3] = [-100.0, 100.0, 0.0]
    out_shape = list(shape)
    out_shape[axis] //= 2
    check_backward(device, activation, "swiglu_backward", [RNG.normal(size=out_shape), x],
                   {"axis": axis}, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", [False, True])
@pytest.mark.parametrize("shape", [(7,), (3, 45), (2, 40, 33)])
def test_bias_gelu_backward(device, dtype, approximate, shape):
    _cuda(device)
    x, b = RNG.normal(size=shape) * 3, RNG.normal(size=shape[-1:])
    x.flat[:2] = [-40.0, 40.0]
    check_backward(device, activation, "bias_gelu_backward", [RNG.normal(size=shape), x, b],
                   {"approximate": approximate}, dtype)


def _unrotate(x, offset, base, interleaved):
    seq, dim = x.shape[-2:]
    inv_freq = 1.0 / base ** (np.arange(0, dim, 2) / dim)
    rot = np.exp(-1j * np.outer(np.arange(offset, offset + seq), inv_freq))
    if interleaved:
        z = (x[..., 0::2] + 1j * x[..., 1::2]) * rot
        return np.stack([z.real, z.imag], axis=-1).reshape(x.shape)
    z = (x[..., :dim // 2] + 1j * x[..., dim // 2:]) * rot
    return np.concatenate([z.real, z.imag], axis=-1)


def test_gradients_run_on_cuda(device):
    """Autograd through the four ops on cuda (forwards and first-order gradients on the
    Triton kernels), against float64 finite differences of the references."""
    _cuda(device)
    x = RNG.normal(size=(2, 3, 4, 8))
    gamma, bias = RNG.normal(size=8), RNG.normal(size=8)
    xs = [nd.array(a, ctx=device, dtype="float32") for a in (x, gamma, bias)]
    for a in xs:
        a.attach_grad()
    before = {op: _launches(op) for op in ("rms_norm", "swiglu", "bias_gelu",
                                           "rotary_embedding", "rms_norm_backward",
                                           "swiglu_backward", "bias_gelu_backward")}
    with mx.autograd.record():
        h = nd.contrib.rotary_embedding(nd.contrib.rms_norm(xs[0], xs[1]))
        y = nd.contrib.swiglu(nd.contrib.bias_gelu(h, xs[2]))
        loss = (y * y).sum()
    loss.backward()
    after = {op: _launches(op) - n for op, n in before.items()}
    assert after == {"rms_norm": 1, "swiglu": 1, "bias_gelu": 1, "rotary_embedding": 2,
                     "rms_norm_backward": 1, "swiglu_backward": 1, "bias_gelu_backward": 1}

    def f(x, gamma, bias):
        return (_swiglu(_bias_gelu(_rope(_rms_norm(x, gamma)), bias)) ** 2).sum()

    args = [x, gamma, bias]
    for i, a in enumerate(xs):
        num = np.zeros_like(args[i])
        for j in range(args[i].size):
            step = np.zeros_like(args[i])
            step.flat[j] = 1e-6
            hi = [v + step if k == i else v for k, v in enumerate(args)]
            lo = [v - step if k == i else v for k, v in enumerate(args)]
            num.flat[j] = (f(*hi) - f(*lo)) / 2e-6
        np.testing.assert_allclose(a.grad.asnumpy(), num, rtol=2e-3, atol=2e-3)


def _resolve(op, dtype, shapes, attrs):
    from mxcore.plugins import registry
    return registry().resolve(op, "cuda", dtype, shapes, [dtype] * len(shapes), attrs).name


def test_registry_picks_triton_where_the_guard_accepts(device):
    _cuda(device)
    eps = {"eps": 1e-6}
    assert _resolve("rms_norm", "float32", [(4, 8), (8,)], dict(eps, axis=-1)) \
        == "rowwise_triton.rms_norm"
    assert _resolve("rms_norm", "float16", [(4, 8), (8,)], dict(eps, axis=1)) \
        == "rowwise_triton.rms_norm"
    # declined: another axis, rows past MAX_COLS, float64
    assert _resolve("rms_norm", "float32", [(4, 8), (4,)], dict(eps, axis=0)) \
        == "normalization.rms_norm"
    from mxcore_contrib_ops import rowwise_triton
    wide = rowwise_triton.MAX_COLS + 2
    assert not rowwise_triton.rms_norm_applies([(1, wide), (wide,)], ["float32"] * 2,
                                               dict(eps, axis=-1))
    assert not rowwise_triton.rotary_embedding_applies([(1, 2 * wide)], ["float32"], {})
    assert _resolve("rms_norm", "float64", [(4, 8), (8,)], dict(eps, axis=-1)) \
        == "normalization.rms_norm"
    assert _resolve("swiglu", "bfloat16" if "bfloat16" in DTYPES else "float32", [(4, 8)],
                    {"axis": 0}) == "rowwise_triton.swiglu"
    assert _resolve("bias_gelu", "float32", [(4, 8), (8,)], {"approximate": True}) \
        == "rowwise_triton.bias_gelu"
    assert _resolve("rotary_embedding", "float32", [(1, 2, 3, 8)],
                    {"offset": 0, "base": 10000.0, "interleaved": False, "reverse": False}) \
        == "rowwise_triton.rotary_embedding"
    assert not rowwise_triton.swiglu_applies([(0, 8)], ["float32"], {"axis": -1})


def test_no_triton_kernels_without_triton(monkeypatch):
    """Where Triton is not installed the families register their array-module kernels
    only (and never import Triton to find out)."""
    import importlib.util
    from mxcore_contrib_ops import _devices
    monkeypatch.setattr(_devices, "array_modules", lambda: [("cpu", np), ("cuda", np)])
    families = (normalization, activation, rotary)
    fast = [k for fam in families for k in fam.kernels() if k.priority > 0]
    assert sorted(k.op for k in fast) == ["bias_gelu", "bias_gelu_backward", "rms_norm",
                                          "rms_norm_backward", "rotary_embedding", "swiglu",
                                          "swiglu_backward"]
    assert all(k.device == "cuda" and k.applies and k.name.startswith("rowwise_triton.")
               and "float64" not in k.dtypes for k in fast)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "triton" else real(name, *a))
    assert [k for fam in families for k in fam.kernels() if k.priority > 0] == []


# compiled for a GPU ----------------------------------------------------------------------

#: (kernel, dtype, its constexprs, num_warps): the GPU launchers' block configurations
GPU_BUILDS = [
    ("_rms_norm_kernel", "bf16", {"BLOCK": 4096}, 8),
    ("_swiglu_kernel", "fp16", {"BLOCK": 1024}, 4),
    ("_bias_gelu_kernel", "fp32", {"APPROXIMATE": False, "BLOCK": 1024}, 4),
    ("_bias_gelu_kernel", "bf16", {"APPROXIMATE": True, "BLOCK": 1024}, 4),
    ("_rotary_kernel", "fp16", {"INTERLEAVED": True, "BLOCK": 64}, 4),
    ("_rotary_kernel", "fp32", {"INTERLEAVED": False, "BLOCK": 64}, 4),
    ("_rms_norm_backward_kernel", "fp16", {"BLOCK": 1024}, 4),
    ("_swiglu_backward_kernel", "bf16", {"BLOCK": 1024}, 4),
    ("_bias_gelu_backward_kernel", "fp32", {"APPROXIMATE": True, "BLOCK": 1024}, 4),
    ("_bias_gelu_backward_kernel", "fp16", {"APPROXIMATE": False, "BLOCK": 1024}, 4),
]


@pytest.mark.parametrize("build", GPU_BUILDS, ids=lambda b: f"{b[0]}-{b[1]}-{b[2]}")
def test_kernels_compile_for_sm90(build):
    """What the interpreter cannot show: the kernels compile for an sm_90 GPU (Triton's
    compiler and bundled ptxas, no GPU needed)."""
    from mxcore_cuda import INTERPRET
    if INTERPRET:
        pytest.skip("Triton's compiler is not used by interpreted processes")
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from mxcore_contrib_ops import rowwise_triton as t
    name, ty, consts, warps = build
    fn = getattr(t, name)
    # the cos/sin tables are in the compute dtype: float32 for every input dtype here
    sig = {a: ("constexpr" if a in consts else "fp32" if a == "eps" else
               f"*{ty}" if a in ("X", "Y", "G", "B", "DY", "DX") else
               "*fp32" if a in ("COS", "SIN", "PART", "DZ") else "i64" if a == "n" else "i32")
           for a in fn.arg_names}
    compiled = triton.compile(ASTSource(fn, sig, constexprs=consts),
                              target=GPUTarget("cuda", 90, 32), options={"num_warps": warps})
    assert ".entry" in compiled.asm["ptx"]
    assert compiled.metadata.shared <= 99 * 1024


# without a cuda device -------------------------------------------------------------------

def test_on_the_interpreted_device():
    """Without a cuda device, this file's checks and the ops' op-table checks on the
    interpreted one."""
    run_cuda_checks([__file__, ROOT / "tests/every_device/test_contrib_norm_act_rope.py"])
