"""Spatial sampling: MXNet's GridGenerator, BilinearSampler and SpatialTransformer
(the spatial transformer network's three parts).

A sampling grid is (N, 2, H_out, W_out): channel 0 the x and channel 1 the y of each
output pixel's source, both normalised to [-1, 1] over the input's width and height.
``BilinearSampler`` reads the input at those points, blending the four neighbours;
a neighbour outside the input counts as 0.  Its gradient reaches the data (the blend
weights scattered back) and the grid (the blend's slope between the neighbours).
``GridGenerator`` makes grids: from (N, 6) affine matrices applied to the output's own
normalised coordinates, or from (N, 2, H, W) pixel offsets ('warp').  It is linear
in its input, so it is written with core ops and differentiates through them;
``SpatialTransformer`` is the two in sequence.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from mxcore.array import NDArray
from mxcore.base import MXCoreError, OperatorError
from mxcore.dispatch import invoke
from mxcore.op import Op
from mxcore.ops.backward import fused_backward

BILINEAR_SAMPLER = Op("bilinear_sampler", 2, aliases=("BilinearSampler",),
                      doc="data (N, C, H, W) read at grid (N, 2, Ho, Wo) points in [-1, 1], "
                          "bilinear, zero outside")
BILINEAR_SAMPLER_BACKWARD = Op(
    "bilinear_sampler_backward", 3, nout=2,
    doc="bilinear_sampler's gradients: (out_grad, data, grid) -> (d data, d grid)")
OPS = [BILINEAR_SAMPLER, BILINEAR_SAMPLER_BACKWARD]


@BILINEAR_SAMPLER.def_infer
def _sampler_infer(s, d, a):
    data, grid = tuple(s[0]), tuple(s[1])
    if len(data) != 4:
        raise MXCoreError(f"data must be (batch, channels, height, width), got {data}")
    if len(grid) != 4 or grid[1] != 2 or grid[0] != data[0]:
        raise MXCoreError(f"grid must be (batch, 2, out height, out width) with data's batch "
                          f"{data[0]}, got {grid}")
    if d[0] != d[1]:
        raise MXCoreError(f"data and grid must share a dtype, got {d[0]} and {d[1]}")
    return [data[:2] + grid[2:]], [d[0]]


fused_backward(BILINEAR_SAMPLER, BILINEAR_SAMPLER_BACKWARD, _sampler_infer)


def _fail(op: str, exc: Exception, *arrays: NDArray):
    raise OperatorError(op, str(exc), [a.shape for a in arrays], [a.dtype for a in arrays],
                        arrays[0].context) from None


def BilinearSampler(data: NDArray, grid: NDArray, cudnn_off: Optional[bool] = None,  # noqa: N802
                    name=None) -> NDArray:
    """Sample ``data`` (N, C, H, W) at ``grid`` (N, 2, Ho, Wo): x in channel 0, y in
    channel 1, normalised so -1 and 1 are the first and last pixel; bilinear between
    the four neighbours, zero outside.  Returns (N, C, Ho, Wo)."""
    try:
        _sampler_infer([data.shape, grid.shape], [data.dtype, grid.dtype], {})
    except MXCoreError as exc:
        _fail("BilinearSampler", exc, data, grid)
    return invoke(BILINEAR_SAMPLER, (data, grid))


def _affine_base(height: int, width: int) -> np.ndarray:
    """(3, H*W): each output pixel's normalised (x, y, 1), row-major."""
    k = np.arange(height * width)
    with np.errstate(divide="ignore", invalid="ignore"):  # a size of 1 divides by 0, as MXNet
        x = -1.0 + (k % width) * (2.0 / (width - 1)) if width > 1 else np.full(k.shape, np.nan)
        y = -1.0 + (k // width) * (2.0 / (height - 1)) if height > 1 else np.full(k.shape,
                                                                                  np.nan)
    return np.stack([x, y, np.ones(k.shape)])


def GridGenerator(data: NDArray, transform_type: str = "affine",  # noqa: N802
                  target_shape: Sequence[int] = (0, 0), name=None) -> NDArray:
    """A sampling grid for BilinearSampler (MXNet's GridGenerator).

    * ``'affine'``: ``data`` (N, 6) holds row-major 2x3 matrices; each output pixel's
      normalised (x, y, 1) on a ``target_shape`` (H, W) grid is mapped through them.
    * ``'warp'``: ``data`` (N, 2, H, W) holds x and y offsets in pixels; the grid is
      each pixel's own position plus its offset, normalised to [-1, 1].
    """
    from mxcore.ops.creation import array
    from mxcore.ops.linalg import dot
    from mxcore.ops.shape import reshape
    try:
        if transform_type == "affine":
            h, w = (int(v) for v in target_shape)
            if data.ndim != 2 or data.shape[1] != 6:
                raise MXCoreError(f"'affine' needs (batch, 6) matrices, got {data.shape}")
            if h < 1 or w < 1:
                raise MXCoreError(f"'affine' needs a positive target_shape, got "
                                  f"{tuple(target_shape)}")
        elif transform_type == "warp":
            if data.ndim != 4 or data.shape[1] != 2:
                raise MXCoreError(f"'warp' needs (batch, 2, height, width) offsets, got "
                                  f"{data.shape}")
        else:
            raise MXCoreError(f"transform_type must be 'affine' or 'warp', got "
                              f"{transform_type!r}")
    except (MXCoreError, TypeError, ValueError) as exc:
        _fail("GridGenerator", exc, data)
    if transform_type == "affine":
        base = array(_affine_base(h, w), ctx=data.context, dtype=data.dtype)
        grid = dot(reshape(data, (data.shape[0] * 2, 3)), base)
        return reshape(grid, (data.shape[0], 2, h, w))
    n, _, h, w = data.shape
    pos = np.stack(np.meshgrid(np.arange(w), np.arange(h), indexing="xy"))[None]
    with np.errstate(divide="ignore"):
        scale = np.array([2.0 / (w - 1), 2.0 / (h - 1)]).reshape(1, 2, 1, 1)
    shift = array(pos * scale - 1.0, ctx=data.context, dtype=data.dtype)
    return data * array(scale, ctx=data.context, dtype=data.dtype) + shift


def SpatialTransformer(data: NDArray, loc: NDArray, target_shape: Sequence[int] = (0, 0),  # noqa: N802,E501
                       transform_type: str = "affine", sampler_type: str = "bilinear",
                       cudnn_off: Optional[bool] = None, name=None) -> NDArray:
    """Warp ``data`` (N, C, H, W) by the affine matrices ``loc`` (N, 6) onto a
    ``target_shape`` grid: ``BilinearSampler(data, GridGenerator(loc, 'affine',
    target_shape))``."""
    if transform_type != "affine" or sampler_type != "bilinear":
        raise OperatorError("SpatialTransformer", f"only transform_type='affine' with "
                            f"sampler_type='bilinear' exists (MXNet's only pair), got "
                            f"{transform_type!r}, {sampler_type!r}",
                            [data.shape, loc.shape], [data.dtype, loc.dtype], data.context)
    grid = GridGenerator(loc, "affine", target_shape)
    return BilinearSampler(data, grid)


__all__ = ["BilinearSampler", "GridGenerator", "SpatialTransformer"]
