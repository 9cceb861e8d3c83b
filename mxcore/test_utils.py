"""The parts of MXNet's ``mx.test_utils`` that user code reaches for: picking a
device (``list_gpus``, ``default_context``, ``set_default_context``) and comparing
results with per-dtype tolerances (``almost_equal``, ``assert_almost_equal``,
``same``)."""
from __future__ import annotations

import contextlib
import numbers
import os
from typing import Any, Dict, Iterator, Optional, Tuple

import numpy as np

from mxcore.device import Device, default_device, num_gpus, set_default_device

__all__ = ["environment", "list_gpus", "default_context", "set_default_context",
           "default_rtols", "default_atols", "almost_equal", "assert_almost_equal", "same"]


def list_gpus() -> range:
    """``range(n)`` for the n GPUs this process can use (empty without one)."""
    return range(num_gpus())


def default_context() -> Device:
    """The device arrays are made on when no ``ctx`` is given."""
    return default_device()


def set_default_context(ctx) -> None:
    """Make ``ctx`` this thread's default device."""
    set_default_device(ctx)


# MXNet 1.9's defaults; bfloat16 (8 significant bits to float16's 11) gets wider ones
_RTOL = {"float16": 1e-2, "bfloat16": 5e-2, "float32": 1e-4, "float64": 1e-5}
_ATOL = {"float16": 1e-1, "bfloat16": 2e-1, "float32": 1e-3, "float64": 1e-20}


def default_rtols() -> dict:
    """dtype name -> default relative tolerance (0 for integers and bool)."""
    return dict(_RTOL)


def default_atols() -> dict:
    """dtype name -> default absolute tolerance (0 for integers and bool)."""
    return dict(_ATOL)


def _host(x) -> np.ndarray:
    if isinstance(x, numbers.Number):
        return np.asarray(x)
    return x.asnumpy() if hasattr(x, "asnumpy") else np.asarray(x)


def _tol(tol, arrays, table) -> float:
    """A number as given; else the loosest default (or ``tol[dtype]`` where ``tol``
    is a dict) over the arrays' dtypes."""
    if isinstance(tol, numbers.Number):
        return float(tol)
    tol = tol or {}
    return max(tol.get(a.dtype.name, tol.get(a.dtype, table.get(a.dtype.name, 0.0)))
               for a in arrays)


def _tols(a, b, rtol, atol) -> Tuple[float, float]:
    return _tol(rtol, (a, b), _RTOL), _tol(atol, (a, b), _ATOL)


def _compare(a, b):
    """Both as float64 where either is a float (ml_dtypes' bfloat16 included), else as is."""
    if a.dtype.kind in "biu" and b.dtype.kind in "biu":
        return a, b
    return a.astype(np.float64), b.astype(np.float64)


def almost_equal(a: Any, b: Any, rtol=None, atol=None, equal_nan: bool = False) -> bool:
    """Whether ``|a - b| <= atol + rtol * |b|`` everywhere (numpy's allclose; NDArrays,
    numpy arrays or numbers).  As in MXNet, the default tolerances here are
    float64's whatever the dtypes (``assert_almost_equal`` picks them by dtype)."""
    a, b = _host(a), _host(b)
    rtol = _RTOL["float64"] if rtol is None else rtol
    atol = _ATOL["float64"] if atol is None else atol
    x, y = _compare(a, b)
    return bool(np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan))


def assert_almost_equal(a: Any, b: Any, rtol=None, atol=None, names=("a", "b"),
                        equal_nan: bool = False, use_broadcast: bool = True,
                        mismatches=(10, 10)) -> None:
    """Raise AssertionError, naming the worst elements, unless ``|a - b| <= atol +
    rtol * |b|`` everywhere.  Tolerances not given are the loosest defaults of the two
    dtypes (``default_rtols``/``default_atols``; a dict gives them per dtype).  Without
    ``use_broadcast`` the shapes must match."""
    a, b = _host(a), _host(b)
    if not use_broadcast and a.shape != b.shape:
        raise AssertionError(f"shape mismatch: {names[0]} {a.shape}, {names[1]} {b.shape}")
    rtol, atol = _tols(a, b, rtol, atol)
    if a.dtype == np.bool_ and b.dtype == np.bool_:
        np.testing.assert_equal(a, b)
        return
    x, y = _compare(a, b)
    if np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan):
        return
    x, y = np.broadcast_arrays(x, y)
    excess = np.abs(x - y) - (atol + rtol * np.abs(y))
    if equal_nan:
        excess = np.where(np.isnan(x) & np.isnan(y), -np.inf, excess)
    excess = np.where(np.isnan(excess), np.inf, excess)  # a NaN on one side only
    worst = np.argsort(excess, axis=None)[::-1][:max(1, mismatches[0])]
    bad = int((excess > 0).sum())
    lines = [f"{bad} of {x.size} elements exceed rtol={rtol:g}, atol={atol:g}:"]
    for flat in worst:
        if excess.flat[flat] <= 0:
            break
        idx = np.unravel_index(flat, x.shape)
        lines.append(f"  at {tuple(int(i) for i in idx)}: {names[0]}={x[idx].item()!r} "
                     f"{names[1]}={y[idx].item()!r}")
    raise AssertionError("\n".join(lines))


def same(a, b) -> bool:
    """Whether two arrays are equal element for element, with equal shapes."""
    return bool(np.array_equal(_host(a), _host(b)))


@contextlib.contextmanager
def environment(*args) -> Iterator[None]:
    """Set environment variables for a block and restore them after (MXNet's
    ``test_utils.environment``): ``environment(name, value)`` or
    ``environment({name: value, ...})``; a value of None unsets the variable."""
    if len(args) == 2:
        changes: Dict[str, Optional[str]] = {args[0]: args[1]}
    elif len(args) == 1 and isinstance(args[0], dict):
        changes = dict(args[0])
    else:
        raise ValueError("environment() takes (name, value) or one dict of name -> value")
    saved = {name: os.environ.get(name) for name in changes}
    try:
        for name, value in changes.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = str(value)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
