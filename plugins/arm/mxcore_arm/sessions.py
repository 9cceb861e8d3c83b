"""onnxruntime sessions: how they are made, and a bounded cache of them.

Every session runs on the CPU execution provider, behind XNNPACK's when this
onnxruntime build has it (the aarch64 wheels of some releases do; XNNPACK takes the
nodes it implements, the CPU provider the rest).  Threads: onnxruntime's default
(one per physical core) unless ``MXCORE_CPU_THREADS`` is set, the variable that also
pins mxcore's CPU kernels, so both sides of a comparison use the same count.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable, List

import onnxruntime as ort

#: the ONNX opset of every graph built here: supported by onnxruntime >= 1.13 and by
#: mxcore's exporter (13..21), so the oldest allowed onnxruntime (1.17) runs it
OPSET = 17
#: IR version that goes with OPSET (newer IRs are refused by older runtimes)
IR_VERSION = 8

XNNPACK = "XnnpackExecutionProvider"
CPU = "CPUExecutionProvider"


def providers() -> List[str]:
    """The execution providers sessions use, best first."""
    available = ort.get_available_providers()
    return [p for p in (XNNPACK, CPU) if p in available]


def threads() -> int:
    """Intra-op threads of new sessions: ``MXCORE_CPU_THREADS``, else 0 (onnxruntime's
    default)."""
    value = os.environ.get("MXCORE_CPU_THREADS", "").strip()
    if not value:
        return 0
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"MXCORE_CPU_THREADS must be an integer, got {value!r}") from None
    if n < 1:
        raise ValueError(f"MXCORE_CPU_THREADS must be at least 1, got {n}")
    return n


def session(model_bytes: bytes) -> ort.InferenceSession:
    """An inference session for a serialised ONNX model."""
    opts = ort.SessionOptions()
    n = threads()
    opts.intra_op_num_threads = n
    opts.inter_op_num_threads = 1
    if n == 1:
        # one thread: no spinning pool to wake (and none to compete with mxcore's)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3  # warnings about unused initializers are noise here
    chosen = providers()
    provider_options = [{"intra_op_num_threads": max(n, 1)} if p == XNNPACK else {}
                        for p in chosen]
    return ort.InferenceSession(model_bytes, sess_options=opts, providers=chosen,
                                provider_options=provider_options)


class SessionCache:
    """At most ``size`` sessions by key, least recently used dropped first; one build
    per key even when threads race for it."""

    def __init__(self, size: int = 256):
        self.size = size
        self._items: "OrderedDict[Hashable, Any]" = OrderedDict()
        self._lock = threading.Lock()
        self.builds = 0  # sessions made (tests read it to see the cache work)

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
                return item
            item = build()
            self.builds += 1
            self._items[key] = item
            if len(self._items) > self.size:
                self._items.popitem(last=False)
            return item

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
