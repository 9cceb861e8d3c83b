"""The device protocol.

A *device type* (one per kind: ``cpu``, ``cuda``, ``arm``...) is registered by a
plugin; a *device* is one instance of a kind, written ``kind[:index]``.
"""
from __future__ import annotations

import re
import threading
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np


class DeviceUnavailableError(RuntimeError):
    """A device kind is unknown, or known but not usable on this machine."""


class Device:
    """An interned (kind, index) pair: ``Device("cpu", 0) is Device("cpu", 0)``.

    Also answers MXNet's Context names (``device_type``, ``device_id``) so that
    ``mx.cpu()``/``mx.gpu(0)`` code keeps working.
    """

    __slots__ = ("kind", "index", "__weakref__")
    _interned: Dict[Tuple[str, int], "Device"] = {}
    _lock = threading.Lock()

    def __new__(cls, kind: str, index: int = 0):
        key = (kind, int(index))
        dev = cls._interned.get(key)
        if dev is None:
            alias = _KIND_ALIASES.get(kind)
            if alias is not None:  # Device("gpu", 0) is Device("cuda", 0)
                return cls(alias, index)
            with cls._lock:
                dev = cls._interned.get(key)
                if dev is None:
                    dev = object.__new__(cls)
                    object.__setattr__(dev, "kind", kind)
                    object.__setattr__(dev, "index", int(index))
                    cls._interned[key] = dev
        return dev

    def __setattr__(self, name, value):
        raise AttributeError("Device is immutable")

    def __reduce__(self):
        return (Device, (self.kind, self.index))

    @property
    def device_type(self) -> str:
        return "gpu" if self.kind == "cuda" else self.kind

    @property
    def device_id(self) -> int:
        return self.index

    def __repr__(self) -> str:
        return f"{self.kind}({self.index})"

    def __str__(self) -> str:
        return f"{self.kind}:{self.index}"

    def __hash__(self) -> int:
        return hash((self.kind, self.index))

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = parse_device(other)
            except ValueError:
                return False
        return self is other

    # ``with mx.gpu(0):`` (MXNet's ``with ctx:``): the thread's default device inside
    def __enter__(self) -> "Device":
        stack = getattr(_SCOPES, "stack", None)
        if stack is None:
            stack = _SCOPES.stack = []
        stack.append(self)
        return self

    def __exit__(self, *exc) -> bool:
        _SCOPES.stack.pop()
        return False


#: per thread, the devices of the enclosing ``with device:`` blocks (innermost last)
_SCOPES = threading.local()


def scoped_device() -> Device | None:
    """The device of the innermost ``with device:`` block of this thread, if any."""
    stack = getattr(_SCOPES, "stack", None)
    return stack[-1] if stack else None


_DEVICE_RE = re.compile(r"^\s*([a-z][a-z0-9_]*)\s*(?:[:(]\s*(\d+)\s*\)?)?\s*$")
#: MXNet's context names for kinds that have another name here: ``gpu`` is ``cuda``;
#: ``cpu_pinned`` and ``cpu_shared`` (MXNet's page-locked and shared-memory host
#: buffers) are host memory, which the ``cpu`` device already is.
_KIND_ALIASES = {"gpu": "cuda", "cpu_pinned": "cpu", "cpu_shared": "cpu"}


def parse_device(spec) -> Device:
    """Parse ``"cpu"``, ``"cuda:1"``, ``"gpu(0)"`` or a Device into a Device."""
    if isinstance(spec, Device):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"a device is a string like 'cpu' or 'cuda:0', got {spec!r}")
    m = _DEVICE_RE.match(spec)
    if not m:
        raise ValueError(f"cannot parse device {spec!r}: expected 'kind[:index]', e.g. 'cpu' or 'cuda:0'")
    kind = _KIND_ALIASES.get(m.group(1), m.group(1))
    return Device(kind, int(m.group(2) or 0))


class Stream:
    """An ordered queue of work on one device.  The base class is the no-op
    stream of synchronous devices: work is done when the call returns."""

    def __init__(self, device: Device):
        self.device = device

    def synchronize(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Event:
    """A marker in a stream.  No-op for synchronous devices."""

    def __init__(self, device: Device):
        self.device = device

    def record(self, stream: Stream | None = None) -> None:
        pass

    def synchronize(self) -> None:
        pass

    def query(self) -> bool:
        return True


class DeviceType:
    """What a plugin implements for one device kind.

    Subclasses set ``kind`` and ``xp`` (the array module kernels use) and
    override what differs from a synchronous host-memory device.
    ``availability()`` must be cheap and never raise.
    """

    kind: str = ""
    xp: Any = np
    #: True when the device's arrays are host numpy arrays (no copy to reach them).
    host_memory: bool = True
    #: dtype names this device can hold.
    dtypes: Tuple[str, ...] = ()
    description: str = ""
    #: device kinds whose kernels this kind may borrow, in order, when it has none of
    #: its own for an op (e.g. ``("cpu",)`` for a device on host numpy memory).  A
    #: policy file's ``[devices.KIND] fallback`` overrides it.
    fallback: Tuple[str, ...] = ()

    def availability(self) -> Tuple[bool, str]:
        """(available, reason).  Never raises."""
        return True, ""

    def is_available(self) -> bool:
        try:
            return bool(self.availability()[0])
        except Exception:
            return False

    def device_count(self) -> int:
        return 1

    def check_index(self, index: int) -> None:
        ok, why = self.availability()
        if not ok:
            raise DeviceUnavailableError(f"device {self.kind}:{index} is unavailable: {why}")
        n = self.device_count()
        if not 0 <= index < n:
            raise DeviceUnavailableError(
                f"device {self.kind}:{index} does not exist: this machine has {n} {self.kind} device(s)")

    # memory -----------------------------------------------------------------
    def allocate(self, index: int, shape: Tuple[int, ...], dtype) -> Any:
        return self.xp.empty(shape, dtype=dtype)

    def free(self, index: int, array: Any) -> None:
        """Release a buffer early; garbage collection frees it otherwise."""

    def adopt_output(self, array: Any) -> Any:
        """Called with every array a kernel returns on this device kind, before
        mxcore wraps it, and only when a device type overrides this method (the
        base class costs nothing on the dispatch path).  Kernels allocate their
        outputs through ``xp``, not ``allocate``; a device that accounts for its
        memory records the array here (``weakref.finalize`` tells it when the
        array dies), or returns a copy in memory it allocated itself."""
        return array

    def from_host(self, index: int, array: np.ndarray) -> Any:
        return np.array(array, copy=True)

    def to_host(self, index: int, array: Any) -> np.ndarray:
        return np.asarray(array)

    def memory_stats(self, index: int) -> Dict[str, int]:
        return {}

    def empty_cache(self, index: int) -> None:
        """Hand the memory a caching allocator holds but no array uses back to the
        system (MXNet's ``Context.empty_cache``); a no-op where nothing is cached."""

    # ordering ---------------------------------------------------------------
    def synchronize(self, index: int) -> None:
        pass

    def set_concurrency(self, kernels: int) -> None:
        """An engine may run up to ``kernels`` kernels of this device kind at once (its
        worker count); a device whose kernels use a thread pool sizes it to share the
        cores rather than start a thread per core in each.  Default: nothing to do."""

    def stream(self, index: int) -> Stream:
        return Stream(Device(self.kind, index))

    def event(self, index: int) -> Event:
        return Event(Device(self.kind, index))

    def capture(self, index: int, fn: Callable[[], None]) -> Optional[Callable[[], None]]:
        """Run ``fn`` once while recording the device work it launches, and return a
        function that replays that work on the same memory (a CUDA graph), or None
        when this device cannot capture (the default: ``fn`` is not run).  ``fn`` must
        write its results into memory that outlives it (the replays write there too).
        The recorded work need not have run (a CUDA stream capture only records): call
        the replay once for its results."""
        return None

    # randomness -------------------------------------------------------------
    # The default suits host-memory devices: one numpy Generator per index.
    def generator(self, index: int) -> Any:
        """The device's random generator, passed to random kernels."""
        gens = self.__dict__.setdefault("_generators", {})
        gen = gens.get(index)
        if gen is None:
            gen = gens[index] = np.random.default_rng()
        return gen

    def seed(self, index: int, seed: int) -> None:
        self.__dict__.setdefault("_generators", {})[index] = np.random.default_rng(seed)

    def host_seed(self, index: int) -> int:
        """A 31-bit seed drawn on the host from the device's generator stream, for
        kernels with counter-based sampling that take the seed as an attribute
        (dropout: the backward pass regenerates the forward's mask from it).
        Reproducible after ``seed``; never waits for the device.  Devices whose
        generator lives in device memory override it."""
        return int(self.generator(index).integers(0, 2**31 - 1))

    def properties(self, index: int) -> Dict[str, Any]:
        return {"kind": self.kind, "index": index, "description": self.description}
