"""Vision models by name (MXNet's ``gluon.model_zoo.vision``).

A model is a function ``fn(pretrained=False, ctx=None, root=None, **kwargs)``
returning a Block; adding one means writing its module and listing it in
``_models``.
"""
from __future__ import annotations

from typing import Callable, Dict

from mxcore.base import MXCoreError
from mxcore.gluon.block import Block
from mxcore.gluon.model_zoo.vision.lenet import LeNet, lenet

__all__ = ["get_model", "UnknownModelError", "LeNet", "lenet"]


class UnknownModelError(MXCoreError, ValueError):
    """``get_model`` was given a name the zoo does not have (a ValueError, as in MXNet)."""


_models: Dict[str, Callable[..., Block]] = {
    "lenet": lenet,
}


def get_model(name: str, **kwargs) -> Block:
    """The model ``name`` (case-insensitive), built with ``kwargs`` (``classes``,
    ``pretrained``, ``ctx``, ``root``...)."""
    key = str(name).lower()
    if key not in _models:
        raise UnknownModelError(f"model {name!r} is not in the model zoo; available: "
                          f"{', '.join(sorted(_models))}")
    return _models[key](**kwargs)
