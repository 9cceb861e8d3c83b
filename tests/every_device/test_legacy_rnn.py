"""MXNet 1.x's symbolic RNN cells (``mx.rnn``): a fused cell and the equivalent stack
of unfused cells compute the same outputs and input gradients once the fused
parameter vector is unpacked into their weights (through ``mx.mod.Module``)."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx


def _module(sym, device, dshape, grad_req):
    mod = mx.mod.Module(sym, label_names=None, context=device)
    mod.bind(data_shapes=[("data", dshape)], label_shapes=None, inputs_need_grad=True,
             grad_req=grad_req)
    return mod


def _consistent(fused, stack, device, grad_req, T=3, N=2, I=5, H=4):
    dshape = (N, T, I)
    data = mx.sym.Variable("data")
    y1, _ = fused.unroll(T, data, layout="NTC", merge_outputs=True)
    y2, _ = stack.unroll(T, data, layout="NTC", merge_outputs=True)
    mod1, mod2 = _module(y1, device, dshape, grad_req), _module(y2, device, dshape, grad_req)
    mod1.init_params()
    args, auxs = mod1.get_params()
    mod2.set_params(stack.pack_weights(fused.unpack_weights(args)), auxs)
    batch = mx.io.DataBatch(data=[mx.random.uniform(shape=dshape, ctx=device)])
    for train in (False, True):
        mod1.forward(batch, is_train=train)
        mod2.forward(batch, is_train=train)
        np.testing.assert_allclose(mod1.get_outputs()[0].asnumpy(),
                                   mod2.get_outputs()[0].asnumpy(), rtol=1e-4, atol=1e-6)
    dy = mx.random.uniform(shape=mod1.get_outputs()[0].shape, ctx=device)
    mod1.backward(out_grads=[dy])
    mod2.backward(out_grads=[dy])
    data_req = grad_req.get("data") if isinstance(grad_req, dict) else grad_req
    if data_req == "null":
        assert mod1.get_input_grads()[0] is None and mod2.get_input_grads()[0] is None
    else:
        np.testing.assert_allclose(mod1.get_input_grads()[0].asnumpy(),
                                   mod2.get_input_grads()[0].asnumpy(), rtol=1e-4, atol=1e-6)


CELLS = {"lstm": lambda h, p: mx.rnn.LSTMCell(h, prefix=p),
         "gru": lambda h, p: mx.rnn.GRUCell(h, prefix=p),
         "rnn_tanh": lambda h, p: mx.rnn.RNNCell(h, activation="tanh", prefix=p),
         "rnn_relu": lambda h, p: mx.rnn.RNNCell(h, activation="relu", prefix=p)}


@pytest.mark.parametrize("mode", sorted(CELLS))
def test_fused_equals_stack(device, mode):
    fused = mx.rnn.FusedRNNCell(4, num_layers=2, mode=mode, get_next_state=True, prefix="")
    stack = mx.rnn.SequentialRNNCell()
    for layer in range(2):
        stack.add(CELLS[mode](4, f"l{layer}_"))
    for req in ("write", "add", "null"):
        _consistent(fused, stack, device, req)


def test_bidirectional_fused_equals_stack(device):
    fused = mx.rnn.FusedRNNCell(4, num_layers=2, mode="lstm", bidirectional=True,
                                get_next_state=True, prefix="")
    stack = mx.rnn.SequentialRNNCell()
    for layer in range(2):
        stack.add(mx.rnn.BidirectionalCell(mx.rnn.LSTMCell(4, prefix=f"l{layer}_"),
                                           mx.rnn.LSTMCell(4, prefix=f"r{layer}_"),
                                           output_prefix=f"bi_{layer}_"))
    for req in ("write", {"data": "add", "parameters": "null"}):
        _consistent(fused, stack, device, req)


def test_pack_unpack_round_trip_and_initializer(device):
    cell = mx.rnn.FusedRNNCell(3, num_layers=1, mode="lstm", prefix="f_")
    size = 4 * 3 * (2 + 3) + 2 * 4 * 3  # i2h, h2h weights (input 2), two biases
    vector = mx.nd.zeros((size,), ctx=device)
    init = mx.init.FusedRNN(mx.init.One(), 3, 1, "lstm", forget_bias=2.5)
    # as a variable's own initializer (its __init__ attribute), through any initializer
    mx.init.Uniform()(mx.init.InitDesc("f_parameters", {"__init__": init.dumps()}), vector)
    parts = cell.unpack_weights({"f_parameters": vector})
    assert sorted(parts)[:2] == ["f_l0_h2h_c_bias", "f_l0_h2h_c_weight"]
    assert (parts["f_l0_i2h_i_weight"].asnumpy() == 1).all()
    assert (parts["f_l0_i2h_f_bias"].asnumpy() == 2.5).all()
    assert (parts["f_l0_i2h_i_bias"].asnumpy() == 0).all()
    back = cell.pack_weights(parts)["f_parameters"]
    np.testing.assert_array_equal(back.asnumpy(), vector.asnumpy())
    lstm = mx.rnn.LSTMCell(3, prefix="c_")
    gates = lstm.unpack_weights({"c_i2h_weight": mx.nd.arange(24).reshape((12, 2)),
                                 "c_i2h_bias": mx.nd.arange(12), "c_h2h_weight":
                                 mx.nd.zeros((12, 3)), "c_h2h_bias": mx.nd.zeros(12)})
    np.testing.assert_array_equal(gates["c_i2h_f_bias"].asnumpy(), [3, 4, 5])
    np.testing.assert_array_equal(lstm.pack_weights(gates)["c_i2h_bias"].asnumpy(),
                                  np.arange(12))
