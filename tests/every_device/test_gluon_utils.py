"""gluon.utils: split_data / split_and_load and clip_global_norm (MXNet 1.x numbers)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import mxcore as mx
from mxcore.ndarray.ndarray import NDArray

nd = mx.nd
utils = mx.gluon.utils


def test_split_data_and_split_and_load(device):
    x = nd.array(np.arange(24.0).reshape(6, 4), ctx=device)
    parts = utils.split_data(x, 3)
    assert [p.shape for p in parts] == [(2, 4)] * 3
    np.testing.assert_array_equal(np.concatenate([p.asnumpy() for p in parts]), x.asnumpy())
    uneven = utils.split_data(x, 4, even_split=False)
    assert [p.shape[0] for p in uneven] == [1, 1, 1, 3]
    with pytest.raises(ValueError, match="cannot be split evenly"):
        utils.split_data(x, 4)
    loaded = utils.split_and_load(x.asnumpy(), [device, mx.cpu(1)], batch_axis=1)
    assert [p.context for p in loaded] == [device, mx.cpu(1)]
    assert [p.shape for p in loaded] == [(6, 2), (6, 2)]
    np.testing.assert_array_equal(loaded[1].asnumpy(), x.asnumpy()[:, 2:])


def test_clip_global_norm_matches_mxnet(device):
    # MXNet 1.9.1: norm 13 -> numpy float32 13.0, arrays scaled by 1/13
    a = [nd.array([3.0, 4.0], ctx=device), nd.array([12.0], ctx=device)]
    norm = utils.clip_global_norm(a, 1.0)
    assert isinstance(norm, np.float32) and norm == 13.0
    np.testing.assert_allclose(a[0].asnumpy(), [0.23076925, 0.30769232], rtol=1e-6)
    np.testing.assert_allclose(a[1].asnumpy(), [0.923077], rtol=1e-6)
    b = [nd.array([3.0, 4.0], ctx=device), nd.array([12.0], ctx=device)]
    assert utils.clip_global_norm(b, 100.0) == 13.0
    np.testing.assert_array_equal(b[0].asnumpy(), [3.0, 4.0])  # under the limit: unchanged


def test_clip_global_norm_without_check_never_reads_the_device(device, monkeypatch):
    reads = []
    real = NDArray.asnumpy
    monkeypatch.setattr(NDArray, "asnumpy", lambda self: reads.append(1) or real(self))
    a = [nd.ones((5, 5), ctx=device) * 2, nd.ones((10,), ctx=device, dtype="float16")]
    norm = utils.clip_global_norm(a, 1.0, check_isfinite=False)
    assert reads == []
    assert isinstance(norm, NDArray) and norm.shape == (1,) and norm.context == device
    assert a[1].dtype == np.float16
    reads.clear()
    utils.clip_global_norm(a, 1.0)
    assert len(reads) == 1  # check_isfinite: one read of the norm
    np.testing.assert_allclose(norm.asnumpy(), [np.sqrt(100 + 10)], rtol=1e-6)


def test_clip_global_norm_warns_on_nan(device):
    a = [nd.array([np.nan, 4.0], ctx=device), nd.array([12.0], ctx=device)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        norm = utils.clip_global_norm(a, 1.0)
    assert np.isnan(norm)
    assert any("nan or inf is detected" in str(w.message) for w in caught)
    with pytest.raises(ValueError, match="at least one array"):
        utils.clip_global_norm([], 1.0)
