"""Recurrent layers and cells (gluon.rnn): MXNet 1.x parameter names and shapes, values
against the op table's per-step numpy reference, fused layers against the same
network unrolled as cells (values and gradients), states, layouts, deferred input
sizes, sequence lengths, dropout, the cell containers and modifiers, and errors."""
from __future__ import annotations

import re

import numpy as np
import pytest

import mxcore as mx
from mxcore import autograd
from mxcore.base import MXCoreError
from mxcore.gluon import rnn
from mxcore.ops.rnn import rnn_param_shapes
from mxcore.testing.optable.rnn import rnn_ref

nd = mx.nd

LAYERS = {"rnn_relu": lambda h, **kw: rnn.RNN(h, activation="relu", **kw),
          "rnn_tanh": lambda h, **kw: rnn.RNN(h, activation="tanh", **kw),
          "lstm": rnn.LSTM, "gru": rnn.GRU}


def _arr(a, device, dtype="float32"):
    return nd.array(np.asarray(a, dtype=dtype), ctx=device, dtype=dtype)


def _layer(mode, device, hidden=3, dtype="float32", scale=0.5, **kw):
    layer = LAYERS[mode](hidden, dtype=dtype, **kw)
    layer.initialize(mx.init.Uniform(scale), ctx=device)
    return layer


def _packed(layer, n_in):
    """The layer's parameters as one vector in the fused op's packing order."""
    shapes = rnn_param_shapes(layer._mode, n_in, layer._hidden_size, layer._num_layers,
                              layer._dir == 2, layer._projection_size)
    return np.concatenate([getattr(layer, name).data().asnumpy().ravel()
                           for name, _ in shapes])


def _host(a):
    return a.asnumpy().astype(np.float64)


# names, shapes, reprs ----------------------------------------------------------------------

def test_parameter_names_and_shapes_follow_mxnet(device):
    # as MXNet 1.9.1 lists them: per layer and direction, i2h/h2h weights then biases
    layer = rnn.LSTM(4, 2, bidirectional=True, input_size=3, prefix="lstm_")
    shapes = {k: v.shape for k, v in layer.collect_params().items()}
    expected = {}
    for i, n_in in enumerate((3, 8)):
        for d in "lr":
            expected.update({f"lstm_{d}{i}_i2h_weight": (16, n_in),
                             f"lstm_{d}{i}_h2h_weight": (16, 4),
                             f"lstm_{d}{i}_i2h_bias": (16,), f"lstm_{d}{i}_h2h_bias": (16,)})
    assert list(shapes) == list(expected) and shapes == expected
    gru = rnn.GRU(5, input_size=2, prefix="g_")
    assert {k: v.shape for k, v in gru.collect_params().items()} == {
        "g_l0_i2h_weight": (15, 2), "g_l0_h2h_weight": (15, 5), "g_l0_i2h_bias": (15,),
        "g_l0_h2h_bias": (15,)}
    proj = rnn.LSTM(6, input_size=2, projection_size=3, prefix="p_")
    assert {k: v.shape for k, v in proj.collect_params().items()} == {
        "p_l0_i2h_weight": (24, 2), "p_l0_h2h_weight": (24, 3), "p_l0_i2h_bias": (24,),
        "p_l0_h2h_bias": (24,), "p_l0_h2r_weight": (3, 6)}
    cell = rnn.GRUCell(4, input_size=3, prefix="c_")
    assert {k: v.shape for k, v in cell.collect_params().items()} == {
        "c_i2h_weight": (12, 3), "c_h2h_weight": (12, 4), "c_i2h_bias": (12,),
        "c_h2h_bias": (12,)}


def test_structural_names_are_mxnets_unfused_keys():
    net = mx.gluon.nn.Sequential()
    with net.name_scope():
        net.add(rnn.LSTM(2, bidirectional=True, input_size=3))
        net.add(rnn.GRU(2, input_size=4))
    keys = list(net._collect_params_with_prefix())
    assert keys[:4] == ["0._unfused.0.l_cell.i2h_weight", "0._unfused.0.l_cell.h2h_weight",
                        "0._unfused.0.l_cell.i2h_bias", "0._unfused.0.l_cell.h2h_bias"]
    assert keys[4] == "0._unfused.0.r_cell.i2h_weight"
    assert keys[-4:] == ["1._unfused.0.i2h_weight", "1._unfused.0.h2h_weight",
                         "1._unfused.0.i2h_bias", "1._unfused.0.h2h_bias"]


def test_reprs_follow_mxnet():
    assert repr(rnn.LSTM(4)) == "LSTM(None -> 4, TNC)"
    assert repr(rnn.RNN(4, 2, dropout=0.5, bidirectional=True, layout="NTC")) == \
        "RNN(None -> 4, NTC, num_layers=2, dropout=0.5, bidirectional)"
    assert repr(rnn.GRU(3, input_size=5)) == "GRU(5 -> 3, TNC)"
    assert repr(rnn.LSTMCell(4)) == "LSTMCell(None -> 16)"
    assert repr(rnn.RNNCell(3, input_size=2)) == "RNNCell(2 -> 3, tanh)"
    seq = rnn.SequentialRNNCell()
    seq.add(rnn.LSTMCell(3))
    seq.add(rnn.DropoutCell(0.5))
    seq.add(rnn.ResidualCell(rnn.GRUCell(3)))
    assert repr(seq) == ("SequentialRNNCell(\n(0): LSTMCell(None -> 12)\n"
                         "(1): DropoutCell(rate=0.5, axes=())\n"
                         "(2): ResidualCell(GRUCell(None -> 9))\n)")
    assert repr(rnn.ZoneoutCell(rnn.RNNCell(3), 0.1, 0.2)) == \
        "ZoneoutCell(p_out=0.1, p_state=0.2, RNNCell(None -> 3, tanh))"


# values -------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", list(LAYERS))
@pytest.mark.parametrize("layers, bidirectional", [(1, False), (2, True)])
@pytest.mark.parametrize("layout", ["TNC", "NTC"])
def test_layer_matches_the_reference(device, mode, layers, bidirectional, layout):
    rng = np.random.default_rng(3)
    layer = _layer(mode, device, num_layers=layers, bidirectional=bidirectional,
                   layout=layout, dtype="float64")
    x = rng.normal(size=(4, 3, 5))  # (T, N, C)
    states = [rng.normal(size=s["shape"]) for s in layer.state_info(3)]
    xin = x if layout == "TNC" else x.transpose(1, 0, 2)
    out, new = layer(_arr(xin, device, "float64"), [_arr(s, device, "float64") for s in states])
    ref = rnn_ref(x, _packed(layer, 5), *states, mode=mode, hidden=3, layers=layers,
                  dirs=2 if bidirectional else 1)
    want = ref[0] if layout == "TNC" else ref[0].transpose(1, 0, 2)
    np.testing.assert_allclose(out.asnumpy(), want, rtol=1e-10, atol=1e-12)
    assert len(new) == len(ref) - 1
    for got, r in zip(new, ref[1:]):
        np.testing.assert_allclose(got.asnumpy(), r, rtol=1e-10, atol=1e-12)
    # without states: the output alone, from zero states
    alone = layer(_arr(xin, device, "float64"))
    zeros = [np.zeros(s["shape"]) for s in layer.state_info(3)]
    ref0 = rnn_ref(x, _packed(layer, 5), *zeros, mode=mode, hidden=3, layers=layers,
                   dirs=2 if bidirectional else 1)[0]
    np.testing.assert_allclose(alone.asnumpy(),
                               ref0 if layout == "TNC" else ref0.transpose(1, 0, 2),
                               rtol=1e-10, atol=1e-12)


def test_projected_lstm_matches_the_reference(device):
    rng = np.random.default_rng(4)
    layer = _layer("lstm", device, hidden=4, num_layers=2, bidirectional=True,
                   projection_size=2, dtype="float64")
    x = rng.normal(size=(3, 2, 3))
    h0, c0 = rng.normal(size=(4, 2, 2)), rng.normal(size=(4, 2, 4))
    out, (h, c) = layer(_arr(x, device, "float64"),
                        [_arr(h0, device, "float64"), _arr(c0, device, "float64")])
    ref = rnn_ref(x, _packed(layer, 3), h0, c0, mode="lstm", hidden=4, layers=2, dirs=2,
                  proj=2)
    assert out.shape == (3, 2, 4) and h.shape == (4, 2, 2) and c.shape == (4, 2, 4)
    for got, r in zip((out, h, c), ref):
        np.testing.assert_allclose(got.asnumpy(), r, rtol=1e-10, atol=1e-12)


def _step_ref(mode, x, states, w):
    """One cell step from the cell's own parameters, written out per gate."""
    wi, wh, bi, bh = w
    a, b = x @ wi.T + bi, states[0] @ wh.T + bh
    hidden = wh.shape[1]
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    if mode == "lstm":
        s = a + b
        i, f = sig(s[:, :hidden]), sig(s[:, hidden:2 * hidden])
        g, o = np.tanh(s[:, 2 * hidden:3 * hidden]), sig(s[:, 3 * hidden:])
        c = f * states[1] + i * g
        return [o * np.tanh(c), c]
    if mode == "gru":
        r = sig(a[:, :hidden] + b[:, :hidden])
        z = sig(a[:, hidden:2 * hidden] + b[:, hidden:2 * hidden])
        n = np.tanh(a[:, 2 * hidden:] + r * b[:, 2 * hidden:])
        return [(1 - z) * n + z * states[0]]
    return [np.maximum(a + b, 0) if mode == "rnn_relu" else np.tanh(a + b)]


CELLS = {"rnn_relu": lambda h, **kw: rnn.RNNCell(h, "relu", **kw),
         "rnn_tanh": lambda h, **kw: rnn.RNNCell(h, **kw), "lstm": rnn.LSTMCell,
         "gru": rnn.GRUCell}


@pytest.mark.parametrize("mode", list(CELLS))
def test_cell_step_matches_the_gate_equations(device, mode):
    rng = np.random.default_rng(5)
    cell = CELLS[mode](3)
    cell.initialize(mx.init.Uniform(0.6), ctx=device)
    x = rng.normal(size=(2, 4)).astype(np.float32)
    states = [rng.normal(size=s["shape"]).astype(np.float32) for s in cell.state_info(2)]
    out, new = cell(_arr(x, device), [_arr(s, device) for s in states])
    assert cell.i2h_weight.shape[1] == 4  # deferred input size
    w = [p.data().asnumpy() for p in (cell.i2h_weight, cell.h2h_weight, cell.i2h_bias,
                                      cell.h2h_bias)]
    ref = _step_ref(mode, x, states, w)
    np.testing.assert_allclose(out.asnumpy(), ref[0], rtol=1e-5, atol=1e-6)
    for got, r in zip(new, ref):
        np.testing.assert_allclose(got.asnumpy(), r, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", list(LAYERS))
@pytest.mark.parametrize("layers, bidirectional", [(1, False), (2, False), (2, True)])
def test_fused_layer_equals_its_unrolled_cells(device, mode, layers, bidirectional):
    """Same weights, same numbers: outputs, final states and every gradient."""
    rng = np.random.default_rng(6)
    layer = _layer(mode, device, num_layers=layers, bidirectional=bidirectional,
                   layout="NTC", dtype="float64", input_size=4)
    cells = layer._unfuse()
    x = _arr(rng.normal(size=(2, 5, 4)), device, "float64")
    states = [_arr(rng.normal(size=s["shape"]), device, "float64")
              for s in layer.state_info(2)]
    head = _arr(rng.normal(size=(2, 5, 3 * layer._dir)), device, "float64")

    def grads(run):
        x.attach_grad()
        layer.collect_params().zero_grad()
        with autograd.record():
            out, new = run()
            loss = (out * head).sum() + sum((s * s).sum() for s in new)
        loss.backward()
        return out.asnumpy(), [s.asnumpy() for s in new], x.grad.asnumpy(), \
            {k: p.grad().asnumpy() for k, p in layer.collect_params().items()}

    fused = grads(lambda: layer(x, states))

    def unrolled():
        # the cells' states come per (layer, direction): [h, c] each for LSTM
        n = len(states)
        begin = [states[j][k] for k in range(layers * layer._dir) for j in range(n)]
        out, new = cells.unroll(5, x, begin_state=begin, layout="NTC", merge_outputs=True)
        return out, [nd.stack(*new[j::n], axis=0) for j in range(n)]

    cell_run = grads(unrolled)
    np.testing.assert_allclose(fused[0], cell_run[0], rtol=1e-10, atol=1e-12)
    for a, b in zip(fused[1], cell_run[1]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fused[2], cell_run[2], rtol=1e-9, atol=1e-11)
    assert fused[3].keys() == cell_run[3].keys()
    for k in fused[3]:
        assert np.abs(fused[3][k]).max() > 0, k
        np.testing.assert_allclose(fused[3][k], cell_run[3][k], rtol=1e-9, atol=1e-11,
                                   err_msg=k)


@pytest.mark.parametrize("mode", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_sequence_length_matches_the_reference_and_unroll(device, mode, bidirectional):
    rng = np.random.default_rng(7)
    layer = _layer(mode, device, num_layers=2, bidirectional=bidirectional, dtype="float64",
                   use_sequence_length=True)
    x = rng.normal(size=(5, 3, 2))
    lengths = np.array([5, 2, 0])
    states = layer.begin_state(3, ctx=device, dtype="float64")
    out, new = layer(_arr(x, device, "float64"), states, _arr(lengths, device, "int32"))
    zeros = [np.zeros(s.shape) for s in states]
    ref = rnn_ref(x, _packed(layer, 2), zeros[0], zeros[1] if mode == "lstm" else None,
                  lengths, mode=mode, hidden=3, layers=2, dirs=layer._dir)
    for got, r in zip([out] + new, ref):
        np.testing.assert_allclose(got.asnumpy(), r, rtol=1e-10, atol=1e-12)
    assert not out.asnumpy()[2:, 1].any() and not out.asnumpy()[:, 2].any()
    # the cells' valid_length does the same (layout TNC); their final states too, for
    # lengths of at least 1 (a length of 0 has no last step to read)
    cells = layer._unfuse()
    begin = cells.begin_state(batch_size=3, ctx=device, dtype="float64")
    c_out, _ = cells.unroll(5, _arr(x, device, "float64"), layout="TNC", merge_outputs=True,
                            valid_length=_arr(lengths, device, "float64"), begin_state=begin)
    np.testing.assert_allclose(c_out.asnumpy(), ref[0], rtol=1e-10, atol=1e-12)
    lengths[2] = 1
    _, fused = layer(_arr(x, device, "float64"), states, _arr(lengths, device, "int32"))
    _, per_cell = cells.unroll(5, _arr(x, device, "float64"), layout="TNC", begin_state=begin,
                               valid_length=_arr(lengths, device, "float64"))
    n = len(fused)  # the cells list [h(, c)] per layer and direction
    for j, state in enumerate(fused):
        np.testing.assert_allclose(state.asnumpy(),
                                   np.stack([s.asnumpy() for s in per_cell[j::n]]),
                                   rtol=1e-10, atol=1e-12)


def test_sequence_length_out_of_range_is_an_error(device):
    layer = _layer("gru", device, use_sequence_length=True)
    x = nd.ones((3, 2, 2), ctx=device)
    with pytest.raises(MXCoreError, match=r"sequence_length values must be in \[0, 3\]"):
        layer(x, layer.begin_state(2, ctx=device), _arr([4, 1], device))[0].wait_to_read()
    with pytest.raises(MXCoreError, match="use_sequence_length=True"):
        layer(x, layer.begin_state(2, ctx=device))


def test_float16_and_bfloat16_layers_follow_float32(device):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(4, 2, 3)).astype(np.float32)
    ref_layer = _layer("lstm", device, num_layers=2, bidirectional=True)
    want = ref_layer(_arr(x, device)).asnumpy()
    for dtype, tol in (("float16", 1e-2), ("bfloat16", 4e-2)):
        layer = _layer("lstm", device, num_layers=2, bidirectional=True, dtype=dtype)
        for name, p in layer.collect_params().items():
            p.set_data(getattr(ref_layer, name[len(layer.prefix):]).data().astype(dtype))
        got = layer(_arr(x, device).astype(dtype))
        assert got.dtype == np.dtype(dtype) if dtype == "float16" else got.dtype.name == dtype
        np.testing.assert_allclose(got.asnumpy().astype(np.float32), want, atol=tol, rtol=tol)


# states, layouts, deferred shapes -------------------------------------------------------

def test_begin_state_shapes_dtypes_and_funcs(device):
    layer = rnn.LSTM(5, 3, bidirectional=True, dtype="float64")
    h, c = layer.begin_state(4, ctx=device)
    assert h.shape == c.shape == (6, 4, 5) and h.dtype == np.float64
    assert h.context == device and not h.asnumpy().any()
    ones = rnn.GRU(2).begin_state(3, func=nd.ones, ctx=device)
    assert len(ones) == 1 and ones[0].shape == (1, 3, 2) and (ones[0].asnumpy() == 1).all()
    drawn = rnn.RNN(2).begin_state(3, func=mx.nd.random.uniform, ctx=device)
    assert drawn[0].shape == (1, 3, 2)
    proj = rnn.LSTM(4, projection_size=2).state_info(7)
    assert [s["shape"] for s in proj] == [(1, 7, 2), (1, 7, 4)]
    assert proj[0]["__layout__"] == "LNC"
    cell_states = rnn.LSTMCell(3).begin_state(batch_size=2, ctx=device)
    assert [s.shape for s in cell_states] == [(2, 3), (2, 3)]


def test_deferred_input_size_is_inferred_at_the_first_forward(device):
    layer = rnn.LSTM(4, 2, bidirectional=True)
    layer.initialize(ctx=device)
    assert layer.l0_i2h_weight.shape == (16, 0)
    out = layer(nd.ones((3, 2, 7), ctx=device))
    assert out.shape == (3, 2, 8)
    assert layer.l0_i2h_weight.shape == (16, 7) and layer.r0_i2h_weight.shape == (16, 7)
    assert layer.l1_i2h_weight.shape == (16, 8)
    assert repr(layer) == "LSTM(7 -> 4, TNC, num_layers=2, bidirectional)"


def test_layer_returns_states_only_when_given(device):
    layer = _layer("gru", device)
    x = nd.ones((3, 2, 4), ctx=device)
    assert isinstance(layer(x), mx.nd.NDArray)
    out, states = layer(x, layer.begin_state(2, ctx=device))
    assert isinstance(states, list) and states[0].shape == (1, 2, 3)
    single = layer(x, layer.begin_state(2, ctx=device)[0])  # one array is accepted too
    np.testing.assert_allclose(single[0].asnumpy(), out.asnumpy())


def test_states_carry_over_between_calls(device):
    """Running a sequence in two halves, passing the states on, equals one run."""
    rng = np.random.default_rng(9)
    layer = _layer("lstm", device, num_layers=2, bidirectional=False)
    x = _arr(rng.normal(size=(6, 2, 3)), device)
    whole, _ = layer(x, layer.begin_state(2, ctx=device))
    first, states = layer(x[:3], layer.begin_state(2, ctx=device))
    second, _ = layer(x[3:], states)
    np.testing.assert_allclose(nd.concat(first, second, dim=0).asnumpy(), whole.asnumpy(),
                               rtol=1e-5, atol=1e-6)


# dropout ----------------------------------------------------------------------------------

def test_dropout_between_layers(device):
    rng = np.random.default_rng(10)
    layer = _layer("lstm", device, num_layers=3, dropout=0.5, input_size=3)
    plain = _layer("lstm", device, num_layers=3, input_size=3)
    for name, p in plain.collect_params().items():
        p.set_data(getattr(layer, name[len(plain.prefix):]).data())
    x = _arr(rng.normal(size=(4, 8, 3)), device)
    np.testing.assert_allclose(layer(x).asnumpy(), plain(x).asnumpy())  # predict mode
    with autograd.train_mode():
        mx.random.seed(3)
        a = layer(x).asnumpy()
        mx.random.seed(3)
        b = layer(x).asnumpy()
        c = layer(x).asnumpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c) and not np.allclose(a, plain(x).asnumpy())
    # a single layer has no dropout (nothing between layers)
    single = _layer("gru", device, dropout=0.9)
    with autograd.train_mode():
        np.testing.assert_allclose(single(x).asnumpy(), single(x).asnumpy())


def test_dropout_masks_have_the_rate_and_the_inverted_scale(device):
    """Layer 1 passes layer 0's (positive) outputs through unchanged (identity i2h, no
    recurrence, relu), so the op's output is layer 0's output times the mask."""
    rng = np.random.default_rng(16)
    steps, batch, hidden, p = 4, 256, 8, 0.3
    first = {"l0_i2h_weight": rng.uniform(-0.2, 0.2, (hidden, hidden)),
             "l0_h2h_weight": rng.uniform(-0.2, 0.2, (hidden, hidden)),
             "l0_i2h_bias": np.full(hidden, 2.0), "l0_h2h_bias": np.zeros(hidden)}
    second = {"l1_i2h_weight": np.eye(hidden), "l1_h2h_weight": np.zeros((hidden, hidden)),
              "l1_i2h_bias": np.zeros(hidden), "l1_h2h_bias": np.zeros(hidden)}

    def pack(values, layers):
        return _arr(np.concatenate([values[name].ravel() for name, _ in rnn_param_shapes(
            "rnn_relu", hidden, hidden, layers)]), device)

    x = _arr(rng.normal(size=(steps, batch, hidden)), device)
    h1, h2 = nd.zeros((1, batch, hidden), ctx=device), nd.zeros((2, batch, hidden), ctx=device)
    kw = {"state_size": hidden, "mode": "rnn_relu", "p": p}
    y0 = nd.RNN(x, pack(first, 1), h1, num_layers=1, **kw).asnumpy()
    with autograd.train_mode():
        y = nd.RNN(x, pack({**first, **second}, 2), h2, num_layers=2, **kw).asnumpy()
    assert (y0 > 0).all()
    ratio = y / y0
    dropped = np.isclose(ratio, 0)
    assert np.allclose(ratio[~dropped], 1 / (1 - p), rtol=1e-5)
    assert abs(dropped.mean() - p) < 0.03  # 8192 draws: 5 standard deviations
    np.testing.assert_allclose(nd.RNN(x, pack({**first, **second}, 2), h2, num_layers=2,
                                      **kw).asnumpy(), y0, rtol=1e-5)  # predict mode


def test_dropout_gradient_uses_the_forward_masks(device):
    """Finite differences with the same seed agree with backward through the masks."""
    rng = np.random.default_rng(11)
    # input_size given: a deferred initialisation would draw from the generator
    layer = _layer("gru", device, hidden=2, num_layers=2, dropout=0.4, dtype="float64",
                   bidirectional=True, input_size=2)
    x_host = rng.normal(size=(3, 2, 2))
    head = rng.normal(size=(3, 2, 4))

    def loss(xh):
        mx.random.seed(5)
        with autograd.train_mode():
            return float((layer(_arr(xh, device, "float64")).asnumpy() * head).sum())

    x = _arr(x_host, device, "float64")
    x.attach_grad()
    mx.random.seed(5)
    with autograd.record():
        out = layer(x)
    out.backward(_arr(head, device, "float64"))
    num = np.zeros_like(x_host)
    for idx in np.ndindex(x_host.shape):
        up, dn = x_host.copy(), x_host.copy()
        up[idx] += 1e-6
        dn[idx] -= 1e-6
        num[idx] = (loss(up) - loss(dn)) / 2e-6
    np.testing.assert_allclose(x.grad.asnumpy(), num, rtol=1e-5, atol=1e-7)


# cells and containers -------------------------------------------------------------------

def test_sequential_cell_steps_and_unrolls(device):
    rng = np.random.default_rng(12)
    seq = rnn.SequentialRNNCell()
    with seq.name_scope():
        seq.add(rnn.LSTMCell(3, input_size=2))
        seq.add(rnn.GRUCell(4, input_size=3))
    seq.initialize(mx.init.Uniform(0.5), ctx=device)
    assert [s["shape"] for s in seq.state_info(5)] == [(5, 3), (5, 3), (5, 4)]
    x = _arr(rng.normal(size=(5, 6, 2)), device)  # NTC
    states = seq.begin_state(batch_size=5, ctx=device)
    outs = []
    for t in range(6):
        o, states = seq(x[:, t], states)
        outs.append(o.asnumpy())
    merged, final = seq.unroll(6, x, layout="NTC", merge_outputs=True)
    assert merged.shape == (5, 6, 4)
    np.testing.assert_allclose(merged.asnumpy(), np.stack(outs, axis=1), rtol=1e-5, atol=1e-6)
    for a, b in zip(final, states):
        np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-5, atol=1e-6)
    listed, _ = seq.unroll(6, [x[:, t] for t in range(6)], merge_outputs=False)
    assert isinstance(listed, list) and len(listed) == 6
    np.testing.assert_allclose(listed[2].asnumpy(), outs[2], rtol=1e-5, atol=1e-6)
    tnc, _ = seq.unroll(6, nd.swapaxes(x, 0, 1), layout="TNC", merge_outputs=True)
    np.testing.assert_allclose(tnc.asnumpy(), np.stack(outs), rtol=1e-5, atol=1e-6)
    assert len(seq) == 2 and isinstance(seq[1], rnn.GRUCell)


def test_bidirectional_cell_concatenates_both_directions(device):
    rng = np.random.default_rng(13)
    left, right = rnn.RNNCell(2, input_size=3), rnn.RNNCell(2, input_size=3)
    bi = rnn.BidirectionalCell(left, right)
    bi.initialize(mx.init.Uniform(0.5), ctx=device)
    x = _arr(rng.normal(size=(2, 4, 3)), device)
    out, states = bi.unroll(4, x, merge_outputs=True)
    assert out.shape == (2, 4, 4) and len(states) == 2
    fwd, _ = left.unroll(4, x, merge_outputs=True)
    bwd, _ = right.unroll(4, _arr(x.asnumpy()[:, ::-1], device), merge_outputs=True)
    np.testing.assert_allclose(out.asnumpy()[..., :2], fwd.asnumpy(), rtol=1e-6)
    np.testing.assert_allclose(out.asnumpy()[..., 2:], bwd.asnumpy()[:, ::-1], rtol=1e-6)
    with pytest.raises(MXCoreError, match="cannot be stepped"):
        bi(x[:, 0], bi.begin_state(batch_size=2, ctx=device))


def test_dropout_residual_and_zoneout_cells(device):
    rng = np.random.default_rng(14)
    x = _arr(rng.normal(size=(3, 4, 2)), device)
    drop = rnn.DropoutCell(0.5)
    out, states = drop.unroll(4, x, merge_outputs=True)
    np.testing.assert_array_equal(out.asnumpy(), x.asnumpy())  # predict mode
    with autograd.train_mode():
        dropped, _ = drop.unroll(4, x, merge_outputs=True)
    kept = dropped.asnumpy() != 0
    np.testing.assert_allclose(dropped.asnumpy()[kept], 2 * x.asnumpy()[kept], rtol=1e-6)
    assert states == [] and drop.state_info() == []

    base = rnn.GRUCell(2, input_size=2)
    res = rnn.ResidualCell(base)
    res.initialize(mx.init.Uniform(0.5), ctx=device)
    out, _ = res.unroll(4, x, merge_outputs=True)
    base._modified = False
    plain, _ = base.unroll(4, x, merge_outputs=True)
    base._modified = True
    np.testing.assert_allclose(out.asnumpy(), plain.asnumpy() + x.asnumpy(), rtol=1e-6)
    with pytest.raises(MXCoreError, match="modifier"):
        base.begin_state(batch_size=3)

    inner = rnn.LSTMCell(2, input_size=2)
    zone = rnn.ZoneoutCell(inner, zoneout_outputs=0.5, zoneout_states=0.5)
    zone.initialize(mx.init.Uniform(0.5), ctx=device)
    z_out, _ = zone.unroll(4, x, merge_outputs=True)  # predict mode: no zoneout
    inner._modified = False
    i_out, _ = inner.unroll(4, x, merge_outputs=True)
    np.testing.assert_allclose(z_out.asnumpy(), i_out.asnumpy(), rtol=1e-6)
    with autograd.train_mode():
        t_out, _ = zone.unroll(4, x, merge_outputs=True)
    assert t_out.shape == (3, 4, 2) and not np.allclose(t_out.asnumpy(), i_out.asnumpy())
    assert zone.prefix == inner.prefix + "zoneout"


def test_training_updates_every_parameter(device):
    rng = np.random.default_rng(15)
    net = mx.gluon.nn.Sequential()
    with net.name_scope():
        net.add(rnn.LSTM(4, 2, bidirectional=True, layout="NTC", input_size=2))
        net.add(mx.gluon.nn.Dense(1, flatten=False, in_units=8))
    net.initialize(mx.init.Xavier(), ctx=device)
    x = _arr(rng.normal(size=(3, 5, 2)), device)
    y = _arr(rng.normal(size=(3, 5, 1)), device)
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    before = {k: p.data().asnumpy().copy() for k, p in net.collect_params().items()}
    losses = []
    for _ in range(5):
        with autograd.record():
            loss = ((net(x) - y) ** 2).mean()
        loss.backward()
        trainer.step(1)
        losses.append(float(loss.asscalar()))
    assert losses[-1] < losses[0]
    for k, p in net.collect_params().items():
        assert not np.allclose(p.data().asnumpy(), before[k]), k


def test_save_load_round_trip(device, tmp_path):
    layer = _layer("gru", device, num_layers=2, bidirectional=True, input_size=3)
    path = str(tmp_path / "gru.params")
    layer.save_parameters(path)
    other = rnn.GRU(3, 2, bidirectional=True)
    other.load_parameters(path, ctx=device)
    x = nd.ones((2, 1, 3), ctx=device)
    np.testing.assert_array_equal(other(x).asnumpy(), layer(x).asnumpy())


def test_summary_and_hybridize(device, capsys):
    layer = rnn.LSTM(6)
    layer.initialize(ctx=device)
    layer.summary(nd.ones((5, 2, 3), ctx=device))
    assert "Total params: 264" in capsys.readouterr().out  # 4 * 6 * (3 + 6 + 2)
    layer.hybridize()
    out = layer(nd.ones((5, 2, 3), ctx=device))
    assert out.shape == (5, 2, 6)
    with pytest.raises(AssertionError, match="hybridized"):  # as MXNet refuses it
        layer.summary(nd.ones((5, 2, 3), ctx=device))


# errors ---------------------------------------------------------------------------------

def test_wrong_state_shape_names_the_layer_and_the_shapes(device):
    layer = rnn.LSTM(4, 2, prefix="enc_")
    layer.initialize(ctx=device)
    x = nd.ones((3, 5, 2), ctx=device)
    h, c = layer.begin_state(5, ctx=device)
    with pytest.raises(MXCoreError, match=r"LSTM 'enc'.*state 1 \(c\).*\(2, 5, 4\).*\(2, 3, 4\)"):
        layer(x, [h, nd.zeros((2, 3, 4), ctx=device)])
    with pytest.raises(MXCoreError, match=r"LSTM 'enc' takes 2 state array\(s\), got 1"):
        layer(x, [h])


def test_wrong_input_size_names_the_layer_weight_and_shapes(device):
    layer = rnn.GRU(3, prefix="dec_")
    layer.initialize(ctx=device)
    layer(nd.ones((2, 2, 4), ctx=device))
    with pytest.raises(MXCoreError, match=r"GRU 'dec'.*\(2, 2, 5\).*5 features.*takes 4.*"
                                          r"dec_l0_i2h_weight.*\(9, 4\)"):
        layer(nd.ones((2, 2, 5), ctx=device))
    with pytest.raises(MXCoreError, match=r"GRU 'dec' takes 3-d input \(TNC\), got \(2, 4\)"):
        layer(nd.ones((2, 4), ctx=device))
    cell = rnn.LSTMCell(2, input_size=3, prefix="cell_")
    cell.initialize(ctx=device)
    with pytest.raises(MXCoreError, match=r"LSTMCell 'cell'.*\(4, 5\).*\(batch, 3\)"):
        cell(nd.ones((4, 5), ctx=device), cell.begin_state(batch_size=4, ctx=device))


@pytest.mark.parametrize("make, message", [
    (lambda: rnn.LSTM(4, layout="NCT"), "layout must be one of"),
    (lambda: rnn.RNN(4, activation="sigmoid"), "activation must be 'relu' or 'tanh'"),
    (lambda: rnn.GRU(0), "hidden_size and num_layers must be >= 1"),
])
def test_bad_constructor_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_op_errors_name_the_op_shapes_and_device(device):
    x = nd.ones((3, 2, 4), ctx=device)
    p = nd.ones((10,), ctx=device)
    h = nd.zeros((1, 2, 3), ctx=device)
    with pytest.raises(MXCoreError, match=r"operator 'RNN': parameters shape \(10,\) does not "
                                          r"match: mode 'lstm', input size 4.*need \(108,\).*"
                                          + re.escape(f"on {device!r}")):
        nd.RNN(x, p, h, nd.zeros((1, 2, 3), ctx=device), state_size=3, num_layers=1,
               mode="lstm")
    good = nd.ones((mx.nd.rnn_param_size("gru", 4, 3),), ctx=device)
    with pytest.raises(MXCoreError, match=r"state shape \(1, 3, 3\) does not match: expected "
                                          r"\(1, 2, 3\)"):
        nd.RNN(x, good, nd.zeros((1, 3, 3), ctx=device), state_size=3, num_layers=1,
               mode="gru")
    with pytest.raises(MXCoreError, match="mode 'lstm' needs state_cell"):
        nd.RNN(x, good, h, state_size=3, num_layers=1, mode="lstm")
    with pytest.raises(MXCoreError, match="mode 'gru' takes no state_cell"):
        nd.RNN(x, good, h, h, state_size=3, num_layers=1, mode="gru")
    with pytest.raises(MXCoreError, match="lstm_state_clip_min 1.0 is above"):
        nd.RNN(x, nd.ones((108,), ctx=device), h, h, state_size=3, num_layers=1, mode="lstm",
               lstm_state_clip_min=1, lstm_state_clip_max=-1)
    with pytest.raises(MXCoreError, match="mode must be one of"):
        nd.RNN(x, good, h, state_size=3, num_layers=1, mode="elman")
    with pytest.raises(MXCoreError, match="dtypes differ"):
        nd.RNN(x.astype("float64"), good, h, state_size=3, num_layers=1, mode="gru")
    with pytest.raises(MXCoreError, match="projection_size applies to mode='lstm' only"):
        nd.RNN(x, good, h, state_size=3, num_layers=1, mode="gru", projection_size=2)
