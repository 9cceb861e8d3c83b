"""MXNet's ``mx.runtime``: which features this mxcore installation has.

``Features()`` maps MXNet's feature names to whether mxcore provides them here, so
scripts that branch on ``mx.runtime.Features().is_enabled('CUDA')`` keep working.
Features are computed from the installed plugins and devices, not from build flags.
"""
from __future__ import annotations

import collections
import importlib.util
import platform
from typing import Dict

__all__ = ["Feature", "Features", "feature_list"]

Feature = collections.namedtuple("Feature", ["name", "enabled"])


def _detect() -> Dict[str, bool]:
    from mxcore.device import num_gpus
    gpu = num_gpus() > 0
    return {
        "CUDA": gpu, "CUDNN": False, "NCCL": False, "CUDA_RTC": False, "TENSORRT": False,
        "CPU_SSE": False, "CPU_AVX": False, "F16C": False, "BLAS_OPEN": True,
        "BLAS_ATLAS": False, "BLAS_MKL": False, "BLAS_APPLE": False, "LAPACK": True,
        "MKLDNN": False, "ONEDNN": False, "OPENCV": False, "CAFFE": False,
        "PROFILER": True,
        # dist_sync/dist_device_sync run over MPI when mpi4py is installed (mxcore[dist])
        "DIST_KVSTORE": importlib.util.find_spec("mpi4py") is not None, "CXX14": False,
        # index arithmetic is int64 throughout (numpy), so tensors past 2**31 work
        "INT64_TENSOR_SIZE": True, "SIGNAL_HANDLER": False, "DEBUG": False,
        # the host is 64-bit ARM (mxcore is pure Python: what it runs on is what it is
        # "built" for); the mxcore-arm plugin's kernels then serve mx.cpu()
        "TVM_OP": False, "ARM": platform.machine().lower() in ("aarch64", "arm64"),
    }


class Features(collections.OrderedDict):
    """Feature name -> ``Feature(name, enabled)``."""

    def __init__(self):
        super().__init__((name, Feature(name, on)) for name, on in _detect().items())

    def __repr__(self) -> str:
        return str(list(self.values()))

    def is_enabled(self, feature_name: str) -> bool:
        """Whether ``feature_name`` (MXNet's name, case-insensitive) is enabled."""
        name = feature_name.upper()
        if name not in self:
            raise RuntimeError(f"feature {feature_name!r} is unknown; known features: "
                               f"{', '.join(self)}")
        return self[name].enabled


def feature_list() -> list:
    """Every feature as a ``Feature(name, enabled)``."""
    return list(Features().values())
