"""``mx.nd.image``: MXNet's image operators on (H, W, C) images and (N, H, W, C)
batches (``to_tensor`` turns them into (C, H, W) / (N, C, H, W) float tensors, which
``normalize`` takes).  Written with core ops, so they run on every device, record in
autograd and trace into graphs (``mx.sym.image``).
"""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np

from mxcore.base import OperatorError
from mxcore.ndarray.ndarray import NDArray

__all__ = ["to_tensor", "normalize", "flip_left_right", "flip_top_bottom",
           "random_flip_left_right", "random_flip_top_bottom", "crop"]

Channels = Union[float, Sequence[float]]


def _fail(op: str, msg: str, data: NDArray):
    raise OperatorError(f"image.{op}", msg, [data.shape], [data.dtype], data.context)


def _image(op: str, data: NDArray) -> int:
    """The axis of the width of an (H, W, C) image or (N, H, W, C) batch."""
    if data.ndim not in (3, 4):
        _fail(op, "needs an (H, W, C) image or an (N, H, W, C) batch", data)
    return data.ndim - 2


def to_tensor(data: NDArray) -> NDArray:
    """(H, W, C) or (N, H, W, C) values in [0, 255] -> float32 (C, H, W) or
    (N, C, H, W) in [0, 1]."""
    from mxcore.ops.shape import transpose
    _image("to_tensor", data)
    axes = (2, 0, 1) if data.ndim == 3 else (0, 3, 1, 2)
    return transpose(data.astype("float32"), axes) / 255.0


def normalize(data: NDArray, mean: Channels = 0.0, std: Channels = 1.0) -> NDArray:
    """``(data - mean[c]) / std[c]`` on a (C, H, W) tensor or (N, C, H, W) batch, with one
    value for every channel or one per channel."""
    from mxcore.ops.creation import array
    if data.ndim not in (3, 4):
        _fail("normalize", "needs a (C, H, W) tensor or an (N, C, H, W) batch", data)
    channels = data.shape[-3]
    values = []
    for name, v in (("mean", mean), ("std", std)):
        v = np.atleast_1d(np.asarray(v, dtype=np.float64))
        if v.ndim != 1 or v.size not in (1, channels):
            _fail("normalize", f"{name} must be one value or {channels} (one per channel), "
                               f"got {v.tolist()}", data)
        values.append(array(np.broadcast_to(v, (channels,)).reshape(channels, 1, 1),
                            ctx=data.context, dtype=data.dtype))
    if not np.all(np.atleast_1d(std)):
        _fail("normalize", f"std must not be 0, got {std}", data)
    return (data - values[0]) / values[1]


def _flip(op: str, data: NDArray, offset: int) -> NDArray:
    from mxcore.ops.shape import flip
    return flip(data, axis=_image(op, data) - offset)


def flip_left_right(data: NDArray) -> NDArray:
    """The image(s) mirrored along the width."""
    return _flip("flip_left_right", data, 0)


def flip_top_bottom(data: NDArray) -> NDArray:
    """The image(s) mirrored along the height."""
    return _flip("flip_top_bottom", data, 1)


def _maybe(flip_fn, data: NDArray, p: float) -> NDArray:
    from mxcore import random
    if not 0.0 <= p <= 1.0:
        _fail(flip_fn.__name__, f"p must be in [0, 1], got {p}", data)
    draw = random.uniform(0, 1, shape=(1,), ctx=data.context).asscalar()
    return flip_fn(data) if draw < p else data.copy()


def random_flip_left_right(data: NDArray, p: float = 0.5) -> NDArray:
    """``flip_left_right`` with probability ``p`` (one draw for the whole input)."""
    return _maybe(flip_left_right, data, p)


def random_flip_top_bottom(data: NDArray, p: float = 0.5) -> NDArray:
    """``flip_top_bottom`` with probability ``p`` (one draw for the whole input)."""
    return _maybe(flip_top_bottom, data, p)


def crop(data: NDArray, x: int, y: int, width: int, height: int) -> NDArray:
    """The ``height`` x ``width`` region whose top-left pixel is (x, y), of an (H, W, C)
    image or (N, H, W, C) batch."""
    w_axis = _image("crop", data)
    h, w = data.shape[w_axis - 1], data.shape[w_axis]
    if x < 0 or y < 0 or width < 1 or height < 1 or x + width > w or y + height > h:
        _fail("crop", f"region x={x}, y={y}, width={width}, height={height} is not inside "
                      f"the {h}x{w} image", data)
    key = (slice(None),) * (w_axis - 1) + (slice(y, y + height), slice(x, x + width))
    return data[key]
