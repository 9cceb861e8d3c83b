"""The kernel registry: which kernel runs (op, device, dtype, shapes, attrs).

Holds the device types, ops and kernels that plugins register, and the
resolution policy (registry.toml, merged with the user's MXCORE_REGISTRY file).
Resolutions are cached on the Op object, so eager dispatch costs one dict
lookup once an op has run with a (device kind, dtype) pair.
"""
from __future__ import annotations

import os
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from hal import DeviceType, DeviceUnavailableError, Kernel
from mxcore.base import NoKernelError, PluginError, UnknownOperatorError
from mxcore.op import Op

DEFAULT_POLICY_PATH = Path(__file__).with_name("registry.toml")


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


#: the keys a policy table may hold, at each level (every value is a list of strings)
_GLOBAL_KEYS = ("prefer", "deny")
_DEVICE_KEYS = ("fallback", "prefer", "deny")
_OP_KEYS = ("prefer", "deny")


def validate_policy(data: Dict[str, Any], source: str) -> None:
    """Reject a policy file with unknown sections or keys, or values that are not
    lists of strings: a typo must not be silently ignored."""
    def fail(where: str, msg: str):
        raise PluginError(f"kernel policy file {source}: {where} {msg} "
                          "(see registry.toml for the format)")

    def strings(where: str, value: Any):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            fail(where, f"must be a list of strings, got {type(value).__name__} {value!r}")

    def table(where: str, node: Any, keys) -> None:
        if not isinstance(node, dict):
            fail(where, f"must be a table, got {type(node).__name__} {node!r}")
        for key, value in node.items():
            if key not in keys:
                fail(where, f"has unknown key {key!r} (allowed: {', '.join(keys)})")
            strings(f"{where} {key}", value)

    for key, node in data.items():
        if key == "global":
            table("[global]", node, _GLOBAL_KEYS)
        elif key in ("devices", "ops"):
            if not isinstance(node, dict):
                fail(f"[{key}]", f"must be a table, got {type(node).__name__} {node!r}")
            for name, sub in node.items():
                if key == "devices":
                    table(f"[devices.{name}]", sub, _DEVICE_KEYS)
                    continue
                if not isinstance(sub, dict):
                    fail(f"[ops.{name}]", f"must be a table of device kinds, got {sub!r}")
                for kind, leaf in sub.items():
                    table(f"[ops.{name}.{kind}]", leaf, _OP_KEYS)
        else:
            fail(f"key {key!r}", "is unknown (allowed: global, devices, ops)")


@dataclass
class Policy:
    """The parsed registry.toml (plus the user's overrides)."""

    data: Dict[str, Any] = field(default_factory=dict)
    sources: List[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Optional[str] = None) -> "Policy":
        data, sources = {}, []
        user = path or os.environ.get("MXCORE_REGISTRY")
        for p in (DEFAULT_POLICY_PATH, user):
            if not p:
                continue
            name = f"{p} (MXCORE_REGISTRY)" if p == user and not path else str(p)
            try:
                with open(p, "rb") as f:
                    loaded = tomllib.load(f)
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise PluginError(f"cannot read kernel policy file {name}: {exc}") from exc
            validate_policy(loaded, name)
            data = _merge(data, loaded)
            sources.append(str(p))
        return cls(data, sources)

    def _list(self, *keys: str) -> List[str]:
        node: Any = self.data
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return []
            node = node[key]
        return list(node) if isinstance(node, list) else []

    def fallback(self, kind: str) -> Optional[List[str]]:
        """The policy's fallback chain for a kind, or None when the policy is silent
        (then the device type's own ``fallback`` applies)."""
        node = self.data.get("devices", {}).get(kind, {})
        return list(node["fallback"]) if "fallback" in node else None

    def preference(self, op: str, kind: str) -> List[str]:
        return (self._list("ops", op, kind, "prefer") + self._list("devices", kind, "prefer")
                + self._list("global", "prefer"))

    def denied(self, op: str, kind: str) -> List[str]:
        return (self._list("ops", op, kind, "deny") + self._list("devices", kind, "deny")
                + self._list("global", "deny"))


def qualified(kernel: Kernel) -> str:
    return f"{kernel.provider}:{kernel.name}"


def _matches(kernel: Kernel, names: List[str]) -> bool:
    return kernel.provider in names or qualified(kernel) in names


@dataclass
class Candidate:
    kernel: Kernel
    via: str                 # device kind whose kernel this is
    rank: Tuple[int, int, int]
    rejected: str = ""       # why it cannot run this call ("" if it can)


class Registry:
    def __init__(self, policy: Optional[Policy] = None):
        self.policy = policy or Policy.load()
        self.devices: Dict[str, DeviceType] = {}
        self.device_providers: Dict[str, str] = {}
        self.ops: Dict[str, Op] = {}
        self.kernels: Dict[Tuple[str, str], List[Kernel]] = {}
        self._lock = threading.RLock()
        from mxcore import autotune
        self.autotuner = autotune.Autotuner() if autotune.enabled() else None

    # registration ------------------------------------------------------------
    def add_device(self, dtype: DeviceType, provider: str) -> None:
        if not isinstance(dtype, DeviceType):
            raise PluginError(f"plugin {provider!r} registered {dtype!r}, which is not a hal.DeviceType")
        if dtype.kind in self.devices:
            raise PluginError(f"device kind {dtype.kind!r} is registered twice "
                              f"(by {self.device_providers[dtype.kind]!r} and {provider!r})")
        self.devices[dtype.kind] = dtype
        self.device_providers[dtype.kind] = provider

    def add_op(self, op: Op, provider: str) -> None:
        if not isinstance(op, Op):
            raise PluginError(f"plugin {provider!r} registered {op!r}, which is not an mxcore Op")
        for name in (op.name,) + op.aliases:
            if name in self.ops and self.ops[name] is not op:
                raise PluginError(f"operator {name!r} is registered twice "
                                  f"(by {self.ops[name].provider!r} and {provider!r})")
        op.provider = provider
        for name in (op.name,) + op.aliases:
            self.ops[name] = op

    def check_kernel(self, kernel: Kernel, pending: List[Kernel] = ()) -> None:
        """Equal top priorities are an error: two kernels for the same op and
        device kind with overlapping dtypes must differ in priority."""
        if not isinstance(kernel, Kernel):
            raise PluginError(f"{kernel!r} is not a hal.Kernel")
        for other in list(self.kernels.get((kernel.op, kernel.device), ())) + list(pending):
            if other is kernel or (other.op, other.device) != (kernel.op, kernel.device):
                continue
            if other.priority == kernel.priority and other.dtypes & kernel.dtypes:
                raise PluginError(
                    f"kernels {qualified(other)} and {qualified(kernel)} both implement "
                    f"{kernel.op!r} on {kernel.device!r} for "
                    f"{sorted(other.dtypes & kernel.dtypes)} with priority {kernel.priority}; "
                    "give one a different priority")

    def add_kernel(self, kernel: Kernel) -> None:
        self.check_kernel(kernel)
        self.kernels.setdefault((kernel.op, kernel.device), []).append(kernel)

    def remove_provider(self, provider: str) -> None:
        """Drop everything a plugin registered (used when unregistering)."""
        with self._lock:
            self.invalidate()  # also clears the caches of the ops about to be removed
            for kind in [k for k, p in self.device_providers.items() if p == provider]:
                del self.devices[kind], self.device_providers[kind]
            for name in [n for n, op in self.ops.items() if op.provider == provider]:
                del self.ops[name]
            for key in list(self.kernels):
                self.kernels[key] = [k for k in self.kernels[key] if k.provider != provider]
                if not self.kernels[key]:
                    del self.kernels[key]
            self.invalidate()

    def invalidate(self) -> None:
        """Forget cached resolutions (after any registration change)."""
        for op in set(self.ops.values()):
            op.cache.clear()

    # lookup --------------------------------------------------------------------
    def op(self, name: str) -> Op:
        try:
            return self.ops[name]
        except KeyError:
            raise UnknownOperatorError(
                f"unknown operator {name!r}; `mxcore kernels` lists the registered ones") from None

    def device_type(self, kind: str) -> DeviceType:
        try:
            return self.devices[kind]
        except KeyError:
            raise DeviceUnavailableError(
                f"no plugin provides device kind {kind!r} (registered kinds: "
                f"{', '.join(sorted(self.devices)) or 'none'}; `mxcore plugins` shows load errors)"
            ) from None

    def fallback(self, kind: str) -> List[str]:
        """Where a kind borrows kernels: the policy's chain for it when it names one
        (registry.toml, MXCORE_REGISTRY), else what the device type declares."""
        chain = self.policy.fallback(kind)
        if chain is None:
            dt = self.devices.get(kind)
            chain = list(getattr(dt, "fallback", ()) or ())
        return chain

    def chain(self, kind: str) -> List[str]:
        seen, out = set(), []
        todo = [kind]
        while todo:
            k = todo.pop(0)
            if k in seen:
                continue
            seen.add(k)
            out.append(k)
            todo.extend(self.fallback(k))
        return out

    def candidates(self, op: str, kind: str, dtype: str, shapes=None, dtypes=None,
                   attrs=None) -> List[Candidate]:
        """Every kernel that could serve this call, best first, with the reason
        for each one that cannot."""
        if shapes is not None:  # guards always get a call's three: dtypes and attrs too
            dtypes = dtypes if dtypes is not None else (dtype,) * len(shapes)
            attrs = attrs if attrs is not None else {}
        prefer, deny = [], []
        for name in self._names(op):
            prefer += self.policy.preference(name, kind)
            deny += self.policy.denied(name, kind)
        out: List[Candidate] = []
        for pos, via in enumerate(self.chain(kind)):
            for k in self.kernels.get((op, via), ()):
                pref = next((i for i, name in enumerate(prefer) if _matches(k, [name])), len(prefer))
                cand = Candidate(k, via, (pref, pos, -k.priority))
                if _matches(k, deny):
                    cand.rejected = "denied by policy"
                elif dtype not in k.dtypes:
                    cand.rejected = f"does not take {dtype}"
                elif k.applies is not None and shapes is not None:
                    try:
                        ok = k.applies(shapes, dtypes, attrs)
                    except Exception as exc:  # a broken guard must not break dispatch
                        ok, cand.rejected = False, f"guard raised {exc!r}"
                    if not ok and not cand.rejected:
                        cand.rejected = "guard declined"
                out.append(cand)
        out.sort(key=lambda c: (bool(c.rejected), c.rank))
        return out

    def resolve(self, op: str, kind: str, dtype: str, shapes=None, dtypes=None,
                attrs=None) -> Kernel:
        cands = self.candidates(op, kind, dtype, shapes, dtypes, attrs)
        viable = [c for c in cands if not c.rejected]
        if self.autotuner is not None and shapes is not None and len(viable) > 1 \
                and kind in self.devices:
            sig = self._autotune_signature(op, kind, dtype, shapes, dtypes, attrs, viable)
            o = self.ops.get(op)
            return self.autotuner.choose(sig, [c.kernel for c in viable], self.devices[kind],
                                         bool(o and o.needs_rng), shapes, dtypes, attrs)
        if viable:
            return viable[0].kernel
        if not cands:
            served = sorted({k for (o, k) in self.kernels if o == op})
            raise NoKernelError(
                f"operator {op!r} has no kernel for device kind {kind!r}"
                f" (searched: {' -> '.join(self.chain(kind))}; kernels exist for: "
                f"{', '.join(served) or 'no device'}). A device kind can borrow another "
                f"kind's kernels through a fallback chain: the device type's `fallback` "
                f"attribute, or `[devices.{kind}] fallback = [...]` in a policy file named "
                "by MXCORE_REGISTRY")
        have = sorted({d for c in cands for d in c.kernel.dtypes})
        why = "; ".join(f"{qualified(c.kernel)}: {c.rejected}" for c in cands)
        raise NoKernelError(f"operator {op!r} has no kernel on {kind!r} for dtype {dtype}"
                            f" (kernels exist for: {', '.join(have)}; rejected: {why})")

    def _names(self, op: str) -> List[str]:
        """An op's name and aliases: policy sections may use any of them."""
        o = self.ops.get(op)
        return [op] + [a for a in (o.aliases if o is not None else ()) if a != op]

    def _autotune_signature(self, op, kind, dtype, shapes, dtypes, attrs, viable) -> str:
        # volatile attributes (learning rates, seeds...) would make every step a new
        # signature to time: they are left out, as in dispatch's per-signature cache
        o = self.ops.get(op)
        if attrs and o is not None and o.volatile_attrs:
            attrs = {k: v for k, v in attrs.items() if k not in o.volatile_attrs}
        return self.autotuner.signature(op, kind, dtype, shapes, dtypes, attrs,
                                        [qualified(c.kernel) for c in viable])

    def has_guards(self, op: str, kind: str) -> bool:
        """Whether the choice can depend on shapes: some candidate has a guard,
        or autotuning is on and there is more than one candidate."""
        ks = [k for via in self.chain(kind) for k in self.kernels.get((op, via), ())]
        return any(k.applies is not None for k in ks) or (
            self.autotuner is not None and len(ks) > 1)

    def explain(self, op: str, kind: str, dtype: str, shapes=None, dtypes=None,
                attrs=None) -> str:
        """Say which kernel wins for a call and why."""
        self.op(op)
        cands = self.candidates(op, kind, dtype, shapes, dtypes, attrs)
        prefer = [p for name in self._names(op) for p in self.policy.preference(name, kind)]
        lines = [f"op {op} on {kind}, dtype {dtype}" + (f", shapes {shapes}" if shapes else "")]
        lines.append(f"fallback chain: {' -> '.join(self.chain(kind))}; "
                     f"preferred providers: {', '.join(prefer) or '(none)'}")
        lines.append(f"policy files: {', '.join(self.policy.sources)}")
        winner = next((c for c in cands if not c.rejected), None)
        for c in cands:
            mark = "*" if c is winner else ("x" if c.rejected else " ")
            pref = f"preference #{c.rank[0] + 1}" if c.rank[0] < len(prefer) else "not preferred"
            note = f"  REJECTED: {c.rejected}" if c.rejected else ""
            if c.kernel.applies is not None and shapes is None:
                note += "  (guard not evaluated: pass shapes)"
            lines.append(f" {mark} {qualified(c.kernel):40s} priority {c.kernel.priority:4d}  "
                         f"via {c.via}  {pref}{note}")
        viable = [c for c in cands if not c.rejected]
        if self.autotuner is not None and shapes is not None and len(viable) > 1:
            sig = self._autotune_signature(op, kind, dtype, shapes, dtypes, attrs, viable)
            entry = self.autotuner.lookup(sig)
            if entry is not None:
                lines.append(f"autotune chose {entry['winner']} (seconds: {entry['seconds']})")
            else:
                lines.append("autotune is on: the first call with these shapes times "
                             f"{len(viable)} candidates")
        if winner is None:
            lines.append("no kernel can run this call")
        else:
            why = []
            runners = [c for c in cands if not c.rejected and c is not winner]
            if runners:
                r = runners[0]
                if r.rank[0] != winner.rank[0]:
                    why.append("its provider is preferred by policy")
                elif r.rank[1] != winner.rank[1]:
                    why.append(f"it is native to {winner.via} (the runner-up is a fallback)")
                else:
                    why.append(f"it has the highest priority ({winner.kernel.priority} > "
                               f"{r.kernel.priority})")
            else:
                why.append("it is the only kernel that accepts this call")
            lines.append(f"winner: {qualified(winner.kernel)} because {'; '.join(why)}")
        return "\n".join(lines)
