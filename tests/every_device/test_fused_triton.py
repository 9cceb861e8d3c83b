"""The CUDA plugin's Triton ``fused_elemwise`` kernel (plugins/cuda/mxcore_cuda/triton/fused.py).

On a cuda device (the interpreted one, ``MXCORE_CUDA_INTERPRET=1``, or a GPU) every
chain computed by the fused kernel equals the same ops run one by one with ``mx.nd``
on that device bit for bit: unary-only chains, binary entries sharing an input, scalar
ops, one to eight entries, chains the kernel splits into several launches, float32,
float16, bfloat16 and (without scalar forms or log) float64.  A hybridized block's
elementwise tail fuses into one step that equals the imperative result.  Without a
cuda device the checks run in a subprocess on the interpreted one
(``test_on_the_interpreted_device``); the chains also compile for an sm_90 GPU.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hal

import mxcore as mx
from mxcore.gluon import nn

pytest.importorskip("mxcore_cuda")
pytest.importorskip("triton")

ROOT = Path(__file__).resolve().parents[2]
DTYPES = [pytest.param(d, id=d) for d in ("float32", "float16", "bfloat16") if d in hal.DTYPES]

# (chain, number of inputs): entries (op, args, scalar); args >= 0 are inputs, -1 is
# entry 0's result, -2 entry 1's...
CHAINS = {
    "unary2": ((("exp", (0,), None), ("tanh", (-1,), None)), 1),
    "unary8": (tuple((name, (0,) if j == 0 else (-j,), None) for j, name in enumerate(
        ("negative", "exp", "sigmoid", "square", "sqrt", "log", "abs", "relu"))), 1),
    "shared_input": ((("multiply", (0, 1), None), ("add", (-1, 0), None),
                      ("maximum", (-2, 1), None)), 2),
    "same_twice": ((("multiply", (0, 0), None), ("subtract", (-1, 0), None)), 1),
    "scalars": ((("mul_scalar", (0,), 0.3), ("add_scalar", (-1,), 1.7),
                 ("rsub_scalar", (-2,), 2.5), ("rdiv_scalar", (-3,), 3.1),
                 ("div_scalar", (-4,), 0.7), ("sub_scalar", (-5,), -1.1),
                 ("maximum_scalar", (-6,), -0.2), ("minimum_scalar", (-7,), 0.9)), 1),
    # the scalar takes the array's dtype first (16-bit: 1000.3 is 1000.5 or 1000)
    "scalar_rounding": ((("add_scalar", (0,), 1000.3), ("rsub_scalar", (-1,), 1000.2)), 1),
    # an MLP activation tail: tanh(h * 0.5 + 1) * sigmoid(h) - exp(h) * b
    "tail": ((("mul_scalar", (0,), 0.5), ("add_scalar", (-1,), 1.0), ("tanh", (-2,), None),
              ("sigmoid", (0,), None), ("multiply", (-3, -4), None), ("exp", (0,), None),
              ("multiply", (-6, 1), None), ("subtract", (-5, -7), None)), 2),
    "four_inputs": ((("add", (0, 1), None), ("divide", (-1, 2), None), ("minimum", (-2, 3), None),
                     ("sin", (-3,), None), ("cos", (0,), None), ("add", (-4, -5), None)), 4),
    # longer than one launch takes (8 entries, 4 inputs): split into several
    "twelve": (tuple(("add_scalar", (0,), 0.1) if j == 0 else ("multiply" if j % 2 else "add",
                                                              (-j, j % 3), None)
                     for j in range(12)), 3),
    "six_inputs": ((("add", (0, 1), None), ("add", (2, 3), None), ("multiply", (-1, -2), None),
                    ("add", (4, 5), None), ("subtract", (-3, -4), None)), 6),
}


def _cuda(device) -> None:
    if device.kind != "cuda":
        pytest.skip("the Triton fuser is the cuda device's")


def _shape():
    """Small odd sizes interpreted (masked tails); on a GPU at least the size from
    which the unfused Triton kernels take float32 calls (smaller ones go to CuPy)."""
    from mxcore_cuda import INTERPRET
    from mxcore_cuda.triton._runtime import MIN_ELEMENTS
    return (5, 37) if INTERPRET else (4, MIN_ELEMENTS // 4 + 3)


def _inputs(n, dtype, device, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(0.2, 2.0, _shape()) * rng.choice([-1, 1], _shape()) for _ in range(n)]
    return [mx.nd.array(a.astype(hal.to_dtype(dtype)), ctx=device, dtype=dtype) for a in arrays]


def _unfused(chain, inputs):
    """Each entry through its own op on the inputs' device."""
    results = []
    for name, args, scalar in chain:
        vals = [inputs[a] if a >= 0 else results[-a - 1] for a in args]
        if scalar is not None:
            results.append(mx.nd.invoke(name, *vals, scalar=scalar))
        else:
            results.append(mx.nd.invoke(name, *vals))
    return results[-1]


def _launches():
    from mxcore_cuda.triton._runtime import LAUNCHES
    return LAUNCHES["fused.fused_elemwise"]


def _float64_fusable(chain) -> bool:
    """float64 chains take no scalar forms (their unfused Triton kernels are 16/32-bit
    only) and no log (see FUSABLE_OPS_FLOAT64)."""
    return all(scalar is None and name != "log" for name, _, scalar in chain)


CASES = [pytest.param(key, d, id=f"{key}-{d}") for key in CHAINS
         for d in ("float32", "float16", "bfloat16", "float64")
         if d in hal.DTYPES and (d != "float64" or _float64_fusable(CHAINS[key][0]))]


@pytest.mark.parametrize("key,dtype", CASES)
def test_fused_chain_equals_unfused_ops(key, dtype, device):
    _cuda(device)
    chain, n = CHAINS[key]
    inputs = _inputs(n, dtype, device)
    before = _launches()
    got = mx.nd.invoke("fused_elemwise", *inputs, chain=chain, inplace=-1, scratch=None)
    mx.nd.waitall()  # (an asynchronous engine launches later)
    ran = _launches() - before
    want = _unfused(chain, inputs).asnumpy()
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.isfinite(want.astype(np.float64)).all()
    np.testing.assert_array_equal(got.asnumpy(), want)
    from mxcore_cuda.triton.fused import MAX_CHAIN, MAX_INPUTS
    fits = len(chain) <= MAX_CHAIN and n <= MAX_INPUTS
    assert ran == 1 if fits else ran > 1


def test_kernel_lists_what_it_fuses():
    """fusable: the names with an elementwise.py formula that the CPU fuser also names,
    set on the registered kernel before any Triton import."""
    from mxcore.plugins import registry
    from mxcore_cpu.kernels.fused import kernels as cpu_fused
    from mxcore_cuda.triton import FUSABLE_OPS
    cpu = cpu_fused(np, __import__("scipy.special").special)["fused_elemwise"][0].fusable
    from mxcore_cuda.triton.elementwise import BINARY, SCALAR, UNARY
    assert FUSABLE_OPS <= cpu & (set(UNARY) | set(BINARY) | set(SCALAR))
    assert {"relu", "sigmoid", "tanh", "exp", "add", "multiply", "add_scalar"} <= FUSABLE_OPS
    if "cuda" in {d.kind for d in mx.available_devices()}:
        for dtype in ("float32", "float16", "float64"):
            k = registry().resolve("fused_elemwise", "cuda", dtype)
            assert k.name == "triton.fused.fused_elemwise"
            assert k.fn.fusable == (FUSABLE_OPS - set(SCALAR) - {"log"}
                                    if dtype == "float64" else FUSABLE_OPS)


def test_guard_takes_fusable_chains_of_one_shape_and_dtype():
    from mxcore_cuda.triton import fused_chain, fused_chain_compiles, fusable_ops
    chain, _ = CHAINS["tail"]
    ok = ([(4, 5), (4, 5)], ["float16", "float16"])
    if not fused_chain_compiles():  # an old Triton: nothing is fused, every chain declined
        assert fusable_ops("float16") == frozenset()
        assert not fused_chain(*ok, {"chain": chain})
        return
    assert fused_chain(*ok, {"chain": chain})
    assert fused_chain(*ok, {"chain": CHAINS["twelve"][0]})  # split into launches
    assert not fused_chain(*ok, {"chain": (("power", (0, 1), None),)})
    assert not fused_chain(*ok, {"chain": (("softrelu", (0,), None),)})  # no CPU name
    assert not fused_chain([(4, 5), (5, 4)], ok[1], {"chain": chain})
    assert not fused_chain(ok[0], ["float16", "float32"], {"chain": chain})
    from mxcore_cuda import INTERPRET
    from mxcore_cuda.triton._runtime import MIN_ELEMENTS
    big = [(5, 37)] * 2 if INTERPRET else [(MIN_ELEMENTS,)] * 2  # in the launch window
    f64 = ["float64", "float64"]
    assert fused_chain(big, f64, {"chain": CHAINS["shared_input"][0]})
    assert not fused_chain(big, f64, {"chain": chain})  # scalar forms
    if not INTERPRET:  # below the window, as their unfused ops: the fallback's ufuncs
        assert not fused_chain(ok[0], ["float32"] * 2, {"chain": chain})
        assert fused_chain(big, ["float32"] * 2, {"chain": chain})


GPU_CHAINS = (("tail", "fp32"), ("unary8", "fp16"), ("scalars", "bf16"), ("four_inputs", "fp32"),
              ("shared_input", "fp64"))


def test_chains_compile_for_sm90():
    """What the interpreter cannot show: each chain compiles for a GPU (Triton's compiler
    and bundled ptxas, no GPU needed), and without FMA contraction across entries (the
    unfused kernels round each entry's product before the next one's add)."""
    from mxcore_cuda import INTERPRET
    if INTERPRET:
        pytest.skip("Triton's compiler is not used by interpreted processes")
    from mxcore_cuda.triton import fused_chain_compiles
    if not fused_chain_compiles():
        pytest.skip("this Triton cannot compile the fused chain kernel for a GPU; the "
                    "plugin fuses nothing there")
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from mxcore_cuda.triton import fused
    fn = fused._chain_kernel
    for key, ty in GPU_CHAINS:
        chain, n = CHAINS[key]
        sig = {a: f"*{ty}" if a[0] in "XY" else "i32" if a == "N" else
               "fp32" if a[0] == "S" and a[1:].isdigit() else "constexpr" for a in fn.arg_names}
        consts = {"NI": n, "NE": len(chain), "BLOCK": 1024}
        for j in range(fused.MAX_CHAIN):
            name, args, _ = chain[j] if j < len(chain) else ("exp", (0,), None)
            f, kind = fused.FORMULAS[name]
            a, b = (tuple(args) + (0,))[:2]
            consts.update({f"F{j}": f if j < len(chain) else None, f"K{j}": kind,
                           f"A{j}": a, f"B{j}": b})
        ptx = triton.compile(ASTSource(fn, sig, constexprs=consts),
                             target=GPUTarget("cuda", 90, 32),
                             options=fused.OPTIONS).asm["ptx"]
        if key == "tail":  # x * 0.5 + 1: a multiply, then an add, no fma
            assert "fma." not in ptx and "mul.rn.f32" in ptx and "add.rn.f32" in ptx


def test_segments_split_long_chains():
    from mxcore_cuda.triton.fused import _segments
    one = tuple(("exp", (0,) if j == 0 else (-j,), None) for j in range(8))
    assert _segments(one) == [(0, 8)]
    assert _segments(one + (("tanh", (-8,), None),)) == [(0, 8), (8, 9)]
    # entry 0's result is read by entry 9: the first run cannot end before it
    reread = one + (("add", (-9, -1), None), ("add", (-10, -1), None))
    assert _segments(reread) == [(0, 1), (1, 9), (9, 10)]
    wide = (("add", (0, 1), None), ("add", (-1, 2), None), ("add", (-2, 3), None),
            ("add", (-3, 4), None))
    assert _segments(wide) == [(0, 3), (3, 4)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_inplace_output_takes_the_input(dtype, device):
    _cuda(device)
    chain, n = CHAINS["tail"]
    inputs = _inputs(n, dtype, device, seed=1)
    want = _unfused(chain, inputs).asnumpy()
    from mxcore.plugins import registry
    fn = registry().resolve("fused_elemwise", "cuda", dtype).fn
    x = inputs[1].copy()
    from mxcore import engine
    data = engine.resolve(x._data)  # the array itself (a kernel called directly)
    out = fn(engine.resolve(inputs[0]._data), data, chain=chain, inplace=1)
    assert out is data  # the input's memory took the output
    np.testing.assert_array_equal(x.asnumpy(), want)


class _Tail(nn.HybridBlock):
    def __init__(self, **kw):
        super().__init__(**kw)
        with self.name_scope():
            self.dense = nn.Dense(37, in_units=8)

    def hybrid_forward(self, F, x):
        h = self.dense(x)
        return F.relu(F.tanh(h * 0.5 + 1) * F.sigmoid(h) - F.exp(h) * 0.25)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_hybridized_block_fuses(dtype, device):
    _cuda(device)
    net = _Tail()
    net.initialize(ctx=device)
    net.cast(dtype)
    rng = np.random.default_rng(2)
    x = mx.nd.array(rng.normal(size=(5, 8)), ctx=device, dtype=dtype)
    want = net(x).asnumpy()
    net.hybridize()
    before = _launches()
    got = net(x).asnumpy()
    steps = [st.op.name for st in net.last_plan().forward.steps]
    assert "fused_elemwise" in steps, steps
    assert not {"tanh", "sigmoid", "exp", "relu"} & set(steps), steps
    assert _launches() > before
    np.testing.assert_array_equal(got, want)


def test_on_the_interpreted_device():
    """Without a cuda device, this file's checks on the interpreted one (a subprocess:
    the mode is chosen when the plugin is imported)."""
    if "cuda" in {d.kind for d in mx.available_devices()}:
        pytest.skip("a cuda device is available: the checks above ran on it")
    env = {k: v for k, v in os.environ.items()
           if k not in ("MXCORE_PLUGINS", "MXCORE_REGISTRY", "MXCORE_DEVICE",
                        "MXCORE_CUDA_INTERPRET", "TRITON_INTERPRET", "MXCORE_NO_THIRD_PARTY",
                        "MXCORE_TEST_SHARD")}
    env["MXCORE_CUDA_INTERPRET"] = "1"
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        __file__, "-k", "cuda"], capture_output=True, text=True, timeout=300,
                       env=env, cwd=ROOT)
    tail = "\n".join(r.stdout.splitlines()[-15:])
    assert r.returncode == 0, tail + r.stderr[-3000:]
    assert "failed" not in tail and "skipped" not in tail, tail
