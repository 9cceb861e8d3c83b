"""Containers and basic layers: Sequential, Dense, Dropout, the normalisation layers
(BatchNorm, BatchNormReLU, SyncBatchNorm, InstanceNorm, LayerNorm, GroupNorm), Embedding,
Flatten, Lambda."""
from __future__ import annotations

import math
import warnings
from typing import Callable, Union

from mxcore.base import MXCoreError
from mxcore.gluon.block import Block, HybridBlock, is_symbolic
from mxcore.gluon.nn.activations import Activation
from mxcore.ops.nn import FC_ACTIVATIONS


class Sequential(Block):
    """Run children in order."""

    def add(self, *blocks: Block) -> None:
        for block in blocks:
            self.register_child(block)

    def hybridize(self, active: bool = True, **kwargs) -> None:
        if not isinstance(self, HybridBlock) and self._children and \
                all(isinstance(c, HybridBlock) for c in self._children.values()):
            warnings.warn(f"All children of this Sequential layer {self.prefix!r} are "
                          "HybridBlocks. Consider using HybridSequential for the best "
                          "performance.", stacklevel=2)
        super().hybridize(active, **kwargs)

    def forward(self, x, *args):
        for block in self._children.values():
            x = block(x, *args)
            args = ()
            if isinstance(x, (tuple, list)):
                x, args = x[0], tuple(x[1:])
        return (x,) + args if args else x

    def __getitem__(self, key):
        layers = list(self._children.values())[key]
        if isinstance(layers, list):
            net = type(self)(prefix=self._prefix)
            with net.name_scope():
                net.add(*layers)
            return net
        return layers

    def __len__(self) -> int:
        return len(self._children)


class HybridSequential(HybridBlock, Sequential):
    """Run hybrid children in order (imperatively until graphs land)."""

    def add(self, *blocks: Block) -> None:
        for block in blocks:
            if not isinstance(block, HybridBlock):
                raise MXCoreError(f"HybridSequential takes HybridBlocks; {type(block).__name__} "
                                  "is not one (use Sequential)")
            self.register_child(block)

    forward = Sequential.forward


class Dense(HybridBlock):
    """``activation(dot(x, weight.T) + bias)``.  ``in_units=0`` defers the
    weight's shape to the first input."""

    _fwd_name = True

    def __init__(self, units: int, activation=None, use_bias: bool = True, flatten: bool = True,
                 dtype="float32", weight_initializer=None, bias_initializer="zeros",
                 in_units: int = 0, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self._units = int(units)
            self._in_units = int(in_units)
            self._flatten = flatten
            self.weight = self.params.get("weight", shape=(units, in_units),
                                          init=weight_initializer, dtype=dtype,
                                          allow_deferred_init=True)
            self.bias = self.params.get("bias", shape=(units,), init=bias_initializer,
                                        dtype=dtype, allow_deferred_init=True) if use_bias else None
            if activation is not None:
                self.act = Activation(activation, prefix=f"{activation}_")
            else:
                self.act = None

    def infer_shape(self, x, *args) -> None:
        n_in = math.prod(x.shape[1:]) if self._flatten else x.shape[-1]
        self.weight.shape = (self._units, n_in)

    def hybrid_forward(self, F, x, weight, bias=None):
        act = self.act
        fused = None
        if type(act) is Activation and act._act_type in FC_ACTIVATIONS and \
                not (act._forward_hooks or act._forward_pre_hooks) and not is_symbolic(x):
            # the activation runs inside the fully_connected kernel (one op, one pass)
            fused, act = act._act_type, None
        out = F.FullyConnected(x, weight, bias, no_bias=bias is None, num_hidden=self._units,
                               flatten=self._flatten, act_type=fused)
        return act(out) if act is not None else out

    def __repr__(self) -> str:
        shape = self.weight.shape
        act = repr(self.act) if self.act is not None else "linear"
        return f"Dense({shape[1] if shape[1] else None} -> {shape[0]}, {act})"


class Dropout(HybridBlock):
    """Zero a fraction ``rate`` of elements while training (inverted dropout)."""

    _fwd_name = True

    def __init__(self, rate: float, axes=(), **kwargs):
        super().__init__(**kwargs)
        self._rate = rate
        self._axes = tuple(axes)

    def hybrid_forward(self, F, x):
        return F.Dropout(x, p=self._rate, axes=self._axes)

    def __repr__(self) -> str:
        return f"Dropout(p = {self._rate}, axes={self._axes})"


class LayerNorm(HybridBlock):
    """Normalise over ``axis`` (zero mean, unit variance, plus ``epsilon``), then
    ``gamma * x_hat + beta`` (MXNet's LayerNorm).  ``center=False``/``scale=False``
    keep beta at 0/gamma at 1 (not trained); ``in_channels=0`` defers their shape
    to the first input."""

    _fwd_name = True

    def __init__(self, axis: int = -1, epsilon: float = 1e-5, center: bool = True,
                 scale: bool = True, beta_initializer="zeros", gamma_initializer="ones",
                 in_channels: int = 0, **kwargs):
        super().__init__(**kwargs)
        self._axis, self._epsilon = int(axis), float(epsilon)
        self._center, self._scale = bool(center), bool(scale)
        with self.name_scope():
            self.gamma = self.params.get("gamma", grad_req="write" if scale else "null",
                                         shape=(in_channels,), init=gamma_initializer,
                                         allow_deferred_init=True)
            self.beta = self.params.get("beta", grad_req="write" if center else "null",
                                        shape=(in_channels,), init=beta_initializer,
                                        allow_deferred_init=True)

    def infer_shape(self, x, *args) -> None:
        channels = _channels(self, x, self._axis)
        self.gamma.shape = (channels,)
        self.beta.shape = (channels,)

    def hybrid_forward(self, F, x, gamma, beta):
        _check_channels(self, x, self._axis, gamma)
        return F.LayerNorm(x, gamma, beta, axis=self._axis, eps=self._epsilon)

    def __repr__(self) -> str:
        return _repr(self, {"eps": self._epsilon, "axis": self._axis, "center": self._center,
                            "scale": self._scale}, in_channels=_width(self.gamma))


class BatchNorm(HybridBlock):
    """Batch normalisation (MXNet's BatchNorm): while training, each batch is normalised
    per channel (``axis``) by its own mean and variance, and the backward pass updates
    ``running_mean``/``running_var`` (``running = running * momentum + batch * (1 -
    momentum)``); in predict mode (or with ``use_global_stats``) the running averages
    normalise.  ``scale=False``/``center=False`` keep gamma at 1/beta at 0 (not trained);
    ``in_channels=0`` defers the parameters' shape to the first input."""

    _fwd_name = True

    def __init__(self, axis: int = 1, momentum: float = 0.9, epsilon: float = 1e-5,
                 center: bool = True, scale: bool = True, use_global_stats: bool = False,
                 beta_initializer="zeros", gamma_initializer="ones",
                 running_mean_initializer="zeros", running_variance_initializer="ones",
                 in_channels: int = 0, **kwargs):
        super().__init__(**kwargs)
        self._kwargs = {"axis": int(axis), "eps": float(epsilon), "momentum": float(momentum),
                        "fix_gamma": not scale, "use_global_stats": bool(use_global_stats)}
        self._center, self._scale = bool(center), bool(scale)
        shape = (int(in_channels),)
        with self.name_scope():
            self.gamma = self.params.get("gamma", grad_req="write" if scale else "null",
                                         shape=shape, init=gamma_initializer,
                                         allow_deferred_init=True, differentiable=scale)
            self.beta = self.params.get("beta", grad_req="write" if center else "null",
                                        shape=shape, init=beta_initializer,
                                        allow_deferred_init=True, differentiable=center)
            self.running_mean = self.params.get("running_mean", grad_req="null", shape=shape,
                                                init=running_mean_initializer,
                                                allow_deferred_init=True, differentiable=False)
            self.running_var = self.params.get("running_var", grad_req="null", shape=shape,
                                               init=running_variance_initializer,
                                               allow_deferred_init=True, differentiable=False)

    def infer_shape(self, x, *args) -> None:
        channels = _channels(self, x, self._kwargs["axis"])
        for p in (self.gamma, self.beta, self.running_mean, self.running_var):
            p.shape = (channels,)

    def hybrid_forward(self, F, x, gamma, beta, running_mean, running_var):
        _check_channels(self, x, self._kwargs["axis"], gamma)
        return F.BatchNorm(x, gamma, beta, running_mean, running_var, **self._kwargs)

    def __repr__(self) -> str:
        return _repr(self, self._kwargs, in_channels=_width(self.gamma) or None)


class BatchNormReLU(BatchNorm):
    """BatchNorm followed by ReLU (MXNet 1.9's fused layer; the same parameters)."""

    def hybrid_forward(self, F, x, gamma, beta, running_mean, running_var):
        return F.relu(super().hybrid_forward(F, x, gamma, beta, running_mean, running_var))


class SyncBatchNorm(BatchNorm):
    """MXNet's ``gluon.contrib.nn.SyncBatchNorm`` on one device, where it is BatchNorm
    over axis 1: synchronising the batch statistics across devices is not supported, so
    ``num_devices`` above 1 is refused."""

    def __init__(self, in_channels: int = 0, num_devices=None, momentum: float = 0.9,
                 epsilon: float = 1e-5, center: bool = True, scale: bool = True,
                 use_global_stats: bool = False, beta_initializer="zeros",
                 gamma_initializer="ones", running_mean_initializer="zeros",
                 running_variance_initializer="ones", **kwargs):
        ndev = 1 if num_devices is None else int(num_devices)
        if ndev != 1:
            raise MXCoreError(f"SyncBatchNorm: num_devices={num_devices} is not supported; "
                              "batch statistics are per device (use num_devices=1)")
        super().__init__(1, momentum, epsilon, center, scale, use_global_stats,
                         beta_initializer, gamma_initializer, running_mean_initializer,
                         running_variance_initializer, in_channels, **kwargs)
        self._ndev = ndev

    def __repr__(self) -> str:
        kw = {k: v for k, v in self._kwargs.items() if k != "axis"}
        return _repr(self, {**kw, "ndev": self._ndev, "key": self.prefix},
                     in_channels=_width(self.gamma) or None)


class InstanceNorm(HybridBlock):
    """Instance normalisation (MXNet's InstanceNorm): each sample's channels (``axis``)
    normalised over the remaining axes, then ``gamma * x_hat + beta`` per channel.
    ``scale=False`` (the default, as in MXNet) keeps gamma at 1 and ``center=False`` beta
    at 0 (not trained); ``in_channels=0`` defers their shape to the first input."""

    _fwd_name = True

    def __init__(self, axis: int = 1, epsilon: float = 1e-5, center: bool = True,
                 scale: bool = False, beta_initializer="zeros", gamma_initializer="ones",
                 in_channels: int = 0, **kwargs):
        super().__init__(**kwargs)
        self._axis, self._epsilon = int(axis), float(epsilon)
        self._center, self._scale = bool(center), bool(scale)
        with self.name_scope():
            self.gamma = self.params.get("gamma", grad_req="write" if scale else "null",
                                         shape=(int(in_channels),), init=gamma_initializer,
                                         allow_deferred_init=True)
            self.beta = self.params.get("beta", grad_req="write" if center else "null",
                                        shape=(int(in_channels),), init=beta_initializer,
                                        allow_deferred_init=True)

    def _check_rank(self, x) -> None:
        if not is_symbolic(x) and x.ndim < 3:
            raise MXCoreError(f"InstanceNorm {self.name!r}: input of shape {tuple(x.shape)} "
                              "needs rank >= 3 (batch, channel, spatial...)")

    def infer_shape(self, x, *args) -> None:
        self._check_rank(x)
        channels = _channels(self, x, self._axis)
        self.gamma.shape = (channels,)
        self.beta.shape = (channels,)

    def hybrid_forward(self, F, x, gamma, beta):
        self._check_rank(x)
        _check_channels(self, x, self._axis, gamma)
        if self._axis == 1 or (not is_symbolic(x) and self._axis % x.ndim == 1):
            return F.InstanceNorm(x, gamma, beta, eps=self._epsilon)
        x = F.swapaxes(x, 1, self._axis)
        return F.swapaxes(F.InstanceNorm(x, gamma, beta, eps=self._epsilon), 1, self._axis)

    def __repr__(self) -> str:
        return _repr(self, {"eps": self._epsilon, "axis": self._axis, "center": self._center,
                            "scale": self._scale}, in_channels=_width(self.gamma))


class GroupNorm(HybridBlock):
    """Group normalisation (MXNet's GroupNorm): the channels (axis 1) split into
    ``num_groups`` groups, each sample's group normalised over its channels and the
    spatial axes, then ``gamma * x_hat + beta`` with one gamma and beta per group (their
    shape is (num_groups,), as in MXNet 1.x).  ``scale=False``/``center=False`` keep
    gamma at 1/beta at 0 (not trained)."""

    _fwd_name = True

    def __init__(self, num_groups: int = 1, epsilon: float = 1e-5, center: bool = True,
                 scale: bool = True, beta_initializer="zeros", gamma_initializer="ones",
                 prefix=None, params=None):
        super().__init__(prefix=prefix, params=params)
        self._num_groups, self._epsilon = int(num_groups), float(epsilon)
        self._center, self._scale = bool(center), bool(scale)
        if self._num_groups < 1:
            raise MXCoreError(f"GroupNorm: num_groups must be positive, got {num_groups}")
        with self.name_scope():
            self.gamma = self.params.get("gamma", grad_req="write" if scale else "null",
                                         shape=(self._num_groups,), init=gamma_initializer,
                                         allow_deferred_init=True)
            self.beta = self.params.get("beta", grad_req="write" if center else "null",
                                        shape=(self._num_groups,), init=beta_initializer,
                                        allow_deferred_init=True)

    def hybrid_forward(self, F, x, gamma, beta):
        if not is_symbolic(x) and (x.ndim < 3 or x.shape[1] % self._num_groups):
            raise MXCoreError(
                f"GroupNorm {self.name!r}: input of shape {tuple(x.shape)} needs rank >= 3 "
                f"(batch, channel, spatial...) and a channel count (axis 1) divisible by "
                f"num_groups={self._num_groups}")
        return F.GroupNorm(x, gamma, beta, num_groups=self._num_groups, eps=self._epsilon)

    def __repr__(self) -> str:
        return _repr(self, {"eps": self._epsilon, "num_groups": self._num_groups,
                            "center": self._center, "scale": self._scale})


class Embedding(HybridBlock):
    """A lookup table (MXNet's Embedding): integer-valued indices of any shape (clipped
    to [0, input_dim - 1]) select rows of a (input_dim, output_dim) weight; the output
    has shape ``x.shape + (output_dim,)``.  ``sparse_grad`` is accepted for
    compatibility: the weight's gradient is dense."""

    _fwd_name = True

    def __init__(self, input_dim: int, output_dim: int, dtype="float32",
                 weight_initializer=None, sparse_grad: bool = False, **kwargs):
        super().__init__(**kwargs)
        self._kwargs = {"input_dim": int(input_dim), "output_dim": int(output_dim),
                        "dtype": dtype, "sparse_grad": bool(sparse_grad)}
        with self.name_scope():
            self.weight = self.params.get("weight", shape=(int(input_dim), int(output_dim)),
                                          init=weight_initializer, dtype=dtype,
                                          allow_deferred_init=True)

    def hybrid_forward(self, F, x, weight):
        return F.Embedding(x, weight, **self._kwargs)

    def __repr__(self) -> str:
        kw = self._kwargs
        return f"{type(self).__name__}({kw['input_dim']} -> {kw['output_dim']}, {kw['dtype']})"


def _width(param) -> int:
    """A (C,) parameter's C, 0 while its shape is deferred."""
    return param.shape[0] if param.shape else 0


def _channels(block, x, axis: int) -> int:
    """The size of ``x``'s channel ``axis``, or an error naming the layer."""
    if not -x.ndim <= axis < max(x.ndim, 1):
        raise MXCoreError(f"{type(block).__name__} {block.name!r}: axis {axis} is out of range "
                          f"for input of shape {tuple(x.shape)}")
    return x.shape[axis]


def _check_channels(block, x, axis: int, param) -> None:
    """The input's channel count must be the one the parameters were made for."""
    if is_symbolic(x):
        return
    if _channels(block, x, axis) != param.shape[0]:
        raise MXCoreError(
            f"{type(block).__name__} {block.name!r}: input of shape {tuple(x.shape)} has "
            f"{x.shape[axis]} channels on axis {axis}, but the layer's parameters are for "
            f"{param.shape[0]}")


def _repr(block, fields: dict, **extra) -> str:
    """MXNet's layer repr: ``Name(key=value, ...)``."""
    body = ", ".join(f"{k}={v!r}" for k, v in {**fields, **extra}.items())
    return f"{type(block).__name__}({body})"


class Flatten(HybridBlock):
    """Reshape to (batch, -1)."""

    def hybrid_forward(self, F, x):
        # a view of the input on arrays (no copy in the training step)
        return F.flatten(x) if is_symbolic(x) else F.flatten(x, inplace=True)

    def __repr__(self) -> str:
        return "Flatten"


class Lambda(Block):
    """Wrap a function (or the name of an ``mx.nd`` function) as a Block."""

    def __init__(self, function: Union[str, Callable], prefix=None):
        super().__init__(prefix=prefix)
        if isinstance(function, str):
            from mxcore import ndarray
            if not hasattr(ndarray, function):
                raise MXCoreError(f"Lambda: mx.nd has no function {function!r}")
            function = getattr(ndarray, function)
        elif not callable(function):
            raise TypeError("Lambda needs a function or the name of an mx.nd function")
        self._func = function

    def forward(self, *args):
        return self._func(*args)

    def __repr__(self) -> str:
        return f"Lambda({getattr(self._func, '__name__', self._func)})"


class HybridLambda(HybridBlock):
    """Wrap ``function(F, x, *args)`` (or an op name) as a HybridBlock."""

    def __init__(self, function: Union[str, Callable], prefix=None):
        super().__init__(prefix=prefix)
        if isinstance(function, str):
            name = function
            function = lambda F, *args: getattr(F, name)(*args)  # noqa: E731
            function.__name__ = name
        elif not callable(function):
            raise TypeError("HybridLambda needs a function(F, x, ...) or an op name")
        self._func = function

    def hybrid_forward(self, F, x, *args):
        return self._func(F, x, *args)

    def __repr__(self) -> str:
        return f"HybridLambda({getattr(self._func, '__name__', self._func)})"
