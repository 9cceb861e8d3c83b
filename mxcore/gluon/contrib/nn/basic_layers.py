"""Concurrent containers, Identity and PixelShuffle (MXNet's ``gluon.contrib.nn``).

``Concurrent``/``HybridConcurrent`` feed one input to every child and concatenate
the outputs along ``axis``; they name their children like ``Sequential`` does
(``0``, ``1``...), so parameter files keep MXNet's structural names.
"""
from __future__ import annotations

from typing import Sequence, Tuple, Union

from mxcore.base import MXCoreError
from mxcore.gluon.block import HybridBlock
from mxcore.gluon.nn.basic_layers import HybridSequential, Sequential

__all__ = ["Concurrent", "HybridConcurrent", "Identity", "PixelShuffle1D", "PixelShuffle2D",
           "PixelShuffle3D"]


class Concurrent(Sequential):
    """Run every child on the same input and concatenate the outputs along ``axis``."""

    def __init__(self, axis: int = -1, prefix=None, params=None):
        super().__init__(prefix=prefix, params=params)
        self.axis = int(axis)

    def forward(self, x):
        from mxcore import ndarray as F
        return F.concat(*[block(x) for block in self._children.values()], dim=self.axis)


class HybridConcurrent(HybridSequential):
    """``Concurrent`` for HybridBlocks: ``concat([child(x) for child], dim=axis)``."""

    def __init__(self, axis: int = -1, prefix=None, params=None):
        super().__init__(prefix=prefix, params=params)
        self.axis = int(axis)

    # HybridSequential runs its children in a chain; this one runs them side by side
    forward = HybridBlock.forward

    def hybrid_forward(self, F, x):
        return F.concat(*[block(x) for block in self._children.values()], dim=self.axis)


class Identity(HybridBlock):
    """Return the input unchanged (the skip branch of a ``HybridConcurrent``)."""

    def hybrid_forward(self, F, x):
        return x


def _factors(factor: Union[int, Sequence[int]], ndim: int, owner: str) -> Tuple[int, ...]:
    if isinstance(factor, int):
        factors = (factor,) * ndim
    else:
        factors = tuple(int(f) for f in factor)
    if len(factors) != ndim or any(f < 1 for f in factors):
        raise ValueError(f"{owner}: factor must be a positive int or {ndim} positive ints, "
                         f"got {factor!r}")
    return factors


class _PixelShuffle(HybridBlock):
    """Move ``prod(factor)`` groups of channels into the spatial axes:
    ``(N, C * f1 * ... * fk, d1, ..., dk)`` to ``(N, C, d1 * f1, ..., dk * fk)``,
    output position ``(c, i1 * f1 + j1, ...)`` reading channel ``c * prod(f) + (j1, ...)``
    (row-major over the factors)."""

    _ndim = 0

    def __init__(self, factor: Union[int, Sequence[int]]):
        super().__init__()
        self._factors = _factors(factor, self._ndim, type(self).__name__)

    def hybrid_forward(self, F, x):
        k, factors = self._ndim, self._factors
        n_sub = 1
        for f in factors:
            n_sub *= f
        if x.ndim != k + 2 or x.shape[1] % n_sub:
            raise MXCoreError(
                f"{type(self).__name__} {self.name!r}: takes (batch, channels, {k} spatial "
                f"axes) with channels a multiple of {n_sub} (factor {self._factors}), got "
                f"shape {tuple(x.shape)} ({x.dtype}) on {x.context}")
        batch, spatial = x.shape[0], tuple(x.shape[2:])
        split = (batch, x.shape[1] // n_sub) + factors + spatial
        # (N, C, f1..fk, d1..dk) -> (N, C, d1, f1, ..., dk, fk)
        axes = (0, 1) + tuple(a for i in range(k) for a in (2 + k + i, 2 + i))
        merged = (batch, split[1]) + tuple(d * f for d, f in zip(spatial, factors))
        return F.reshape(F.transpose(F.reshape(x, shape=split), axes=axes), shape=merged)

    def __repr__(self) -> str:
        shown = self._factors[0] if self._ndim == 1 else self._factors
        return f"{type(self).__name__}({shown})"


class PixelShuffle1D(_PixelShuffle):
    """``(N, C * f, W)`` to ``(N, C, W * f)``."""

    _ndim = 1


class PixelShuffle2D(_PixelShuffle):
    """``(N, C * f1 * f2, H, W)`` to ``(N, C, H * f1, W * f2)`` (sub-pixel convolution)."""

    _ndim = 2


class PixelShuffle3D(_PixelShuffle):
    """``(N, C * f1 * f2 * f3, D, H, W)`` to ``(N, C, D * f1, H * f2, W * f3)``."""

    _ndim = 3
