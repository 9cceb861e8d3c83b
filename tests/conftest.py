"""Shared fixtures.  Tests are split by what they need:

* ``no_device/``    registry, plugins, CLI, pure logic: no device is touched
* ``every_device/`` the op-table conformance suite and autograd, run on every
                    available device (``device`` fixture)
* ``one_device/``   behaviour of one device kind (skips when it is absent)
* ``distributed/``  multi-process tests (kvstore), added with the kvstore
"""
from __future__ import annotations

import numpy as np
import pytest


def _device_ids():
    import mxcore as mx
    return [str(d) for d in mx.available_devices()]


def pytest_generate_tests(metafunc):
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", _device_ids(), indirect=True)


@pytest.fixture
def device(request):
    import mxcore as mx
    return mx.device(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
