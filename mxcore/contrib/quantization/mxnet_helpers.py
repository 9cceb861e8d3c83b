"""MXNet 1.x's underscore-named steps of ``mxnet.contrib.quantization``, which scripts
written for it (and its own tests) call directly: ``_quantize_symbol``,
``_quantize_params``, ``_calibrate_quantized_sym``, ``_smooth_distribution``.  Each
runs the step of mxcore's pipeline it names; ``quantize_model`` and ``quantize_net``
are the supported entry points."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mxcore.contrib.quantization import rewrite
from mxcore.contrib.quantization.api import _names


def _symbol_class():
    from mxcore.symbol.symbol import Symbol
    return Symbol


def _quantize_symbol(sym, ctx=None, excluded_symbols: Optional[Sequence[str]] = None,
                     excluded_operators: Optional[Sequence[str]] = None,
                     offline_params: Optional[Sequence[str]] = None,
                     quantized_dtype: str = "int8", quantize_mode: str = "smart",
                     quantize_granularity: str = "tensor-wise") -> Tuple[Any, List[str]]:
    """``(qsym, calib_layers)``: the quantized graph of the float32 ``sym`` and the
    names of the outputs calibration should watch.  ``offline_params`` are the
    parameters quantized ahead of time (read as ``<name>_quantize`` variables); others
    are quantized at run time."""
    Symbol = _symbol_class()
    if not isinstance(sym, Symbol):
        raise ValueError(f"_quantize_symbol: sym must be a Symbol, got {type(sym).__name__}")
    heads, calib_names = rewrite.quantize_symbol(
        sym._outputs, _names(excluded_symbols, "excluded_symbols"),
        _names(excluded_operators, "excluded_operators"),
        _names(offline_params, "offline_params"), quantized_dtype, quantize_mode,
        quantize_granularity)
    return Symbol(heads), list(calib_names)


def _quantize_params(qsym, params: Dict[str, Any],
                     th_dict: Optional[Dict[str, Tuple[float, float]]] = None) -> Dict[str, Any]:
    """The parameters ``qsym`` reads: ``<p>_quantize`` (int8, symmetric over the
    parameter's own min and max) with ``<p>_quantize_min``/``_max`` for each parameter
    quantized offline, and the others as given.  ``th_dict`` is accepted for MXNet's
    signature: calibrated ranges are attributes of the graph's nodes here
    (``_calibrate_quantized_sym``), not parameters."""
    return rewrite.quantize_params(qsym._outputs, params)


def _calibrate_quantized_sym(qsym, th_dict: Optional[Dict[str, Tuple[float, float]]]):
    """A copy of ``qsym`` whose quantize and requantize nodes carry the ranges of
    ``th_dict`` ({float output name: (min, max)}) as ``min_calib_range`` and
    ``max_calib_range``; ``qsym`` itself when ``th_dict`` is empty."""
    if not th_dict:
        return qsym
    return _symbol_class()(rewrite.set_calib_table(qsym._outputs, th_dict))


def _smooth_distribution(p: np.ndarray, eps: float = 0.0001) -> np.ndarray:
    """The histogram ``p`` (not necessarily normalised) with each empty bin given
    ``eps`` and that mass taken evenly from the others, as float32, so that a KL
    divergence against it is finite.  ValueError when every bin is empty or the
    non-empty ones cannot give up that much."""
    p = np.asarray(p)
    empty = p == 0
    n_empty = int(empty.sum())
    n_full = p.size - n_empty
    if n_full == 0:
        raise ValueError("_smooth_distribution: the distribution is malformed, all "
                         f"{p.size} entries are 0")
    eps1 = eps * n_empty / n_full
    hist = p.astype(np.float32)
    hist += np.where(empty, eps, -eps1).astype(np.float32)
    if eps1 >= 1.0 or (hist <= 0).any():
        raise ValueError(f"_smooth_distribution: eps={eps} is too large for a distribution "
                         f"with {n_empty} empty and {n_full} non-empty bins")
    return hist


__all__ = ["_quantize_symbol", "_quantize_params", "_calibrate_quantized_sym",
           "_smooth_distribution"]
