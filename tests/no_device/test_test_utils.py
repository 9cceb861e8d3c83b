"""``mx.test_utils`` comparisons: MXNet 1.9.1's tolerances and answers (the cases
below were run through MXNet 1.9.1 for these expectations)."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx

tu = mx.test_utils
F32, F16, F64 = np.float32, np.float16, np.float64


def _passes(a, b, **kw) -> bool:
    try:
        tu.assert_almost_equal(a, b, **kw)
        return True
    except AssertionError:
        return False


@pytest.mark.parametrize("a, b, kw, mxnet_almost_equal, mxnet_assert", [
    (F32([1.0]), F32([1.0011]), {}, False, True),     # float32: rtol 1e-4, atol 1e-3
    (F32([1.0]), F32([1.0009]), {}, False, True),
    (F16([100]), F16([101]), {}, False, True),        # float16: rtol 1e-2, atol 1e-1
    (F64([1.0]), F64([1.00002]), {}, False, False),   # float64: rtol 1e-5, atol 1e-20
    (F64([1.0]), F32([1.00002]), {}, False, True),    # the looser dtype wins
    (np.array([1, 2]), np.array([1, 3]), {}, False, False),  # integers: exact
    (F32([1.0]), F32([1.5]), {"rtol": 0.5, "atol": 0}, True, True),
])
def test_tolerances_match_mxnet(a, b, kw, mxnet_almost_equal, mxnet_assert):
    assert tu.almost_equal(a, b, **kw) is mxnet_almost_equal
    assert _passes(a, b, **kw) is mxnet_assert
    assert _passes(mx.nd.array(a, dtype=a.dtype), b, **kw) is mxnet_assert  # NDArrays too


def test_failure_names_the_worst_elements():
    with pytest.raises(AssertionError) as info:
        tu.assert_almost_equal(mx.nd.array([1.0, 2.0, 3.0, 4.0]), F32([1.0, 2.5, np.nan, 4.0]),
                               names=("got", "want"))
    msg = str(info.value)
    assert msg.startswith("2 of 4 elements exceed rtol=0.0001, atol=0.001")
    assert "at (2,): got=3.0 want=nan" in msg and "at (1,): got=2.0 want=2.5" in msg
    assert "(0,)" not in msg and "(3,)" not in msg


def test_nan_shapes_dicts_and_bfloat16():
    nan = F32([np.nan, 1.0])
    assert not _passes(nan, nan) and _passes(nan, nan, equal_nan=True)
    assert _passes(F32([[1.0, 2.0]]), F32([1.0, 2.0]))  # broadcast, as numpy
    with pytest.raises(AssertionError, match=r"shape mismatch: a \(1, 2\), b \(2,\)"):
        tu.assert_almost_equal(F32([[1.0, 2.0]]), F32([1.0, 2.0]), use_broadcast=False)
    assert _passes(F32([1.0]), F32([1.4]), rtol={"float32": 0.5}, atol={"float32": 0})
    assert not _passes(F32([1.0]), F32([1.4]), rtol={"float16": 0.5})
    bf16 = np.dtype("bfloat16")
    assert _passes(np.array([1.0, 3.0], dtype=bf16), F32([1.004, 3.01]))
    assert tu.default_rtols()["bfloat16"] > tu.default_rtols()["float16"]
    assert tu.same(mx.nd.array([1, 2]), np.array([1.0, 2.0]))
    assert not tu.same(F32([1.0]), F32([1.0, 1.0]))


def test_device_helpers_on_the_cpu():
    assert list(tu.list_gpus()) == list(range(mx.util.get_gpu_count()))
    assert tu.default_context() is mx.current_context()


def test_environment_sets_and_restores_variables(monkeypatch):
    import os

    from mxcore.test_utils import environment
    monkeypatch.setenv("MXCORE_TEST_A", "old")
    monkeypatch.delenv("MXCORE_TEST_B", raising=False)
    with environment("MXCORE_TEST_A", "new"):
        assert os.environ["MXCORE_TEST_A"] == "new"
    assert os.environ["MXCORE_TEST_A"] == "old"
    with pytest.raises(RuntimeError):
        with environment({"MXCORE_TEST_A": None, "MXCORE_TEST_B": 3}):
            assert "MXCORE_TEST_A" not in os.environ and os.environ["MXCORE_TEST_B"] == "3"
            raise RuntimeError("restored even so")
    assert os.environ["MXCORE_TEST_A"] == "old" and "MXCORE_TEST_B" not in os.environ
    with pytest.raises(ValueError):
        with environment("only-a-name"):
            pass


def test_base_helpers_mxnet_code_imports(monkeypatch, tmp_path):
    from mxcore.base import data_dir, py_str
    assert py_str(b"caf\xc3\xa9") == "café"
    monkeypatch.setenv("MXCORE_HOME", str(tmp_path))
    assert data_dir() == str(tmp_path)
    monkeypatch.delenv("MXCORE_HOME")
    monkeypatch.delenv("MXNET_HOME", raising=False)
    assert data_dir().endswith(".mxcore")
