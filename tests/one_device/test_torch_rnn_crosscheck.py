"""Recurrent layers against PyTorch CPU with the same weights: gluon.rnn.RNN/LSTM/GRU
(over the fused RNN op) and torch.nn.RNN/LSTM/GRU, forward outputs and final states, and
the gradients of the input, the initial states and every weight.  MXNet's parameters
map one to one onto torch's (``l0_i2h_weight`` -> ``weight_ih_l0``, ``r0_...`` ->
``..._l0_reverse``, ``h2r`` -> ``weight_hr``): both stack the gates as LSTM i, f, g, o
and GRU r, z, n, and torch's GRU is cuDNN's formula, as MXNet's is.  Skips when torch
is not installed (it is never a dependency)."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore.gluon import rnn

torch = pytest.importorskip("torch")

MODES = {  # mode -> (mxcore layer, torch module, extra torch kwargs)
    "rnn_tanh": (lambda h, **kw: rnn.RNN(h, activation="tanh", **kw), torch.nn.RNN,
                 {"nonlinearity": "tanh"}),
    "rnn_relu": (lambda h, **kw: rnn.RNN(h, activation="relu", **kw), torch.nn.RNN,
                 {"nonlinearity": "relu"}),
    "lstm": (rnn.LSTM, torch.nn.LSTM, {}),
    "gru": (rnn.GRU, torch.nn.GRU, {}),
}
TORCH_NAMES = {"i2h_weight": "weight_ih", "h2h_weight": "weight_hh", "i2h_bias": "bias_ih",
               "h2h_bias": "bias_hh", "h2r_weight": "weight_hr"}


def _torch_name(name: str) -> str:
    """``l1_i2h_weight`` -> ``weight_ih_l1``; ``r0_h2h_bias`` -> ``bias_hh_l0_reverse``."""
    where, kind = name.split("_", 1)
    return f"{TORCH_NAMES[kind]}_l{where[1:]}" + ("_reverse" if where[0] == "r" else "")


def _pair(mode, hidden, layers, bidirectional, proj, n_in, seed, **layer_kw):
    make, torch_cls, extra = MODES[mode]
    kw = dict(layer_kw, **({"projection_size": proj} if proj else {}))
    layer = make(hidden, num_layers=layers, bidirectional=bidirectional, input_size=n_in,
                 dtype="float64", **kw)
    layer.initialize(mx.init.Uniform(0.4))
    tkw = {"proj_size": proj} if proj else {}
    tlayer = torch_cls(n_in, hidden, num_layers=layers, bidirectional=bidirectional,
                       dtype=torch.float64, **extra, **tkw)
    rng = np.random.default_rng(seed)
    tparams = dict(tlayer.named_parameters())
    names = [name[len(layer.prefix):] for name in layer.collect_params()]
    assert sorted(_torch_name(n) for n in names) == sorted(tparams)
    for name in names:
        value = rng.uniform(-0.5, 0.5, size=getattr(layer, name).shape)
        getattr(layer, name).set_data(mx.nd.array(value, dtype="float64"))
        with torch.no_grad():
            tparams[_torch_name(name)].copy_(torch.from_numpy(value))
    return layer, tlayer, names, tparams


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("layers, bidirectional", [(1, False), (2, False), (1, True),
                                                   (3, True)])
def test_layer_matches_torch(mode, layers, bidirectional):
    _run(mode, layers, bidirectional, proj=None)


@pytest.mark.parametrize("layers, bidirectional", [(1, False), (2, True)])
def test_projected_lstm_matches_torch(layers, bidirectional):
    _run("lstm", layers, bidirectional, proj=3)


def _run(mode, layers, bidirectional, proj, steps=6, batch=4, n_in=5, hidden=4):
    seed = layers * 10 + bidirectional + (proj or 0) * 100 + list(MODES).index(mode)
    layer, tlayer, names, tparams = _pair(mode, hidden, layers, bidirectional, proj, n_in, seed)
    rng = np.random.default_rng(seed + 1)
    dirs = 2 if bidirectional else 1
    x = rng.normal(size=(steps, batch, n_in))
    states = [rng.normal(size=s["shape"]) for s in layer.state_info(batch)]
    heads = [rng.normal(size=(steps, batch, dirs * (proj or hidden)))] + \
        [rng.normal(size=s.shape) for s in states]

    xs = [mx.nd.array(a, dtype="float64") for a in [x] + states]
    for a in xs:
        a.attach_grad()
    with mx.autograd.record():
        out, new = layer(xs[0], xs[1:])
        loss = sum(((o * mx.nd.array(h, dtype="float64")).sum()
                    for o, h in zip([out] + new, heads)), mx.nd.zeros((1,), dtype="float64"))
    loss.backward()

    ts = [torch.tensor(a, requires_grad=True) for a in [x] + states]
    targs = (ts[1], ts[2]) if mode == "lstm" else ts[1]
    tout, tnew = tlayer(ts[0], targs)
    tnew = list(tnew) if mode == "lstm" else [tnew]
    tloss = sum((o * torch.from_numpy(h)).sum() for o, h in zip([tout] + tnew, heads))
    tloss.backward()

    for got, want in zip([out] + new, [tout] + tnew):
        np.testing.assert_allclose(got.asnumpy(), want.detach().numpy(), rtol=1e-10,
                                   atol=1e-12)
    for a, t in zip(xs, ts):
        np.testing.assert_allclose(a.grad.asnumpy(), t.grad.numpy(), rtol=1e-9, atol=1e-11)
    for name in names:
        np.testing.assert_allclose(getattr(layer, name).grad().asnumpy(),
                                   tparams[_torch_name(name)].grad.numpy(), rtol=1e-9,
                                   atol=1e-11, err_msg=name)


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_sequence_lengths_match_packed_sequences(mode):
    """use_sequence_length against torch's packed sequences: outputs past each
    sequence's end are 0 and the final states are those of its last step."""
    layer, tlayer, names, tparams = _pair(mode, 3, 2, True, None, 2, 7,
                                          use_sequence_length=True)
    rng = np.random.default_rng(8)
    lengths = np.array([5, 3, 1])
    x = rng.normal(size=(5, 3, 2))
    out, new = layer(mx.nd.array(x, dtype="float64"),
                     layer.begin_state(3, dtype="float64"),
                     mx.nd.array(lengths, dtype="int32"))
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.from_numpy(x), lengths)
    tout, tnew = tlayer(packed)
    tout, _ = torch.nn.utils.rnn.pad_packed_sequence(tout, total_length=5)
    tnew = list(tnew) if mode == "lstm" else [tnew]
    np.testing.assert_allclose(out.asnumpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    for got, want in zip(new, tnew):
        np.testing.assert_allclose(got.asnumpy(), want.detach().numpy(), rtol=1e-10,
                                   atol=1e-12)
