"""``mxcore new-plugin NAME [--device KIND]``: a ready-to-install operator plugin.

The package holds one operator (``NAME_square_plus(data, shift=1.0) = data**2 +
shift``) with its shape/dtype rule, gradient rule and CPU kernel, the plugin module that
registers them through the ``mxcore.plugins`` entry point, tests (forward against numpy,
the gradient against finite differences, autograd and a Gluon block) and a README.  With
``--device KIND`` it also registers a device kind ``KIND`` on host memory that borrows the
CPU's kernels (``fallback``) and has its own kernel for the operator: the starting point of
a device plugin.  Nothing is overwritten: the target folder must not exist.
"""
from __future__ import annotations

import keyword
import os
import re
from string import Template
from typing import Dict, List, Optional

from mxcore.base import MXCoreError

__all__ = ["new_plugin"]

_PYPROJECT = Template('''\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "An mxcore operator plugin: $op"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["mxcore", "mxcore-hal", "numpy>=1.24.2"]

[project.optional-dependencies]
test = ["pytest>=7"]

# mxcore finds the plugin through this entry point (`mxcore plugins` lists it as "$name")
[project.entry-points."mxcore.plugins"]
$name = "$module.plugin"

[tool.setuptools]
packages = ["$module"]
''')

_README = Template('''\
# $dist

An mxcore operator plugin. It adds `$op(data, shift=1.0) = data**2 + shift`: use it as
`mx.nd.$op(x, shift=0.5)`; it records in autograd and runs in Gluon blocks.$device_note

```
pip install -e .[test]
python -m pytest -q tests                         # every device; or --mxcore-device KIND
mxcore kernels explain $op --device cpu --dtype float32 --shape 2,3
```

The tests use mxcore's conformance kit (`mxcore.testing`): each `Case` names a call, its
numpy reference, its inputs' shapes and domains and its dtypes; `ConformanceSuite` checks
forward values, dtypes and shapes, the op's shape rule, gradients and second derivatives
against finite differences. `mxcore conformance --device KIND` runs mxcore's own table the
same way, for a device plugin.

Add an operator: write its `Op` (attributes, shape/dtype rule, gradient rule in mxcore
ops) in `$module/ops.py`, its kernel(s) in `$module/kernels.py`, and list both; mxcore
checks each kernel's first call against the op's rule and names the kernel if it differs.
''')

_INIT = Template('''\
"""$dist: an mxcore operator plugin (entry point "$name")."""
from $module.ops import $op  # noqa: F401
''')

_OPS = Template('''\
"""The operators: an ``Op`` with an attribute schema, a shape/dtype rule and a gradient
rule written in mxcore ops (so it runs on every device and can be differentiated again),
and the user-facing function (the op's ``frontend``: ``mx.nd.$op`` returns it)."""
from __future__ import annotations

import hal
import mxcore as mx
from mxcore.base import MXCoreError
from mxcore.ndarray import NDArray
from mxcore.op import Op
from mxcore.ops.rules import same_as_first

SQUARE_PLUS = Op("$op", 1, attrs={"shift": 1.0}, doc="data**2 + shift, elementwise.")


@SQUARE_PLUS.def_infer
def _infer(shapes, dtypes, attrs):
    if not hal.is_float(dtypes[0]):
        raise MXCoreError(f"needs a floating-point input, got {dtypes[0]}")
    return same_as_first(shapes, dtypes, attrs)


@SQUARE_PLUS.def_grad
def _grad(ctx, g):
    return (g * ctx.inputs[0] * 2.0,)


def $op(data: NDArray, shift: float = 1.0) -> NDArray:
    """``data**2 + shift`` elementwise."""
    return mx.nd.invoke("$op", data, shift=float(shift))


SQUARE_PLUS.frontend = $op
OPS = [SQUARE_PLUS]
''')

_KERNELS = Template('''\
"""Kernels: plain functions ``fn(*arrays, **attrs)`` returning new arrays of the dtype
the op's rule gives, registered per (op, device kind, dtypes) with a priority."""
from __future__ import annotations

from typing import List

import numpy as np

import hal

FLOATS = frozenset({"float16", "bfloat16", "float32", "float64"})


def square_plus(x: np.ndarray, shift: float) -> np.ndarray:
    out = np.square(x)
    out += x.dtype.type(shift)  # the array's dtype: a Python float would promote bfloat16
    return out


def kernels() -> List[hal.Kernel]:
    return [hal.Kernel(op="$op", device=kind, fn=square_plus, dtypes=FLOATS, priority=0,
                       name="square_plus")
            for kind in $kinds]
''')

_DEVICE = Template('''\
"""The ``$kind`` device: arrays in host memory (numpy), CPU kernels borrowed for every
op this plugin has no kernel of its own for.  Replace the memory methods to drive real
hardware; ``hal.DeviceType`` documents each one."""
from __future__ import annotations

from typing import Any, Tuple

import numpy as np

import hal


class Device(hal.DeviceType):
    kind = "$kind"
    xp = np
    host_memory = True
    dtypes = hal.ALL_DTYPES
    description = "$kind: a device on host memory ($dist)"
    fallback = ("cpu",)

    def availability(self) -> Tuple[bool, str]:
        return True, ""

    def device_count(self) -> int:
        return 1

    def allocate(self, index: int, shape, dtype) -> np.ndarray:
        return np.empty(shape, dtype=dtype)

    def from_host(self, index: int, array: np.ndarray) -> np.ndarray:
        return np.array(array, copy=True, order="C")

    def to_host(self, index: int, array: Any) -> np.ndarray:
        return np.asarray(array)
''')

_PLUGIN = Template('''\
"""The module the ``mxcore.plugins`` entry point names: mxcore imports it on first use,
checks ``MXCORE_PLUGIN_API`` and calls its hooks."""
from __future__ import annotations

from typing import Callable

import hal
from mxcore.op import Op
from $module import kernels, ops
$device_import
MXCORE_PLUGIN_API = hal.PLUGIN_API_VERSION
$device_hook

@hal.hookimpl
def register_ops(register: Callable[[Op], None]) -> None:
    for op in ops.OPS:
        register(op)


@hal.hookimpl
def register_kernels(register: Callable[[hal.Kernel], None]) -> None:
    for kernel in kernels.kernels():
        register(kernel)
''')

_TESTS = Template('''\
"""$op: the conformance kit (mxcore.testing) checks its forward against numpy in each
dtype, its shape rule and its first and second derivatives against finite differences,
on every device (or those given with ``pytest --mxcore-device KIND``); then a Gluon
block and a clear error for integer input."""
import numpy as np
import pytest

import mxcore as mx
from mxcore.testing import Case, ConformanceSuite, In


class TestSquarePlus(ConformanceSuite):
    cases = [
        Case("$op", lambda x: mx.nd.$op(x, shift=0.5), lambda x: x * x + 0.5,
             (In((3, 4)),), ("float32", "float64")),
        Case("${op}_broadcast_row", lambda x: mx.nd.$op(x, shift=-2.0),
             lambda x: x * x - 2.0, (In((1, 5)),), ("float64",)),
    ]


def test_in_a_hybridized_gluon_block():
    class Net(mx.gluon.HybridBlock):
        def hybrid_forward(self, F, x):
            return F.$op(x, shift=1.0)

    net = Net()
    x = mx.nd.array([[1.0, -2.0]])
    eager = net(x).asnumpy()
    net.hybridize()
    np.testing.assert_array_equal(net(x).asnumpy(), eager)
    np.testing.assert_array_equal(eager, [[2.0, 5.0]])


def test_integer_input_is_refused_with_the_operator_named():
    with pytest.raises(mx.base.MXCoreError, match="$op.*floating-point"):
        mx.nd.$op(mx.nd.array([1, 2], dtype="int32"))
''')


def _names(name: str) -> Dict[str, str]:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or keyword.iskeyword(name):
        raise MXCoreError(f"new-plugin: NAME must be a lower-case Python identifier "
                          f"(letters, digits, underscores), got {name!r}")
    return {"name": name, "module": f"mxcore_{name}", "dist": "mxcore-" + name.replace("_", "-"),
            "op": f"{name}_square_plus"}


def new_plugin(name: str, target: Optional[str] = None, device: Optional[str] = None) -> str:
    """Write the plugin package ``mxcore-NAME`` into ``target`` (default ``./mxcore-NAME``);
    returns the folder."""
    names = _names(name)
    if device is not None and not re.fullmatch(r"[a-z][a-z0-9_]*", device):
        raise MXCoreError(f"new-plugin: --device must be a lower-case identifier, got "
                          f"{device!r}")
    folder = os.path.abspath(target or names["dist"])
    if os.path.exists(folder):
        raise MXCoreError(f"new-plugin: {folder} already exists (nothing was written)")
    kinds: List[str] = ["cpu"] + ([device] if device else [])
    fields = {**names, "kind": device or "", "kinds": repr(kinds), "devices": repr(kinds),
              "device_note": (f"\n\nIt also adds the device kind `{device}` "
                              f"(`mx.device('{device}')`), on host memory, borrowing CPU "
                              "kernels for every other op." if device else ""),
              "device_import": (f"from {names['module']}.device import Device\n"
                                if device else ""),
              "device_hook": ("\n\n@hal.hookimpl\ndef register_devices(register: "
                              "Callable[[hal.DeviceType], None]) -> None:\n"
                              "    register(Device())\n" if device else "")}
    files = {"pyproject.toml": _PYPROJECT, "README.md": _README,
             f"{names['module']}/__init__.py": _INIT, f"{names['module']}/ops.py": _OPS,
             f"{names['module']}/kernels.py": _KERNELS,
             f"{names['module']}/plugin.py": _PLUGIN, "tests/test_ops.py": _TESTS}
    if device:
        files[f"{names['module']}/device.py"] = _DEVICE
    for path, template in files.items():
        full = os.path.join(folder, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(template.substitute(fields))
    return folder
