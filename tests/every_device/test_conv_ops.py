"""Convolution and pooling beyond the op table: clear errors on bad input, the
layouts, and gradients that skip what is not needed."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore.base import OperatorError


@pytest.mark.parametrize("call, message", [
    (lambda d: mx.nd.Convolution(mx.nd.ones((2, 3, 5, 5), ctx=d), mx.nd.ones((4, 2, 3, 3), ctx=d),
                                 kernel=(3, 3), num_filter=4, no_bias=True),
     "weight shape (4, 2, 3, 3) does not match: expected (4, 3, 3, 3)"),
    (lambda d: mx.nd.Convolution(mx.nd.ones((2, 3, 5, 5), ctx=d), mx.nd.ones((4, 3, 7, 7), ctx=d),
                                 kernel=(7, 7), num_filter=4, no_bias=True),
     "kernel (7, 7) (dilate (1, 1)) is larger than the padded input (5, 5)"),
    (lambda d: mx.nd.Convolution(mx.nd.ones((2, 3, 5, 5), ctx=d), mx.nd.ones((4, 3, 3, 3), ctx=d),
                                 mx.nd.ones((5,), ctx=d), kernel=(3, 3), num_filter=4),
     "bias shape (5,) does not match num_filter 4"),
    (lambda d: mx.nd.Convolution(mx.nd.ones((2, 3, 5), ctx=d), mx.nd.ones((4, 3, 3, 3), ctx=d),
                                 kernel=(3, 3), num_filter=4, no_bias=True),
     "kernel (3, 3) must have 1 entries, one per spatial dim of the 3-d data"),
    (lambda d: mx.nd.Convolution(mx.nd.ones((2, 4, 5, 5), ctx=d), mx.nd.ones((3, 2, 3, 3), ctx=d),
                                 kernel=(3, 3), num_filter=3, num_group=2, no_bias=True),
     "channels 4 and num_filter 3 must both divide by num_group 2"),
    (lambda d: mx.nd.Convolution(mx.nd.ones((2, 3, 5, 5), ctx=d),
                                 mx.nd.ones((4, 3, 3, 3), ctx=d, dtype="float64"),
                                 kernel=(3, 3), num_filter=4, no_bias=True),
     "dtypes differ (float32, float64)"),
    (lambda d: mx.nd.Pooling(mx.nd.ones((2, 3, 5, 5), ctx=d), kernel=(7, 7)),
     "kernel (7, 7) is larger than the padded input (5, 5)"),
    (lambda d: mx.nd.Pooling(mx.nd.ones((2, 3, 5, 5), ctx=d), kernel=(2, 2), pool_type="median"),
     "pool_type must be one of ('max', 'avg', 'sum', 'lp'), got 'median'"),
    (lambda d: mx.nd.Pooling(mx.nd.ones((2, 3, 5, 5), ctx=d), kernel=(2, 2), layout="NCWH"),
     "unknown layout 'NCWH'"),
    (lambda d: mx.nd.Pooling(mx.nd.ones((2, 3), ctx=d), kernel=(2,)),
     "data must be 3-d to 5-d (N, C, *spatial), got 2-d"),
])
def test_bad_input_names_the_op_and_shapes(device, call, message):
    with pytest.raises(OperatorError) as info:
        call(device)
    msg = str(info.value)
    assert message in msg, msg
    assert msg.startswith("operator 'Convolution'") or msg.startswith("operator 'Pooling'")
    assert "[inputs: (2, " in msg and repr(device) in msg


def test_input_gradient_is_skipped_for_data_without_grad(device):
    """A first layer's input needs no gradient: only the weight's is computed."""
    x = mx.nd.ones((2, 3, 6, 6), ctx=device)
    w = mx.nd.ones((4, 3, 3, 3), ctx=device)
    w.attach_grad()
    with mx.autograd.record():
        y = mx.nd.Convolution(x, w, kernel=(3, 3), num_filter=4, no_bias=True)
    y.backward()
    # each weight element meets 2 images x 16 output positions of ones
    np.testing.assert_allclose(w.grad.asnumpy(), np.full((4, 3, 3, 3), 32.0))


def test_max_pool_gradient_goes_to_the_first_maximum(device):
    x = mx.nd.array([[[[1.0, 1.0], [0.0, 1.0]]]], ctx=device)
    x.attach_grad()
    with mx.autograd.record():
        y = mx.nd.Pooling(x, kernel=(2, 2))
    y.backward()
    np.testing.assert_array_equal(x.grad.asnumpy(), [[[[1.0, 0.0], [0.0, 0.0]]]])
