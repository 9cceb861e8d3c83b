"""Recurrent-layer benchmarks: a 2-layer LSTM of the PTB language-model size (35 steps,
batch 32, 200 inputs, 200 hidden) through gluon.rnn.LSTM and the fused RNN op, forward
alone and forward+backward, plus a GRU and a bidirectional LSTM forward+backward, on
synthetic data with a fixed seed.  The time loop does one GEMM per step and direction
(and one per step backward); everything else is a handful of vectorised elementwise
operations on (batch, gates * hidden) rows."""
import numpy as np

import mxcore as mx
from mxcore.gluon import rnn

from .bench_dispatch import DEVICES, _device

T, N, INPUT, HIDDEN = 35, 32, 200, 200


class LSTMLayer:
    """``gluon.rnn.LSTM(200, num_layers=2)`` on (35, 32, 200) float32 input (TNC)."""
    params = [DEVICES]
    param_names = ["device"]
    timeout = 120

    def setup(self, device):
        dev = _device(device)
        rs = np.random.RandomState(0)
        mx.random.seed(0)
        self.x = mx.nd.array(rs.standard_normal((T, N, INPUT)).astype(np.float32), ctx=dev)
        self.x.attach_grad()
        self.layer = rnn.LSTM(HIDDEN, num_layers=2, input_size=INPUT)
        self.layer.initialize(mx.init.Xavier(), ctx=dev)
        self.head = mx.nd.array(rs.standard_normal((T, N, HIDDEN)).astype(np.float32), ctx=dev)
        self.time_forward_backward(device)

    def time_forward(self, device):
        self.layer(self.x).wait_to_read()

    def time_forward_backward(self, device):
        """Forward, then backpropagation through time to the input and every weight."""
        with mx.autograd.record():
            y = self.layer(self.x)
        y.backward(self.head)
        mx.nd.waitall()


class RecurrentVariants:
    """Forward+backward of a 1-layer GRU and a 1-layer bidirectional LSTM, same sizes."""
    params = [DEVICES, ["gru", "bilstm"]]
    param_names = ["device", "kind"]
    timeout = 120

    def setup(self, device, kind):
        dev = _device(device)
        rs = np.random.RandomState(1)
        mx.random.seed(1)
        self.x = mx.nd.array(rs.standard_normal((T, N, INPUT)).astype(np.float32), ctx=dev)
        self.x.attach_grad()
        self.layer = rnn.GRU(HIDDEN, input_size=INPUT) if kind == "gru" else \
            rnn.LSTM(HIDDEN, bidirectional=True, input_size=INPUT)
        self.layer.initialize(mx.init.Xavier(), ctx=dev)
        self.time_forward_backward(device, kind)

    def time_forward_backward(self, device, kind):
        with mx.autograd.record():
            y = self.layer(self.x)
        y.backward()
        mx.nd.waitall()
