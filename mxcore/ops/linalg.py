"""Matrix products: dot (MXNet semantics), batch_dot, matmul (numpy semantics), and
MXNet's ``linalg_*`` operators (``mx.nd.linalg``): gemm, gemm2, potrf, potri, trmm, trsm,
syrk, sumlogdiag, extractdiag, makediag, extracttrian, maketrian, inverse, det, slogdet."""
from __future__ import annotations

import math
from typing import List, Optional

import hal
from mxcore.base import MXCoreError, OperatorError
from mxcore.dispatch import invoke
from mxcore.array import NDArray
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


# --- MXNet's linalg_* operators ----------------------------------------------------------------
# Tensors of matrices on their last two axes, batched over the leading ones (gemm and gemm2
# take the row axis from ``axis``); float32 and float64 only, as in MXNet.  A triangular
# operand (trmm, trsm, potri; potrf's input) is read from the triangle ``lower`` names, so
# its gradient is zero on the other one; potrf's gradient is symmetric (its input is a
# symmetric matrix).  Reductions of a single matrix (det, slogdet, sumlogdiag) have shape
# (1,), as MXNet's.  Every gradient is written in these ops, so it differentiates again.
LA_DTYPES = ("float32", "float64")
_LA_TRIANGULAR = {"transpose": False, "rightside": False, "lower": True, "alpha": 1.0}


def _la(name: str, nin: int = 1, doc: str = "", **kw) -> Op:
    op = Op(name, nin, aliases=("_" + name,), doc=doc, **kw)
    OPS.append(op)
    return op


GEMM = _la("linalg_gemm", 3, attrs={**_T, "alpha": 1.0, "beta": 1.0, "axis": -2},
           volatile_attrs=("alpha", "beta"),
           doc="alpha * op(A) @ op(B) + beta * C on stacks of matrices")
GEMM2 = _la("linalg_gemm2", 2, attrs={**_T, "alpha": 1.0, "axis": -2},
            volatile_attrs=("alpha",), doc="alpha * op(A) @ op(B) on stacks of matrices")
POTRF = _la("linalg_potrf", attrs={"lower": True}, saves_output=True,
            doc="Cholesky factor of symmetric positive-definite matrices")
POTRI = _la("linalg_potri", attrs={"lower": True}, saves_output=True,
            doc="inverse of L @ L.T from its Cholesky factor L")
TRMM = _la("linalg_trmm", 2, attrs=dict(_LA_TRIANGULAR), volatile_attrs=("alpha",),
           doc="alpha * op(A) @ B (or B @ op(A)) with triangular A")
TRSM = _la("linalg_trsm", 2, attrs=dict(_LA_TRIANGULAR), volatile_attrs=("alpha",),
           saves_output=True, doc="solves op(A) @ X = alpha * B (or X @ op(A)) for "
                                  "triangular A")
SYRK = _la("linalg_syrk", attrs={"transpose": False, "alpha": 1.0}, volatile_attrs=("alpha",),
           doc="alpha * A @ A.T (or A.T @ A)")
SUMLOGDIAG = _la("linalg_sumlogdiag", doc="sum of the logarithms of the diagonal")
EXTRACTDIAG = _la("linalg_extractdiag", attrs={"offset": 0}, doc="a diagonal as a vector")
MAKEDIAG = _la("linalg_makediag", attrs={"offset": 0}, doc="square matrices with a given "
                                                            "diagonal, zero elsewhere")
EXTRACTTRIAN = _la("linalg_extracttrian", attrs={"offset": 0, "lower": True},
                   doc="a triangle packed into a vector (lower: by rows; upper: by columns)")
MAKETRIAN = _la("linalg_maketrian", attrs={"offset": 0, "lower": True},
                doc="square matrices from a packed triangle, zero elsewhere")
INVERSE = _la("linalg_inverse", saves_output=True, doc="matrix inverse")
DET = _la("linalg_det", saves_output=True, doc="determinant")
SLOGDET = _la("linalg_slogdet", nout=2, doc="sign and log of the absolute determinant")
GELQF = _la("linalg_gelqf", nout=2, saves_output=True,
            doc="LQ factorisation A = L Q of wide matrices (m <= n): Q (m x n) with "
                "orthonormal rows, L (m x m) lower triangular with a positive diagonal")
SYEVD = _la("linalg_syevd", nout=2, saves_output=True,
            doc="eigendecomposition A = U^T diag(lambda) U of symmetric matrices: rows of "
                "U are eigenvectors (largest-magnitude entry positive), lambda ascending")


# shape/dtype rules ------------------------------------------------------------------------------
def _la_dtype(dtypes):
    names = [hal.to_dtype(d).name for d in dtypes]
    bad = [n for n in names if n not in LA_DTYPES]
    if bad:
        raise MXCoreError(f"supports float32 and float64 only (as MXNet), got {bad[0]}")
    if len(set(names)) > 1:
        raise MXCoreError(f"dtypes differ ({', '.join(names)}); cast with .astype() first")
    return dtypes[0]


def _matrices(shape, what: str = "A", square: bool = False):
    shape = tuple(shape)
    if len(shape) < 2:
        raise MXCoreError(f"{what} must be a tensor of matrices (at least 2 axes), got shape "
                          f"{shape}")
    if square and shape[-1] != shape[-2]:
        raise MXCoreError(f"{what} must be a tensor of square matrices, got shape {shape}")
    return shape


def _same_batch(sa, sb, skip=(), names=("A", "B")):
    """The axes other than the matrix axes (and ``skip``) must agree (no broadcasting)."""
    if len(sa) != len(sb) or any(sa[i] != sb[i] for i in range(len(sa) - 2) if i not in skip):
        raise MXCoreError(f"{names[0]} {tuple(sa)} and {names[1]} {tuple(sb)} must have the "
                          "same shape except on the matrix axes")


def _row_axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim or axis % ndim == ndim - 1:
        raise MXCoreError(f"axis {axis} cannot be the row axis of {ndim}-d matrices (the "
                          "columns are on the last axis)")
    return axis % ndim


def _gemm_shape(sa, sb, a):
    sa, sb = _matrices(sa, "A"), _matrices(sb, "B")
    if len(sa) != len(sb):
        raise MXCoreError(f"A {sa} and B {sb} must have the same rank")
    ax = _row_axis(a["axis"], len(sa))
    ra, ca = (sa[-1], sa[ax]) if a["transpose_a"] else (sa[ax], sa[-1])
    rb, cb = (sb[-1], sb[ax]) if a["transpose_b"] else (sb[ax], sb[-1])
    if ca != rb:
        raise MXCoreError(f"op(A) is {ra}x{ca} and op(B) {rb}x{cb}: the inner dimensions "
                          "differ")
    others = [i for i in range(len(sa) - 1) if i != ax]
    if any(sa[i] != sb[i] for i in others):
        raise MXCoreError(f"A {sa} and B {sb} must have the same shape except on the row "
                          f"axis {ax} and the last axis")
    out = list(sa)
    out[ax], out[-1] = ra, cb
    return tuple(out)


@GEMM2.def_infer
def _gemm2_infer(s, d, a):
    return [_gemm_shape(s[0], s[1], a)], [_la_dtype(d)]


@GEMM.def_infer
def _gemm_infer(s, d, a):
    out = _gemm_shape(s[0], s[1], a)
    if tuple(s[2]) != out:
        raise MXCoreError(f"C {tuple(s[2])} must have the shape of op(A) @ op(B), {out}")
    return [out], [_la_dtype(d)]


def _square_rule(s, d, a):
    return [_matrices(s[0], square=True)], [_la_dtype(d)]


for _op in (POTRF, POTRI, INVERSE):
    _op.def_infer(_square_rule)


@TRMM.def_infer
def _trmm_infer(s, d, a):
    sa, sb = _matrices(s[0], "A", square=True), _matrices(s[1], "B")
    _same_batch(sa, sb)
    k = sb[-1] if a["rightside"] else sb[-2]
    if sa[-1] != k:
        side = "columns" if a["rightside"] else "rows"
        raise MXCoreError(f"A is {sa[-2]}x{sa[-1]} but B {sb} has {k} {side}")
    return [sb], [_la_dtype(d)]


TRSM.def_infer(_trmm_infer)


@SYRK.def_infer
def _syrk_infer(s, d, a):
    sa = _matrices(s[0])
    n = sa[-1] if a["transpose"] else sa[-2]
    return [sa[:-2] + (n, n)], [_la_dtype(d)]


def _reduced_rule(nout):
    def rule(s, d, a):
        sa = _matrices(s[0], square=True)
        out = sa[:-2] or (1,)
        return [out] * nout, [_la_dtype(d)] * nout
    return rule


SUMLOGDIAG.def_infer(_reduced_rule(1))
DET.def_infer(_reduced_rule(1))
SLOGDET.def_infer(_reduced_rule(2))


@GELQF.def_infer
def _gelqf_infer(s, d, a):
    shape = _matrices(s[0])
    if shape[-2] > shape[-1]:
        raise MXCoreError(f"A must have no more rows than columns, got {shape[-2]}x"
                          f"{shape[-1]} matrices")
    dt = _la_dtype(d)
    return [shape, shape[:-1] + (shape[-2],)], [dt, dt]


@SYEVD.def_infer
def _syevd_infer(s, d, a):
    shape = _matrices(s[0], square=True)
    dt = _la_dtype(d)
    return [shape, shape[:-1]], [dt, dt]


def _diag_length(n: int, offset: int) -> int:
    if abs(offset) >= n:
        raise MXCoreError(f"offset {offset} is out of range for {n}x{n} matrices")
    return n - abs(offset)


@EXTRACTDIAG.def_infer
def _extractdiag_infer(s, d, a):
    sa = _matrices(s[0], square=True)
    return [sa[:-2] + (_diag_length(sa[-1], a["offset"]),)], [_la_dtype(d)]


@MAKEDIAG.def_infer
def _makediag_infer(s, d, a):
    sa = tuple(s[0])
    if not sa:
        raise MXCoreError("A must have at least one axis")
    n = sa[-1] + abs(a["offset"])
    return [sa[:-1] + (n, n)], [_la_dtype(d)]


@EXTRACTTRIAN.def_infer
def _extracttrian_infer(s, d, a):
    sa = _matrices(s[0], square=True)
    p = _diag_length(sa[-1], a["offset"])
    return [sa[:-2] + (p * (p + 1) // 2,)], [_la_dtype(d)]


@MAKETRIAN.def_infer
def _maketrian_infer(s, d, a):
    sa = tuple(s[0])
    if not sa:
        raise MXCoreError("A must have at least one axis")
    m = sa[-1]
    p = (math.isqrt(8 * m + 1) - 1) // 2
    if p * (p + 1) // 2 != m:
        raise MXCoreError(f"the last axis ({m}) must hold a packed triangle: p * (p + 1) / 2 "
                          "values for some p")
    n = p + abs(a["offset"])
    return [sa[:-1] + (n, n)], [_la_dtype(d)]


# gradients --------------------------------------------------------------------------------------
def _t(x: NDArray) -> NDArray:
    from mxcore.ops.shape import swapaxes
    return swapaxes(x, -1, -2)


def _gemm2(a, b, transpose_a=False, transpose_b=False, alpha=1.0, axis=-2):
    return invoke(GEMM2, (a, b), {"transpose_a": transpose_a, "transpose_b": transpose_b,
                                  "alpha": alpha, "axis": axis})


def _tri(x: NDArray, lower: bool) -> NDArray:
    """x's lower (or upper) triangle, the rest zero."""
    attrs = {"offset": 0, "lower": lower}
    return invoke(MAKETRIAN, (invoke(EXTRACTTRIAN, (x,), attrs),), attrs)


def _diag(x: NDArray) -> NDArray:
    return invoke(MAKEDIAG, (invoke(EXTRACTDIAG, (x,), {"offset": 0}),), {"offset": 0})


def _gemm_grads(c, g):
    a = c.attrs

    def prod(x, y, ta, tb):
        return _gemm2(x, y, ta, tb, a["alpha"], a["axis"])
    return _products(prod, c.inputs[0], c.inputs[1], g, a["transpose_a"], a["transpose_b"],
                     c.needs_grad(0), c.needs_grad(1))


GEMM2.def_grad(_gemm_grads)


@GEMM.def_grad
def _gemm_grad(c, g):
    beta = c.attrs["beta"]
    gc = (g * beta if beta != 1.0 else g) if c.needs_grad(2) else None
    return _gemm_grads(c, g) + (gc,)


@SYRK.def_grad
def _syrk_grad(c, g):
    a, sym = c.inputs[0], g + _t(g)
    alpha = c.attrs["alpha"]
    return (_gemm2(a, sym, alpha=alpha) if c.attrs["transpose"] else
            _gemm2(sym, a, alpha=alpha),)


def _trsm(a, b, transpose, rightside, lower, alpha=1.0):
    return invoke(TRSM, (a, b), {"transpose": transpose, "rightside": rightside,
                                 "lower": lower, "alpha": alpha})


@POTRF.def_grad
def _potrf_grad(c, g):
    """A = L L^T: the symmetric gradient sym(L^-T phi(L^T G) L^-1), phi the lower triangle
    with half the diagonal (Murray, 2016); for A = U^T U the mirror image."""
    f, lower = c.outputs[0], c.attrs["lower"]
    m = _gemm2(f, g, transpose_a=True) if lower else _gemm2(g, f, transpose_b=True)
    phi = _tri(m, lower) - _diag(m) * 0.5
    s = _trsm(f, _trsm(f, phi, lower, False, lower), not lower, True, lower)
    return ((s + _t(s)) * 0.5,)


@POTRI.def_grad
def _potri_grad(c, g):
    """out = (L L^T)^-1: d L = -tril((out (G + G^T) out) L); for U^T U, -triu(U ...)."""
    lower, y = c.attrs["lower"], c.outputs[0]
    f = _tri(c.inputs[0], lower)
    k = _gemm2(_gemm2(y, g + _t(g)), y)
    return (-_tri(_gemm2(k, f) if lower else _gemm2(f, k), lower),)


def _triangular_grad(c, gm):
    """The gradient of op(T) mapped back to the triangle the op read."""
    return _tri(_t(gm) if c.attrs["transpose"] else gm, c.attrs["lower"])


@TRMM.def_grad
def _trmm_grad(c, g):
    a, b = c.inputs
    tr, right, lower, alpha = (c.attrs[k] for k in ("transpose", "rightside", "lower", "alpha"))
    ga = gb = None
    if c.needs_grad(0):
        gm = _gemm2(b, g, True, False, alpha) if right else _gemm2(g, b, False, True, alpha)
        ga = _triangular_grad(c, gm)
    if c.needs_grad(1):
        gb = invoke(TRMM, (a, g), {**c.attrs, "transpose": not tr})
    return ga, gb


@TRSM.def_grad
def _trsm_grad(c, g):
    a, x = c.inputs[0], c.outputs[0]
    tr, right, lower, alpha = (c.attrs[k] for k in ("transpose", "rightside", "lower", "alpha"))
    gs = _trsm(a, g, not tr, right, lower)  # G op(T)^-T (right) or op(T)^-T G (left)
    ga = None
    if c.needs_grad(0):
        gm = _gemm2(x, gs, True, False, -1.0) if right else _gemm2(gs, x, False, True, -1.0)
        ga = _triangular_grad(c, gm)
    return ga, (gs * alpha if alpha != 1.0 else gs) if c.needs_grad(1) else None


def _per_matrix(coef: NDArray, a: NDArray) -> NDArray:
    """A per-matrix value ((1,) for one matrix) shaped to broadcast over a's matrices."""
    from mxcore.ops.shape import reshape
    return coef if a.ndim == 2 else reshape(coef, coef.shape + (1, 1))


@SUMLOGDIAG.def_grad
def _sumlogdiag_grad(c, g):
    from mxcore.ops.shape import expand_dims
    a = c.inputs[0]
    d = invoke(EXTRACTDIAG, (a,), {"offset": 0})
    gd = g if a.ndim == 2 else expand_dims(g, -1, inplace=True)  # (1,): one diagonal
    return (invoke(MAKEDIAG, (gd / d,), {"offset": 0}),)


@INVERSE.def_grad
def _inverse_grad(c, g):
    y = c.outputs[0]
    return (_gemm2(_gemm2(y, g, transpose_a=True), y, transpose_b=True, alpha=-1.0),)


@DET.def_grad
def _det_grad(c, g):
    a = c.inputs[0]
    return (_per_matrix(g * c.outputs[0], a) * _t(invoke(INVERSE, (a,))),)


@SLOGDET.def_grad
def _slogdet_grad(c, g_sign, g_logabs):
    if g_logabs is None:  # the sign is piecewise constant
        return (None,)
    a = c.inputs[0]
    return (_per_matrix(g_logabs, a) * _t(invoke(INVERSE, (a,))),)


EXTRACTDIAG.def_grad(lambda c, g: (invoke(MAKEDIAG, (g,), c.attrs),))
MAKEDIAG.def_grad(lambda c, g: (invoke(EXTRACTDIAG, (g,), c.attrs),))
EXTRACTTRIAN.def_grad(lambda c, g: (invoke(MAKETRIAN, (g,), c.attrs),))
MAKETRIAN.def_grad(lambda c, g: (invoke(EXTRACTTRIAN, (g,), c.attrs),))


@GELQF.def_grad
def _gelqf_grad(c, gq, gl):
    """A = L Q: dA = L^-T (dQ + copyltu(M) Q), M = L^T dL - dQ Q^T, where copyltu makes a
    symmetric matrix from a lower triangle (Seeger et al., as MXNet)."""
    q, lo = c.outputs
    gq = q.zeros_like() if gq is None else gq
    gl = lo.zeros_like() if gl is None else gl
    m = _gemm2(lo, gl, transpose_a=True) - _gemm2(gq, q, transpose_b=True)
    low = _tri(m, True)
    sym = low + _t(low) - _diag(m)
    return (_trsm(lo, gq + _gemm2(sym, q), True, False, True),)


@SYEVD.def_grad
def _syevd_grad(c, gu, glam):
    """A = U^T diag(l) U: dA = U^T (diag(dl) + F) U with F_ij = ((dU U^T)_ij -
    (dU U^T)_ji) / (2 (l_i - l_j)) off the diagonal: the symmetric gradient (MXNet's)."""
    from mxcore.ops.shape import expand_dims
    u, lam = c.outputs
    gu = u.zeros_like() if gu is None else gu
    glam = lam.zeros_like() if glam is None else glam
    eye = invoke(MAKEDIAG, (lam.ones_like(),), {"offset": 0})
    gap = expand_dims(lam, -1) - expand_dims(lam, -2) + eye  # 1 on the diagonal: no 0/0
    k = _gemm2(gu, u, transpose_b=True)
    inner = (k - _t(k)) / (gap * 2.0) + invoke(MAKEDIAG, (glam,), {"offset": 0})
    return (_gemm2(_gemm2(u, inner, transpose_a=True), u),)


# the public functions (MXNet's names and signatures) --------------------------------------------
def _la_call(op: Op, inputs, attrs, out: Optional[NDArray] = None):
    """Check the call against the op's rule (an OperatorError naming the op, shapes,
    dtypes and device), run it, and copy the result into ``out`` when given."""
    if not all(isinstance(x, NDArray) for x in inputs):
        raise OperatorError(op.name, "expected NDArray inputs, got "
                            f"{[type(x).__name__ for x in inputs]}")
    shapes, dtypes = [x.shape for x in inputs], [x.dtype for x in inputs]
    try:
        op.infer_shape_dtype(shapes, dtypes, attrs)
    except MXCoreError as exc:
        raise OperatorError(op.name, str(exc), shapes, dtypes, inputs[0].context) from None
    result = invoke(op, tuple(inputs), attrs)
    if out is None:
        return result
    out[:] = result
    return out


def linalg_gemm(A: NDArray, B: NDArray, C: NDArray, transpose_a: bool = False,
                transpose_b: bool = False, alpha: float = 1.0, beta: float = 1.0,
                axis: int = -2, out: Optional[NDArray] = None, name=None) -> NDArray:
    """``alpha * op(A) @ op(B) + beta * C`` per matrix; rows on ``axis``, columns on the
    last axis (MXNet's linalg.gemm)."""
    return _la_call(GEMM, (A, B, C), {"transpose_a": bool(transpose_a),
                                      "transpose_b": bool(transpose_b), "alpha": float(alpha),
                                      "beta": float(beta), "axis": int(axis)}, out)


def linalg_gemm2(A: NDArray, B: NDArray, transpose_a: bool = False, transpose_b: bool = False,
                 alpha: float = 1.0, axis: int = -2, out: Optional[NDArray] = None,
                 name=None) -> NDArray:
    """``alpha * op(A) @ op(B)`` per matrix (MXNet's linalg.gemm2)."""
    return _la_call(GEMM2, (A, B), {"transpose_a": bool(transpose_a),
                                    "transpose_b": bool(transpose_b), "alpha": float(alpha),
                                    "axis": int(axis)}, out)


def linalg_potrf(A: NDArray, lower: bool = True, out: Optional[NDArray] = None,
                 name=None) -> NDArray:
    """The Cholesky factor L (A = L L^T) of symmetric positive-definite matrices, read
    from their lower triangle; with ``lower=False`` U (A = U^T U), read from the upper."""
    return _la_call(POTRF, (A,), {"lower": bool(lower)}, out)


def linalg_potri(A: NDArray, lower: bool = True, out: Optional[NDArray] = None,
                 name=None) -> NDArray:
    """``(L L^T)^-1`` from the Cholesky factor L in A's lower triangle (``lower=False``:
    ``(U^T U)^-1``, U in the upper triangle)."""
    return _la_call(POTRI, (A,), {"lower": bool(lower)}, out)


def _triangular_attrs(transpose, rightside, lower, alpha):
    return {"transpose": bool(transpose), "rightside": bool(rightside), "lower": bool(lower),
            "alpha": float(alpha)}


def linalg_trmm(A: NDArray, B: NDArray, transpose: bool = False, rightside: bool = False,
                lower: bool = True, alpha: float = 1.0, out: Optional[NDArray] = None,
                name=None) -> NDArray:
    """``alpha * op(A) @ B`` (``rightside``: ``alpha * B @ op(A)``) with A triangular."""
    return _la_call(TRMM, (A, B), _triangular_attrs(transpose, rightside, lower, alpha), out)


def linalg_trsm(A: NDArray, B: NDArray, transpose: bool = False, rightside: bool = False,
                lower: bool = True, alpha: float = 1.0, out: Optional[NDArray] = None,
                name=None) -> NDArray:
    """X with ``op(A) @ X = alpha * B`` (``rightside``: ``X @ op(A) = alpha * B``), A
    triangular."""
    return _la_call(TRSM, (A, B), _triangular_attrs(transpose, rightside, lower, alpha), out)


def linalg_syrk(A: NDArray, transpose: bool = False, alpha: float = 1.0,
                out: Optional[NDArray] = None, name=None) -> NDArray:
    """``alpha * A @ A^T`` (``transpose``: ``alpha * A^T @ A``)."""
    return _la_call(SYRK, (A,), {"transpose": bool(transpose), "alpha": float(alpha)}, out)


def linalg_sumlogdiag(A: NDArray, out: Optional[NDArray] = None, name=None) -> NDArray:
    """The sum of the logarithms of each matrix's diagonal."""
    return _la_call(SUMLOGDIAG, (A,), {}, out)


def linalg_extractdiag(A: NDArray, offset: int = 0, out: Optional[NDArray] = None,
                       name=None) -> NDArray:
    """Diagonal ``offset`` (above the main one when positive) of each matrix."""
    return _la_call(EXTRACTDIAG, (A,), {"offset": int(offset)}, out)


def linalg_makediag(A: NDArray, offset: int = 0, out: Optional[NDArray] = None,
                    name=None) -> NDArray:
    """Square matrices holding A's last axis on diagonal ``offset``, zero elsewhere."""
    return _la_call(MAKEDIAG, (A,), {"offset": int(offset)}, out)


def linalg_extracttrian(A: NDArray, offset: int = 0, lower: bool = True,
                        out: Optional[NDArray] = None, name=None) -> NDArray:
    """A triangle of each matrix as a vector: the lower one (``offset < 0``, or 0 and
    ``lower``) row by row, the upper one column by column; ``offset`` moves its edge."""
    return _la_call(EXTRACTTRIAN, (A,), {"offset": int(offset), "lower": bool(lower)}, out)


def linalg_maketrian(A: NDArray, offset: int = 0, lower: bool = True,
                     out: Optional[NDArray] = None, name=None) -> NDArray:
    """The inverse of ``linalg_extracttrian``: square matrices, zero off the triangle."""
    return _la_call(MAKETRIAN, (A,), {"offset": int(offset), "lower": bool(lower)}, out)


def linalg_inverse(A: NDArray, out: Optional[NDArray] = None, name=None) -> NDArray:
    """The inverse of each matrix."""
    return _la_call(INVERSE, (A,), {}, out)


def linalg_det(A: NDArray, out: Optional[NDArray] = None, name=None) -> NDArray:
    """The determinant of each matrix."""
    return _la_call(DET, (A,), {}, out)


def linalg_slogdet(A: NDArray, out=None, name=None) -> List[NDArray]:
    """[sign, log |det|] of each matrix (a list, as MXNet's multi-output functions)."""
    sign, logabs = _la_call(SLOGDET, (A,), {})
    if out is not None:
        out[0][:], out[1][:] = sign, logabs
        return list(out)
    return [sign, logabs]



def linalg_gelqf(A: NDArray, name=None):
    """``(Q, L)`` with ``A = L @ Q`` per matrix (MXNet's linalg.gelqf): Q's rows are
    orthonormal, L is lower triangular with a positive diagonal (A must have full row
    rank and no more rows than columns)."""
    return _la_call(GELQF, (A,), {})


def linalg_syevd(A: NDArray, name=None):
    """``(U, lam)`` with ``A = U.T @ diag(lam) @ U`` per symmetric matrix (MXNet's
    linalg.syevd): eigenvalues ascending, eigenvectors as the rows of U, each with its
    largest-magnitude entry positive."""
    return _la_call(SYEVD, (A,), {})
