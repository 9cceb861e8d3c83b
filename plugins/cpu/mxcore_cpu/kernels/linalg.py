"""Matrix products through the array module (BLAS for floats on numpy)."""
from __future__ import annotations

from mxcore_cpu.kernels._dtypes import NUM, via_float32


def kernels(xp, special):
    def dot(a, b, transpose_a, transpose_b):
        A = a.T if transpose_a else a
        B = b.T if transpose_b else b
        if A.ndim == 1 and B.ndim == 1:
            return xp.dot(A, B).reshape(1)
        if A.ndim <= 2 and B.ndim <= 2:
            return xp.matmul(A, B)
        return xp.tensordot(A, B, axes=1)

    def batch_dot(a, b, transpose_a, transpose_b):
        A = xp.swapaxes(a, -1, -2) if transpose_a else a
        B = xp.swapaxes(b, -1, -2) if transpose_b else b
        return xp.matmul(A, B)

    return {"dot": (via_float32(xp, dot), NUM), "batch_dot": (via_float32(xp, batch_dot), NUM),
            "matmul": (via_float32(xp, xp.matmul), NUM)}
