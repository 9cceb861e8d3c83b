"""Convolution benchmarks: a LeNet-5 training step (batch 64, 1x28x28, SGD) through
Gluon, Convolution / Pooling forward+backward at the shapes of a ResNet-18 stage on
32x32 input (batch 32), and a DCGAN-style Deconvolution and nearest UpSampling, on
synthetic data with a fixed seed.  ``tools/compare_lenet.py`` times the LeNet step
and ResNet-18's convolutions against PyTorch."""
import numpy as np

import mxcore as mx
from mxcore import gluon
from mxcore.gluon.model_zoo import vision

from .bench_dispatch import DEVICES, _device


class LeNetStep:
    params = [DEVICES]
    param_names = ["device"]
    timeout = 120

    def setup(self, device):
        dev = _device(device)
        rs = np.random.RandomState(0)
        self.x = mx.nd.array(rs.standard_normal((64, 1, 28, 28)).astype(np.float32), ctx=dev)
        self.y = mx.nd.array(rs.randint(0, 10, 64).astype(np.float32), ctx=dev)
        mx.random.seed(0)
        self.net = vision.get_model("lenet", classes=10)
        self.net.initialize(mx.init.Xavier(), ctx=dev)
        self.loss = gluon.loss.SoftmaxCrossEntropyLoss()
        self.trainer = gluon.Trainer(self.net.collect_params(), "sgd",
                                     {"learning_rate": 0.01, "momentum": 0.9})
        self.time_train_step(device)

    def time_train_step(self, device):
        """One step: forward, loss, backward, SGD update (PyTorch CPU: ~9 ms on one
        thread, 15 ms with two, on the 2-vCPU host)."""
        with mx.autograd.record():
            loss = self.loss(self.net(self.x), self.y)
        loss.backward()
        self.trainer.step(64)
        mx.nd.waitall()


class ConvLayer:
    """A 3x3 convolution of ResNet-18's first stage (64 -> 64 channels, 32x32, batch 32)
    and a 3x3/2 max pooling, each forward and backward."""
    params = [DEVICES]
    param_names = ["device"]
    timeout = 120

    def setup(self, device):
        dev = _device(device)
        rs = np.random.RandomState(0)
        self.x = mx.nd.array(rs.standard_normal((32, 64, 32, 32)).astype(np.float32), ctx=dev)
        self.w = mx.nd.array(rs.standard_normal((64, 64, 3, 3)).astype(np.float32) * 0.05,
                             ctx=dev)
        self.b = mx.nd.zeros((64,), ctx=dev)
        for a in (self.x, self.w, self.b):
            a.attach_grad()

    def time_conv3x3_forward(self, device):
        mx.nd.Convolution(self.x, self.w, self.b, kernel=(3, 3), pad=(1, 1),
                          num_filter=64).wait_to_read()

    def time_conv3x3_forward_backward(self, device):
        with mx.autograd.record():
            y = mx.nd.Convolution(self.x, self.w, self.b, kernel=(3, 3), pad=(1, 1),
                                  num_filter=64)
        y.backward()
        mx.nd.waitall()

    def time_maxpool3x3s2_forward_backward(self, device):
        with mx.autograd.record():
            y = mx.nd.Pooling(self.x, kernel=(3, 3), stride=(2, 2), pad=(1, 1))
        y.backward()
        mx.nd.waitall()


class TransposedConv:
    """A DCGAN generator's transposed convolution (128 -> 64 channels, 4x4 kernel,
    stride 2, pad 1: 16x16 -> 32x32, batch 16), forward and backward, and nearest
    upsampling by 2 of the same input."""
    params = [DEVICES]
    param_names = ["device"]
    timeout = 120

    def setup(self, device):
        dev = _device(device)
        rs = np.random.RandomState(0)
        self.x = mx.nd.array(rs.standard_normal((16, 128, 16, 16)).astype(np.float32), ctx=dev)
        self.w = mx.nd.array(rs.standard_normal((128, 64, 4, 4)).astype(np.float32) * 0.05,
                             ctx=dev)
        for a in (self.x, self.w):
            a.attach_grad()
        self.time_deconv4x4s2_forward_backward(device)

    def time_deconv4x4s2_forward(self, device):
        mx.nd.Deconvolution(self.x, self.w, kernel=(4, 4), stride=(2, 2), pad=(1, 1),
                            num_filter=64).wait_to_read()

    def time_deconv4x4s2_forward_backward(self, device):
        with mx.autograd.record():
            y = mx.nd.Deconvolution(self.x, self.w, kernel=(4, 4), stride=(2, 2), pad=(1, 1),
                                    num_filter=64)
        y.backward()
        mx.nd.waitall()

    def time_upsampling_nearest_forward_backward(self, device):
        with mx.autograd.record():
            y = mx.nd.UpSampling(self.x, scale=2, sample_type="nearest")
        y.backward()
        mx.nd.waitall()
