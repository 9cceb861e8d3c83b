"""Where pretrained parameters come from: local files only.

MXNet downloads ``{name}-{hash}.params`` into ``~/.mxnet/models``; mxcore
reads safetensors files written by ``Block.save_parameters`` and never
downloads, so a pretrained model needs ``root``: the file itself, or a folder
holding ``{name}.safetensors``.
"""
from __future__ import annotations

import os
from typing import Optional

from mxcore.base import MXCoreError

__all__ = ["get_model_file"]


def get_model_file(name: str, root: Optional[str] = None) -> str:
    """The path of the pretrained parameters of model ``name`` under ``root``."""
    if root is None:
        raise MXCoreError(
            f"pretrained {name!r}: mxcore downloads no pretrained weights; pass root= the "
            f"parameter file (written by save_parameters) or a folder holding "
            f"{name}.safetensors")
    root = os.path.expanduser(os.fspath(root))
    if os.path.isfile(root):
        return root
    path = os.path.join(root, f"{name}.safetensors")
    if os.path.isfile(path):
        return path
    raise MXCoreError(f"pretrained {name!r}: no parameter file at {root} (expected the file "
                      f"itself or {path})")
