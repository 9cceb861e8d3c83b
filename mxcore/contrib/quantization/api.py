"""``quantize_model`` (symbol level) and ``quantize_net`` (Gluon): MXNet 1.x's
``mx.contrib.quantization`` entry points over :mod:`.rewrite` and :mod:`.calibration`."""
from __future__ import annotations

import os
import tempfile
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from mxcore.base import MXCoreError
from mxcore.contrib.quantization import calibration, rewrite
from mxcore.graph import functions
from mxcore.graph.ir import topological

CALIB_MODES = ("none", "naive", "entropy")


# calibration data ------------------------------------------------------------------------------
def _batch_inputs(batch, count: int) -> List[Any]:
    """The first ``count`` data arrays of a batch: a DataBatch (``.data``), a
    (data, label...) tuple or list, or an array."""
    data = getattr(batch, "data", None)
    if data is not None and not isinstance(batch, np.ndarray):
        items = list(data)
    elif isinstance(batch, (list, tuple)):
        items = list(batch)
    else:
        items = [batch]
    if len(items) < count:
        raise MXCoreError(f"quantization: a calibration batch has {len(items)} array(s), the "
                          f"model takes {count} input(s)")
    return items[:count]


def _reusable(calib_data):
    """``calib_data`` in a form that can be iterated more than once: a one-shot iterator
    (a generator) is read into a list; DataLoaders, lists and ``mx.io`` iterators (which
    reset) are kept."""
    if calib_data is None or hasattr(calib_data, "reset"):
        return calib_data
    return list(calib_data) if iter(calib_data) is calib_data else calib_data


def _batches(calib_data, count: int, max_batches: Optional[int],
             max_examples: Optional[int]) -> Iterable[List[Any]]:
    """Batches of input arrays from a DataLoader, an iterable of batches or an
    ``mx.io`` iterator (reset first), up to ``max_batches`` batches or ``max_examples``
    examples."""
    if hasattr(calib_data, "reset") and hasattr(calib_data, "provide_data"):
        calib_data.reset()
    seen_batches = seen_examples = 0
    for batch in calib_data:
        if max_batches is not None and seen_batches >= max_batches:
            break
        if max_examples is not None and seen_examples >= max_examples:
            break
        arrays = _batch_inputs(batch, count)
        seen_batches += 1
        seen_examples += int(arrays[0].shape[0]) if getattr(arrays[0], "shape", ()) else 1
        yield arrays


def _as_ndarray(x, ctx):
    """An NDArray on ``ctx`` (host arrays of integers, such as raw images, as float32)."""
    from mxcore import ndarray as nd
    if isinstance(x, nd.NDArray):
        return x.as_in_context(ctx) if x.context != ctx else x
    host = np.asarray(x)
    return nd.array(host, ctx=ctx, dtype=host.dtype if host.dtype.kind == "f" else np.float32)


def _zero_labels(heads, values: Dict[str, Any], label_names: Sequence[str], ctx):
    """Zeros for the graph's label inputs (``softmax_label``) that have no value, shaped
    as shape inference derives them from the data: output layers ignore their labels
    outside training, and calibration batches often carry none."""
    from mxcore import ndarray as nd
    from mxcore.graph import infer
    wanted = [n.name for n in topological(heads) if n.is_variable and
              n.name in label_names and n.name not in values]
    if not wanted:
        return {}
    shapes, _ = infer.infer(heads, {k: tuple(v.shape) for k, v in values.items()},
                            {k: v.dtype for k, v in values.items()})
    found = {n.name: shapes.get((id(n), 0)) for n in topological(heads) if n.is_variable}
    return {name: nd.zeros(found[name], ctx=ctx) for name in wanted if found.get(name)}


def collect(heads, params: Dict[str, Any], data_names: Sequence[str], calib_data, collector,
            ctx, max_batches: Optional[int] = None, max_examples: Optional[int] = None,
            logger=None, label_names: Sequence[str] = ()) -> int:
    """Runs the float graph ``heads`` on the calibration batches, handing each output
    the collector watches (by its MXNet name) to ``collector.collect``; returns the
    number of examples seen.  Inputs named in ``label_names`` that the batches do not
    give are fed zeros."""
    from mxcore import autograd
    order = topological(heads)
    values_base = {k: _as_ndarray(v, ctx) for k, v in params.items()}
    examples = 0
    with autograd.pause():
        for arrays in _batches(calib_data, len(data_names), max_batches, max_examples):
            values = dict(values_base)
            values.update({n: _as_ndarray(a, ctx) for n, a in zip(data_names, arrays)})
            values.update(_zero_labels(heads, values, label_names, ctx))
            results: Dict[int, List[Any]] = {}
            for node in order:
                if node.is_variable:
                    if node.name not in values:
                        raise MXCoreError(f"quantization: the graph's input {node.name!r} "
                                          "has no parameter value and is not a data input "
                                          f"({list(data_names)})")
                    results[id(node)] = [values[node.name]]
                else:
                    ins = [results[id(s)][i] for s, i in node.inputs]
                    results[id(node)] = functions.run(node.op, ins, node.call_attrs(), ctx)
                for i, out in enumerate(results[id(node)]):
                    name = rewrite.output_name(node, i)
                    if name in collector.include:
                        collector.collect(name, out.asnumpy())
            examples += int(arrays[0].shape[0])
    if logger is not None:
        logger.info("collected layer statistics from %d examples", examples)
    return examples


# symbol level -------------------------------------------------------------------------------
def _names(value, what: str) -> List[str]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{what} must be a list of strings, got {type(value).__name__}")
    return [str(v) for v in value]


def quantize_graph(sym, arg_params: Dict[str, Any], aux_params: Dict[str, Any], ctx=None,
                   excluded_sym_names=None, excluded_op_names=None, calib_mode: str = "entropy",
                   quantized_dtype: str = "int8", quantize_mode: str = "full",
                   quantize_granularity: str = "tensor-wise", logger=None):
    """``(qsym, qarg_params, aux_params, collector)``: the uncalibrated quantized
    symbol and parameters, and the collector calibration feeds (None for 'none')."""
    from mxcore.symbol.symbol import Symbol, load
    if isinstance(sym, (str, os.PathLike)):
        sym = load(os.fspath(sym))
    if not isinstance(sym, Symbol):
        raise ValueError(f"sym must be a Symbol or a -symbol.json path, got "
                         f"{type(sym).__name__}")
    if calib_mode not in CALIB_MODES:
        raise ValueError(f"unknown calibration mode {calib_mode!r}, expected 'none', "
                         "'naive' or 'entropy'")
    heads, calib_names = rewrite.quantize_symbol(
        sym._outputs, _names(excluded_sym_names, "excluded_sym_names"),
        _names(excluded_op_names, "excluded_op_names"), list(arg_params),
        quantized_dtype, quantize_mode, quantize_granularity)
    if logger is not None:
        logger.info("quantized symbol; layers to calibrate: %s", calib_names)
    collector = None if calib_mode == "none" else \
        calibration.make_collector(calib_mode, calib_names)
    qsym = Symbol(heads)
    return qsym, rewrite.quantize_params(heads, arg_params), dict(aux_params), collector


def calib_graph(qsym, arg_params: Dict[str, Any], aux_params: Dict[str, Any], collector,
                calib_mode: str = "entropy", quantized_dtype: str = "int8", logger=None):
    """``(qsym, qarg_params, aux_params)`` with the collector's ranges set on the
    quantize and requantize nodes."""
    from mxcore.symbol.symbol import Symbol
    th_dict = calibration.thresholds_of(collector, quantized_dtype, logger)
    heads = rewrite.set_calib_table(qsym._outputs, th_dict)
    return Symbol(heads), rewrite.quantize_params(heads, arg_params), dict(aux_params)


def quantize_model(sym, arg_params: Dict[str, Any], aux_params: Dict[str, Any],
                   data_names: Sequence[str] = ("data",),
                   label_names: Sequence[str] = ("softmax_label",), ctx=None,
                   excluded_sym_names=None, excluded_op_names=None,
                   calib_mode: str = "entropy", calib_data=None,
                   num_calib_examples: Optional[int] = None, quantized_dtype: str = "int8",
                   quantize_mode: str = "smart", quantize_granularity: str = "tensor-wise",
                   logger=None):
    """MXNet's ``quantize_model``: ``(qsym, qarg_params, aux_params)`` of the float
    model ``sym`` with its parameters.  ``calib_mode`` 'none' (ranges computed at run
    time), 'naive' (min/max over ``calib_data``) or 'entropy' (KL-optimal thresholds);
    ``calib_data`` an ``mx.io`` iterator, a DataLoader or an iterable of batches."""
    from mxcore.device import cpu
    ctx = ctx if ctx is not None else cpu()
    qsym, qargs, aux, collector = quantize_graph(
        sym, arg_params, aux_params, ctx, excluded_sym_names, excluded_op_names, calib_mode,
        quantized_dtype, quantize_mode, quantize_granularity, logger)
    if collector is None:
        return qsym, qargs, aux
    if calib_data is None:
        raise ValueError(f"calib_data must be provided when calib_mode={calib_mode!r}")
    fsym = sym if not isinstance(sym, (str, os.PathLike)) else _load(sym)
    collect(fsym._outputs, {**arg_params, **aux_params}, list(data_names), calib_data,
            collector, ctx, max_examples=num_calib_examples, logger=logger,
            label_names=list(label_names or ()))
    return calib_graph(qsym, arg_params, aux_params, collector, calib_mode, quantized_dtype,
                       logger)


def _load(path):
    from mxcore.symbol.symbol import load
    return load(os.fspath(path))


# Gluon ---------------------------------------------------------------------------------------
def _shapes(data_shapes) -> List[Tuple[str, Tuple[int, ...]]]:
    """(name, shape) per input from DataDesc objects, (name, shape) pairs or shapes."""
    out = []
    for k, item in enumerate(data_shapes):
        if hasattr(item, "name") and hasattr(item, "shape"):
            out.append((item.name, tuple(item.shape)))
        elif isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str):
            out.append((item[0], tuple(item[1])))
        else:
            out.append((None, tuple(item)))
    return out


def _first_batch_shapes(calib_data) -> List[Tuple[int, ...]]:
    """The shape of the first calibration batch's data (single-input models)."""
    for arrays in _batches(calib_data, 1, 1, None):
        return [tuple(a.shape) for a in arrays]
    raise ValueError("calib_data gave no batch")


def quantize_net(network, quantized_dtype: str = "auto", quantize_mode: str = "full",
                 quantize_granularity: str = "tensor-wise", exclude_layers=None,
                 exclude_layers_match=None, exclude_operators=None, calib_data=None,
                 data_shapes=None, calib_mode: str = "none",
                 num_calib_batches: Optional[int] = None, ctx=None, logger=None):
    """MXNet's ``quantize_net``: a ``gluon.SymbolBlock`` running the quantized graph of
    the HybridBlock ``network``.  ``exclude_layers`` names graph nodes to keep in
    float32, ``exclude_layers_match`` substrings of such names, ``exclude_operators``
    op names (``Convolution``...).  ``data_shapes`` (DataDesc or shapes) is needed
    unless ``calib_data`` gives a batch.  The block's parameters are the int8 weights
    and their ranges; it runs inference only."""
    from mxcore.device import cpu
    from mxcore import ndarray as nd
    from mxcore.model import load_checkpoint
    ctx = ctx if ctx is not None else cpu()
    calib_data = _reusable(calib_data)
    if data_shapes:
        shapes = _shapes(data_shapes)
    elif calib_data is not None:
        shapes = [(None, s) for s in _first_batch_shapes(calib_data)]
    else:
        raise ValueError("quantize_net: data_shapes is required when calib_data is not "
                         "given")
    network.hybridize()
    network(*[nd.zeros(s, ctx=ctx) for _, s in shapes])
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "float")
        network.export(prefix, epoch=0)
        fsym, args, auxs = load_checkpoint(prefix, 0)
    data_names = ["data"] if len(shapes) == 1 else [f"data{i}" for i in range(len(shapes))]
    excluded = _names(exclude_layers, "exclude_layers")
    for pattern in _names(exclude_layers_match, "exclude_layers_match"):
        excluded += [n.name for n in topological(fsym._outputs)
                     if not n.is_variable and pattern in n.name]
    if logger is not None:
        logger.info("excluded layers: %s", excluded)
    qsym, qargs, qaux, collector = quantize_graph(
        fsym, args, auxs, ctx, excluded, exclude_operators, calib_mode, quantized_dtype,
        quantize_mode, quantize_granularity, logger)
    if collector is not None:
        if calib_data is None:
            raise ValueError(f"calib_data must be provided when calib_mode={calib_mode!r}")
        collect(fsym._outputs, {**args, **auxs}, data_names, calib_data, collector, ctx,
                max_batches=num_calib_batches, logger=logger)
        qsym, qargs, qaux = calib_graph(qsym, args, auxs, collector, calib_mode,
                                        quantized_dtype, logger)
    return to_block(qsym, qargs, qaux, data_names, ctx)


def to_block(qsym, arg_params: Dict[str, Any], aux_params: Dict[str, Any],
             data_names: Sequence[str], ctx):
    """A SymbolBlock running ``qsym`` with these parameters on ``ctx`` (no gradients:
    quantized graphs run inference only)."""
    from mxcore.gluon.symbol_block import SymbolBlock
    from mxcore.symbol.symbol import var
    block = SymbolBlock(qsym, [var(n) for n in data_names])
    values = {**arg_params, **aux_params}
    for name, param in block._var_params.items():
        if name not in values:
            raise MXCoreError(f"quantization: no value for the graph's parameter {name!r}")
        value = values[name]
        value = value.asnumpy() if hasattr(value, "asnumpy") else np.asarray(value)
        param.grad_req = "null"
        param.dtype = value.dtype  # int8 weights stay int8
        param.shape = tuple(value.shape)
        param._load_init(value, ctx)
    return block
