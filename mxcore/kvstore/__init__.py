"""``mx.kv`` / ``mx.kvstore``: key-value stores that sum gradients across devices and
optionally run the optimizer (MXNet's kvstore).

``mx.kv.create('local' | 'device' | 'nccl')`` gives a single-process ``KVStore``,
``mx.kv.create('dist_sync' | 'dist_device_sync')`` a ``DistKVStore`` shared by the ranks
of an MPI job (``mxcore launch -n N script.py``), ``mx.kv.create('dist_async')`` an
``AsyncDistKVStore`` whose rank 0 serves the values; ``KVStoreBase.register`` adds custom
store classes (``create`` finds them by lower-cased class name).
"""
from mxcore.kvstore import base, kvstore
from mxcore.kvstore.base import KVStoreBase, KVStoreNotProvidedError, TestStore, create
from mxcore.kvstore.kvstore import KVStore

__all__ = ["KVStore", "KVStoreBase", "KVStoreNotProvidedError", "TestStore", "create",
           "base", "kvstore"]
