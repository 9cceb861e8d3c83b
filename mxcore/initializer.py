"""Weight initializers (``mx.initializer``, also ``mx.init``), MXNet 1.x semantics.

An initializer is called as ``init(desc, arr)``: it fills the NDArray ``arr`` in
place (``arr[:] = ...``: the same object and buffer) according to the name in
``desc`` (an :class:`InitDesc`, or a plain ``str`` for MXNet's legacy rules):

=============================================  =============================
name ends with                                 filled by
=============================================  =============================
``weight``                                     ``_init_weight`` (the subclass)
``bias``, ``beta``                             zeros
``gamma``                                      ones
``running_mean``/``moving_mean``/``moving_avg``  zeros
``moving_inv_var``                             zeros
``running_var``/``moving_var``                 ones
``min`` / ``max``                              zeros / ones
=============================================  =============================

``desc.attrs["__init__"]`` (an initializer, a name or a ``dumps()`` string)
overrides the name rules: that initializer's ``_init_weight`` fills the array,
whatever the name.  Any other name raises ``ValueError`` naming the parameter.

Random initializers draw with ``mx.nd.random`` on the array's device and in its
dtype, so ``mx.random.seed(n)`` makes them reproducible.
"""
from __future__ import annotations

import json
import logging
import re
from math import sqrt

import numpy as np

from mxcore._class_registry import get_alias_func, get_create_func, get_register_func
from mxcore.ndarray.ndarray import NDArray

__all__ = ["InitDesc", "Initializer", "register", "alias", "create", "Mixed", "Zero", "One",
           "FusedRNN",
           "Constant", "Uniform", "Normal", "Orthogonal", "Xavier", "MSRAPrelu", "Bilinear",
           "LSTMBias"]


class InitDesc(str):
    """The name of a parameter (a ``str``) with its attributes.

    Parameters
    ----------
    name : str
        Name of the variable.
    attrs : dict of str to str, optional
        Attributes of the variable; ``"__init__"`` names an initializer that
        overrides the name-based rules.
    global_init : Initializer, optional
        The global initializer to fall back to (set on the first call).
    """

    def __new__(cls, name, attrs=None, global_init=None):
        ret = super().__new__(cls, name)
        ret.attrs = attrs or {}
        ret.global_init = global_init
        return ret


def _check_arr(name, arr):
    if not isinstance(arr, NDArray):
        raise TypeError(f"initializer for {str(name)!r}: arr must be an NDArray, "
                        f"got {type(arr).__name__}")


class Initializer:
    """The base class of initializers: subclasses implement ``_init_weight``."""

    def __init__(self, **kwargs):
        self._kwargs = kwargs
        self._verbose = False
        self._print_func = None

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._kwargs.items())
        return f"{type(self).__name__}({args})"

    def set_verbosity(self, verbose=False, print_func=None):
        """Log a statistic of every initialized array (default: ``norm(x)/sqrt(size)``)."""
        self._verbose = verbose
        if print_func is None:
            def print_func(x):
                a = x.asnumpy().astype(np.float64)
                return str(float(np.linalg.norm(a.ravel()) / sqrt(max(a.size, 1))))
        self._print_func = print_func
        return self

    def _verbose_print(self, desc, init, arr):
        if self._verbose and self._print_func:
            logging.info("Initialized %s as %s: %s", desc, init, self._print_func(arr))

    def dumps(self) -> str:
        """JSON ``[name, kwargs]``: ``mx.init.create(init.dumps())`` rebuilds it."""
        return json.dumps([type(self).__name__.lower(), self._kwargs])

    def __call__(self, desc, arr):
        """Fill ``arr`` in place according to ``desc`` (an InitDesc or a name)."""
        _check_arr(desc, arr)
        if not isinstance(desc, InitDesc):
            if not isinstance(desc, str):
                raise TypeError(f"initializer: the name must be a str or an InitDesc, "
                                f"got {type(desc).__name__}")
            self._legacy_init(desc, arr)
            return
        if desc.global_init is None:
            desc.global_init = self
        init = desc.attrs.get("__init__", "")
        if init:
            create(init)._init_weight(desc, arr)
            self._verbose_print(desc, init, arr)
            return
        for suffix, method in self._DESC_RULES:
            if desc.endswith(suffix):
                getattr(self, method)(desc, arr)
                self._verbose_print(desc, suffix, arr)
                return
        self._init_default(desc, arr)

    # MXNet's InitDesc rules (in order), with the BatchNorm statistics added.
    _DESC_RULES = (("weight", "_init_weight"), ("bias", "_init_bias"),
                   ("gamma", "_init_gamma"), ("beta", "_init_beta"),
                   ("running_mean", "_init_zero"), ("moving_mean", "_init_zero"),
                   ("running_var", "_init_one"), ("moving_var", "_init_one"),
                   ("moving_inv_var", "_init_zero"), ("moving_avg", "_init_zero"),
                   ("min", "_init_zero"), ("max", "_init_one"),
                   ("weight_quantize", "_init_quantized_weight"),
                   ("bias_quantize", "_init_quantized_bias"))

    def _legacy_init(self, name, arr):
        """MXNet's rules for a plain-string name."""
        if name.startswith("upsampling"):
            self._init_bilinear(name, arr)
        elif name.startswith("stn_loc") and name.endswith("weight"):
            self._init_zero(name, arr)
        elif name.startswith("stn_loc") and name.endswith("bias"):
            self._init_loc_bias(name, arr)
        elif name.endswith("bias"):
            self._init_bias(name, arr)
        elif name.endswith("gamma"):
            self._init_gamma(name, arr)
        elif name.endswith("beta"):
            self._init_beta(name, arr)
        elif name.endswith("weight"):
            self._init_weight(name, arr)
        elif name.endswith(("moving_mean", "running_mean", "moving_inv_var", "moving_avg")):
            self._init_zero(name, arr)
        elif name.endswith(("moving_var", "running_var")):
            self._init_one(name, arr)
        elif name.endswith("min"):
            self._init_zero(name, arr)
        elif name.endswith("max"):
            self._init_one(name, arr)
        else:
            self._init_default(name, arr)

    def _init_bilinear(self, _, arr):
        arr[:] = _bilinear(arr.shape)

    def _init_loc_bias(self, name, arr):
        if arr.shape[:1] != (6,):
            raise ValueError(f"stn_loc bias {str(name)!r} must have 6 elements, got shape "
                             f"{arr.shape}")
        arr[:] = np.array([1.0, 0, 0, 0, 1.0, 0])

    def _init_zero(self, _, arr):
        arr[:] = 0.0

    def _init_one(self, _, arr):
        arr[:] = 1.0

    def _init_bias(self, _, arr):
        arr[:] = 0.0

    def _init_quantized_bias(self, _, arr):
        arr[:] = 0

    def _init_gamma(self, _, arr):
        arr[:] = 1.0

    def _init_beta(self, _, arr):
        arr[:] = 0.0

    def _init_weight(self, name, arr):
        raise NotImplementedError(f"{type(self).__name__} does not implement _init_weight "
                                  f"(needed for {str(name)!r})")

    def _init_quantized_weight(self, _, arr):
        from mxcore.ops.random import randint
        arr[:] = randint(-127, 127, shape=arr.shape, dtype="int32",
                         ctx=arr.context).astype(arr.dtype)

    def _init_default(self, name, _):
        raise ValueError(
            f"Unknown initialization pattern for {str(name)!r}: default initialization is "
            "limited to names ending in 'weight', 'bias', 'gamma' (1.0), 'beta' (0.0), "
            "'running_mean'/'moving_mean' (0.0), 'running_var'/'moving_var' (1.0), 'min' "
            "(0.0) and 'max' (1.0). Give the parameter its own initializer "
            "(InitDesc attrs {'__init__': ...}, or Parameter(init=mx.init.*)).")

    def __eq__(self, other):
        if not isinstance(other, Initializer):
            return NotImplemented
        return type(self) is type(other) and self._kwargs == other._kwargs

    __hash__ = None  # as MXNet: initializers compare by value


register = get_register_func(Initializer, "initializer")
alias = get_alias_func(Initializer, "initializer")
create = get_create_func(Initializer, "initializer")


def _bilinear(shape):
    """The bilinear-upsampling kernel of MXNet's Bilinear initializer."""
    if len(shape) != 4:
        raise ValueError(f"Bilinear initialization needs a 4-d weight, got shape {shape}")
    f = np.ceil(shape[3] / 2.0)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    wx = 1 - np.abs(np.arange(shape[3]) / f - c)
    wy = 1 - np.abs(np.arange(shape[2]) / f - c)
    return np.broadcast_to(np.outer(wy, wx).astype(np.float32), shape)


def _sample_uniform(arr, low, high):
    from mxcore.ops.random import uniform
    uniform(float(low), float(high), arr.shape, out=arr)


def _sample_normal(arr, loc, scale):
    from mxcore.ops.random import normal
    normal(float(loc), float(scale), arr.shape, out=arr)


class Mixed:
    """Initialize each parameter with the initializer of the first regular
    expression that matches its name (``re.match``).

    Parameters
    ----------
    patterns : list of str
    initializers : list of Initializer
    """

    def __init__(self, patterns, initializers):
        if len(patterns) != len(initializers):
            raise ValueError(f"Mixed: {len(patterns)} patterns but {len(initializers)} "
                             "initializers")
        self.map = list(zip([re.compile(p) for p in patterns], initializers))

    def __call__(self, name, arr):
        for prog, init in self.map:
            if prog.match(name):
                init(name, arr)
                return
        raise ValueError(f"Parameter name {str(name)!r} did not match any pattern of Mixed "
                         f"({[p.pattern for p, _ in self.map]}); add a '.*' pattern at the "
                         "end with a default initializer.")


@register
@alias("zeros")
class Zero(Initializer):
    """Fills weights with 0."""

    def __init__(self):
        super().__init__()

    def _init_weight(self, _, arr):
        arr[:] = 0


@register
@alias("ones")
class One(Initializer):
    """Fills weights with 1."""

    def __init__(self):
        super().__init__()

    def _init_weight(self, _, arr):
        arr[:] = 1


@register
class Constant(Initializer):
    """Fills weights with ``value`` (a scalar, or an array broadcastable to the weight)."""

    def __init__(self, value):
        # _kwargs holds the JSON form (nested lists for arrays, as MXNet's dumps
        # leaves it), so that dumps() and == work for array values too
        super().__init__(value=_json_value(value))
        self.value = value

    def _init_weight(self, _, arr):
        arr[:] = self.value


def _json_value(value):
    """``value`` with arrays as nested lists and numpy scalars as Python numbers."""
    if isinstance(value, NDArray):
        return value.asnumpy().tolist()
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    return value


@register
class Uniform(Initializer):
    """Weights from U(-scale, scale)."""

    def __init__(self, scale=0.07):
        super().__init__(scale=scale)
        self.scale = scale

    def _init_weight(self, _, arr):
        _sample_uniform(arr, -self.scale, self.scale)


@register
class Normal(Initializer):
    """Weights from N(0, sigma^2)."""

    def __init__(self, sigma=0.01):
        super().__init__(sigma=sigma)
        self.sigma = sigma

    def _init_weight(self, _, arr):
        _sample_normal(arr, 0.0, self.sigma)


@register
class Orthogonal(Initializer):
    """An orthogonal weight scaled by ``scale`` (Saxe et al., arXiv:1312.6120).

    As MXNet: draw an (out, prod(rest)) matrix from U(-1, 1) (``rand_type="uniform"``)
    or N(0, 1) (``"normal"``), take its thin SVD ``u, s, v`` and use ``u`` if it has
    the matrix's shape (out >= in: orthonormal columns), else ``v`` (orthonormal rows).
    """

    def __init__(self, scale=1.414, rand_type="uniform"):
        if rand_type not in ("uniform", "normal"):
            raise ValueError(f"Orthogonal: rand_type must be 'uniform' or 'normal', got "
                             f"{rand_type!r}")
        super().__init__(scale=scale, rand_type=rand_type)
        self.scale = scale
        self.rand_type = rand_type

    def _init_weight(self, _, arr):
        from mxcore.ops.random import normal, uniform
        nout = arr.shape[0]
        nin = int(np.prod(arr.shape[1:]))
        if self.rand_type == "uniform":
            tmp = uniform(-1.0, 1.0, shape=(nout, nin), ctx=arr.context).asnumpy()
        else:
            tmp = normal(0.0, 1.0, shape=(nout, nin), ctx=arr.context).asnumpy()
        u, _, v = np.linalg.svd(tmp.astype(np.float64), full_matrices=False)
        res = u if u.shape == tmp.shape else v
        arr[:] = (self.scale * res).reshape(arr.shape)


@register
class Xavier(Initializer):
    """Xavier/Glorot initialization.

    For a weight of shape ``(out, in, *k)``: ``fan_in = in * prod(k)``,
    ``fan_out = out * prod(k)``; ``factor`` is ``(fan_in + fan_out) / 2`` (``"avg"``),
    ``fan_in`` (``"in"``) or ``fan_out`` (``"out"``); ``scale = sqrt(magnitude / factor)``.
    ``rnd_type="uniform"`` draws U(-scale, scale), ``"gaussian"`` draws N(0, scale^2).
    Weights with fewer than 2 dimensions are refused.
    """

    def __init__(self, rnd_type="uniform", factor_type="avg", magnitude=3):
        if rnd_type not in ("uniform", "gaussian"):
            raise ValueError(f"Xavier: rnd_type must be 'uniform' or 'gaussian', got "
                             f"{rnd_type!r}")
        if factor_type not in ("avg", "in", "out"):
            raise ValueError(f"Xavier: factor_type must be 'avg', 'in' or 'out', got "
                             f"{factor_type!r}")
        super().__init__(rnd_type=rnd_type, factor_type=factor_type, magnitude=magnitude)
        self.rnd_type = rnd_type
        self.factor_type = factor_type
        self.magnitude = float(magnitude)

    def _scale(self, name, shape) -> float:
        if len(shape) < 2:
            raise ValueError(f"Xavier initializer cannot be applied to vector {str(name)!r} "
                             f"of shape {shape}: it requires at least 2 dimensions.")
        hw_scale = float(np.prod(shape[2:])) if len(shape) > 2 else 1.0
        fan_in, fan_out = shape[1] * hw_scale, shape[0] * hw_scale
        factor = {"avg": (fan_in + fan_out) / 2.0, "in": fan_in,
                  "out": fan_out}[self.factor_type]
        if factor <= 0:
            raise ValueError(f"Xavier initializer: {str(name)!r} has an empty shape {shape}")
        return sqrt(self.magnitude / factor)

    def _init_weight(self, name, arr):
        scale = self._scale(name, arr.shape)
        if self.rnd_type == "uniform":
            _sample_uniform(arr, -scale, scale)
        else:
            _sample_normal(arr, 0.0, scale)


@register
class MSRAPrelu(Xavier):
    """He/MSRA initialization (arXiv:1502.01852): Xavier with ``rnd_type="gaussian"``
    and ``magnitude = 2 / (1 + slope^2)``."""

    def __init__(self, factor_type="avg", slope=0.25):
        magnitude = 2.0 / (1 + slope ** 2)
        super().__init__("gaussian", factor_type, magnitude)
        self._kwargs = {"factor_type": factor_type, "slope": slope}


@register
class Bilinear(Initializer):
    """Bilinear-upsampling weights (for a 4-d deconvolution weight)."""

    def __init__(self):
        super().__init__()

    def _init_weight(self, _, arr):
        arr[:] = _bilinear(arr.shape)


@register
class FusedRNN(Initializer):
    """The packed parameter vector of a fused RNN (``RNN`` op, ``mx.rnn.FusedRNNCell``):
    every weight matrix by ``init`` (the global initializer when None), biases 0, the
    LSTM forget gate's biases ``forget_bias``."""

    def __init__(self, init, num_hidden: int, num_layers: int, mode: str,
                 bidirectional: bool = False, forget_bias: float = 1.0):
        if isinstance(init, str):
            init = create(init)
        super().__init__(init=init.dumps() if init is not None else None,
                         num_hidden=num_hidden, num_layers=num_layers, mode=mode,
                         bidirectional=bidirectional, forget_bias=forget_bias)
        self._init = init
        self._cell_args = (num_hidden, num_layers, mode, bidirectional)
        self._forget_bias = forget_bias

    def _init_weight(self, desc, arr):
        from mxcore.ops.creation import zeros
        from mxcore.rnn.rnn_cell import FusedRNNCell
        num_hidden, num_layers, mode, bidirectional = self._cell_args
        cell = FusedRNNCell(num_hidden, num_layers, mode, bidirectional, prefix="")
        args = cell.unpack_weights({"parameters": zeros(arr.shape, ctx=arr.context,
                                                        dtype=arr.dtype)})
        init = self._init or getattr(desc, "global_init", None) or Uniform()
        for name, piece in args.items():
            if name.endswith("_bias"):
                piece[:] = self._forget_bias if mode == "lstm" and name.endswith("_f_bias") \
                    else 0.0
            else:
                init._init_weight(InitDesc(name), piece)
        arr[:] = cell.pack_weights(args)["parameters"]


@register
class LSTMBias(Initializer):
    """Zeros, except the forget-gate quarter (the second of the 4 LSTM gates),
    set to ``forget_bias``."""

    def __init__(self, forget_bias=1.0):
        super().__init__(forget_bias=forget_bias)
        self.forget_bias = forget_bias

    def _init_weight(self, name, arr):
        arr[:] = 0.0
        num_hidden = int(arr.shape[0] / 4)
        arr[num_hidden:2 * num_hidden] = self.forget_bias
