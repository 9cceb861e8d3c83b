"""The CPU device type: host memory, numpy arrays, synchronous execution.

BLAS threads: unless a thread count is set (``MXCORE_CPU_THREADS``,
``set_num_threads``), a matrix product of fewer than ``PARALLEL_GRAIN`` multiply-adds
runs on one thread of numpy's BLAS, and a larger one on one thread per grain, at most as
many as the cores other processes leave free (``cpu_load.FreeCores``) and the library's
own count.  A second thread halves a 64x784x256 product on a quiet machine, while a BLAS
worker that waits for a busy core (other processes, data-loading workers) costs more than
the whole product: on a 2-core host with one competing busy process the MNIST MLP's step
ran 2.8x slower on two threads than on one.  Where the load is unknown (no /proc/stat,
the first quarter second), products under ``SMALL_PRODUCT`` run on one thread and larger
ones on the library's count.
"""
from __future__ import annotations

import ctypes
import itertools
import os
import resource
import sys
import threading
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

import hal
from mxcore_cpu.cpu_load import FreeCores

# m*n*k per BLAS thread (about 40 us of single-threaded work): a product smaller than one
# grain runs on one thread, 64x784x256 (12.8M) on up to six, 1024^3 on every free core
PARALLEL_GRAIN = 1 << 21
# while the load is unknown: m*n*k below which a product runs on one BLAS thread (about
# half a millisecond of single-threaded work)
SMALL_PRODUCT = 1 << 25
# free cores (see cpu_load) round up from this fraction: a core that others keep 70% busy
# would stall the BLAS worker waiting for it
_FREE_ROUNDING = 0.3


class NumpyOpenBLAS:
    """ctypes entry points of the OpenBLAS library numpy itself calls: its
    thread count, and the level-1 ``axpy``/``scal`` numpy has no function for
    (the optimizers' in-place updates run on the same BLAS runtime as the
    products, never on a second one such as SciPy's)."""

    def __init__(self, path: str):
        self.lib = lib = ctypes.CDLL(path)  # already loaded: the same handle
        for prefix, suffix in itertools.product(("", "scipy_"), ("", "64_", "_64")):
            if hasattr(lib, f"{prefix}openblas_get_num_threads{suffix}"):
                break
        else:
            raise OSError(f"{path}: no openblas_get_num_threads")
        self._affixes = prefix, suffix
        # the suffixed builds (numpy's wheels) take 64-bit integers
        self._int = ctypes.c_int64 if suffix else ctypes.c_int
        self.set_num_threads = self._fn("openblas_set_num_threads", [ctypes.c_int])
        self.get_num_threads = self._fn("openblas_get_num_threads", [], ctypes.c_int)
        self._level1 = None

    def _fn(self, name, argtypes, restype=None):
        prefix, suffix = self._affixes
        fn = getattr(self.lib, f"{prefix}{name}{suffix}")
        fn.argtypes, fn.restype = argtypes, restype
        return fn

    def level1(self) -> Dict[str, Tuple[Callable, Callable]]:
        """dtype char ("f", "d") -> (axpy(n, a, x_ptr, y_ptr), scal(n, a, x_ptr)),
        unit strides; empty when a call on a small vector does not give numpy's
        result (the library is not what its symbols suggest)."""
        if self._level1 is None:
            self._level1 = {}
            try:
                for char, scalar in (("f", ctypes.c_float), ("d", ctypes.c_double)):
                    letter = "s" if char == "f" else "d"
                    i, p = self._int, ctypes.c_void_p
                    ax = self._fn(f"cblas_{letter}axpy", [i, scalar, p, i, p, i])
                    sc = self._fn(f"cblas_{letter}scal", [i, scalar, p, i])
                    pair = (lambda n, a, x, y, ax=ax: ax(n, a, x, 1, y, 1),
                            lambda n, a, x, sc=sc: sc(n, a, x, 1))
                    if self._self_test(np.dtype(char), *pair):
                        self._level1[char] = pair
            except AttributeError:
                self._level1 = {}
        return self._level1

    @staticmethod
    def _self_test(dtype, axpy, scal) -> bool:
        x = np.array([1.0, 2.0, 3.0], dtype)
        y = np.array([10.0, 20.0, 30.0, 7.0], dtype)   # y[3]: must stay untouched
        axpy(3, 2.0, x.ctypes.data, y.ctypes.data)
        scal(2, 0.5, y.ctypes.data)
        return y.tolist() == [6.0, 12.0, 36.0, 7.0]


_OPENBLAS: Any = None  # NumpyOpenBLAS once found, False: none


def numpy_openblas() -> Optional[NumpyOpenBLAS]:
    """The OpenBLAS numpy calls, or None (another BLAS, or several OpenBLAS
    libraries and none of them numpy's).  Looked up once, through threadpoolctl."""
    global _OPENBLAS
    if _OPENBLAS is None:
        _OPENBLAS = False
        try:
            from threadpoolctl import threadpool_info
            libs = [i["filepath"] for i in threadpool_info()
                    if i.get("internal_api") == "openblas"]
            # numpy's wheels carry their own OpenBLAS (numpy.libs/, numpy/.dylibs/); a numpy
            # built against a system OpenBLAS shares it with scipy: then it is the only one
            pkg = os.path.realpath(os.path.dirname(np.__file__))
            own = [p for p in libs
                   if os.path.realpath(p).startswith((pkg + os.sep, pkg + ".libs"))]
            paths = own or (libs if len(libs) == 1 else [])
            if len(paths) == 1:
                _OPENBLAS = NumpyOpenBLAS(paths[0])
        except Exception:  # pragma: no cover - no usable OpenBLAS: leave it to numpy
            _OPENBLAS = False
    return _OPENBLAS or None


class ProductThreads:
    """Puts numpy's BLAS on one thread for small products and back to its thread count
    for large ones, or, while an engine runs several CPU kernels at once (``share``),
    to that count divided among them, so that two products side by side do not each
    start a thread per core.  Called before every product with its m*n*k; it calls
    into the BLAS library only when the wanted count changes (an MLP's products are all
    small: once in all), and never through threadpoolctl, whose look-up of the loaded
    libraries costs ~0.2 ms (done once, on the first change)."""

    def __init__(self, load: Optional[FreeCores] = None):
        self.auto = True        # False while a thread count is set explicitly
        self._set_to = None     # the count we set; None: the library's own
        self._saved = 1         # the library's own count (before we changed it)
        self._large = None      # the count for large products; None: the library's own
        self._fns = None        # (set, get), looked up on first use; False: none
        self._lock = threading.Lock()
        self.load = FreeCores() if load is None else load

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self.load.reset()

    def __call__(self, mnk: int) -> None:
        if not self.auto:  # a count set explicitly (or no BLAS to steer): nothing to do
            return
        want = 1 if mnk < PARALLEL_GRAIN else self._wide(mnk)
        if want != self._set_to:
            self._apply(want)

    def _wide(self, mnk: int) -> Optional[int]:
        """The count for a product of at least one grain: one thread per grain, at most
        the free cores, the library's own count and the engine's share (``_large``)."""
        free = self.load.free()
        if free is None:  # load unknown: the size rule alone
            return 1 if mnk < SMALL_PRODUCT else self._large
        if self._set_to is None:  # the library's own count is what it has now
            fns = self._blas()
            own = fns[1]() if fns else 1
        else:
            own = self._saved
        n = min(mnk // PARALLEL_GRAIN, int(free + _FREE_ROUNDING), own)
        if self._large is not None:
            n = min(n, self._large)
        return max(1, n)

    def _blas(self):
        if self._fns is None:
            blas = numpy_openblas()
            self._fns = (blas.set_num_threads, blas.get_num_threads) if blas else False
        return self._fns

    def _apply(self, want: Optional[int]) -> None:
        with self._lock:
            if want == self._set_to or not self.auto:
                return
            fns = self._blas()
            if not fns:
                self.auto = False  # no OpenBLAS of numpy's to steer: leave threads alone
                return
            set_fn, get_fn = fns
            now = get_fn()
            if self._set_to is None:
                self._saved = now  # the library's own count: what "large" goes back to
            elif now != self._set_to:
                self._set_to = None  # someone else changed it since: leave theirs alone
                return
            target = self._saved if want is None else want
            if target != now:
                set_fn(target)
            self._set_to = want

    def share(self, kernels: int) -> None:
        """``kernels`` CPU kernels may run at once (an engine's workers): large products
        then use the library's count divided among them (at least one thread)."""
        with self._lock:
            fns = self._blas()
            if not fns:
                return
            own = self._saved if self._set_to is not None else fns[1]()
        self._large = None if kernels <= 1 or own <= 1 else max(1, own // kernels)

    def release(self) -> None:
        """Back to the thread count numpy's BLAS had before (an explicit thread count is
        about to be set), unless someone else changed it since."""
        with self._lock:
            if self._set_to is not None:
                set_fn, get_fn = self._fns
                if get_fn() == self._set_to and self._saved != self._set_to:
                    set_fn(self._saved)
                self._set_to = None


PRODUCT_THREADS = ProductThreads()
if hasattr(os, "register_at_fork"):  # a fork (data-loading workers) while the lock is held
    os.register_at_fork(after_in_child=PRODUCT_THREADS._after_fork)


def product_threads(xp) -> Callable[[int], None]:
    """The hook kernels call with a product's m*n*k before computing it (a
    no-op for array modules other than numpy)."""
    return PRODUCT_THREADS if xp is np else (lambda mnk: None)


class CPUDevice(hal.DeviceType):
    kind = "cpu"
    xp = np
    host_memory = True
    # bfloat16 through ml_dtypes (products and float32-only library calls compute in float32)
    dtypes = hal.ALL_DTYPES
    description = "host CPU (numpy)"

    def __init__(self):
        self._limiter = None
        threads = os.environ.get("MXCORE_CPU_THREADS")
        if threads:
            try:
                self.set_num_threads(int(threads))
            except ValueError:
                raise ValueError(f"MXCORE_CPU_THREADS must be an integer, got {threads!r}") \
                    from None

    def set_num_threads(self, n: Optional[int]) -> None:
        """Threads the BLAS libraries use for every product (process-wide);
        ``None`` goes back to the default: one thread for products under
        ``SMALL_PRODUCT`` multiply-adds, the libraries' own count above."""
        from threadpoolctl import threadpool_limits
        if n is None:
            if self._limiter is not None:
                self._limiter.restore_original_limits()  # the counts before the first set
                self._limiter = None
            PRODUCT_THREADS.auto = True
            return
        if n < 1:
            raise ValueError(f"the CPU device needs at least one thread, got {n}")
        PRODUCT_THREADS.auto = False
        PRODUCT_THREADS.release()
        limiter = threadpool_limits(limits=n, user_api="blas")
        if self._limiter is None:
            self._limiter = limiter

    def set_concurrency(self, kernels: int) -> None:
        PRODUCT_THREADS.share(kernels)

    def num_threads(self) -> int:
        from threadpoolctl import threadpool_info
        counts = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
        return max(counts) if counts else 1

    def availability(self) -> Tuple[bool, str]:
        return True, ""

    def device_count(self) -> int:
        return 1

    def check_index(self, index: int) -> None:
        # MXNet accepts cpu(i) for any i: every CPU "device" is the host.
        if index < 0:
            raise hal.DeviceUnavailableError(f"device cpu:{index}: index must be >= 0")

    def allocate(self, index: int, shape, dtype) -> np.ndarray:
        return np.empty(shape, dtype=dtype)

    def from_host(self, index: int, array: np.ndarray) -> np.ndarray:
        return np.array(array, copy=True, order="C")

    def to_host(self, index: int, array: Any) -> np.ndarray:
        return array

    def memory_stats(self, index: int) -> Dict[str, int]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is KiB on Linux
        stats = {"peak_rss_bytes": usage.ru_maxrss * scale}
        try:
            with open("/proc/self/statm") as f:
                stats["rss_bytes"] = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            pass
        return stats

    def properties(self, index: int) -> Dict[str, Any]:
        return {**super().properties(index), "cpu_count": os.cpu_count(),
                "blas_threads": self.num_threads(), "numpy": np.__version__}
