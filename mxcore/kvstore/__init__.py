"""``mx.kv`` / ``mx.kvstore``: key-value stores that sum gradients across devices and
optionally run the optimizer (MXNet's kvstore).

``mx.kv.create('local' | 'device' | 'nccl')`` gives a single-process ``KVStore``;
``KVStoreBase.register`` adds custom store classes (``create`` finds them by
lower-cased class name).  Multi-process stores (``dist_sync``, ``horovod``...) are
not provided yet.
"""
from mxcore.kvstore import base, kvstore
from mxcore.kvstore.base import KVStoreBase, KVStoreNotProvidedError, TestStore, create
from mxcore.kvstore.kvstore import KVStore

__all__ = ["KVStore", "KVStoreBase", "KVStoreNotProvidedError", "TestStore", "create",
           "base", "kvstore"]
