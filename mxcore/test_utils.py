"""The parts of MXNet's ``mx.test_utils`` that user code and MXNet-style test suites
reach for: picking a device (``list_gpus``, ``default_context``,
``set_default_context``), comparing results with per-dtype tolerances
(``almost_equal``, ``assert_almost_equal``, ``same``, ``assert_exception``), comparing
two optimizers (``compare_optimizer``, ``compare_ndarray_tuple``), random
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
from mxcore.ops.creation import array  # noqa: F401  (MXNet's star import hands tests `array`)

__all__ = ["environment", "is_aarch64_run", "list_gpus", "default_context", "set_default_context",
           "default_rtols", "default_atols", "almost_equal", "assert_almost_equal", "same",
           "assert_exception", "default_dtype", "np_reduce", "random_sample", "rand_shape_2d",
           "rand_shape_3d", "rand_shape_nd", "random_arrays", "rand_ndarray",
           "discard_stderr", "retry", "use_np", "chi_square_check", "verify_generator",
           "gen_buckets_probs_with_ppf", "mean_check", "var_check", "compare_ndarray_tuple",
           "compare_optimizer", "array",
           # MXNet's test_utils has no __all__: `from mxnet.test_utils import *` hands
           # MXNet-style test files these modules too
           "mx", "np", "os", "sys"]


def is_aarch64_run() -> bool:
    """Whether this process runs on a 64-bit ARM host (MXNet's tests skip known
    aarch64 failures with it)."""
    import platform
    return platform.machine().lower() in ("aarch64", "arm64")


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


def _by_name_and_dtype(table: dict) -> dict:
    """The table keyed by dtype name and by numpy dtype (MXNet's tests use the latter)."""
    import hal
    return {**table, **{hal.to_dtype(name): v for name, v in table.items()}}


def default_rtols() -> dict:
    """dtype (name or numpy dtype) -> default relative tolerance (0 for integers and
    bool)."""
    return _by_name_and_dtype(_RTOL)


def default_atols() -> dict:
    """dtype (name or numpy dtype) -> default absolute tolerance (0 for integers and
    bool)."""
    return _by_name_and_dtype(_ATOL)


def _host(x) -> np.ndarray:
    """``x`` on the host, read in place where it lives there (comparisons only read:
    copying every tensor of a large model cost more than comparing it)."""
    if isinstance(x, numbers.Number):
        return np.asarray(x)
    if isinstance(x, mx.nd.NDArray):
        x.wait_to_read()
        return x._host()
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


#: elements per chunk of the quick closeness test (float64 temporaries stay in cache)
_CHUNK = 1 << 15


def _surely_close(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> bool:
    """A quick sufficient test: True only if a and b (float arrays of one shape) are
    finite where they differ and ``|a - b| <= atol + rtol*|b|`` everywhere, computed in
    float64 chunk by chunk; anything else (NaN, inf, broadcasting, bfloat16) is left
    to numpy's allclose.  Comparing whole float64 copies cost most of a
    large-tensor optimizer comparison."""
    if a.shape != b.shape or a.dtype.kind != "f" or b.dtype.kind != "f":
        return False
    fa, fb = a.reshape(-1), b.reshape(-1)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: left to allclose
        return all(_chunk_close(fa[lo:lo + _CHUNK], fb[lo:lo + _CHUNK], rtol, atol)
                   for lo in range(0, fa.size, _CHUNK))


def _chunk_close(xa: np.ndarray, xb: np.ndarray, rtol: float, atol: float) -> bool:
    d = np.subtract(xa, xb, dtype=np.float64)
    np.abs(d, out=d)
    bound = np.abs(xb, dtype=np.float64)
    bound *= rtol
    bound += atol
    return bool((d <= bound).all()) and d.max(initial=0.0) != np.inf


def almost_equal(a: Any, b: Any, rtol=None, atol=None, equal_nan: bool = False) -> bool:
    """Whether ``|a - b| <= atol + rtol * |b|`` everywhere (numpy's allclose; NDArrays,
    numpy arrays or numbers).  As in MXNet, the default tolerances here are
    float64's whatever the dtypes (``assert_almost_equal`` picks them by dtype)."""
    a, b = _host(a), _host(b)
    rtol = _RTOL["float64"] if rtol is None else rtol
    atol = _ATOL["float64"] if atol is None else atol
    if _surely_close(a, b, rtol, atol):
        return True
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
    if _surely_close(a, b, rtol, atol):
        return
    x, y = _compare(a, b)
    if np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan):
        return
    x, y = np.broadcast_arrays(x, y)
    with np.errstate(invalid="ignore"):  # inf - inf: a NaN, handled below
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


def compare_ndarray_tuple(t1, t2, rtol=None, atol=None) -> None:
    """Assert that two optimizer states are almost equal: NDArrays, or tuples of
    them, nested (``None`` on either side is not compared)."""
    if t1 is None or t2 is None:
        return
    if isinstance(t1, (tuple, list)):
        for s1, s2 in zip(t1, t2):
            compare_ndarray_tuple(s1, s2, rtol, atol)
    else:
        assert_almost_equal(t1, t2, rtol=rtol, atol=atol)


#: storage types MXNet's optimizer tests name; mxcore arrays are dense, so all three
#: give dense arrays (see compare_optimizer)
_STYPES = ("default", "row_sparse", "csr")


def _uniform_pair(shape, dtype, stype: str):
    """A random uniform [0, 1] array on the default device and an independent copy
    (16-bit floats are drawn in float32 and rounded: several times faster than
    drawing below 1 in 16 bits, which tensors of millions of elements notice)."""
    if stype not in _STYPES:
        raise ValueError(f"storage type {stype!r} is not supported; expected one of {_STYPES}")
    dtype = np.dtype(dtype)
    draw = "float32" if dtype.itemsize < 4 else dtype
    b = mx.random.uniform(shape=shape, ctx=default_context(), dtype=draw)
    if b.dtype != dtype:
        b = b.astype(dtype)
    return b.copyto(default_context()), b


def compare_optimizer(opt1, opt2, shape, dtype, w_stype: str = "default",
                      g_stype: str = "default", rtol=1e-4, atol=1e-5,
                      compare_states: bool = True, ntensors: int = 1) -> None:
    """Run one update of ``opt1`` (a reference) and ``opt2`` from the same random
    weight and gradient and assert that the weights, and with ``compare_states``
    the states before and after, agree (MXNet's ``test_utils.compare_optimizer``).

    ``shape`` may be a list of shapes: then ``opt2`` updates all ``ntensors``
    weights in one call (its multi-tensor path) and ``opt1`` one by one.

    mxcore stores every array dense: the ``row_sparse`` and ``csr`` storage types
    give dense arrays with every row present, so they compare the dense update
    (MXNet's lazy updates of the rows a sparse gradient holds have no dense
    counterpart here)."""
    if not isinstance(shape, list):
        if ntensors != 1:
            raise ValueError("ntensors > 1 needs a list of shapes")
        w1, w2 = _uniform_pair(shape, dtype, w_stype)
        g1, g2 = _uniform_pair(shape, dtype, g_stype)
        state1 = opt1.create_state_multi_precision(0, w1)
        state2 = opt2.create_state_multi_precision(0, w2)
        if compare_states:
            compare_ndarray_tuple(state1, state2)
        opt1.update_multi_precision(0, w1, g1, state1)
        opt2.update_multi_precision(0, w2, g2, state2)
        if compare_states:
            compare_ndarray_tuple(state1, state2, rtol=rtol, atol=atol)
        assert_almost_equal(w1, w2, rtol=rtol, atol=atol)
        return
    pairs = [(_uniform_pair(s, dtype, w_stype), _uniform_pair(s, dtype, g_stype))
             for s in shape[:ntensors]]
    w1 = tuple(w for (w, _), _ in pairs)
    w2 = tuple(w for (_, w), _ in pairs)
    g1 = tuple(g for _, (g, _) in pairs)
    g2 = tuple(g for _, (_, g) in pairs)
    state2 = [opt2.create_state_multi_precision(0, w) for w in w2]
    opt2.update_multi_precision(list(range(ntensors)), w2, g2, state2)
    for i in range(ntensors):
        state1 = opt1.create_state_multi_precision(i, w1[i])
        opt1.update_multi_precision(i, w1[i], g1[i], state1)
        if compare_states:
            compare_ndarray_tuple(state1, state2[i], rtol, atol)
        compare_ndarray_tuple(w1[i], w2[i], rtol, atol)


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


# checking symbols: forward, backward and numeric gradients through an executor ---------------
def default_numeric_eps() -> Dict[np.dtype, float]:
    """Finite-difference steps per dtype (as MXNet's)."""
    return {np.dtype(np.float16): 1.0 / 2 ** 6, np.dtype(np.float32): 1.0 / 2 ** 9,
            np.dtype(np.float64): 1.0 / 2 ** 14}


def _as_dict(names: Sequence[str], values, what: str) -> Dict[str, Any]:
    if values is None:
        return {}
    if isinstance(values, dict):
        unknown = [k for k in values if k not in names]
        if unknown:
            raise ValueError(f"{what} {unknown} are not in the symbol's {list(names)}")
        return dict(values)
    values = list(values)
    if len(values) != len(names):
        raise ValueError(f"{len(values)} {what} given for {list(names)}")
    return dict(zip(names, values))


def _nd(value, ctx, dtype) -> "mx.nd.NDArray":
    if isinstance(dtype, str) and dtype == "asnumpy":  # MXNet: keep each value's dtype
        dtype = value.dtype if isinstance(value, (np.ndarray, mx.nd.NDArray)) else None
    if isinstance(value, mx.nd.NDArray):
        return value.as_in_context(ctx).astype(dtype) if dtype is not None and \
            value.dtype != np.dtype(dtype) else value.as_in_context(ctx)
    return mx.nd.array(np.asarray(value), ctx=ctx, dtype=dtype)


def _bind(sym, location, aux_states, ctx, dtype, grad_req="null"):
    ctx = ctx if ctx is not None else default_context()
    args = {k: _nd(v, ctx, dtype) for k, v in
            _as_dict(sym.list_arguments(), location, "arguments").items()}
    aux = {k: _nd(v, ctx, dtype) for k, v in
           _as_dict(sym.list_auxiliary_states(), aux_states, "auxiliary states").items()}
    grads = None
    if grad_req != "null" and grad_req:
        reqs = grad_req if isinstance(grad_req, dict) else {k: grad_req for k in args}
        grads = {k: mx.nd.zeros(v.shape, ctx=ctx, dtype=v.dtype) for k, v in args.items()
                 if reqs.get(k, "null") != "null"}
    return sym.bind(ctx, args, args_grad=grads, grad_req=grad_req, aux_states=aux), args


def _expected_list(names, expected, what):
    return [expected[n] for n in names] if isinstance(expected, dict) else list(expected)


def simple_forward(sym, ctx=None, is_train: bool = False, **inputs):
    """The outputs of ``sym`` on numpy ``inputs`` (one array, or a list)."""
    exe, _ = _bind(sym, inputs, None, ctx, None)
    outputs = [o.asnumpy() for o in exe.forward(is_train=is_train)]
    return outputs[0] if len(outputs) == 1 else outputs


def check_symbolic_forward(sym, location, expected, rtol=None, atol=None, aux_states=None,
                           ctx=None, equal_nan: bool = False, dtype=np.float32):
    """Bind ``sym`` to ``location`` (a list in ``list_arguments`` order or a dict), run
    it forward (inference) and compare each output with ``expected``; the outputs."""
    exe, _ = _bind(sym, location, aux_states, ctx, dtype)
    outputs = [o.asnumpy() for o in exe.forward(is_train=False)]
    want = _expected_list(sym.list_outputs(), expected, "outputs")
    for name, got, exp in zip(sym.list_outputs(), outputs, want):
        assert_almost_equal(got, exp, rtol, atol, names=(f"output {name}", "expected"),
                            equal_nan=equal_nan)
    return outputs


def check_symbolic_backward(sym, location, out_grads, expected, rtol=None, atol=None,
                            aux_states=None, grad_req="write", ctx=None, grad_stypes=None,
                            equal_nan: bool = False, dtype=np.float32):
    """Forward (training) then backward with ``out_grads``; compare the gradients of
    the arguments with ``expected`` (a list in argument order or a dict).  With
    ``grad_req='add'`` the gradients start from random values that ``expected`` must
    not include (as in MXNet's check).  Returns the gradients."""
    ctx = ctx if ctx is not None else default_context()
    exe, args = _bind(sym, location, aux_states, ctx, dtype, grad_req)
    reqs = grad_req if isinstance(grad_req, dict) else {k: grad_req for k in args}
    start = {}
    for name, g in exe.grad_dict.items():
        if g is not None and reqs.get(name) == "add":
            start[name] = np.random.normal(size=g.shape).astype(g.dtype)
            g[:] = start[name]
    outputs = exe.forward(is_train=True)
    if isinstance(out_grads, dict):
        out_grads = [out_grads[n] for n in sym.list_outputs()]
    elif out_grads is not None and not isinstance(out_grads, (list, tuple)):
        out_grads = [out_grads]
    heads = None if out_grads is None else [_nd(g, ctx, o.dtype)
                                            for g, o in zip(out_grads, outputs)]
    exe.backward(heads)
    names = sym.list_arguments()
    expected = dict(zip(names, expected)) if not isinstance(expected, dict) else expected
    grads = {}
    for name, exp in expected.items():
        g = exe.grad_dict.get(name)
        if g is None or reqs.get(name, "null") == "null":
            continue
        got = g.asnumpy()
        if name in start:
            got = got - start[name]
        grads[name] = got
        assert_almost_equal(got, np.asarray(exp), rtol, atol,
                            names=(f"gradient of {name}", "expected"), equal_nan=equal_nan)
    return grads


def check_numeric_gradient(sym, location, aux_states=None, numeric_eps=None, rtol=None,
                           atol=None, grad_nodes=None, use_forward_train: bool = True,
                           ctx=None, grad_stype_dict=None, dtype=np.float32):
    """Compare the symbolic gradients of ``sum(outputs * random projections)`` with
    central finite differences, for the arguments in ``grad_nodes`` (all by default)."""
    ctx = ctx if ctx is not None else default_context()
    names = sym.list_arguments()
    loc = {k: np.asarray(v.asnumpy() if isinstance(v, mx.nd.NDArray) else v, dtype=dtype)
           for k, v in _as_dict(names, location, "arguments").items()}
    aux = {k: np.asarray(v.asnumpy() if isinstance(v, mx.nd.NDArray) else v, dtype=dtype)
           for k, v in _as_dict(sym.list_auxiliary_states(), aux_states, "aux").items()}
    if grad_nodes is None:
        nodes = [n for n in names if np.issubdtype(loc[n].dtype, np.floating)]
    elif isinstance(grad_nodes, dict):
        nodes = [n for n, req in grad_nodes.items() if req != "null"]
    else:
        nodes = list(grad_nodes)
    reqs = {n: ("write" if n in nodes else "null") for n in names}
    exe, _ = _bind(sym, loc, aux, ctx, dtype, reqs)
    outputs = exe.forward(is_train=use_forward_train)
    rng = np.random.default_rng(0)
    proj = [rng.uniform(-1, 1, o.shape).astype(o.dtype) for o in outputs]
    exe.backward([mx.nd.array(p, ctx=ctx, dtype=p.dtype) for p in proj])
    symbolic = {n: exe.grad_dict[n].asnumpy() for n in nodes}
    eps = numeric_eps if numeric_eps is not None else \
        default_numeric_eps().get(np.dtype(dtype), 1e-4)

    def value(name, arr):
        probe, _ = _bind(sym, {**loc, name: arr}, {k: v.copy() for k, v in aux.items()},
                         ctx, dtype)
        outs = probe.forward(is_train=use_forward_train)
        return sum(float(np.sum(o.asnumpy().astype(np.float64) * p)) for o, p in
                   zip(outs, proj))

    for name in nodes:
        base = loc[name]
        numeric = np.zeros(base.shape, dtype=np.float64)
        flat = numeric.reshape(-1)
        for i in range(base.size):
            plus, minus = base.copy(), base.copy()
            plus.reshape(-1)[i] += eps
            minus.reshape(-1)[i] -= eps
            flat[i] = (value(name, plus) - value(name, minus)) / (2 * eps)
        assert_almost_equal(symbolic[name], numeric, rtol if rtol is not None else 1e-2,
                            atol if atol is not None else 1e-4,
                            names=(f"symbolic gradient of {name}", "numeric gradient"))


def check_consistency(sym, ctx_list, scale: float = 1.0, grad_req="write", arg_params=None,
                      aux_params=None, tol=None, raise_on_err: bool = True, ground_truth=None,
                      equal_nan: bool = False, use_uniform: bool = False,
                      rand_type=np.float64):
    """Run ``sym`` (or one symbol per entry) on every entry of ``ctx_list`` (dicts with
    ``ctx``, input shapes and an optional ``type_dict``) on the same random data, and
    compare outputs and gradients with the most precise entry's.  Returns the outputs."""
    syms = sym if isinstance(sym, (list, tuple)) else [sym] * len(ctx_list)
    tols = {np.dtype(np.float16): 1e-1, np.dtype(np.float32): 1e-3,
            np.dtype(np.float64): 1e-5, np.dtype(np.uint8): 0, np.dtype(np.int32): 0,
            np.dtype(np.int64): 0}
    if isinstance(tol, numbers.Number):
        tols = {k: tol for k in tols}
    elif isinstance(tol, dict):
        tols.update({np.dtype(k): v for k, v in tol.items()})
    exes = []
    for s, spec in zip(syms, ctx_list):
        spec = dict(spec)
        ctx = spec.pop("ctx", default_context())
        types = spec.pop("type_dict", {})
        exes.append(s.simple_bind(ctx, grad_req=grad_req, type_dict=types, **spec))
    rng = np.random.default_rng(0)
    first = exes[0]
    values = {}
    for name, arr in first.arg_dict.items():
        draw = rng.uniform(-1, 1, arr.shape) if use_uniform else rng.normal(size=arr.shape)
        values[name] = (arg_params or {}).get(name, draw * scale).astype(rand_type)
    aux_values = {name: (aux_params or {}).get(name, np.zeros(arr.shape))
                  for name, arr in first.aux_dict.items()}
    results = []
    for exe in exes:
        for name, arr in exe.arg_dict.items():
            arr[:] = mx.nd.array(np.asarray(values[name]).astype(arr.dtype), ctx=arr.context)
        for name, arr in exe.aux_dict.items():
            arr[:] = mx.nd.array(np.asarray(aux_values[name]).astype(arr.dtype),
                                 ctx=arr.context)
        outs = exe.forward(is_train=grad_req != "null")
        if grad_req != "null":
            exe.backward([mx.nd.ones(o.shape, ctx=o.context, dtype=o.dtype) for o in outs])
        results.append(([o.asnumpy() for o in outs],
                        {k: g.asnumpy() for k, g in exe.grad_dict.items() if g is not None}))
    precision = [max(np.dtype(a.dtype).itemsize for a in e.arg_dict.values()) for e in exes]
    gt = ground_truth if ground_truth is not None else results[int(np.argmax(precision))]
    for exe, (outs, grads) in zip(exes, results):
        for got, want in zip(outs, gt[0]):
            t = tols.get(np.dtype(got.dtype), 1e-3)
            try:
                assert_almost_equal(got, want.astype(got.dtype), t, t, equal_nan=equal_nan)
            except AssertionError:
                if raise_on_err:
                    raise
        for name, g in grads.items():
            t = tols.get(np.dtype(g.dtype), 1e-3)
            try:
                assert_almost_equal(g, gt[1][name].astype(g.dtype), t, t,
                                    names=(f"gradient of {name}", "ground truth"),
                                    equal_nan=equal_nan)
            except AssertionError:
                if raise_on_err:
                    raise
    return [r[0] for r in results]


def assert_almost_equal_ignore_nan(a: Any, b: Any, rtol=None, atol=None,
                                   names=("a", "b")) -> None:
    """``assert_almost_equal`` where elements that are NaN in either array are left
    out (set to 0 in both)."""
    a, b = (np.array(x, copy=True) for x in np.broadcast_arrays(_host(a), _host(b)))
    nan = np.isnan(a) | np.isnan(b)
    a[nan] = 0
    b[nan] = 0
    assert_almost_equal(a, b, rtol, atol, names)


__all__ += ["assert_almost_equal_ignore_nan"]
__all__ += ["default_numeric_eps", "simple_forward", "check_symbolic_forward",
            "check_symbolic_backward", "check_numeric_gradient", "check_consistency"]


def assert_almost_equal_with_err(a: Any, b: Any, rtol=None, atol=None, etol=None,
                                 names=("a", "b"), equal_nan: bool = False,
                                 mismatches=(10, 10)) -> None:
    """``assert_almost_equal`` that tolerates a fraction ``etol`` of elements outside
    ``atol + rtol * |b|`` (low-precision results where a few elements round the other
    way); ``etol`` None or 0 is ``assert_almost_equal``."""
    if not etol:
        assert_almost_equal(a, b, rtol, atol, names, equal_nan, mismatches=mismatches)
        return
    x, y = _host(a), _host(b)
    rtol, atol = _tols(x, y, rtol, atol)
    x, y = _compare(x, y)
    close = np.isclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan)
    err = 1 - np.count_nonzero(close) / max(close.size, 1)
    if err > etol:
        # the worst elements, as assert_almost_equal names them
        try:
            assert_almost_equal(x, y, rtol, atol, names, equal_nan, mismatches=mismatches)
        except AssertionError as e:
            raise AssertionError(f"error rate {err:.6f} exceeds etol={etol:g}; {e}") from None


def same_symbol_structure(sym1: "mx.sym.Symbol", sym2: "mx.sym.Symbol") -> bool:
    """Whether the nodes of two symbols' graphs (as ``tojson`` lists them, in order) run
    the same operators; names and attributes are not compared."""
    import json
    nodes1 = json.loads(sym1.tojson())["nodes"]
    nodes2 = json.loads(sym2.tojson())["nodes"]
    return all(n1["op"] == n2["op"] for n1, n2 in zip(nodes1, nodes2))


from mxcore.io.io import DataIter as _DataIter  # noqa: E402


class DummyIter(_DataIter):
    """An endless iterator giving the first batch of ``real_iter`` again and again
    (speed tests, calibration on one batch); it never raises StopIteration."""

    def __init__(self, real_iter: "mx.io.DataIter"):
        super().__init__(getattr(real_iter, "batch_size", 0))
        self.real_iter = real_iter
        self.provide_data = real_iter.provide_data
        self.provide_label = real_iter.provide_label
        self.the_batch = next(real_iter)

    def next(self) -> "mx.io.DataBatch":
        return self.the_batch


_MODEL_URL = "http://data.mxnet.io/models/imagenet/"
# MXNet's model files by name: {name: (symbol file, parameter file)} under _MODEL_URL
_MODEL_FILES = {
    f"imagenet1k-resnet-{n}": (f"resnet/{n}-layers/resnet-{n}-symbol.json",
                               f"resnet/{n}-layers/resnet-{n}-0000.params")
    for n in (18, 34, 50, 101, 152)}
_MODEL_FILES["imagenet1k-inception-bn"] = ("inception-bn/Inception-BN-symbol.json",
                                           "inception-bn/Inception-BN-0126.params")


def download_model(model_name: str, dst_dir: str = "./",
                   meta_info: Optional[Dict[str, Dict[str, str]]] = None) -> Tuple[Any, int]:
    """Downloads a model's ``-symbol.json`` and ``-0000.params`` into ``dst_dir``;
    returns ``(prefix, 0)`` for ``mx.model.load_checkpoint``, or ``(None, 0)`` for a name
    neither ``meta_info`` ({name: {'symbol': url, 'params': url}}) nor MXNet's model
    list knows."""
    import urllib.request
    if meta_info is None:
        meta_info = {k: {"symbol": _MODEL_URL + s, "params": _MODEL_URL + p}
                     for k, (s, p) in _MODEL_FILES.items()}
    if model_name not in meta_info:
        return None, 0
    os.makedirs(dst_dir, exist_ok=True)
    prefix = os.path.join(dst_dir, model_name)
    for key, suffix in (("symbol", "-symbol.json"), ("params", "-0000.params")):
        if not os.path.exists(prefix + suffix):
            urllib.request.urlretrieve(meta_info[model_name][key], prefix + suffix)
    return prefix, 0


__all__ += ["assert_almost_equal_with_err", "same_symbol_structure", "DummyIter",
            "download_model"]
