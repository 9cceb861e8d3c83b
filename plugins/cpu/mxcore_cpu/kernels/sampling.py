"""BilinearSampler and its backward (see mxcore/ops/sampling.py for the rules).

16-bit floats compute in float32.  The data gradient is a scatter-add of the blend
weights, done with ``bincount`` over flat indices (numpy and CuPy both have it;
``add.at`` is slow in numpy and missing in CuPy)."""
from __future__ import annotations

from mxcore_cpu.kernels._dtypes import FLOAT, acc_dtype


def kernels(xp, special):
    def _corners(data, grid):
        """The four neighbours of every grid point: [(flat index, valid, value)] in
        top-left, top-right, bottom-left, bottom-right order, plus the top-left
        weights (wy, wx) and the working dtype."""
        n, c, h, w = data.shape
        wt = acc_dtype(xp, data.dtype)
        g = grid.astype(wt, copy=False)
        x = (g[:, 0] + 1) * ((w - 1) / 2)
        y = (g[:, 1] + 1) * ((h - 1) / 2)
        x0, y0 = xp.floor(x), xp.floor(y)
        wx, wy = 1 - (x - x0), 1 - (y - y0)
        x0 = x0.astype(xp.int64).reshape(n, 1, -1)
        y0 = y0.astype(xp.int64).reshape(n, 1, -1)
        flat = data.reshape(n, c, h * w).astype(wt, copy=False)
        batch, chan = xp.arange(n).reshape(n, 1, 1), xp.arange(c).reshape(1, c, 1)
        out = []
        for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
            yy, xx = y0 + dy, x0 + dx
            valid = (xx >= 0) & (xx <= w - 1) & (yy >= 0) & (yy <= h - 1)
            idx = xp.clip(yy, 0, h - 1) * w + xp.clip(xx, 0, w - 1)
            value = xp.where(valid, flat[batch, chan, idx], 0)
            out.append((idx, valid, value))
        return out, wy.reshape(n, 1, -1), wx.reshape(n, 1, -1), wt

    def bilinear_sampler(data, grid):
        n, c = data.shape[:2]
        ((_, _, tl), (_, _, tr), (_, _, bl), (_, _, br)), wy, wx, _ = _corners(data, grid)
        out = tl * wy * wx + tr * wy * (1 - wx) + bl * (1 - wy) * wx + br * (1 - wy) * (1 - wx)
        return out.reshape((n, c) + grid.shape[2:]).astype(data.dtype, copy=False)

    def bilinear_sampler_backward(g, data, grid):
        n, c, h, w = data.shape
        corners, wy, wx, wt = _corners(data, grid)
        go = g.reshape(n, c, -1).astype(wt, copy=False)
        base = (xp.arange(n).reshape(n, 1, 1) * c + xp.arange(c).reshape(1, c, 1)) * (h * w)
        gdata = xp.zeros(n * c * h * w, dtype=xp.float64)
        weights = (wy * wx, wy * (1 - wx), (1 - wy) * wx, (1 - wy) * (1 - wx))
        for (idx, valid, _), weight in zip(corners, weights):
            contrib = xp.where(valid, go * weight, 0)
            flat_idx = xp.broadcast_to(base + idx, contrib.shape)
            gdata += xp.bincount(flat_idx.ravel(), weights=contrib.ravel(),
                                 minlength=gdata.size)
        (_, _, tl), (_, _, tr), (_, _, bl), (_, _, br) = corners
        mix = tl - tr - bl + br
        gy = -(go * (tr - br + mix * wx)).sum(axis=1) * ((h - 1) / 2)
        gx = -(go * (bl - br + mix * wy)).sum(axis=1) * ((w - 1) / 2)
        ggrid = xp.stack([gx, gy], axis=1).reshape(grid.shape)
        return (gdata.reshape(data.shape).astype(data.dtype),
                ggrid.astype(grid.dtype, copy=False))

    return {"bilinear_sampler": (bilinear_sampler, FLOAT),
            "bilinear_sampler_backward": (bilinear_sampler_backward, FLOAT)}
