"""mxcore.device's process-wide device functions (synchronize, empty_cache, the
profiler's waits) act on the devices this process used, not on every device of a
kind: checked on a stand-in device type with four devices, one of them used."""
from __future__ import annotations

import sys

import pytest

import hal
import mxcore as mx
from mxcore.plugins import registry


class FourDevices(hal.DeviceType):
    kind = "quad"
    description = "stand-in: four devices that log synchronize and empty_cache"

    def __init__(self):
        self.log = []

    def device_count(self) -> int:
        return 4

    def synchronize(self, index: int) -> None:
        self.log.append(("sync", index))

    def empty_cache(self, index: int) -> None:
        self.log.append(("empty", index))


@pytest.fixture
def quad(monkeypatch):
    module = sys.modules["mxcore.device"]  # mx.device is the function of that name
    dt = FourDevices()
    monkeypatch.setitem(registry().devices, "quad", dt)
    monkeypatch.setattr(module, "_checked", set())
    return module, dt


def test_synchronize_and_empty_cache_reach_only_used_devices(quad):
    module, dt = quad
    module.synchronize()
    module.empty_cache()
    assert dt.log == []  # nothing used yet
    used = mx.device("quad:2")
    module.synchronize()
    module.empty_cache()
    assert dt.log == [("sync", 2), ("empty", 2)]
    dt.log.clear()
    module.synchronize(hal.Device("quad", 1))  # an explicit device is always served
    mx.context.empty_cache(used)
    assert dt.log == [("sync", 1), ("empty", 2)]


def test_profiler_waits_for_the_used_devices_of_the_kernels_kind(quad):
    from mxcore import profiler
    module, dt = quad
    mx.device("quad:3")
    profiler._synchronize("quad")
    profiler._synchronize("cpu")  # another kind: not this one's devices
    assert dt.log == [("sync", 3)]


def test_empty_cache_on_a_host_device_is_harmless():
    a = mx.nd.ones((3,), ctx=mx.cpu())
    mx.context.empty_cache(mx.cpu())
    mx.context.empty_cache()
    assert a.asnumpy().tolist() == [1.0, 1.0, 1.0]
