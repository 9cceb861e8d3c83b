"""Where pretrained parameters come from: local files only.

MXNet downloads ``{name}-{hash}.params`` into ``~/.mxnet/models``; mxcore never
downloads, so a pretrained model needs ``root``: the parameter file itself, or a
folder holding one of (searched in this order)

* ``{name}.safetensors``: written by mxcore's ``Block.save_parameters``;
* ``{name}.params``: an MXNet parameter file (``net.save_parameters`` in MXNet);
* ``{name}-{hash}.params``: a file of MXNet's own model store, as it downloads it
  (``~/.mxnet/models`` can be given as ``root`` as it is).

``name`` is the model's name in ``vision.get_model`` (``resnet18_v1``,
``mobilenet0.25``, ``squeezenet1.1``...).  Parameters are matched by their
structural names (``features.0.weight``), which the model zoo keeps identical to
MXNet 1.9.1's, and every shape is checked before any parameter changes.
"""
from __future__ import annotations

import glob
import os
from typing import Optional

from mxcore.base import MXCoreError

__all__ = ["get_model_file", "load_pretrained"]


def _candidates(name: str, root: str):
    yield os.path.join(root, f"{name}.safetensors")
    yield os.path.join(root, f"{name}.params")
    # MXNet's store names files {name}-{first 8 hex digits of the sha1}.params
    yield from sorted(glob.glob(os.path.join(glob.escape(root), f"{glob.escape(name)}-*.params")))


def get_model_file(name: str, root: Optional[str] = None) -> str:
    """The path of the pretrained parameters of model ``name`` under ``root``."""
    if root is None:
        raise MXCoreError(
            f"pretrained {name!r}: mxcore downloads no pretrained weights; pass root= the "
            f"parameter file (written by save_parameters) or a folder holding "
            f"{name}.safetensors, {name}.params or MXNet's {name}-<hash>.params")
    root = os.path.expanduser(os.fspath(root))
    if os.path.isfile(root):
        return root
    for path in _candidates(name, root):
        if os.path.isfile(path):
            return path
    raise MXCoreError(f"pretrained {name!r}: no parameter file at {root} (expected the file "
                      f"itself or {os.path.join(root, name + '.safetensors')}, {name}.params "
                      f"or {name}-<hash>.params there)")


def load_pretrained(net, name: str, ctx=None, root: Optional[str] = None):
    """Load the pretrained parameters of model ``name`` (found by ``get_model_file``)
    into ``net`` on ``ctx`` and return ``net``."""
    net.load_parameters(get_model_file(name, root=root), ctx=ctx)
    return net
