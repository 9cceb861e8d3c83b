"""mx.nd.image / mx.sym.image: MXNet's image operators (values as MXNet 1.9.1 gives
them for the same inputs), their gradients, and their errors."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore.base import MXCoreError

IMG = np.arange(24).reshape(2, 4, 3)


def test_flips_and_crop(device):
    x = mx.nd.array(IMG, ctx=device, dtype="uint8")
    image = mx.nd.image
    # MXNet 1.9.1's results on this (2, 4, 3) image, channel 0
    assert image.flip_left_right(x).asnumpy()[:, :, 0].tolist() == [[9, 6, 3, 0],
                                                                     [21, 18, 15, 12]]
    assert image.flip_top_bottom(x).asnumpy()[:, :, 0].tolist() == [[12, 15, 18, 21],
                                                                     [0, 3, 6, 9]]
    assert image.crop(x, 1, 0, 2, 2).asnumpy()[:, :, 0].tolist() == [[3, 6], [15, 18]]
    batch = mx.nd.array(np.stack([IMG, IMG + 1]), ctx=device)
    np.testing.assert_array_equal(image.flip_left_right(batch).asnumpy(),
                                  np.stack([IMG, IMG + 1])[:, :, ::-1])
    assert image.crop(batch, 0, 1, 3, 1).shape == (2, 1, 3, 3)
    np.testing.assert_array_equal(image.random_flip_left_right(x, p=1.0).asnumpy(),
                                  IMG[:, ::-1])
    np.testing.assert_array_equal(image.random_flip_top_bottom(x, p=0.0).asnumpy(), IMG)


def test_to_tensor_and_normalize(device):
    x = mx.nd.array(IMG, ctx=device, dtype="uint8")
    t = mx.nd.image.to_tensor(x)
    assert t.shape == (3, 2, 4) and t.dtype == np.float32
    np.testing.assert_allclose(t.asnumpy()[0], IMG[:, :, 0] / 255.0, rtol=1e-6)
    n = mx.nd.image.normalize(t, mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 2))
    np.testing.assert_allclose(n.asnumpy()[:, 0, 0],  # MXNet 1.9.1's values
                               [-0.2, -0.7843137383460999, -0.1460784375667572], rtol=1e-6)
    np.testing.assert_allclose(
        mx.nd.image.normalize(mx.nd.ones((3, 2, 2), ctx=device), mean=0.5, std=2).asnumpy(),
        np.full((3, 2, 2), 0.25))
    batch = mx.nd.array(np.random.RandomState(0).uniform(size=(2, 3, 4, 4)), ctx=device)
    batch.attach_grad()
    with mx.autograd.record():
        y = mx.nd.image.normalize(batch, mean=(0, 1, 2), std=(3, 2, 1))
    y.backward()
    np.testing.assert_allclose(batch.grad.asnumpy()[0, :, 0, 0], [1 / 3, 1 / 2, 1], rtol=1e-6)
    sym = mx.sym.image.normalize(data=mx.sym.var("data"), mean=(0, 1, 2), std=(3, 2, 1))
    again = mx.sym.load_json(sym.tojson())
    np.testing.assert_allclose(again.eval(ctx=device, data=batch)[0].asnumpy(), y.asnumpy())


@pytest.mark.parametrize("call,match", [
    (lambda x: mx.nd.image.to_tensor(x[0]), r"\(H, W, C\)"),
    (lambda x: mx.nd.image.normalize(x, mean=(1, 2)), "one per channel"),
    (lambda x: mx.nd.image.normalize(x, std=0), "must not be 0"),
    (lambda x: mx.nd.image.crop(x, 2, 0, 4, 1), "not inside"),
    (lambda x: mx.nd.image.random_flip_left_right(x, p=2), r"p must be in \[0, 1\]"),
])
def test_image_errors(device, call, match):
    x = mx.nd.ones((3, 4, 5), ctx=device)
    with pytest.raises(MXCoreError, match=match) as info:
        call(x)
    assert "image." in str(info.value)
