"""Op-table cases: the fused RNN operator.  Imported by mxcore.testing.optable, which
collects every case into one table.

The reference runs the recurrences as written in MXNet's documentation, one sample and
one time step at a time, from its own unpacking of the parameter vector (checked
against MXNet 1.9.1 with the same packed parameters): LSTM gates i, f, g, o; GRU r, z, n
with n = tanh(W_in x + b_in + r (W_hn h + b_hn)).
"""
from __future__ import annotations

import numpy as np

import mxcore as mx
from mxcore.testing.table import FLOATS, In, collector

CASES: list = []
case = collector(CASES)
nd = mx.nd


GATES = {"rnn_relu": 1, "rnn_tanh": 1, "lstm": 4, "gru": 3}
#: parameters are scaled by this inside the case (keeps the recurrences away from
#: saturation, so every gradient is informative)
SCALE = 0.5


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def _unpack(params, mode, n_in, hidden, layers, dirs, proj):
    """{(layer, direction): {'wi', 'wh'[, 'wr'], 'bi', 'bh'}}: all weights (i2h, h2h,
    h2r per layer and direction), then all biases."""
    g, r = GATES[mode], proj or hidden
    pos, out = 0, {}

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        pos += n
        return params[pos - n:pos].reshape(shape)

    for layer in range(layers):
        for d in range(dirs):
            w = out[layer, d] = {}
            w["wi"] = take(g * hidden, n_in if layer == 0 else r * dirs)
            w["wh"] = take(g * hidden, r)
            if proj:
                w["wr"] = take(proj, hidden)
    for layer in range(layers):
        for d in range(dirs):
            out[layer, d]["bi"] = take(g * hidden)
            out[layer, d]["bh"] = take(g * hidden)
    assert pos == params.size
    return out


def _cell(mode, x, h, c, w, clip):
    """One step of one sample: (new h (projected for LSTMP), new c)."""
    hidden = w["wh"].shape[0] // GATES[mode]
    a = w["wi"] @ x + w["bi"]
    b = w["wh"] @ h + w["bh"]
    if mode == "rnn_relu":
        return np.maximum(a + b, 0), None
    if mode == "rnn_tanh":
        return np.tanh(a + b), None
    if mode == "gru":
        r = _sigmoid(a[:hidden] + b[:hidden])
        z = _sigmoid(a[hidden:2 * hidden] + b[hidden:2 * hidden])
        n = np.tanh(a[2 * hidden:] + r * b[2 * hidden:])
        return (1 - z) * n + z * h, None
    s = a + b
    i, f = _sigmoid(s[:hidden]), _sigmoid(s[hidden:2 * hidden])
    gg, o = np.tanh(s[2 * hidden:3 * hidden]), _sigmoid(s[3 * hidden:])
    c = f * c + i * gg
    if clip is not None:
        c = np.clip(c, -clip, clip)
    h = o * np.tanh(c)
    return (w["wr"] @ h if "wr" in w else h), c


def rnn_ref(x, params, h0, c0=None, lengths=None, *, mode, hidden, layers=1, dirs=1,
            proj=None, clip=None):
    """(out, hy[, cy]): every layer, direction, sample and step in plain loops.  A
    sequence of length n runs its first n steps (the reverse direction from step n-1
    back to 0); its outputs past n are 0 and its final states are those after its
    last step."""
    steps, batch, n_in = x.shape
    r = proj or hidden
    w = _unpack(params, mode, n_in, hidden, layers, dirs, proj)
    hy = np.zeros((layers * dirs, batch, r))
    cy = np.zeros((layers * dirs, batch, hidden))
    inp = x
    for layer in range(layers):
        out = np.zeros((steps, batch, dirs * r))
        for d in range(dirs):
            k = layer * dirs + d
            for n in range(batch):
                length = steps if lengths is None else int(lengths[n])
                h, c = h0[k, n], None if c0 is None else c0[k, n]
                order = range(length) if d == 0 else range(length - 1, -1, -1)
                for t in order:
                    h, c = _cell(mode, inp[t, n], h, c, w[layer, d], clip)
                    out[t, n, d * r:(d + 1) * r] = h
                hy[k, n] = h
                if c is not None:
                    cy[k, n] = c
        inp = out
    return (inp, hy, cy) if mode == "lstm" else (inp, hy)


def _n_params(mode, n_in, hidden, layers, dirs, proj=None):
    g, r = GATES[mode], proj or hidden
    total = 0
    for layer in range(layers):
        fan_in = n_in if layer == 0 else r * dirs
        total += dirs * (g * hidden * (fan_in + r) + 2 * g * hidden + (proj or 0) * hidden)
    return total


def _case(name, mode, layers=1, dirs=1, proj=None, clip=None, lengths=False,
          state_outputs=True, steps=3, batch=2, n_in=3, hidden=2, grad=False):
    """A forward case in every float dtype, or (``grad``) a float64 gradient case."""
    r = proj or hidden
    inputs = [In((steps, batch, n_in)),
              In((_n_params(mode, n_in, hidden, layers, dirs, proj),)),
              In((layers * dirs, batch, r))]
    if mode == "lstm":
        inputs.append(In((layers * dirs, batch, hidden)))
    if lengths:
        inputs.append(In((batch,), "index", "int32", diff=False, arg=steps + 1))
    kw = {"state_size": hidden, "num_layers": layers, "bidirectional": dirs == 2, "mode": mode,
          "state_outputs": state_outputs, "projection_size": proj,
          "use_sequence_length": lengths}
    if clip is not None:
        kw.update(lstm_state_clip_min=-clip, lstm_state_clip_max=clip)

    def fn(x, p, h, *rest):
        rest = list(rest)
        c = rest.pop(0) if mode == "lstm" else None
        n = rest.pop(0) if lengths else None
        return nd.RNN(x, p * SCALE, h, c, n, **kw)

    def ref(x, p, h, *rest):
        rest = list(rest)
        c = rest.pop(0) if mode == "lstm" else None
        n = rest.pop(0) if lengths else None
        outs = rnn_ref(x, p * SCALE, h, c, n, mode=mode, hidden=hidden, layers=layers,
                       dirs=dirs, proj=proj, clip=clip)
        return outs if state_outputs else outs[0]

    case(name, fn, ref, tuple(inputs), ("float64",) if grad else FLOATS, grad=grad,
         grad2=False, tol=_TOL)


# float32 reassociates the products; 16-bit inputs run in float32 and round once
_TOL = {"float32": (1e-4, 1e-5), "float16": (2e-2, 1e-2), "bfloat16": (4e-2, 3e-2)}

# forward, every dtype
for _mode in GATES:
    _case(f"rnn_{_mode}", _mode)
    _case(f"rnn_{_mode}_2layers_bidirectional", _mode, layers=2, dirs=2)
    _case(f"rnn_{_mode}_sequence_length_bidirectional", _mode, layers=2, dirs=2, lengths=True,
          steps=4)
_case("rnn_lstm_2layers", "lstm", layers=2)
_case("rnn_gru_bidirectional_out_only", "gru", dirs=2, state_outputs=False)
_case("rnn_lstm_projection_2layers_bidirectional", "lstm", layers=2, dirs=2, proj=1,
      hidden=3)
_case("rnn_lstm_state_clip", "lstm", layers=2, clip=0.4, steps=4)

# float64 gradients by finite differences: every input value costs two forward passes,
# so these are as small as still shows each weight's layout (hidden 2: the h2h blocks
# are square; two layers and directions: the packing order)
for _mode in GATES:
    _case(f"rnn_{_mode}_grad", _mode, steps=2, batch=1, n_in=1, grad=True)
    _case(f"rnn_{_mode}_2layers_bidirectional_grad", _mode, layers=2, dirs=2, steps=2,
          batch=1, n_in=1, hidden=1, grad=True)
_case("rnn_rnn_tanh_2layers_bidirectional_hidden2_grad", "rnn_tanh", layers=2, dirs=2,
      steps=2, batch=1, n_in=2, grad=True)
_case("rnn_lstm_sequence_length_bidirectional_grad", "lstm", dirs=2, lengths=True, steps=3,
      n_in=1, hidden=1, grad=True)
_case("rnn_gru_sequence_length_grad", "gru", lengths=True, steps=3, n_in=1, grad=True)
_case("rnn_lstm_projection_grad", "lstm", proj=1, steps=2, batch=1, n_in=1, grad=True)
_case("rnn_lstm_state_clip_grad", "lstm", clip=0.4, steps=3, batch=1, n_in=1, grad=True)
