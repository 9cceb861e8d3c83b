"""Tensor files: atomic writes, file permissions, loading refuses bad files."""
from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from mxcore.base import MXCoreError
from mxcore.serialization import atomic_path, load_arrays, save_arrays


def test_round_trip_with_metadata(tmp_path):
    path = tmp_path / "a.safetensors"
    arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(2, np.float64)}
    save_arrays(str(path), arrays, {"format": "test", "n": 2})
    back, meta = load_arrays(str(path))
    assert meta == {"format": "test", "n": "2"}
    for k, v in arrays.items():
        np.testing.assert_array_equal(back[k], v)
        assert back[k].dtype == v.dtype


def test_a_failed_save_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "a.safetensors"
    save_arrays(str(path), {"w": np.zeros(3, np.float32)})
    before = path.read_bytes()
    import safetensors.numpy

    def half_written(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"\x00" * 7)
        raise OSError("disk full")
    monkeypatch.setattr(safetensors.numpy, "save_file", half_written)
    with pytest.raises(OSError, match="disk full"):
        save_arrays(str(path), {"w": np.ones(3, np.float32)})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["a.safetensors"]


def test_written_files_get_the_permissions_open_would_give(tmp_path):
    old = os.umask(0o022)
    try:
        save_arrays(str(tmp_path / "a.safetensors"), {"w": np.zeros(1, np.float32)})
        with atomic_path(tmp_path / "b.json") as tmp:
            with open(tmp, "w") as f:
                f.write("{}")
    finally:
        os.umask(old)
    for name in ("a.safetensors", "b.json"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644, name


def test_truncated_file_is_refused_by_name(tmp_path):
    path = tmp_path / "a.safetensors"
    save_arrays(str(path), {"w": np.zeros(100, np.float32)})
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(MXCoreError, match="a.safetensors"):
        load_arrays(str(path))


def test_mxnet_files_read_the_same_from_bytes(tmp_path):
    from mxcore import mxnet_params
    _read_mxnet_bytes = mxnet_params.read_bytes
    path = tmp_path / "m.params"
    mxnet_params.save(str(path), {"a": np.arange(6, dtype=np.int32).reshape(2, 3),
                                  "b": np.array([1.5, -2.0], np.float64)})
    from_file = mxnet_params.read(str(path))
    from_bytes = _read_mxnet_bytes(path.read_bytes(), "a buffer")
    assert from_bytes.names == from_file.names and from_bytes.versions == from_file.versions
    for x, y in zip(from_bytes.arrays, from_file.arrays):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)
    for cut in (1, 9, len(path.read_bytes()) - 17):
        with pytest.raises(MXCoreError, match="a buffer"):
            _read_mxnet_bytes(path.read_bytes()[:cut], "a buffer")
    with pytest.raises(MXCoreError, match="follow the last name"):
        _read_mxnet_bytes(path.read_bytes() + b"\0", "a buffer")


def test_pickle_states_of_mxnet_arrays_and_bad_states():
    import struct
    from mxcore import mxnet_params
    from mxcore.serialization import array_from_state
    # one int64 array of shape (3,) in MXNet's V2 header, saved on cpu(0)
    raw = struct.pack("<Iiiqiii", mxnet_params.V2_MAGIC, 0, 1, 3, 1, 0, 6)
    host, device = array_from_state({"handle": raw + np.array([7, 8, 9], "<i8").tobytes()})
    assert device == "cpu" and host.dtype == np.int64 and host.tolist() == [7, 8, 9]
    with pytest.raises(MXCoreError, match="truncated"):
        array_from_state({"handle": raw})
    with pytest.raises(MXCoreError, match="unpickle"):
        array_from_state({"data": b"\0" * 5, "shape": (2,), "dtype": "float32"})


def test_metadata_only_files_round_trip(tmp_path):
    # safetensors before 0.4.1 cannot read back a file of metadata and no tensor
    from mxcore.serialization import load_arrays, save_arrays
    path = tmp_path / "states"
    save_arrays(str(path), {}, {"format": "x", "version": "1"})
    arrays, meta = load_arrays(str(path))
    assert arrays == {} and meta == {"format": "x", "version": "1"}
