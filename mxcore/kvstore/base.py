"""The key-value store interface (MXNet's ``mxnet.kvstore.base``): ``KVStoreBase``,
the registry of store classes, ``TestStore`` and ``create``.

A store class registered with ``KVStoreBase.register`` is created by its lower-cased
class name (``mx.kv.create('teststore')``); the built-in single-process types
(``local``, ``device``, ``nccl`` and MXNet's ``local_*`` variants) are
``mxcore.kvstore.KVStore``; ``dist_sync`` and ``dist_device_sync`` are
``mxcore.kvstore.dist.DistKVStore`` (MPI allreduce); ``dist_async`` is
``mxcore.kvstore.dist_async.AsyncDistKVStore`` (MPI messages to a server thread on rank
0).  ``horovod`` and ``byteps`` are not provided: asking for one raises
``KVStoreNotProvidedError``.
"""
from __future__ import annotations

import warnings
from typing import Dict

from mxcore.base import MXCoreError

__all__ = ["KVStoreBase", "TestStore", "create", "KVStoreNotProvidedError"]


class KVStoreNotProvidedError(MXCoreError, NotImplementedError):
    """A kvstore type or feature that mxcore does not provide (yet)."""


class KVStoreBase:
    """An abstract key-value store for data-parallel training.

    Subclasses implement ``broadcast``, ``pushpull``, ``set_optimizer``,
    ``is_capable``, ``save_optimizer_states``/``load_optimizer_states`` and the
    ``type``/``rank``/``num_workers`` properties; ``gluon.Trainer`` uses nothing
    else of a custom store.
    """

    #: capability name for ``is_capable``: the store can run the optimizer itself
    OPTIMIZER = "optimizer"

    kv_registry: Dict[str, type] = {}

    def broadcast(self, key, value, out, priority: int = 0) -> None:
        """Store ``value`` under ``key`` and copy it into ``out`` (an NDArray or a list)."""
        raise NotImplementedError()

    def pushpull(self, key, value, out=None, priority: int = 0) -> None:
        """Sum ``value`` (an NDArray or one per device) into the store, then copy the
        result into ``out`` (default: back into ``value``)."""
        raise NotImplementedError()

    def set_optimizer(self, optimizer) -> None:
        """Let the store update its values with ``optimizer`` on every push."""
        raise NotImplementedError()

    def is_capable(self, capability: str) -> bool:
        """Whether the store supports ``capability`` (``KVStoreBase.OPTIMIZER``)."""
        raise NotImplementedError()

    def save_optimizer_states(self, fname: str, dump_optimizer: bool = False) -> None:
        """Write the optimizer states (and, with ``dump_optimizer``, the optimizer)."""
        raise NotImplementedError()

    def load_optimizer_states(self, fname: str) -> None:
        """Read states written by ``save_optimizer_states``."""
        raise NotImplementedError()

    @property
    def type(self) -> str:
        """The store's type name."""
        raise NotImplementedError()

    @property
    def rank(self) -> int:
        """This worker's rank, in ``[0, num_workers)``."""
        raise NotImplementedError()

    @property
    def num_workers(self) -> int:
        """The number of workers."""
        raise NotImplementedError()

    @staticmethod
    def register(klass: type) -> type:
        """Register a store class under its lower-cased name for ``create``
        (usable as a class decorator)."""
        if not isinstance(klass, type):
            raise TypeError(f"KVStoreBase.register takes a class, got {klass!r}")
        name = klass.__name__.lower()
        old = KVStoreBase.kv_registry.get(name)
        if old is not None and old is not klass:
            warnings.warn(f"WARNING: New kvstore {klass.__module__}.{klass.__name__} is "
                          f"overriding existing kvstore {old.__module__}.{old.__name__}",
                          UserWarning, stacklevel=2)
        KVStoreBase.kv_registry[name] = klass
        return klass


def _as_list(x) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


@KVStoreBase.register
class TestStore(KVStoreBase):
    """A store for testing custom-store support: ``pushpull`` sums the values on
    the first value's device, ``broadcast`` copies; it cannot run an optimizer."""

    __test__ = False  # not a pytest test class

    def broadcast(self, key, value, out, priority: int = 0) -> None:
        for o in _as_list(out):
            o[:] = value if value.context is o.context else value.as_in_context(o.context)

    def pushpull(self, key, value, out=None, priority: int = 0) -> None:
        values = _as_list(value)
        home = values[0].context
        total = values[0].copy() if len(values) == 1 else None
        if total is None:
            from mxcore.ops.elemwise import add_n
            total = add_n(*[v.as_in_context(home) for v in values])
        for o in _as_list(out) if out is not None else values:
            o[:] = total if o.context is home else total.as_in_context(o.context)

    @staticmethod
    def is_capable(capability: str) -> bool:
        if capability.lower() == KVStoreBase.OPTIMIZER:
            return False
        raise ValueError(f"Unknown capability: {capability}")

    @property
    def type(self) -> str:
        return "teststore"

    @property
    def rank(self) -> int:
        return 0

    @property
    def num_workers(self) -> int:
        return 1

    def set_optimizer(self, optimizer) -> None:
        raise NotImplementedError("TestStore cannot run an optimizer")

    def save_optimizer_states(self, fname: str, dump_optimizer: bool = False) -> None:
        raise NotImplementedError("TestStore keeps no optimizer states")

    def load_optimizer_states(self, fname: str) -> None:
        raise NotImplementedError("TestStore keeps no optimizer states")


#: substrings of multi-process store types, which mxcore does not provide yet
_MULTI_PROCESS = ("dist", "horovod", "byteps", "p3")


def create(name: str = "local") -> KVStoreBase:
    """A new store of type ``name``.

    Single process: ``'local'`` (values summed and kept on the CPU, where the
    optimizer runs, as MXNet's ``local``), ``'device'`` and ``'nccl'`` (kept on
    the device of the value a key was initialised with; ``nccl`` is ``device``
    here), and MXNet's ``local_update_cpu``, ``local_allreduce_cpu`` and
    ``local_allreduce_device``.  Several processes (an MPI job, ``mxcore launch``):
    ``'dist_sync'`` and ``'dist_device_sync'`` (``DistKVStore``), ``'dist_async'`` and
    ``'dist_device_async'`` (``AsyncDistKVStore``: rank 0 serves the values and applies
    each push as it arrives).  A class registered with ``KVStoreBase.register`` is created
    by its lower-cased name.  ``horovod`` and ``byteps`` are not provided.
    """
    if not isinstance(name, str):
        raise TypeError("name must be a string")
    name = name.lower()
    if name in KVStoreBase.kv_registry:
        return KVStoreBase.kv_registry[name]()
    from mxcore.kvstore.kvstore import KVSTORE_TYPES, KVStore
    if name in KVSTORE_TYPES:
        return KVStore(name)
    from mxcore.kvstore.dist import DIST_TYPES, DistKVStore
    if name in DIST_TYPES:
        return DistKVStore(name)
    from mxcore.kvstore.dist_async import ASYNC_TYPES, AsyncDistKVStore
    if name in ASYNC_TYPES:
        return AsyncDistKVStore(name)
    if any(tag in name for tag in _MULTI_PROCESS):
        raise KVStoreNotProvidedError(
            f"kvstore type {name!r} is not provided; mxcore's types: "
            f"{', '.join(sorted(set(KVSTORE_TYPES) | set(DIST_TYPES) | set(ASYNC_TYPES)))}")
    known = sorted(set(KVSTORE_TYPES) | set(DIST_TYPES) | set(ASYNC_TYPES)
                   | set(KVStoreBase.kv_registry))
    raise MXCoreError(f"unknown kvstore type {name!r}; known types: {', '.join(known)}")
