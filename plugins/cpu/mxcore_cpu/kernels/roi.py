"""ROIPooling and its backward (see mxcore/ops/roi.py for the bin rules)."""
from __future__ import annotations

import math

from mxcore_cpu.kernels._dtypes import FLOAT


def _round(v: float) -> int:
    """C's round: halves away from zero (as MXNet rounds roi corners)."""
    return int(math.floor(v + 0.5)) if v >= 0 else -int(math.floor(-v + 0.5))


def bins(roi, height: int, width: int, pooled_size, spatial_scale: float):
    """(batch index, [(ph, pw, h0, h1, w0, w1)]) of one roi row (host floats)."""
    b, x1, y1, x2, y2 = (float(v) for v in roi)
    sw, sh = _round(x1 * spatial_scale), _round(y1 * spatial_scale)
    ew, eh = _round(x2 * spatial_scale), _round(y2 * spatial_scale)
    rh, rw = max(eh - sh + 1, 1), max(ew - sw + 1, 1)
    ph_n, pw_n = pooled_size
    bh, bw = rh / ph_n, rw / pw_n
    out = []
    for ph in range(ph_n):
        h0 = min(max(int(math.floor(ph * bh)) + sh, 0), height)
        h1 = min(max(int(math.ceil((ph + 1) * bh)) + sh, 0), height)
        for pw in range(pw_n):
            w0 = min(max(int(math.floor(pw * bw)) + sw, 0), width)
            w1 = min(max(int(math.ceil((pw + 1) * bw)) + sw, 0), width)
            out.append((ph, pw, h0, h1, w0, w1))
    return int(b), out


def kernels(xp, special):
    def roi_pooling(data, rois, pooled_size, spatial_scale):
        n, c, height, width = data.shape
        out = xp.zeros((rois.shape[0], c) + tuple(pooled_size), data.dtype)
        for r, roi in enumerate(rois.tolist()):
            b, cells = bins(roi, height, width, pooled_size, spatial_scale)
            for ph, pw, h0, h1, w0, w1 in cells:
                if h1 > h0 and w1 > w0:
                    out[r, :, ph, pw] = data[b, :, h0:h1, w0:w1].max(axis=(1, 2))
        return out

    def roi_pooling_backward(g, data, rois, pooled_size, spatial_scale):
        n, c, height, width = data.shape
        grad = xp.zeros(data.shape, data.dtype)
        channels = xp.arange(c)
        for r, roi in enumerate(rois.tolist()):
            b, cells = bins(roi, height, width, pooled_size, spatial_scale)
            for ph, pw, h0, h1, w0, w1 in cells:
                if h1 > h0 and w1 > w0:
                    region = data[b, :, h0:h1, w0:w1].reshape(c, -1)
                    first = region.argmax(axis=1)  # the first maximum of each channel
                    hh, ww = h0 + first // (w1 - w0), w0 + first % (w1 - w0)
                    xp.add.at(grad, (b, channels, hh, ww), g[r, :, ph, pw])
        return grad

    return {"roi_pooling": (roi_pooling, FLOAT),
            "roi_pooling_backward": (roi_pooling_backward, FLOAT)}
