"""MXNet's contrib detection operators, with MXNet 1.9.1's signatures, defaults and results.

* ``box_nms`` (alias ``box_non_maximum_suppression``): greedy non-maximum suppression of
  the boxes on the last two axes of ``data`` (``(..., num_boxes, width)``, leading axes
  are batches).  Per batch, the boxes scoring above ``valid_thresh`` (and, with an
  ``id_index``, not of class ``background_id``) are sorted by descending score (ties
  keep their input order); only the first ``topk`` take part.  Walking that order, a
  kept box suppresses every later box whose IoU with it exceeds ``overlap_thresh``
  (only boxes of its own class unless ``force_suppress``).  The kept rows come first,
  in that order, whole (every column copied); the other rows are -1.  ``topk=0``
  returns ``data`` unchanged.  With ``out_format != in_format`` the kept coordinates
  are converted, except (as in MXNet) in rows whose first coordinate is negative.
  The gradient sends each output row's gradient to the input row it copies (and none
  through the format conversion), 0 to the suppressed rows, as MXNet's does.
* ``ROIAlign``: average of bilinear samples on a grid in each of ``pooled_size`` bins
  of each roi ``(batch index, x1, y1, x2, y2)`` (times ``spatial_scale``); the grid
  has ``sample_ratio`` samples per axis, or ``ceil(bin size)`` when ``sample_ratio <= 0``.
  ``aligned=True`` shifts the roi by half a pixel (and requires non-empty rois);
  otherwise rois are at least 1x1.  ``position_sensitive`` takes bin (i, j) of output
  channel c from input channel ``(c * ph + i) * pw + j``.  The batch index is truncated
  toward zero; a negative one gives zeros (MXNet zeroes only the roi's first element
  and leaves the rest unset), one past the batch raises.  The data gradient spreads
  each output gradient over the bilinear weights; the rois get none.  Sample
  positions are computed in the data's precision (float32 for 16-bit floats), in
  MXNet's order of operations, so results match MXNet's up to summation order.
* ``bipartite_matching``: per batch, greedy matching on a (rows, cols) score matrix:
  entries in descending (``is_ascend``: ascending) score order match their row and
  column when both are free, until a free entry's score is not beyond ``threshold``.
  Returns (row -> matched column, column -> matched row), -1 where unmatched, in the
  data's dtype.  As in MXNet, ``topk > 0`` stops once the count of matches exceeds
  ``topk``: up to ``topk + 1`` matches.  Its gradient is zero, as in MXNet.

Thresholds and ``spatial_scale`` are float32 values in MXNet (its parameters are floats),
also for float64 data; so they are here.
Selection (NMS, matching) and roi geometry run on the host; the gathers and the
scatter of the ROIAlign gradient run on the device's array module.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

import hal
import mxcore as mx
from mxcore.base import MXCoreError, OperatorError
from mxcore.ndarray import NDArray
from mxcore.op import REQUIRED, Op
from mxcore_contrib_ops._devices import build

FLOAT = frozenset(hal.FLOAT_DTYPES + hal.BFLOAT16_DTYPES)
_FORMATS = ("corner", "center")


def _require_float(name: str, dtype) -> None:
    if not hal.is_float(hal.to_dtype(dtype)):
        raise MXCoreError(f"{name} must be a floating-point array, got {dtype}")


def _host(a) -> np.ndarray:
    """A numpy copy or view of a kernel's array (CuPy arrays have ``get``)."""
    return a.get() if hasattr(a, "get") else np.asarray(a)


def _work_dtype(dtype) -> type:
    """float64 stays float64; float32 and the 16-bit floats compute in float32."""
    return np.float64 if dtype == np.float64 else np.float32


def _written(result, out: Optional[NDArray]):
    """MXNet's ``out=``: ``result`` written into ``out``, which is returned."""
    if out is None:
        return result
    if not isinstance(out, NDArray) or out.shape != result.shape:
        raise MXCoreError(f"out must be an NDArray of shape {result.shape}, got "
                          f"{getattr(out, 'shape', type(out).__name__)}")
    out[...] = result
    return out


# box_nms ----------------------------------------------------------------------------------
_NMS_ATTRS = {"overlap_thresh": 0.5, "valid_thresh": 0.0, "topk": -1, "coord_start": 2,
              "score_index": 1, "id_index": -1, "background_id": -1, "force_suppress": False,
              "in_format": "corner", "out_format": "corner"}
BOX_NMS = Op("box_nms", 1, attrs=dict(_NMS_ATTRS), aliases=("box_non_maximum_suppression",),
             doc="non-maximum suppression of (..., num_boxes, width) boxes: kept rows "
                 "first by descending score, the others -1")
BOX_NMS_BACKWARD = Op("box_nms_backward", 2, attrs=dict(_NMS_ATTRS),
                      doc="box_nms's data gradient: (out_grad, data) -> each output "
                          "row's gradient on the input row it copies")


@BOX_NMS.def_infer
def _box_nms_infer(shapes, dtypes, attrs):
    shape = shapes[0]
    _require_float("data", dtypes[0])
    if len(shape) < 2:
        raise MXCoreError(f"data must be (..., num_boxes, box_width) with at least 2 axes, "
                          f"got shape {shape}")
    width = shape[-1]
    need = 6 if attrs["id_index"] >= 0 else 5
    if width < need:
        raise MXCoreError(f"data's last axis (box width) must hold at least {need} values "
                          f"(score, 4 coordinates{', class id' if need == 6 else ''}), "
                          f"got shape {shape}")
    for key in ("in_format", "out_format"):
        if attrs[key] not in _FORMATS:
            raise MXCoreError(f"{key} must be 'corner' or 'center', got {attrs[key]!r}")
    start, score, cls = attrs["coord_start"], attrs["score_index"], attrs["id_index"]
    coords = range(start, start + 4)
    if not (0 <= start and start + 3 < width):
        raise MXCoreError(f"coordinates {start}..{start + 3} (coord_start={start}) out of "
                          f"range for box width {width} (data shape {shape})")
    if not 0 <= score < width or score in coords:
        raise MXCoreError(f"score_index={score} must be in [0, {width}) and not one of the "
                          f"coordinates {start}..{start + 3} (data shape {shape})")
    if cls >= 0 and (cls >= width or cls in coords or cls == score):
        raise MXCoreError(f"id_index={cls} must be in [0, {width}) and be neither "
                          f"score_index nor a coordinate (data shape {shape})")
    return [shape], [dtypes[0]]


BOX_NMS_BACKWARD.def_infer(lambda s, d, a: ([tuple(s[1])], [d[1]]))
BOX_NMS.def_grad(lambda c, g: (mx.nd.invoke("box_nms_backward", g, c.inputs[0], **c.attrs),))


def _edges(boxes: np.ndarray, fmt: str) -> Tuple[np.ndarray, ...]:
    """(left, top, right, bottom, area) of (k, 4) boxes; negative sizes have area 0."""
    a, b, c, d = boxes.T
    if fmt == "corner":
        left, top, right, bottom, w, h = a, b, c, d, c - a, d - b
    else:
        left, top, right, bottom, w, h = a - c / 2, b - d / 2, a + c / 2, b + d / 2, c, d
    area = np.where((w < 0) | (h < 0), 0, w * h)
    return left, top, right, bottom, area


def _overlap(lo_a, hi_a, lo_b, hi_b) -> np.ndarray:
    side = np.minimum(hi_a, hi_b) - np.maximum(lo_a, lo_b)
    return np.where(side > 0, side, 0)


def _nms_keep(rows: np.ndarray, a: Dict[str, Any]) -> np.ndarray:
    """Positions of the kept boxes among ``rows`` (sorted by descending score)."""
    start, cls = a["coord_start"], a["id_index"]
    left, top, right, bottom, area = _edges(rows[:, start:start + 4], a["in_format"])
    by_class = cls >= 0 and not a["force_suppress"]
    ids = np.trunc(rows[:, cls]) if by_class else None  # MXNet compares them as ints
    thresh = rows.dtype.type(np.float32(a["overlap_thresh"]))
    keep = np.ones(len(rows), bool)
    for i in range(len(rows)):
        if not keep[i]:
            continue
        rest = slice(i + 1, None)
        inter = (_overlap(left[i], right[i], left[rest], right[rest])
                 * _overlap(top[i], bottom[i], top[rest], bottom[rest]))
        with np.errstate(divide="ignore", invalid="ignore"):  # empty unions: NaN, kept
            hit = inter / (area[i] + area[rest] - inter) > thresh
        if by_class:
            hit &= ids[rest] == ids[i]
        keep[rest] &= ~hit
    return np.flatnonzero(keep)


def _nms_sources(data: np.ndarray, a: Dict[str, Any]) -> Optional[np.ndarray]:
    """(batches, num_boxes): the input row each output row copies, -1 for the rows that
    are filled with -1; None when ``topk`` is 0 (the output is the input)."""
    n, width = data.shape[-2:]
    topk = n if a["topk"] < 0 else min(n, a["topk"])
    if topk < 1:
        return None
    boxes = data.reshape(-1, n, width).astype(_work_dtype(data.dtype))
    wt = boxes.dtype.type
    src = np.full(boxes.shape[:2], -1, np.int64)
    for b, rows in enumerate(boxes):
        score = rows[:, a["score_index"]]
        valid = score > wt(np.float32(a["valid_thresh"]))
        if a["id_index"] >= 0:
            valid &= rows[:, a["id_index"]] != wt(a["background_id"])
        cand = np.flatnonzero(valid)
        # stable: equal scores keep their input order
        cand = cand[np.argsort(-score[cand], kind="stable")][:topk]
        kept = cand[_nms_keep(rows[cand], a)]
        src[b, :len(kept)] = kept
    return src


def _reformat(xp, out, start: int, to_center: bool):
    """``out`` with its coordinates converted, but not in rows whose first is negative."""
    box = out[..., start:start + 4].astype(_work_dtype(out.dtype))
    a, b, c, d = (box[..., i] for i in range(4))
    if to_center:
        new = xp.stack([(a + c) / 2, (b + d) / 2, c - a, d - b], axis=-1)
    else:
        new = xp.stack([a - c / 2, b - d / 2, a + c / 2, b + d / 2], axis=-1)
    out[..., start:start + 4] = xp.where((a < 0)[..., None], box, new).astype(out.dtype)
    return out


def _nms_table(xp):
    def box_nms(data, **a):
        src = _nms_sources(_host(data), a)
        if src is None:
            return data.copy()
        n, width = data.shape[-2:]
        flat = data.reshape(-1, n, width)
        srcx = xp.asarray(src)
        rows = flat[xp.arange(flat.shape[0])[:, None], xp.maximum(srcx, 0)]
        out = xp.where((srcx >= 0)[..., None], rows, xp.full_like(rows, -1))
        if a["in_format"] != a["out_format"]:
            out = _reformat(xp, out, a["coord_start"], a["out_format"] == "center")
        return out.reshape(data.shape)

    def box_nms_backward(g, data, **a):
        src = _nms_sources(_host(data), a)
        if src is None:
            return g.copy()
        n, width = data.shape[-2:]
        grad = xp.zeros((src.shape[0], n, width), g.dtype)
        b, j = (xp.asarray(i) for i in np.nonzero(src >= 0))
        grad[b, xp.asarray(src)[b, j]] = g.reshape(-1, n, width)[b, j]
        return grad.reshape(data.shape)

    return {"box_nms": (box_nms, FLOAT), "box_nms_backward": (box_nms_backward, FLOAT)}


def box_nms(data: NDArray, overlap_thresh: float = 0.5, valid_thresh: float = 0,
            topk: int = -1, coord_start: int = 2, score_index: int = 1, id_index: int = -1,
            background_id: int = -1, force_suppress: bool = False, in_format: str = "corner",
            out_format: str = "corner", out: Optional[NDArray] = None,
            name: Optional[str] = None) -> NDArray:
    """MXNet's box_nms (module docstring): ``data``'s shape, kept boxes first by
    descending score, suppressed and invalid rows -1."""
    result = mx.nd.invoke("box_nms", data, overlap_thresh=float(overlap_thresh),
                          valid_thresh=float(valid_thresh), topk=int(topk),
                          coord_start=int(coord_start), score_index=int(score_index),
                          id_index=int(id_index), background_id=int(background_id),
                          force_suppress=bool(force_suppress), in_format=str(in_format),
                          out_format=str(out_format))
    return _written(result, out)


box_non_maximum_suppression = box_nms
BOX_NMS.frontend = box_nms


# ROIAlign ---------------------------------------------------------------------------------
_ROI_ATTRS = {"pooled_size": REQUIRED, "spatial_scale": REQUIRED, "sample_ratio": -1,
              "position_sensitive": False, "aligned": False}
ROI_ALIGN = Op("roi_align", 2, attrs=dict(_ROI_ATTRS), aliases=("ROIAlign",),
               doc="bilinear average pooling of each roi (batch, x1, y1, x2, y2) into "
                   "pooled_size bins: (num_rois, channels, *pooled_size)")
ROI_ALIGN_BACKWARD = Op("roi_align_backward", 3, attrs=dict(_ROI_ATTRS),
                        doc="roi_align's data gradient: (out_grad, data, rois) -> "
                            "the output gradients spread over the bilinear weights")


def _pooled(size) -> Tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)
    try:
        ph, pw = (int(v) for v in size)
    except (TypeError, ValueError):
        raise MXCoreError(f"pooled_size must be (height, width), got {size!r}") from None
    if ph < 1 or pw < 1:
        raise MXCoreError(f"pooled_size must be two positive sizes, got {size!r}")
    return ph, pw


@ROI_ALIGN.def_infer
def _roi_align_infer(shapes, dtypes, attrs):
    data, rois = shapes
    if len(data) != 4:
        raise MXCoreError(f"data must be (batch, channels, height, width), got shape {data}")
    if len(rois) != 2 or rois[1] != 5:
        raise MXCoreError(f"rois must be (num_rois, 5) rows of (batch index, x1, y1, x2, "
                          f"y2), got shape {rois}")
    _require_float("data", dtypes[0])
    if hal.to_dtype(dtypes[1]) != hal.to_dtype(dtypes[0]):
        raise MXCoreError(f"rois must have data's dtype {dtypes[0]}, got {dtypes[1]}")
    ph, pw = _pooled(attrs["pooled_size"])
    if not 0 <= attrs["spatial_scale"] <= 1:
        raise MXCoreError(f"spatial_scale must be in [0, 1], got {attrs['spatial_scale']}")
    channels = data[1]
    if attrs["position_sensitive"]:
        if channels % (ph * pw):
            raise MXCoreError(f"position_sensitive needs channels divisible by pooled "
                              f"height * width = {ph * pw}, got data shape {data}")
        channels //= ph * pw
    return [(rois[0], channels, ph, pw)], [dtypes[0]]


ROI_ALIGN_BACKWARD.def_infer(lambda s, d, a: ([tuple(s[1])], [d[1]]))


@ROI_ALIGN.def_grad
def _roi_align_grad(ctx, g):
    data, rois = ctx.inputs
    return mx.nd.invoke("roi_align_backward", g, data, rois, **ctx.attrs), None


@ROI_ALIGN_BACKWARD.def_grad
def _roi_align_backward_grad(ctx, gg):
    # the backward is linear in the output gradient: its own gradient is the forward
    return mx.nd.invoke("roi_align", gg, ctx.inputs[2], **ctx.attrs), None, None


def _axis_samples(pos: np.ndarray, size: int):
    """Bilinear neighbours of sample positions along one axis, as MXNet clamps them:
    (inside, low index, high index, low weight, high weight)."""
    wt = pos.dtype.type
    inside = (pos >= -1) & (pos <= size)
    pos = np.clip(pos, 0, size)
    low = pos.astype(np.int64)
    edge = low >= size - 1
    low = np.where(edge, size - 1, low)
    high = np.where(edge, size - 1, low + 1)
    frac = np.where(edge, wt(0), pos - low.astype(pos.dtype))
    return inside, low, high, 1 - frac, frac


def _roi_samples(roi: np.ndarray, height: int, width: int, a: Dict[str, Any]):
    """One roi's bilinear samples: (flat indices (bins, samples * 4), weights of the same
    shape, samples per bin), bins in (ph, pw) order."""
    wt = roi.dtype.type
    ph_n, pw_n = _pooled(a["pooled_size"])
    scale, shift = wt(np.float32(a["spatial_scale"])), wt(0.5 if a["aligned"] else 0)
    x1, y1, x2, y2 = (v * scale - shift for v in roi[1:])
    roi_w, roi_h = x2 - x1, y2 - y1
    if a["aligned"]:
        if not (roi_w > 0 and roi_h > 0):
            raise MXCoreError(f"aligned=True needs rois of positive size, got roi "
                              f"{roi.tolist()} (scaled width {roi_w}, height {roi_h})")
    else:  # malformed rois count as 1x1
        roi_w, roi_h = max(roi_w, wt(1)), max(roi_h, wt(1))
    bin_h, bin_w = roi_h / wt(ph_n), roi_w / wt(pw_n)
    ratio = a["sample_ratio"]
    grid_h = ratio if ratio > 0 else int(math.ceil(bin_h))
    grid_w = ratio if ratio > 0 else int(math.ceil(bin_w))

    def positions(start, bin_size, bins, grid):  # (bins, grid), in MXNet's order
        steps = (np.arange(grid, dtype=wt) + wt(0.5)) * bin_size / wt(grid)
        return (start + np.arange(bins, dtype=wt) * bin_size)[:, None] + steps[None, :]

    yin, ylo, yhi, ylw, yhw = (v[:, None, :, None] for v in
                               _axis_samples(positions(y1, bin_h, ph_n, grid_h), height))
    xin, xlo, xhi, xlw, xhw = (v[None, :, None, :] for v in
                               _axis_samples(positions(x1, bin_w, pw_n, grid_w), width))
    inside = yin & xin
    index = np.stack(np.broadcast_arrays(ylo * width + xlo, ylo * width + xhi,
                                         yhi * width + xlo, yhi * width + xhi), axis=-1)
    weight = np.stack(np.broadcast_arrays(ylw * xlw, ylw * xhw, yhw * xlw, yhw * xhw), axis=-1)
    weight = np.where(inside[..., None], weight, wt(0))
    bins = ph_n * pw_n
    return index.reshape(bins, -1), weight.reshape(bins, -1), grid_h * grid_w


def _roi_plan(data_shape, rois: np.ndarray, a: Dict[str, Any]):
    """Per roi: (roi number, batch index, flat indices into one image (channels, bins,
    samples * 4), weights (bins, samples * 4), samples per bin); rois with a negative
    batch index are skipped."""
    n, channels, height, width = data_shape
    ph, pw = _pooled(a["pooled_size"])
    bins = ph * pw
    if a["position_sensitive"]:  # bin p of output channel c reads channel c * bins + p
        chan = np.arange(channels // bins)[:, None] * bins + np.arange(bins)[None, :]
    else:
        chan = np.arange(channels)[:, None]
    work = rois.astype(_work_dtype(rois.dtype))
    for r, roi in enumerate(work):
        b = int(roi[0])  # truncated, as MXNet casts it
        if b < 0:
            continue
        if b >= n:
            raise MXCoreError(f"roi {r} {roi.tolist()} has batch index {b}, but data has "
                              f"{n} image(s) (shape {tuple(data_shape)})")
        index, weight, count = _roi_samples(roi, height, width, a)
        flat = chan[:, :, None] * (height * width) + index[None]
        yield r, b, flat, weight, count


def _roi_table(xp):
    def roi_align(data, rois, **a):
        n, channels = data.shape[:2]
        wt = _work_dtype(data.dtype)
        ph, pw = _pooled(a["pooled_size"])
        out_c = channels // (ph * pw) if a["position_sensitive"] else channels
        out = xp.zeros((rois.shape[0], out_c, ph * pw), wt)
        images = data.reshape(n, -1)
        for r, b, flat, weight, count in _roi_plan(data.shape, _host(rois), a):
            values = images[b][xp.asarray(flat)].astype(wt)
            out[r] = (values * xp.asarray(weight.astype(wt))).sum(axis=-1) / wt(count)
        return out.reshape(rois.shape[0], out_c, ph, pw).astype(data.dtype)

    def roi_align_backward(g, data, rois, **a):
        n = data.shape[0]
        wt = _work_dtype(data.dtype)
        size = int(np.prod(data.shape[1:]))
        grad = xp.zeros((n, size), wt)
        grads = g.reshape(g.shape[0], g.shape[1], -1).astype(wt)
        for r, b, flat, weight, count in _roi_plan(data.shape, _host(rois), a):
            share = grads[r][:, :, None] * xp.asarray(weight.astype(wt)) / wt(count)
            grad[b] += xp.bincount(xp.asarray(flat).ravel(), weights=share.ravel(),
                                   minlength=size).astype(wt)
        return grad.reshape(data.shape).astype(data.dtype)

    return {"roi_align": (roi_align, FLOAT), "roi_align_backward": (roi_align_backward, FLOAT)}


def ROIAlign(data: NDArray, rois: NDArray, pooled_size: Union[int, Sequence[int]],  # noqa: N802
             spatial_scale: float, sample_ratio: int = -1, position_sensitive: bool = False,
             aligned: bool = False, out: Optional[NDArray] = None,
             name: Optional[str] = None) -> NDArray:
    """MXNet's contrib ROIAlign (module docstring): (num_rois, channels, *pooled_size),
    channels divided by the bin count when ``position_sensitive``."""
    try:
        size = _pooled(pooled_size)
    except MXCoreError as exc:
        raise OperatorError("ROIAlign", str(exc), [getattr(x, "shape", None) for x in
                                                   (data, rois)]) from None
    result = mx.nd.invoke("roi_align", data, rois, pooled_size=size,
                          spatial_scale=float(spatial_scale), sample_ratio=int(sample_ratio),
                          position_sensitive=bool(position_sensitive), aligned=bool(aligned))
    return _written(result, out)


ROI_ALIGN.frontend = ROIAlign


# bipartite_matching -----------------------------------------------------------------------
BIPARTITE_MATCHING = Op("bipartite_matching", 1, nout=2,
                        attrs={"is_ascend": False, "threshold": REQUIRED, "topk": -1},
                        doc="greedy matching on (..., rows, cols) scores: (row -> column, "
                            "column -> row), -1 where unmatched")


@BIPARTITE_MATCHING.def_infer
def _matching_infer(shapes, dtypes, attrs):
    shape = shapes[0]
    _require_float("data", dtypes[0])
    if len(shape) < 2:
        raise MXCoreError(f"the score matrix must have at least 2 axes (..., rows, cols), "
                          f"got shape {shape}")
    return [shape[:-1], shape[:-2] + shape[-1:]], [dtypes[0], dtypes[0]]


@BIPARTITE_MATCHING.def_grad
def _matching_grad(ctx, g_rows, g_cols):
    return (mx.nd.zeros_like(ctx.inputs[0]),)


def _match(scores: np.ndarray, cols: int, a: Dict[str, Any]) -> Tuple[np.ndarray, np.ndarray]:
    """One batch's (row marker, column marker) from its flat (rows * cols) scores."""
    rows = scores.size // cols
    row_of, col_of = np.full(rows, -1, np.int64), np.full(cols, -1, np.int64)
    order = np.argsort(scores if a["is_ascend"] else -scores, kind="stable")
    thresh = scores.dtype.type(np.float32(a["threshold"]))
    ranked = scores[order]
    passing = ranked < thresh if a["is_ascend"] else ranked > thresh
    # scores are sorted: no match comes after the first entry beyond the threshold
    order = order[:int(np.argmin(passing)) if not passing.all() else order.size]
    r_of, c_of = np.divmod(order, cols)
    pos, count = 0, 0
    while pos < order.size:
        free = (row_of[r_of[pos:]] < 0) & (col_of[c_of[pos:]] < 0)
        step = int(np.argmax(free))
        if not free[step]:
            break
        pos += step
        row_of[r_of[pos]], col_of[c_of[pos]] = c_of[pos], r_of[pos]
        count += 1
        if 0 < a["topk"] < count:  # MXNet's test: topk + 1 matches at most
            break
        pos += 1
    return row_of, col_of


def _matching_table(xp):
    def bipartite_matching(data, **a):
        rows, cols = data.shape[-2:]
        scores = _host(data).reshape(-1, rows * cols).astype(_work_dtype(data.dtype))
        marks = [_match(s, cols, a) for s in scores]
        row_m = np.array([m[0] for m in marks]).reshape(data.shape[:-1])
        col_m = np.array([m[1] for m in marks]).reshape(data.shape[:-2] + (cols,))
        return (xp.asarray(row_m.astype(np.float32)).astype(data.dtype),
                xp.asarray(col_m.astype(np.float32)).astype(data.dtype))

    return {"bipartite_matching": (bipartite_matching, FLOAT)}


def bipartite_matching(data: NDArray, is_ascend: bool = False,
                       threshold: Optional[float] = None, topk: int = -1,
                       out: Optional[NDArray] = None,
                       name: Optional[str] = None) -> Tuple[NDArray, NDArray]:
    """MXNet's bipartite_matching (module docstring): (row -> matched column, column ->
    matched row), -1 where unmatched.  ``threshold`` is required."""
    if threshold is None:
        raise OperatorError("bipartite_matching", "missing required argument threshold",
                            [getattr(data, "shape", None)])
    result = mx.nd.invoke("bipartite_matching", data, is_ascend=bool(is_ascend),
                          threshold=float(threshold), topk=int(topk))
    if out is not None:
        for o, r in zip(out, result):
            _written(r, o)
        return tuple(out)
    return result


BIPARTITE_MATCHING.frontend = bipartite_matching

OPS = [BOX_NMS, BOX_NMS_BACKWARD, ROI_ALIGN, ROI_ALIGN_BACKWARD, BIPARTITE_MATCHING]


def kernels() -> List[hal.Kernel]:
    def table(xp):
        return {**_nms_table(xp), **_roi_table(xp), **_matching_table(xp)}
    return build(table, "detection")
