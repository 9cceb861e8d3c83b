"""The plugin module named by the ``mxcore.plugins`` entry point: registers every
family's ops, then their kernels."""
from __future__ import annotations

import importlib
from typing import Callable, List

import hal
from mxcore.op import Op

MXCORE_PLUGIN_API = hal.PLUGIN_API_VERSION

#: the op families, each a module with ``OPS`` (a list of Op) and ``kernels()`` (a list
#: of hal.Kernel)
FAMILIES = ("normalization", "activation", "rotary", "attention", "detection")


def _families() -> List:
    return [importlib.import_module(f"mxcore_contrib_ops.{name}") for name in FAMILIES]


@hal.hookimpl
def register_ops(register: Callable[[Op], None]) -> None:
    for family in _families():
        for op in family.OPS:
            register(op)


@hal.hookimpl
def register_kernels(register: Callable[[hal.Kernel], None]) -> None:
    for family in _families():
        for kernel in family.kernels():
            register(kernel)
