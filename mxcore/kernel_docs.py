"""docs/kernels.md, written from the registry: every op, the call its kernels
receive, its attributes and which devices serve it with which kernels.

``mxcore kernels --markdown`` prints it; a test regenerates it with the built-in
plugins only and fails when the checked-in file is stale.
"""
from __future__ import annotations

import inspect
from typing import Dict, List, Optional, Tuple

import numpy as np

from hal import Kernel
from mxcore.op import REQUIRED, Op
from mxcore.registry import Registry, qualified

HEADER = """\
# Kernels

Generated from the kernel registry by `mxcore kernels --markdown` with the built-in
plugins (`MXCORE_NO_THIRD_PARTY=1`); a test fails when this file is stale.  Do not edit
it by hand: change the ops or kernels and regenerate it.

A kernel for an op is called as `fn(*arrays, **attributes)`: the op's input arrays
positionally (device arrays: numpy on `cpu`), then every attribute as a keyword
argument.  Ops marked *needs_rng* get the device's random generator before the
arrays; *mutates* ops write into the inputs listed; multi-output ops return a tuple.
The call shown is the reference kernel's (mxcore-cpu) own signature where it names
its parameters.  Kernels of a device kind are listed best first for an unguarded
call: higher priority wins, a guard (`applies`) can decline a call, and policy
files (`registry.toml`, `MXCORE_REGISTRY`) can prefer or deny providers; see
`docs/writing-plugins.md` and `mxcore kernels explain`.
"""


def _dtypes(names) -> str:
    return ", ".join(sorted(names))


def _attr_default(value) -> str:
    if value is REQUIRED:
        return "required"
    return f"`{value!r}`"


def _reference(kernels: List[Kernel]) -> Optional[Kernel]:
    """The kernel whose signature documents the call: mxcore-cpu's, else any."""
    for k in kernels:
        if k.provider == "mxcore-cpu":
            return k
    return kernels[0] if kernels else None


def kernel_call(op: Op, ref: Optional[Kernel]) -> str:
    """``name(arrays..., attributes...)`` as the reference kernel receives it."""
    arrays: List[str] = []
    attrs = list(op.attrs)
    named = None
    fn = ref.fn if ref is not None else None
    if isinstance(fn, np.ufunc):
        named = [f"x{i + 1}" for i in range(fn.nin)]
    elif fn is not None and not (getattr(fn, "__module__", None) or "").startswith("numpy"):
        # (a numpy function used as a kernel as it is documents numpy's call, not mxcore's)
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            params = []
        if params and not any(p.kind is p.VAR_KEYWORD for p in params):
            named, kw = [], []
            pos = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                   and not p.name.startswith("_")]
            nin = op.nin if op.nin >= 0 else len(pos)
            skip = 1 if op.needs_rng else 0  # the generator comes first
            named = [p.name for p in pos[skip:skip + nin]]
            named += [f"*{p.name}" for p in params if p.kind is p.VAR_POSITIONAL]
            kw = [p.name for p in params if p.name not in named and p.kind is not p.VAR_POSITIONAL
                  and p.name not in [q.name for q in pos[:skip]] and not p.name.startswith("_")]
            attrs = kw
    if named is None:
        n = op.nin if op.nin >= 0 else 1
        named = [f"x{i}" for i in range(n)] + (["*more"] if op.nin < 0 else [])
    arrays = (["generator"] if op.needs_rng else []) + named
    return f"{op.name}({', '.join(arrays + attrs)})"


def _flags(op: Op) -> str:
    flags = []
    if op.saves_output:
        flags.append("saves_output")
    if op.needs_rng:
        flags.append("needs_rng")
    if op.mutates:
        flags.append("mutates " + ("(by attributes)" if callable(op.mutates)
                                   else ", ".join(f"input {i}" for i in op.mutates)))
    if op.volatile_attrs:
        flags.append("volatile: " + ", ".join(sorted(op.volatile_attrs)))
    flags.append("differentiable" if op.differentiable else "no gradient")
    return "; ".join(flags)


def render(reg: Registry) -> str:
    ops: Dict[str, Op] = {}
    for op in reg.ops.values():
        ops[op.name] = op
    # kinds with kernels but no registered device still show (a plugin may add kernels
    # for another plugin's device)
    kinds = sorted(set(reg.devices) | {kind for (_, kind) in reg.kernels})
    out = [HEADER, "## Devices", "", "| kind | provider | fallback chain | description |",
           "|---|---|---|---|"]
    for kind in kinds:
        dt = reg.devices.get(kind)
        if dt is None:
            out.append(f"| `{kind}` | (no device registered) | - | |")
            continue
        out.append(f"| `{kind}` | {reg.device_providers[kind]} | "
                   f"{' -> '.join(reg.chain(kind))} | {getattr(dt, 'description', '')} |")
    out += ["", "## Operators", "", "| op | inputs | outputs | " + " | ".join(
        f"`{k}`" for k in kinds) + " |", "|---|---|---|" + "---|" * len(kinds)]
    for name in sorted(ops, key=str.lower):
        op = ops[name]
        cells = []
        for kind in kinds:
            n = len(reg.kernels.get((name, kind), ()))
            cells.append(str(n) if n else "-")
        out.append(f"| [{name}](#{_anchor(name)}) | {op.nin if op.nin >= 0 else 'variadic'} | "
                   f"{op.nout if op.nout >= 0 else 'by attributes'} | " + " | ".join(cells) + " |")
    out.append("")
    for name in sorted(ops, key=str.lower):
        op = ops[name]
        out += _op_section(reg, op, kinds)
    return "\n".join(out).rstrip() + "\n"


def _anchor(name: str) -> str:
    return name.lower()


def _op_section(reg: Registry, op: Op, kinds: List[str]) -> List[str]:
    all_kernels = [k for kind in kinds for k in reg.kernels.get((op.name, kind), ())]
    lines = [f"### {op.name}", ""]
    if op.aliases:
        lines.append(f"Also called: {', '.join(f'`{a}`' for a in op.aliases)}.  ")
    if op.doc:
        lines.append(op.doc.strip().splitlines()[0] + "  ")
    lines.append(f"Defined by {op.provider or '?'}; {_flags(op)}.  ")
    lines.append(f"Kernel call: `{kernel_call(op, _reference(all_kernels))}`")
    lines.append("")
    if op.attrs:
        lines.append("Attributes: " + ", ".join(f"`{k}` = {_attr_default(v)}"
                                                 for k, v in op.attrs.items()) + ".")
        lines.append("")
    if not all_kernels:
        lines += ["No kernels registered.", ""]
        return lines
    lines += ["| device | kernel | priority | dtypes | guard |", "|---|---|---|---|---|"]
    for kind in kinds:
        ks = sorted(reg.kernels.get((op.name, kind), ()), key=lambda k: (-k.priority, k.name))
        for k in ks:
            guard = getattr(k.applies, "__name__", "yes") if k.applies is not None else "-"
            lines.append(f"| `{kind}` | {qualified(k)} | {k.priority} | {_dtypes(k.dtypes)} | "
                         f"{guard} |")
    lines.append("")
    return lines


def current() -> Tuple[str, Registry]:
    from mxcore.plugins import registry
    reg = registry()
    return render(reg), reg
