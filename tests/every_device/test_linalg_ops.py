"""MXNet's linalg_* operators beyond the op table (mxcore/testing/optable/linalg.py): the values
of MXNet 1.9.1's documented examples, potrf's symmetric gradient, the mx.nd.linalg
namespace, ``out=``, and the errors bad calls get."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore.base import OperatorError

nd = mx.nd
#: mx.nd.linalg in MXNet 1.9.1
NAMES = ("det", "extractdiag", "extracttrian", "gelqf", "gemm", "gemm2", "inverse",
         "makediag", "maketrian", "potrf", "potri", "slogdet", "sumlogdiag", "syevd", "syrk",
         "trmm", "trsm")


def arr(values, device, dtype="float64"):
    return nd.array(np.asarray(values, np.float64), ctx=device, dtype=dtype)


def close(got, want, rtol=1e-6, atol=1e-6):
    np.testing.assert_allclose(got.asnumpy(), np.asarray(want), rtol=rtol, atol=atol)


def test_the_namespace_has_mxnets_names():
    for name in NAMES:
        assert getattr(nd.linalg, name) is getattr(nd, "linalg_" + name), name
    assert sorted(nd.linalg.__all__) == sorted(NAMES)


# MXNet 1.9.1's documented examples (as MXNet computes them) -------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_documented_examples(device, dtype):
    def a(values):
        return arr(values, device, dtype)

    ones = a([[1.0, 1.0], [1.0, 1.0]])
    close(nd.linalg.gemm(ones, a(np.ones((3, 2))), a(np.ones((2, 3))), transpose_b=True,
                         alpha=2.0, beta=10.0), np.full((2, 3), 14.0))
    close(nd.linalg.gemm(a([[[1.0, 1.0]], [[0.1, 0.1]]]), a([[[1.0, 1.0]], [[0.1, 0.1]]]),
                         a([[[10.0]], [[0.01]]]), transpose_b=True, alpha=2.0, beta=10.0),
          [[[104.0]], [[0.14]]])
    close(nd.linalg.gemm2(ones, a(np.ones((3, 2))), transpose_b=True, alpha=2.0),
          np.full((2, 3), 4.0))
    spd = a([[[4.0, 1.0], [1.0, 4.25]], [[16.0, 4.0], [4.0, 17.0]]])
    close(nd.linalg.potrf(spd), [[[2.0, 0], [0.5, 2.0]], [[4.0, 0], [1.0, 4.0]]])
    close(nd.linalg.potri(a([[2.0, 0], [0.5, 2.0]])), [[0.265625, -0.0625], [-0.0625, 0.25]])
    tri = a([[1.0, 0], [1.0, 1.0]])
    close(nd.linalg.trmm(tri, a(np.ones((2, 3))), alpha=2.0), [[2.0] * 3, [4.0] * 3])
    close(nd.linalg.trsm(tri, a([[2.0] * 3, [4.0] * 3]), alpha=0.5), np.ones((2, 3)))
    m = a([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    close(nd.linalg.syrk(m), [[14.0, 32.0], [32.0, 77.0]])
    close(nd.linalg.syrk(m, transpose=True), [[17, 22, 27], [22, 29, 36], [27, 36, 45]])
    close(nd.linalg.sumlogdiag(a([[1.0, 1.0], [1.0, 7.0]])), [np.log(7.0)])
    close(nd.linalg.det(a([[1.0, 2.0], [3.0, 4.0]])), [-2.0])
    sign, logabs = nd.linalg.slogdet(a([[1.0, 2.0], [3.0, 4.0]]))
    close(sign, [-1.0])
    close(logabs, [np.log(2.0)])


def test_packed_triangles_follow_mxnets_order(device):
    m = arr(np.arange(1, 17).reshape(4, 4), device)
    close(nd.linalg.extracttrian(m), [1, 5, 6, 9, 10, 11, 13, 14, 15, 16])
    close(nd.linalg.extracttrian(m, lower=False), [1, 2, 6, 3, 7, 11, 4, 8, 12, 16])
    close(nd.linalg.extracttrian(m, offset=1), [2, 3, 7, 4, 8, 12])
    close(nd.linalg.extracttrian(m, offset=-1, lower=False), [5, 9, 10, 13, 14, 15])
    close(nd.linalg.maketrian(arr([2, 3, 7, 4, 8, 12], device), offset=1),
          np.triu(np.arange(1, 17).reshape(4, 4), 1))
    close(nd.linalg.makediag(arr([1, 2], device), offset=-1), [[0, 0, 0], [1, 0, 0], [0, 2, 0]])
    close(nd.linalg.extractdiag(m, offset=-1), [5, 10, 15])


def test_singular_matrices(device):
    z = arr(np.zeros((2, 2)), device)
    close(nd.linalg.det(z), [0.0])
    sign, logabs = nd.linalg.slogdet(z)
    close(sign, [0.0])
    assert np.isneginf(logabs.asnumpy()).all()


# gradients the op table cannot see --------------------------------------------------------
def _numeric_grad(fn, a, eps=1e-6):
    g = np.zeros_like(a)
    for idx in np.ndindex(*a.shape):
        hi, lo = a.copy(), a.copy()
        hi[idx] += eps
        lo[idx] -= eps
        g[idx] = (fn(hi) - fn(lo)) / (2 * eps)
    return g


@pytest.mark.parametrize("lower", [True, False])
def test_potrf_gradient_is_the_symmetric_one(device, lower):
    """potrf reads one triangle; MXNet's gradient spreads each off-diagonal derivative
    evenly over both triangles (the gradient for a symmetric input)."""
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (3, 3))
    a = x @ x.T + 3 * np.eye(3)
    w = rng.normal(size=(3, 3))

    def loss(h):
        return float((nd.linalg.potrf(arr(h, device), lower=lower) * arr(w, device))
                     .sum().asscalar())
    fd = _numeric_grad(loss, a)  # zero off the triangle potrf reads
    assert np.abs(np.triu(fd, 1) if lower else np.tril(fd, -1)).max() < 1e-8
    x_nd = arr(a, device)
    x_nd.attach_grad()
    with mx.autograd.record():
        y = (nd.linalg.potrf(x_nd, lower=lower) * arr(w, device)).sum()
    y.backward()
    np.testing.assert_allclose(x_nd.grad.asnumpy(), (fd + fd.T) / 2, rtol=1e-5, atol=1e-7)


def test_slogdet_sign_alone_has_a_zero_gradient(device):
    x = arr([[2.0, 1.0], [1.0, 3.0]], device)
    x.attach_grad()
    with mx.autograd.record():
        s = nd.linalg.slogdet(x)[0].sum()
    s.backward()
    close(x.grad, np.zeros((2, 2)), atol=0)


# batches, out=, empty batches ---------------------------------------------------------------
def test_two_leading_axes_and_out(device):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2, 2, 3, 3)) + 4 * np.eye(3)
    b = rng.normal(size=(2, 2, 3, 4))
    close(nd.linalg.trsm(arr(a, device), arr(b, device)), np.linalg.solve(np.tril(a), b))
    close(nd.linalg.inverse(arr(a, device)), np.linalg.inv(a))
    close(nd.linalg.det(arr(a, device)), np.linalg.det(a))
    out = arr(np.zeros((2, 2, 3, 4)), device)
    got = nd.linalg.gemm2(arr(a, device), arr(b, device), alpha=2.0, out=out)
    assert got is out
    close(out, 2 * a @ b)


def test_empty_batches(device):
    e = arr(np.zeros((0, 3, 3)), device)
    assert nd.linalg.potrf(e).shape == (0, 3, 3)
    assert nd.linalg.det(e).shape == (0,)
    assert nd.linalg.extracttrian(e).shape == (0, 6)


# errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("call,message", [
    (lambda d: nd.linalg.gemm2(arr(np.ones((2, 3)), d), arr(np.ones((2, 3)), d)),
     r"'linalg_gemm2': op\(A\) is 2x3 and op\(B\) 2x3: the inner dimensions differ"),
    (lambda d: nd.linalg.gemm2(arr(np.ones((2, 2, 3)), d), arr(np.ones((1, 3, 2)), d)),
     r"'linalg_gemm2': A \(2, 2, 3\) and B \(1, 3, 2\) must have the same shape except"),
    (lambda d: nd.linalg.gemm2(arr(np.ones((2, 3, 4)), d), arr(np.ones((2, 4, 3)), d), axis=2),
     r"axis 2 cannot be the row axis"),
    (lambda d: nd.linalg.gemm(arr(np.ones((2, 3)), d), arr(np.ones((3, 2)), d),
                              arr(np.ones((3, 3)), d)),
     r"'linalg_gemm': C \(3, 3\) must have the shape of op\(A\) @ op\(B\), \(2, 2\)"),
    (lambda d: nd.linalg.potrf(arr(np.ones((2, 3)), d)),
     r"'linalg_potrf': A must be a tensor of square matrices, got shape \(2, 3\)"),
    (lambda d: nd.linalg.det(arr(np.ones(3), d)),
     r"'linalg_det': A must be a tensor of matrices \(at least 2 axes\)"),
    (lambda d: nd.linalg.trsm(arr(np.eye(3), d), arr(np.ones((2, 3)), d)),
     r"'linalg_trsm': A is 3x3 but B \(2, 3\) has 2 rows"),
    (lambda d: nd.linalg.trmm(arr(np.eye(3), d), arr(np.ones((3, 2)), d), rightside=True),
     r"'linalg_trmm': A is 3x3 but B \(3, 2\) has 2 columns"),
    (lambda d: nd.linalg.maketrian(arr(np.ones(4), d)),
     r"'linalg_maketrian': the last axis \(4\) must hold a packed triangle"),
    (lambda d: nd.linalg.extractdiag(arr(np.ones((3, 3)), d), offset=3),
     r"'linalg_extractdiag': offset 3 is out of range for 3x3 matrices"),
    (lambda d: nd.linalg.inverse(arr(np.eye(2), d, "float16")),
     r"'linalg_inverse': supports float32 and float64 only \(as MXNet\), got float16"),
    (lambda d: nd.linalg.syrk(nd.ones((2, 2), ctx=d, dtype="int32")),
     r"'linalg_syrk': supports float32 and float64 only \(as MXNet\), got int32"),
    (lambda d: nd.linalg.gemm2(arr(np.eye(2), d), arr(np.eye(2), d, "float32")),
     r"'linalg_gemm2': dtypes differ \(float64, float32\)"),
])
def test_bad_calls_name_the_op_shapes_dtypes_and_device(device, call, message):
    with pytest.raises(OperatorError, match=message) as info:
        call(device)
    assert "[inputs: (" in str(info.value) and repr(device) in str(info.value)


def test_potrf_of_an_indefinite_matrix_is_refused(device):
    from mxcore.device import device_type
    if device_type(device).xp is not np:
        pytest.skip("CuPy's cholesky returns NaN instead of raising")
    with pytest.raises(OperatorError, match="linalg_potrf.*not positive definite"):
        nd.linalg.potrf(arr([[1.0, 2.0], [2.0, 1.0]], device)).asnumpy()
