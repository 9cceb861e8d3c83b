"""Graph passes: functions Program -> Program, run in a pipeline.

A pass is a ``hal.GraphPass``: a name, a function ``fn(program, ctx) -> program``
(``ctx`` is the device the program will run on), the *stage* it runs in, the device
kinds it applies to (empty: every kind) and, optionally, the ``optimize_for`` backend
that enables it (``None``: the default pipeline).  Stages run in the order of
``hal.PASS_STAGES``: ``cleanup`` (dead code, common subexpressions, constants),
``simplify`` (algebraic identities), ``inference`` (rewrites valid only when not
training), ``fuse`` (elementwise chains into one kernel; on the CPU a loss and its
gradient computed in one program into one kernel) and ``memory`` (when each
buffer dies, which buffers a fused chain may overwrite).

mxcore's own passes are registered here; device plugins add theirs through the
``register_passes`` hook.  The default pipeline keeps results bit for bit equal to the
imperative run; passes that change rounding (folding BatchNorm into a convolution)
belong to a backend that the user asks for (``optimize_for(x, backend='fold_bn')``).
"""
from __future__ import annotations

import os
from typing import Dict, Iterable, List, Optional

import hal
from hal import GraphPass

from mxcore.graph.passes.cse import eliminate_common_subexpressions
from mxcore.graph.passes.dce import eliminate_dead_code
from mxcore.graph.passes.fold import fold_constants
from mxcore.graph.passes.fuse import fuse_elementwise
from mxcore.graph.passes.inference import drop_dropout, fold_batch_norm
from mxcore.graph.passes.loss_grad import fuse_loss_gradient
from mxcore.graph.passes.memory import plan_memory
from mxcore.graph.passes.simplify import simplify

#: mxcore's passes, in the order they run within a stage
CORE_PASSES = (
    GraphPass("dce", eliminate_dead_code, stage="cleanup", order=0),
    GraphPass("cse", eliminate_common_subexpressions, stage="cleanup", order=10),
    GraphPass("fold_constants", fold_constants, stage="cleanup", order=20),
    GraphPass("simplify", simplify, stage="simplify", order=0),
    GraphPass("dce_after_simplify", eliminate_dead_code, stage="simplify", order=100),
    GraphPass("drop_dropout", drop_dropout, stage="inference", order=0),
    GraphPass("fold_batch_norm", fold_batch_norm, stage="inference", order=10,
              backend="fold_bn"),
    GraphPass("fuse_elementwise", fuse_elementwise, stage="fuse", order=0),
    GraphPass("fuse_loss_gradient", fuse_loss_gradient, stage="fuse", order=10,
              devices=frozenset({"cpu"})),
    GraphPass("plan_memory", plan_memory, stage="memory", order=0),
)


def all_passes() -> List[GraphPass]:
    """mxcore's passes and every plugin's (``register_passes``)."""
    from mxcore.plugins import system
    return list(CORE_PASSES) + list(system().passes)


def backends() -> List[str]:
    """The names ``optimize_for(backend=...)`` accepts."""
    return sorted({p.backend for p in all_passes() if p.backend})


def pipeline(kind: str, training: bool, backend: Optional[str] = None,
             skip: Iterable[str] = ()) -> List[GraphPass]:
    """The passes that run on a program for device kind ``kind``: the default ones
    plus those of ``backend``, ordered by stage, then ``order``, then name.  Inference
    passes are left out of training programs; ``MXCORE_GRAPH_PASSES=off`` (or a list
    of pass names to leave out, ``-cse,-fuse_elementwise``) switches passes off."""
    if backend is not None and backend not in backends():
        raise ValueError(f"optimize_for: unknown backend {backend!r}; the installed "
                         f"backends are {backends()}")
    skip = set(skip) | _env_skip()
    chosen = []
    for p in all_passes():
        if "*" in skip or p.name in skip:
            continue
        if p.backend is not None and p.backend != backend:
            continue
        if p.devices and kind not in p.devices:
            continue
        if training and p.stage == "inference":
            continue
        chosen.append(p)
    rank = {s: i for i, s in enumerate(hal.PASS_STAGES)}
    return sorted(chosen, key=lambda p: (rank[p.stage], p.order, p.name))


def _env_skip() -> set:
    value = os.environ.get("MXCORE_GRAPH_PASSES", "").strip()
    if value.lower() in ("off", "none", "0"):
        return {"*"}
    return {v.strip().lstrip("-") for v in value.split(",") if v.strip().startswith("-")}


def run(program, ctx, passes: Iterable[GraphPass]):
    """``program`` through ``passes`` in turn; a pass that fails is reported naming
    it and the program, never half-applied (passes build new programs)."""
    from mxcore.base import MXCoreError
    for p in passes:
        before = len(program.steps)
        try:
            new = p.fn(program, ctx)
        except MXCoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin's pass: name it
            raise MXCoreError(f"graph pass {p.name!r} failed on {program.name!r}: "
                              f"{type(exc).__name__}: {exc}") from exc
        if new is None or not hasattr(new, "steps"):
            raise MXCoreError(f"graph pass {p.name!r} returned {type(new).__name__}, not a "
                              "Program")
        if len(new.steps) != before:
            new.notes.append(f"{p.name}: {before} -> {len(new.steps)} steps")
        program = new
    return program


__all__ = ["CORE_PASSES", "GraphPass", "all_passes", "backends", "pipeline", "run",
           "eliminate_dead_code", "eliminate_common_subexpressions", "fold_constants",
           "simplify", "drop_dropout", "fold_batch_norm", "fuse_elementwise",
           "fuse_loss_gradient", "plan_memory"]
