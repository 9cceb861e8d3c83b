"""Shared fixtures.  Tests are split by what they need:

* ``no_device/``    registry, plugins, CLI, pure logic: no device is touched
* ``every_device/`` the op-table conformance suite and autograd, run on every
                    available device (``device`` fixture)
* ``one_device/``   behaviour of one device kind (skips when it is absent)
* ``distributed/``  multi-process tests (kvstore), added with the kvstore
"""
from __future__ import annotations

import os

import numpy as np
import pytest


def pytest_generate_tests(metafunc):
    # every available device, or those named by --mxcore-device (the conformance kit's
    # option, from its pytest plugin mxcore_pytest)
    if "device" in metafunc.fixturenames:
        from mxcore_pytest import selected_devices
        metafunc.parametrize("device", selected_devices(metafunc.config), indirect=True)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``long`` (exhaustive or slow: big models, the whole every-device
    suite on the interpreted cuda device) skip unless ``MXCORE_LONG_TESTS=1``; .ci/run
    runs them in a step of their own (``-m long``).

    ``MXCORE_TEST_SHARD=k/n`` keeps every n-th collected test starting at the k-th
    (0-based), so n processes can split a run (the GPU check runs the conformance
    suite this way, compiling Triton kernels on several cores at once)."""
    if os.environ.get("MXCORE_LONG_TESTS") != "1":
        skip = pytest.mark.skip(reason="long test: set MXCORE_LONG_TESTS=1")
        for item in items:
            if "long" in item.keywords:
                item.add_marker(skip)
    spec = os.environ.get("MXCORE_TEST_SHARD")
    if not spec:
        return
    try:
        k, n = (int(v) for v in spec.split("/"))
        if not 0 <= k < n:
            raise ValueError
    except ValueError:
        raise pytest.UsageError(f"MXCORE_TEST_SHARD={spec!r}: expected k/n with 0 <= k < n")
    keep = [item for i, item in enumerate(items) if i % n == k]
    config.hook.pytest_deselected(items=[item for i, item in enumerate(items) if i % n != k])
    items[:] = keep


@pytest.fixture
def device(request):
    import mxcore as mx
    return mx.device(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def runtime_plugins():
    """Registers plugins on the process's plugin system and removes them (and
    any policy change) afterwards, so that other tests see the usual state."""
    from mxcore.plugins import system
    from mxcore.registry import Policy, _merge
    s = system()
    reg = s.registry
    saved_policy = reg.policy
    names = []

    def register(plugin, name, prefer=None):
        if prefer is not None:
            reg.policy = Policy(_merge(saved_policy.data, prefer), saved_policy.sources)
        info = s.register_plugin(plugin, name)
        names.append(name)
        return info

    yield register
    for name in names:
        s.unregister_plugin(name)
    reg.policy = saved_policy
    reg.invalidate()


@pytest.fixture(autouse=True)
def _kernel_errors_stay_with_their_test():
    """Under the threaded engine (``MXCORE_ENGINE=threaded``) a kernel's error is raised
    at the next sync point: drain after each test, so that an error nobody read is
    reported by the test that caused it, not by a later one."""
    yield
    from mxcore import engine
    eng = engine.current()
    if getattr(eng, "asynchronous", False):
        eng.wait_all()


@pytest.fixture
def amp_on():
    """``amp.init`` for one test (mxcore.amp); whatever happens, AMP is off again after
    it, so no test sees another's wrapped namespaces."""
    from mxcore import amp
    try:
        yield amp.init
    finally:
        amp._reset()


@pytest.fixture(autouse=True, scope="session")
def _blas_threads_by_size():
    """Bit-for-bit comparisons (a hybridized block against its imperative run, a model run
    twice) need every product of one size to run on one number of BLAS threads: OpenBLAS's
    results change in the last bits with the thread count.  The CPU plugin's default
    follows the machine's load (test_cpu_threads.py tests that with played loads); the
    suite runs on its size rule, the rule where the load is unknown."""
    try:
        from mxcore_cpu import device as cpu_device
        from mxcore_cpu.cpu_load import FreeCores
    except ImportError:
        yield
        return
    policy = cpu_device.PRODUCT_THREADS
    saved, policy.load = policy.load, FreeCores(busy=lambda cpus: None)
    yield
    policy.load = saved
