"""How many cores other processes leave this one: the CPU plugin's thread policy reads it
before it gives a product more than one BLAS thread.

A BLAS worker that waits for a busy core stalls the whole product: on a 2-vCPU host with
one competing busy process, the MNIST MLP step ran 2.8x slower on two BLAS threads than
on one; on the same host, quiet, two threads made it 1.5x faster.  No fixed thread count
is right for both, so the policy looks.

Linux: ``/proc/stat`` gives the busy time of the CPUs this process may run on, and
``time.process_time()`` this process's own (all its threads, BLAS workers included);
their difference over the last window (a quarter of a second) is what other processes
used, and what is left of the CPUs is free.  Data-loading worker processes count as
others, as they should: they compete for the same cores.  Elsewhere (no ``/proc/stat``)
the load is unknown and the policy keeps its size rule.
"""
from __future__ import annotations

import os
import time
from typing import Callable, Optional, Sequence

#: seconds between two samples: long enough for the kernel's tick (10 ms) to resolve
#: a tenth of a core on two CPUs, short enough to follow a competing job within a second
WINDOW = 0.25
#: the first window is shorter, so that a short job does not run its first quarter second
#: on the size rule alone (five ticks per CPU: a fifth of a core's resolution)
FIRST_WINDOW = 0.05

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def usable_cpus() -> Sequence[int]:
    """The CPUs this process may run on (its affinity mask; all of them elsewhere)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def proc_stat_busy(cpus: Sequence[int]) -> Optional[float]:
    """Busy seconds of ``cpus`` since boot (user, nice, system, irq, softirq, steal),
    from ``/proc/stat``; None where there is none."""
    try:
        with open("/proc/stat", "rb") as f:
            text = f.read()
    except OSError:
        return None
    wanted = {b"cpu%d" % c for c in cpus}
    ticks = 0
    for line in text.split(b"\n"):
        if not line.startswith(b"cpu"):
            break  # the per-CPU lines come first
        fields = line.split()
        if fields[0] in wanted:
            v = [int(x) for x in fields[1:9]]
            ticks += v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
    return ticks / _TICK


class FreeCores:
    """``free()``: cores of this process's CPUs that other processes left idle over the
    last window (a float), or None while unknown (the first window, or no /proc/stat).
    The readers are parameters so that tests can play a load."""

    def __init__(self, cpus: Optional[Sequence[int]] = None, window: float = WINDOW,
                 busy: Callable[[Sequence[int]], Optional[float]] = proc_stat_busy,
                 own: Callable[[], float] = time.process_time,
                 clock: Callable[[], float] = time.monotonic):
        self.cpus = list(usable_cpus() if cpus is None else cpus)
        self.window = window
        self._busy, self._own, self._clock = busy, own, clock
        self._prev = None      # (time, busy seconds, own seconds) of the last sample
        self._next = 0.0       # when the next sample is due
        self.value: Optional[float] = None

    def reset(self) -> None:
        """Forget the samples (a forked child: its own CPU time starts again at zero)."""
        self._prev, self._next, self.value = None, 0.0, None

    def free(self) -> Optional[float]:
        now = self._clock()
        if now >= self._next:
            self._sample(now)
        return self.value

    def _sample(self, now: float) -> None:
        busy, own = self._busy(self.cpus), self._own()
        if busy is None:
            self.value, self._prev, self._next = None, None, now + self.window
            return
        prev, self._prev = self._prev, (now, busy, own)
        if prev is None:
            self._next = now + min(FIRST_WINDOW, self.window)
            return
        self._next = now + self.window
        wall, d_busy, d_own = now - prev[0], busy - prev[1], own - prev[2]
        if wall <= 0 or d_own < 0:
            return
        others = max(0.0, d_busy - d_own) / wall
        self.value = max(0.0, len(self.cpus) - others)
