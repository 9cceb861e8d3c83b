"""Op-table cases: linalg_* operators.  Imported by mxcore.testing.optable, which
collects every case into one table.

The inputs are drawn by ``make_input``; each case turns them into the well-conditioned
matrices its op needs with core ops (``x + c I``, ``x x^T + n I``), so that the float64
finite-difference checks differentiate through a well-conditioned op.  A triangular
operand is passed with its other triangle filled too: the op must ignore it, and its
gradient there is zero.  References are numpy (LAPACK through np.linalg, or loops)."""
from __future__ import annotations

import numpy as np

import mxcore as mx
from mxcore.testing.table import In, collector

CASES: list = []
case = collector(CASES)
nd = mx.nd


LA = ("float32", "float64")
_TOL = {"float32": (2e-4, 2e-5)}


def _const(x, value):
    """A constant on x's device, in x's dtype."""
    return nd.array(np.asarray(value, np.float64), ctx=x.context, dtype=x.dtype)


def _eye(n):
    return np.eye(n)


def _shift(x, c=3.0):
    """x + c I: a diagonal away from zero, a well-conditioned matrix for uniform(-2, 2) x."""
    return x + _const(x, c * _eye(x.shape[-1]))


def _spd(x):
    """x x^T + n I: symmetric positive definite."""
    return nd.matmul(x, nd.swapaxes(x, -1, -2)) + _const(x, x.shape[-1] * _eye(x.shape[-1]))


def _np_spd(x):
    return x @ np.swapaxes(x, -1, -2) + x.shape[-1] * _eye(x.shape[-1])


def _t(x):
    return np.swapaxes(x, -1, -2)


def _tri(x, lower=True):
    return np.tril(x) if lower else np.triu(x)


def _one(value, a):
    """A per-matrix value as MXNet shapes it: (1,) for a single matrix."""
    return np.reshape(value, (1,)) if a.ndim == 2 else value


# gemm / gemm2 / syrk --------------------------------------------------------------------------
case("linalg_gemm", lambda a, b, c: nd.linalg_gemm(a, b, c, alpha=1.5, beta=-0.5),
     lambda a, b, c: 1.5 * a @ b - 0.5 * c, (In((2, 2, 3)), In((2, 3, 2)), In((2, 2, 2))), LA,
     tol=_TOL)
case("linalg_gemm_tt_axis1",
     lambda a, b, c: nd.linalg.gemm(a, b, c, transpose_a=True, transpose_b=True, alpha=0.5,
                                    beta=2.0, axis=1),
     lambda a, b, c: 0.5 * np.einsum("xkzi,xjzk->xizj", a, b) + 2.0 * c,
     (In((2, 3, 1, 2)), In((2, 2, 1, 3)), In((2, 2, 1, 2))), LA, tol=_TOL)
case("linalg_gemm2", nd.linalg_gemm2, np.matmul, (In((2, 3)), In((3, 2))), LA, tol=_TOL)
case("linalg_gemm2_ta_alpha", lambda a, b: nd.linalg.gemm2(a, b, transpose_a=True, alpha=2.0),
     lambda a, b: 2.0 * _t(a) @ b, (In((2, 3, 2)), In((2, 3, 2))), LA, tol=_TOL)
case("linalg_gemm2_tb_axis0", lambda a, b: nd.linalg.gemm2(a, b, transpose_b=True, axis=0),
     lambda a, b: np.einsum("ixk,jxk->ixj", a, b), (In((2, 2, 3)), In((3, 2, 3))), LA,
     tol=_TOL)
case("linalg_syrk", lambda a: nd.linalg.syrk(a, alpha=2.0), lambda a: 2.0 * a @ _t(a),
     (In((2, 3, 4)),), LA, tol=_TOL)
case("linalg_syrk_transpose", lambda a: nd.linalg_syrk(a, transpose=True),
     lambda a: _t(a) @ a, (In((3, 4)),), LA, tol=_TOL)

# Cholesky: potrf, potri ---------------------------------------------------------------------
case("linalg_potrf", lambda x: nd.linalg.potrf(_spd(x)),
     lambda x: np.linalg.cholesky(_np_spd(x)), (In((2, 3, 3)),), LA, tol=_TOL)
case("linalg_potrf_upper", lambda x: nd.linalg_potrf(_spd(x), lower=False),
     lambda x: _t(np.linalg.cholesky(_np_spd(x))), (In((3, 3)),), LA, tol=_TOL)
case("linalg_potrf_reads_the_lower_triangle",  # the upper one may hold anything
     lambda x, junk: nd.linalg.potrf(_spd(x) + junk * _const(x, np.triu(np.ones((3, 3)), 1))),
     lambda x, junk: np.linalg.cholesky(_np_spd(x)), (In((3, 3)), In((3, 3))), LA,
     grad=False, tol=_TOL)
case("linalg_potri", lambda x: nd.linalg.potri(_shift(x)),
     lambda x: np.linalg.inv(_tri(x + 3 * _eye(3)) @ _t(_tri(x + 3 * _eye(3)))),
     (In((2, 3, 3)),), LA, tol=_TOL)
case("linalg_potri_upper", lambda x: nd.linalg_potri(_shift(x), lower=False),
     lambda x: np.linalg.inv(_t(_tri(x + 3 * _eye(3), False)) @ _tri(x + 3 * _eye(3), False)),
     (In((3, 3)),), LA, tol=_TOL)
case("linalg_potri_of_potrf",  # the inverse of the matrix factorised
     lambda x: nd.linalg.potri(nd.linalg.potrf(_spd(x))), lambda x: np.linalg.inv(_np_spd(x)),
     (In((3, 3)),), LA, tol=_TOL)


# triangular products and solves ---------------------------------------------------------------
def _op_tri(a, transpose, lower):
    m = _tri(a, lower)
    return _t(m) if transpose else m


def _trmm_ref(a, b, transpose=False, rightside=False, lower=True, alpha=1.0):
    m = _op_tri(a, transpose, lower)
    return alpha * (b @ m if rightside else m @ b)


def _trsm_ref(a, b, transpose=False, rightside=False, lower=True, alpha=1.0):
    m = _op_tri(a, transpose, lower)
    if rightside:
        return alpha * _t(np.linalg.solve(_t(m), _t(b)))
    return alpha * np.linalg.solve(m, b)


_TRIANGULAR = [  # (suffix, attrs, A shape, B shape)
    ("", {}, (3, 3), (3, 4)),
    ("_alpha_batched", {"alpha": 2.0}, (2, 3, 3), (2, 3, 2)),
    ("_transpose", {"transpose": True}, (3, 3), (3, 2)),
    ("_rightside_upper", {"rightside": True, "lower": False, "alpha": -1.5}, (3, 3), (4, 3)),
    ("_transpose_rightside", {"transpose": True, "rightside": True}, (3, 3), (2, 3)),
]
for _sfx, _kw, _sa, _sb in _TRIANGULAR:
    _g2 = len(_sa) == 2  # second order once per flag combination: on the single matrices
    case("linalg_trmm" + _sfx, lambda a, b, _kw=_kw: nd.linalg.trmm(a, b, **_kw),
         lambda a, b, _kw=_kw: _trmm_ref(a, b, **_kw), (In(_sa), In(_sb)), LA, grad2=_g2,
         tol=_TOL)
    case("linalg_trsm" + _sfx, lambda a, b, _kw=_kw: nd.linalg_trsm(_shift(a), b, **_kw),
         lambda a, b, _kw=_kw: _trsm_ref(a + 3 * _eye(3), b, **_kw), (In(_sa), In(_sb)), LA,
         grad2=_g2, tol=_TOL)
case("linalg_trsm_undoes_trmm",
     lambda a, b: nd.linalg.trsm(_shift(a), nd.linalg.trmm(_shift(a), b, alpha=3.0),
                                 alpha=1 / 3.0),
     lambda a, b: b, (In((3, 3)), In((3, 2))), LA, tol=_TOL)


# diagonals and triangles -----------------------------------------------------------------------
def _sumlogdiag_ref(a):
    return _one(np.log(np.diagonal(a, 0, -2, -1)).sum(-1), a)


def _extracttrian_ref(a, offset=0, lower=True):
    """Loops: the lower triangle row by row, the upper one column by column."""
    n = a.shape[-1]
    upper = offset > 0 or (offset == 0 and not lower)
    cells = [(i, j) for i in range(n) for j in range(n) if j - i <= -abs(offset)]
    if upper:
        cells = [(j, i) for i, j in cells]  # by columns: the transpose's rows
    return np.stack([a[..., i, j] for i, j in cells], axis=-1)


def _maketrian_ref(v, offset=0, lower=True):
    m = v.shape[-1]
    n = abs(offset) + int(round((np.sqrt(8 * m + 1) - 1) / 2))
    probe = np.arange(n * n, dtype=np.float64).reshape(n, n)
    cells = [divmod(int(k), n) for k in _extracttrian_ref(probe, offset, lower)]
    out = np.zeros(v.shape[:-1] + (n, n))
    for p, (i, j) in enumerate(cells):
        out[..., i, j] = v[..., p]
    return out


def _makediag_ref(v, offset=0):
    k = v.shape[-1]
    n = k + abs(offset)
    out = np.zeros(v.shape[:-1] + (n, n))
    for i in range(k):
        out[..., i + max(-offset, 0), i + max(offset, 0)] = v[..., i]
    return out


case("linalg_sumlogdiag", nd.linalg.sumlogdiag, _sumlogdiag_ref, (In((2, 3, 3), "pos"),), LA,
     tol=_TOL)
case("linalg_sumlogdiag_one_matrix", nd.linalg_sumlogdiag, _sumlogdiag_ref,
     (In((3, 3), "pos"),), LA, tol=_TOL)
for _off in (0, 1, -2):
    case(f"linalg_extractdiag_offset{_off}",
         lambda a, _o=_off: nd.linalg.extractdiag(a, offset=_o),
         lambda a, _o=_off: np.diagonal(a, _o, -2, -1), (In((2, 4, 4)),), LA)
    case(f"linalg_makediag_offset{_off}", lambda v, _o=_off: nd.linalg.makediag(v, offset=_o),
         lambda v, _o=_off: _makediag_ref(v, _o), (In((2, 3)),), LA)
for _off, _low in ((0, True), (0, False), (1, True), (-1, False)):
    _name = f"offset{_off}_{'lower' if _low else 'upper'}"
    case("linalg_extracttrian_" + _name,
         lambda a, _o=_off, _l=_low: nd.linalg.extracttrian(a, offset=_o, lower=_l),
         lambda a, _o=_off, _l=_low: _extracttrian_ref(a, _o, _l), (In((2, 4, 4)),), LA)
    case("linalg_maketrian_" + _name,
         lambda v, _o=_off, _l=_low: nd.linalg_maketrian(v, offset=_o, lower=_l),
         lambda v, _o=_off, _l=_low: _maketrian_ref(v, _o, _l), (In((2, 6)),), LA)

# inverse, det, slogdet ---------------------------------------------------------------------------
case("linalg_inverse", lambda x: nd.linalg.inverse(_shift(x)),
     lambda x: np.linalg.inv(x + 3 * _eye(3)), (In((2, 3, 3)),), LA, tol=_TOL)
case("linalg_det", lambda x: nd.linalg.det(_shift(x)), lambda x: np.linalg.det(x + 3 * _eye(3)),
     (In((2, 3, 3)),), LA, tol=_TOL)
case("linalg_det_one_matrix", lambda x: nd.linalg_det(_shift(x)),
     lambda x: _one(np.linalg.det(x + 3 * _eye(3)), x), (In((3, 3)),), LA, tol=_TOL)
_SIGNS = [[[1.0]], [[-1.0]]]  # one matrix of each sign of determinant
case("linalg_slogdet", lambda x: nd.linalg.slogdet(_shift(x) * _const(x, _SIGNS)),
     lambda x: np.linalg.slogdet((x + 3 * _eye(3)) * np.array(_SIGNS)), (In((2, 3, 3)),), LA,
     tol=_TOL)
case("linalg_slogdet_one_matrix", lambda x: nd.linalg_slogdet(_shift(x)),
     lambda x: tuple(_one(v, x) for v in np.linalg.slogdet(x + 3 * _eye(3))), (In((3, 3)),),
     LA, tol=_TOL)


# LQ and symmetric eigendecomposition: references normalised as the ops are ------------------
def _np_lq(a):
    """(Q, L), L with a positive diagonal."""
    q, r = np.linalg.qr(_t(a))
    s = np.where(np.diagonal(r, axis1=-2, axis2=-1) < 0, -1.0, 1.0)
    return _t(q) * s[..., :, None], _t(r) * s[..., None, :]


def _np_eig(a):
    """(U, lam): eigenvectors as rows, each with its largest-magnitude entry positive."""
    lam, v = np.linalg.eigh(a)
    u = _t(v)
    big = np.take_along_axis(u, np.argmax(np.abs(u), axis=-1)[..., None], axis=-1)
    return u * np.where(big < 0, -1.0, 1.0), lam


def _separated(x):
    """A symmetric matrix with well-separated eigenvalues (1, 4, 7 plus x's small part):
    the eigenvectors' derivatives stay well-conditioned."""
    sym = (x + nd.swapaxes(x, -1, -2)) * 0.1
    return sym + _const(x, np.diag([1.0, 4.0, 7.0]))


def _np_separated(x):
    return (x + _t(x)) * 0.1 + np.diag([1.0, 4.0, 7.0])


def _wide(x):
    """x + 3 [I 0]: a 3x4 matrix of full row rank."""
    return x + _const(x, 3.0 * np.eye(3, 4))


case("linalg_gelqf", lambda a: nd.linalg.gelqf(_wide(a)),
     lambda a: _np_lq(a + 3.0 * np.eye(3, 4)), (In((3, 4)),), LA, tol=_TOL)
case("linalg_syevd", lambda x: nd.linalg.syevd(_separated(x)),
     lambda x: _np_eig(_np_separated(x)), (In((2, 3, 3)),), LA, tol=_TOL)
