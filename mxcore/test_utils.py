"""The parts of MXNet's ``mx.test_utils`` that user code and MXNet-style test suites
reach for: picking a device (``list_gpus``, ``default_context``,
``set_default_context``), comparing results with per-dtype tolerances
(``almost_equal``, ``assert_almost_equal``, ``same``, ``assert_exception``), random
test data (``rand_shape_nd``, ``random_arrays``, ``rand_ndarray``) and statistical
checks of random generators (``verify_generator``, ``mean_check``, ``var_check``)."""
from __future__ import annotations

import contextlib
import functools
import numbers
import os
import random as _pyrandom
import sys
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

import mxcore as mx  # noqa: I001  (MXNet-style tests take `mx` from the star import)
from mxcore.device import Device, default_device, num_gpus, set_default_device

__all__ = ["environment", "list_gpus", "default_context", "set_default_context",
           "default_rtols", "default_atols", "almost_equal", "assert_almost_equal", "same",
           "assert_exception", "default_dtype", "np_reduce", "random_sample", "rand_shape_2d",
           "rand_shape_3d", "rand_shape_nd", "random_arrays", "rand_ndarray",
           "discard_stderr", "retry", "use_np", "chi_square_check", "verify_generator",
           "gen_buckets_probs_with_ppf", "mean_check", "var_check",
           # MXNet's test_utils has no __all__: `from mxnet.test_utils import *` hands
           # MXNet-style test files these modules too
           "mx", "np", "os", "sys"]


def list_gpus() -> range:
    """``range(n)`` for the n GPUs this process can use (empty without one)."""
    return range(num_gpus())


def default_context() -> Device:
    """The device arrays are made on when no ``ctx`` is given."""
    return default_device()


def set_default_context(ctx) -> None:
    """Make ``ctx`` this thread's default device."""
    set_default_device(ctx)


# MXNet 1.9's defaults; bfloat16 (8 significant bits to float16's 11) gets wider ones
_RTOL = {"float16": 1e-2, "bfloat16": 5e-2, "float32": 1e-4, "float64": 1e-5}
_ATOL = {"float16": 1e-1, "bfloat16": 2e-1, "float32": 1e-3, "float64": 1e-20}


def default_rtols() -> dict:
    """dtype name -> default relative tolerance (0 for integers and bool)."""
    return dict(_RTOL)


def default_atols() -> dict:
    """dtype name -> default absolute tolerance (0 for integers and bool)."""
    return dict(_ATOL)


def _host(x) -> np.ndarray:
    if isinstance(x, numbers.Number):
        return np.asarray(x)
    return x.asnumpy() if hasattr(x, "asnumpy") else np.asarray(x)


def _tol(tol, arrays, table) -> float:
    """A number as given; else the loosest default (or ``tol[dtype]`` where ``tol``
    is a dict) over the arrays' dtypes."""
    if isinstance(tol, numbers.Number):
        return float(tol)
    tol = tol or {}
    return max(tol.get(a.dtype.name, tol.get(a.dtype, table.get(a.dtype.name, 0.0)))
               for a in arrays)


def _tols(a, b, rtol, atol) -> Tuple[float, float]:
    return _tol(rtol, (a, b), _RTOL), _tol(atol, (a, b), _ATOL)


def _compare(a, b):
    """Both as float64 where either is a float (ml_dtypes' bfloat16 included), else as is."""
    if a.dtype.kind in "biu" and b.dtype.kind in "biu":
        return a, b
    return a.astype(np.float64), b.astype(np.float64)


def almost_equal(a: Any, b: Any, rtol=None, atol=None, equal_nan: bool = False) -> bool:
    """Whether ``|a - b| <= atol + rtol * |b|`` everywhere (numpy's allclose; NDArrays,
    numpy arrays or numbers).  As in MXNet, the default tolerances here are
    float64's whatever the dtypes (``assert_almost_equal`` picks them by dtype)."""
    a, b = _host(a), _host(b)
    rtol = _RTOL["float64"] if rtol is None else rtol
    atol = _ATOL["float64"] if atol is None else atol
    x, y = _compare(a, b)
    return bool(np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan))


def assert_almost_equal(a: Any, b: Any, rtol=None, atol=None, names=("a", "b"),
                        equal_nan: bool = False, use_broadcast: bool = True,
                        mismatches=(10, 10)) -> None:
    """Raise AssertionError, naming the worst elements, unless ``|a - b| <= atol +
    rtol * |b|`` everywhere.  Tolerances not given are the loosest defaults of the two
    dtypes (``default_rtols``/``default_atols``; a dict gives them per dtype).  Without
    ``use_broadcast`` the shapes must match."""
    a, b = _host(a), _host(b)
    if not use_broadcast and a.shape != b.shape:
        raise AssertionError(f"shape mismatch: {names[0]} {a.shape}, {names[1]} {b.shape}")
    rtol, atol = _tols(a, b, rtol, atol)
    if a.dtype == np.bool_ and b.dtype == np.bool_:
        np.testing.assert_equal(a, b)
        return
    x, y = _compare(a, b)
    if np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan):
        return
    x, y = np.broadcast_arrays(x, y)
    excess = np.abs(x - y) - (atol + rtol * np.abs(y))
    if equal_nan:
        excess = np.where(np.isnan(x) & np.isnan(y), -np.inf, excess)
    excess = np.where(np.isnan(excess), np.inf, excess)  # a NaN on one side only
    worst = np.argsort(excess, axis=None)[::-1][:max(1, mismatches[0])]
    bad = int((excess > 0).sum())
    lines = [f"{bad} of {x.size} elements exceed rtol={rtol:g}, atol={atol:g}:"]
    for flat in worst:
        if excess.flat[flat] <= 0:
            break
        idx = np.unravel_index(flat, x.shape)
        lines.append(f"  at {tuple(int(i) for i in idx)}: {names[0]}={x[idx].item()!r} "
                     f"{names[1]}={y[idx].item()!r}")
    raise AssertionError("\n".join(lines))


def same(a, b) -> bool:
    """Whether two arrays are equal element for element, with equal shapes."""
    return bool(np.array_equal(_host(a), _host(b)))


@contextlib.contextmanager
def environment(*args) -> Iterator[None]:
    """Set environment variables for a block and restore them after (MXNet's
    ``test_utils.environment``): ``environment(name, value)`` or
    ``environment({name: value, ...})``; a value of None unsets the variable."""
    if len(args) == 2:
        changes: Dict[str, Optional[str]] = {args[0]: args[1]}
    elif len(args) == 1 and isinstance(args[0], dict):
        changes = dict(args[0])
    else:
        raise ValueError("environment() takes (name, value) or one dict of name -> value")
    saved = {name: os.environ.get(name) for name in changes}
    try:
        for name, value in changes.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = str(value)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def assert_exception(f: Callable, exception_type, *args, **kwargs) -> None:
    """Assert that ``f(*args, **kwargs)`` raises ``exception_type``."""
    try:
        f(*args, **kwargs)
    except exception_type:
        return
    raise AssertionError(f"{getattr(f, '__name__', f)} did not raise "
                         f"{getattr(exception_type, '__name__', exception_type)}")


def default_dtype() -> type:
    """The dtype of random test data: float32."""
    return np.float32


def np_reduce(dat: np.ndarray, axis, keepdims: bool, numpy_reduce_func) -> np.ndarray:
    """Apply a numpy reduction over ``axis`` (None, an int or a tuple), one axis at a
    time, keeping the reduced axes when ``keepdims`` (the reference of MXNet's
    reduction tests)."""
    if axis is None:
        axes = tuple(range(dat.ndim))
    elif isinstance(axis, int):
        axes = (axis,)
    else:
        axes = tuple(axis)
    out = dat
    for ax in sorted((a % dat.ndim for a in axes), reverse=True):
        out = numpy_reduce_func(out, axis=ax, keepdims=True)
    if not keepdims:
        keep = [n for i, n in enumerate(out.shape) if i not in {a % dat.ndim for a in axes}]
        out = out.reshape(keep)
    return out


def random_sample(population: Sequence, k: int) -> list:
    """``k`` distinct elements of ``population`` in random order."""
    return _pyrandom.sample(list(population), k)


def rand_shape_nd(num_dim: int, dim: int = 10, allow_zero_size: bool = False) -> tuple:
    """A random shape of ``num_dim`` axes, each 1..dim (0..dim with allow_zero_size)."""
    low = 0 if allow_zero_size else 1
    return tuple(int(n) for n in np.random.randint(low, dim + 1, size=num_dim))


def rand_shape_2d(dim0: int = 10, dim1: int = 10, allow_zero_size: bool = False) -> tuple:
    low = 0 if allow_zero_size else 1
    return (_pyrandom.randint(low, dim0), _pyrandom.randint(low, dim1))


def rand_shape_3d(dim0: int = 10, dim1: int = 10, dim2: int = 10,
                  allow_zero_size: bool = False) -> tuple:
    low = 0 if allow_zero_size else 1
    return (_pyrandom.randint(low, dim0), _pyrandom.randint(low, dim1),
            _pyrandom.randint(low, dim2))


def random_arrays(*shapes):
    """Standard-normal float32 numpy arrays of the given shapes (one array when one
    shape is given)."""
    arrays = [np.asarray(np.random.randn(*s), dtype=default_dtype()) for s in shapes]
    return arrays[0] if len(arrays) == 1 else arrays


def rand_ndarray(shape, stype: str = "default", density=None, dtype=None, ctx=None,
                 **kwargs):
    """A random dense NDArray of ``shape`` (uniform in [-1, 1)).  Sparse storage types
    are not supported by mxcore."""
    from mxcore import ndarray as nd
    if stype != "default":
        raise NotImplementedError(f"rand_ndarray: storage type {stype!r} is not supported "
                                  "(mxcore arrays are dense)")
    values = np.random.uniform(-1.0, 1.0, size=shape)
    return nd.array(values, ctx=ctx, dtype=dtype or default_dtype())


@contextlib.contextmanager
def discard_stderr() -> Iterator[None]:
    """Silence the process's stderr (file descriptor 2) for a block."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def retry(n: int) -> Callable:
    """Run a flaky statistical test up to ``n`` times until it passes."""
    if n < 1:
        raise ValueError("retry(n) needs n >= 1")

    def wrap(test):
        @functools.wraps(test)
        def run(*args, **kwargs):
            for attempt in range(n):
                try:
                    return test(*args, **kwargs)
                except AssertionError:
                    if attempt == n - 1:
                        raise
        return run
    return wrap


def use_np(func):
    """MXNet's decorator switching on its NumPy interface (``mx.np``).  mxcore has no
    ``mx.np``; the function is returned as it is, and any use of ``mx.np`` inside
    raises a clear error."""
    return func


def _bucket_counts(samples: np.ndarray, buckets) -> np.ndarray:
    """Samples per bucket: a bucket is a (low, high) interval, or one value."""
    samples = np.asarray(samples).ravel()
    if isinstance(buckets[0], (tuple, list)):
        return np.array([np.count_nonzero((samples >= lo) & (samples < hi))
                         for lo, hi in buckets])
    return np.array([np.count_nonzero(samples == v) for v in buckets])


def chi_square_check(generator: Callable, buckets, probs, nsamples: int = 1000000):
    """Pearson's chi-square test of ``generator(nsamples)`` against bucket
    probabilities.  Samples outside every bucket form one more bucket, expected with
    the probability the buckets leave.  Returns (p value, observed, expected)."""
    import scipy.stats
    samples = generator(nsamples)
    samples = samples.asnumpy() if hasattr(samples, "asnumpy") else np.asarray(samples)
    observed = _bucket_counts(samples, buckets).astype(np.float64)
    expected = np.asarray(probs, dtype=np.float64) * nsamples
    rest_obs, rest_exp = nsamples - observed.sum(), nsamples - expected.sum()
    if rest_exp > 1e-6 * nsamples or rest_obs > 0:
        observed = np.append(observed, rest_obs)
        expected = np.append(expected, max(rest_exp, 1e-12))
    expected *= observed.sum() / expected.sum()
    _, p = scipy.stats.chisquare(f_obs=observed, f_exp=expected)
    return p, observed, expected


def verify_generator(generator: Callable, buckets, probs, nsamples: int = 1000000,
                     nrepeat: int = 5, success_rate: float = 0.2,
                     alpha: float = 0.05) -> List[float]:
    """Run ``chi_square_check`` ``nrepeat`` times; fail unless the p value exceeds
    ``alpha`` in at least ``success_rate`` of the runs.  Returns the p values."""
    pvalues = [chi_square_check(generator, buckets, probs, nsamples)[0]
               for _ in range(nrepeat)]
    passed = sum(p > alpha for p in pvalues)
    if passed < nrepeat * success_rate:
        raise AssertionError(f"generator failed the chi-square test: p values {pvalues} "
                             f"(alpha {alpha}, {passed} of {nrepeat} passed)")
    return pvalues


def gen_buckets_probs_with_ppf(ppf: Callable, nbuckets: int):
    """``nbuckets`` equally likely intervals of a continuous distribution, from its
    percent-point function: (buckets, probs)."""
    edges = [ppf(i / float(nbuckets)) for i in range(nbuckets + 1)]
    return list(zip(edges[:-1], edges[1:])), [1.0 / nbuckets] * nbuckets


def _samples(generator, nsamples):
    out = generator(nsamples)
    return np.asarray(out.asnumpy() if hasattr(out, "asnumpy") else out, dtype=np.float64)


def mean_check(generator: Callable, mu: float, sigma: float, nsamples: int = 1000000) -> bool:
    """Whether the sample mean lies within 3 standard errors of ``mu``."""
    bound = 3 * sigma / np.sqrt(nsamples)
    return bool(abs(_samples(generator, nsamples).mean() - mu) < bound)


def var_check(generator: Callable, sigma: float, nsamples: int = 1000000) -> bool:
    """Whether the sample variance lies within 2 standard errors of ``sigma**2``
    (the standard error of a normal sample's variance, sqrt(2 sigma^4 / (n - 1)))."""
    bound = 2 * np.sqrt(2 * sigma ** 4 / (nsamples - 1))
    return bool(abs(_samples(generator, nsamples).var(ddof=1) - sigma ** 2) < bound)
