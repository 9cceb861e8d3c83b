"""Matrix products through the array module (BLAS for floats on numpy), and MXNet's
``linalg_*`` operators (float32 and float64, as in MXNet), batched over the leading axes
through the stacked forms of matmul, cholesky, inv, det, slogdet and solve (LAPACK on
numpy; CuPy has each).  A triangular operand is the triangle the op names, the rest
read as zero; triangular solves go through ``solve``."""
from __future__ import annotations

import math

import numpy as np

from mxcore_cpu.device import product_threads
from mxcore_cpu.kernels._dtypes import NUM, via_float32

#: MXNet's linalg operators take these only
LA = frozenset({"float32", "float64"})


def tri_index(n: int, offset: int, lower: bool):
    """(rows, cols) of the entries ``linalg_extracttrian`` packs, in MXNet's order: a
    lower triangle row by row, an upper one (``offset > 0``, or 0 and not ``lower``)
    column by column, i.e. as the lower triangle of the transpose."""
    rows, cols = np.tril_indices(n, -abs(offset))
    upper = offset > 0 or (offset == 0 and not lower)
    return (cols, rows) if upper else (rows, cols)


def mnk(A, B):
    """m*n*k of one BLAS call of ``A @ B`` (a stacked matmul is one call per matrix)."""
    k = A.shape[-1] if A.ndim else 1
    m = A.shape[-2] if A.ndim > 1 else 1
    n = B.shape[-1] if B.ndim > 1 else 1
    return m * n * k


def kernels(xp, special):
    threads = product_threads(xp)  # one BLAS thread for small products (device.py)

    def dot(a, b, transpose_a, transpose_b):
        A = a.T if transpose_a else a
        B = b.T if transpose_b else b
        if A.ndim == 1 and B.ndim == 1:
            threads(A.size)
            return xp.dot(A, B).reshape(1)
        if A.ndim <= 2 and B.ndim <= 2:
            threads(mnk(A, B))
            return xp.matmul(A, B)
        # tensordot: one product of A as (size/k, k) and B as (k, size/k)
        threads(A.size * (B.size // max(B.shape[0], 1)))
        return xp.tensordot(A, B, axes=1)

    def batch_dot(a, b, transpose_a, transpose_b):
        A = xp.swapaxes(a, -1, -2) if transpose_a else a
        B = xp.swapaxes(b, -1, -2) if transpose_b else b
        threads(mnk(A, B))
        return xp.matmul(A, B)

    def matmul(a, b, **attrs):
        threads(mnk(a, b))
        return xp.matmul(a, b, **attrs)

    table = {"dot": (via_float32(xp, dot), NUM),
             "batch_dot": (via_float32(xp, batch_dot), NUM),
             "matmul": (via_float32(xp, matmul), NUM)}
    table.update({name: (fn, LA) for name, fn in la_kernels(xp, threads).items()})
    return table


def la_kernels(xp, threads):
    """MXNet's linalg_* operators."""
    def t(x):  # the transposes of a stack of matrices
        return xp.swapaxes(x, -1, -2)

    def rows_last(x, axis):  # gemm's matrices: rows on ``axis``, columns on the last axis
        return x if axis in (-2, x.ndim - 2) else xp.swapaxes(x, axis, -2)

    def tri(a, lower):  # the triangle a triangular routine reads, the rest zero
        n = a.shape[-1]
        mask = xp.tri(n, n, 0, dtype=bool)
        return xp.where(mask if lower else mask.T, a, xp.zeros((), a.dtype))

    def cube(a):  # m*n*k of the LAPACK call on a's matrices, for the thread hook
        return a.shape[-1] ** 3

    def scalar_shape(x, a):  # a 2-d input's reduction is (1,), as MXNet's
        return x.reshape(1) if a.ndim == 2 else x

    def linalg_gemm2(a, b, *, transpose_a, transpose_b, alpha, axis):
        A, B = rows_last(a, axis), rows_last(b, axis)
        A, B = t(A) if transpose_a else A, t(B) if transpose_b else B
        threads(mnk(A, B))
        out = xp.matmul(A, B)
        if alpha != 1.0:
            out *= alpha
        return xp.ascontiguousarray(rows_last(out, axis))

    def linalg_gemm(a, b, c, *, transpose_a, transpose_b, alpha, beta, axis):
        out = rows_last(linalg_gemm2(a, b, transpose_a=transpose_a, transpose_b=transpose_b,
                                     alpha=alpha, axis=axis), axis)
        out += beta * rows_last(c, axis)
        return xp.ascontiguousarray(rows_last(out, axis))

    def linalg_syrk(a, *, transpose, alpha):
        A = t(a) if transpose else a
        threads(mnk(A, t(A)))
        out = xp.matmul(A, t(A))
        return out * alpha if alpha != 1.0 else out

    def triangle(a, transpose, lower):
        T = tri(a, lower)
        return t(T) if transpose else T

    def linalg_trmm(a, b, *, transpose, rightside, lower, alpha):
        M = triangle(a, transpose, lower)
        threads(mnk(b, M) if rightside else mnk(M, b))
        out = xp.matmul(b, M) if rightside else xp.matmul(M, b)
        return out * alpha if alpha != 1.0 else out

    def linalg_trsm(a, b, *, transpose, rightside, lower, alpha):
        M = triangle(a, transpose, lower)
        B = b * alpha if alpha != 1.0 else b
        threads(cube(a) + mnk(M, B))
        if rightside:  # X M = B  <=>  M^T X^T = B^T
            return xp.ascontiguousarray(t(xp.linalg.solve(t(M), t(B))))
        return xp.linalg.solve(M, B)

    def linalg_potrf(a, *, lower):
        T = tri(a, lower)  # the symmetric matrix the named triangle describes
        diag = tri(T, not lower)
        sym = T + t(T) - diag
        threads(cube(a))
        L = xp.linalg.cholesky(sym)
        return L if lower else xp.ascontiguousarray(t(L))

    def linalg_potri(a, *, lower):
        threads(2 * cube(a))
        inv = xp.linalg.inv(tri(a, lower))
        out = xp.matmul(t(inv), inv) if lower else xp.matmul(inv, t(inv))
        return (out + t(out)) * 0.5  # exactly symmetric, as LAPACK's potri

    def linalg_sumlogdiag(a):
        return scalar_shape(xp.log(xp.diagonal(a, 0, -2, -1)).sum(axis=-1), a)

    def linalg_extractdiag(a, *, offset):
        return xp.ascontiguousarray(xp.diagonal(a, offset, -2, -1))

    def linalg_makediag(a, *, offset):
        k = a.shape[-1]
        n = k + abs(offset)
        out = xp.zeros(a.shape[:-1] + (n, n), a.dtype)
        i = xp.arange(k)
        out[..., i + max(-offset, 0), i + max(offset, 0)] = a
        return out

    def linalg_extracttrian(a, *, offset, lower):
        rows, cols = tri_index(a.shape[-1], offset, lower)
        return a[..., xp.asarray(rows), xp.asarray(cols)]

    def linalg_maketrian(a, *, offset, lower):
        m = a.shape[-1]
        n = abs(offset) + (math.isqrt(8 * m + 1) - 1) // 2  # m = p (p + 1) / 2
        rows, cols = tri_index(n, offset, lower)
        out = xp.zeros(a.shape[:-1] + (n, n), a.dtype)
        out[..., xp.asarray(rows), xp.asarray(cols)] = a
        return out

    def linalg_inverse(a):
        threads(cube(a))
        return xp.linalg.inv(a)

    def linalg_det(a):
        threads(cube(a))
        return scalar_shape(xp.linalg.det(a), a)

    def linalg_slogdet(a):
        threads(cube(a))
        sign, logabs = xp.linalg.slogdet(a)
        return scalar_shape(sign.astype(a.dtype), a), scalar_shape(logabs.astype(a.dtype), a)

    def linalg_gelqf(a):
        threads(cube(a))
        q, r = xp.linalg.qr(t(a))  # A^T = Q' R, so A = R^T Q'^T
        sign = xp.where(xp.diagonal(r, axis1=-2, axis2=-1) < 0, -1.0, 1.0).astype(a.dtype)
        lo = t(r) * sign[..., None, :]            # L S: a positive diagonal ...
        return xp.ascontiguousarray(t(q) * sign[..., :, None]), xp.ascontiguousarray(lo)

    def linalg_syevd(a):
        threads(cube(a))
        lam, v = xp.linalg.eigh((a + t(a)) * 0.5)
        u = t(v)
        idx = xp.argmax(xp.abs(u), axis=-1)[..., None]
        sign = xp.where(xp.take_along_axis(u, idx, axis=-1) < 0, -1.0, 1.0).astype(a.dtype)
        return xp.ascontiguousarray(u * sign), lam.astype(a.dtype)

    return {fn.__name__: fn for fn in (
        linalg_gemm, linalg_gemm2, linalg_syrk, linalg_trmm, linalg_trsm, linalg_potrf,
        linalg_potri, linalg_sumlogdiag, linalg_extractdiag, linalg_makediag,
        linalg_extracttrian, linalg_maketrian, linalg_inverse, linalg_det, linalg_slogdet,
        linalg_gelqf, linalg_syevd)}
