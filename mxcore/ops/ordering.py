"""(to be written)"""
from __future__ import annotations

__all__: list = []
OPS: list = []
