"""The CPU device type (mxcore-cpu)."""
from __future__ import annotations

import numpy as np

import mxcore as mx
from mxcore.device import device_type


def test_cpu_device_protocol():
    t = device_type(mx.cpu())
    assert t.kind == "cpu" and t.xp is np and t.host_memory and t.is_available()
    assert "bfloat16" in t.dtypes and "float16" in t.dtypes
    stats = t.memory_stats(0)
    assert stats["peak_rss_bytes"] > 0 and stats.get("rss_bytes", 1) > 0
    props = t.properties(0)
    assert props["kind"] == "cpu" and props["numpy"] == np.__version__
    buf = t.allocate(0, (3,), np.float64)
    assert buf.shape == (3,) and buf.dtype == np.float64


def test_cpu_generators_are_per_index_and_seedable():
    t = device_type(mx.cpu())
    t.seed(0, 7)
    a = t.generator(0).random(3)
    t.seed(0, 7)
    assert np.array_equal(t.generator(0).random(3), a)
    assert t.generator(1) is not t.generator(0)


def test_cpu_indices_are_all_the_host():
    assert mx.cpu(3).device_id == 3
    x = mx.nd.ones((2,), ctx=mx.cpu(3))
    assert x.context == mx.cpu(3) and x.context != mx.cpu(0)
    assert mx.device("cpu") is mx.cpu()


def test_devices_listing():
    from mxcore.device import device_status
    assert device_status()["cpu"] == "available"
    assert mx.cpu() in mx.available_devices()


def test_blas_thread_limit():
    t = device_type(mx.cpu())
    before = t.num_threads()
    t.set_num_threads(1)
    assert t.num_threads() == 1 and t.properties(0)["blas_threads"] == 1
    t.set_num_threads(max(before, 1))
    import pytest
    with pytest.raises(ValueError):
        t.set_num_threads(0)
