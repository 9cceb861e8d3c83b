"""Calibration: the ranges quantized layers use, from a float32 model's outputs.

``naive`` keeps each watched output's min and max over the calibration batches
(:class:`MinMaxCollector`).  ``entropy`` keeps a symmetric histogram of 8001 bins per
output (:class:`HistogramCollector`, widened as MXNet 1.x widens it when a later batch
exceeds the range) and picks the threshold whose 255-level quantization of the
histogram loses the least information (:func:`optimal_threshold`: MXNet's KL-divergence
search, ``_contrib_calibrate_entropy``, computed for all candidate thresholds at once).
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional, Tuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mxcore.base import MXCoreError

NUM_BINS = 8001
NUM_QUANTIZED_BINS = 255
#: candidate thresholds evaluated together (bounds the (chunk, 8001) work arrays)
_CHUNK = 256

Histogram = Tuple[np.ndarray, np.ndarray, float, float, float]


class MinMaxCollector:
    """The min and max of each watched output over the batches (``naive``)."""

    def __init__(self, include: Iterable[str]):
        self.include = set(include)
        self.min_max: Dict[str, Tuple[float, float]] = {}

    def collect(self, name: str, arr: np.ndarray) -> None:
        if name not in self.include:
            return
        lo, hi = float(np.min(arr)), float(np.max(arr))
        if name in self.min_max:
            old = self.min_max[name]
            lo, hi = min(old[0], lo), max(old[1], hi)
        self.min_max[name] = (lo, hi)

    def thresholds(self, quantized_dtype: str) -> Dict[str, Tuple[float, float]]:
        return dict(self.min_max)


def combine_histogram(old: Histogram, arr: np.ndarray, new_min: float, new_max: float,
                      new_th: float) -> Histogram:
    """``old`` plus ``arr``'s counts; when ``arr`` reaches beyond the old threshold the
    histogram grows by whole bins on both sides, so old counts keep their bins."""
    hist, edges, old_min, old_max, old_th = old
    if new_th <= old_th:
        counts, _ = np.histogram(arr, bins=len(hist), range=(-old_th, old_th))
        return hist + counts, edges, min(old_min, new_min), max(old_max, new_max), old_th
    step = 2 * old_th / len(hist)
    half = int((new_th - old_th) // step + 1)
    bins = 2 * half + len(hist)
    th = half * step + old_th
    counts, edges = np.histogram(arr, bins=bins, range=(-th, th))
    counts[half:bins - half] += hist
    return counts, edges, min(old_min, new_min), max(old_max, new_max), th


class HistogramCollector:
    """A symmetric histogram of each watched output (``entropy``)."""

    def __init__(self, include: Iterable[str], num_bins: int = NUM_BINS):
        self.include = set(include)
        self.num_bins = num_bins
        self.hist: Dict[str, Histogram] = {}

    def collect(self, name: str, arr: np.ndarray) -> None:
        if name not in self.include:
            return
        lo, hi = float(np.min(arr)), float(np.max(arr))
        th = max(abs(lo), abs(hi))
        if name in self.hist:
            self.hist[name] = combine_histogram(self.hist[name], arr, lo, hi, th)
        else:
            counts, edges = np.histogram(arr, bins=self.num_bins, range=(-th, th))
            self.hist[name] = (counts, edges, lo, hi, th)

    def thresholds(self, quantized_dtype: str) -> Dict[str, Tuple[float, float]]:
        merged = {name: rebin(data, self.num_bins) for name, data in self.hist.items()}
        return optimal_thresholds(merged, quantized_dtype)


def rebin(hist_data: Histogram, max_bins: int = NUM_BINS) -> Histogram:
    """A histogram that later batches widened beyond ``max_bins`` bins, merged back to
    at most ``max_bins`` equal bins: groups of an odd number of bins, the middle group
    centred on zero, zero bins padded at both ends.  The threshold search costs the
    square of the bin count, which outliers in a late batch would otherwise blow up."""
    hist, edges, lo, hi, th = hist_data
    n = len(hist)
    if n <= max_bins:
        return hist_data
    group = -(-n // max_bins)
    group += 1 - group % 2  # odd: the centre bin stays in the middle of its group
    count = -(-n // group)
    count += 1 - count % 2
    pad = (count * group - n) // 2
    padded = np.concatenate([np.zeros(pad, hist.dtype), hist, np.zeros(pad, hist.dtype)])
    merged = padded.reshape(count, group).sum(axis=1)
    new_th = th * count * group / n
    return merged, np.linspace(-new_th, new_th, count + 1), lo, hi, new_th


def _divergences(hist: np.ndarray, halves: np.ndarray, num_quantized_bins: int,
                 eps: float = 0.0001) -> np.ndarray:
    """KL(p || q) for the candidate half-widths ``halves`` (in bins around the centre),
    one row per candidate, padded to the widest window."""
    num_bins = len(hist)
    zero = num_bins // 2
    c, levels = len(halves), num_quantized_bins
    width = 2 * int(halves.max()) + 1
    n = 2 * halves + 1
    start = zero - halves
    rows = np.arange(c)
    valid = np.arange(width)[None, :] < n[:, None]
    padded = np.concatenate([hist, np.zeros(width)])
    sliced = np.where(valid, sliding_window_view(padded, width)[start], 0.0)
    sliced[:, 0] = 0.0  # as in MXNet: the window's first bin holds only the outside mass
    # p: the window, with everything outside it piled onto its end bins
    cum = np.concatenate([[0.0], np.cumsum(hist)])
    p = sliced.copy()
    p[:, 0] = cum[start + 1]
    p[rows, n - 1] = cum[-1] - cum[start + n - 1]
    # q: the window merged into `levels` groups of `merged` bins (the last takes the
    # remainder), each group's total spread evenly over its non-empty bins, kept where
    # p is non-empty
    merged = n // levels
    bounds = np.arange(levels + 1)[None, :] * merged[:, None]
    bounds[:, -1] = n
    sums = np.zeros((c, width + 1))
    np.cumsum(sliced, axis=1, out=sums[:, 1:])
    filled = np.zeros((c, width + 1))
    np.cumsum(sliced != 0, axis=1, out=filled[:, 1:])
    totals = np.diff(sums[rows[:, None], bounds], axis=1)
    counts = np.diff(filled[rows[:, None], bounds], axis=1)
    level = np.divide(totals, counts, out=np.zeros_like(totals), where=counts > 0)
    q = np.zeros((c, width))
    q[valid] = np.repeat(level.ravel(), np.diff(bounds, axis=1).ravel())
    p_on = p != 0
    q[~p_on] = 0.0
    # smoothing (zeros become eps, the rest give up as much) and the divergence; padding
    # entries are 1 in both, so their terms vanish
    ok = np.ones(c, bool)
    smoothed = []
    for dist, on in ((p, p_on), (q, q != 0)):
        nonzero = on.sum(axis=1)
        zeros = n - nonzero
        with np.errstate(divide="ignore", invalid="ignore"):
            eps1 = eps * zeros / nonzero
        ok &= (nonzero > 0) & (eps1 < 1.0)
        eps1 = np.where(np.isfinite(eps1), eps1, 0.0)
        mass = dist.sum(axis=1) - eps1 * nonzero + eps * zeros
        smoothed.append((np.where(valid, np.where(on, dist - eps1[:, None], eps), 1.0), mass))
    (ps, p_mass), (qs, q_mass) = smoothed
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = (ps * (np.log(ps) - np.log(qs))).sum(axis=1)
        kl = terms / p_mass + np.log(q_mass / p_mass)
    return np.where(ok & np.isfinite(kl), kl, np.inf)


def optimal_threshold(hist_data: Histogram, quantized_dtype: str = "int8",
                      num_quantized_bins: int = NUM_QUANTIZED_BINS):
    """``(min, max, threshold, divergence)``: the threshold (a bin edge) whose
    quantization into ``num_quantized_bins`` levels diverges least from the histogram,
    as MXNet 1.x's entropy calibration chooses it.  Data that is never negative, quantized
    to uint8 or auto, has twice the levels (2 * 255 + 1 bins over the symmetric range)."""
    hist, edges, lo, hi, _ = hist_data
    hist = np.asarray(hist, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    if len(hist) % 2 != 1 or len(edges) != len(hist) + 1:
        raise MXCoreError(f"entropy calibration needs an odd number of bins and one more "
                          f"edge, got {len(hist)} bins and {len(edges)} edges")
    if lo >= 0 and quantized_dtype in ("auto", "uint8"):
        num_quantized_bins = num_quantized_bins * 2 + 1
    zero = len(hist) // 2
    first = num_quantized_bins // 2
    if first > zero:
        raise MXCoreError(f"entropy calibration: {len(hist)} bins are fewer than the "
                          f"{num_quantized_bins} quantized levels")
    halves = np.arange(first, zero + 1)
    divergence = np.concatenate([
        _divergences(hist, halves[i:i + _CHUNK], num_quantized_bins)
        for i in range(0, len(halves), _CHUNK)])
    best = int(np.argmin(divergence))  # the first minimum, as MXNet's strict < keeps it
    threshold = float(edges[zero + halves[best] + 1])
    return lo, hi, threshold, float(divergence[best])


def optimal_thresholds(hist_dict: Dict[str, Histogram], quantized_dtype: str = "int8",
                       num_quantized_bins: int = NUM_QUANTIZED_BINS,
                       logger=None) -> Dict[str, Tuple[float, float]]:
    """``{name: (min, max)}`` from each histogram's optimal threshold."""
    out = {}
    for name, data in hist_dict.items():
        lo, hi, th, div = optimal_threshold(data, quantized_dtype, num_quantized_bins)
        out[name] = (0.0, th) if lo >= 0 and quantized_dtype in ("auto", "uint8") else (-th, th)
        if logger is not None:
            logger.debug("layer=%s, min=%f, max=%f, threshold=%f, divergence=%f",
                         name, lo, hi, th, div)
    return out


def make_collector(calib_mode: str, include: Iterable[str]):
    """The collector for ``calib_mode`` ('naive' or 'entropy')."""
    table = {"naive": MinMaxCollector, "entropy": HistogramCollector}
    if calib_mode not in table:
        raise ValueError(f"unknown calibration mode {calib_mode!r}, expected 'none', "
                         "'naive' or 'entropy'")
    return table[calib_mode](include)


def thresholds_of(collector, quantized_dtype: str, logger: Optional[object] = None):
    th = collector.thresholds(quantized_dtype)
    if logger is not None:
        for name, (lo, hi) in th.items():
            logger.debug("calibrated %s: min=%f max=%f", name, lo, hi)
    return th
