"""Fused recurrent layers (MXNet Gluon 1.x): ``RNN``, ``LSTM``, ``GRU`` over the fused
``mx.nd.RNN`` operator.

Parameters carry MXNet's names and shapes: ``l0_i2h_weight`` (G*H, input_size),
``l0_h2h_weight`` (G*H, H), ``l0_i2h_bias``, ``l0_h2h_bias`` for layer 0's forward
direction, ``r0_...`` for its reverse direction (``bidirectional``), ``l1_...`` for the
next layer (whose input size is H * directions), and ``l0_h2r_weight`` (P, H) for a
projected LSTM.  ``input_size=0`` defers the first layer's input size to the first input.

``layer(x)`` returns the output; ``layer(x, states)`` returns ``(output, new_states)``.
Inputs are (T, N, C) with ``layout='TNC'`` or (N, T, C) with ``'NTC'``; states are
(num_layers * directions, N, H) each (``begin_state``).
"""
from __future__ import annotations

import re
from typing import Callable, List, Optional

from mxcore import ndarray as _F
from mxcore.base import MXCoreError
from mxcore.gluon.block import HybridBlock
from mxcore.gluon.rnn import rnn_cell
from mxcore.gluon.rnn.rnn_cell import _call_state_func
from mxcore.ndarray import NDArray
from mxcore.ops.rnn import GATES, rnn_param_shapes

__all__ = ["RNN", "LSTM", "GRU"]

LAYOUTS = ("TNC", "NTC")


_KINDS = ("i2h_weight", "h2h_weight", "i2h_bias", "h2h_bias", "h2r_weight")


def _mxnet_order(item):
    """MXNet's registration order: layer by layer, direction by direction, then
    ``_KINDS`` (the packed vector puts all weights before all biases instead)."""
    where, kind = item[0].split("_", 1)
    return int(where[1:]), where[0] != "l", _KINDS.index(kind)


class _RNNLayer(HybridBlock):
    """The fused layers' common part (see the module docstring)."""

    def __init__(self, hidden_size: int, num_layers: int, layout: str, dropout: float,
                 bidirectional: bool, input_size: int, i2h_weight_initializer,
                 h2h_weight_initializer, i2h_bias_initializer, h2h_bias_initializer,
                 mode: str, projection_size: Optional[int], h2r_weight_initializer,
                 lstm_state_clip_min, lstm_state_clip_max, lstm_state_clip_nan: bool,
                 dtype, use_sequence_length: bool = False, **kwargs):
        super().__init__(**kwargs)
        if layout not in LAYOUTS:
            raise ValueError(f"{type(self).__name__}: layout must be one of {LAYOUTS}, got "
                             f"{layout!r}")
        if int(hidden_size) < 1 or int(num_layers) < 1:
            raise ValueError(f"{type(self).__name__}: hidden_size and num_layers must be >= 1, "
                             f"got {hidden_size} and {num_layers}")
        self._hidden_size = int(hidden_size)
        self._projection_size = int(projection_size) if projection_size else None
        self._num_layers = int(num_layers)
        self._mode = mode
        self._layout = layout
        self._dropout = dropout
        self._dir = 2 if bidirectional else 1
        self._input_size = int(input_size)
        self._i2h_weight_initializer = i2h_weight_initializer
        self._h2h_weight_initializer = h2h_weight_initializer
        self._i2h_bias_initializer = i2h_bias_initializer
        self._h2h_bias_initializer = h2h_bias_initializer
        self._h2r_weight_initializer = h2r_weight_initializer
        self._lstm_state_clip_min = lstm_state_clip_min
        self._lstm_state_clip_max = lstm_state_clip_max
        self._lstm_state_clip_nan = lstm_state_clip_nan
        self._dtype = dtype
        self._use_sequence_length = bool(use_sequence_length)
        self._gates = GATES[mode]
        inits = {"i2h_weight": i2h_weight_initializer, "h2h_weight": h2h_weight_initializer,
                 "h2r_weight": h2r_weight_initializer, "i2h_bias": i2h_bias_initializer,
                 "h2h_bias": h2h_bias_initializer}
        for name, shape in sorted(self._param_shapes(self._input_size), key=_mxnet_order):
            param = self.params.get(name, shape=shape, init=inits[name.split("_", 1)[1]],
                                    allow_deferred_init=True, dtype=dtype)
            setattr(self, name, param)

    def _param_shapes(self, input_size: int):
        """Gluon's parameters in the order the fused op packs them."""
        return rnn_param_shapes(self._mode, input_size, self._hidden_size, self._num_layers,
                                self._dir == 2, self._projection_size)

    def __repr__(self) -> str:
        shape = self.l0_i2h_weight.shape
        s = f"{type(self).__name__}({shape[1] if shape[1] else None} -> " \
            f"{shape[0] // self._gates}, {self._layout}"
        if self._num_layers != 1:
            s += f", num_layers={self._num_layers}"
        if self._dropout != 0:
            s += f", dropout={self._dropout}"
        if self._dir == 2:
            s += ", bidirectional"
        return s + ")"

    def _collect_params_with_prefix(self, prefix: str = ""):
        """MXNet 1.x's structural names (``_unfused.0.l_cell.i2h_weight``...), so
        parameter files written by MXNet load here and the other way round."""
        pattern = re.compile(r"(l|r)(\d+)_(i2h|h2h|h2r)_(weight|bias)\Z")
        out = {}
        for key, value in self._reg_params.items():
            d, layer, kind, what = pattern.match(key).groups()
            cell = f"{d}_cell." if self._dir == 2 else ""
            out[f"{prefix}_unfused.{layer}.{cell}{kind}_{what}"] = value
        for name, child in self._children.items():
            out.update(child._collect_params_with_prefix(f"{prefix}{name}."))
        return out

    def state_info(self, batch_size: int = 0) -> List[dict]:
        raise NotImplementedError

    def cast(self, dtype) -> None:
        super().cast(dtype)
        self._dtype = dtype

    def begin_state(self, batch_size: int = 0, func: Callable = _F.zeros, **kwargs) -> list:
        """Initial states, ``func(name=..., shape=..., dtype=..., **kwargs)`` each
        (``nd.zeros`` by default; ``ctx``, ``dtype``... go to ``func``)."""
        return [_call_state_func(func, f"{self.prefix}h0_{i}", dict(info or {}, **kwargs))
                for i, info in enumerate(self.state_info(batch_size))]

    def _check_input(self, inputs) -> None:
        if not isinstance(inputs, NDArray) or inputs.ndim != 3:
            shape = tuple(inputs.shape) if hasattr(inputs, "shape") else type(inputs).__name__
            raise MXCoreError(f"{type(self).__name__} {self.name!r} takes 3-d input "
                              f"({self._layout}), got {shape}")

    def infer_shape(self, inputs, *args) -> None:
        self._check_input(inputs)
        for name, shape in self._param_shapes(inputs.shape[2]):
            getattr(self, name).shape = shape

    def forward(self, inputs, states=None, sequence_length=None):
        """``inputs`` -> output, or ``(inputs, states)`` -> (output, new states)."""
        self._check_input(inputs)
        skip_states = states is None
        if skip_states:
            batch = inputs.shape[self._layout.find("N")]
            states = self.begin_state(batch, ctx=inputs.context, dtype=inputs.dtype)
        if isinstance(states, NDArray):
            states = [states]
        if self._use_sequence_length and sequence_length is None:
            raise MXCoreError(f"{type(self).__name__} {self.name!r} was made with "
                              "use_sequence_length=True: call it with sequence_length")
        out = super().forward(inputs, list(states), sequence_length)
        return out[0] if skip_states else out

    def _check_states(self, inputs, states, weight) -> None:
        """Clear errors naming this layer for inputs and states it cannot take."""
        n_in = inputs.shape[2]
        if n_in != weight.shape[1]:
            raise MXCoreError(
                f"{type(self).__name__} {self.name!r}: input of shape {tuple(inputs.shape)} "
                f"({self._layout}) has {n_in} features, but the layer takes {weight.shape[1]} "
                f"({self.l0_i2h_weight.name} has shape {tuple(weight.shape)})")
        info = self.state_info(inputs.shape[self._layout.find("N")])
        if len(states) != len(info):
            raise MXCoreError(f"{type(self).__name__} {self.name!r} takes {len(info)} "
                              f"state array(s), got {len(states)}")
        sizes = ("projection_size" if self._projection_size else "hidden_size", "hidden_size")
        for i, (state, want) in enumerate(zip(states, info)):
            if tuple(state.shape) != want["shape"]:
                raise MXCoreError(
                    f"{type(self).__name__} {self.name!r}: invalid recurrent state {i} "
                    f"({'hc'[i]}): expecting shape {want['shape']} (num_layers * "
                    f"directions, batch, {sizes[i]}), got {tuple(state.shape)}")

    def hybrid_forward(self, F, inputs, states, sequence_length=None, **params):
        self._check_states(inputs, states, params["l0_i2h_weight"])
        if self._layout == "NTC":
            inputs = F.swapaxes(inputs, 0, 1)
        flat = F.concat(*[params[name].reshape((-1,))
                          for name, _ in self._param_shapes(inputs.shape[2])], dim=0)
        args = list(states) + ([sequence_length] if self._use_sequence_length else [])
        if self._mode != "lstm":
            args.insert(1, None)  # no state_cell
        out = F.RNN(inputs, flat, *args, state_size=self._hidden_size,
                    num_layers=self._num_layers, bidirectional=self._dir == 2,
                    mode=self._mode, p=self._dropout, state_outputs=True,
                    projection_size=self._projection_size,
                    lstm_state_clip_min=self._lstm_state_clip_min,
                    lstm_state_clip_max=self._lstm_state_clip_max,
                    lstm_state_clip_nan=self._lstm_state_clip_nan,
                    use_sequence_length=self._use_sequence_length)
        outputs, new_states = out[0], list(out[1:])
        if self._layout == "NTC":
            outputs = F.swapaxes(outputs, 0, 1)
        return outputs, new_states

    def _unfuse(self):
        """The same network as a stack of cells sharing this layer's parameters."""
        if self._projection_size or self._lstm_state_clip_min is not None:
            raise MXCoreError(f"{type(self).__name__} {self.name!r}: layers with a projection "
                              "or state clipping have no cell equivalent")
        make = {"rnn_relu": lambda **kw: rnn_cell.RNNCell(self._hidden_size, "relu", **kw),
                "rnn_tanh": lambda **kw: rnn_cell.RNNCell(self._hidden_size, "tanh", **kw),
                "lstm": lambda **kw: rnn_cell.LSTMCell(self._hidden_size, **kw),
                "gru": lambda **kw: rnn_cell.GRUCell(self._hidden_size, **kw)}[self._mode]
        stack = rnn_cell.HybridSequentialRNNCell(prefix=self.prefix, params=self.params)
        with stack.name_scope():
            n_in = self.l0_i2h_weight.shape[1]  # inferred by now, or still 0
            for layer in range(self._num_layers):
                kw = {"input_size": n_in,
                      "i2h_weight_initializer": self._i2h_weight_initializer,
                      "h2h_weight_initializer": self._h2h_weight_initializer,
                      "i2h_bias_initializer": self._i2h_bias_initializer,
                      "h2h_bias_initializer": self._h2h_bias_initializer}
                if self._dir == 2:
                    stack.add(rnn_cell.BidirectionalCell(make(prefix=f"l{layer}_", **kw),
                                                         make(prefix=f"r{layer}_", **kw)))
                else:
                    stack.add(make(prefix=f"l{layer}_", **kw))
                if self._dropout > 0 and layer != self._num_layers - 1:
                    stack.add(rnn_cell.DropoutCell(self._dropout))
                n_in = self._hidden_size * self._dir
        return stack


def _state(shape, dtype) -> dict:
    return {"shape": shape, "__layout__": "LNC", "dtype": dtype}


class RNN(_RNNLayer):
    """Multi-layer Elman RNN: ``h_t = activation(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh)``
    with ``activation`` 'relu' (default) or 'tanh'."""

    def __init__(self, hidden_size: int, num_layers: int = 1, activation: str = "relu",
                 layout: str = "TNC", dropout: float = 0, bidirectional: bool = False,
                 i2h_weight_initializer=None, h2h_weight_initializer=None,
                 i2h_bias_initializer="zeros", h2h_bias_initializer="zeros",
                 input_size: int = 0, dtype="float32", **kwargs):
        if activation not in ("relu", "tanh"):
            raise ValueError(f"RNN: activation must be 'relu' or 'tanh', got {activation!r}")
        super().__init__(hidden_size, num_layers, layout, dropout, bidirectional, input_size,
                         i2h_weight_initializer, h2h_weight_initializer,
                         i2h_bias_initializer, h2h_bias_initializer, "rnn_" + activation,
                         None, None, None, None, False, dtype, **kwargs)

    def state_info(self, batch_size: int = 0) -> List[dict]:
        return [_state((self._num_layers * self._dir, batch_size, self._hidden_size),
                       self._dtype)]


class LSTM(_RNNLayer):
    """Multi-layer LSTM (gates i, f, g, o); ``projection_size`` projects h (LSTMP);
    ``state_clip_min/max`` clip the cell state after each step."""

    def __init__(self, hidden_size: int, num_layers: int = 1, layout: str = "TNC",
                 dropout: float = 0, bidirectional: bool = False, input_size: int = 0,
                 i2h_weight_initializer=None, h2h_weight_initializer=None,
                 i2h_bias_initializer="zeros", h2h_bias_initializer="zeros",
                 projection_size: Optional[int] = None, h2r_weight_initializer=None,
                 state_clip_min=None, state_clip_max=None, state_clip_nan: bool = False,
                 dtype="float32", **kwargs):
        super().__init__(hidden_size, num_layers, layout, dropout, bidirectional, input_size,
                         i2h_weight_initializer, h2h_weight_initializer,
                         i2h_bias_initializer, h2h_bias_initializer, "lstm", projection_size,
                         h2r_weight_initializer, state_clip_min, state_clip_max,
                         state_clip_nan, dtype, **kwargs)

    def state_info(self, batch_size: int = 0) -> List[dict]:
        n = self._num_layers * self._dir
        return [_state((n, batch_size, self._projection_size or self._hidden_size),
                       self._dtype),
                _state((n, batch_size, self._hidden_size), self._dtype)]


class GRU(_RNNLayer):
    """Multi-layer GRU as cuDNN computes it (gates r, z, n):
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) n + z h``."""

    def __init__(self, hidden_size: int, num_layers: int = 1, layout: str = "TNC",
                 dropout: float = 0, bidirectional: bool = False, input_size: int = 0,
                 i2h_weight_initializer=None, h2h_weight_initializer=None,
                 i2h_bias_initializer="zeros", h2h_bias_initializer="zeros",
                 dtype="float32", **kwargs):
        super().__init__(hidden_size, num_layers, layout, dropout, bidirectional, input_size,
                         i2h_weight_initializer, h2h_weight_initializer,
                         i2h_bias_initializer, h2h_bias_initializer, "gru",
                         None, None, None, None, False, dtype, **kwargs)

    def state_info(self, batch_size: int = 0) -> List[dict]:
        return [_state((self._num_layers * self._dir, batch_size, self._hidden_size),
                       self._dtype)]
