"""float16 kernels of ``fully_connected``, ``convolution`` and ``dot`` for the ``cpu``
kind, each a single-op onnxruntime session cached per signature (shapes, dtype,
attributes).  On an ARM core with float16 arithmetic onnxruntime runs its
half-precision kernels where it has them; where it has none (most of them on x86, under
``MXCORE_ARM_KERNELS=force``) it computes the node in float32 between casts.

MXNet's semantics: FullyConnected flattens all axes after the first (``flatten``) or
applies to the last axis, adds the bias unless ``no_bias`` and applies mxcore's fused
``act_type``; Convolution takes 1-3 spatial dims, ``stride``, ``pad`` (symmetric),
``dilate`` and ``num_group``; ``dot`` of two matrices with ``transpose_a``/``transpose_b``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from onnx import TensorProto, helper, numpy_helper

import hal
from mxcore_arm import host
from mxcore_arm.sessions import IR_VERSION, OPSET, SessionCache, session

#: above the CPU plugin's kernels (priority 0): where the guard passes, these win
PRIORITY = 20

#: mxcore's fused activations of fully_connected -> the ONNX op applying them
ACTIVATIONS: Dict[Optional[str], Optional[str]] = {
    None: None, "relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh",
    "softrelu": "Softplus", "softsign": "Softsign",
}

_ONNX_TYPES = {np.dtype(np.float16): TensorProto.FLOAT16,
               np.dtype(np.float32): TensorProto.FLOAT,
               np.dtype(np.int8): TensorProto.INT8,
               np.dtype(np.uint8): TensorProto.UINT8,
               np.dtype(np.int32): TensorProto.INT32}

#: single-op sessions of every kernel here, by signature
SESSIONS = SessionCache()


class SingleOp:
    """One ONNX node over named inputs, as a session and its input names."""

    __slots__ = ("sess", "names")

    def __init__(self, nodes, inputs: Sequence[Tuple[str, Any, Tuple[int, ...]]],
                 output: Tuple[str, Any], constants: Sequence[Tuple[str, np.ndarray]] = ()):
        graph = helper.make_graph(
            nodes, "mxcore_arm_kernel",
            [helper.make_tensor_value_info(n, _ONNX_TYPES[np.dtype(t)], list(s))
             for n, t, s in inputs],
            [helper.make_tensor_value_info(output[0], _ONNX_TYPES[np.dtype(output[1])],
                                           None)],
            [numpy_helper.from_array(np.asarray(v), n) for n, v in constants])
        model = helper.make_model(graph, producer_name="mxcore-arm",
                                  opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = IR_VERSION
        self.sess = session(model.SerializeToString())
        self.names = [n for n, _, _ in inputs]

    def __call__(self, *arrays: np.ndarray) -> np.ndarray:
        feeds = {n: np.ascontiguousarray(a) for n, a in zip(self.names, arrays)}
        return self.sess.run(None, feeds)[0]


def _activated(nodes: List[Any], y: str, act_type: Optional[str]) -> None:
    """Append the activation node reading ``y`` and writing ``out`` (or rename ``y``)."""
    op = ACTIVATIONS[act_type]
    if op is None:
        nodes[-1].output[0] = "out"
    else:
        nodes.append(helper.make_node(op, [y], ["out"]))


# fully_connected ------------------------------------------------------------------------
def _fc_session(x2: Tuple[int, int], w: Tuple[int, int], dtype, bias: bool,
                act_type: Optional[str]) -> SingleOp:
    inputs = [("x", dtype, x2), ("w", dtype, w)] + ([("b", dtype, (w[0],))] if bias else [])
    nodes = [helper.make_node("Gemm", [n for n, _, _ in inputs], ["y"], transB=1)]
    _activated(nodes, "y", act_type)
    return SingleOp(nodes, inputs, ("out", dtype))


def fully_connected(x: np.ndarray, w: np.ndarray, *bias: np.ndarray, flatten: bool,
                    no_bias: bool, act_type: Optional[str]) -> np.ndarray:
    # both layouts are one (rows, in_units) x (out_units, in_units)^T product: the
    # reshapes are views of the contiguous input
    x2 = x.reshape(x.shape[0], -1) if flatten else x.reshape(-1, x.shape[-1])
    has_bias = bool(bias) and not no_bias
    key = ("fully_connected", x2.shape, w.shape, x.dtype.str, has_bias, act_type)
    op = SESSIONS.get(key, lambda: _fc_session(x2.shape, w.shape, x.dtype, has_bias, act_type))
    out = op(x2, w, bias[0]) if has_bias else op(x2, w)
    return out if flatten or x.ndim == 2 else out.reshape(x.shape[:-1] + (w.shape[0],))


def _fc_shapes(shapes, dtypes, attrs) -> Optional[str]:
    if attrs.get("act_type") not in ACTIVATIONS:
        return f"act_type {attrs.get('act_type')!r} has no onnxruntime activation here"
    if len(shapes[0]) < 2 and attrs.get("flatten", True):
        return f"data of shape {tuple(shapes[0])}: needs at least 2 dims"
    if any(d == 0 for s in shapes for d in s):
        return "empty input"
    if len(set(dtypes)) != 1:
        return f"mixed dtypes {list(dtypes)}"
    return None


# convolution ----------------------------------------------------------------------------
def _conv_session(xs, ws, dtype, bias: bool, kernel, stride, dilate, pad, group) -> SingleOp:
    inputs = [("x", dtype, xs), ("w", dtype, ws)] + ([("b", dtype, (ws[0],))] if bias else [])
    node = helper.make_node("Conv", [n for n, _, _ in inputs], ["out"],
                            kernel_shape=list(kernel), strides=list(stride),
                            dilations=list(dilate), pads=list(pad) + list(pad), group=group)
    return SingleOp([node], inputs, ("out", dtype))


def convolution(x: np.ndarray, w: np.ndarray, *bias: np.ndarray, kernel, stride, dilate, pad,
                num_filter: int, num_group: int, no_bias: bool) -> np.ndarray:
    nd = x.ndim - 2
    kernel, stride, dilate, pad = (_spatial(v, nd, d) for v, d in
                                   ((kernel, None), (stride, 1), (dilate, 1), (pad, 0)))
    has_bias = bool(bias) and not no_bias
    key = ("convolution", x.shape, w.shape, x.dtype.str, has_bias, kernel, stride, dilate, pad,
           int(num_group))
    op = SESSIONS.get(key, lambda: _conv_session(x.shape, w.shape, x.dtype, has_bias, kernel,
                                                 stride, dilate, pad, int(num_group)))
    return op(x, w, bias[0]) if has_bias else op(x, w)


def _spatial(value, nd: int, default) -> Tuple[int, ...]:
    if value is None or value == ():
        return (default,) * nd
    if isinstance(value, (int, np.integer)):
        return (int(value),) * nd
    return tuple(int(v) for v in value)


def _conv_shapes(shapes, dtypes, attrs) -> Optional[str]:
    x = shapes[0]
    if not 3 <= len(x) <= 5:
        return f"data of shape {tuple(x)}: needs 1-3 spatial dims"
    if any(d == 0 for s in shapes for d in s):
        return "empty input"
    if len(set(dtypes)) != 1:
        return f"mixed dtypes {list(dtypes)}"
    return None


# dot ------------------------------------------------------------------------------------
def _dot_session(a, b, dtype, ta: bool, tb: bool) -> SingleOp:
    node = helper.make_node("Gemm", ["a", "b"], ["out"], transA=int(ta), transB=int(tb))
    return SingleOp([node], [("a", dtype, a), ("b", dtype, b)], ("out", dtype))


def dot(a: np.ndarray, b: np.ndarray, transpose_a: bool, transpose_b: bool) -> np.ndarray:
    key = ("dot", a.shape, b.shape, a.dtype.str, bool(transpose_a), bool(transpose_b))
    op = SESSIONS.get(key, lambda: _dot_session(a.shape, b.shape, a.dtype, bool(transpose_a),
                                                bool(transpose_b)))
    return op(a, b)


def _dot_shapes(shapes, dtypes, attrs) -> Optional[str]:
    a, b = shapes
    if len(a) != 2 or len(b) != 2:
        return f"shapes {tuple(a)} and {tuple(b)}: only matrix products (2-d by 2-d)"
    if any(d == 0 for s in shapes for d in s):
        return "empty input"
    if dtypes[0] != dtypes[1]:
        return f"mixed dtypes {list(dtypes)}"
    return None


#: op -> (kernel function, shape check) of the float16 kernels
FLOAT16_TABLE = {
    "fully_connected": (fully_connected, _fc_shapes),
    "convolution": (convolution, _conv_shapes),
    "dot": (dot, _dot_shapes),
}


def kernels() -> List[hal.Kernel]:
    """The plugin's kernels, all on the ``cpu`` kind, guarded on the host."""
    out = []
    for op, (fn, check) in FLOAT16_TABLE.items():
        out.append(hal.Kernel(op=op, device="cpu", fn=fn, dtypes={"float16"},
                              priority=PRIORITY, name=f"ort_fp16.{op}",
                              applies=host.guard("float16", check, name="arm_float16"),
                              doc=f"float16 {op} through an onnxruntime session"))
    return out
