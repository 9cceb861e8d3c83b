"""The Triton kernel table: which op each kernel implements, for which dtypes,
under which guard.  Declaring the table imports no Triton: each kernel is a
lazy proxy that imports its module (and compiles, or interprets) on first call,
so loading the plugin stays cheap for processes that never touch the device.

Kernels register at priority 10 (``PRIORITY``); the array-module fallbacks at
-10, so a Triton kernel wins whenever its guard accepts the call.
"""
from __future__ import annotations

import importlib
from typing import Callable, List

import hal
from mxcore_cuda.triton._runtime import MAX_COLS_SOFTMAX, size_ok

PRIORITY = 10
FLOAT = frozenset(hal.FLOAT_DTYPES) - {"bfloat16"}
INT = frozenset(hal.INT_DTYPES)

UNARY_OPS = {name: FLOAT for name in ("exp", "log", "sqrt", "tanh", "sigmoid", "sin", "cos",
                                      "reciprocal", "floor", "ceil", "abs", "square")}
UNARY_OPS.update({name: FLOAT | INT for name in ("negative", "relu")})
BINARY_OPS = {name: FLOAT | INT for name in ("add", "subtract", "multiply", "maximum",
                                             "minimum")}
BINARY_OPS["divide"] = FLOAT


# guards ----------------------------------------------------------------------------------
def same_shape(shapes, dtypes, attrs) -> bool:
    """Elementwise kernels: inputs of one shape (broadcasting goes to the fallback)."""
    return all(s == shapes[0] for s in shapes[1:]) and size_ok(shapes[0])


def one_dtype(dtypes) -> bool:
    return dtypes is None or all(d == dtypes[0] for d in dtypes[1:])


def last_axis(shapes, dtypes, attrs) -> bool:
    """softmax/log_softmax: over the last axis, rows that fit one block, and a
    temperature that float32 represents exactly (Triton passes floats as fp32)."""
    shape = shapes[0]
    t = attrs.get("temperature")
    if t is not None and t != 1.0:
        import numpy as np
        if t == 0 or float(np.float32(1.0 / t)) != 1.0 / t:
            return False
    return (len(shape) >= 1 and attrs.get("axis", -1) in (-1, len(shape) - 1)
            and 0 < shape[-1] <= MAX_COLS_SOFTMAX and size_ok(shape))


def rows_2d(shapes, dtypes, attrs) -> bool:
    """softmax_ce_loss(_grad): a (batch, classes) input, classes on axis 1."""
    x = shapes[0]
    return (len(x) == 2 and attrs.get("axis", -1) in (-1, 1) and shapes[1] == x[:1]
            and 0 < x[1] <= MAX_COLS_SOFTMAX and size_ok(x)
            and (len(shapes) < 3 or shapes[2] == x[:1]))


def matmul_2d(shapes, dtypes, attrs) -> bool:
    """2-D @ 2-D, every dimension a multiple of 16, no transposes, one dtype."""
    if attrs.get("transpose_a") or attrs.get("transpose_b") or len(shapes) != 2:
        return False
    a, b = shapes
    if len(a) != 2 or len(b) != 2 or a[1] != b[0] or not one_dtype(dtypes):
        return False
    return all(d > 0 and d % 16 == 0 for d in (a[0], a[1], b[1])) and \
        size_ok((a[0] * a[1] + b[0] * b[1] + a[0] * b[1],))


def updates(shapes, dtypes, attrs) -> bool:
    return all(s == shapes[0] for s in shapes[1:]) and one_dtype(dtypes) and \
        size_ok(shapes[0])


def multi_updates(shapes, dtypes, attrs) -> bool:
    return one_dtype(dtypes) and all(size_ok(s) for s in shapes)


# the table -------------------------------------------------------------------------------
def _lazy(module: str, factory: str, *args) -> Callable:
    """A kernel function that imports ``mxcore_cuda.triton.<module>`` on first call."""
    impl = None

    def kernel(*arrays, **attrs):
        nonlocal impl
        if impl is None:
            mod = importlib.import_module(f"mxcore_cuda.triton.{module}")
            impl = getattr(mod, factory)(*args) if args else getattr(mod, factory)
        return impl(*arrays, **attrs)
    kernel.__qualname__ = f"triton.{module}.{args[0] if args else factory}"
    return kernel


def specs():
    """(op, module, factory, factory args, dtypes, guard) for every Triton kernel."""
    out = []
    for name, dts in UNARY_OPS.items():
        out.append((name, "elementwise", "unary", (name,), dts, same_shape))
    for name, dts in BINARY_OPS.items():
        out.append((name, "elementwise", "binary", (name,), dts, same_shape))
    for name in ("softmax", "log_softmax"):
        out.append((name, "softmax", name, (), FLOAT, last_axis))
    for name in ("softmax_ce_loss", "softmax_ce_loss_grad"):
        out.append((name, "softmax", name, (), FLOAT, rows_2d))
    for name in ("matmul", "dot"):
        out.append((name, "matmul", name, (), frozenset({"float16", "float32"}), matmul_2d))
    for name in ("sgd_update", "sgd_mom_update", "adam_update"):
        out.append((name, "optimizer", name, (), FLOAT, updates))
    for name in ("multi_sgd_update", "multi_sgd_mom_update"):
        out.append((name, "optimizer", name, (), FLOAT, multi_updates))
    return out


def kernels(device: str = "cuda") -> List[hal.Kernel]:
    out = []
    for op, module, factory, args, dtypes, guard in specs():
        out.append(hal.Kernel(op=op, device=device, fn=_lazy(module, factory, *args),
                              dtypes=dtypes, priority=PRIORITY, applies=guard,
                              name=f"triton.{module}.{op}",
                              doc=(guard.__doc__ or "").strip()))
    return out
