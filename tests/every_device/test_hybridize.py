"""hybridize(): traced plans replay the imperative forward bit for bit (outputs and
gradients), per input signature, and refuse what cannot be traced, naming the block."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore.gluon import nn, rnn
from mxcore.graph.trace import TraceError

LAYERS = {
    "dense": (lambda: nn.Dense(5, activation="tanh"), (3, 4)),
    "dense_no_flatten": (lambda: nn.Dense(5, flatten=False), (2, 3, 4)),
    "conv1d": (lambda: nn.Conv1D(3, 3, padding=1), (2, 2, 7)),
    "conv2d": (lambda: nn.Conv2D(4, 3, strides=2, padding=1, activation="relu"), (2, 3, 7, 7)),
    "conv3d": (lambda: nn.Conv3D(2, 2), (1, 2, 4, 4, 4)),
    "conv2d_transpose": (lambda: nn.Conv2DTranspose(3, 3, strides=2), (2, 2, 4, 4)),
    "maxpool2d": (lambda: nn.MaxPool2D(2), (2, 3, 6, 6)),
    "avgpool1d": (lambda: nn.AvgPool1D(3, padding=1), (2, 3, 8)),
    "global_avg2d": (lambda: nn.GlobalAvgPool2D(), (2, 3, 5, 5)),
    "batchnorm": (lambda: nn.BatchNorm(), (4, 3, 2, 2)),
    "instancenorm": (lambda: nn.InstanceNorm(), (2, 3, 5)),
    "groupnorm": (lambda: nn.GroupNorm(num_groups=2), (2, 4, 3)),
    "layernorm": (lambda: nn.LayerNorm(), (3, 6)),
    "prelu": (lambda: nn.PReLU(), (3, 4)),
    "elu": (lambda: nn.ELU(), (3, 4)),
    "selu": (lambda: nn.SELU(), (3, 4)),
    "gelu": (lambda: nn.GELU(), (3, 4)),
    "swish": (lambda: nn.Swish(), (3, 4)),
    "leaky": (lambda: nn.LeakyReLU(0.1), (3, 4)),
    "flatten": (lambda: nn.Flatten(), (2, 3, 4)),
    "reflection_pad": (lambda: nn.ReflectionPad2D(1), (1, 2, 3, 3)),
    "lstm": (lambda: rnn.LSTM(6, num_layers=2, bidirectional=True), (5, 2, 3)),
    "gru": (lambda: rnn.GRU(4, layout="NTC"), (2, 5, 3)),
    "rnn": (lambda: rnn.RNN(4, activation="relu"), (5, 2, 3)),
}


def _run(block, x, training):
    params = block.collect_params()
    for p in params.values():
        if p.grad_req != "null":
            p.zero_grad()
    x.attach_grad()
    with mx.autograd.record(train_mode=training):
        out = block(x)
        loss = (out * out).sum() if not isinstance(out, (list, tuple)) else \
            sum((o * o).sum() for o in out)
    loss.backward()
    outs = out if isinstance(out, (list, tuple)) else [out]
    grads = {k: p.grad().asnumpy().copy() for k, p in params.items() if p.grad_req != "null"}
    grads["input"] = x.grad.asnumpy().copy()
    return [o.asnumpy() for o in outs], grads


def _compare(block, x, training=True):
    eager = _run(block, x, training)
    block.hybridize()
    hybrid = _run(block, x, training)
    hybrid_again = _run(block, x, training)  # the cached plan
    block.hybridize(False)
    for got in (hybrid, hybrid_again):
        for a, b in zip(eager[0], got[0]):
            np.testing.assert_array_equal(a, b)
        assert eager[1].keys() == got[1].keys()
        for k in eager[1]:
            np.testing.assert_array_equal(eager[1][k], got[1][k], err_msg=k)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_hybridized_equals_imperative(device, name):
    make, shape = LAYERS[name]
    block = make()
    block.initialize(ctx=device)
    x = mx.nd.array(np.random.default_rng(0).standard_normal(shape), ctx=device)
    block(x)  # parameters take their shapes
    _compare(block, x)


@pytest.mark.parametrize("model", ["resnet18_v1", "resnet18_v2", "mobilenet0.25",
                                   "mobilenetv2_0.25"])
def test_model_zoo_hybridized_equals_imperative(model):
    net = mx.gluon.model_zoo.vision.get_model(model, classes=7)
    net.initialize(mx.init.Xavier())
    x = mx.nd.array(np.random.default_rng(1).standard_normal((2, 3, 32, 32)))
    net(x)
    _compare(net, x)
    net.hybridize()
    with mx.autograd.predict_mode():
        np.testing.assert_array_equal(net(x).asnumpy(), _eager(net, x))


def _eager(net, x):
    net.hybridize(False)
    out = net(x).asnumpy()
    net.hybridize()
    return out


def test_dropout_gets_fresh_masks_like_imperative(device):
    net = nn.HybridSequential()
    net.add(nn.Dense(8), nn.Dropout(0.5))
    net.initialize(ctx=device)
    x = mx.nd.ones((4, 6), ctx=device)
    net(x)
    mx.random.seed(11)
    with mx.autograd.record():
        eager = [net(x).asnumpy() for _ in range(2)]
    net.hybridize()
    mx.random.seed(11)
    with mx.autograd.record():
        hybrid = [net(x).asnumpy() for _ in range(2)]
    np.testing.assert_array_equal(eager[0], hybrid[0])
    np.testing.assert_array_equal(eager[1], hybrid[1])
    assert not np.array_equal(hybrid[0], hybrid[1])


def test_one_plan_per_signature_and_mode():
    net = nn.Dense(3)
    net.initialize()
    net.hybridize()
    net(mx.nd.ones((2, 4)))
    net(mx.nd.ones((2, 4)))
    assert len(net._plans) == 1
    net(mx.nd.ones((5, 4)))
    with mx.autograd.record():
        net(mx.nd.ones((5, 4)))
    assert len(net._plans) == 3
    net.hybridize()  # a new hybridize() starts over
    assert not net._plans


class _Values(mx.gluon.HybridBlock):
    def hybrid_forward(self, F, x):
        return x * 2 if x.sum().asscalar() > 0 else x


class _Add(mx.gluon.HybridBlock):
    def hybrid_forward(self, F, a, b=None):
        return a if b is None else a + b


def test_value_dependent_forward_is_an_error_naming_the_block():
    block = _Values(prefix="valuer_")
    block.hybridize()
    with pytest.raises(TraceError, match="_Values 'valuer'.*reads array values"):
        block(mx.nd.ones((3,)))
    block.hybridize(False)
    assert block(mx.nd.ones((3,))).asnumpy().tolist() == [2, 2, 2]


def test_inputs_are_checked():
    block = _Add()
    block.hybridize()
    with pytest.raises(ValueError, match="NDArrays"):
        block(mx.nd.ones((2,)), 1)
    with pytest.raises(ValueError, match="mix"):
        block(mx.nd.ones((2,)), mx.sym.var("b"))
    assert block(mx.nd.ones((2,)), None).asnumpy().tolist() == [1, 1]
    assert block(mx.nd.ones((2,))).asnumpy().tolist() == [1, 1]  # b=None by default
    with pytest.raises(ValueError, match="same argument positions"):
        block(mx.nd.ones((2,)), mx.nd.ones((2,)))  # as MXNet: fixed per hybridize()
    block.hybridize()
    assert block(mx.nd.ones((2,)), mx.nd.ones((2,))).asnumpy().tolist() == [2, 2]
    with pytest.raises(ValueError, match="only None"):
        _Add()(None, None)


def test_constants_made_in_forward_keep_their_values():
    class Shift(mx.gluon.HybridBlock):
        def hybrid_forward(self, F, x):
            return x + F.array([1.0, 2.0, 3.0], ctx=x.context)

    block = Shift()
    block.hybridize()
    for _ in range(2):
        assert block(mx.nd.zeros((3,))).asnumpy().tolist() == [1.0, 2.0, 3.0]


def test_hybridized_training_step_matches_imperative():
    def train(hybrid):
        mx.random.seed(3)
        net = nn.HybridSequential()
        net.add(nn.Dense(16, activation="relu"), nn.BatchNorm(), nn.Dense(4))
        net.initialize(mx.init.Xavier())
        if hybrid:
            net.hybridize()
        trainer = mx.gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 0.01})
        loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
        rng = np.random.default_rng(0)
        for _ in range(3):
            x = mx.nd.array(rng.standard_normal((8, 5)))
            y = mx.nd.array(rng.integers(0, 4, 8))
            with mx.autograd.record():
                loss = loss_fn(net(x), y)
            loss.backward()
            trainer.step(8)
        return [p.data().asnumpy() for p in net.collect_params().values()]

    eager, hybrid = train(False), train(True)
    assert len(eager) == len(hybrid) == 8
    for a, b in zip(eager, hybrid):
        np.testing.assert_array_equal(a, b)


def test_backward_releases_the_saved_activations(device):
    """A hybridized call's tape node keeps the activations its backward reads; backward
    (without retain_graph) releases them at once, with no cycle left for the garbage
    collector (a cycle through the outputs kept every step's activations alive: memory
    grew by megabytes per LeNet step and fresh pages faulted in)."""
    import gc
    import weakref
    net = nn.HybridSequential()
    net.add(nn.Dense(16, activation="relu"), nn.Dense(3))
    net.initialize(ctx=device)
    net.hybridize()
    x = mx.nd.ones((4, 8), ctx=device)
    net(x)  # the first call runs imperatively (deferred shapes); the second traces
    gc.disable()
    try:
        with mx.autograd.record():
            y = net(x)
        node = y._ag[0]
        held = {id(p.data(device)._data) for p in net.collect_params().values()}
        held.update((id(x._data), id(y._data)))
        # the activations among the saved values (the rest are parameters, the input
        # and the output, which the caller holds)
        acts = [a for a in node.attrs["saved"] if id(a) not in held]
        assert acts and all(hasattr(a, "shape") for a in acts)
        refs = [weakref.ref(a) for a in acts if type(a).__weakrefoffset__]
        del acts
        y.backward()
        mx.nd.waitall()  # (the threaded engine's queued backward kernels hold them)
        assert not dict(node.attrs)
        assert refs
        if device.kind == "cpu":  # (Triton's interpreter keeps its last launch's arguments)
            assert all(r() is None for r in refs), "saved activations outlived backward"
    finally:
        gc.enable()
    with mx.autograd.record():
        z = net(x)
    z.backward(retain_graph=True)  # kept for a second backward
    z.backward()
