"""Image transforms (MXNet ``gluon.data.vision.transforms``).

Callables on NDArrays built from mxcore ops (``transpose``, ``cast``,
arithmetic), so they run on any device.  They will become HybridBlocks; the
interface kept stable is ``transform(x)`` and ``transform.forward(x)``.

Typical use::

    from mxcore.gluon.data.vision import transforms
    t = transforms.Compose([transforms.ToTensor(), transforms.Normalize(0.1307, 0.3081)])
    train = MNIST(train=True).transform_first(t)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from mxcore.ndarray.ndarray import NDArray

__all__ = ["Compose", "ToTensor", "Normalize", "Cast"]


def _nd():
    from mxcore import ndarray as nd
    return nd


def _as_nd(x) -> NDArray:
    if isinstance(x, NDArray):
        return x
    from mxcore.gluon.data import _batch
    x = np.asarray(x)
    return _nd().array(x, ctx=_batch.cpu(), dtype=x.dtype)


class _Transform:
    """Base of the transforms: ``forward(x)`` does the work, calling the object runs it.

    ``_batchable()`` says that applying the transform to a batch stacked along a
    new first axis (``_forward_batch``) equals stacking its results on the
    samples; the DataLoader then transforms whole batches at once.
    """

    def forward(self, x):
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    def hybridize(self, active: bool = True, **kwargs) -> None:
        """Accepted for MXNet compatibility; these transforms are already fused ops."""

    def _batchable(self) -> bool:
        return False

    def _forward_batch(self, x):
        raise NotImplementedError

    def _own_methods(self, cls) -> bool:
        t = type(self)
        return t.forward is cls.forward and t.__call__ is _Transform.__call__

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Compose(_Transform):
    """Apply transforms one after the other: ``Compose([ToTensor(), Normalize(m, s)])``."""

    def __init__(self, transforms: Sequence):
        self._transforms = list(transforms)
        for t in self._transforms:
            if not callable(t):
                raise TypeError(f"Compose needs callables, got {type(t).__name__}")

    def forward(self, x):
        for t in self._transforms:
            x = t(x)
        return x

    def __len__(self) -> int:
        return len(self._transforms)

    def __getitem__(self, i):
        return self._transforms[i]

    def _batchable(self) -> bool:
        if not self._own_methods(Compose):
            return False
        for t in self._transforms:
            b = getattr(t, "_batchable", None)
            if b is None or not callable(b) or not b():
                return False
        return True

    def _forward_batch(self, x):
        for t in self._transforms:
            x = t._forward_batch(x)
        return x

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self._transforms)
        return f"Compose([{inner}])"


class Cast(_Transform):
    """Cast to ``dtype`` (default float32)."""

    def __init__(self, dtype="float32"):
        self._dtype = np.dtype(dtype).name

    def forward(self, x):
        return _nd().cast(_as_nd(x), self._dtype)

    def _batchable(self) -> bool:
        return self._own_methods(Cast)

    def _forward_batch(self, x):
        return self.forward(x)

    def __repr__(self) -> str:
        return f"Cast(dtype={self._dtype!r})"


class ToTensor(_Transform):
    """An image (H, W, C) with values in [0, 255] to a float32 tensor (C, H, W) in [0, 1].

    A batch (N, H, W, C) becomes (N, C, H, W).  The input is usually uint8; any
    dtype is cast to float32 and divided by 255, as MXNet does.
    """

    def forward(self, x):
        x = _as_nd(x)
        if x.ndim == 3:
            axes = (2, 0, 1)
        elif x.ndim == 4:
            axes = (0, 3, 1, 2)
        else:
            raise ValueError(f"ToTensor expects an image (H, W, C) or a batch (N, H, W, C), "
                             f"got shape {x.shape}")
        nd = _nd()
        # copy() lays the transposed view out contiguously while it is still 1 byte/element
        return nd.cast(nd.copy(nd.transpose(x, axes=axes)), "float32") / 255.0

    def _batchable(self) -> bool:
        return self._own_methods(ToTensor)

    def _forward_batch(self, x):
        if x.ndim != 4:
            raise ValueError(f"ToTensor: samples must be images (H, W, C), got a batch of shape "
                             f"{x.shape}")
        return self.forward(x)


class Normalize(_Transform):
    """``(x - mean) / std`` per channel of a (C, H, W) tensor or (N, C, H, W) batch.

    ``mean`` and ``std`` are numbers (same for every channel) or sequences with
    one value per channel.  The input must be floating point (use ToTensor first).
    """

    def __init__(self, mean=0.0, std=1.0):
        self._mean = mean
        self._std = std
        self._cache = {}

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cache"] = {}  # NDArrays do not pickle; rebuilt on first use
        return state

    def _per_channel(self, value, channels: int, name: str):
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
        if arr.size == 1:
            return float(arr[0])
        if arr.size != channels:
            raise ValueError(f"Normalize: {name} has {arr.size} values but the input has "
                             f"{channels} channels")
        return arr

    def _consts(self, x: NDArray):
        c = x.shape[-3]
        key = (x.context, x.dtype, c)
        hit = self._cache.get(key)
        if hit is None:
            consts = []
            for value, name in ((self._mean, "mean"), (self._std, "std")):
                v = self._per_channel(value, c, name)
                if isinstance(v, np.ndarray):
                    v = _nd().array(v.reshape(c, 1, 1), ctx=x.context, dtype=x.dtype)
                consts.append(v)
            hit = self._cache[key] = tuple(consts)
        return hit

    def forward(self, x):
        x = _as_nd(x)
        if x.ndim not in (3, 4):
            raise ValueError(f"Normalize expects (C, H, W) or (N, C, H, W), got shape {x.shape}")
        if x.dtype.kind != "f":
            raise TypeError(f"Normalize needs floating-point input, got {x.dtype}; "
                            "apply ToTensor() or Cast() first")
        mean, std = self._consts(x)
        return (x - mean) / std

    def _batchable(self) -> bool:
        return self._own_methods(Normalize)

    def _forward_batch(self, x):
        if x.ndim != 4:
            raise ValueError(f"Normalize: samples must be (C, H, W), got a batch of shape "
                             f"{x.shape}")
        return self.forward(x)

    def __repr__(self) -> str:
        return f"Normalize(mean={self._mean!r}, std={self._std!r})"
