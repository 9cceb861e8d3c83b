"""The cuda plugin's launch path (``mxcore_cuda.triton._launch``), checked against
Triton's own on a stand-in driver: kernels compile for sm_90 and every launch
is logged with the arguments the CUDA launcher would receive (no GPU needed).
The cached path must hand the launcher exactly what ``kernel[grid](...)`` hands
it, for every specialisation Triton distinguishes."""
from __future__ import annotations

import pytest

pytest.importorskip("mxcore_cuda")

from tests.one_device.test_cuda_plugin import _python  # noqa: E402

SETUP = """
    import numpy as np
    from mxcore_cuda import standin_driver as sd
    sd.install()
    from triton import knobs
    from mxcore_cuda.triton import _launch, elementwise as ew, matmul as tm, softmax as sm
    P = sd.Pointer

    def via_triton(k, grid, *a, **m):
        k[grid](*a, **m)
        return sd.LOG[-1]

    def via_launch(k, grid, *a, **m):
        before = len(sd.LOG)
        _launch.launch(k, grid, *a, **m)
        assert len(sd.LOG) == before + 1, "one launch per call"
        return sd.LOG[-1]

    def cached(k):
        return [v for key, v in _launch._ENTRIES.items() if key[0] == id(k)]
"""


def test_cached_launches_pass_what_triton_passes():
    out = _python(SETUP + """
    f32 = np.float32
    x, y, b, w = (P(i << 20, f32) for i in (1, 2, 3, 4))
    M, N, K = 64, 256, 784
    fc_meta = dict(BLOCK_M=32, BLOCK_N=64, BLOCK_K=32, GROUP_M=8, num_warps=4, num_stages=2,
                   PRECISION=tm._precision(np.empty(1, f32)), UPCAST=False, HAS_BIAS=True,
                   ACT=tm.ACTIVATIONS["relu"])
    cases = [
        (ew._unary_kernel, (4,), (x, y, 4096), dict(OP=ew.UNARY["exp"], BLOCK=1024)),
        (ew._binary_nd_kernel, (6,), (x, b, y, 6000, 5, 1, 40, 200, 40, 1, 0, 0, 0, 1, 0),
         dict(OP=ew.BINARY["add"], BLOCK=1024)),
        (tm._fc_kernel, (16,), (x, w, b, y, M, N, K, K, K, N), fc_meta),
        (sm._softmax_kernel, (64,), (x, y, 10, 1.0), dict(LOG=True, SCALE=False, BLOCK=16,
                                                         num_warps=4)),
        # a two-dimensional grid (batched product)
        (tm._matmul_kernel, (4, 3), (x, w, y, 64, 64, 32, 32, 64, 64, 2048, 2048, 4096),
         dict(BLOCK_M=32, BLOCK_N=32, BLOCK_K=32, GROUP_M=8, PRECISION=fc_meta["PRECISION"],
              UPCAST=False, num_warps=4, num_stages=2)),
    ]
    for k, grid, args, meta in cases:
        ref = via_triton(k, grid, *args, **meta)
        first = via_launch(k, grid, *args, **meta)   # Triton's path, then recorded
        second = via_launch(k, grid, *args, **meta)  # the cached launcher
        assert ref == first == second, (k, ref, second)
        assert len(cached(k)) == 1 and cached(k)[0] is not None, k
        assert second[:3] == tuple(grid) + (1,) * (3 - len(grid))
    print("OK", len(_launch._ENTRIES))
    """)
    assert out.strip() == "OK 5", out


def test_each_specialisation_gets_its_own_compiled_kernel():
    """Alignment, divisibility by 16, ints equal to 1, constexpr values and the
    stream: a cached entry is reused only where Triton would reuse its kernel."""
    out = _python(SETUP + """
    k, op = ew._unary_kernel, ew.UNARY["exp"]
    x, y = P(1 << 20, np.float32), P(2 << 20, np.float32)

    def both(*args, **meta):
        ref = via_triton(k, (2,), *args, **meta)
        assert via_launch(k, (2,), *args, **meta) == ref  # miss, or hit
        assert via_launch(k, (2,), *args, **meta) == ref  # hit
        return ref[4]  # the function handle: one per compiled binary

    aligned = both(x, y, 4096, OP=op, BLOCK=1024)
    assert both(x, y, 4112, OP=op, BLOCK=1024) == aligned      # same specialisation
    assert sd.LOG[-1][6][2] == 4112                             # the new value is passed
    odd_ptr = both(P((1 << 20) + 4, np.float32), y, 4096, OP=op, BLOCK=1024)
    odd_n = both(x, y, 4097, OP=op, BLOCK=1024)
    one = both(x, y, 1, OP=op, BLOCK=1024)
    big = both(x, y, 2**31 + 16, OP=op, BLOCK=1024)
    other_op = both(x, y, 4096, OP=ew.UNARY["log"], BLOCK=1024)
    half = both(P(1 << 20, np.float16), P(2 << 20, np.float16), 4096, OP=op, BLOCK=1024)
    handles = [aligned, odd_ptr, odd_n, one, big, other_op, half]
    assert len(set(handles)) == len(handles), handles
    sd.STREAM[0] = 99  # CuPy's current stream changed: the cached launch follows it
    assert via_launch(k, (2,), x, y, 4096, OP=op, BLOCK=1024)[3] == 99
    print("OK")
    """)
    assert out.strip() == "OK", out


def test_launch_hooks_send_calls_through_triton():
    """With a launch hook installed (Triton's profiler) calls take Triton's path,
    which runs the hook; once removed, the cached launcher serves them again."""
    out = _python(SETUP + """
    k, op = ew._unary_kernel, ew.UNARY["exp"]
    x, y = P(1 << 20, np.float32), P(2 << 20, np.float32)
    ref = via_launch(k, (2,), x, y, 4096, OP=op, BLOCK=1024)
    seen = []
    hook = lambda metadata: seen.append(metadata.get()["name"])  # a LazyDict
    knobs.runtime.launch_enter_hook.add(hook)
    assert via_launch(k, (2,), x, y, 4096, OP=op, BLOCK=1024) == ref
    assert seen == ["_unary_kernel"], seen
    knobs.runtime.launch_enter_hook.remove(hook)
    assert via_launch(k, (2,), x, y, 4096, OP=op, BLOCK=1024) == ref and len(seen) == 1
    print("OK")
    """)
    assert out.strip() == "OK", out


def test_a_launcher_call_of_another_layout_is_not_cached():
    """The recorded launcher call must be (grid, stream, function, metadata, hook
    metadata, hooks, bound arguments); anything else keeps Triton's path."""
    out = _python(SETUP + """
    class Bound(dict):
        pass
    head = (2, 1, 1, 7, 11, (4, 1, 0))
    bound = Bound(X=1, n=5, BLOCK=8)
    good = head + (None, None, None, 1, 5, 8)
    assert _launch._same(good, head, bound)
    assert not _launch._same(head + (None, None, None, 1, 8, 5), head, bound)  # reordered
    assert not _launch._same(head + (None, None, None, 1, 5), head, bound)     # dropped
    assert not _launch._same((3,) + good[1:], head, bound)                      # grid
    assert not _launch._same(head + (None, print, None, 1, 5, 8), head, bound)  # a hook
    assert not _launch._same(head + (None, None, None, 1, 5.0, 8), head, bound)  # a type
    print("OK")
    """)
    assert out.strip() == "OK", out


def test_launch_overhead_benchmark_runs():
    """plugins/cuda/launch_overhead.py (also run by the GPU check) times both paths
    for each of its kernels."""
    import json
    import sys

    from tests.one_device.test_cuda_plugin import ROOT, _run
    r = _run([sys.executable, str(ROOT / "plugins/cuda/launch_overhead.py"), "--rounds", "1",
              "--calls", "20"])
    assert r.returncode == 0, r.stderr[-3000:]
    kernels = json.loads(r.stdout.strip().splitlines()[-1])["kernels"]
    assert set(kernels) == {"unary_exp", "binary_add_broadcast", "dense_relu_64x784x256",
                            "log_softmax_64x10"}
    for times in kernels.values():
        assert times["triton_path_us"] > 0 and times["mxcore_cached_us"] > 0, times



def test_mlp_step_on_the_gpu_code_path_launches_eight_kernels():
    """plugins/cuda/standin_step.py runs the MNIST MLP training step through the cuda
    device's GPU code path (kernels compiled for sm_90, launched on the stand-in
    driver): six operators and eight Triton launches a step (two fused Dense
    forwards, three Dense backward products, softmax cross-entropy and its
    gradient, one fused optimizer update); more would show up here first."""
    import json
    import sys

    from tests.one_device.test_cuda_plugin import ROOT, _run
    r = _run([sys.executable, str(ROOT / "plugins/cuda/standin_step.py"), "--steps", "20",
              "--rounds", "1"])
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["operator_calls_per_step"] == {
        "FullyConnected": 2, "fully_connected_backward": 2, "multi_sgd_mom_update": 1,
        "ones_like": 1, "softmax_ce_loss": 1, "softmax_ce_loss_grad": 1}, out
    assert out["kernel_launches_per_step"] == 8, out
    for path in ("cached", "triton_path"):
        assert out[path]["total"] > 0, out
