"""Devices as users see them: ``mx.cpu()``, ``mx.gpu(0)``, ``mx.device("cuda:0")``.

``hal.Device`` is the value (kind, index); this module checks a device against
the registered device types so that naming a missing or unavailable device
fails at once with the reason.
"""
from __future__ import annotations

import itertools
import os
import threading
from typing import Dict, List

from hal import Device, DeviceType, DeviceUnavailableError, parse_device, scoped_device
from mxcore.base import MXCoreError

Context = Device  # MXNet's name
_checked: set = set()


_META_SEEDS = itertools.count(1)
_META_LOCAL = threading.local()


def meta_recorder():
    """The recorder that ops and constants made on the meta device report to in this
    thread (a graph trace while hybridize traces a forward; None otherwise).  It lives
    with the device so that dispatch, below the graph, never imports the graph."""
    return getattr(_META_LOCAL, "recorder", None)


def set_meta_recorder(recorder) -> None:
    _META_LOCAL.recorder = recorder


class MetaDeviceType(DeviceType):
    """Shape-only arrays (PyTorch's "meta" device): every op runs its shape/dtype
    rule instead of a kernel (``mxcore.dispatch.META``).  Graph shape inference runs
    the same op functions as eager code on such arrays.  Not a plugin: it has no
    kernels and no memory, and is not listed among the available devices."""

    kind = "meta"
    host_memory = False  # reading values goes through to_host, which refuses
    description = "shape-only arrays (no memory, no computation)"

    def from_host(self, index: int, array):
        import numpy as np
        out = np.broadcast_to(np.zeros((), array.dtype), array.shape)
        recorder = meta_recorder()
        if recorder is not None:  # a constant made inside a traced forward
            recorder.log_constant(array, out)
        return out

    def to_host(self, index: int, array):
        raise MXCoreError("an array on the meta device has a shape and a dtype but no "
                          "values: bind the graph to a real device to compute them")

    def host_seed(self, index: int) -> int:
        # distinct per call: a traced plan maps each traced seed to a fresh one per
        # replay, so two dropouts must not share one
        return next(_META_SEEDS)


_META = MetaDeviceType()


def device_type(dev: Device) -> DeviceType:
    """The DeviceType serving ``dev``; raises DeviceUnavailableError."""
    from mxcore.plugins import registry
    if dev.kind == "meta":
        return _META
    dt = registry().device_type(dev.kind)
    if dev not in _checked:
        dt.check_index(dev.index)
        _checked.add(dev)
    return dt


def device(spec) -> Device:
    """Parse and check a device: ``"cpu"``, ``"cuda:0"``, ``"gpu(1)"`` or a Device."""
    if spec.__class__ is Device and spec in _checked:  # checked already: as it is
        return spec
    dev = parse_device(spec)
    device_type(dev)
    return dev


def cpu(device_id: int = 0) -> Device:
    dev = Device("cpu", device_id)
    if dev not in _checked:
        device_type(dev)
    return dev


def gpu(device_id: int = 0) -> Device:
    dev = Device("cuda", device_id)
    if dev not in _checked:
        device_type(dev)
    return dev


def cpu_pinned(device_id: int = 0) -> Device:
    return cpu(device_id)


def num_gpus() -> int:
    from mxcore.plugins import registry
    dt = registry().devices.get("cuda")
    if dt is None or not dt.is_available():
        return 0
    return dt.device_count()


def synchronize(dev: Device = None) -> None:
    """Wait until the work queued on ``dev`` has finished; without ``dev``, on
    every device this process has used (whose plugin is still registered).
    Asynchronous devices (cuda) return from kernel calls before the kernels run;
    host devices make this a no-op."""
    for d, dt in _used(dev):
        dt.synchronize(d.index)


def empty_cache(dev: Device = None) -> None:
    """Return the memory cached by ``dev``'s allocator (CUDA: CuPy's device and
    pinned memory pools) but used by no array to the system, so other processes
    and libraries can have it (MXNet's ``ctx.empty_cache()``,
    ``torch.cuda.empty_cache()``); without ``dev``, for every device this process
    has used.  Live arrays keep their memory."""
    for d, dt in _used(dev):
        dt.empty_cache(d.index)


def memory_stats(dev: Device = None) -> Dict[str, int]:
    """What ``dev``'s plugin reports about its memory (``DeviceType.memory_stats``:
    CUDA pool bytes, host RSS, a plugin's own accounting), for ``dev`` or the
    default device (``torch.cuda.memory_stats``)."""
    dev = default_device() if dev is None else device(dev)
    return dict(device_type(dev).memory_stats(dev.index))


def _used(dev: Device = None, kind: str = None):
    """(device, DeviceType) pairs: ``dev`` alone, or every device this process has
    used (of ``kind``, when given) whose plugin is still registered."""
    if dev is not None:
        return [(dev, device_type(dev))]
    from mxcore.plugins import registry
    types = registry().devices
    return [(d, types[d.kind]) for d in list(_checked)
            if d.kind in types and kind in (None, d.kind)]


#: per thread, the default set by ``set_default_device`` (MXNet: set_default_context)
_DEFAULT = threading.local()


def set_default_device(dev) -> None:
    """Make ``dev`` (checked; None: unset) this thread's default device, under any
    ``with device:`` block."""
    _DEFAULT.device = None if dev is None else device(dev)


def default_device() -> Device:
    """Where arrays are made without a ``ctx``: the device of the innermost ``with
    device:`` block of this thread, else the one ``set_default_device`` set, else
    ``MXCORE_DEVICE`` if set, else ``cpu(0)``."""
    dev = scoped_device()
    if dev is not None:
        return dev
    dev = getattr(_DEFAULT, "device", None)
    if dev is not None:
        return dev
    spec = os.environ.get("MXCORE_DEVICE")
    if not spec:
        return cpu()
    try:
        return device(spec)
    except (DeviceUnavailableError, ValueError, TypeError) as exc:
        raise DeviceUnavailableError(f"MXCORE_DEVICE={spec!r} names no usable device: {exc}") \
            from None


current_context = default_device
current_device = default_device


def available_devices() -> List[Device]:
    """Every usable device instance of every registered kind."""
    from mxcore.plugins import registry
    out = []
    for kind, dt in sorted(registry().devices.items()):
        if dt.is_available():
            out.extend(Device(kind, i) for i in range(dt.device_count()))
    return out


def device_status() -> Dict[str, str]:
    """kind -> "available" or the reason it is not."""
    from mxcore.plugins import registry
    out = {}
    for kind, dt in sorted(registry().devices.items()):
        try:
            ok, why = dt.availability()
        except Exception as exc:  # the protocol says never raise; be safe anyway
            ok, why = False, f"availability check raised {exc!r}"
        out[kind] = "available" if ok else f"unavailable: {why}"
    return out


__all__ = ["Context", "Device", "DeviceUnavailableError", "cpu", "gpu", "device", "num_gpus",
           "default_device", "current_context", "available_devices", "device_type",
           "synchronize", "empty_cache"]
