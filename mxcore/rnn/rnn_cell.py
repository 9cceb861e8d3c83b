"""MXNet 1.x's symbolic RNN cells (``mx.rnn``), for scripts written before Gluon.

A cell builds a Symbol graph: ``cell(inputs, states)`` is one step, ``unroll(length,
inputs)`` the whole sequence.  Parameters are variables named ``<prefix>i2h_weight``,
``<prefix>h2h_bias``...; ``FusedRNNCell`` keeps all of its layers in one
``<prefix>parameters`` vector for the ``RNN`` operator, and ``unpack_weights`` /
``pack_weights`` convert between that vector (or a cell's stacked gate matrices) and
one array per gate (``l0_i2h_i_weight``...), so the weights of a fused cell can be
loaded into a stack of unfused ones and back.

Begin states are zeros shaped from the data's batch (the graph infers shapes forward
only, so MXNet's ``zeros(shape=(0, H))`` placeholder is built from the inputs here).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

from mxcore import symbol as sym
from mxcore.base import MXCoreError
from mxcore.ops.rnn import rnn_param_shapes


class RNNParams:
    """The variables of a cell, made once per name under its prefix."""

    def __init__(self, prefix: str = ""):
        self._prefix = prefix
        self._params: Dict[str, sym.Symbol] = {}

    def get(self, name: str, **kwargs) -> sym.Symbol:
        name = self._prefix + name
        if name not in self._params:
            self._params[name] = sym.Variable(name, **kwargs)
        return self._params[name]


class BaseRNNCell:
    """A recurrent cell of symbols (MXNet's ``mx.rnn.BaseRNNCell``)."""

    _gates: Sequence[str] = ("",)

    def __init__(self, prefix: str = "", params: Optional[RNNParams] = None):
        self._prefix = prefix
        self._own_params = params is None
        self._params = RNNParams(prefix) if params is None else params
        self._counter = -1

    @property
    def params(self) -> RNNParams:
        return self._params

    @property
    def prefix(self) -> str:
        return self._prefix

    def reset(self) -> None:
        self._counter = -1

    @property
    def state_info(self) -> List[dict]:
        raise NotImplementedError

    def _step_zeros(self, step: sym.Symbol) -> List[sym.Symbol]:
        """Begin states (batch, state size) of zeros, batch taken from a step's input."""
        col = sym.sum(sym.zeros_like(step), axis=1, keepdims=True)  # (batch, 1)
        return [sym.broadcast_axis(col, axis=1, size=info["shape"][1])
                for info in self.state_info]

    def begin_state(self, inputs: Optional[sym.Symbol] = None, **kwargs) -> List[sym.Symbol]:
        if inputs is None:
            raise MXCoreError(f"{type(self).__name__}.begin_state: mxcore builds begin states "
                              "from the first step's input; call unroll, or pass inputs=")
        return self._step_zeros(inputs)

    def unpack_weights(self, args: Dict) -> Dict:
        """Each stacked gate matrix (and bias) as one array per gate:
        ``<prefix>i2h_weight`` becomes ``<prefix>i2h_i_weight``... (LSTM gates i, f, c, o;
        GRU r, z, o)."""
        args = dict(args)
        if len(self._gates) == 1:
            return args
        h = self._num_hidden
        for group in ("i2h", "h2h"):
            for kind in ("weight", "bias"):
                arr = args.pop(f"{self._prefix}{group}_{kind}")
                for j, gate in enumerate(self._gates):
                    args[f"{self._prefix}{group}{gate}_{kind}"] = arr[j * h:(j + 1) * h].copy()
        return args

    def pack_weights(self, args: Dict) -> Dict:
        """The inverse of ``unpack_weights``."""
        from mxcore import ndarray as nd
        args = dict(args)
        if len(self._gates) == 1:
            return args
        for group in ("i2h", "h2h"):
            for kind in ("weight", "bias"):
                parts = [args.pop(f"{self._prefix}{group}{gate}_{kind}") for gate in self._gates]
                args[f"{self._prefix}{group}_{kind}"] = nd.concat(*parts, dim=0)
        return args

    def __call__(self, inputs: sym.Symbol, states: List[sym.Symbol]):
        raise NotImplementedError

    def unroll(self, length: int, inputs, begin_state=None, layout: str = "NTC",
               merge_outputs: Optional[bool] = None):
        """Run ``length`` steps: ``inputs`` is one symbol laid out as ``layout`` (or a list
        of per-step symbols).  Returns (outputs, states); outputs are one symbol stacked
        along the layout's time axis with ``merge_outputs``, else a list."""
        self.reset()
        steps = _split(inputs, length, layout)
        states = begin_state if begin_state is not None else self.begin_state(steps[0])
        outputs = []
        for step in steps:
            out, states = self(step, states)
            outputs.append(out)
        return _merge(outputs, layout, merge_outputs), states


def _split(inputs, length: int, layout: str) -> List[sym.Symbol]:
    if isinstance(inputs, (list, tuple)):
        if len(inputs) != length:
            raise MXCoreError(f"unroll: {len(inputs)} step inputs for length {length}")
        return list(inputs)
    axis = layout.find("T")
    if length == 1:
        return [sym.squeeze(sym.slice_axis(inputs, axis=axis, begin=0, end=1), axis=axis)]
    parts = sym.SliceChannel(inputs, num_outputs=length, axis=axis, squeeze_axis=True)
    return [parts[i] for i in range(length)]


def _merge(outputs: List[sym.Symbol], layout: str, merge_outputs: Optional[bool]):
    if not merge_outputs:
        return outputs
    return sym.stack(*outputs, axis=layout.find("T"))


class _ProjectedCell(BaseRNNCell):
    """A cell whose step starts from the projections W_i x + b_i and W_h h + b_h
    (parameters i2h_weight, i2h_bias, h2h_weight, h2h_bias) and keeps ``_n_states``
    states of (batch, num_hidden)."""

    _n_states = 1

    def __init__(self, num_hidden: int, prefix: str, params: Optional[RNNParams]):
        super().__init__(prefix, params)
        self._num_hidden = num_hidden
        self._iW, self._iB = self.params.get("i2h_weight"), self.params.get("i2h_bias")
        self._hW, self._hB = self.params.get("h2h_weight"), self.params.get("h2h_bias")

    @property
    def state_info(self):
        return [{"shape": (0, self._num_hidden), "__layout__": "NC"}] * self._n_states

    def _projections(self, inputs, state, n: int):
        self._counter += 1
        name = f"{self._prefix}t{self._counter}_"
        i2h = sym.FullyConnected(data=inputs, weight=self._iW, bias=self._iB, num_hidden=n,
                                 name=name + "i2h")
        h2h = sym.FullyConnected(data=state, weight=self._hW, bias=self._hB, num_hidden=n,
                                 name=name + "h2h")
        return i2h, h2h, name


class RNNCell(_ProjectedCell):
    """out = activation(W_i x + b_i + W_h h + b_h)."""

    def __init__(self, num_hidden: int, activation: str = "tanh", prefix: str = "rnn_",
                 params: Optional[RNNParams] = None):
        super().__init__(num_hidden, prefix, params)
        self._activation = activation

    def __call__(self, inputs, states):
        i2h, h2h, name = self._projections(inputs, states[0], self._num_hidden)
        out = sym.Activation(i2h + h2h, act_type=self._activation, name=name + "out")
        return out, [out]


class LSTMCell(_ProjectedCell):
    """The LSTM step with gates in MXNet's (and the fused RNN's) order i, f, c, o."""

    _gates = ("_i", "_f", "_c", "_o")
    _n_states = 2

    def __init__(self, num_hidden: int, prefix: str = "lstm_",
                 params: Optional[RNNParams] = None, forget_bias: float = 1.0):
        super().__init__(num_hidden, prefix, params)

    def __call__(self, inputs, states):
        i2h, h2h, name = self._projections(inputs, states[0], 4 * self._num_hidden)
        gates = sym.SliceChannel(i2h + h2h, num_outputs=4, name=name + "slice")
        in_gate = sym.Activation(gates[0], act_type="sigmoid")
        forget_gate = sym.Activation(gates[1], act_type="sigmoid")
        in_transform = sym.Activation(gates[2], act_type="tanh")
        out_gate = sym.Activation(gates[3], act_type="sigmoid")
        next_c = forget_gate * states[1] + in_gate * in_transform
        next_h = out_gate * sym.Activation(next_c, act_type="tanh")
        return next_h, [next_h, next_c]


class GRUCell(_ProjectedCell):
    """The GRU step as the fused RNN computes it (cuDNN's): gates r, z and the
    candidate tanh(W_i x + b_i + r * (W_h h + b_h))."""

    _gates = ("_r", "_z", "_o")

    def __init__(self, num_hidden: int, prefix: str = "gru_",
                 params: Optional[RNNParams] = None):
        super().__init__(num_hidden, prefix, params)

    def __call__(self, inputs, states):
        prev = states[0]
        i2h, h2h, name = self._projections(inputs, prev, 3 * self._num_hidden)
        i_r, i_z, i_n = (sym.SliceChannel(i2h, num_outputs=3, name=name + "i2h_slice")[k]
                         for k in range(3))
        h = sym.SliceChannel(h2h, num_outputs=3, name=name + "h2h_slice")
        reset = sym.Activation(i_r + h[0], act_type="sigmoid")
        update = sym.Activation(i_z + h[1], act_type="sigmoid")
        candidate = sym.Activation(i_n + reset * h[2], act_type="tanh")
        next_h = (1 - update) * candidate + update * prev
        return next_h, [next_h]


class FusedRNNCell(BaseRNNCell):
    """Every layer in one ``RNN`` operator (MXNet's ``mx.rnn.FusedRNNCell``)."""

    def __init__(self, num_hidden: int, num_layers: int = 1, mode: str = "lstm",
                 bidirectional: bool = False, dropout: float = 0.0,
                 get_next_state: bool = False, forget_bias: float = 1.0,
                 prefix: Optional[str] = None, params: Optional[RNNParams] = None):
        super().__init__(f"{mode}_" if prefix is None else prefix, params)
        self._num_hidden, self._num_layers, self._mode = num_hidden, num_layers, mode
        self._bidirectional, self._dropout = bidirectional, dropout
        self._get_next_state = get_next_state
        from mxcore.initializer import FusedRNN
        self._parameter = self.params.get(
            "parameters", init=FusedRNN(None, num_hidden, num_layers, mode, bidirectional,
                                        forget_bias))
        self._gates = {"rnn_relu": ("",), "rnn_tanh": ("",), "lstm": LSTMCell._gates,
                       "gru": GRUCell._gates}[mode]

    @property
    def state_info(self):
        dirs = 2 if self._bidirectional else 1
        n = 2 if self._mode == "lstm" else 1
        return [{"shape": (dirs * self._num_layers, 0, self._num_hidden),
                 "__layout__": "LNC"}] * n

    def _shapes(self, input_size: int):
        return rnn_param_shapes(self._mode, input_size, self._num_hidden, self._num_layers,
                                self._bidirectional)

    def _input_size(self, total: int) -> int:
        """The data width a parameter vector of ``total`` values implies."""
        for_one = sum(_size(s) for _, s in self._shapes(0))
        per_input = sum(_size(s) for _, s in self._shapes(1)) - for_one
        return (total - for_one) // per_input

    def unpack_weights(self, args: Dict) -> Dict:
        """The ``parameters`` vector as one array per layer, direction, matrix and gate
        (``l0_i2h_i_weight``, ``r1_h2h_o_bias``...)."""
        args = dict(args)
        vector = args.pop(self._prefix + "parameters")
        h, pos = self._num_hidden, 0
        for name, shape in self._shapes(self._input_size(vector.size)):
            block = vector[pos:pos + _size(shape)].reshape(shape)
            pos += _size(shape)
            base, kind = name.rsplit("_", 1)  # l0_i2h, weight
            for j, gate in enumerate(self._gates):
                args[f"{self._prefix}{base}{gate}_{kind}"] = block[j * h:(j + 1) * h].copy()
        return args

    def pack_weights(self, args: Dict) -> Dict:
        """The inverse of ``unpack_weights``: the per-gate arrays as one vector."""
        from mxcore import ndarray as nd
        args = dict(args)
        first = args[f"{self._prefix}l0_i2h{self._gates[0]}_weight"]
        parts = []
        for name, _ in self._shapes(first.shape[1]):
            base, kind = name.rsplit("_", 1)
            for gate in self._gates:
                parts.append(args.pop(f"{self._prefix}{base}{gate}_{kind}").reshape((-1,)))
        args[self._prefix + "parameters"] = nd.concat(*parts, dim=0)
        return args

    def __call__(self, inputs, states):
        raise MXCoreError("FusedRNNCell cannot be stepped: use unroll")

    def unroll(self, length: int, inputs, begin_state=None, layout: str = "NTC",
               merge_outputs: Optional[bool] = None):
        if isinstance(inputs, (list, tuple)):
            inputs = sym.stack(*inputs, axis=0)
            layout = "TNC"
        data = sym.swapaxes(inputs, dim1=0, dim2=1) if layout == "NTC" else inputs
        if begin_state is None:
            col = sym.sum(sym.zeros_like(sym.slice_axis(data, axis=0, begin=0, end=1)),
                          axis=2, keepdims=True)  # (1, batch, 1)
            begin_state = [sym.broadcast_axis(col, axis=(0, 2), size=(info["shape"][0],
                                                                      self._num_hidden))
                           for info in self.state_info]
        kwargs = {"state_cell": begin_state[1]} if self._mode == "lstm" else {}
        rnn = sym.RNN(data=data, parameters=self._parameter, state=begin_state[0],
                      state_size=self._num_hidden, num_layers=self._num_layers,
                      bidirectional=self._bidirectional, p=self._dropout,
                      state_outputs=self._get_next_state, mode=self._mode,
                      name=self._prefix + "rnn", **kwargs)
        outputs = rnn[0] if self._get_next_state else rnn
        states = [rnn[i] for i in range(1, len(self.state_info) + 1)] \
            if self._get_next_state else []
        if layout == "NTC":
            outputs = sym.swapaxes(outputs, dim1=0, dim2=1)
        if merge_outputs is False:
            outputs = _split(outputs, length, layout)
        return outputs, states


def _size(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


class _CellGroup(BaseRNNCell):
    """A cell made of cells (``self._cells``): their states in order, and their
    weights converted cell by cell."""

    _cells: List[BaseRNNCell]

    @property
    def state_info(self):
        return [info for cell in self._cells for info in cell.state_info]

    def unpack_weights(self, args):
        for cell in self._cells:
            args = cell.unpack_weights(args)
        return args

    def pack_weights(self, args):
        for cell in self._cells:
            args = cell.pack_weights(args)
        return args


class SequentialRNNCell(_CellGroup):
    """Cells stacked: each one's outputs are the next one's inputs."""

    def __init__(self, params: Optional[RNNParams] = None):
        super().__init__("", params)
        self._cells: List[BaseRNNCell] = []

    def add(self, cell: BaseRNNCell) -> None:
        self._cells.append(cell)


    def __call__(self, inputs, states):
        next_states, pos = [], 0
        for cell in self._cells:
            n = len(cell.state_info)
            inputs, new = cell(inputs, states[pos:pos + n])
            next_states += new
            pos += n
        return inputs, next_states

    def unroll(self, length: int, inputs, begin_state=None, layout: str = "NTC",
               merge_outputs: Optional[bool] = None):
        states, pos = [], 0
        for i, cell in enumerate(self._cells):
            n = len(cell.state_info)
            begin = None if begin_state is None else begin_state[pos:pos + n]
            pos += n
            last = i == len(self._cells) - 1
            inputs, new = cell.unroll(length, inputs, begin, layout,
                                      merge_outputs if last else None)
            states += new
        return inputs, states


class BidirectionalCell(_CellGroup):
    """One cell forward in time and one backward; outputs concatenated per step."""

    def __init__(self, l_cell: BaseRNNCell, r_cell: BaseRNNCell,
                 params: Optional[RNNParams] = None, output_prefix: str = "bi_"):
        super().__init__("", params)
        self._cells, self._output_prefix = [l_cell, r_cell], output_prefix

    def __call__(self, inputs, states):
        raise MXCoreError("BidirectionalCell cannot be stepped: use unroll")

    def unroll(self, length: int, inputs, begin_state=None, layout: str = "NTC",
               merge_outputs: Optional[bool] = None):
        steps = _split(inputs, length, layout)
        l_cell, r_cell = self._cells
        n = len(l_cell.state_info)
        l_begin = None if begin_state is None else begin_state[:n]
        r_begin = None if begin_state is None else begin_state[n:]
        l_out, l_states = l_cell.unroll(length, steps, l_begin, layout, False)
        r_out, r_states = r_cell.unroll(length, list(reversed(steps)), r_begin, layout, False)
        outputs = [sym.Concat(lo, ro, dim=1, name=f"{self._output_prefix}t{t}")
                   for t, (lo, ro) in enumerate(zip(l_out, reversed(r_out)))]
        return _merge(outputs, layout, merge_outputs), l_states + r_states


__all__ = ["RNNParams", "BaseRNNCell", "RNNCell", "LSTMCell", "GRUCell", "FusedRNNCell",
           "SequentialRNNCell", "BidirectionalCell"]
