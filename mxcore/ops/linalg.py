"""Matrix products: dot (MXNet semantics), batch_dot, matmul (numpy semantics)."""
from __future__ import annotations

from mxcore.base import MXCoreError, OperatorError
from mxcore.dispatch import invoke
from mxcore.ndarray.ndarray import NDArray
from mxcore.op import Op
from mxcore.ops.rules import unbroadcast

OPS: list = []
_T = {"transpose_a": False, "transpose_b": False}

DOT = Op("dot", 2, attrs=dict(_T))
BATCH_DOT = Op("batch_dot", 2, attrs=dict(_T))
MATMUL = Op("matmul", 2)
OPS += [DOT, BATCH_DOT, MATMUL]


def _dot_infer(s, d, a):
    A = s[0][::-1] if a["transpose_a"] else s[0]
    B = s[1][::-1] if a["transpose_b"] else s[1]
    if not A or not B or A[-1] != B[0]:
        raise MXCoreError(f"dot: inner dimensions of {A} and {B} differ")
    if d[0] != d[1]:
        raise MXCoreError(f"dot: dtypes differ ({d[0]} vs {d[1]})")
    out = A[:-1] + B[1:]
    return [out or (1,)], [d[0]]


def _batch_dot_infer(s, d, a):
    A, B = list(s[0]), list(s[1])
    if len(A) != 3 or len(B) != 3:
        raise MXCoreError(f"batch_dot needs 3-d inputs, got {s[0]} and {s[1]}")
    if a["transpose_a"]:
        A[1], A[2] = A[2], A[1]
    if a["transpose_b"]:
        B[1], B[2] = B[2], B[1]
    if A[0] != B[0] or A[2] != B[1]:
        raise MXCoreError(f"batch_dot: shapes {s[0]} and {s[1]} do not multiply")
    if d[0] != d[1]:
        raise MXCoreError(f"batch_dot: dtypes differ ({d[0]} vs {d[1]})")
    return [(A[0], A[1], B[2])], [d[0]]


def _matmul_infer(s, d, a):
    A, B = s
    if not A or not B:
        raise MXCoreError("matmul: 0-d operands")
    a2 = (1,) + A if len(A) == 1 else A
    b2 = B + (1,) if len(B) == 1 else B
    if a2[-1] != b2[-2]:
        raise MXCoreError(f"matmul: inner dimensions of {A} and {B} differ")
    import numpy as np
    try:
        batch = tuple(np.broadcast_shapes(a2[:-2], b2[:-2]))
    except ValueError:
        raise MXCoreError(f"matmul: batch dims of {A} and {B} do not broadcast") from None
    out = batch + (a2[-2],) * (len(A) > 1) + (b2[-1],) * (len(B) > 1)
    if d[0] != d[1]:
        raise MXCoreError(f"matmul: dtypes differ ({d[0]} vs {d[1]})")
    return [out], [d[0]]


DOT.def_infer(_dot_infer)
BATCH_DOT.def_infer(_batch_dot_infer)
MATMUL.def_infer(_matmul_infer)


def _products(prod, a, b, g, ta, tb, need_a=True, need_b=True):
    """Gradients of prod(a, b, ta, tb) for 2-d dot or batch_dot (None for an
    operand that needs none)."""
    if not ta and not tb:
        ga, gb = (g, b, False, True), (a, g, True, False)
    elif ta and not tb:
        ga, gb = (b, g, False, True), (a, g, False, False)
    elif not ta and tb:
        ga, gb = (g, b, False, False), (g, a, True, False)
    else:
        ga, gb = (b, g, True, True), (g, a, True, True)
    return prod(*ga) if need_a else None, prod(*gb) if need_b else None


@DOT.def_grad
def _dot_grad(c, g):
    from mxcore.ops.shape import reshape, transpose
    a, b = c.inputs
    ta, tb = c.attrs["transpose_a"], c.attrs["transpose_b"]
    if a.ndim == 2 and b.ndim == 2:
        return _products(dot, a, b, g, ta, tb, c.needs_grad(0), c.needs_grad(1))
    A = transpose(a) if ta else a
    B = transpose(b) if tb else b
    k = B.shape[0]
    A2 = reshape(A, (-1, k))
    B2 = reshape(B, (k, -1))
    G2 = reshape(g, (A2.shape[0], B2.shape[1]))
    gA = reshape(dot(G2, B2, transpose_b=True), A.shape)
    gB = reshape(dot(A2, G2, transpose_a=True), B.shape)
    return (transpose(gA) if ta else gA, transpose(gB) if tb else gB)


BATCH_DOT.def_grad(lambda c, g: _products(batch_dot, *c.inputs, g, c.attrs["transpose_a"],
                                          c.attrs["transpose_b"], c.needs_grad(0),
                                          c.needs_grad(1)))


@MATMUL.def_grad
def _matmul_grad(c, g):
    from mxcore.ops.shape import reshape, swapaxes
    a, b = c.inputs
    A = reshape(a, (1, a.shape[0])) if a.ndim == 1 else a
    B = reshape(b, (b.shape[0], 1)) if b.ndim == 1 else b
    out_shape = _matmul_infer((A.shape, B.shape), (a.dtype, b.dtype), {})[0][0]
    G = reshape(g, out_shape)
    gA = unbroadcast(matmul(G, swapaxes(B, -1, -2)), A.shape)
    gB = unbroadcast(matmul(swapaxes(A, -1, -2), G), B.shape)
    return reshape(gA, a.shape), reshape(gB, b.shape)


def _run(op: Op, rule, a: NDArray, b: NDArray, attrs):
    """Run the product; on failure, let the shape rule say what is wrong."""
    if not isinstance(a, NDArray) or not isinstance(b, NDArray):
        raise OperatorError(op.name, f"expected two NDArrays, got {type(a).__name__} and "
                            f"{type(b).__name__}")
    try:
        if a._data.dtype != b._data.dtype:
            raise OperatorError(op.name, "dtypes differ")
        return invoke(op, (a, b), attrs)
    except OperatorError as exc:
        try:
            rule((a.shape, b.shape), (a.dtype, b.dtype), attrs)
        except MXCoreError as detail:
            raise OperatorError(op.name, str(detail), [a.shape, b.shape], [a.dtype, b.dtype],
                                a.context) from None
        raise exc


def dot(lhs: NDArray, rhs: NDArray, transpose_a: bool = False,
        transpose_b: bool = False) -> NDArray:
    """MXNet dot: contracts the last axis of lhs with the first of rhs
    (after optional full transposes)."""
    return _run(DOT, _dot_infer, lhs, rhs,
                {"transpose_a": bool(transpose_a), "transpose_b": bool(transpose_b)})


def batch_dot(lhs: NDArray, rhs: NDArray, transpose_a: bool = False,
              transpose_b: bool = False) -> NDArray:
    """Batched matrix product of (B, n, k) and (B, k, m) arrays."""
    if lhs.ndim != 3 or rhs.ndim != 3:  # numpy's matmul would broadcast other ranks
        raise OperatorError("batch_dot", f"batch_dot needs 3-d inputs, got {lhs.shape} and "
                            f"{rhs.shape}", [lhs.shape, rhs.shape], [lhs.dtype, rhs.dtype],
                            lhs.context)
    return _run(BATCH_DOT, _batch_dot_infer, lhs, rhs,
                {"transpose_a": bool(transpose_a), "transpose_b": bool(transpose_b)})


def matmul(a: NDArray, b: NDArray) -> NDArray:
    """numpy matmul with broadcast batch dimensions."""
    return _run(MATMUL, _matmul_infer, a, b, {})
