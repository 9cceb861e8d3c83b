"""The kernel record: one op on one device kind for a set of dtypes."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, FrozenSet, Optional


@dataclass(frozen=True)
class Kernel:
    """A plain function implementing ``op`` on ``device`` kind.

    ``fn(*arrays, **attrs)`` takes the device's arrays (numpy on the CPU) and the
    op's attributes and returns an array, or a tuple for multi-output ops.
    Ops that draw random numbers get the device's generator as first argument.

    ``dtypes`` are the dtype names accepted for the op's primary input.  Among
    candidates that accept a call the registry applies the policy in
    registry.toml, then the highest ``priority``.  ``applies(shapes, dtypes,
    attrs) -> bool`` optionally narrows a kernel to some calls (e.g. large
    matrices); results of guarded resolutions are cached per signature (shapes and
    attributes, less the op's volatile ones -- learning rates, scalar operands,
    seeds -- which a guard must therefore not read).
    ``provider`` is filled in by mxcore with the registering plugin's name.
    """

    op: str
    device: str
    fn: Callable[..., Any]
    dtypes: FrozenSet[str]
    priority: int = 0
    applies: Optional[Callable[..., bool]] = None
    name: str = ""
    provider: str = ""
    doc: str = field(default="", compare=False)

    def __post_init__(self):
        object.__setattr__(self, "dtypes", frozenset(self.dtypes))
        if not self.name:
            # numpy < 2.2 ufuncs have a __name__ but no __qualname__
            name = getattr(self.fn, "__qualname__", None) or getattr(self.fn, "__name__", None)
            object.__setattr__(self, "name", name or repr(self.fn))

    def accepts(self, dtype: str) -> bool:
        return dtype in self.dtypes
