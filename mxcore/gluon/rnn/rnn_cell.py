"""Recurrent cells (MXNet Gluon 1.x): one time step each, composed from ``mx.nd`` ops
(FullyConnected, activations, slicing) so that autograd differentiates them.

``cell(inputs, states) -> (output, new_states)`` runs one step on (batch, features)
inputs; ``cell.unroll(length, inputs, begin_state=None, layout='NTC',
merge_outputs=None, valid_length=None)`` runs a whole sequence.  Parameter names and
shapes are MXNet's (``i2h_weight`` (G*H, in), ``h2h_weight`` (G*H, H), ``i2h_bias``,
``h2h_bias``; gates LSTM i, f, g, o and GRU r, z, n), so cells and the fused layers of
``rnn_layer`` hold interchangeable weights.
"""
from __future__ import annotations

import inspect
import math
from typing import Callable, List, Optional, Sequence

from mxcore import ndarray as _F
from mxcore.base import MXCoreError
from mxcore.gluon.block import Block, HybridBlock
from mxcore.ndarray import NDArray

__all__ = ["RecurrentCell", "HybridRecurrentCell", "RNNCell", "LSTMCell", "GRUCell",
           "SequentialRNNCell", "HybridSequentialRNNCell", "DropoutCell", "ModifierCell",
           "ZoneoutCell", "ResidualCell", "BidirectionalCell"]


def _indent(text: str, spaces: int) -> str:
    return text.replace("\n", "\n" + " " * spaces)


def _call_state_func(func: Callable, name: str, info: dict):
    """``func(name=..., shape=..., ...)`` as MXNet calls it, keeping only the keywords
    ``func`` takes (``nd.zeros`` takes any; ``nd.random.uniform`` takes no ``name``)."""
    kwargs = dict(info, name=name)
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return func(**kwargs)
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    return func(**kwargs)


def _cells_state_info(cells, batch_size: int) -> List[dict]:
    return sum([c.state_info(batch_size) for c in cells], [])


def _cells_begin_state(cells, **kwargs) -> list:
    return sum([c.begin_state(**kwargs) for c in cells], [])


def _get_begin_state(cell, begin_state, inputs, batch_size: int):
    if begin_state is not None:
        return begin_state
    first = inputs if isinstance(inputs, NDArray) else inputs[0]
    with first.context:
        return cell.begin_state(func=_F.zeros, batch_size=batch_size, dtype=first.dtype)


def _format_sequence(length, inputs, layout: str, merge, in_layout: Optional[str] = None):
    """``inputs`` as one (merged) array in ``layout`` or a list of per-step arrays, as
    ``merge`` asks (None: as given).  Returns (inputs, time axis, batch size)."""
    if inputs is None:
        raise MXCoreError("unroll needs inputs (an array or a list of per-step arrays)")
    axis, batch_axis = layout.find("T"), layout.find("N")
    in_axis = in_layout.find("T") if in_layout is not None else axis
    if isinstance(inputs, NDArray):
        batch_size = inputs.shape[batch_axis]
        if length is not None and length != inputs.shape[in_axis]:
            raise MXCoreError(f"unroll: length {length} differs from the {inputs.shape[in_axis]} "
                              f"steps of inputs {tuple(inputs.shape)} (layout {layout})")
        if merge is False:
            steps = inputs.shape[in_axis]
            parts = _F.split(inputs, num_outputs=steps, axis=in_axis, squeeze_axis=True)
            inputs = list(parts) if isinstance(parts, (list, tuple)) else [parts]
    else:
        inputs = list(inputs)
        if length is not None and len(inputs) != length:
            raise MXCoreError(f"unroll: length {length} differs from the {len(inputs)} steps "
                              "given")
        batch_size = inputs[0].shape[0]
        if merge is True:
            inputs = _F.stack(*inputs, axis=axis)
            in_axis = axis
    if isinstance(inputs, NDArray) and axis != in_axis:
        inputs = _F.swapaxes(inputs, axis, in_axis)
    return inputs, axis, batch_size


def _valid_mask(valid_length: NDArray, steps: int, like: NDArray) -> NDArray:
    """(T, N) 1/0: step t of sequence n is within its valid length."""
    t = _F.arange(steps, ctx=like.context, dtype=like.dtype).reshape((steps, 1))
    n = valid_length.astype(like.dtype).reshape((1, -1))
    return _F.broadcast_lesser(t, n)


def _mask_sequence(data, length: int, valid_length: NDArray, time_axis: int, merge: bool):
    """Zero the steps past each sequence's valid length (MXNet's SequenceMask)."""
    if not isinstance(data, NDArray):
        data = _F.stack(*data, axis=time_axis)
    mask = _valid_mask(valid_length, length, data)            # (T, N)
    if time_axis == 1:
        mask = _F.transpose(mask)
    mask = mask.reshape(mask.shape + (1,) * (data.ndim - 2))
    out = _F.broadcast_mul(data, mask)
    if not merge:
        parts = _F.split(out, num_outputs=length, axis=time_axis, squeeze_axis=True)
        out = list(parts) if isinstance(parts, (list, tuple)) else [parts]
    return out


def _gather_steps(steps: NDArray, index: NDArray) -> NDArray:
    """``steps`` (T, N, ...) gathered at ``index`` (T', N) of time positions per sequence."""
    t, n = steps.shape[:2]
    flat = steps.reshape((t * n,) + steps.shape[2:])
    cols = _F.arange(n, ctx=steps.context, dtype=index.dtype).reshape((1, n))
    pos = _F.broadcast_add(index * n, cols).reshape((-1,))
    out = _F.take(flat, pos, axis=0)
    return out.reshape(index.shape + steps.shape[2:])


def _last_steps(stacked: NDArray, valid_length: NDArray) -> NDArray:
    """Each sequence's state at its last valid step (MXNet's SequenceLast; a length of
    0 reads step 0)."""
    idx = _F.maximum(valid_length.astype("float32") - 1, 0).reshape((1, -1))
    return _gather_steps(stacked, idx)[0]


def _reverse_sequences(sequences: list, length: int, valid_length=None) -> list:
    """Per-step arrays in reverse order, each sequence reversed within its valid
    length when ``valid_length`` is given (MXNet's SequenceReverse)."""
    if valid_length is None:
        return list(reversed(sequences))
    stacked = _F.stack(*sequences, axis=0)
    t = _F.arange(length, ctx=stacked.context, dtype="float32").reshape((length, 1))
    n = valid_length.astype("float32").reshape((1, -1))
    valid = _F.broadcast_lesser(t, n)
    flipped = _F.broadcast_sub(n - 1, t)
    index = _F.where(valid, flipped, _F.broadcast_like(t, flipped))
    out = _gather_steps(stacked, index)
    parts = _F.split(out, num_outputs=length, axis=0, squeeze_axis=True)
    return list(parts) if isinstance(parts, (list, tuple)) else [parts]


#: activations by name as functions of mx.nd (others go through Activation)
_ACTIVATIONS = {"tanh": _F.tanh, "relu": _F.relu, "sigmoid": _F.sigmoid,
                "softsign": _F.softsign}


class RecurrentCell(Block):
    """Base class of recurrent cells: ``state_info``, ``begin_state``, ``unroll``."""

    def __init__(self, prefix: Optional[str] = None, params=None):
        super().__init__(prefix=prefix, params=params)
        self._modified = False
        self.reset()

    def reset(self) -> None:
        """Reset the step counters before unrolling again."""
        self._init_counter = -1
        self._counter = -1
        for cell in self._children.values():
            if isinstance(cell, RecurrentCell):
                cell.reset()

    def state_info(self, batch_size: int = 0) -> List[dict]:
        """Shape and layout of each state."""
        raise NotImplementedError(f"{type(self).__name__} must implement state_info()")

    def _check_unmodified(self) -> None:
        if self._modified:
            raise MXCoreError(f"{type(self).__name__} {self.name!r} is wrapped by a modifier "
                              "cell (ZoneoutCell, ResidualCell...): call the modifier instead")

    def begin_state(self, batch_size: int = 0, func: Callable = _F.zeros, **kwargs) -> list:
        """Initial states, ``func(name=..., shape=..., **kwargs)`` each (``nd.zeros`` by
        default; ``kwargs`` such as ``ctx`` or ``dtype`` go to ``func``)."""
        self._check_unmodified()
        states = []
        for info in self.state_info(batch_size):
            self._init_counter += 1
            info = dict(info or {}, **kwargs)
            states.append(_call_state_func(
                func, f"{self._prefix}begin_state_{self._init_counter}", info))
        return states

    def unroll(self, length: int, inputs, begin_state=None, layout: str = "NTC",
               merge_outputs: Optional[bool] = None, valid_length: Optional[NDArray] = None):
        """Run the cell over ``length`` steps of ``inputs`` (one array in ``layout`` or a
        list of (batch, ...) arrays).  Returns (outputs, states): outputs merged into one
        array when ``merge_outputs`` (None: as the inputs came); with ``valid_length``
        (batch,) steps past each sequence's length output 0 and the states are those of
        its last valid step."""
        self.reset()
        inputs, axis, batch_size = _format_sequence(length, inputs, layout, False)
        states = _get_begin_state(self, begin_state, inputs, batch_size)
        outputs, all_states = [], []
        for i in range(length):
            output, states = self(inputs[i], states)
            outputs.append(output)
            if valid_length is not None:
                all_states.append(states)
        if valid_length is not None:
            states = [_last_steps(_F.stack(*per_step, axis=0), valid_length)
                      for per_step in zip(*all_states)]
            outputs = _mask_sequence(outputs, length, valid_length, axis, True)
        outputs, _, _ = _format_sequence(length, outputs, layout, merge_outputs)
        return outputs, states

    def _get_activation(self, F, inputs, activation, **kwargs):
        """``activation`` applied to ``inputs``: a name, a LeakyReLU block or a callable."""
        from mxcore.gluon.nn import LeakyReLU
        if isinstance(activation, str):
            fn = _ACTIVATIONS.get(activation)
            return fn(inputs) if fn is not None else F.Activation(inputs, act_type=activation)
        if isinstance(activation, LeakyReLU):
            return F.LeakyReLU(inputs, act_type="leaky", slope=activation._alpha)
        return activation(inputs, **kwargs)

    def forward(self, inputs, states):
        """One step: (output, new states)."""
        self._counter += 1
        return super().forward(inputs, states)


class HybridRecurrentCell(RecurrentCell, HybridBlock):
    """A recurrent cell written as ``hybrid_forward(F, inputs, states, **params)``."""

    def hybrid_forward(self, F, x, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement hybrid_forward()")


class _GatedCell(HybridRecurrentCell):
    """i2h/h2h weights and biases of ``gates * hidden_size`` rows (deferred input size)."""

    _gates = 1

    def __init__(self, hidden_size: int, i2h_weight_initializer=None,
                 h2h_weight_initializer=None, i2h_bias_initializer="zeros",
                 h2h_bias_initializer="zeros", input_size: int = 0, prefix=None, params=None):
        super().__init__(prefix=prefix, params=params)
        self._hidden_size = int(hidden_size)
        self._input_size = int(input_size)
        rows = self._gates * self._hidden_size
        self.i2h_weight = self.params.get("i2h_weight", shape=(rows, input_size),
                                          init=i2h_weight_initializer,
                                          allow_deferred_init=True)
        self.h2h_weight = self.params.get("h2h_weight", shape=(rows, hidden_size),
                                          init=h2h_weight_initializer,
                                          allow_deferred_init=True)
        self.i2h_bias = self.params.get("i2h_bias", shape=(rows,), init=i2h_bias_initializer,
                                        allow_deferred_init=True)
        self.h2h_bias = self.params.get("h2h_bias", shape=(rows,), init=h2h_bias_initializer,
                                        allow_deferred_init=True)

    def state_info(self, batch_size: int = 0) -> List[dict]:
        return [{"shape": (batch_size, self._hidden_size), "__layout__": "NC"}]

    def infer_shape(self, inputs, *args) -> None:
        self.i2h_weight.shape = (self._gates * self._hidden_size,
                                 math.prod(inputs.shape[1:]))

    def _check_step(self, inputs, states, i2h_weight) -> None:
        """A clear error, naming this cell, for inputs or states it cannot take."""
        n_in = math.prod(inputs.shape[1:]) if inputs.ndim > 1 else 0
        if inputs.ndim < 2 or n_in != i2h_weight.shape[1]:
            raise MXCoreError(
                f"{type(self).__name__} {self.name!r}: input of shape {tuple(inputs.shape)} "
                f"does not fit: it takes (batch, {i2h_weight.shape[1]}) (i2h_weight "
                f"{tuple(i2h_weight.shape)})")
        info = self.state_info(inputs.shape[0])
        if len(states) != len(info):
            raise MXCoreError(f"{type(self).__name__} {self.name!r} takes {len(info)} "
                              f"state(s), got {len(states)}")
        for i, (s, want) in enumerate(zip(states, info)):
            if tuple(s.shape) != want["shape"]:
                raise MXCoreError(f"{type(self).__name__} {self.name!r}: state {i} has shape "
                                  f"{tuple(s.shape)}, expected {want['shape']} (batch, "
                                  "hidden_size)")

    def _projections(self, F, inputs, states, i2h_weight, h2h_weight, i2h_bias, h2h_bias):
        self._check_step(inputs, states, i2h_weight)
        rows = self._gates * self._hidden_size
        i2h = F.FullyConnected(inputs, i2h_weight, i2h_bias, num_hidden=rows)
        h2h = F.FullyConnected(states[0], h2h_weight, h2h_bias, num_hidden=rows)
        return i2h, h2h

    def _mapping(self) -> str:
        shape = self.i2h_weight.shape
        return f"{shape[1] if shape[1] else None} -> {shape[0]}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._mapping()})"


class RNNCell(_GatedCell):
    """Elman cell: ``h' = activation(W_ih x + b_ih + W_hh h + b_hh)``."""

    def __init__(self, hidden_size: int, activation="tanh", i2h_weight_initializer=None,
                 h2h_weight_initializer=None, i2h_bias_initializer="zeros",
                 h2h_bias_initializer="zeros", input_size: int = 0, prefix=None, params=None):
        super().__init__(hidden_size, i2h_weight_initializer, h2h_weight_initializer,
                         i2h_bias_initializer, h2h_bias_initializer, input_size, prefix, params)
        self._activation = activation

    def _alias(self) -> str:
        return "rnn"

    def __repr__(self) -> str:
        return f"RNNCell({self._mapping()}, {self._activation})"

    def hybrid_forward(self, F, inputs, states, i2h_weight, h2h_weight, i2h_bias, h2h_bias):
        i2h, h2h = self._projections(F, inputs, states, i2h_weight, h2h_weight, i2h_bias,
                                     h2h_bias)
        output = self._get_activation(F, i2h + h2h, self._activation)
        return output, [output]


class LSTMCell(_GatedCell):
    """LSTM cell (gates i, f, g, o): ``c' = f c + i g``, ``h' = o tanh(c')``."""

    _gates = 4

    def __init__(self, hidden_size: int, i2h_weight_initializer=None,
                 h2h_weight_initializer=None, i2h_bias_initializer="zeros",
                 h2h_bias_initializer="zeros", input_size: int = 0, prefix=None, params=None,
                 activation="tanh", recurrent_activation="sigmoid"):
        super().__init__(hidden_size, i2h_weight_initializer, h2h_weight_initializer,
                         i2h_bias_initializer, h2h_bias_initializer, input_size, prefix, params)
        self._activation = activation
        self._recurrent_activation = recurrent_activation

    def _alias(self) -> str:
        return "lstm"

    def state_info(self, batch_size: int = 0) -> List[dict]:
        return [{"shape": (batch_size, self._hidden_size), "__layout__": "NC"},
                {"shape": (batch_size, self._hidden_size), "__layout__": "NC"}]

    def hybrid_forward(self, F, inputs, states, i2h_weight, h2h_weight, i2h_bias, h2h_bias):
        i2h, h2h = self._projections(F, inputs, states, i2h_weight, h2h_weight, i2h_bias,
                                     h2h_bias)
        i, f, g, o = F.split(i2h + h2h, num_outputs=4, axis=1)
        act, rec = self._activation, self._recurrent_activation
        next_c = self._get_activation(F, f, rec) * states[1] + \
            self._get_activation(F, i, rec) * self._get_activation(F, g, act)
        next_h = self._get_activation(F, o, rec) * self._get_activation(F, next_c, act)
        return next_h, [next_h, next_c]


class GRUCell(_GatedCell):
    """GRU cell as cuDNN computes it (gates r, z, n): ``n = tanh(W_in x + b_in + r *
    (W_hn h + b_hn))``, ``h' = (1 - z) n + z h``."""

    _gates = 3

    def _alias(self) -> str:
        return "gru"

    def hybrid_forward(self, F, inputs, states, i2h_weight, h2h_weight, i2h_bias, h2h_bias):
        i2h, h2h = self._projections(F, inputs, states, i2h_weight, h2h_weight, i2h_bias,
                                     h2h_bias)
        i2h_r, i2h_z, i2h_n = F.split(i2h, num_outputs=3, axis=1)
        h2h_r, h2h_z, h2h_n = F.split(h2h, num_outputs=3, axis=1)
        reset = F.sigmoid(i2h_r + h2h_r)
        update = F.sigmoid(i2h_z + h2h_z)
        new = F.tanh(i2h_n + reset * h2h_n)
        next_h = new + update * (states[0] - new)
        return next_h, [next_h]


class SequentialRNNCell(RecurrentCell):
    """Cells stacked: each step runs them in order, each taking the previous one's
    output; the states are all the cells' states, concatenated."""

    def add(self, cell: RecurrentCell) -> None:
        self.register_child(cell)

    def state_info(self, batch_size: int = 0) -> List[dict]:
        return _cells_state_info(self._children.values(), batch_size)

    def begin_state(self, **kwargs) -> list:
        self._check_unmodified()
        return _cells_begin_state(self._children.values(), **kwargs)

    def __call__(self, inputs, states):
        self._counter += 1
        next_states, p = [], 0
        for cell in self._children.values():
            if isinstance(cell, BidirectionalCell):
                raise MXCoreError(f"{type(self).__name__} {self.name!r} holds a "
                                  "BidirectionalCell, which cannot be stepped: use unroll()")
            n = len(cell.state_info())
            inputs, state = cell(inputs, states[p:p + n])
            p += n
            next_states.append(state)
        return inputs, sum(next_states, [])

    def unroll(self, length: int, inputs, begin_state=None, layout: str = "NTC",
               merge_outputs: Optional[bool] = None, valid_length: Optional[NDArray] = None):
        self.reset()
        inputs, _, batch_size = _format_sequence(length, inputs, layout, None)
        begin_state = _get_begin_state(self, begin_state, inputs, batch_size)
        cells = list(self._children.values())
        p, next_states = 0, []
        for i, cell in enumerate(cells):
            n = len(cell.state_info())
            inputs, states = cell.unroll(length, inputs=inputs, begin_state=begin_state[p:p + n],
                                         layout=layout,
                                         merge_outputs=None if i < len(cells) - 1
                                         else merge_outputs,
                                         valid_length=valid_length)
            p += n
            next_states.extend(states)
        return inputs, next_states

    def __getitem__(self, i: int):
        return self._children[str(i)]

    def __len__(self) -> int:
        return len(self._children)

    def __repr__(self) -> str:
        body = "\n".join(f"({i}): {_indent(repr(m), 2)}" for i, m in self._children.items())
        return f"{type(self).__name__}(\n{body}\n)"


class HybridSequentialRNNCell(SequentialRNNCell, HybridRecurrentCell):
    """SequentialRNNCell of hybrid cells."""

    def hybrid_forward(self, F, inputs, states):
        return self.__call__(inputs, states)


class DropoutCell(HybridRecurrentCell):
    """Dropout on the inputs (no states): active while training."""

    def __init__(self, rate: float, axes: Sequence[int] = (), prefix=None, params=None):
        super().__init__(prefix, params)
        if not isinstance(rate, (int, float)):
            raise MXCoreError(f"DropoutCell: rate must be a number, got {rate!r}")
        self._rate = rate
        self._axes = tuple(axes)

    def _alias(self) -> str:
        return "dropout"

    def state_info(self, batch_size: int = 0) -> List[dict]:
        return []

    def hybrid_forward(self, F, inputs, states):
        if self._rate > 0:
            inputs = F.Dropout(inputs, p=self._rate, axes=self._axes)
        return inputs, states

    def unroll(self, length: int, inputs, begin_state=None, layout: str = "NTC",
               merge_outputs: Optional[bool] = None, valid_length: Optional[NDArray] = None):
        self.reset()
        inputs, _, _ = _format_sequence(length, inputs, layout, merge_outputs)
        if isinstance(inputs, NDArray):  # one dropout over the whole sequence
            return self.hybrid_forward(_F, inputs, begin_state if begin_state else [])
        return super().unroll(length, inputs, begin_state=begin_state, layout=layout,
                              merge_outputs=merge_outputs, valid_length=None)

    def __repr__(self) -> str:
        return f"DropoutCell(rate={self._rate}, axes={self._axes})"


class ModifierCell(HybridRecurrentCell):
    """A cell wrapping a base cell (which must not be called directly afterwards)."""

    def __init__(self, base_cell: RecurrentCell):
        if base_cell._modified:
            raise MXCoreError(f"cell {base_cell.name!r} is already modified; a cell can be "
                              "modified once")
        base_cell._modified = True
        super().__init__(prefix=base_cell.prefix + self._alias(), params=None)
        self.base_cell = base_cell

    @property
    def params(self):
        return self.base_cell.params

    def state_info(self, batch_size: int = 0) -> List[dict]:
        return self.base_cell.state_info(batch_size)

    def begin_state(self, func: Callable = _F.zeros, **kwargs) -> list:
        self._check_unmodified()
        self.base_cell._modified = False
        try:
            return self.base_cell.begin_state(func=func, **kwargs)
        finally:
            self.base_cell._modified = True

    def hybrid_forward(self, F, inputs, states):
        raise NotImplementedError(f"{type(self).__name__} must implement hybrid_forward()")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_cell!r})"


class ZoneoutCell(ModifierCell):
    """Zoneout: while training, each output/state unit keeps its previous value with
    probability ``zoneout_outputs``/``zoneout_states``."""

    def __init__(self, base_cell: RecurrentCell, zoneout_outputs: float = 0.0,
                 zoneout_states: float = 0.0):
        if isinstance(base_cell, BidirectionalCell):
            raise MXCoreError("BidirectionalCell cannot be stepped, so it takes no zoneout: "
                              "wrap the cells inside it instead")
        super().__init__(base_cell)
        self.zoneout_outputs = zoneout_outputs
        self.zoneout_states = zoneout_states
        self._prev_output = None

    def _alias(self) -> str:
        return "zoneout"

    def reset(self) -> None:
        super().reset()
        self._prev_output = None

    def hybrid_forward(self, F, inputs, states):
        next_output, next_states = self.base_cell(inputs, states)
        p_out, p_state = self.zoneout_outputs, self.zoneout_states

        def mask(p, like):
            return F.Dropout(F.ones_like(like), p=p)

        prev = self._prev_output if self._prev_output is not None else F.zeros_like(next_output)
        output = F.where(mask(p_out, next_output), next_output, prev) if p_out else next_output
        if p_state:
            next_states = [F.where(mask(p_state, new), new, old)
                           for new, old in zip(next_states, states)]
        self._prev_output = output
        return output, next_states

    def __repr__(self) -> str:
        return (f"ZoneoutCell(p_out={self.zoneout_outputs}, p_state={self.zoneout_states}, "
                f"{self.base_cell!r})")


class ResidualCell(ModifierCell):
    """The base cell's output plus its input (Wu et al., 2016)."""

    def hybrid_forward(self, F, inputs, states):
        output, states = self.base_cell(inputs, states)
        return output + inputs, states

    def unroll(self, length: int, inputs, begin_state=None, layout: str = "NTC",
               merge_outputs: Optional[bool] = None, valid_length: Optional[NDArray] = None):
        self.reset()
        self.base_cell._modified = False
        try:
            outputs, states = self.base_cell.unroll(length, inputs=inputs,
                                                    begin_state=begin_state, layout=layout,
                                                    merge_outputs=merge_outputs,
                                                    valid_length=valid_length)
        finally:
            self.base_cell._modified = True
        merge = isinstance(outputs, NDArray) if merge_outputs is None else merge_outputs
        inputs, axis, _ = _format_sequence(length, inputs, layout, merge)
        if valid_length is not None:
            inputs = _mask_sequence(inputs, length, valid_length, axis, merge)
        if merge:
            return outputs + inputs, states
        return [o + i for o, i in zip(outputs, inputs)], states


class BidirectionalCell(HybridRecurrentCell):
    """Two cells over a sequence, one forward and one backward in time; their outputs
    are concatenated per step.  Only ``unroll`` runs it."""

    def __init__(self, l_cell: RecurrentCell, r_cell: RecurrentCell,
                 output_prefix: str = "bi_"):
        super().__init__(prefix="", params=None)
        self.register_child(l_cell, "l_cell")
        self.register_child(r_cell, "r_cell")
        self._output_prefix = output_prefix

    def __call__(self, inputs, states):
        raise MXCoreError("BidirectionalCell cannot be stepped: use unroll()")

    def state_info(self, batch_size: int = 0) -> List[dict]:
        return _cells_state_info(self._children.values(), batch_size)

    def begin_state(self, **kwargs) -> list:
        self._check_unmodified()
        return _cells_begin_state(self._children.values(), **kwargs)

    def unroll(self, length: int, inputs, begin_state=None, layout: str = "NTC",
               merge_outputs: Optional[bool] = None, valid_length: Optional[NDArray] = None):
        self.reset()
        inputs, axis, batch_size = _format_sequence(length, inputs, layout, False)
        reversed_inputs = _reverse_sequences(inputs, length, valid_length)
        begin_state = _get_begin_state(self, begin_state, inputs, batch_size)
        l_cell, r_cell = self._children.values()
        n_l = len(l_cell.state_info(batch_size))
        l_outputs, l_states = l_cell.unroll(length, inputs=inputs, begin_state=begin_state[:n_l],
                                            layout=layout, merge_outputs=merge_outputs,
                                            valid_length=valid_length)
        r_outputs, r_states = r_cell.unroll(length, inputs=reversed_inputs,
                                            begin_state=begin_state[n_l:], layout=layout,
                                            merge_outputs=False, valid_length=valid_length)
        r_outputs = _reverse_sequences(r_outputs, length, valid_length)
        if merge_outputs is None:
            merge_outputs = isinstance(l_outputs, NDArray)
            l_outputs, _, _ = _format_sequence(None, l_outputs, layout, merge_outputs)
            r_outputs, _, _ = _format_sequence(None, r_outputs, layout, merge_outputs)
        if merge_outputs:
            if not isinstance(r_outputs, NDArray):
                r_outputs = _F.stack(*r_outputs, axis=axis)
            outputs = _F.concat(l_outputs, r_outputs, dim=2)
        else:
            outputs = [_F.concat(lo, ro, dim=1) for lo, ro in zip(l_outputs, r_outputs)]
        if valid_length is not None:
            outputs = _mask_sequence(outputs, length, valid_length, axis, merge_outputs)
        return outputs, l_states + r_states

    def __repr__(self) -> str:
        return (f"BidirectionalCell(forward={self._children['l_cell']!r}, "
                f"backward={self._children['r_cell']!r})")
