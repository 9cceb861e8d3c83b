"""The names MXNet 1.9.1 gives an operator's inputs and outputs, for the arrays its
monitors report (``Executor.set_monitor_callback``, ``HybridBlock.register_op_hook``)
and for ``Symbol.list_outputs``.

An op's *input names* are its ``FListInputNames`` (``data``/``weight``/``bias``,
``lhs``/``rhs``, ``arg0``... for list inputs); ops without one name their inputs
``input0``, ``input1``...  Its *output names* are its ``FListOutputNames``
(``output``, ``mean``, ``var``...); ops without one have none, and then a monitor names
an output by its index (op hooks: ``0``) or as ``list_outputs`` does (``output``, or
``output0``, ``output1``... for several).  Ops are looked up under MXNet's own name
(:func:`op_name`): mxcore's spellings (``concat``, ``split``, ``_plus``) map to it.

Some MXNet ops have more outputs than they show (``BatchNorm``: ``mean`` and ``var``
besides ``output``): :data:`HIDDEN_OUTPUTS` names the ones an executor monitor reports.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

from mxcore.graph.ir import Node

_DATA_GB = ("data", "gamma", "beta")
_DATA_LABEL = ("data", "label")
_SEQ = ("data", "sequence_length")
_LHS_RHS = ("lhs", "rhs")
_BN = ("data", "gamma", "beta", "moving_mean", "moving_var")

#: MXNet's input names per op (FListInputNames); ops without one name inputs input<i>
INPUT_NAMES: Dict[str, Tuple[str, ...]] = {
    "FullyConnected": ("data", "weight", "bias"), "Convolution": ("data", "weight", "bias"),
    "Deconvolution": ("data", "weight", "bias"), "BatchNorm": _BN, "BatchNorm_v1": _BN,
    "LayerNorm": _DATA_GB, "InstanceNorm": _DATA_GB, "GroupNorm": _DATA_GB,
    "Embedding": ("data", "weight"), "LeakyReLU": ("data", "gamma"),
    "RNN": ("data", "parameters", "state", "state_cell", "sequence_length"),
    "SoftmaxOutput": _DATA_LABEL, "Softmax": _DATA_LABEL,
    "LinearRegressionOutput": _DATA_LABEL, "LogisticRegressionOutput": _DATA_LABEL,
    "MAERegressionOutput": _DATA_LABEL, "SVMOutput": _DATA_LABEL,
    "softmax_cross_entropy": _DATA_LABEL, "CTCLoss": _DATA_LABEL,
    "softmax": ("data", "length"), "log_softmax": ("data",),
    "SequenceMask": _SEQ, "SequenceLast": _SEQ, "SequenceReverse": _SEQ,
    "where": ("condition", "x", "y"), "take": ("a", "indices"),
    "batch_take": ("a", "indices"), "pick": ("data", "index"),
    "gather_nd": ("data", "indices"), "scatter_nd": ("data", "indices"),
    "_backward_gather_nd": ("data", "indices"), "_scatter_set_nd": ("lhs", "rhs", "indices"),
    "one_hot": ("indices",), "slice_like": ("data", "shape_like"),
    "histogram": ("data", "bins"), "_linalg_gemm": ("A", "B", "C"),
    "_linalg_gemm2": ("A", "B"), "ROIPooling": ("data", "rois"),
    "_contrib_ROIAlign": ("data", "rois"), "BilinearSampler": ("data", "grid"),
    "Correlation": ("data1", "data2"), "SpatialTransformer": ("data", "loc"),
    "IdentityAttachKLSparseReg": ("data", "moving_avg"),
    "_contrib_box_iou": _LHS_RHS, "_contrib_box_decode": ("data", "anchors"),
    "_contrib_index_copy": ("old_tensor", "index_vector", "new_tensor"),
    **{op: ("data",) for op in (
        "SliceChannel", "Dropout", "Pooling", "SwapAxis", "LRN", "L2Normalization",
        "MakeLoss", "GridGenerator", "Pad", "squeeze", "reverse", "repeat", "tile",
        "moments", "depth_to_space", "space_to_depth", "diag", "im2col", "col2im",
        "ravel_multi_index", "unravel_index", "_contrib_quadratic")},
    **{op: _LHS_RHS for op in (
        "elemwise_add", "elemwise_sub", "elemwise_mul", "elemwise_div", "_grad_add",
        "_mod", "_power", "_maximum", "_minimum", "_hypot", "_equal", "_not_equal",
        "_greater", "_greater_equal", "_lesser", "_lesser_equal", "_logical_and",
        "_logical_or", "_logical_xor", "dot", "batch_dot", "reshape_like",
        "broadcast_like", "_identity_with_attr_like_rhs", "_slice_assign",
        "broadcast_add", "broadcast_sub", "broadcast_mul", "broadcast_div",
        "broadcast_mod", "broadcast_power", "broadcast_maximum", "broadcast_minimum",
        "broadcast_hypot", "broadcast_equal", "broadcast_not_equal", "broadcast_greater",
        "broadcast_greater_equal", "broadcast_lesser", "broadcast_lesser_equal",
        "broadcast_logical_and", "broadcast_logical_or", "broadcast_logical_xor")},
}
#: ops whose inputs are a list: MXNet names them arg<i>
LIST_INPUTS = frozenset({"Concat", "stack", "add_n", "UpSampling", "khatri_rao"})

_OUT = ("output",)
#: MXNet's output names per op (FListOutputNames), hidden outputs included
OUTPUT_NAMES: Dict[str, Tuple[str, ...]] = {
    **{op: _OUT for op in (
        "Activation", "FullyConnected", "Convolution", "Deconvolution", "softmax",
        "softmin", "Concat", "Pooling", "SoftmaxOutput", "Softmax", "UpSampling",
        "SoftmaxActivation", "elemwise_add", "im2col", "col2im", "_contrib_ROIAlign",
        # legacy operators (their ListOutputs)
        "SwapAxis", "SequenceMask", "SequenceLast", "SequenceReverse", "MakeLoss", "Crop",
        "Pad", "SVMOutput", "IdentityAttachKLSparseReg")},
    "BatchNorm": ("output", "mean", "var"), "BatchNorm_v1": ("output", "mean", "var"),
    **{op: ("output", "min_output", "max_output") for op in (
        "_contrib_quantize_v2", "_contrib_quantize", "_contrib_requantize",
        "_contrib_quantized_fully_connected", "_contrib_quantized_conv",
        "_contrib_quantized_flatten", "_contrib_quantized_pooling", "_contrib_quantized_act",
        "_contrib_quantized_embedding", "_contrib_quantized_elemwise_mul")},
    "LayerNorm": ("output", "mean", "std"), "GroupNorm": ("output", "mean", "std"),
    "InstanceNorm": ("output", "mean", "var"), "LeakyReLU": ("output", "mask"),
    "Dropout": ("output", "mask"), "LRN": ("output", "tmp_norm"),
    "L2Normalization": ("output", "norm"),
    "RNN": ("output", "state_output", "statecell_output"), "make_loss": ("loss",),
}
#: the outputs an op has beyond those it shows, which an executor monitor reports after
#: them (the ones mxcore computes: see ``graph/exec_monitor.py``)
HIDDEN_OUTPUTS: Dict[str, Tuple[str, ...]] = {
    "BatchNorm": ("mean", "var"), "LayerNorm": ("mean", "std"), "GroupNorm": ("mean", "std"),
    "InstanceNorm": ("mean", "var"), "L2Normalization": ("norm",), "LRN": ("tmp_norm",),
}
#: mxcore's spellings of MXNet ops, reported (and looked up) under MXNet's own name
CANONICAL = {"concat": "Concat", "split": "SliceChannel", "flip": "reverse",
             "swapaxes": "SwapAxis", "cast": "Cast", "reshape": "Reshape",
             "flatten": "Flatten", "pad": "Pad", "crop": "Crop",
             "ElementWiseSum": "add_n", "_plus": "elemwise_add", "_Plus": "elemwise_add",
             "_add": "elemwise_add", "_minus": "elemwise_sub", "_Minus": "elemwise_sub",
             "_sub": "elemwise_sub", "_mul": "elemwise_mul", "_Mul": "elemwise_mul",
             "_div": "elemwise_div", "_Div": "elemwise_div", "_Mod": "_mod",
             "_Power": "_power", "_Maximum": "_maximum", "_Minimum": "_minimum",
             "hypot": "_hypot", "_Hypot": "_hypot", "_Equal": "_equal",
             "_Not_Equal": "_not_equal", "_Greater": "_greater",
             "_Greater_Equal": "_greater_equal", "_Lesser": "_lesser",
             "_Lesser_Equal": "_lesser_equal", "_Logical_And": "_logical_and",
             "_Logical_Or": "_logical_or", "_Logical_Xor": "_logical_xor",
             "_histogram": "histogram", "choose_element_0index": "pick",
             "broadcast_plus": "broadcast_add", "broadcast_minus": "broadcast_sub",
             "BilinearResize2D": "_contrib_BilinearResize2D", "ROIAlign": "_contrib_ROIAlign"}


def _flag(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return bool(value)


def op_name(node: Node) -> str:
    """The name MXNet reports for the node's op."""
    return CANONICAL.get(node.op, node.op)


def input_names(node: Node) -> List[str]:
    """MXNet's names of the node's inputs, one per input."""
    op = op_name(node)
    n = len(node.inputs)
    if op in LIST_INPUTS and not (op == "UpSampling" and
                                  node.attrs.get("sample_type") == "bilinear"):
        return [f"arg{i}" for i in range(n)]
    if op == "UpSampling":
        names = ("data", "weight")
    elif op == "amp_multicast":
        return [f"data_{i}" for i in range(n)]
    elif op == "Custom":  # the prop's arguments, then its auxiliary states
        from mxcore.graph import opinfo
        row = opinfo.info(op, node.attrs)
        names = row.inputs if row is not None else None
    else:
        names = INPUT_NAMES.get(op)
    if names is not None and op in ("FullyConnected", "Convolution", "Deconvolution") \
            and n == 2:
        names = names[:2]  # no_bias
    if names is None or len(names) < n:
        return [f"input{i}" for i in range(n)]
    if op == "RNN" and n < 5 and node.attrs.get("mode") != "lstm":
        names = names[:3] + names[4:]  # no state_cell
    return list(names[:n])


def output_names(node: Node) -> List[str]:
    """The node's output names as an op hook reports them: FListOutputNames, else
    the index."""
    op = op_name(node)
    if op == "SliceChannel":
        return [f"output{i}" for i in range(node.nout)]
    names = _listed(node, op)
    if names is None:
        return [str(i) for i in range(node.nout)]
    return list(names[:node.nout])


def _listed(node: Node, op: str):
    names = OUTPUT_NAMES.get(op)
    if op == "RNN" and names is not None and node.nout == 2:
        names = names[:2]
    if names is None or len(names) < node.nout:
        return None
    return names


def list_output_name(node: Node, i: int) -> str:
    """The name ``list_outputs`` gives the node's output ``i`` (nnvm's
    ``ListOutputNames``): ``<node>_<FListOutputNames[i]>``, else ``<node>_output`` for
    an op of one output and ``<node>_output<i>`` for one of several."""
    names = _listed(node, op_name(node))
    if names is not None:
        rname = names[i]
    else:
        rname = "output" if node.nout == 1 else f"output{i}"
    return f"{node.name}_{rname}" if node.name else rname


def hidden_output_names(node: Node) -> Tuple[str, ...]:
    """The names (after ``<node>_``) of the outputs MXNet's op has beyond the node's,
    which an executor monitor reports: BatchNorm's ``mean`` and ``var``..."""
    names = HIDDEN_OUTPUTS.get(op_name(node))
    if names is None or node.nout > 1:  # output_mean_var: they are the node's outputs
        return ()
    return names
