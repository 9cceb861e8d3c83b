"""Optimizer-state files, shared by ``KVStore.save_optimizer_states`` and
``gluon.Trainer.save_states`` so that either can read what the other wrote.

A file is safetensors: the state arrays, plus metadata ``format``
(``mxcore-optimizer-states``; files of the older ``mxcore-trainer-states`` format
read the same), ``optimizer`` (the class name) and ``state`` (JSON: the structure
of each state and, when dumped, the optimizer's settings and update counters).
It is written atomically; reading it never runs code (MXNet pickled it).
"""
from __future__ import annotations

import json
import warnings
from typing import Sequence

from mxcore.base import MXCoreError

FORMAT = "mxcore-optimizer-states"
_READABLE = (FORMAT, "mxcore-trainer-states")


def save(fname: str, updater, dump_optimizer: bool = True) -> None:
    """Write ``updater``'s states (an ``mx.optimizer.Updater``) to ``fname``."""
    from mxcore.serialization import save_arrays
    arrays, meta = updater.states_to_arrays(dump_optimizer)
    save_arrays(fname, arrays, {"format": FORMAT,
                                "optimizer": type(updater.optimizer).__name__,
                                "state": json.dumps(meta)})


def load(fname: str, updaters: Sequence, devices: Sequence = ()) -> None:
    """Restore the states of ``fname`` into every updater of ``updaters`` (the
    i-th on ``devices[i]`` when given; states move to their weight's device on
    first use anyway).  They all end up sharing the first one's optimizer, which
    is restored in place when it is of the saved class."""
    from mxcore.serialization import load_arrays
    arrays, meta = load_arrays(fname)
    if meta.get("format") not in _READABLE:
        raise MXCoreError(f"{fname} is not a trainer state file (optimizer states written by "
                          "Trainer.save_states or KVStore.save_optimizer_states); its "
                          f"metadata format is {meta.get('format')!r}")
    if not updaters:
        return
    saved = meta.get("optimizer")
    current = type(updaters[0].optimizer).__name__
    if saved != current:
        warnings.warn(f"{fname} holds {saved} states; the optimizer here is {current}",
                      stacklevel=3)
    state = json.loads(meta.get("state", "{}"))
    for k, updater in enumerate(updaters):
        updater.arrays_to_states(arrays, state, devices[k] if k < len(devices) else None)
        updater.optimizer = updaters[0].optimizer
