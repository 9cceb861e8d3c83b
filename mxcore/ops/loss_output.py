"""MXNet 1.x's output layers of symbolic training: ops whose backward ignores the
gradient coming from above and starts the chain with the loss's own gradient.

* ``make_loss`` (MakeLoss): the identity forward; the gradient is ``grad_scale`` for
  every element (divided by the batch size for ``normalization='batch'``, by the number
  of elements above ``valid_thresh`` for ``'valid'``).
* ``SoftmaxOutput`` (Softmax): softmax forward over the last axis (axis 1 with
  ``multi_output``); the gradient is ``softmax - one_hot(label)`` (label smoothing with
  ``smooth_alpha``, rows of ``ignore_label`` zeroed with ``use_ignore``), scaled by
  ``grad_scale`` and the ``normalization`` (with ``multi_output``, 'null' and 'batch'
  also divide by the number of spatial positions, as MXNet).  The label gets no
  gradient.
* ``SVMOutput``: the identity forward; the gradient of a multi-class hinge loss (y = +1
  for the label's class, -1 elsewhere): ``-2 C y max(margin - y x, 0)``, or
  ``-C y [margin > y x]`` with ``use_linear``.
* ``LinearRegressionOutput`` / ``LogisticRegressionOutput`` / ``MAERegressionOutput``:
  identity / sigmoid / identity forward; the gradient is ``out - label`` (its sign for
  MAE) times ``grad_scale`` over the number of outputs per sample.

The backward of the softmax and regression outputs is one op each; it is not
differentiated again (as in MXNet).
"""
from __future__ import annotations

from typing import Optional

from mxcore.base import MXCoreError, OperatorError
from mxcore.dispatch import invoke
from mxcore.array import NDArray
from mxcore.op import Op
from mxcore.ops.rules import same_as_first

__all__ = ["MakeLoss", "make_loss", "SoftmaxOutput", "Softmax", "softmax_output",
           "LinearRegressionOutput", "LogisticRegressionOutput", "MAERegressionOutput"]

_NORMALIZATIONS = ("null", "batch", "valid")

MAKE_LOSS = Op("make_loss", 1, attrs={"grad_scale": 1.0, "valid_thresh": 0.0,
                                      "normalization": "null"}, aliases=("MakeLoss",),
               doc="identity forward; gradient grad_scale (normalised), whatever comes above")
_SOFTMAX_ATTRS = {"grad_scale": 1.0, "ignore_label": -1.0, "multi_output": False,
                  "use_ignore": False, "normalization": "null", "smooth_alpha": 0.0}
SOFTMAX_OUTPUT = Op("softmax_output", 2, attrs=dict(_SOFTMAX_ATTRS), saves_output=True,
                    aliases=("SoftmaxOutput",),
                    doc="softmax forward; softmax - one_hot(label) backward")
SOFTMAX_OUTPUT_BACKWARD = Op("softmax_output_backward", 2, attrs=dict(_SOFTMAX_ATTRS),
                             doc="gradient of SoftmaxOutput from its output and label")
_REGRESSION_ATTRS = {"kind": "linear", "grad_scale": 1.0}
REGRESSION_OUTPUT = Op("regression_output", 2, attrs=dict(_REGRESSION_ATTRS),
                       saves_output=True, doc="Linear/Logistic/MAE RegressionOutput forward")
REGRESSION_OUTPUT_BACKWARD = Op("regression_output_backward", 2, attrs=dict(_REGRESSION_ATTRS),
                                doc="gradient of a regression output from output and label")
OPS = [MAKE_LOSS, SOFTMAX_OUTPUT, SOFTMAX_OUTPUT_BACKWARD, REGRESSION_OUTPUT,
       REGRESSION_OUTPUT_BACKWARD]
MAKE_LOSS.def_infer(same_as_first)

_REGRESSION_KINDS = ("linear", "logistic", "mae")


@MAKE_LOSS.def_grad
def _make_loss_grad(c, g):
    from mxcore.ops.creation import ones_like
    from mxcore.ops.reduce import sum as _sum
    x, a = c.inputs[0], c.attrs
    grad = ones_like(x) * a["grad_scale"]
    if a["normalization"] == "batch":
        grad = grad / x.shape[0]
    elif a["normalization"] == "valid":
        from mxcore.ops.elemwise import maximum
        grad = grad / maximum(_sum(x > a["valid_thresh"]), 1.0)
    return (grad,)


def _label_shape(data_shape, multi_output: bool):
    if multi_output:
        return (data_shape[0],) + tuple(data_shape[2:])
    return tuple(data_shape[:-1])


@SOFTMAX_OUTPUT.def_infer
def _softmax_output_infer(s, d, a):
    data, label = tuple(s[0]), tuple(s[1])
    want = _label_shape(data, a["multi_output"])
    if len(data) < 1 or (label != want and label != data):
        raise MXCoreError(f"label shape {label} does not fit data shape {data}: expected "
                          f"{want} (class indices) or {data} (probabilities)")
    return [data], [d[0]]


@SOFTMAX_OUTPUT_BACKWARD.def_infer
def _softmax_output_backward_infer(s, d, a):
    return [tuple(s[0])], [d[0]]


@SOFTMAX_OUTPUT.def_grad
def _softmax_output_grad(c, g):
    out, label = c.outputs[0], c.inputs[1]
    return invoke(SOFTMAX_OUTPUT_BACKWARD, (out, label), c.attrs), None


@REGRESSION_OUTPUT.def_infer
def _regression_infer(s, d, a):
    data, label = tuple(s[0]), tuple(s[1])
    size = lambda t: 1 if not t else __import__("math").prod(t)  # noqa: E731
    if a["kind"] not in _REGRESSION_KINDS:
        raise MXCoreError(f"kind must be one of {_REGRESSION_KINDS}, got {a['kind']!r}")
    if size(label) != size(data) or (label and data and label[0] != data[0]):
        raise MXCoreError(f"label shape {label} does not fit data shape {data}")
    return [data], [d[0]]


@REGRESSION_OUTPUT_BACKWARD.def_infer
def _regression_backward_infer(s, d, a):
    return [tuple(s[0])], [d[0]]


@REGRESSION_OUTPUT.def_grad
def _regression_grad(c, g):
    out, label = c.outputs[0], c.inputs[1]
    return invoke(REGRESSION_OUTPUT_BACKWARD, (out, label), c.attrs), None


def _fail(name: str, exc: Exception, inputs) -> OperatorError:
    return OperatorError(name, str(exc), [x.shape for x in inputs], [x.dtype for x in inputs],
                         inputs[0].context)


def make_loss(data: NDArray, grad_scale: float = 1.0, valid_thresh: float = 0.0,
              normalization: str = "null", name: Optional[str] = None) -> NDArray:
    """MXNet's MakeLoss/make_loss (module docstring)."""
    if normalization not in _NORMALIZATIONS:
        raise _fail("MakeLoss", MXCoreError(f"normalization must be one of "
                                            f"{_NORMALIZATIONS}, got {normalization!r}"),
                    [data])
    return invoke(MAKE_LOSS, (data,), {"grad_scale": float(grad_scale),
                                       "valid_thresh": float(valid_thresh),
                                       "normalization": normalization})


MakeLoss = make_loss


def softmax_output(data: NDArray, label: NDArray, grad_scale: float = 1.0,
                   ignore_label: float = -1.0, multi_output: bool = False,
                   use_ignore: bool = False, preserve_shape: bool = False,
                   normalization: str = "null", out_grad: bool = False,
                   smooth_alpha: float = 0.0, name: Optional[str] = None) -> NDArray:
    """MXNet's SoftmaxOutput (module docstring).  As in MXNet, data of more than two
    axes is taken as (batch, classes...) flattened, unless ``multi_output`` (classes on
    axis 1) or ``preserve_shape`` (classes on the last axis)."""
    inputs = (data, label)
    try:
        if normalization not in _NORMALIZATIONS:
            raise MXCoreError(f"normalization must be one of {_NORMALIZATIONS}, "
                              f"got {normalization!r}")
        if out_grad:
            raise MXCoreError("out_grad=True (scaling by the gradient from above) is not "
                              "provided")
        attrs = {"grad_scale": float(grad_scale), "ignore_label": float(ignore_label),
                 "multi_output": bool(multi_output), "use_ignore": bool(use_ignore),
                 "normalization": normalization, "smooth_alpha": float(smooth_alpha)}
        flat = data.ndim > 2 and not multi_output and not preserve_shape
        x = data.reshape((data.shape[0], -1)) if flat else data
        if preserve_shape and data.ndim > 2:
            x = data.reshape((-1, data.shape[-1]))
            lab = label.reshape((-1,)) if label.shape != data.shape else \
                label.reshape((-1, data.shape[-1]))
        else:
            lab = label
        _softmax_output_infer([x.shape, lab.shape], [x.dtype, lab.dtype], attrs)
    except (MXCoreError, TypeError, ValueError) as exc:
        raise _fail("SoftmaxOutput", exc, inputs) from None
    out = invoke(SOFTMAX_OUTPUT, (x, lab), attrs)
    return out.reshape(data.shape) if out.shape != data.shape else out


SoftmaxOutput = softmax_output
Softmax = softmax_output


def _regression(kind: str, title: str):
    def output(data: NDArray, label: NDArray, grad_scale: float = 1.0,
               name: Optional[str] = None) -> NDArray:
        inputs = (data, label)
        attrs = {"kind": kind, "grad_scale": float(grad_scale)}
        try:
            _regression_infer([data.shape, label.shape], [data.dtype, label.dtype], attrs)
        except (MXCoreError, TypeError, ValueError) as exc:
            raise _fail(title, exc, inputs) from None
        lab = label.reshape(data.shape) if label.shape != data.shape else label
        return invoke(REGRESSION_OUTPUT, (data, lab), attrs)
    output.__name__ = title
    output.__doc__ = f"MXNet's {title} (see the module docstring)."
    return output


LinearRegressionOutput = _regression("linear", "LinearRegressionOutput")
LogisticRegressionOutput = _regression("logistic", "LogisticRegressionOutput")
MAERegressionOutput = _regression("mae", "MAERegressionOutput")


# SVMOutput: the identity forward; the hinge-loss gradient backward ------------------------
SVM_OUTPUT = Op("svm_output", 2, attrs={"margin": 1.0, "regularization_coefficient": 1.0,
                                        "use_linear": False},
                doc="SVMOutput forward: the data itself")
OPS.append(SVM_OUTPUT)


@SVM_OUTPUT.def_infer
def _svm_infer(s, d, a):
    data, label = tuple(s[0]), tuple(s[1])
    if len(data) < 2 or label != data[:1] + data[2:]:
        raise MXCoreError(f"label shape {label} does not fit data shape {data}: expected "
                          f"{data[:1] + data[2:]} (class indices, classes on axis 1)")
    return [data], [d[0]]


@SVM_OUTPUT.def_grad
def _svm_grad(c, g):
    """With y = +1 for the label's class and -1 elsewhere: L1 (``use_linear``)
    -C y [margin > y x], L2 -2 C y max(margin - y x, 0); the head gradient is ignored."""
    from mxcore.ops.elemwise import maximum
    from mxcore.ops.indexing import one_hot
    from mxcore.ops.shape import moveaxis
    x, label, a = c.inputs[0], c.inputs[1], c.attrs
    hot = one_hot(label, x.shape[1], dtype=x.dtype)
    y = moveaxis(hot, -1, 1) * 2.0 - 1.0 if x.ndim > 2 else hot * 2.0 - 1.0
    slack = a["margin"] - y * x
    coef = a["regularization_coefficient"]
    if a["use_linear"]:
        return y * (slack > 0) * -coef, None
    return y * maximum(slack, 0.0) * (-2.0 * coef), None


def SVMOutput(data: NDArray, label: NDArray, margin: float = 1.0,  # noqa: N802
              regularization_coefficient: float = 1.0, use_linear: bool = False,
              name: Optional[str] = None) -> NDArray:
    """MXNet's SVMOutput: the data forward; backward, the gradient of a multi-class hinge
    loss on the class indices ``label`` (squared, or linear with ``use_linear``), scaled
    by ``regularization_coefficient`` (module docstring)."""
    inputs = (data, label)
    attrs = {"margin": float(margin),
             "regularization_coefficient": float(regularization_coefficient),
             "use_linear": bool(use_linear)}
    try:
        _svm_infer([data.shape, label.shape], [data.dtype, label.dtype], attrs)
    except MXCoreError as exc:
        raise _fail("SVMOutput", exc, inputs) from None
    return invoke(SVM_OUTPUT, inputs, attrs)


__all__ += ["SVMOutput"]
