"""Containers and basic layers: Sequential, Dense, Dropout, LayerNorm, Flatten, Lambda."""
from __future__ import annotations

import math
from typing import Callable, Union

from mxcore.base import MXCoreError
from mxcore.gluon.block import Block, HybridBlock
from mxcore.gluon.nn.activations import Activation
from mxcore.ops.nn import FC_ACTIVATIONS


class Sequential(Block):
    """Run children in order."""

    def add(self, *blocks: Block) -> None:
        for block in blocks:
            self.register_child(block)

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
                not (act._forward_hooks or act._forward_pre_hooks):
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
        channels = x.shape[self._axis]
        self.gamma.shape = (channels,)
        self.beta.shape = (channels,)

    def hybrid_forward(self, F, x, gamma, beta):
        return F.LayerNorm(x, gamma, beta, axis=self._axis, eps=self._epsilon)

    def __repr__(self) -> str:
        n = self.gamma.shape[0] if self.gamma.shape else 0
        return (f"LayerNorm(axis={self._axis}, epsilon={self._epsilon}, center={self._center}, "
                f"scale={self._scale}, in_channels={n or None})")


class BatchNorm(HybridBlock):
    """Batch normalisation (MXNet's BatchNorm): while training, each batch is normalised
    per channel (``axis``) by its own mean and variance, and the backward pass updates
    ``running_mean``/``running_var`` (``running = running * momentum + batch * (1 -
    momentum)``); in predict mode (or with ``use_global_stats``) the running averages
    normalise.  ``scale=False``/``center=False`` keep gamma at 1/beta at 0 (not trained);
    ``in_channels=0`` defers the parameters' shape to the first input."""

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
        axis = self._kwargs["axis"]
        if not -x.ndim <= axis < x.ndim:
            raise MXCoreError(f"BatchNorm {self.name!r}: axis {axis} is out of range for "
                              f"input of shape {tuple(x.shape)}")
        channels = x.shape[axis]
        for p in (self.gamma, self.beta, self.running_mean, self.running_var):
            p.shape = (channels,)

    def hybrid_forward(self, F, x, gamma, beta, running_mean, running_var):
        return F.BatchNorm(x, gamma, beta, running_mean, running_var, **self._kwargs)

    def __repr__(self) -> str:
        n = self.gamma.shape[0] if self.gamma.shape else 0
        return (f"BatchNorm(axis={self._kwargs['axis']}, eps={self._kwargs['eps']}, "
                f"momentum={self._kwargs['momentum']}, fix_gamma={self._kwargs['fix_gamma']}, "
                f"use_global_stats={self._kwargs['use_global_stats']}, "
                f"in_channels={n or None})")


class Flatten(HybridBlock):
    """Reshape to (batch, -1)."""

    def hybrid_forward(self, F, x):
        return F.flatten(x)

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
