"""MXNet's ``mx.runtime``: which features this mxcore installation has.

``Features()`` maps MXNet's feature names to whether mxcore provides them here, so
scripts that branch on ``mx.runtime.Features().is_enabled('CUDA')`` keep working.
Features are computed from the installed plugins and devices, not from build flags.
"""
from __future__ import annotations

import collections
from typing import Dict

__all__ = ["Feature", "Features", "feature_list"]

Feature = collections.namedtuple("Feature", ["name", "enabled"])


def _detect() -> Dict[str, bool]:
    from mxcore.device import num_gpus
    from mxcore.plugins import registry
    kinds = set(registry().devices)
    gpu = num_gpus() > 0
    return {
        "CUDA": gpu, "CUDNN": False, "NCCL": False, "CUDA_RTC": False, "TENSORRT": False,
        "CPU_SSE": False, "CPU_AVX": False, "F16C": False, "BLAS_OPEN": True,
        "BLAS_ATLAS": False, "BLAS_MKL": False, "BLAS_APPLE": False, "LAPACK": True,
        "MKLDNN": False, "ONEDNN": False, "OPENCV": False, "CAFFE": False,
        "PROFILER": True, "DIST_KVSTORE": False, "CXX14": False,
        # index arithmetic is int64 throughout (numpy), so tensors past 2**31 work
        "INT64_TENSOR_SIZE": True, "SIGNAL_HANDLER": False, "DEBUG": False,
        "TVM_OP": False, "ARM": "arm" in kinds,
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
