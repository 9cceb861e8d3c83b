"""Random sampling: MXNet's ``random_*`` and ``sample_*`` operators, ``shuffle`` and
``sample_multinomial``.

Every op draws from its device's generator (``hal.DeviceType.generator``, handed to the
kernel as its first argument), so ``mx.random.seed(n)`` -- for every device or for one
-- makes the samples reproducible.

* ``random_<dist>`` (nullary): scalar parameters as attributes, plus ``shape`` and
  ``dtype``.  Out-of-domain parameters are errors where MXNet 1.9.1 checks them
  (``scale > 0`` for the normal, ``low <= high`` for the uniform...).
* ``sample_<dist>``: parameters as arrays of one shape and dtype; the output has shape
  ``param.shape + shape``, ``shape`` draws per parameter element.  As in MXNet the
  arrays are not checked.
* ``mx.nd.random.<dist>`` (``uniform``, ``normal``, ``gamma``, ...) takes numbers (the
  ``random_*`` op) or NDArrays (the ``sample_*`` op), as MXNet's does.
* ``random_pdf_<dist>(sample, *params, is_log)``: densities (or their logs) of samples
  under parameters of shape S; ``sample`` has shape S + T and the output its shape (the
  Dirichlet: alpha S + (K,), sample S + T + (K,), output S + T).  As in MXNet 1.9.1 the
  formulas are evaluated as written, without checking the support or the parameters'
  domain: the uniform density is 1 / (high - low) for any sample, the exponential's is
  lam * exp(-lam * x) for negative x too, the gamma's is NaN there.  Note that the gamma
  density takes beta as a *rate*, while ``sample_gamma``'s beta is a scale (MXNet's
  convention).  They are not random: no generator is used.

Gradients follow MXNet 1.9.1: samples are not reparameterised, so the parameters of
``sample_*`` get zero gradients.  ``multinomial(..., get_prob=True)`` also returns
``log(data[sample])``, whose gradient ``out_grad / data[sample]`` is added up per
category by ``sample_multinomial_backward`` (the REINFORCE estimator's term; not
differentiable again, as in MXNet).  ``shuffle`` has no gradient.  ``random_pdf_*``
differentiate once, with respect to the sample (zero for the discrete distributions and
the uniform) and the parameters (summed over the samples of each distribution), through
one fused backward op each (``random_pdf_<dist>_backward``): d log p times the output
gradient, times p unless ``is_log``.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import ml_dtypes
import numpy as np

import hal
from hal import to_dtype
from mxcore.base import MXCoreError, OperatorError
from mxcore.dispatch import invoke, invoke_nullary
from mxcore.array import NDArray
from mxcore.op import REQUIRED, Op
from mxcore.ops.creation import _device, _shape, zeros_like
from mxcore.ops.rules import same_as_first

__all__ = ["random_uniform", "random_normal", "random_gamma", "random_exponential",
           "random_poisson", "random_negative_binomial",
           "random_generalized_negative_binomial", "random_randint", "sample_uniform",
           "sample_normal", "sample_gamma", "sample_exponential", "sample_poisson",
           "sample_negative_binomial", "sample_generalized_negative_binomial",
           "sample_multinomial", "sample_unique_zipfian", "shuffle", "random_pdf_uniform",
           "random_pdf_normal", "random_pdf_gamma", "random_pdf_exponential",
           "random_pdf_poisson", "random_pdf_negative_binomial",
           "random_pdf_generalized_negative_binomial", "random_pdf_dirichlet"]

FLOAT_NAMES = hal.FLOAT_DTYPES + hal.BFLOAT16_DTYPES
INT_NAMES = hal.INT_DTYPES
#: sample_multinomial's output dtypes (MXNet's, plus int64 and bfloat16)
MULTINOMIAL_DTYPES = FLOAT_NAMES + ("uint8", "int32", "int64")


def _positive(v) -> bool:
    return v > 0


def _non_negative(v) -> bool:
    return v >= 0


@dataclass(frozen=True)
class Distribution:
    """One of MXNet's distributions: the ``random_*`` op's parameters (attribute
    names and MXNet's defaults), the ``sample_*`` op's input names, and the checks
    MXNet makes of ``random_*``'s parameters ((parameter, predicate, wording))."""
    params: Tuple[Tuple[str, float], ...]
    inputs: Tuple[str, ...]
    checks: Tuple[Tuple[str, Callable, str], ...] = ()
    doc: str = ""


DISTRIBUTIONS = {
    "uniform": Distribution((("low", 0.0), ("high", 1.0)), ("low", "high"),
                            doc="uniform on [low, high)"),
    "normal": Distribution((("loc", 0.0), ("scale", 1.0)), ("mu", "sigma"),
                           (("scale", _positive, "positive"),), "normal N(loc, scale^2)"),
    "gamma": Distribution((("alpha", 1.0), ("beta", 1.0)), ("alpha", "beta"),
                          (("alpha", _positive, "positive"), ("beta", _positive, "positive")),
                          "gamma with shape alpha and scale beta"),
    "exponential": Distribution((("lam", 1.0),), ("lam",), (("lam", _positive, "positive"),),
                                "exponential with rate lam"),
    "poisson": Distribution((("lam", 1.0),), ("lam",), (("lam", _non_negative, "non-negative"),),
                            "Poisson with rate lam"),
    "negative_binomial": Distribution(
        (("k", 1), ("p", 1.0)), ("k", "p"), (("k", _non_negative, "non-negative"),),
        "failures before the k-th success of trials succeeding with probability p"),
    "generalized_negative_binomial": Distribution(
        (("mu", 1.0), ("alpha", 1.0)), ("mu", "alpha"),
        (("mu", _non_negative, "non-negative"), ("alpha", _non_negative, "non-negative")),
        "counts with mean mu and variance mu + alpha * mu^2"),
}


def _shape_dtype_rule(s, d, a):
    return [tuple(a["shape"])], [to_dtype(a["dtype"])]


def _random_op(name: str, dist: Distribution) -> Op:
    names = tuple(p for p, _ in dist.params)
    op = Op(f"random_{name}", 0, attrs={**dict(dist.params), "shape": REQUIRED,
                                        "dtype": "float32"},
            needs_rng=True, volatile_attrs=names, doc=f"samples from the {dist.doc}")
    op.def_infer(_shape_dtype_rule)
    return op


def _sample_infer(inputs):
    def infer(s, d, a):
        for name, shape, dt in zip(inputs[1:], s[1:], d[1:]):
            if tuple(shape) != tuple(s[0]):
                raise MXCoreError(f"{name} shape {tuple(shape)} differs from {inputs[0]} "
                                  f"shape {tuple(s[0])}")
            if dt != d[0]:
                raise MXCoreError(f"{name} dtype {dt} differs from {inputs[0]} dtype {d[0]}")
        return [tuple(s[0]) + tuple(a["shape"])], [to_dtype(a["dtype"])]
    return infer


def _zero_grads(c, *out_grads):
    """MXNet 1.9.1 does not reparameterise samples: the parameters get zeros."""
    return tuple(zeros_like(x) for x in c.inputs)


def _sample_op(name: str, dist: Distribution) -> Op:
    op = Op(f"sample_{name}", len(dist.inputs), attrs={"shape": (), "dtype": "float32"},
            needs_rng=True, doc=f"samples from the {dist.doc}, parameters given as arrays "
                                f"({', '.join(dist.inputs)}); output param.shape + shape")
    op.def_infer(_sample_infer(dist.inputs))
    op.def_grad(_zero_grads)
    return op


RANDOM_OPS = {name: _random_op(name, dist) for name, dist in DISTRIBUTIONS.items()}
SAMPLE_OPS = {name: _sample_op(name, dist) for name, dist in DISTRIBUTIONS.items()}
RANDINT = Op("random_randint", 0, attrs={"low": REQUIRED, "high": REQUIRED, "shape": REQUIRED,
                                         "dtype": "int32"}, needs_rng=True,
             volatile_attrs=("low", "high"), doc="integers uniform on [low, high)")
RANDINT.def_infer(_shape_dtype_rule)
MULTINOMIAL = Op("sample_multinomial", 1, nout=-1,
                 attrs={"shape": (), "get_prob": False, "dtype": "int32"}, needs_rng=True,
                 saves_output=True,
                 doc="category indices drawn with the probabilities of data's last axis "
                     "(and their log-probabilities when get_prob)")
MULTINOMIAL_BACKWARD = Op("sample_multinomial_backward", 3, dtype_arg=1,
                          doc="gradient of sample_multinomial's log-probabilities: (out_grad, "
                              "data, sample) -> out_grad / data[sample] added up per category")
SHUFFLE = Op("shuffle", 1, needs_rng=True, doc="a copy with the first axis randomly permuted")
SHUFFLE.def_infer(same_as_first)
# one int64 output (batch, num_sampled + 1): the classes, then each row's number of
# draws (nullary calls return one array); sample_unique_zipfian splits it
UNIQUE_ZIPFIAN = Op("sample_unique_zipfian", 0,
                    attrs={"range_max": REQUIRED, "shape": REQUIRED}, needs_rng=True,
                    doc="per row of shape (batch, num_sampled), distinct classes of "
                        "[0, range_max) drawn from P(c) = log((c + 2) / (c + 1)) / "
                        "log(range_max + 1), then the number of draws the row took "
                        "(output (batch, num_sampled + 1))")
UNIQUE_ZIPFIAN.def_infer(lambda s, d, a: ([(a["shape"][0], a["shape"][1] + 1)],
                                          [np.dtype("int64")]))


# random_pdf_*: densities of given samples -------------------------------------------------
@dataclass(frozen=True)
class Density:
    """One of MXNet's ``random_pdf_*`` operators: its parameters (input names after
    ``sample``), the distribution, and how many trailing axes of a sample one density
    covers (the Dirichlet's K categories: 1; the others: 0)."""
    params: Tuple[str, ...]
    doc: str
    event_axes: int = 0


DENSITIES = {
    "uniform": Density(("low", "high"), "uniform on [low, high)"),
    "normal": Density(("mu", "sigma"), "normal with mean mu and standard deviation sigma"),
    "gamma": Density(("alpha", "beta"), "gamma with shape alpha and rate beta"),
    "exponential": Density(("lam",), "exponential with rate lam"),
    "poisson": Density(("lam",), "Poisson with rate lam"),
    "negative_binomial": Density(("k", "p"), "negative binomial: failures before the k-th "
                                             "success, success probability p"),
    "generalized_negative_binomial": Density(
        ("mu", "alpha"), "negative binomial with mean mu and dispersion alpha (k = 1 / alpha, "
                         "p = 1 / (1 + mu * alpha))"),
    "dirichlet": Density(("alpha",), "Dirichlet with concentrations alpha", 1),
}


def _pdf_shape(dens: Density, sample: tuple, param: tuple) -> tuple:
    """The output shape: the sample's, less the axes one density covers ((1,) rather than
    0-d for one Dirichlet sample, as MXNet 1.x)."""
    name = dens.params[0]
    batch = param[:len(param) - dens.event_axes]
    event = param[len(batch):]
    if len(event) != dens.event_axes:
        raise MXCoreError(f"{name} must have at least one axis (the categories), got shape "
                          f"{param}")
    if (len(sample) < len(param) or sample[:len(batch)] != batch
            or sample[len(sample) - len(event):] != event):
        if event:
            raise MXCoreError(f"sample shape {sample} must start with {name}'s shape without "
                              f"its last axis {batch} and end with its {event[0]} categories")
        raise MXCoreError(f"sample shape {sample} must start with {name}'s shape {param}")
    if event:
        return sample[:-len(event)] or (1,)
    return sample


def _pdf_infer(dens: Density):
    names = ("sample",) + dens.params

    def infer(s, d, a):
        for name, dt in zip(names[1:], d[1:]):
            if dt != d[0]:
                raise MXCoreError(f"{name} dtype {dt} differs from sample dtype {d[0]}")
        if not hal.is_float(d[0]):
            raise MXCoreError(f"densities take float arrays, got {d[0]}")
        for name, shape in zip(names[2:], s[2:]):
            if tuple(shape) != tuple(s[1]):
                raise MXCoreError(f"{name} shape {tuple(shape)} differs from {names[1]} shape "
                                  f"{tuple(s[1])}")
        return [_pdf_shape(dens, tuple(s[0]), tuple(s[1]))], [d[0]]
    return infer


def _pdf_backward_infer(forward):
    """(out_grad, sample, *params) -> the gradients ``grads`` asks for."""
    def infer(s, d, a):
        want = tuple(bool(v) for v in a["grads"])
        if len(want) != len(s) - 1 or not any(want):
            raise MXCoreError(f"grads must be {len(s) - 1} flags, at least one set; got "
                              f"{a['grads']!r}")
        (out,), (dt,) = forward(s[1:], d[1:], a)
        if tuple(s[0]) != out or d[0] != dt:
            raise MXCoreError(f"out_grad {tuple(s[0])} {d[0]} must be the forward output, "
                              f"{out} {dt}")
        return [tuple(x) for x, w in zip(s[1:], want) if w], [dt] * sum(want)
    return infer


def _pdf_grad(backward: Op):
    """One call of the fused ``backward`` op for the gradients that are wanted."""
    def rule(c, g):
        want = tuple(c.needs_grad(i) for i in range(len(c.inputs)))
        if not any(want):
            return (None,) * len(want)
        outs = iter(invoke(backward, (g, *c.inputs), {"is_log": c.attrs["is_log"],
                                                      "grads": want}))
        return tuple(next(outs) if w else None for w in want)
    return rule


def _pdf_backward_grad(name: str):
    def rule(c, *g):
        raise MXCoreError(f"{name}_backward has no gradient rule: {name} is differentiable "
                          "once (as in MXNet)")
    return rule


def _pdf_ops(name: str, dens: Density) -> Tuple[Op, Op]:
    n = 1 + len(dens.params)
    inputs = ", ".join(("sample",) + dens.params)
    op = Op(f"random_pdf_{name}", n, attrs={"is_log": False}, aliases=(f"_random_pdf_{name}",),
            doc=f"density (its log with is_log) of sample under the {dens.doc}: ({inputs})")
    backward = Op(f"random_pdf_{name}_backward", n + 1, nout=-1, dtype_arg=1,
                  attrs={"is_log": False, "grads": (True,) * n},
                  doc=f"random_pdf_{name}'s gradients in one op: (out_grad, {inputs}) -> the "
                      f"gradients ``grads`` asks for")
    op.def_infer(_pdf_infer(dens))
    op.def_grad(_pdf_grad(backward))
    backward.def_infer(_pdf_backward_infer(op.infer))
    backward.def_grad(_pdf_backward_grad(op.name))
    return op, backward


PDF_OPS, PDF_BACKWARD_OPS = {}, {}
for _name, _dens in DENSITIES.items():
    PDF_OPS[_name], PDF_BACKWARD_OPS[_name] = _pdf_ops(_name, _dens)
del _name, _dens

OPS = [*RANDOM_OPS.values(), RANDINT, *SAMPLE_OPS.values(), MULTINOMIAL, MULTINOMIAL_BACKWARD,
       SHUFFLE, UNIQUE_ZIPFIAN, *PDF_OPS.values(), *PDF_BACKWARD_OPS.values()]


@MULTINOMIAL.def_infer
def _multinomial_infer(s, d, a):
    if not s[0] or s[0][-1] == 0:
        raise MXCoreError(f"data must have at least one axis of categories, got shape "
                          f"{tuple(s[0])}")
    if not hal.is_float(d[0]):
        raise MXCoreError(f"data must hold float probabilities, got {d[0]}")
    # MXNet 1.x has no 0-d arrays: one distribution and no shape give shape (1,)
    shape = tuple(s[0][:-1]) + tuple(a["shape"]) or (1,)
    if a["get_prob"]:
        return [shape, shape], [to_dtype(a["dtype"]), d[0]]
    return [shape], [to_dtype(a["dtype"])]


@MULTINOMIAL.def_grad
def _multinomial_grad(c, g_sample, g_prob=None):
    if g_prob is None:  # the indices carry no gradient
        return (zeros_like(c.inputs[0]),)
    return (invoke(MULTINOMIAL_BACKWARD, (g_prob, c.inputs[0], c.outputs[0])),)


@MULTINOMIAL_BACKWARD.def_infer
def _multinomial_backward_infer(s, d, a):
    g, data, sample = (tuple(x) for x in s)
    if not data or g != sample or g[:len(data) - 1] != data[:-1]:
        raise MXCoreError(f"out_grad {g} and sample {sample} must have one shape, starting "
                          f"with data's {data} without its last axis")
    if d[0] != d[1]:
        raise MXCoreError(f"out_grad dtype {d[0]} differs from data dtype {d[1]}")
    return [data], [d[1]]


@MULTINOMIAL_BACKWARD.def_grad
def _multinomial_backward_grad(c, g):
    raise MXCoreError("sample_multinomial_backward has no gradient rule: the "
                      "log-probabilities of sample_multinomial are differentiable once, as "
                      "in MXNet")


# helpers of the public functions -------------------------------------------------------------
def _fail(op: str, msg: str, arrays=(), device=None):
    return OperatorError(op, msg, [a.shape for a in arrays], [a.dtype for a in arrays],
                         device if device is not None or not arrays else arrays[0].context)


def _out_dtype(op: str, dtype, out: Optional[NDArray], default: str, allowed) -> np.dtype:
    """The output dtype: ``dtype``, else ``out``'s, else ``default``; one of ``allowed``."""
    dt = to_dtype(dtype) if dtype is not None else (out.dtype if out is not None
                                                    else to_dtype(default))
    if out is not None and dt != out.dtype:
        raise _fail(op, f"dtype {dt.name} does not match out's dtype {out.dtype}",
                    device=out.context)
    if dt.name not in allowed:
        raise _fail(op, f"dtype must be one of {', '.join(allowed)}, got {dt.name}")
    return dt


def _out_shape(op: str, shape, out: Optional[NDArray], default) -> tuple:
    try:
        got = _shape(shape) if shape is not None else None
    except (MXCoreError, TypeError, ValueError) as exc:
        raise _fail(op, f"bad shape {shape!r}: {exc}") from None
    if out is None:
        return default if got is None else got
    return out.shape if got is None else got


def _write(op: str, result, out):
    """``result`` (an array or a tuple of them) written into ``out`` (an array or a
    list of them, of the same shapes) when one is given."""
    if out is None:
        return result
    results = result if isinstance(result, tuple) else (result,)
    outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    if len(outs) != len(results):
        raise _fail(op, f"{len(results)} outputs but {len(outs)} out arrays")
    for r, o in zip(results, outs):
        if o.shape != r.shape:
            raise _fail(op, f"out has shape {o.shape}, the result {r.shape}", (r,))
        o[...] = r
    return out


def _number(op: str, name: str, value) -> float:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    raise _fail(op, f"{name} must be a number, got {type(value).__name__}")


def _check(op: str, dist: Distribution, params: dict) -> None:
    for name, ok, wording in dist.checks:
        if not ok(params[name]):
            raise _fail(op, f"{name} must be {wording}, got {params[name]}")
    if "low" in params and params["high"] < params["low"]:
        raise _fail(op, f"low ({params['low']}) must be less than or equal to high "
                        f"({params['high']})")


# random_* ----------------------------------------------------------------------------------
def _random(dist_name: str, params: dict, shape, ctx, dtype, out) -> NDArray:
    op = RANDOM_OPS[dist_name]
    dist = DISTRIBUTIONS[dist_name]
    vals = {k: _number(op.name, k, v) for k, v in params.items()}
    if dist_name == "negative_binomial":
        if vals["k"] != int(vals["k"]):
            raise _fail(op.name, f"k must be an integer, got {params['k']}")
        vals["k"] = int(vals["k"])
    _check(op.name, dist, vals)
    dev = out.context if out is not None else _device(ctx)
    dt = _out_dtype(op.name, dtype, out, "float32", FLOAT_NAMES)
    shp = _out_shape(op.name, shape, out, (1,))
    r = invoke_nullary(op, dev, {**vals, "shape": shp, "dtype": dt.name}, dt)
    return _write(op.name, r, out)


def random_uniform(low=0.0, high=1.0, shape=None, ctx=None, dtype=None, out=None,
                   name=None) -> NDArray:
    """Samples uniform on [low, high) (MXNet's ``random_uniform``)."""
    return _random("uniform", {"low": low, "high": high}, shape, ctx, dtype, out)


def random_normal(loc=0.0, scale=1.0, shape=None, ctx=None, dtype=None, out=None,
                  name=None) -> NDArray:
    """Samples from N(loc, scale^2), scale > 0."""
    return _random("normal", {"loc": loc, "scale": scale}, shape, ctx, dtype, out)


def random_gamma(alpha=1.0, beta=1.0, shape=None, ctx=None, dtype=None, out=None,
                 name=None) -> NDArray:
    """Samples from the gamma distribution with shape alpha and scale beta."""
    return _random("gamma", {"alpha": alpha, "beta": beta}, shape, ctx, dtype, out)


def random_exponential(lam=1.0, shape=None, ctx=None, dtype=None, out=None,
                       name=None) -> NDArray:
    """Samples from the exponential distribution with rate lam (mean 1/lam)."""
    return _random("exponential", {"lam": lam}, shape, ctx, dtype, out)


def random_poisson(lam=1.0, shape=None, ctx=None, dtype=None, out=None, name=None) -> NDArray:
    """Poisson counts with rate lam, as floats."""
    return _random("poisson", {"lam": lam}, shape, ctx, dtype, out)


def random_negative_binomial(k=1, p=1.0, shape=None, ctx=None, dtype=None, out=None,
                             name=None) -> NDArray:
    """Failures before the k-th success (success probability p), as floats."""
    return _random("negative_binomial", {"k": k, "p": p}, shape, ctx, dtype, out)


def random_generalized_negative_binomial(mu=1.0, alpha=1.0, shape=None, ctx=None, dtype=None,
                                         out=None, name=None) -> NDArray:
    """Counts with mean mu and variance mu + alpha * mu^2, as floats."""
    return _random("generalized_negative_binomial", {"mu": mu, "alpha": alpha}, shape, ctx,
                   dtype, out)


def random_randint(low, high, shape=None, ctx=None, dtype=None, out=None,
                   name=None) -> NDArray:
    """Integers uniform on [low, high) (int32 unless ``dtype`` says otherwise)."""
    op = RANDINT.name
    for key, v in (("low", low), ("high", high)):
        if not isinstance(v, numbers.Integral) or isinstance(v, bool):
            raise _fail(op, f"{key} must be an integer, got {v!r}")
    low, high = int(low), int(high)
    if high <= low:
        raise _fail(op, f"high ({high}) must be greater than low ({low})")
    dev = out.context if out is not None else _device(ctx)
    dt = _out_dtype(op, dtype, out, "int32", INT_NAMES)
    info = np.iinfo(dt)
    if low < info.min or high - 1 > info.max:
        raise _fail(op, f"[{low}, {high}) does not fit in {dt.name}")
    shp = _out_shape(op, shape, out, (1,))
    r = invoke_nullary(RANDINT, dev, {"low": low, "high": high, "shape": shp,
                                      "dtype": dt.name}, dt)
    return _write(op, r, out)


# sample_* ----------------------------------------------------------------------------------
def _sample(dist_name: str, params, shape, dtype, out) -> NDArray:
    op = SAMPLE_OPS[dist_name]
    if not all(isinstance(p, NDArray) for p in params):
        raise _fail(op.name, "parameters must be NDArrays, got "
                    + ", ".join(type(p).__name__ for p in params))
    dt = _out_dtype(op.name, dtype, out, "float32", FLOAT_NAMES)
    shp = _out_shape(op.name, shape, None, ())
    if shape is None and out is not None:
        shp = tuple(out.shape[params[0].ndim:])
    attrs = {"shape": shp, "dtype": dt.name}
    try:
        op.infer_shape_dtype([p.shape for p in params], [p.dtype for p in params], attrs)
    except MXCoreError as exc:
        raise _fail(op.name, str(exc), params) from None
    return _write(op.name, invoke(op, tuple(params), attrs), out)


def sample_uniform(low: NDArray, high: NDArray, shape=None, dtype=None, out=None,
                   name=None) -> NDArray:
    """``shape`` samples uniform on [low[i], high[i]) per element i."""
    return _sample("uniform", (low, high), shape, dtype, out)


def sample_normal(mu: NDArray, sigma: NDArray, shape=None, dtype=None, out=None,
                  name=None) -> NDArray:
    """``shape`` samples from N(mu[i], sigma[i]^2) per element i."""
    return _sample("normal", (mu, sigma), shape, dtype, out)


def sample_gamma(alpha: NDArray, beta: NDArray, shape=None, dtype=None, out=None,
                 name=None) -> NDArray:
    """``shape`` gamma samples (shape alpha[i], scale beta[i]) per element i."""
    return _sample("gamma", (alpha, beta), shape, dtype, out)


def sample_exponential(lam: NDArray, shape=None, dtype=None, out=None, name=None) -> NDArray:
    """``shape`` exponential samples (rate lam[i]) per element i."""
    return _sample("exponential", (lam,), shape, dtype, out)


def sample_poisson(lam: NDArray, shape=None, dtype=None, out=None, name=None) -> NDArray:
    """``shape`` Poisson counts (rate lam[i]) per element i, as floats."""
    return _sample("poisson", (lam,), shape, dtype, out)


def sample_negative_binomial(k: NDArray, p: NDArray, shape=None, dtype=None, out=None,
                             name=None) -> NDArray:
    """``shape`` negative binomial counts (k[i], p[i]) per element i, as floats."""
    return _sample("negative_binomial", (k, p), shape, dtype, out)


def sample_generalized_negative_binomial(mu: NDArray, alpha: NDArray, shape=None, dtype=None,
                                         out=None, name=None) -> NDArray:
    """``shape`` counts with mean mu[i] and variance mu[i] + alpha[i] mu[i]^2 per element."""
    return _sample("generalized_negative_binomial", (mu, alpha), shape, dtype, out)


def _largest_exact_index(dt: np.dtype) -> int:
    if hal.is_float(dt):
        # ml_dtypes' finfo also knows bfloat16, which numpy's refuses before numpy 2
        return 2 ** (ml_dtypes.finfo(dt).nmant + 1)
    return int(np.iinfo(dt).max)


def sample_multinomial(data: NDArray, shape=None, get_prob: bool = False, dtype="int32",
                       out=None, name=None):
    """``shape`` category indices per distribution of ``data``'s last axis (output
    ``data.shape[:-1] + shape``): the first index whose running probability sum
    exceeds a uniform draw, as MXNet (rows are not normalised; a row summing to less
    than the draw gives the index ``k``).  With ``get_prob``, also ``log(data[index])``
    (differentiable: see the module docstring)."""
    op = MULTINOMIAL.name
    if not isinstance(data, NDArray):
        raise _fail(op, f"data must be an NDArray, got {type(data).__name__}")
    outs = out if isinstance(out, (tuple, list)) else (out,)
    dt = _out_dtype(op, dtype if dtype is not None else "int32", outs[0],
                    "int32", MULTINOMIAL_DTYPES)
    attrs = {"shape": _out_shape(op, shape, None, ()), "get_prob": bool(get_prob),
             "dtype": dt.name}
    try:
        _multinomial_infer((data.shape,), (data.dtype,), attrs)
    except MXCoreError as exc:
        raise _fail(op, str(exc), (data,)) from None
    if data.shape[-1] - 1 > _largest_exact_index(dt):
        raise _fail(op, f"{data.shape[-1]} categories: dtype {dt.name} cannot hold every "
                        "index exactly", (data,))
    res = invoke(MULTINOMIAL, (data,), attrs)
    if out is not None:
        return _write(op, res if get_prob else res[0], out)
    return list(res) if get_prob else res[0]


def shuffle(data: NDArray, out=None, name=None) -> NDArray:
    """A copy of ``data`` with its first axis randomly permuted."""
    if not isinstance(data, NDArray):
        raise _fail(SHUFFLE.name, f"data must be an NDArray, got {type(data).__name__}")
    if data.ndim == 0:
        raise _fail(SHUFFLE.name, "data must have at least one axis", (data,))
    return _write(SHUFFLE.name, invoke(SHUFFLE, (data,)), out)


def sample_unique_zipfian(range_max: int, shape, ctx=None, out=None, name=None):
    """MXNet's ``_sample_unique_zipfian``: ``shape`` is (batch, num_sampled); per row,
    num_sampled distinct classes of [0, range_max) drawn from the approximately
    log-uniform P(c) = log((c + 2) / (c + 1)) / log(range_max + 1), and the number of
    draws that took.  Returns ``[classes, num_trials]`` (int64)."""
    op = UNIQUE_ZIPFIAN.name
    if not isinstance(range_max, numbers.Integral) or range_max < 1:
        raise _fail(op, f"range_max must be a positive integer, got {range_max!r}")
    shp = _out_shape(op, shape, None, None)
    if len(shp) != 2:
        raise _fail(op, f"shape must be (batch_size, num_sampled), got {shape!r}")
    if shp[1] > range_max:
        raise _fail(op, f"cannot draw {shp[1]} distinct classes out of {range_max}")
    dev = _device(ctx)
    attrs = {"range_max": int(range_max), "shape": shp}
    packed = invoke_nullary(UNIQUE_ZIPFIAN, dev, attrs, np.dtype("int64"))
    res = (packed[:, :shp[1]].copy(), packed[:, shp[1]].copy())
    return list(res) if out is None else _write(op, res, out)


# mx.nd.random.*: numbers -> random_*, NDArrays -> sample_* -------------------------------
def _dispatch(dist_name: str, params: dict, shape, dtype, ctx, out) -> NDArray:
    is_nd = [isinstance(v, NDArray) for v in params.values()]
    if all(is_nd):
        return _sample(dist_name, tuple(params.values()), shape, dtype, out)
    if not any(is_nd):
        return _random(dist_name, params, shape, ctx, dtype, out)
    raise _fail(f"random.{dist_name}", "distribution parameters must all be numbers or all "
                "NDArrays, got " + ", ".join(f"{k} {type(v).__name__}"
                                             for k, v in params.items()))


def uniform(low=0.0, high=1.0, shape=None, dtype=None, ctx=None, out=None,
            name=None) -> NDArray:
    """Samples uniform on [low, high): numbers give ``shape`` samples (default (1,)),
    NDArrays ``shape`` samples per element."""
    return _dispatch("uniform", {"low": low, "high": high}, shape, dtype, ctx, out)


def normal(loc=0.0, scale=1.0, shape=None, dtype=None, ctx=None, out=None,
           name=None) -> NDArray:
    """Samples from N(loc, scale^2) (numbers or NDArrays, as ``uniform``)."""
    return _dispatch("normal", {"loc": loc, "scale": scale}, shape, dtype, ctx, out)


def randn(*shape, loc=0.0, scale=1.0, dtype=None, ctx=None, out=None, name=None) -> NDArray:
    """Normal samples of the shape given as positional arguments."""
    return normal(loc, scale, shape or None, dtype, ctx, out)


def gamma(alpha=1.0, beta=1.0, shape=None, dtype=None, ctx=None, out=None,
          name=None) -> NDArray:
    """Gamma samples with shape alpha and scale beta (mean alpha * beta)."""
    return _dispatch("gamma", {"alpha": alpha, "beta": beta}, shape, dtype, ctx, out)


def exponential(scale=1.0, shape=None, dtype=None, ctx=None, out=None, name=None) -> NDArray:
    """Exponential samples with mean ``scale`` (rate 1/scale)."""
    if isinstance(scale, NDArray):
        lam = 1.0 / scale
    else:
        scale = _number("random_exponential", "scale", scale)
        if scale <= 0:
            raise _fail("random_exponential", f"scale must be positive, got {scale}")
        lam = 1.0 / scale
    return _dispatch("exponential", {"lam": lam}, shape, dtype, ctx, out)


def poisson(lam=1.0, shape=None, dtype=None, ctx=None, out=None, name=None) -> NDArray:
    """Poisson counts with rate lam, as floats."""
    return _dispatch("poisson", {"lam": lam}, shape, dtype, ctx, out)


def negative_binomial(k=1, p=1.0, shape=None, dtype=None, ctx=None, out=None,
                      name=None) -> NDArray:
    """Failures before the k-th success (success probability p), as floats."""
    return _dispatch("negative_binomial", {"k": k, "p": p}, shape, dtype, ctx, out)


def generalized_negative_binomial(mu=1.0, alpha=1.0, shape=None, dtype=None, ctx=None,
                                  out=None, name=None) -> NDArray:
    """Counts with mean mu and variance mu + alpha * mu^2, as floats."""
    return _dispatch("generalized_negative_binomial", {"mu": mu, "alpha": alpha}, shape,
                     dtype, ctx, out)


def randint(low, high, shape=None, dtype=None, ctx=None, out=None, name=None) -> NDArray:
    """Integers uniform on [low, high) (int32 by default)."""
    return random_randint(low, high, shape, ctx, dtype, out)


def multinomial(data: NDArray, shape=None, get_prob: bool = False, out=None, dtype="int32",
                name=None):
    """Category indices drawn from the distributions on ``data``'s last axis; with
    ``get_prob`` a list ``[indices, log-probabilities]``."""
    return sample_multinomial(data, shape, get_prob, dtype, out)


def _like(dist_name: str, data: NDArray, params: dict, out) -> NDArray:
    op = RANDOM_OPS[dist_name].name
    if not isinstance(data, NDArray):
        raise _fail(op, f"data must be an NDArray, got {type(data).__name__}")
    if not hal.is_float(data.dtype):
        raise _fail(op, f"data must be a float array, got {data.dtype}", (data,))
    return _random(dist_name, params, data.shape, data.context, data.dtype, out)


def uniform_like(data=None, low=0.0, high=1.0, out=None, name=None) -> NDArray:
    """Uniform samples of ``data``'s shape, dtype and device."""
    return _like("uniform", data, {"low": low, "high": high}, out)


def normal_like(data=None, loc=0.0, scale=1.0, out=None, name=None) -> NDArray:
    """Normal samples of ``data``'s shape, dtype and device."""
    return _like("normal", data, {"loc": loc, "scale": scale}, out)


def gamma_like(data=None, alpha=1.0, beta=1.0, out=None, name=None) -> NDArray:
    """Gamma samples of ``data``'s shape, dtype and device."""
    return _like("gamma", data, {"alpha": alpha, "beta": beta}, out)


def exponential_like(data=None, lam=1.0, out=None, name=None) -> NDArray:
    """Exponential samples (rate lam) of ``data``'s shape, dtype and device."""
    return _like("exponential", data, {"lam": lam}, out)


def poisson_like(data=None, lam=1.0, out=None, name=None) -> NDArray:
    """Poisson counts of ``data``'s shape, dtype and device."""
    return _like("poisson", data, {"lam": lam}, out)


def negative_binomial_like(data=None, k=1, p=1.0, out=None, name=None) -> NDArray:
    """Negative binomial counts of ``data``'s shape, dtype and device."""
    return _like("negative_binomial", data, {"k": k, "p": p}, out)


def generalized_negative_binomial_like(data=None, mu=1.0, alpha=1.0, out=None,
                                       name=None) -> NDArray:
    """Generalized negative binomial counts of ``data``'s shape, dtype and device."""
    return _like("generalized_negative_binomial", data, {"mu": mu, "alpha": alpha}, out)


# random_pdf_* ------------------------------------------------------------------------------
def _pdf(dist_name: str, sample, params: dict, is_log, out) -> NDArray:
    op = PDF_OPS[dist_name]
    arrays = (sample, *params.values())
    names = ("sample", *params)
    bad = [f"{n} {'missing' if a is None else type(a).__name__}"
           for n, a in zip(names, arrays) if not isinstance(a, NDArray)]
    if bad:
        raise _fail(op.name, "sample and parameters must be NDArrays, got " + ", ".join(bad),
                    [a for a in arrays if isinstance(a, NDArray)])
    attrs = {"is_log": bool(is_log)}
    try:
        op.infer_shape_dtype([a.shape for a in arrays], [a.dtype for a in arrays], attrs)
    except MXCoreError as exc:
        raise _fail(op.name, str(exc), arrays) from None
    return _write(op.name, invoke(op, arrays, attrs), out)


def random_pdf_uniform(sample: NDArray = None, low: NDArray = None, high: NDArray = None,
                       is_log: bool = False, out=None, name=None) -> NDArray:
    """1 / (high - low) (its log with ``is_log``) per sample; ``low`` and ``high`` have
    shape S, ``sample`` S + T.  As in MXNet the samples are not checked against
    [low, high)."""
    return _pdf("uniform", sample, {"low": low, "high": high}, is_log, out)


def random_pdf_normal(sample: NDArray = None, mu: NDArray = None, sigma: NDArray = None,
                      is_log: bool = False, out=None, name=None) -> NDArray:
    """Normal densities (mean ``mu``, standard deviation ``sigma``, shape S) of
    ``sample`` (shape S + T)."""
    return _pdf("normal", sample, {"mu": mu, "sigma": sigma}, is_log, out)


def random_pdf_gamma(sample: NDArray = None, alpha: NDArray = None, beta: NDArray = None,
                     is_log: bool = False, out=None, name=None) -> NDArray:
    """Gamma densities with shape ``alpha`` and *rate* ``beta`` (shape S) of ``sample``
    (shape S + T)."""
    return _pdf("gamma", sample, {"alpha": alpha, "beta": beta}, is_log, out)


def random_pdf_exponential(sample: NDArray = None, lam: NDArray = None, is_log: bool = False,
                           out=None, name=None) -> NDArray:
    """Exponential densities with rate ``lam`` (shape S) of ``sample`` (shape S + T)."""
    return _pdf("exponential", sample, {"lam": lam}, is_log, out)


def random_pdf_poisson(sample: NDArray = None, lam: NDArray = None, is_log: bool = False,
                       out=None, name=None) -> NDArray:
    """Poisson probabilities with rate ``lam`` (shape S) of the counts ``sample`` (shape
    S + T; non-integer counts through the gamma function, as MXNet)."""
    return _pdf("poisson", sample, {"lam": lam}, is_log, out)


def random_pdf_negative_binomial(sample: NDArray = None, k: NDArray = None, p: NDArray = None,
                                 is_log: bool = False, out=None, name=None) -> NDArray:
    """Negative binomial probabilities of ``sample`` failures before the ``k``-th success
    (success probability ``p``; ``k`` may be real)."""
    return _pdf("negative_binomial", sample, {"k": k, "p": p}, is_log, out)


def random_pdf_generalized_negative_binomial(sample: NDArray = None, mu: NDArray = None,
                                             alpha: NDArray = None, is_log: bool = False,
                                             out=None, name=None) -> NDArray:
    """Negative binomial probabilities with mean ``mu`` and dispersion ``alpha``
    (k = 1 / alpha, p = 1 / (1 + mu * alpha)) of the counts ``sample``."""
    return _pdf("generalized_negative_binomial", sample, {"mu": mu, "alpha": alpha}, is_log,
                out)


def random_pdf_dirichlet(sample: NDArray = None, alpha: NDArray = None, is_log: bool = False,
                         out=None, name=None) -> NDArray:
    """Dirichlet densities: ``alpha`` has shape S + (K,), ``sample`` S + T + (K,), the
    output S + T ((1,) for a single sample).  As in MXNet the samples are not checked to
    lie on the simplex."""
    return _pdf("dirichlet", sample, {"alpha": alpha}, is_log, out)
