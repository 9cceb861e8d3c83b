"""Online evaluation metrics (``mx.metric``), MXNet 1.9 semantics.

A metric accumulates ``sum_metric`` and ``num_inst`` over calls of
``update(labels, preds)`` (each a list of NDArrays, or one NDArray; host numpy
arrays are accepted too) and ``get()`` returns ``(name, sum_metric / num_inst)``
(``nan`` before any update).  Every metric also keeps ``global_sum_metric`` /
``global_num_inst``: ``reset_local()`` clears only the local pair, ``reset()``
both, and ``get_global()`` reads the global pair.

What one "instance" is follows MXNet 1.9 exactly, and differs between metrics:

* ``Accuracy``, ``TopKAccuracy``: one per sample (``num_inst += batch size``);
* ``CrossEntropy``, ``NegativeLogLikelihood``: the summed ``-log p[label]``,
  one instance per sample (the value is the mean over all samples);
* ``MAE``, ``MSE``, ``RMSE``: the *mean of each (label, pred) pair* is added
  and ``num_inst += 1`` per pair: the value is the mean of per-batch means
  (per-batch RMSEs for RMSE), not the mean over all samples;
* ``F1``/``MCC`` with ``average="macro"``: one score per ``update`` call,
  averaged; ``"micro"``: one score over the counts of every update;
* ``Loss``: the sum of the predictions over their size;
* ``Perplexity``: ``exp`` of the mean negative log-probability.

Values are computed on the host with numpy (``.asnumpy()``), vectorised.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as _np

from mxcore._class_registry import get_alias_func, get_create_func, get_register_func
from mxcore.ndarray.ndarray import NDArray

__all__ = ["EvalMetric", "CompositeEvalMetric", "Accuracy", "TopKAccuracy", "F1", "MCC",
           "Perplexity", "MAE", "MSE", "RMSE", "CrossEntropy", "NegativeLogLikelihood",
           "PearsonCorrelation", "PCC", "Loss", "Torch", "Caffe", "CustomMetric", "np",
           "create", "register", "alias", "check_label_shapes"]

_numeric_types = (float, int, _np.generic)


def _is_array(x) -> bool:
    return isinstance(x, (NDArray, _np.ndarray))


def _host(x) -> _np.ndarray:
    """A host numpy view/copy of an NDArray (or anything numpy takes)."""
    if isinstance(x, NDArray):
        return x.asnumpy()
    return _np.asarray(x)


def _shape_of(x):
    return tuple(x.shape) if hasattr(x, "shape") else _np.shape(x)


def check_label_shapes(labels, preds, wrap=False, shape=False):
    """Check that labels and predictions agree, as MXNet does.

    Parameters
    ----------
    labels, preds : list of NDArray, or NDArray
    wrap : bool
        Wrap a single array (NDArray or numpy) in a list.
    shape : bool
        Compare ``.shape``; otherwise only ``len()``.

    Raises ``ValueError`` when they differ; returns ``(labels, preds)``.
    """
    if not shape:
        label_shape, pred_shape = len(labels), len(preds)
    else:
        label_shape, pred_shape = _shape_of(labels), _shape_of(preds)
    if label_shape != pred_shape:
        raise ValueError(f"Shape of labels {label_shape} does not match shape of "
                         f"predictions {pred_shape}")
    if wrap:
        if _is_array(labels):
            labels = [labels]
        if _is_array(preds):
            preds = [preds]
    return labels, preds


class EvalMetric:
    """Base class of evaluation metrics.

    Parameters
    ----------
    name : str
        Name of this metric instance for display.
    output_names : list of str, or None
        Names of the predictions used by ``update_dict`` (default: all).
    label_names : list of str, or None
        Names of the labels used by ``update_dict`` (default: all).
    """

    def __init__(self, name, output_names=None, label_names=None, **kwargs):
        self.name = str(name)
        self.output_names = output_names
        self.label_names = label_names
        self._has_global_stats = kwargs.pop("has_global_stats", False)
        self._kwargs = kwargs
        self.reset()

    def __str__(self):
        return f"EvalMetric: {dict(self.get_name_value())}"

    def get_config(self):
        """The configuration: ``metric.create(**config)`` rebuilds the metric."""
        config = self._kwargs.copy()
        config.update({"metric": type(self).__name__, "name": self.name,
                       "output_names": self.output_names, "label_names": self.label_names})
        return config

    def update_dict(self, label, pred):
        """Update with name -> array dicts, picking ``label_names``/``output_names``."""
        if self.output_names is not None:
            pred = [pred[name] for name in self.output_names]
        else:
            pred = list(pred.values())
        if self.label_names is not None:
            label = [label[name] for name in self.label_names]
        else:
            label = list(label.values())
        self.update(label, pred)

    def update(self, labels, preds):
        """Accumulate one batch: ``labels`` and ``preds`` are lists of arrays (or one array)."""
        raise NotImplementedError()

    def reset(self):
        """Clear the local and the global statistics."""
        self.num_inst = 0
        self.sum_metric = 0.0
        self.global_num_inst = 0
        self.global_sum_metric = 0.0

    def reset_local(self):
        """Clear the local statistics only."""
        self.num_inst = 0
        self.sum_metric = 0.0

    def get(self):
        """``(name, value)`` of the local statistics (``nan`` when empty)."""
        if self.num_inst == 0:
            return (self.name, float("nan"))
        return (self.name, self.sum_metric / self.num_inst)

    def get_global(self):
        """``(name, value)`` of the global statistics (``nan`` when empty)."""
        if self._has_global_stats:
            if self.global_num_inst == 0:
                return (self.name, float("nan"))
            return (self.name, self.global_sum_metric / self.global_num_inst)
        return self.get()

    def get_name_value(self):
        """``[(name, value), ...]`` of ``get()``."""
        name, value = self.get()
        if not isinstance(name, list):
            name = [name]
        if not isinstance(value, list):
            value = [value]
        return list(zip(name, value))

    def get_global_name_value(self):
        """``[(name, value), ...]`` of ``get_global()``."""
        if self._has_global_stats:
            name, value = self.get_global()
            if not isinstance(name, list):
                name = [name]
            if not isinstance(value, list):
                value = [value]
            return list(zip(name, value))
        return self.get_name_value()

    def _add(self, sum_metric, num_inst):
        self.sum_metric += sum_metric
        self.global_sum_metric += sum_metric
        self.num_inst += num_inst
        self.global_num_inst += num_inst


register = get_register_func(EvalMetric, "metric")
alias = get_alias_func(EvalMetric, "metric")
_create = get_create_func(EvalMetric, "metric")


def create(metric, *args, **kwargs):
    """Create a metric from a name (``'acc'``, ``'ce'``, ``'top_k_accuracy'``, ...), an
    EvalMetric instance (returned as is), a metric class, a list of any of these (a
    CompositeEvalMetric), a config dict, or a function ``feval(label, pred)`` of numpy
    arrays (a CustomMetric)."""
    if isinstance(metric, type) and issubclass(metric, EvalMetric):
        return metric(*args, **kwargs)
    if callable(metric) and not isinstance(metric, EvalMetric):
        return CustomMetric(metric, *args, **kwargs)
    if isinstance(metric, list):
        composite = CompositeEvalMetric()
        for child in metric:
            composite.add(create(child, *args, **kwargs))
        return composite
    return _create(metric, *args, **kwargs)


@register
@alias("composite")
class CompositeEvalMetric(EvalMetric):
    """Several metrics updated together; ``get()`` returns ``([names], [values])``."""

    def __init__(self, metrics=None, name="composite", output_names=None, label_names=None):
        self.metrics = []
        super().__init__(name, output_names=output_names, label_names=label_names,
                         has_global_stats=True)
        self.metrics = [create(i) for i in (metrics or [])]

    def add(self, metric):
        """Add a child metric (anything ``create`` takes)."""
        self.metrics.append(create(metric))

    def get_metric(self, index):
        """The child metric at ``index``."""
        try:
            return self.metrics[index]
        except IndexError:
            raise ValueError(f"Metric index {index} is out of range 0 and "
                             f"{len(self.metrics)}") from None

    def update_dict(self, labels, preds):
        if self.label_names is not None:
            labels = OrderedDict([i for i in labels.items() if i[0] in self.label_names])
        if self.output_names is not None:
            preds = OrderedDict([i for i in preds.items() if i[0] in self.output_names])
        for metric in self.metrics:
            metric.update_dict(labels, preds)

    def update(self, labels, preds):
        for metric in self.metrics:
            metric.update(labels, preds)

    def reset(self):
        for metric in getattr(self, "metrics", []):
            metric.reset()

    def reset_local(self):
        for metric in self.metrics:
            metric.reset_local()

    def _collect(self, method):
        names, values = [], []
        for metric in self.metrics:
            name, value = getattr(metric, method)()
            if isinstance(name, str):
                name = [name]
            if isinstance(value, _numeric_types):
                value = [value]
            names.extend(name)
            values.extend(value)
        return (names, values)

    def get(self):
        return self._collect("get")

    def get_global(self):
        return self._collect("get_global")

    def get_config(self):
        config = super().get_config()
        config.update({"metrics": [i.get_config() for i in self.metrics]})
        return config


########################
# CLASSIFICATION METRICS
########################


@register
@alias("acc")
class Accuracy(EvalMetric):
    """Fraction of samples whose predicted class equals the label.

    Predictions whose shape differs from the label's are arg-maxed along ``axis``;
    both are then compared as int32 (flattened).
    """

    def __init__(self, axis=1, name="accuracy", output_names=None, label_names=None):
        super().__init__(name, axis=axis, output_names=output_names, label_names=label_names,
                         has_global_stats=True)
        self.axis = axis

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            pred_label = _host(pred)
            label = _host(label)
            if pred_label.shape != label.shape:
                pred_label = _np.argmax(pred_label, axis=self.axis)
            pred_label = pred_label.astype("int32").ravel()
            label = label.astype("int32").ravel()
            check_label_shapes(label, pred_label)
            self._add(int((pred_label == label).sum()), len(pred_label))


@register
@alias("top_k_accuracy", "top_k_acc")
class TopKAccuracy(EvalMetric):
    """Fraction of samples whose label is among the ``top_k`` highest predictions
    (2-d predictions ``(batch, classes)``); the name is ``top_k_accuracy_<k>``."""

    def __init__(self, top_k=1, name="top_k_accuracy", output_names=None, label_names=None):
        super().__init__(name, top_k=top_k, output_names=output_names,
                         label_names=label_names, has_global_stats=True)
        self.top_k = top_k
        if not self.top_k > 1:
            raise ValueError(f"TopKAccuracy: top_k must be more than 1, got {top_k} "
                             "(use Accuracy for top_k = 1)")
        self._base_name = self.name
        self.name += f"_{self.top_k}"

    def get_config(self):
        config = super().get_config()
        config["name"] = self._base_name     # create(**config) appends "_<k>" again
        return config

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            pred = _host(pred).astype("float32")
            if pred.ndim > 2:
                raise ValueError(f"TopKAccuracy: predictions must have at most 2 dims, got "
                                 f"shape {pred.shape}")
            label = _host(label).astype("int32")
            check_label_shapes(label, pred)
            num_samples = pred.shape[0]
            label = label.ravel()
            if pred.ndim == 1:
                # MXNet's rule for 1-d predictions: the arg-partition indices against labels
                top = _np.argpartition(pred, -min(self.top_k, pred.shape[0]))
                correct = int((top == label).sum())
            else:
                if label.size != num_samples:
                    raise ValueError(f"TopKAccuracy: {label.size} labels for {num_samples} "
                                     "predictions")
                num_classes = pred.shape[1]
                k = min(num_classes, self.top_k)
                top = _np.argpartition(pred, num_classes - k, axis=1)[:, num_classes - k:]
                correct = int((top == label[:, None]).sum())
            self._add(correct, num_samples)


class _BinaryClassificationMetrics:
    """True/false positive/negative counts (local and global) for binary metrics."""

    def __init__(self):
        self.reset_stats()

    def update_binary_stats(self, label, pred):
        """Count one (label, pred) pair: the positive class is 1, ``pred`` is
        ``(batch, 2)`` scores arg-maxed along axis 1."""
        pred = _host(pred)
        label = _host(label).astype("int32")
        check_label_shapes(label, pred)
        if pred.ndim != 2:
            raise ValueError(f"binary classification metrics need (batch, classes) "
                             f"predictions, got shape {pred.shape}")
        pred_label = _np.argmax(pred, axis=1)
        label = label.ravel()
        if label.size != pred_label.size:
            raise ValueError(f"{label.size} labels for {pred_label.size} predictions")
        if len(_np.unique(label)) > 2:
            raise ValueError(f"{self.__class__.__name__} currently only supports binary "
                             "classification.")
        pred_true = pred_label == 1
        label_true = label == 1
        tp = int(_np.count_nonzero(pred_true & label_true))
        fp = int(_np.count_nonzero(pred_true & ~label_true))
        fn = int(_np.count_nonzero(~pred_true & label_true))
        tn = int(_np.count_nonzero(~pred_true & ~label_true))
        self.true_positives += tp
        self.global_true_positives += tp
        self.false_positives += fp
        self.global_false_positives += fp
        self.false_negatives += fn
        self.global_false_negatives += fn
        self.true_negatives += tn
        self.global_true_negatives += tn

    @staticmethod
    def _ratio(a, b):
        return float(a) / (a + b) if a + b > 0 else 0.0

    @property
    def precision(self):
        return self._ratio(self.true_positives, self.false_positives)

    @property
    def global_precision(self):
        return self._ratio(self.global_true_positives, self.global_false_positives)

    @property
    def recall(self):
        return self._ratio(self.true_positives, self.false_negatives)

    @property
    def global_recall(self):
        return self._ratio(self.global_true_positives, self.global_false_negatives)

    @staticmethod
    def _f(p, r):
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    @property
    def fscore(self):
        return self._f(self.precision, self.recall)

    @property
    def global_fscore(self):
        return self._f(self.global_precision, self.global_recall)

    def matthewscc(self, use_global=False):
        """Matthews correlation coefficient (zero factors of the denominator count as 1)."""
        if use_global:
            if not self.global_total_examples:
                return 0.0
            tp, fp = float(self.global_true_positives), float(self.global_false_positives)
            fn, tn = float(self.global_false_negatives), float(self.global_true_negatives)
        else:
            if not self.total_examples:
                return 0.0
            tp, fp = float(self.true_positives), float(self.false_positives)
            fn, tn = float(self.false_negatives), float(self.true_negatives)
        denom = 1.0
        for t in (tp + fp, tp + fn, tn + fp, tn + fn):
            if t != 0.0:
                denom *= t
        return (tp * tn - fp * fn) / math.sqrt(denom)

    @property
    def total_examples(self):
        return (self.false_negatives + self.false_positives + self.true_negatives
                + self.true_positives)

    @property
    def global_total_examples(self):
        return (self.global_false_negatives + self.global_false_positives
                + self.global_true_negatives + self.global_true_positives)

    def local_reset_stats(self):
        self.false_positives = 0
        self.false_negatives = 0
        self.true_positives = 0
        self.true_negatives = 0

    def reset_stats(self):
        self.local_reset_stats()
        self.global_false_positives = 0
        self.global_false_negatives = 0
        self.global_true_positives = 0
        self.global_true_negatives = 0


def _check_average(cls, average):
    if average not in ("macro", "micro"):
        raise ValueError(f"{cls}: average must be 'macro' or 'micro', got {average!r}")


class _BinaryScore(EvalMetric):
    """Shared machinery of F1 and MCC: binary counts, then a score per update
    call averaged over calls (``"macro"``) or one score over all counts
    (``"micro"``)."""

    def __init__(self, name, output_names, label_names, average):
        _check_average(type(self).__name__, average)
        self.average = average
        self.metrics = _BinaryClassificationMetrics()
        super().__init__(name, output_names=output_names, label_names=label_names,
                         average=average, has_global_stats=True)

    def _score(self, use_global: bool) -> float:
        raise NotImplementedError

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            self.metrics.update_binary_stats(label, pred)
        m = self.metrics
        if self.average == "macro":
            self.sum_metric += self._score(False)
            self.global_sum_metric += self._score(True)
            self.num_inst += 1
            self.global_num_inst += 1
            m.reset_stats()
        else:
            self.sum_metric = self._score(False) * m.total_examples
            self.global_sum_metric = self._score(True) * m.global_total_examples
            self.num_inst = m.total_examples
            self.global_num_inst = m.global_total_examples

    def reset(self):
        self.sum_metric = 0.0
        self.num_inst = 0
        self.global_num_inst = 0
        self.global_sum_metric = 0.0
        self.metrics.reset_stats()

    def reset_local(self):
        self.sum_metric = 0.0
        self.num_inst = 0
        self.metrics.local_reset_stats()


@register
class F1(_BinaryScore):
    """Binary F1 score (positive class 1; predictions ``(batch, 2)`` arg-maxed).

    ``average="macro"``: the F1 of each ``update`` call, averaged over calls;
    ``"micro"``: one F1 over the counts of all calls.
    """

    def __init__(self, name="f1", output_names=None, label_names=None, average="macro"):
        super().__init__(name, output_names, label_names, average)

    def _score(self, use_global: bool) -> float:
        return self.metrics.global_fscore if use_global else self.metrics.fscore


@register
class MCC(_BinaryScore):
    """Binary Matthews correlation coefficient (``average`` as for F1)."""

    def __init__(self, name="mcc", output_names=None, label_names=None, average="macro"):
        super().__init__(name, output_names, label_names, average)

    def _score(self, use_global: bool) -> float:
        return self.metrics.matthewscc(use_global=use_global)


@register
class Perplexity(EvalMetric):
    """``exp(-mean(log p[label]))`` over the predictions' ``axis`` (probabilities are
    clipped below at 1e-10; labels equal to ``ignore_label`` are not counted)."""

    def __init__(self, ignore_label, axis=-1, name="perplexity", output_names=None,
                 label_names=None):
        super().__init__(name, ignore_label=ignore_label, axis=axis,
                         output_names=output_names, label_names=label_names,
                         has_global_stats=True)
        self.ignore_label = ignore_label
        self.axis = axis

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        loss = 0.0
        num = 0
        for label, pred in zip(labels, preds):
            label = _host(label).reshape(-1)
            pred = _host(pred)
            if pred.ndim == 0 or label.size * pred.shape[self.axis] != pred.size:
                raise ValueError(f"Perplexity: shape mismatch: labels {label.shape} vs "
                                 f"predictions {pred.shape} (axis {self.axis})")
            probs = _np.moveaxis(pred, self.axis, -1).reshape(-1, pred.shape[self.axis])
            idx = _np.clip(label.astype(_np.int64), 0, probs.shape[1] - 1)
            prob = probs[_np.arange(probs.shape[0]), idx].astype(_np.float64)
            if self.ignore_label is not None:
                ignore = label == self.ignore_label
                num -= int(ignore.sum())
                prob = _np.where(ignore, 1.0, prob)
            loss -= float(_np.sum(_np.log(_np.maximum(1e-10, prob))))
            num += prob.size
        self._add(loss, num)

    def get(self):
        if self.num_inst == 0:
            return (self.name, float("nan"))
        return (self.name, math.exp(self.sum_metric / self.num_inst))

    def get_global(self):
        if self.global_num_inst == 0:
            return (self.name, float("nan"))
        return (self.name, math.exp(self.global_sum_metric / self.global_num_inst))


####################
# REGRESSION METRICS
####################


def _regression_pair(label, pred):
    label = _host(label).astype(_np.float64, copy=False)
    pred = _host(pred).astype(_np.float64, copy=False)
    if label.ndim == 1:
        label = label.reshape(label.shape[0], 1)
    if pred.ndim == 1:
        pred = pred.reshape(pred.shape[0], 1)
    return label, pred


class _PairwiseError(EvalMetric):
    """MAE, MSE and RMSE: ``_error(label, pred)`` of each (label, pred) pair,
    averaged over pairs (``num_inst += 1`` per pair, as MXNet 1.x)."""

    def __init__(self, name, output_names=None, label_names=None):
        super().__init__(name, output_names=output_names, label_names=label_names,
                         has_global_stats=True)

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            self._add(float(self._error(*_regression_pair(label, pred))), 1)


@register
class MAE(_PairwiseError):
    """Mean absolute error: the mean ``|label - pred|`` of each pair, averaged over pairs."""

    def __init__(self, name="mae", output_names=None, label_names=None):
        super().__init__(name, output_names, label_names)

    @staticmethod
    def _error(label, pred):
        return _np.abs(label - pred).mean()


@register
class MSE(_PairwiseError):
    """Mean squared error: the mean ``(label - pred)^2`` of each pair, averaged over pairs."""

    def __init__(self, name="mse", output_names=None, label_names=None):
        super().__init__(name, output_names, label_names)

    @staticmethod
    def _error(label, pred):
        return ((label - pred) ** 2.0).mean()


@register
class RMSE(_PairwiseError):
    """Root mean squared error of each pair, averaged over pairs."""

    def __init__(self, name="rmse", output_names=None, label_names=None):
        super().__init__(name, output_names, label_names)

    @staticmethod
    def _error(label, pred):
        return _np.sqrt(((label - pred) ** 2.0).mean())


def _label_probs(cls, label, pred):
    label = _host(label).ravel()
    pred = _host(pred)
    if pred.ndim != 2 or label.shape[0] != pred.shape[0]:
        raise ValueError(f"{cls}: need (batch, classes) predictions and batch labels, got "
                         f"labels {label.shape} and predictions {pred.shape}")
    n = label.shape[0]
    return pred[_np.arange(n), label.astype(_np.int64)].astype(_np.float64), n


@register
@alias("ce")
class CrossEntropy(EvalMetric):
    """Mean over samples of ``-log(p[label] + eps)`` (predictions are probabilities)."""

    def __init__(self, eps=1e-12, name="cross-entropy", output_names=None, label_names=None):
        super().__init__(name, eps=eps, output_names=output_names, label_names=label_names,
                         has_global_stats=True)
        self.eps = eps

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            prob, n = _label_probs(type(self).__name__, label, pred)
            self._add(float((-_np.log(prob + self.eps)).sum()), n)


@register
@alias("nll_loss")
class NegativeLogLikelihood(CrossEntropy):
    """Mean over samples of ``-log(p[label] + eps)`` (CrossEntropy under MXNet's
    other name)."""

    def __init__(self, eps=1e-12, name="nll-loss", output_names=None, label_names=None):
        super().__init__(eps=eps, name=name, output_names=output_names,
                         label_names=label_names)


@register
@alias("pearsonr")
class PearsonCorrelation(EvalMetric):
    """Pearson correlation of labels and predictions: ``"macro"`` averages the
    per-pair coefficients, ``"micro"`` computes one over everything seen."""

    def __init__(self, name="pearsonr", output_names=None, label_names=None, average="macro"):
        _check_average("PearsonCorrelation", average)
        self.average = average
        super().__init__(name, output_names=output_names, label_names=label_names,
                         average=average, has_global_stats=True)

    def reset_micro(self):
        self._sse_p = 0
        self._mean_p = 0
        self._sse_l = 0
        self._mean_l = 0
        self._pred_nums = 0
        self._label_nums = 0
        self._conv = 0

    def reset(self):
        self.num_inst = 0
        self.sum_metric = 0.0
        self.global_num_inst = 0
        self.global_sum_metric = 0.0
        if self.average == "micro":
            self.reset_micro()

    @staticmethod
    def update_variance(new_values, *aggregate):
        # Welford's online algorithm (as MXNet)
        count, mean, m_2 = aggregate
        count += len(new_values)
        delta = new_values - mean
        mean += _np.sum(delta / count)
        delta_2 = new_values - mean
        m_2 += _np.sum(delta * delta_2)
        return count, mean, m_2

    def update_cov(self, label, pred):
        self._conv = self._conv + _np.sum((label - self._mean_l) * (pred - self._mean_p))

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            check_label_shapes(label, pred, False, True)
            label = _host(label).ravel().astype(_np.float64)
            pred = _host(pred).ravel().astype(_np.float64)
            if self.average == "macro":
                self._add(float(_np.corrcoef(pred, label)[0, 1]), 1)
            else:
                self.global_num_inst += 1
                self.num_inst += 1
                self._label_nums, self._mean_l, self._sse_l = \
                    self.update_variance(label, self._label_nums, self._mean_l, self._sse_l)
                self.update_cov(label, pred)
                self._pred_nums, self._mean_p, self._sse_p = \
                    self.update_variance(pred, self._pred_nums, self._mean_p, self._sse_p)

    def get(self):
        if self.num_inst == 0:
            return (self.name, float("nan"))
        if self.average == "macro":
            return (self.name, self.sum_metric / self.num_inst)
        n = self._label_nums
        r = self._conv / ((n - 1) * _np.sqrt(self._sse_p / (n - 1))
                          * _np.sqrt(self._sse_l / (n - 1)))
        return (self.name, float(r))


@register
class PCC(EvalMetric):
    """Multiclass Matthews correlation (Pearson on the K x K confusion matrix)."""

    def __init__(self, name="pcc", output_names=None, label_names=None,
                 has_global_stats=True):
        self.k = 2
        super().__init__(name=name, output_names=output_names, label_names=label_names,
                         has_global_stats=has_global_stats)

    def _grow(self, inc):
        self.lcm = _np.pad(self.lcm, ((0, inc), (0, inc)), "constant", constant_values=0)
        self.gcm = _np.pad(self.gcm, ((0, inc), (0, inc)), "constant", constant_values=0)
        self.k += inc

    @staticmethod
    def _calc_mcc(cmat):
        n = cmat.sum()
        x = cmat.sum(axis=1)
        y = cmat.sum(axis=0)
        cov_xx = _np.sum(x * (n - x))
        cov_yy = _np.sum(y * (n - y))
        if cov_xx == 0 or cov_yy == 0:
            return float("nan")
        i = cmat.diagonal()
        cov_xy = _np.sum(i * n - x * y)
        return float(cov_xy / (cov_xx * cov_yy) ** 0.5)

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            label = _host(label).astype("int32")
            pred = _host(pred)
            if pred.shape != label.shape:
                pred = pred.argmax(axis=1)
            else:
                pred = pred.astype("int32")
            pred, label = pred.ravel(), label.ravel()
            if pred.size != label.size:
                raise ValueError(f"PCC: {label.size} labels for {pred.size} predictions")
            if pred.size == 0:
                continue
            n = int(max(pred.max(), label.max()))
            if n >= self.k:
                self._grow(n + 1 - self.k)
            bcm = _np.zeros((self.k, self.k))
            _np.add.at(bcm, (pred, label), 1)
            self.lcm += bcm
            self.gcm += bcm
        self.num_inst += 1
        self.global_num_inst += 1

    @property
    def sum_metric(self):
        return self._calc_mcc(self.lcm) * self.num_inst

    @sum_metric.setter
    def sum_metric(self, value):  # the base class assigns it; it is derived here
        pass

    @property
    def global_sum_metric(self):
        return self._calc_mcc(self.gcm) * self.global_num_inst

    @global_sum_metric.setter
    def global_sum_metric(self, value):
        pass

    def reset(self):
        self.global_num_inst = 0
        self.gcm = _np.zeros((self.k, self.k))
        self.reset_local()

    def reset_local(self):
        self.num_inst = 0
        self.lcm = _np.zeros((self.k, self.k))


@register
class Loss(EvalMetric):
    """The mean of the predictions (losses); labels are ignored."""

    def __init__(self, name="loss", output_names=None, label_names=None):
        super().__init__(name, output_names=output_names, label_names=label_names,
                         has_global_stats=True)

    def update(self, _, preds):
        if _is_array(preds):
            preds = [preds]
        for pred in preds:
            pred = _host(pred)
            self._add(float(pred.sum(dtype=_np.float64)), pred.size)


@register
class Torch(Loss):
    """Dummy metric for torch criterions."""

    def __init__(self, name="torch", output_names=None, label_names=None):
        super().__init__(name, output_names=output_names, label_names=label_names)


@register
class Caffe(Loss):
    """Dummy metric for caffe criterions."""

    def __init__(self, name="caffe", output_names=None, label_names=None):
        super().__init__(name, output_names=output_names, label_names=label_names)


@register
class CustomMetric(EvalMetric):
    """A metric from ``feval(label, pred)`` on numpy arrays, returning a value
    (one instance) or a ``(sum_metric, num_inst)`` tuple."""

    def __init__(self, feval, name=None, allow_extra_outputs=False, output_names=None,
                 label_names=None):
        if name is None:
            name = getattr(feval, "__name__", type(feval).__name__)
            if "<" in name:
                name = f"custom({name})"
        super().__init__(name, feval=feval, allow_extra_outputs=allow_extra_outputs,
                         output_names=output_names, label_names=label_names,
                         has_global_stats=True)
        self._feval = feval
        self._allow_extra_outputs = allow_extra_outputs

    def update(self, labels, preds):
        if not self._allow_extra_outputs:
            labels, preds = check_label_shapes(labels, preds, True)
        else:
            labels = [labels] if _is_array(labels) else labels
            preds = [preds] if _is_array(preds) else preds
        for pred, label in zip(preds, labels):
            reval = self._feval(_host(label), _host(pred))
            if isinstance(reval, tuple):
                sum_metric, num_inst = reval
                self._add(sum_metric, num_inst)
            else:
                self._add(reval, 1)

    def get_config(self):
        raise NotImplementedError("CustomMetric cannot be serialized")


def np(numpy_feval, name=None, allow_extra_outputs=False):  # noqa: A001 - MXNet's name
    """A CustomMetric from a function of numpy arrays ``(label, pred) -> float``."""
    def feval(label, pred):
        return numpy_feval(label, pred)
    feval.__name__ = numpy_feval.__name__
    return CustomMetric(feval, name, allow_extra_outputs)
