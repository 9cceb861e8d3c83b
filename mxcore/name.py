"""Automatic names for symbols (MXNet's ``mx.name``): ``fullyconnected0``, ``fc_1``...

``NameManager.current`` is per thread; ``with mx.name.Prefix("net_"):`` prefixes every
name given inside the block.
"""
from __future__ import annotations

import threading
from typing import Dict, Optional


class NameManager:
    """Gives each unnamed symbol ``<hint><n>`` with a counter per hint."""

    _local = threading.local()

    def __init__(self):
        self._counter: Dict[str, int] = {}
        self._old: Optional[NameManager] = None

    def get(self, name: Optional[str], hint: str) -> str:
        if name:
            return name
        n = self._counter.get(hint, 0)
        self._counter[hint] = n + 1
        return f"{hint}{n}"

    def __enter__(self):
        self._old = NameManager.current
        NameManager._local.current = self
        return self

    def __exit__(self, *exc):
        NameManager._local.current = self._old
        return False

    class _Current:
        def __get__(self, obj, owner) -> "NameManager":
            cur = getattr(NameManager._local, "current", None)
            if cur is None:
                cur = NameManager._local.current = NameManager()
            return cur

    current = _Current()


class Prefix(NameManager):
    """Names get ``prefix`` in front: ``with Prefix('net_'):`` gives ``net_fc0``."""

    def __init__(self, prefix: str):
        super().__init__()
        self._prefix = prefix

    def get(self, name: Optional[str], hint: str) -> str:
        return self._prefix + super().get(name, hint)
