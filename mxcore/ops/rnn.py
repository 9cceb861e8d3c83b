"""The fused recurrent operator (MXNet's RNN): vanilla RNN (relu/tanh), LSTM and GRU,
several layers, one or two directions, in one op.

``data`` is (T, N, I) (time first); ``parameters`` is one vector holding every weight in
MXNet's (and cuDNN's) packing order: first all weights, layer by layer and within a layer
direction by direction (forward, then reverse), each as i2h (G*H, in) then h2h (G*H, H)
(then h2r (P, H) for a projected LSTM); then all biases in the same order, i2h (G*H,)
then h2h (G*H,).  Gates are stacked as LSTM i, f, g, o and GRU r, z, n, with cuDNN's GRU
(``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``).  ``rnn_param_shapes`` lists the
pieces under Gluon's parameter names.

Outputs: ``out`` (T, N, D*H) and, with ``state_outputs``, the final states ``hy``
(L*D, N, H) and, for LSTM, ``cy``.  Dropout ``p`` applies to the outputs of every layer
but the last while training, its masks drawn from a seed attribute as the Dropout op's
are.  As cuDNN does (MXNet's CPU kernel ignores both), ``use_sequence_length`` honours
per-sequence lengths (outputs past a sequence's end are 0, its states are those of its
last step, the reverse direction starts at its last step) and ``lstm_state_clip_min/max``
clip the LSTM cell state after every step (``lstm_state_clip_nan`` turns NaN into the
minimum).

The op keeps a workspace output (what its backward needs per step: gate activations,
states, cell states), as MXNet's reserve space; the backward is one op,
``rnn_backward`` (back-propagation through time), not differentiable again (nor is
MXNet's).
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

from mxcore import autograd
from mxcore.base import MXCoreError, OperatorError
from mxcore.dispatch import invoke
from mxcore.array import NDArray
from mxcore.op import REQUIRED, Op

__all__ = ["RNN", "rnn", "rnn_param_shapes", "rnn_param_size"]

#: gates per mode (rows of each weight matrix are gates * state_size)
GATES = {"rnn_relu": 1, "rnn_tanh": 1, "lstm": 4, "gru": 3}
_HALF = ("float16", "bfloat16")

_ATTRS = {"state_size": REQUIRED, "num_layers": REQUIRED, "bidirectional": False,
          "mode": REQUIRED, "p": 0.0, "seed": 0, "projection_size": 0,
          "lstm_state_clip_min": None, "lstm_state_clip_max": None,
          "lstm_state_clip_nan": False, "use_sequence_length": False,
          "keep_workspace": True}
RNN_OP = Op("rnn", -1, nout=-1, attrs=dict(_ATTRS), aliases=("RNN",), saves_output=True,
            volatile_attrs=("seed",),
            doc="fused multi-layer (bidirectional) RNN/LSTM/GRU over (T, N, I) data with "
                "MXNet's packed parameter vector: (data, parameters, state[, state_cell]"
                "[, sequence_length]) -> (out, hy[, cy], workspace)")
RNN_BACKWARD = Op("rnn_backward", -1, nout=-1,
                  attrs={**_ATTRS, "grads": (True, True, True, False)},
                  doc="rnn's gradients in one op (back-propagation through time): (d out, "
                      "d hy[, d cy], data, parameters, state[, state_cell][, "
                      "sequence_length], workspace) -> the gradients ``grads`` asks for, "
                      "of (data, parameters, state, state_cell)")
OPS = [RNN_OP, RNN_BACKWARD]


# geometry ---------------------------------------------------------------------------------
def rnn_param_shapes(mode: str, input_size: int, state_size: int, num_layers: int = 1,
                     bidirectional: bool = False,
                     projection_size: Optional[int] = None) -> List[Tuple[str, tuple]]:
    """``[(name, shape)]`` of the pieces of the packed parameter vector, in order, under
    Gluon's names (``l0_i2h_weight``..., ``r0_...`` for the reverse direction)."""
    g, h = GATES[mode], int(state_size)
    r = int(projection_size or 0) or h
    dirs = ("l", "r")[:2 if bidirectional else 1]
    weights, biases = [], []
    n_in = int(input_size)
    for layer in range(int(num_layers)):
        for d in dirs:
            weights.append((f"{d}{layer}_i2h_weight", (g * h, n_in)))
            weights.append((f"{d}{layer}_h2h_weight", (g * h, r)))
            if projection_size:
                weights.append((f"{d}{layer}_h2r_weight", (r, h)))
            biases.append((f"{d}{layer}_i2h_bias", (g * h,)))
            biases.append((f"{d}{layer}_h2h_bias", (g * h,)))
        n_in = r * len(dirs)
    return weights + biases


def rnn_param_size(mode: str, input_size: int, state_size: int, num_layers: int = 1,
                   bidirectional: bool = False, projection_size: Optional[int] = None) -> int:
    """Length of the packed parameter vector."""
    total = 0
    for _, shape in rnn_param_shapes(mode, input_size, state_size, num_layers,
                                     bidirectional, projection_size):
        size = 1
        for s in shape:
            size *= s
        total += size
    return total


def _workspace_width(a) -> int:
    """Values the forward keeps per (layer, direction, step, sample): gate activations
    (LSTM, GRU), the state, the cell state (LSTM), the unprojected hidden state
    (projected LSTM), the recurrent n-gate term (GRU).  The workspace is (L*D, T*N*width):
    its kernels lay each kind out as a (T, N, kind's width) block."""
    h, mode = a["state_size"], a["mode"]
    r = a["projection_size"] or h
    gates = GATES[mode] * h if mode in ("lstm", "gru") else 0
    extra = {"lstm": h + (h if a["projection_size"] else 0), "gru": h}.get(mode, 0)
    return gates + r + extra


def _n_inputs(a) -> int:
    return 3 + (a["mode"] == "lstm") + bool(a["use_sequence_length"])


def _check_attrs(a) -> None:
    if a["mode"] not in GATES:
        raise MXCoreError(f"mode must be one of {sorted(GATES)}, got {a['mode']!r}")
    if int(a["state_size"]) < 1 or int(a["num_layers"]) < 1:
        raise MXCoreError(f"state_size and num_layers must be >= 1, got {a['state_size']} "
                          f"and {a['num_layers']}")
    if not 0 <= a["p"] < 1:
        raise MXCoreError(f"p must be in [0, 1), got {a['p']}")
    if a["projection_size"] and a["mode"] != "lstm":
        raise MXCoreError(f"projection_size applies to mode='lstm' only, got mode "
                          f"{a['mode']!r}")
    lo, hi = a["lstm_state_clip_min"], a["lstm_state_clip_max"]
    if (lo is None) != (hi is None):
        raise MXCoreError("lstm_state_clip_min and lstm_state_clip_max go together; got "
                          f"{lo} and {hi}")
    if lo is not None and lo > hi:
        raise MXCoreError(f"lstm_state_clip_min {lo} is above lstm_state_clip_max {hi}")


@RNN_OP.def_infer
def _rnn_infer(s, d, a):
    _check_attrs(a)
    n = _n_inputs(a)
    names = ["data", "parameters", "state"] + (["state_cell"] if a["mode"] == "lstm" else []) \
        + (["sequence_length"] if a["use_sequence_length"] else [])
    if len(s) != n:
        raise MXCoreError(f"mode {a['mode']!r} takes {n} inputs ({', '.join(names)}), got "
                          f"{len(s)}")
    x = tuple(s[0])
    if len(x) != 3 or x[0] < 1:
        raise MXCoreError(f"data must be 3-d (sequence length, batch, features) with at "
                          f"least one step, got shape {x}")
    t, batch, n_in = x
    h, layers = int(a["state_size"]), int(a["num_layers"])
    dirs = 2 if a["bidirectional"] else 1
    r = a["projection_size"] or h
    size = rnn_param_size(a["mode"], n_in, h, layers, dirs == 2, a["projection_size"])
    if tuple(s[1]) != (size,):
        raise MXCoreError(
            f"parameters shape {tuple(s[1])} does not match: mode {a['mode']!r}, input size "
            f"{n_in}, state_size {h}, num_layers {layers}, "
            f"{'bidirectional' if dirs == 2 else 'one direction'}"
            f"{', projection_size %d' % r if a['projection_size'] else ''} need ({size},)")
    states = [("state", (layers * dirs, batch, r),
               "projection_size" if a["projection_size"] else "state_size")]
    if a["mode"] == "lstm":
        states.append(("state_cell", (layers * dirs, batch, h), "state_size"))
    for (name, want, last), got in zip(states, s[2:]):
        if tuple(got) != want:
            raise MXCoreError(f"{name} shape {tuple(got)} does not match: expected {want} "
                              f"(num_layers * directions, batch, {last})")
    if a["use_sequence_length"] and tuple(s[-1]) != (batch,):
        raise MXCoreError(f"sequence_length shape {tuple(s[-1])} must be (batch,) = "
                          f"({batch},)")
    floats = d[:2 + len(states)]
    if len(set(floats)) > 1:
        raise MXCoreError("dtypes differ (" + ", ".join(f"{nm} {dt}" for nm, dt in
                                                      zip(names, floats))
                          + "); cast with .astype() first")
    shapes = [(t, batch, dirs * r), (layers * dirs, batch, r)]
    if a["mode"] == "lstm":
        shapes.append((layers * dirs, batch, h))
    work = (layers * dirs, t * batch * _workspace_width(a)) if a["keep_workspace"] else (0,)
    wdt = "float32" if str(d[0]) in _HALF else d[0]
    return shapes + [work], [d[0]] * (len(shapes)) + [wdt]


def _zeros_for(g, like):
    from mxcore.ops.creation import zeros_like
    return zeros_like(like) if g is None else g


@RNN_OP.def_grad
def _rnn_grad(c, *g):
    a = c.attrs
    lstm = a["mode"] == "lstm"
    want = (c.needs_grad(0), c.needs_grad(1), c.needs_grad(2), lstm and c.needs_grad(3))
    if not any(want):
        return (None,) * len(c.inputs)
    if not a["keep_workspace"]:
        raise MXCoreError("rnn was run without its workspace (keep_workspace=False): "
                          "it cannot be differentiated")
    outs = c.outputs
    heads = [_zeros_for(gi, o) for gi, o in zip(g[:-1], outs[:-1])]
    res = iter(invoke(RNN_BACKWARD, (*heads, *c.inputs, outs[-1]), {**a, "grads": want}))
    grads = [next(res) if w else None for w in want[:3 + lstm]]
    return tuple(grads) + (None,) * (len(c.inputs) - len(grads))


@RNN_BACKWARD.def_infer
def _rnn_backward_infer(s, d, a):
    fwd = {k: v for k, v in a.items() if k != "grads"}
    _check_attrs(fwd)
    lstm = a["mode"] == "lstm"
    n_heads = 3 if lstm else 2
    want = tuple(bool(v) for v in a["grads"])
    if len(want) != 4 or not any(want) or (want[3] and not lstm):
        raise MXCoreError(f"grads must be 4 flags (data, parameters, state, state_cell), "
                          f"at least one set, no state_cell flag without LSTM; got "
                          f"{a['grads']!r}")
    if not fwd["keep_workspace"]:
        raise MXCoreError("rnn_backward needs the forward's workspace (keep_workspace=True)")
    n_fwd = _n_inputs(fwd)
    if len(s) != n_heads + n_fwd + 1:
        raise MXCoreError(f"rnn_backward takes {n_heads} output gradients, the {n_fwd} "
                          f"forward inputs and the workspace; got {len(s)} arrays")
    fs, fd = s[n_heads:n_heads + n_fwd], d[n_heads:n_heads + n_fwd]
    out_shapes, out_dtypes = _rnn_infer(fs, fd, fwd)
    for i in range(n_heads):
        if tuple(s[i]) != tuple(out_shapes[i]):
            raise MXCoreError(f"output gradient {i} has shape {tuple(s[i])}; the forward's "
                              f"output {i} is {tuple(out_shapes[i])}")
    if tuple(s[-1]) != tuple(out_shapes[-1]):
        raise MXCoreError(f"workspace shape {tuple(s[-1])} does not match the forward's "
                          f"{tuple(out_shapes[-1])}")
    shapes = [tuple(x) for x in fs[:3 + lstm]]
    return [shapes[i] for i in range(len(shapes)) if want[i]], [fd[0]] * sum(want)


@RNN_BACKWARD.def_grad
def _rnn_backward_grad(c, *g):
    raise MXCoreError("rnn_backward has no gradient rule: RNN is differentiable once "
                      "(as in MXNet)")


# user-facing functions ---------------------------------------------------------------------
def _fail(exc: Exception, inputs: Sequence[NDArray]) -> OperatorError:
    return OperatorError("RNN", str(exc), [x.shape for x in inputs],
                         [x.dtype for x in inputs], inputs[0].context)


def RNN(data: NDArray, parameters: NDArray, state: NDArray,
        state_cell: Optional[NDArray] = None, sequence_length: Optional[NDArray] = None,
        state_size: Optional[int] = None, num_layers: Optional[int] = None,
        bidirectional: bool = False, mode: Optional[str] = None, p: float = 0.0,
        state_outputs: bool = False,
        projection_size: Optional[int] = None, lstm_state_clip_min: Optional[float] = None,
        lstm_state_clip_max: Optional[float] = None, lstm_state_clip_nan: bool = False,
        use_sequence_length: bool = False,
        name: Optional[str] = None) -> Union[NDArray, List[NDArray]]:
    """MXNet's RNN (see the module docstring): ``out`` or, with ``state_outputs``,
    ``[out, hy]`` (``[out, hy, cy]`` for LSTM).  Dropout ``p`` is active while training
    (``autograd.record()``/``train_mode``); ``name`` is accepted for compatibility."""
    inputs = [data, parameters, state]
    if mode == "lstm":
        inputs.append(state_cell)
    if use_sequence_length:
        inputs.append(sequence_length)
    shown = [x for x in inputs if isinstance(x, NDArray)] or [data]
    try:
        if state_size is None or num_layers is None or mode is None:
            raise MXCoreError("state_size, num_layers and mode are required")
        if (mode == "lstm") != (state_cell is not None):
            raise MXCoreError("mode 'lstm' needs state_cell" if mode == "lstm" else
                              f"mode {mode!r} takes no state_cell (LSTM only)")
        if use_sequence_length and sequence_length is None:
            raise MXCoreError("use_sequence_length=True needs sequence_length")
        if not all(isinstance(x, NDArray) for x in inputs):
            raise MXCoreError(f"expected NDArray inputs, got "
                              f"{[type(x).__name__ for x in inputs]}")
        training, lstm = autograd.is_training(), mode == "lstm"
        attrs = {"state_size": int(state_size), "num_layers": int(num_layers),
                 "bidirectional": bool(bidirectional), "mode": str(mode),
                 "p": float(p) if training else 0.0, "seed": 0,
                 "projection_size": int(projection_size or 0),
                 # other modes ignore the clipping range, as MXNet does
                 "lstm_state_clip_min": None if lstm_state_clip_min is None or not lstm
                 else float(lstm_state_clip_min),
                 "lstm_state_clip_max": None if lstm_state_clip_max is None or not lstm
                 else float(lstm_state_clip_max),
                 "lstm_state_clip_nan": bool(lstm_state_clip_nan),
                 "use_sequence_length": bool(use_sequence_length),
                 "keep_workspace": autograd.is_recording()
                 and any(x._ag is not None for x in inputs)}
        if not 0 <= float(p) < 1:
            raise MXCoreError(f"p must be in [0, 1), got {p}")
        _rnn_infer([x.shape for x in inputs], [x.dtype.name for x in inputs], attrs)
    except MXCoreError as exc:
        raise _fail(exc, shown) from None
    if attrs["p"] > 0:
        from mxcore.device import device_type
        dev = data.context
        attrs["seed"] = device_type(dev).host_seed(dev.index)
    outs = invoke(RNN_OP, inputs, attrs)
    return list(outs[:-1]) if state_outputs else outs[0]


rnn = RNN
