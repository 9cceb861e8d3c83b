"""Losses (MXNet Gluon 1.x), computing what MXNet 1.9.1 computes.

Most return one value per sample: the mean over every axis but ``batch_axis``, scaled by
``weight`` and by ``sample_weight`` (which broadcasts against the elementwise loss).  The
exceptions are MXNet's: KLDivLoss sums over the non-batch axes; PoissonNLLLoss returns the
mean over everything, shape (1,); CTCLoss returns one value per sequence;
CosineEmbeddingLoss returns (batch, 1); TripletLoss takes no sample_weight; SDMLLoss
ignores its ``weight``.

Every ``hybrid_forward`` uses only ``F.<op>`` calls and arithmetic on its inputs, never
their shapes or values, so the same code runs on NDArrays and on symbols.
"""
from __future__ import annotations

import math
import numbers

from mxcore.base import MXCoreError
from mxcore.gluon.block import HybridBlock
from mxcore.ndarray.ndarray import NDArray

__all__ = ["Loss", "L2Loss", "L1Loss", "SigmoidBinaryCrossEntropyLoss", "SigmoidBCELoss",
           "SoftmaxCrossEntropyLoss", "SoftmaxCELoss", "KLDivLoss", "CTCLoss", "HuberLoss",
           "HingeLoss", "SquaredHingeLoss", "LogisticLoss", "TripletLoss", "PoissonNLLLoss",
           "CosineEmbeddingLoss", "SDMLLoss"]


def _apply_weighting(F, loss, weight=None, sample_weight=None):
    """``loss * sample_weight * weight`` (``sample_weight`` broadcast)."""
    if sample_weight is not None:
        loss = F.broadcast_mul(loss, sample_weight)
    if weight is not None:
        loss = loss * weight
    return loss


def _softrelu(F, x):
    """log(1 + exp(x)), MXNet's Activation softrelu."""
    return F.Activation(x, act_type="softrelu")


def _reshape_like(F, x, y, lhs_begin=None, lhs_end=None, rhs_begin=None, rhs_end=None):
    """``F.reshape_like``, skipped on arrays already of the target shape (the usual
    call in a training step: no op)."""
    if type(x) is NDArray and type(y) is NDArray and lhs_begin is None and lhs_end is None \
            and rhs_begin is None:
        if tuple(x.shape) == tuple(y.shape[:rhs_end] if rhs_end is not None else y.shape):
            return x
    kw = {k: v for k, v in (("lhs_begin", lhs_begin), ("lhs_end", lhs_end),
                            ("rhs_begin", rhs_begin), ("rhs_end", rhs_end)) if v is not None}
    return F.reshape_like(x, y, **kw)


class Loss(HybridBlock):
    """Base class: ``weight`` (a number or None) scales the loss, ``batch_axis`` is the
    axis kept by the per-sample reduction."""

    def __init__(self, weight=None, batch_axis: int = 0, **kwargs):
        super().__init__(**kwargs)
        if weight is not None and not isinstance(weight, numbers.Number):
            raise TypeError(f"{type(self).__name__}: weight must be a number or None, got "
                            f"{type(weight).__name__}")
        self._weight = weight
        self._batch_axis = batch_axis

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_axis={self._batch_axis}, w={self._weight})"

    def forward(self, x, *args, **kwargs):
        try:
            return super().forward(x, *args, **kwargs)
        except MXCoreError as exc:  # say which loss the failing op belongs to
            if exc.args and isinstance(exc.args[0], str):
                exc.args = (f"{type(self).__name__}: {exc.args[0]}",) + exc.args[1:]
            raise

    def _batch_mean(self, F, loss):
        """The mean over every axis but ``batch_axis`` (a 1-d loss is kept as is)."""
        if type(loss) is NDArray and loss.ndim == 1 and self._batch_axis in (0, -1):
            return loss  # nothing to average: no op in the training step
        return F.mean(loss, axis=self._batch_axis, exclude=True)

    def hybrid_forward(self, F, x, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement hybrid_forward()")


class L2Loss(Loss):
    """``weight / 2 * (label - pred) ** 2``; ``label`` is reshaped like ``pred``."""

    def __init__(self, weight=1., batch_axis: int = 0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        loss = F.square(_reshape_like(F, label, pred) - pred)
        return self._batch_mean(F, _apply_weighting(F, loss, self._weight / 2, sample_weight))


class L1Loss(Loss):
    """``|label - pred|``; ``label`` is reshaped like ``pred``."""

    def __init__(self, weight=None, batch_axis: int = 0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        loss = F.abs(_reshape_like(F, label, pred) - pred)
        return self._batch_mean(F, _apply_weighting(F, loss, self._weight, sample_weight))


class SigmoidBinaryCrossEntropyLoss(Loss):
    """Binary cross-entropy of ``sigmoid(pred)`` (or of ``pred`` itself when
    ``from_sigmoid``) against ``label`` in [0, 1]; ``pos_weight`` scales the positive
    term.  From logits it uses max(x, 0) - x z + log(1 + exp(-|x|)), which never
    overflows; from probabilities it adds 1e-12 inside the logs."""

    def __init__(self, from_sigmoid: bool = False, weight=None, batch_axis: int = 0,
                 **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._from_sigmoid = from_sigmoid

    def hybrid_forward(self, F, pred, label, sample_weight=None, pos_weight=None):
        label = _reshape_like(F, label, pred)
        if not self._from_sigmoid:
            log_1p_exp = _softrelu(F, -F.abs(pred))
            if pos_weight is None:
                loss = F.relu(pred) - pred * label + log_1p_exp
            else:
                # x - x z + (1 + (pos_weight - 1) z) (log(1 + exp(-|x|)) + max(-x, 0))
                log_weight = 1 + F.broadcast_mul(pos_weight - 1, label)
                loss = pred - pred * label + log_weight * (log_1p_exp + F.relu(-pred))
        else:
            eps = 1e-12
            positive = F.log(pred + eps) * label
            if pos_weight is not None:
                positive = F.broadcast_mul(positive, pos_weight)
            loss = -(positive + F.log(1. - pred + eps) * (1. - label))
        return self._batch_mean(F, _apply_weighting(F, loss, self._weight, sample_weight))


SigmoidBCELoss = SigmoidBinaryCrossEntropyLoss


class SoftmaxCrossEntropyLoss(Loss):
    """Softmax cross-entropy over ``axis``: ``-log softmax(pred)[label]`` with class
    indices (``sparse_label``, label shaped like ``pred`` without ``axis``, or with it as
    1), else ``-sum(label * log softmax(pred))`` with a distribution; ``from_logits``
    means ``pred`` already holds log-probabilities."""

    def __init__(self, axis: int = -1, sparse_label: bool = True, from_logits: bool = False,
                 weight=None, batch_axis: int = 0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._axis = axis
        self._sparse_label = sparse_label
        self._from_logits = from_logits

    def _fused(self) -> bool:
        """Sparse labels over the last axis: one fused op (softmax - one_hot backward)."""
        return self._sparse_label and not self._from_logits and self._axis == -1

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        if self._fused():
            loss = F.softmax_ce_loss(pred, _reshape_like(F, label, pred, rhs_end=-1), axis=-1)
            if sample_weight is None and self._batch_axis == 0:
                # the per-sample mean needs no class axis back
                return self._batch_mean(F, _apply_weighting(F, loss, self._weight))
            loss = F.expand_dims(loss, axis=-1)
        else:
            if not self._from_logits:
                pred = F.log_softmax(pred, axis=self._axis)
            if self._sparse_label:
                loss = -F.pick(pred, label, axis=self._axis, keepdims=True)
            else:
                label = _reshape_like(F, label, pred)
                loss = -F.sum(pred * label, axis=self._axis, keepdims=True)
        return self._batch_mean(F, _apply_weighting(F, loss, self._weight, sample_weight))


SoftmaxCELoss = SoftmaxCrossEntropyLoss


class KLDivLoss(Loss):
    """``label * (log(label + 1e-12) - pred)`` summed over every axis but
    ``batch_axis`` (MXNet 1.9.1 sums, whatever its docs say); ``pred`` holds
    log-probabilities (``from_logits``) or logits (log-softmaxed over ``axis``)."""

    def __init__(self, from_logits: bool = True, axis: int = -1, weight=None,
                 batch_axis: int = 0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._from_logits = from_logits
        self._axis = axis

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        if not self._from_logits:
            pred = F.log_softmax(pred, axis=self._axis)
        loss = label * (F.log(label + 1e-12) - pred)
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return F.sum(loss, axis=self._batch_axis, exclude=True)


_CTC_LAYOUTS = {"layout": ("NTC", "TNC"), "label_layout": ("NT", "TN")}


class CTCLoss(Loss):
    """Connectionist Temporal Classification loss of unnormalised scores ``pred``
    (``layout`` 'NTC' or 'TNC') against zero-based labels (``label_layout`` 'NT' or
    'TN', rows padded with -1); the last class is the blank.  Optional
    ``pred_lengths`` / ``label_lengths`` (batch,) give each sequence's lengths.  Returns
    one negative log-likelihood per sequence (``ctc_loss`` with ``blank_label='last'``)."""

    def __init__(self, layout: str = "NTC", label_layout: str = "NT", weight=None,
                 **kwargs):
        for name, value in (("layout", layout), ("label_layout", label_layout)):
            if value not in _CTC_LAYOUTS[name]:
                raise ValueError(f"CTCLoss: {name} must be one of {_CTC_LAYOUTS[name]}, "
                                 f"got {value!r}")
        self._layout = layout
        self._label_layout = label_layout
        super().__init__(weight, label_layout.find("N"), **kwargs)

    def hybrid_forward(self, F, pred, label, pred_lengths=None, label_lengths=None,
                       sample_weight=None):
        if self._layout == "NTC":
            pred = F.swapaxes(pred, 0, 1)
        if self._batch_axis == 1:
            label = F.swapaxes(label, 0, 1)
        loss = F.CTCLoss(pred, label, pred_lengths, label_lengths,
                         use_data_lengths=pred_lengths is not None,
                         use_label_lengths=label_lengths is not None, blank_label="last")
        return _apply_weighting(F, loss, self._weight, sample_weight)


class HuberLoss(Loss):
    """Smoothed L1: ``0.5 / rho * err ** 2`` where ``|err| <= rho``, else
    ``|err| - rho / 2``."""

    def __init__(self, rho: float = 1, weight=None, batch_axis: int = 0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._rho = rho

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        err = F.abs(_reshape_like(F, label, pred) - pred)
        loss = F.where(err > self._rho, err - 0.5 * self._rho,
                       (0.5 / self._rho) * F.square(err))
        return self._batch_mean(F, _apply_weighting(F, loss, self._weight, sample_weight))


class HingeLoss(Loss):
    """``max(0, margin - pred * label)`` with labels -1 or 1."""

    def __init__(self, margin: float = 1, weight=None, batch_axis: int = 0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._margin = margin

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        loss = F.relu(self._margin - pred * _reshape_like(F, label, pred))
        return self._batch_mean(F, _apply_weighting(F, loss, self._weight, sample_weight))


class SquaredHingeLoss(Loss):
    """``max(0, margin - pred * label) ** 2`` with labels -1 or 1."""

    def __init__(self, margin: float = 1, weight=None, batch_axis: int = 0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._margin = margin

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        loss = F.square(F.relu(self._margin - pred * _reshape_like(F, label, pred)))
        return self._batch_mean(F, _apply_weighting(F, loss, self._weight, sample_weight))


_LABEL_FORMATS = ("signed", "binary")


class LogisticLoss(Loss):
    """``log(1 + exp(-pred * label))`` with labels -1/1 (``label_format='signed'``) or
    0/1 (``'binary'``), computed as the stable binary cross-entropy from logits."""

    def __init__(self, weight=None, batch_axis: int = 0, label_format: str = "signed",
                 **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        if label_format not in _LABEL_FORMATS:
            raise ValueError(f"LogisticLoss: label_format must be one of {_LABEL_FORMATS}, "
                             f"got {label_format!r}")
        self._label_format = label_format

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        label = _reshape_like(F, label, pred)
        if self._label_format == "signed":
            label = (label + 1.0) / 2.0  # -1/1 -> 0/1
        loss = F.relu(pred) - pred * label + _softrelu(F, -F.abs(pred))
        return self._batch_mean(F, _apply_weighting(F, loss, self._weight, sample_weight))


class TripletLoss(Loss):
    """``max(0, |positive - pred|^2 - |negative - pred|^2 + margin)``, the squared
    distances summed over every axis but ``batch_axis``."""

    def __init__(self, margin: float = 1, weight=None, batch_axis: int = 0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._margin = margin

    def hybrid_forward(self, F, pred, positive, negative):
        positive = _reshape_like(F, positive, pred)
        negative = _reshape_like(F, negative, pred)
        gap = F.sum(F.square(positive - pred) - F.square(negative - pred),
                    axis=self._batch_axis, exclude=True)
        return _apply_weighting(F, F.relu(gap + self._margin), self._weight)


class PoissonNLLLoss(Loss):
    """Poisson negative log-likelihood, averaged over every element (shape (1,)):
    ``exp(pred) - target * pred`` when ``from_logits`` (``pred`` is the log rate), else
    ``pred - target * log(pred + epsilon)``.  ``compute_full`` adds Stirling's
    approximation of log(target!), ``target log target - target + log(2 pi target) / 2``,
    where ``target > 1``."""

    def __init__(self, weight=None, from_logits: bool = True, batch_axis: int = 0,
                 compute_full: bool = False, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._from_logits = from_logits
        self._compute_full = compute_full

    def hybrid_forward(self, F, pred, target, sample_weight=None, epsilon=1e-08):
        target = _reshape_like(F, target, pred)
        if self._from_logits:
            loss = F.exp(pred) - target * pred
        else:
            loss = pred - target * F.log(pred + epsilon)
        if self._compute_full:
            # MXNet's formula on target itself makes a zero target NaN (0 * log 0) before
            # the (target > 1) mask; on max(target, 1) the masked terms stay finite
            big = F.maximum(target, 1)
            stirling = big * F.log(big) - big + 0.5 * F.log(2 * math.pi * big)
            loss = loss + stirling * (target > 1)
        return F.mean(_apply_weighting(F, loss, self._weight, sample_weight))


class CosineEmbeddingLoss(Loss):
    """``1 - cos(input1, input2)`` for label 1, ``max(0, cos - margin)`` for label -1
    (0 for other labels); the cosine over the last axis, clamped below 1e-12 in its
    denominator.  Returns shape (batch, 1)."""

    def __init__(self, weight=None, batch_axis: int = 0, margin: float = 0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._margin = margin

    def hybrid_forward(self, F, input1, input2, label, sample_weight=None):
        input1 = _reshape_like(F, input1, input2)
        label = F.reshape(label, (-1, 1))
        cos_sim = self._cosine_similarity(F, input1, input2)
        similar = (1 - cos_sim) * (label == 1)
        dissimilar = F.relu((label == -1) * (cos_sim - self._margin))
        return _apply_weighting(F, similar + dissimilar, self._weight, sample_weight)

    def _cosine_similarity(self, F, x, y, axis: int = -1):
        x_norm = F.reshape(F.norm(x, axis=axis), (-1, 1))
        y_norm = F.reshape(F.norm(y, axis=axis), (-1, 1))
        x_dot_y = F.reshape(F.sum(x * y, axis=axis), (-1, 1))
        return x_dot_y / F.maximum(x_norm * y_norm, 1e-12)


class SDMLLoss(Loss):
    """Smoothed Deep Metric Learning loss of two aligned minibatches (batch, dim): for
    each row of ``x1``, the KL divergence (KLDivLoss, summed per row) between the
    smoothed identity (``1 - smoothing_parameter`` on the diagonal, the rest spread
    evenly over the row) and the softmax of minus the squared distances to every row of
    ``x2``.  As in MXNet 1.9.1, ``weight`` is accepted but not applied."""

    def __init__(self, smoothing_parameter: float = 0.3, weight=1., batch_axis: int = 0,
                 **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self.kl_loss = KLDivLoss(from_logits=True)
        self.smoothing_parameter = smoothing_parameter

    @staticmethod
    def _compute_distances(F, x1, x2):
        """Squared euclidean distances between every row of x1 and of x2: (batch, batch)."""
        diff = F.broadcast_sub(F.expand_dims(x1, axis=1), F.expand_dims(x2, axis=0))
        return F.sum(F.square(diff), axis=2)

    def _compute_labels(self, F, distances):
        """The smoothed identity, as large as ``distances``."""
        ones = F.ones_like(F.sum(distances, axis=1))
        gold = F.diag(ones)
        s = self.smoothing_parameter
        off_diagonal = s / (F.sum(ones) - 1)
        return gold * (1 - s) + F.broadcast_mul(1 - gold, off_diagonal)

    def hybrid_forward(self, F, x1, x2):
        distances = self._compute_distances(F, x1, x2)
        log_probabilities = F.log_softmax(-distances, axis=1)
        # the child's own rule with this F, so symbols pass through unchanged
        return self.kl_loss.hybrid_forward(F, log_probabilities,
                                           self._compute_labels(F, distances))

