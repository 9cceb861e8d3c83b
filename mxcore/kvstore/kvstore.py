"""``KVStore``: the single-process key-value store (MXNet's ``local`` and ``device``).

Each key holds one array.  ``push`` sums the values given for a key (one per
device) on the key's home device and either stores the sum or, once an optimizer
or updater is set, calls ``updater(key, summed, stored)``, which updates the
stored value in place (MXNet's update-on-kvstore).  ``pull`` copies the stored
value into arrays on any device.  Keys are ints or strings, never both in one
store.  Lists of keys are handled in one call; with an optimizer (``set_optimizer``)
their updates go to the optimizer as one list, so optimizers with a multi-weight
op update them in one kernel.
"""
from __future__ import annotations

import numbers
from typing import Any, Dict, List, Optional, Tuple

from mxcore.base import MXCoreError
from mxcore.kvstore.base import KVStoreBase, KVStoreNotProvidedError
from mxcore.ndarray.ndarray import NDArray

__all__ = ["KVStore", "KVSTORE_TYPES"]

#: type -> where a key's value lives: 'cpu' (MXNet's local: reduced and updated on
#: the CPU) or 'device' (on the device of the value the key was initialised with)
KVSTORE_TYPES = {
    "local": "cpu", "local_update_cpu": "cpu", "local_allreduce_cpu": "cpu",
    "device": "device", "local_allreduce_device": "device", "nccl": "device",
}

#: gradient compression types -> their parameters and defaults
_COMPRESSION = {"2bit": {"threshold": 0.5}}


def _compression_threshold(compression_params: dict) -> float:
    """The 2-bit threshold of MXNet's ``compression_params``, checked."""
    kind = compression_params.get("type")
    if kind not in _COMPRESSION:
        raise MXCoreError(f"unknown gradient compression type {kind!r}; supported: "
                          f"{', '.join(_COMPRESSION)}")
    extra = set(compression_params) - {"type"} - set(_COMPRESSION[kind])
    if extra:
        raise MXCoreError(f"gradient compression {kind!r} takes "
                          f"{sorted(_COMPRESSION[kind])}, got also {sorted(extra)}")
    threshold = float(compression_params.get("threshold", _COMPRESSION[kind]["threshold"]))
    if not threshold > 0:
        raise MXCoreError(f"gradient compression threshold must be greater than 0, got "
                          f"{threshold}")
    return threshold


class KVStore(KVStoreBase):
    """A single-process store (``mx.kv.create('local' | 'device' | 'nccl')``)."""

    #: type name -> where values live ('cpu' or 'device')
    TYPES = KVSTORE_TYPES

    def __init__(self, name: str = "local"):
        if name not in self.TYPES:
            raise MXCoreError(f"unknown kvstore type {name!r}; known types: "
                              f"{', '.join(sorted(self.TYPES))}")
        self._type = name
        self._home_is_cpu = self.TYPES[name] == "cpu"
        self._store: Dict = {}
        self._key_type: Optional[type] = None
        self._updater = None
        self._threshold: Optional[float] = None        # 2-bit compression
        self._residuals: Dict[Tuple, NDArray] = {}

    def __repr__(self) -> str:
        return f"KVStore(type={self._type!r}, keys={len(self._store)})"

    # properties -----------------------------------------------------------------------
    @property
    def type(self) -> str:
        return self._type

    @property
    def rank(self) -> int:
        return 0

    @property
    def num_workers(self) -> int:
        return 1

    def is_capable(self, capability: str) -> bool:
        if capability.lower() == KVStoreBase.OPTIMIZER:
            return True
        raise ValueError(f"Unknown capability: {capability}")

    # keys and values ------------------------------------------------------------------
    def _key(self, op: str, key, new: bool = False):
        """``key`` as an int or str, checked against the store's key type (set by
        the first ``init``/``broadcast``)."""
        if isinstance(key, str):
            kind = str
        elif isinstance(key, numbers.Integral):
            key, kind = int(key), int
        else:
            raise MXCoreError(f"KVStore.{op}: keys are ints or strings, got "
                              f"{type(key).__name__} {key!r}")
        if self._key_type is None and new:
            self._key_type = kind
        if self._key_type is not None and kind is not self._key_type:
            raise MXCoreError(f"KVStore.{op}: key {key!r} is a {kind.__name__} but this "
                              f"store's keys are {self._key_type.__name__}s (mixed key types "
                              "are not allowed)")
        return key

    def _pairs(self, op: str, keys, values, new: bool = False) -> List[Tuple]:
        """[(key, [NDArray, ...])] for one key or a list of keys."""
        if isinstance(keys, (list, tuple)):
            if not isinstance(values, (list, tuple)) or len(values) != len(keys):
                got = len(values) if isinstance(values, (list, tuple)) else type(values).__name__
                raise MXCoreError(f"KVStore.{op}: {len(keys)} keys need as many values "
                                  f"(an NDArray or a list of NDArrays each), got {got}")
            return [(self._key(op, k, new), _arrays(op, k, v)) for k, v in zip(keys, values)]
        return [(self._key(op, keys, new), _arrays(op, keys, values))]

    def _stored(self, op: str, key) -> NDArray:
        stored = self._store.get(key)
        if stored is None:
            raise MXCoreError(f"KVStore.{op}: key {key!r} has not been initialized (call "
                              "init or broadcast with it first)")
        return stored

    def _home(self, value: NDArray):
        if self._home_is_cpu:
            from mxcore.device import cpu
            return cpu()
        return value.context

    def _check_shapes(self, op: str, key, stored: NDArray, arrays) -> None:
        for a in arrays:
            if a.shape != stored.shape:
                raise MXCoreError(f"KVStore.{op}: key {key!r} holds shape {stored.shape} "
                                  f"{stored.dtype.name} on {stored.context}; got shape "
                                  f"{a.shape} {a.dtype.name} on {a.context}")

    # init / push / pull ---------------------------------------------------------------
    def init(self, key, value) -> None:
        """Store a copy of ``value`` under ``key`` (a key, or a list of keys with one
        value each).  A key is initialised once."""
        for k, arrays in self._pairs("init", key, value, new=True):
            if k in self._store:
                raise MXCoreError(f"KVStore.init: duplicate init of key {k!r} (init and "
                                  "broadcast set a key once)")
            self._set(k, arrays, "init")

    def _set(self, key, arrays, op: str) -> None:
        if len(arrays) != 1:
            raise MXCoreError(f"KVStore.{op}: key {key!r} takes one value, got {len(arrays)}")
        value = arrays[0]
        home = self._home(value)
        self._store[key] = value.copy() if value.context is home else value.copyto(home)

    def push(self, key, value, priority: int = 0) -> None:
        """Sum the value(s) of each key into the store (``value``: an NDArray or
        one per device; a list of them for a list of keys).  With an updater the
        sum updates the stored value, else it replaces it."""
        pairs = self._pairs("push", key, value)
        keys, sums, stored = [], [], []
        for k, arrays in pairs:
            target = self._stored("push", k)
            self._check_shapes("push", k, target, arrays)
            keys.append(k)
            sums.append(self._reduce(k, arrays, target))
            stored.append(target)
        self._apply(keys, self._across_processes(keys, sums), stored)

    def _across_processes(self, keys: List[Any], sums: List[NDArray]) -> List[NDArray]:
        """The device sums summed over the job's processes: one process, themselves."""
        return sums

    def _apply(self, keys, sums, stored) -> None:
        updater = self._updater
        if updater is None:
            for s, t in zip(sums, stored):
                t[:] = s
            return
        from mxcore.optimizer import Updater
        if isinstance(updater, Updater) and len(keys) > 1 and len(set(keys)) == len(keys):
            updater(keys, sums, stored)  # one call: multi-weight optimizer ops
            return
        for k, s, t in zip(keys, sums, stored):
            updater(k, s, t)

    def _reduce(self, key, arrays, stored: NDArray) -> NDArray:
        """The sum of ``arrays`` on ``stored``'s device in its dtype (2-bit
        quantised first when compression is on)."""
        if self._threshold is not None:
            arrays = [self._quantize(key, i, a) for i, a in enumerate(arrays)]
        home, dtype = stored.context, stored.dtype
        parts = [a if a.context is home else a.as_in_context(home) for a in arrays]
        parts = [p if p.dtype == dtype else p.astype(dtype) for p in parts]
        if len(parts) == 1:
            return parts[0]
        from mxcore.ops.elemwise import add_n
        return add_n(*parts)

    def pull(self, key, out=None, priority: int = 0, ignore_sparse: bool = True) -> None:
        """Copy the stored value of each key into ``out`` (an NDArray or a list of
        them per key, on any device; cast to their dtype)."""
        if out is None:
            raise MXCoreError("KVStore.pull: out= is required (the arrays to copy into)")
        for k, outs in self._pairs("pull", key, out):
            stored = self._stored("pull", k)
            self._check_shapes("pull", k, stored, outs)
            for o in outs:
                _assign(o, stored)

    def pushpull(self, key, value, out=None, priority: int = 0) -> None:
        """``push(key, value)`` then ``pull(key, out)``; without ``out`` the result
        is written back into ``value``."""
        self.push(key, value, priority)
        self.pull(key, out if out is not None else value, priority)

    def broadcast(self, key, value, out, priority: int = 0) -> None:
        """Store ``value`` under ``key`` and copy it into ``out``.  Unlike MXNet's
        native store, broadcasting a key again replaces its value (the optimizer
        state of the key is kept)."""
        for k, arrays in self._pairs("broadcast", key, value, new=True):
            self._set(k, arrays, "broadcast")
        self.pull(key, out, priority)

    def row_sparse_pull(self, key, out=None, priority: int = 0, row_ids=None) -> None:
        raise KVStoreNotProvidedError(
            "KVStore.row_sparse_pull needs row_sparse storage, which mxcore does not "
            "provide (arrays are dense); use pull")

    # gradient compression ---------------------------------------------------------------
    def set_gradient_compression(self, compression_params: dict) -> None:
        """Quantise pushed values with ``{'type': '2bit', 'threshold': t}`` (default
        0.5), as MXNet's ``device`` stores do: each pushed array adds into a residual
        kept per key and position, the sum sends ``+t``/``-t``/``0`` per element
        (where the residual reached ``+-t``) and the residual keeps the rest.
        Stores of the ``local`` family do not compress (MXNet raises there too)."""
        if not isinstance(compression_params, dict):
            raise TypeError("set_gradient_compression takes a dict such as "
                            "{'type': '2bit', 'threshold': 0.5}")
        if self.TYPES[self._type] != "device":
            raise KVStoreNotProvidedError(
                f"gradient compression is not supported by kvstore type {self._type!r}; "
                "use 'device'")
        self._threshold = _compression_threshold(compression_params)
        self._residuals.clear()

    def _quantize(self, key, position: int, value: NDArray, threshold=None) -> NDArray:
        """``value`` added to the key's residual, sent as ``+t``/``-t``/``0`` per element
        (where the residual reached ``+-t``); the residual keeps the rest."""
        t = self._threshold if threshold is None else threshold
        res = self._residuals.get((key, position))
        if res is None or res.shape != value.shape or res.context is not value.context:
            from mxcore.ops.creation import zeros_like
            res = self._residuals[(key, position)] = zeros_like(value)
        res += value
        sent = (res >= t) * t - (res <= -t) * t
        res -= sent
        return sent

    # optimizer --------------------------------------------------------------------------
    def set_optimizer(self, optimizer) -> None:
        """Update stored values with ``optimizer`` on every push (``get_updater``)."""
        from mxcore import optimizer as opt
        if not isinstance(optimizer, opt.Optimizer):
            raise TypeError(f"KVStore.set_optimizer takes an Optimizer, got "
                            f"{type(optimizer).__name__}")
        self._set_updater(opt.get_updater(optimizer))

    def _set_updater(self, updater) -> None:
        """Call ``updater(key, pushed_sum, stored)`` on push instead of storing the sum
        (``key`` is the int or str key)."""
        if not callable(updater):
            raise TypeError(f"the updater must be callable, got {type(updater).__name__}")
        self._updater = updater

    def _barrier(self) -> None:
        """Wait for all workers: one process, nothing to wait for."""

    def _checked_updater(self, op: str):
        from mxcore.optimizer import Updater
        if not isinstance(self._updater, Updater):
            raise MXCoreError(f"KVStore.{op}: this store has no optimizer (set_optimizer) "
                              "whose states could be saved")
        return self._updater

    def save_optimizer_states(self, fname: str, dump_optimizer: bool = False) -> None:
        """Write the optimizer states (safetensors + JSON metadata, atomically);
        ``dump_optimizer`` also saves the optimizer's settings and counters."""
        from mxcore.kvstore import states
        states.save(fname, self._checked_updater("save_optimizer_states"), dump_optimizer)

    def load_optimizer_states(self, fname: str) -> None:
        """Read states written by ``save_optimizer_states`` or ``Trainer.save_states``
        (nothing in the file is executed)."""
        from mxcore.kvstore import states
        states.load(fname, [self._checked_updater("load_optimizer_states")])


def _arrays(op: str, key, value) -> List[NDArray]:
    arrays = list(value) if isinstance(value, (list, tuple)) else [value]
    if not arrays or any(not isinstance(a, NDArray) for a in arrays):
        raise MXCoreError(f"KVStore.{op}: the value of key {key!r} must be an NDArray or a "
                          f"non-empty list of NDArrays, got {_describe(value)}")
    return arrays


def _describe(value) -> str:
    if isinstance(value, (list, tuple)):
        return f"[{', '.join(type(v).__name__ for v in value)}]"
    return type(value).__name__


def _assign(dst: NDArray, src: NDArray) -> None:
    dst[:] = src if src.context is dst.context else src.as_in_context(dst.context)
