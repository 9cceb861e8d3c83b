"""Dynamic loss scaling (MXNet's ``LossScaler``): float16 gradients of small losses
underflow, so the loss is multiplied by a large scale before backward and the
gradients are divided by it in the optimizer step.  A step whose gradients overflow
(inf or NaN anywhere) is skipped and the scale halved; after ``scale_window`` good
steps in a row the scale doubles, up to ``max_scale``."""
from __future__ import annotations

import logging
from typing import Dict, Iterable, List, Tuple

log = logging.getLogger("mxcore.amp")

#: arrays per multi_all_finite call
_CHUNK = 200


class LossScaler:
    """Dynamic loss scaler.  ``loss_scale`` is the scale the next ``scale_loss`` uses."""

    def __init__(self, init_scale: float = 2.0 ** 16, scale_factor: float = 2.0,
                 scale_window: int = 2000, max_scale: float = 2.0 ** 24) -> None:
        if not init_scale > 0 or not scale_factor > 1 or int(scale_window) < 1:
            raise ValueError(f"LossScaler: init_scale must be > 0, scale_factor > 1 and "
                             f"scale_window >= 1, got init_scale={init_scale}, "
                             f"scale_factor={scale_factor}, scale_window={scale_window}")
        self._loss_scale = float(init_scale)
        self._factor = float(scale_factor)
        self._scale_seq_len = int(scale_window)
        self._max_loss_scale = float(max_scale)
        self._unskipped = 0

    @property
    def loss_scale(self) -> float:
        return self._loss_scale

    def has_overflow(self, params: Iterable) -> bool:
        """Whether any gradient of ``params`` (gluon Parameters) holds inf or NaN; updates
        the scale: halved on overflow, doubled after ``scale_window`` clean steps."""
        overflow = not grads_finite(_gradients(params))
        if overflow:
            self._loss_scale /= self._factor
            self._unskipped = 0
            log.info("AMP: decreasing loss scale to %f", self._loss_scale)
            return True
        self._unskipped += 1
        if self._unskipped == self._scale_seq_len:
            self._unskipped = 0
            self._loss_scale = min(self._max_loss_scale, self._loss_scale * self._factor)
            log.info("AMP: increasing loss scale to %f", self._loss_scale)
        return False


def _gradients(params: Iterable) -> List:
    grads = []
    for p in params:
        if p.grad_req != "null" and p._data is not None:
            grads.extend(p.list_grad())
    return grads


def grads_finite(grads: List) -> bool:
    """True when every element of every array is finite: one multi_all_finite per device
    and dtype (per 200 arrays), then one host read each."""
    from mxcore import autograd
    from mxcore.ndarray import multi_all_finite
    groups: Dict[Tuple[object, object], List] = {}
    for g in grads:
        groups.setdefault((g.context, g.dtype), []).append(g)
    with autograd.pause():
        flags = [multi_all_finite(*group[i:i + _CHUNK], num_arrays=len(group[i:i + _CHUNK]))
                 for group in groups.values() for i in range(0, len(group), _CHUNK)]
        return all(bool(f.asnumpy()[0]) for f in flags)
