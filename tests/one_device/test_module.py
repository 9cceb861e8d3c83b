"""mx.io.NDArrayIter and mx.mod.Module (MXNet 1.x's symbolic training API) on the CPU."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore.base import MXCoreError


def _epochs(it, n=3):
    out = []
    for _ in range(n):
        out.append([(b.data[0].asnumpy().ravel().tolist(), b.label[0].asnumpy().tolist(), b.pad)
                    for b in it])
        it.reset()
    return out


A = ([0.0, 1.0, 2.0, 3.0], [0.0, 10.0, 20.0, 30.0], 0)
B = ([4.0, 5.0, 6.0, 7.0], [40.0, 50.0, 60.0, 70.0], 0)
PADDED = ([8.0, 9.0, 0.0, 1.0], [80.0, 90.0, 0.0, 10.0], 2)


@pytest.mark.parametrize("handle,expected", [
    # what MXNet 1.9.1 gives for 10 samples in batches of 4
    ("pad", [[A, B, PADDED]] * 3),
    ("discard", [[A, B]] * 3),
    ("roll_over", [[A, B],
                   [PADDED, ([2.0, 3.0, 4.0, 5.0], [20.0, 30.0, 40.0, 50.0], 0),
                    ([6.0, 7.0, 8.0, 9.0], [60.0, 70.0, 80.0, 90.0], 0)],
                   [A, B]]),
])
def test_ndarray_iter_last_batch(handle, expected):
    data = np.arange(10, dtype=np.float32).reshape(10, 1)
    it = mx.io.NDArrayIter(data, np.arange(10, dtype=np.float32) * 10, batch_size=4,
                           last_batch_handle=handle)
    assert _epochs(it) == expected


def test_ndarray_iter_names_and_shuffle():
    data = np.arange(10, dtype=np.float32).reshape(10, 1)
    it = mx.io.NDArrayIter({"b": data, "a": data * 2}, {"l": data[:, 0]}, batch_size=5)
    assert [(d.name, d.shape) for d in it.provide_data] == [("a", (5, 1)), ("b", (5, 1))]
    assert [(d.name, d.shape) for d in it.provide_label] == [("l", (5,))]
    it = mx.io.NDArrayIter([data, data], batch_size=5)
    assert [d.name for d in it.provide_data] == ["_0_data", "_1_data"]
    it = mx.io.NDArrayIter(data, data[:, 0] * 3, batch_size=10, shuffle=True)
    batch = next(iter(it))
    x, y = batch.data[0].asnumpy()[:, 0], batch.label[0].asnumpy()
    assert sorted(x.tolist()) == list(range(10)) and np.array_equal(y, x * 3)
    with pytest.raises(MXCoreError, match="last_batch_handle"):
        mx.io.NDArrayIter(data, batch_size=3, last_batch_handle="wrap")


def _classifier():
    data = mx.sym.var("data")
    h = mx.sym.Activation(mx.sym.FullyConnected(data, num_hidden=16, name="fc1"),
                          act_type="relu")
    out = mx.sym.FullyConnected(h, num_hidden=3, name="fc2")
    return mx.sym.SoftmaxOutput(out, name="softmax")


def _blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 3, n)
    centers = np.array([[2, 0], [-2, 0], [0, 2]], np.float32)
    return (centers[label] + 0.3 * rng.standard_normal((n, 2))).astype(np.float32), label


def test_module_fit_score_predict_checkpoint(tmp_path):
    x, y = _blobs()
    it = mx.io.NDArrayIter(x, y.astype(np.float32), batch_size=16)  # a padded last batch
    mod = mx.mod.Module(_classifier(), context=mx.cpu())
    mod.fit(it, num_epoch=30, optimizer="adam", optimizer_params={"learning_rate": 0.05},
            initializer=mx.init.Xavier())
    assert dict(mod.score(it, "acc"))["accuracy"] > 0.95
    pred = mod.predict(it)
    assert pred.shape == (60, 3)
    np.testing.assert_allclose(pred.asnumpy().sum(1), 1, rtol=1e-5)
    mod.save_checkpoint(str(tmp_path / "net"), 7)
    assert (tmp_path / "net-symbol.json").exists() and (tmp_path / "net-0007.params").exists()
    loaded = mx.mod.Module.load(str(tmp_path / "net"), 7)
    loaded.bind(it.provide_data, it.provide_label, for_training=False)
    np.testing.assert_array_equal(loaded.predict(it).asnumpy(), pred.asnumpy())
    sym, args, aux = mx.model.load_checkpoint(str(tmp_path / "net"), 7)
    assert sorted(args) == ["fc1_bias", "fc1_weight", "fc2_bias", "fc2_weight"] and aux == {}


def test_module_forward_backward_update_steps():
    x, y = _blobs(8)
    mod = mx.mod.Module(_classifier())
    mod.bind(data_shapes=[("data", (8, 2))], label_shapes=[("softmax_label", (8,))])
    mod.init_params(mx.init.Uniform(0.1))
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 1.0})
    before = mod.get_params()[0]["fc2_bias"].asnumpy()
    batch = mx.io.DataBatch([mx.nd.array(x)], [mx.nd.array(y)])
    mod.forward(batch, is_train=True)
    probs = mod.get_outputs()[0].asnumpy()
    mod.backward()
    mod.update()
    after = mod.get_params()[0]["fc2_bias"].asnumpy()
    # SoftmaxOutput's bias gradient: sum over the batch of p - onehot, rescaled by 1/batch
    expected = before - (probs - np.eye(3)[y]).sum(0) / 8
    np.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-6)
    # a batch of another size rebinds, keeping the parameters
    small = mx.io.DataBatch([mx.nd.array(x[:3])], [mx.nd.array(y[:3])])
    mod.forward(small, is_train=False)
    assert mod.get_outputs()[0].shape == (3, 3)
    np.testing.assert_array_equal(mod.get_params()[0]["fc2_bias"].asnumpy(), after)


def test_module_errors():
    with pytest.raises(MXCoreError, match="data name"):
        mx.mod.Module(_classifier(), data_names=("x",))
    mod = mx.mod.Module(_classifier())
    with pytest.raises(MXCoreError, match="bind"):
        mod.forward(mx.io.DataBatch([mx.nd.zeros((2, 2))], [mx.nd.zeros((2,))]))
    mod.bind([("data", (2, 2))], [("softmax_label", (2,))])
    with pytest.raises(MXCoreError, match="missing"):
        mod.init_params(arg_params={"fc1_weight": mx.nd.zeros((16, 2))})
