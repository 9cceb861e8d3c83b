"""Attributes attached to every symbol made in a scope (MXNet's ``mx.attribute``).

``with mx.AttrScope(ctx_group='dev1'):`` gives each symbol created inside the block
the attribute ``ctx_group = 'dev1'`` (read back as ``attr('ctx_group')`` or
``attr('__ctx_group__')``, as in MXNet); scopes nest, inner values winning.
"""
from __future__ import annotations

import threading
from typing import Dict, Optional


class AttrScope:
    _local = threading.local()

    def __init__(self, **kwargs: str):
        for value in kwargs.values():
            if not isinstance(value, str):
                raise ValueError("attributes must be strings")
        self._attr = dict(kwargs)
        self._old: Optional[AttrScope] = None

    def get(self, attr: Optional[Dict[str, str]]) -> Dict[str, str]:
        """The scope's attributes updated with ``attr``."""
        if not self._attr:
            return dict(attr or {})
        out = dict(self._attr)
        out.update(attr or {})
        return out

    def __enter__(self):
        self._old = AttrScope.current
        merged = AttrScope()
        merged._attr = {**self._old._attr, **self._attr}
        AttrScope._local.current = merged
        return self

    def __exit__(self, *exc):
        AttrScope._local.current = self._old
        return False

    class _Current:
        def __get__(self, obj, owner) -> "AttrScope":
            cur = getattr(AttrScope._local, "current", None)
            if cur is None:
                cur = AttrScope._local.current = AttrScope()
            return cur

    current = _Current()
