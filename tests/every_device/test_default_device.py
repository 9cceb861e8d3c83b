"""``with device:`` blocks and the thread's default device (MXNet's ``with ctx:``
and ``mx.test_utils.set_default_context``)."""
from __future__ import annotations

import threading

import pytest

import mxcore as mx

nd = mx.nd


@pytest.fixture(autouse=True)
def _no_default_left_behind():
    yield
    mx.test_utils.set_default_context(None)


def test_with_device_makes_arrays_and_parameters_there(device):
    outside = mx.current_context()
    with device as entered:
        assert entered is device and mx.current_context() is device
        assert mx.test_utils.default_context() is device
        for arr in (nd.ones((2,)), nd.zeros((1, 2)), nd.array([1.0, 2.0]),
                    nd.random.uniform(shape=(3,)), nd.arange(4)):
            assert arr.context is device
        net = mx.gluon.nn.Dense(2, in_units=3)
        net.initialize()
        assert net.weight.data().context is device
        assert (net(nd.ones((1, 3))).context is device)
    assert mx.current_context() is outside
    assert nd.ones((1,)).context is outside


def test_with_blocks_nest_and_unwind_on_errors(device):
    other = mx.cpu(3)
    with device:
        with other:
            assert nd.ones((1,)).context is other
        assert nd.ones((1,)).context is device
        with pytest.raises(ZeroDivisionError):
            with other:
                1 / 0
        assert mx.current_context() is device


def test_default_device_is_per_thread(device):
    base = mx.current_context()  # MXCORE_DEVICE, or cpu(0)
    seen = {}

    def worker():
        seen["thread"] = mx.current_context()
    mx.test_utils.set_default_context(device)
    with mx.cpu(5):
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        assert mx.current_context() is mx.cpu(5)  # a with block wins over the default
    assert mx.current_context() is device and nd.ones((1,)).context is device
    assert seen["thread"] is base  # neither the default nor the block reach other threads
    mx.test_utils.set_default_context(None)
    assert mx.current_context() is base
