"""What the host offers the ARM kernels, and the guards built on it.

The kernels are registered for the ``cpu`` kind, so code written for ``mx.cpu()`` runs
unchanged on an ARM board and gets them; on any other host their guards decline.  A
guard passes when

* ``MXCORE_ARM_KERNELS`` is ``force`` (any host: how the kernels are tested on x86), or
* it is ``auto`` (the default), the machine is aarch64/arm64, and the CPU has the
  feature the kernel needs (``asimdhp``/``fphp``: float16 arithmetic; ``asimddp``: the
  int8 dot product), read from ``/proc/cpuinfo``'s ``Features`` line.

``off`` makes every guard decline.  A declining guard raises :class:`ArmKernelDeclined`
with the reason, which ``mxcore kernels explain`` prints (a guard that raises counts as
declining).  The registry caches guard outcomes per call signature: after changing the
variable in a running process, call ``mxcore.plugins.registry().invalidate()``.
"""
from __future__ import annotations

import functools
import os
import platform
import sys
from typing import Callable, Dict, FrozenSet, Optional, Sequence, Tuple

ENV = "MXCORE_ARM_KERNELS"
MODES = ("auto", "force", "off")
#: ``platform.machine()`` values of 64-bit ARM hosts (Linux says aarch64, macOS arm64)
ARM_MACHINES = frozenset({"aarch64", "arm64"})

#: what each kernel family needs from the CPU: any one of the features listed
FEATURES: Dict[str, FrozenSet[str]] = {
    "float16": frozenset({"asimdhp", "fphp"}),
    "int8": frozenset({"asimddp"}),
}

#: Apple silicon has no /proc/cpuinfo; every M-series core has FEAT_FP16 and FEAT_DotProd
_DARWIN_ARM_FEATURES = frozenset({"asimdhp", "fphp", "asimddp"})


class ArmKernelDeclined(Exception):
    """Raised by a guard to decline a call, with the reason ``explain`` shows."""


def mode() -> str:
    """``MXCORE_ARM_KERNELS``, checked: ``auto`` (default), ``force`` or ``off``."""
    value = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if value not in MODES:
        raise ArmKernelDeclined(f"{ENV}={value!r} is not one of {', '.join(MODES)}")
    return value


def machine() -> str:
    return platform.machine().lower()


def is_arm() -> bool:
    return machine() in ARM_MACHINES


#: where Linux describes the CPU
CPUINFO = "/proc/cpuinfo"


#: AT_HWCAP bits of Linux's aarch64 ABI (asm/hwcap.h) for the features the kernels use
HWCAP_BITS: Dict[str, int] = {"fphp": 1 << 9, "asimdhp": 1 << 10, "asimddp": 1 << 20}
AT_HWCAP = 16


def cpu_features() -> Optional[FrozenSet[str]]:
    """The CPU's feature flags, or None when the host does not say. On Linux aarch64
    the kernel's AT_HWCAP word (what the CPU really offers this process; emulators
    such as qemu-user set it for the emulated CPU while /proc/cpuinfo shows the host's),
    else the first ``Features``/``flags`` line of ``CPUINFO``."""
    if sys.platform == "darwin" and is_arm():
        return _DARWIN_ARM_FEATURES
    if sys.platform.startswith("linux") and os.uname().machine in ARM_MACHINES:
        caps = hwcap_features()
        if caps is not None:
            return caps
    return read_features(CPUINFO)


@functools.lru_cache(maxsize=None)
def hwcap_features() -> Optional[FrozenSet[str]]:
    """The features of ``HWCAP_BITS`` set in ``getauxval(AT_HWCAP)`` (Linux), or None."""
    try:
        import ctypes
        getauxval = ctypes.CDLL(None).getauxval
        getauxval.restype, getauxval.argtypes = ctypes.c_ulong, [ctypes.c_ulong]
        word = getauxval(AT_HWCAP)
    except (OSError, AttributeError):
        return None
    return frozenset(name for name, bit in HWCAP_BITS.items() if word & bit) if word else None


@functools.lru_cache(maxsize=None)
def read_features(path: str) -> Optional[FrozenSet[str]]:
    """The first ``Features``/``flags`` line of a cpuinfo file (read once per path)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip().lower() in ("features", "flags"):
                    return frozenset(value.split())
    except OSError:
        return None
    return frozenset()


def why_not(family: str) -> Optional[str]:
    """None when kernels of ``family`` (a key of ``FEATURES``) may run on this host, else
    the reason they may not."""
    m = mode()
    if m == "force":
        return None
    if m == "off":
        return f"ARM kernels are switched off ({ENV}=off)"
    if not is_arm():
        return (f"not an ARM host: platform.machine() is {platform.machine()!r}; "
                f"set {ENV}=force to run the ARM kernels anyway")
    have = cpu_features()
    need = FEATURES[family]
    if have is None:
        return (f"the CPU's features are unknown (no {CPUINFO}); {family} needs one of "
                f"{sorted(need)}")
    if not have & need:
        return (f"the CPU lacks {family} support: its features (AT_HWCAP or {CPUINFO}) "
                f"include none of {sorted(need)}")
    return None


Guard = Callable[[Sequence[Tuple[int, ...]], Sequence[str], dict], bool]


def guard(family: str, shape_check: Optional[Callable[..., Optional[str]]] = None,
          name: str = "") -> Guard:
    """A kernel guard: the host check of ``family``, then ``shape_check(shapes, dtypes,
    attrs)``, which returns None to accept or the reason to decline."""
    def applies(shapes, dtypes, attrs) -> bool:
        reason = why_not(family)
        if reason is None and shape_check is not None:
            reason = shape_check(shapes, dtypes, attrs)
        if reason is not None:
            raise ArmKernelDeclined(reason)
        return True
    applies.__name__ = name or f"arm_{family}"
    return applies
