"""Kernels of MXNet's output layers (MakeLoss, SoftmaxOutput, the regression outputs):
forwards and the one-op backwards whose gradients ignore the gradient from above."""
from __future__ import annotations

import math

from mxcore_cpu.kernels._dtypes import FLOAT, as_float32


def kernels(xp, special):
    def make_loss(data, *, grad_scale, valid_thresh, normalization):
        return data.copy()

    def _axis(multi_output):
        return 1 if multi_output else -1

    def softmax_output(data, label, *, grad_scale, ignore_label, multi_output, use_ignore,
                       normalization, smooth_alpha):
        x = as_float32(xp, data)
        axis = _axis(multi_output)
        e = xp.exp(x - x.max(axis=axis, keepdims=True))
        return (e / e.sum(axis=axis, keepdims=True)).astype(data.dtype)

    def softmax_output_backward(out, label, *, grad_scale, ignore_label, multi_output,
                                use_ignore, normalization, smooth_alpha):
        o = as_float32(xp, out)
        axis = _axis(multi_output) % o.ndim
        classes = o.shape[axis]
        if label.shape == out.shape:  # probabilities given as the label
            target, keep = as_float32(xp, label), None
            count = out.shape[0]
        else:
            lab = label.astype(xp.float64)
            keep = (lab != ignore_label) if use_ignore else None
            idx = xp.clip(lab.astype(xp.int64), 0, classes - 1)
            shape = [1] * o.ndim
            shape[axis] = classes
            target = (xp.arange(classes).reshape(shape) ==
                      xp.expand_dims(idx, axis)).astype(o.dtype)
            if smooth_alpha:
                target = target * (1 - smooth_alpha) + (1 - target) * (
                    smooth_alpha / max(classes - 1, 1))
            count = int(keep.sum()) if keep is not None else lab.size
        grad = o - target
        if keep is not None:
            grad = grad * xp.expand_dims(keep, axis).astype(o.dtype)
        scale = grad_scale
        if normalization == "batch":
            scale = scale / out.shape[0]
        elif normalization == "valid":
            scale = scale / max(count, 1)
        if multi_output and normalization != "valid":
            # MXNet: the per-position gradients of multi_output are averaged over the
            # spatial positions too ('valid' already counts each position)
            scale = scale / max(math.prod(out.shape[2:]), 1)
        return (grad * scale).astype(out.dtype)

    def regression_output(data, label, *, kind, grad_scale):
        if kind == "logistic":
            x = as_float32(xp, data)
            return (1 / (1 + xp.exp(-x))).astype(data.dtype)
        return data.copy()

    def regression_output_backward(out, label, *, kind, grad_scale):
        diff = as_float32(xp, out) - as_float32(xp, label).reshape(out.shape)
        if kind == "mae":
            diff = xp.sign(diff)
        per_sample = out.size // out.shape[0] if out.ndim and out.shape[0] else 1
        return (diff * (grad_scale / per_sample)).astype(out.dtype)

    def svm_output(data, label, *, margin, regularization_coefficient, use_linear):
        return data.copy()

    return {"make_loss": (make_loss, FLOAT), "svm_output": (svm_output, FLOAT),
            "softmax_output": (softmax_output, FLOAT),
            "softmax_output_backward": (softmax_output_backward, FLOAT),
            "regression_output": (regression_output, FLOAT),
            "regression_output_backward": (regression_output_backward, FLOAT)}
