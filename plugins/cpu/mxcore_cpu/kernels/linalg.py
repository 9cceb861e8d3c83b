"""Matrix products through the array module (BLAS for floats on numpy)."""
from __future__ import annotations

from mxcore_cpu.device import product_threads
from mxcore_cpu.kernels._dtypes import NUM, via_float32


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

    return {"dot": (via_float32(xp, dot), NUM), "batch_dot": (via_float32(xp, batch_dot), NUM),
            "matmul": (via_float32(xp, matmul), NUM)}
