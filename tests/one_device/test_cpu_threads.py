"""BLAS runtimes and threads on the CPU training path.

numpy and SciPy each load an OpenBLAS of their own.  A training step must call
only numpy's: when the SGD update ran on SciPy's axpy/scal, the two thread
pools' waiting workers starved each other and a Gluon MLP step took ~10x longer
with default threads.  And with default threads, products under one grain run on one BLAS
thread and larger ones on as many threads as the free cores allow
(``mxcore_cpu.cpu_load``); where the load is unknown, products under
``mxcore_cpu.device.SMALL_PRODUCT`` run on one thread and large ones get the
library's count back.  The end-to-end checks run in a fresh interpreter, so thread pools and
imported modules are a user's.  Nothing here times anything."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest

import mxcore as mx
from mxcore_cpu import device as cpu_device
from mxcore_cpu.kernels.linalg import mnk

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "MXCORE_CPU_THREADS")


def _run(code: str, *args: str, **env_vars: str) -> dict:
    """Runs ``code`` in a fresh interpreter with default threads (the thread
    variables removed, ``env_vars`` added); returns the JSON it prints last."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env.update(env_vars)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# a few Gluon steps of a small MLP with each optimizer family; reports what the
# process imported and, in "calls" mode, every call into SciPy's BLAS and LAPACK
TRAIN = r"""
import json, sys
calls, wrapped = {}, 0
if sys.argv[1] == "calls":
    # count every call through scipy.linalg's BLAS/LAPACK wrappers (f2py objects)
    import scipy.linalg.blas, scipy.linalg.lapack
    for mod in (scipy.linalg.blas, scipy.linalg.lapack):
        for name in dir(mod):
            fn = getattr(mod, name)
            if type(fn).__name__ == "fortran":
                def counted(*a, _fn=fn, _name=name, **k):
                    calls[_name] = calls.get(_name, 0) + 1
                    return _fn(*a, **k)
                setattr(mod, name, counted)
                wrapped += 1
import numpy as np
import mxcore as mx
from mxcore import autograd, gluon
from mxcore.gluon import nn
from mxcore_cpu.cpu_load import FreeCores
from mxcore_cpu.device import PRODUCT_THREADS, numpy_openblas

PRODUCT_THREADS.load = FreeCores(busy=lambda cpus: None)  # the size rule (load unknown)
blas = numpy_openblas()
threads_before = blas.get_num_threads() if blas else None
rs = np.random.RandomState(0)
x = mx.nd.array(rs.standard_normal((64, 784)).astype(np.float32))
y = mx.nd.array(rs.randint(0, 10, 64).astype(np.int32))
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
for opt, hp in [("sgd", {"learning_rate": 0.1}),
                ("sgd", {"learning_rate": 0.1, "momentum": 0.9, "wd": 1e-4}),
                ("nag", {"learning_rate": 0.1, "momentum": 0.9}),
                ("adam", {"learning_rate": 1e-3}),
                ("adamw", {"learning_rate": 1e-3, "wd": 1e-2})]:
    net = nn.HybridSequential()
    net.add(nn.Dense(256, activation="relu", in_units=784), nn.Dense(10, in_units=256))
    net.initialize(mx.init.Xavier())
    trainer = gluon.Trainer(net.collect_params(), opt, hp)
    for _ in range(3):
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(64)
    assert np.isfinite(loss.asnumpy()).all()
threads_during = blas.get_num_threads() if blas else None
big = mx.nd.ones((512, 512))
mx.nd.dot(big, big).wait_to_read()                     # 512^3 multiply-adds: a large product
threads_after_large = blas.get_num_threads() if blas else None
print(json.dumps({
    "scipy_linalg": sorted(m for m in sys.modules if m.split(".")[:2] == ["scipy", "linalg"]
                           and sys.argv[1] != "calls"),
    "calls": calls, "wrapped": wrapped, "numpy_openblas": blas is not None, "threads_before": threads_before,
    "threads_during": threads_during, "threads_after_large": threads_after_large}))
"""


def test_training_steps_do_not_import_scipy_linalg():
    out = _run(TRAIN, "imports")
    assert out["scipy_linalg"] == [], (
        "a Gluon training step imported SciPy's BLAS/LAPACK wrappers: their OpenBLAS is a "
        f"second runtime beside numpy's ({out['scipy_linalg'][:4]}...)")


def test_training_steps_call_no_scipy_blas():
    out = _run(TRAIN, "calls")
    assert out["wrapped"] > 20                  # saxpy, sscal, ... were all replaced
    assert out["calls"] == {}, f"SciPy BLAS/LAPACK called during training steps: {out['calls']}"


def test_small_products_run_on_one_blas_thread_by_default():
    out = _run(TRAIN, "imports")
    if not out["numpy_openblas"]:
        pytest.skip("numpy does not use an OpenBLAS of its own here")
    if out["threads_before"] == 1:
        pytest.skip("numpy's BLAS starts with one thread here (one CPU)")
    assert out["threads_during"] == 1
    assert out["threads_after_large"] == out["threads_before"]


def test_explicit_thread_count_holds_for_every_product():
    out = _run("""
        import json
        import mxcore as mx
        from mxcore.device import device_type
        from mxcore_cpu.device import PRODUCT_THREADS, numpy_openblas
        get = numpy_openblas().get_num_threads if numpy_openblas() else (lambda: None)
        a = mx.nd.ones((64, 64))
        mx.nd.dot(a, a).wait_to_read()
        pinned = get()                     # MXCORE_CPU_THREADS=2 covers small products too
        t = device_type(mx.cpu())
        t.set_num_threads(None)            # back to the default policy
        mx.nd.dot(a, a).wait_to_read()
        print(json.dumps({"pinned": pinned, "auto": PRODUCT_THREADS.auto, "small": get()}))
        """, MXCORE_CPU_THREADS="2")
    if out["pinned"] is None:
        pytest.skip("numpy does not use an OpenBLAS of its own here")
    assert out["pinned"] == 2
    assert out["auto"] and out["small"] == 1


class _FakeBlas:
    def __init__(self, threads):
        self.threads, self.sets = threads, []

    def set(self, n):
        self.sets.append(n)
        self.threads = n

    def get(self):
        return self.threads


class _FakeLoad:
    """``free()`` as FreeCores gives it: a number of cores, or None (unknown)."""

    def __init__(self, free=None):
        self.value = free

    def free(self):
        return self.value

    def reset(self):
        self.value = None


def _policy(threads, free=None):
    blas = _FakeBlas(threads)
    policy = cpu_device.ProductThreads(load=_FakeLoad(free))
    policy._fns = (blas.set, blas.get)
    return policy, blas


def test_policy_calls_the_library_only_when_the_size_class_changes():
    policy, blas = _policy(4)
    small, large = 64 * 784 * 256, cpu_device.SMALL_PRODUCT
    for _ in range(5):
        policy(small)
    assert blas.sets == [1]
    policy(large)
    policy(large)
    assert blas.sets == [1, 4]
    policy(small)
    assert blas.sets == [1, 4, 1]


def test_policy_leaves_a_count_changed_by_someone_else():
    policy, blas = _policy(4)
    policy(1000)
    blas.threads = 3                       # e.g. threadpoolctl, between two products
    policy(cpu_device.SMALL_PRODUCT)
    assert blas.sets == [1] and blas.threads == 3


def test_policy_off_when_explicit_or_single_threaded():
    policy, blas = _policy(4)
    policy.auto = False
    policy(1000)
    assert blas.sets == []
    policy, blas = _policy(1)              # the library already runs one thread
    policy(1000)
    policy(cpu_device.SMALL_PRODUCT)
    assert blas.sets == []


def test_policy_shares_the_cores_among_kernels_that_run_at_once():
    policy, blas = _policy(4)
    small, large = 1000, cpu_device.SMALL_PRODUCT
    policy.share(2)                        # an engine with two CPU workers
    policy(large)
    assert blas.sets == [2]
    policy(small)
    policy(large)
    assert blas.sets == [2, 1, 2]
    policy.share(1)                        # one kernel at a time again: the library's own
    policy(large)
    assert blas.sets == [2, 1, 2, 4]
    policy.share(8)                        # more workers than threads: one each
    policy(large)
    assert blas.sets == [2, 1, 2, 4, 1]


def test_an_engine_with_two_cpu_workers_shares_the_blas_threads():
    from mxcore.threaded_engine import ThreadedEngine
    eng = ThreadedEngine(workers=2)
    try:
        policy = cpu_device.PRODUCT_THREADS
        blas = cpu_device.numpy_openblas()
        if blas is None:
            pytest.skip("numpy's BLAS is not an OpenBLAS this process can steer")
        own = policy._saved if policy._set_to is not None else blas.get_num_threads()
        eng._new_pool(mx.cpu())
        assert policy._large == (None if own <= 1 else max(1, own // 2))
    finally:
        eng.shutdown()
    assert cpu_device.PRODUCT_THREADS._large is None


def test_other_array_modules_get_a_no_op_hook():
    hook = cpu_device.product_threads(object())
    assert hook is not cpu_device.PRODUCT_THREADS
    assert hook(10) is None
    assert cpu_device.product_threads(np) is cpu_device.PRODUCT_THREADS


@pytest.mark.parametrize("a, b, expect", [
    ((64, 784), (784, 256), 64 * 784 * 256),
    ((784,), (784, 256), 784 * 256),
    ((64, 784), (784,), 64 * 784),
    ((8, 64, 32), (8, 32, 16), 64 * 32 * 16),   # a stack: one BLAS call per matrix
    ((5,), (5,), 5),
])
def test_mnk(a, b, expect):
    assert mnk(np.empty(a), np.empty(b)) == expect


def test_products_match_numpy_in_both_size_classes():
    rng = np.random.default_rng(0)
    for m, k, n in [(8, 16, 4), (512, 512, 256)]:   # below and above SMALL_PRODUCT
        a, b = rng.normal(size=(m, k)), rng.normal(size=(k, n))
        np.testing.assert_allclose(mx.nd.dot(mx.nd.array(a, dtype="float64"),
                                             mx.nd.array(b, dtype="float64")).asnumpy(),
                                   a @ b, rtol=1e-12)
        w = rng.normal(size=(n, k))
        out = mx.nd.FullyConnected(mx.nd.array(a, dtype="float64"), mx.nd.array(w, dtype="float64"),
                                   no_bias=True, num_hidden=n)
        np.testing.assert_allclose(out.asnumpy(), a @ w.T, rtol=1e-12)


@pytest.mark.parametrize("hp", [{}, {"momentum": 0.9}], ids=["sgd", "sgd_mom"])
def test_sgd_without_clipping_allocates_nothing_of_weight_size(hp):
    """SGD without clipping (its usual form) runs in place on blocks with cached
    scratch, as the clipped form does (test_optimizers checks the clipped one)."""
    shape = (1000, 1000)
    rng = np.random.default_rng(0)
    w = mx.nd.array(rng.normal(size=shape).astype(np.float32))
    g = mx.nd.array(rng.normal(size=shape).astype(np.float32))
    ref_w, ref_g = w.asnumpy().astype(np.float64), g.asnumpy().astype(np.float64)
    opt = mx.optimizer.create("sgd", learning_rate=0.1, wd=1e-3, rescale_grad=0.5, **hp)
    updater = mx.optimizer.get_updater(opt)
    updater(0, g, w)                                    # states and scratch buffers
    mom = np.zeros(shape)
    for _ in range(2):                                  # the reference: two steps in all
        if hp:
            mom = 0.9 * mom - 0.1 * (0.5 * ref_g + 1e-3 * ref_w)
            ref_w = ref_w + mom
        else:
            ref_w = (1 - 0.1 * 1e-3) * ref_w - 0.1 * 0.5 * ref_g
    tracemalloc.start()
    try:
        updater(0, g, w)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 10, f"one step allocated up to {peak} bytes"
    np.testing.assert_allclose(w.asnumpy(), ref_w, rtol=2e-5, atol=2e-6)


def test_numpy_openblas_level1_routines():
    blas = cpu_device.numpy_openblas()
    if blas is None:
        pytest.skip("numpy does not use an OpenBLAS of its own here")
    routines = blas.level1()
    assert set(routines) == {"f", "d"}
    for char in "fd":
        axpy, scal = routines[char]
        x = np.arange(5, dtype=char)
        y = np.ones(6, dtype=char)
        axpy(5, -2.0, x.ctypes.data, y.ctypes.data)
        scal(5, 3.0, y.ctypes.data)
        np.testing.assert_array_equal(y, [3, -3, -9, -15, -21, 1])


def _sgd_reference(w, grads, lr, wd, rs, momentum):
    mom = np.zeros_like(w)
    for g in grads:
        if momentum:
            mom = momentum * mom - lr * (rs * g + wd * w)
            w = w + mom
        else:
            w = (1 - lr * wd) * w - lr * rs * g
    return w, mom


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("wd", [0.0, 0.05])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_large_sgd_updates_match_reference(dtype, momentum, wd, layout):
    """Large contiguous weights without clipping take the BLAS path (numpy's
    OpenBLAS), transposed views the ufunc path: both match the reference."""
    from mxcore_cpu.kernels.optimizer import BLAS_MIN
    rng = np.random.default_rng(3)
    shape = (300, 517)
    assert shape[0] * shape[1] >= BLAS_MIN
    w0 = rng.normal(size=shape).astype(dtype)
    grads = [(3 * rng.normal(size=shape)).astype(dtype) for _ in range(3)]
    view = (lambda a: a.T) if layout == "transposed" else (lambda a: a)
    w = view(mx.nd.array(w0, dtype=dtype))
    mom = mx.nd.zeros(w.shape, dtype=dtype)
    attrs = dict(lr=0.1, wd=wd, rescale_grad=0.5)
    for g in grads:
        gx = view(mx.nd.array(g, dtype=dtype))
        if momentum:
            assert mx.nd.sgd_mom_update(w, gx, mom, momentum=momentum, **attrs) is w
        else:
            assert mx.nd.sgd_update(w, gx, **attrs) is w
        np.testing.assert_array_equal(gx.asnumpy(), view(g))   # the gradient is not written
    ref_w, ref_mom = _sgd_reference(w0.astype(np.float64), [g.astype(np.float64) for g in grads],
                                    0.1, wd, 0.5, momentum)
    tol = dict(rtol=2e-5, atol=2e-6) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w.asnumpy(), view(ref_w), **tol)
    if momentum:
        np.testing.assert_allclose(mom.asnumpy(), view(ref_mom), **tol)


# the load-aware policy (free cores known) -----------------------------------------------
GRAIN = cpu_device.PARALLEL_GRAIN


def test_policy_gives_a_product_one_thread_per_grain_up_to_the_free_cores():
    policy, blas = _policy(8, free=8.0)
    policy(GRAIN - 1)                      # under one grain: one thread
    assert blas.threads == 1
    policy(3 * GRAIN)                      # three grains: three threads
    assert blas.threads == 3
    policy(64 * 784 * 256)                 # the MLP's product: 12.8M, six grains
    assert blas.threads == 6
    policy(1024 ** 3)                      # large: every free core (the library's 8)
    assert blas.threads == 8


def test_policy_leaves_busy_cores_to_other_processes():
    policy, blas = _policy(4, free=4.0)
    policy(1024 ** 3)
    assert blas.threads == 4
    policy.load.value = 1.2                # others keep almost three cores busy
    policy(1024 ** 3)
    assert blas.threads == 1
    policy.load.value = 1.75               # a core 75% free counts as free
    policy(1024 ** 3)
    assert blas.threads == 2
    policy.load.value = 0.0                # saturated: still one thread
    policy(64 * 784 * 256)
    assert blas.threads == 1


def test_policy_never_exceeds_the_library_count_or_the_engine_share():
    policy, blas = _policy(2, free=16.0)   # e.g. OPENBLAS_NUM_THREADS=2 on a big host
    policy(1024 ** 3)
    assert blas.threads == 2
    policy, blas = _policy(8, free=8.0)
    policy.share(4)                        # four engine workers: two threads each
    policy(1024 ** 3)
    assert blas.threads == 2
    policy.share(1)
    policy(1024 ** 3)
    assert blas.threads == 8


def test_policy_with_unknown_load_keeps_the_size_rule():
    policy, blas = _policy(4, free=None)
    policy(64 * 784 * 256)
    assert blas.threads == 1
    policy(cpu_device.SMALL_PRODUCT)
    assert blas.threads == 4


def test_a_fork_forgets_the_load_samples():
    policy, _ = _policy(4, free=3.0)
    policy._after_fork()
    assert policy.load.free() is None


# FreeCores: what other processes leave of this process's CPUs ---------------------------
class _Machine:
    """A played machine: ``busy`` and ``own`` CPU seconds advance with ``run``."""

    def __init__(self):
        self.t, self.busy, self.own = 100.0, 5000.0, 3.0

    def run(self, seconds, own_cores, other_cores):
        self.t += seconds
        self.own += seconds * own_cores
        self.busy += seconds * (own_cores + other_cores)


def _free_cores(machine, cpus=2, busy=None):
    from mxcore_cpu.cpu_load import FreeCores
    return FreeCores(cpus=list(range(cpus)), busy=busy or (lambda c: machine.busy),
                     own=lambda: machine.own, clock=lambda: machine.t)


def test_free_cores_is_unknown_until_the_first_window_ends():
    from mxcore_cpu.cpu_load import FIRST_WINDOW, WINDOW
    m = _Machine()
    fc = _free_cores(m)
    assert fc.free() is None               # one sample: no difference yet
    m.run(FIRST_WINDOW / 2, 1.0, 0.0)
    assert fc.free() is None               # not due yet
    m.run(FIRST_WINDOW, 1.0, 0.0)
    assert fc.free() == pytest.approx(2.0)
    m.run(WINDOW / 2, 1.0, 1.0)            # a competitor starts; the window is longer now
    assert fc.free() == pytest.approx(2.0)


def test_free_cores_subtracts_this_process_and_counts_the_others():
    from mxcore_cpu.cpu_load import WINDOW
    m = _Machine()
    fc = _free_cores(m, cpus=4)
    fc.free()
    m.run(1.0, 2.0, 0.0)                   # we keep two cores busy, nobody else
    assert fc.free() == pytest.approx(4.0)
    m.run(WINDOW, 1.0, 1.5)                # others: a core and a half
    assert fc.free() == pytest.approx(2.5)
    m.run(WINDOW, 0.5, 4.0)                # others saturate the machine
    assert fc.free() == pytest.approx(0.0)


def test_free_cores_without_proc_stat_is_unknown():
    m = _Machine()
    fc = _free_cores(m, busy=lambda c: None)
    for _ in range(3):
        m.run(1.0, 1.0, 0.0)
        assert fc.free() is None


def test_free_cores_forgets_a_window_in_which_its_own_time_went_back():
    m = _Machine()
    fc = _free_cores(m)
    fc.free()
    m.run(1.0, 1.0, 0.0)
    assert fc.free() == pytest.approx(2.0)
    m.own = 0.0                            # a forked child: its CPU time starts again
    m.run(1.0, 0.0, 0.0)
    assert fc.free() == pytest.approx(2.0)  # the last estimate stays, no nonsense
    fc.reset()
    assert fc.value is None


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="no /proc/stat here")
def test_proc_stat_busy_reads_this_machine():
    from mxcore_cpu.cpu_load import proc_stat_busy, usable_cpus
    cpus = usable_cpus()
    a = proc_stat_busy(cpus)
    x = 0
    for i in range(2_000_000):             # ~0.1 s of this CPU's time
        x += i
    b = proc_stat_busy(cpus)
    assert a is not None and b > a > 0
    assert proc_stat_busy([]) == 0
