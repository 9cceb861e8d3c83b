"""The graph-pass record: a rewrite of traced programs that a plugin contributes."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, FrozenSet, Optional

#: the stages of mxcore's pass pipeline, in the order they run
PASS_STAGES = ("cleanup", "simplify", "inference", "fuse", "memory")


@dataclass(frozen=True)
class GraphPass:
    """``fn(program, ctx) -> program`` rewrites an ``mxcore.graph.program.Program``
    (a new one; the argument is never changed) for device ``ctx``.

    ``stage`` is one of ``PASS_STAGES``; within a stage passes run by ``order``, then
    name.  ``devices`` are the device kinds it applies to (empty: all).  ``backend``:
    the pass runs only when the user asks for that backend
    (``HybridBlock.optimize_for(x, backend=...)``); ``None`` puts it in the default
    pipeline, which must keep results bit for bit.  ``inference`` stage passes never
    see training programs."""
    name: str
    fn: Callable[[Any, Any], Any]
    stage: str = "cleanup"
    order: int = 0
    devices: FrozenSet[str] = field(default_factory=frozenset)
    backend: Optional[str] = None
    provider: str = ""

    def __post_init__(self):
        if self.stage not in PASS_STAGES:
            raise ValueError(f"graph pass {self.name!r}: stage must be one of {PASS_STAGES}, "
                             f"got {self.stage!r}")
        object.__setattr__(self, "devices", frozenset(self.devices))
