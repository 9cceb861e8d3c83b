"""mx.runtime.Features: MXNet's feature names answered from this installation."""
from __future__ import annotations

import importlib.util
import platform

import pytest

import mxcore as mx


def test_features_follow_the_host_and_the_installed_extras(monkeypatch):
    f = mx.runtime.Features()
    assert f.is_enabled("arm") == (platform.machine().lower() in ("aarch64", "arm64"))
    assert f.is_enabled("DIST_KVSTORE") == (importlib.util.find_spec("mpi4py") is not None)
    assert f.is_enabled("CUDA") == (mx.context.num_gpus() > 0)
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert mx.runtime.Features().is_enabled("ARM")
    names = [feat.name for feat in mx.runtime.feature_list()]
    assert names == list(f) and "INT64_TENSOR_SIZE" in names


def test_an_unknown_feature_is_named():
    with pytest.raises(RuntimeError, match="'WARP_DRIVE' is unknown"):
        mx.runtime.Features().is_enabled("WARP_DRIVE")


def test_is_aarch64_run_follows_the_host(monkeypatch):
    from mxcore.test_utils import is_aarch64_run
    assert is_aarch64_run() == (platform.machine().lower() in ("aarch64", "arm64"))
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert is_aarch64_run()
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    assert not is_aarch64_run()
