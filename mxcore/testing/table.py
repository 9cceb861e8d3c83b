"""The conformance table's format: a ``Case`` names an mxcore call, its numpy
reference, how to make its inputs (``In``: shape, value domain, dtype), the dtypes it
must support, per-dtype tolerances and whether its gradients are checked (first order,
and second order, by float64 finite differences). ``mxcore.testing.checks`` runs a case;
``mxcore.testing.ConformanceSuite`` turns a list of cases into pytest tests."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Tuple

import numpy as np

import hal

FLOATS = ("float16", "float32", "float64", "bfloat16")
INTS = ("int8", "uint8", "int32", "int64")
NUMERIC = FLOATS + INTS
ALL = NUMERIC + ("bool",)

#: (rtol, atol) per dtype for forward results.
TOLERANCES = {"float16": (1e-2, 2e-3), "float32": (2e-5, 1e-6), "float64": (1e-10, 1e-12),
              "bfloat16": (2e-2, 1e-2)}


@dataclass
class In:
    """One input of a case: its shape, how its values are drawn (``kind``: real, pos,
    unit, nonzero, away0, distinct, frac, index, mask), a fixed dtype if it has one,
    whether gradient checks differentiate it, and the kind's parameter."""

    shape: Tuple[int, ...]
    kind: str = "real"            # how values are drawn (see make_input)
    dtype: Optional[str] = None   # fixed dtype (indices, masks); None: the case's dtype
    diff: bool = True             # differentiated in gradient checks
    arg: Any = None               # kind parameter (e.g. index bound)


@dataclass
class Case:
    """One conformance case: ``fn(*NDArrays)`` against ``ref(*numpy arrays)`` (float
    inputs given to the reference in float64), in each of ``dtypes``; ``grad``/``grad2``
    check first and second derivatives by finite differences in float64; ``out_dtype``
    when the output's dtype is not the input's; ``tol``: dtype name -> (rtol, atol)."""

    name: str
    fn: Callable
    ref: Callable
    inputs: Tuple[In, ...]
    dtypes: Tuple[str, ...] = FLOATS
    grad: bool = True
    grad2: bool = True
    out_dtype: Optional[str] = None
    tol: dict = field(default_factory=dict)

    def __repr__(self):
        return self.name


def make_input(spec: In, dtype: str, rng: np.random.Generator) -> np.ndarray:
    """Host data for one input of a case, drawn from ``spec.kind``'s domain."""
    dt = hal.to_dtype(spec.dtype or dtype)
    shape, kind = spec.shape, spec.kind
    n = int(np.prod(shape)) if shape else 1
    if kind == "index":
        return rng.integers(0, spec.arg, size=shape).astype(dt)
    if kind == "mask":
        return (rng.random(shape) > 0.5).astype(dt)
    if dt == np.bool_:
        return rng.random(shape) > 0.5
    if dt.kind in "iu":
        lo, hi = {"real": (-5, 6), "pos": (1, 6), "nonzero": (1, 4), "distinct": (0, 0),
                  "away0": (1, 4), "frac": (-5, 6), "unit": (0, 2)}[kind]
        if dt.kind == "u":
            lo = max(lo, 0 if kind not in ("pos", "nonzero", "away0") else 1)
        if kind == "distinct":
            v = rng.permutation(n) - (0 if dt.kind == "u" else n // 2)
            return v.reshape(shape).astype(dt)
        v = rng.integers(lo, hi, size=shape)
        if kind in ("nonzero", "away0") and dt.kind == "i":
            v = v * rng.choice([-1, 1], size=shape)
        return v.astype(dt)
    if kind == "real":
        v = rng.uniform(-2, 2, shape)
    elif kind == "pos":
        v = rng.uniform(0.5, 2.5, shape)
    elif kind == "unit":
        v = rng.uniform(0.1, 0.9, shape)
    elif kind in ("nonzero", "away0"):
        v = rng.uniform(0.3, 2, shape) * rng.choice([-1, 1], size=shape)
    elif kind == "distinct":  # well-separated values: no ties for max/min/sort
        v = (rng.permutation(n).reshape(shape) - n / 2) * 0.37 + rng.uniform(-0.05, 0.05, shape)
    elif kind == "frac":       # away from integer and half-integer jumps
        v = rng.integers(-3, 3, shape) + rng.uniform(0.1, 0.4, shape)
    else:
        raise ValueError(kind)
    return np.asarray(v).astype(dt)


def collector(cases: List[Case]) -> Callable[..., Case]:
    """``case(...)``: make a ``Case(...)`` and append it to ``cases`` (how table modules
    write their rows)."""
    def case(*args, **kwargs) -> Case:
        c = Case(*args, **kwargs)
        cases.append(c)
        return c
    return case
