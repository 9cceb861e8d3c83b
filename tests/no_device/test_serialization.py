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
