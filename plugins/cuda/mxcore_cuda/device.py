"""The "cuda" device type: CuPy arrays on NVIDIA GPUs, or (with
``MXCORE_CUDA_INTERPRET=1``) host numpy arrays for Triton's interpreter."""
from __future__ import annotations

import os
import threading
from typing import Any, Dict, Tuple

import numpy as np

import hal
from mxcore_cuda import staging

_INSTALL_HINT = "pip install 'mxcore-cuda[cuda12]' (or [cuda13])"


def _cupy():
    import cupy
    return cupy


class CUDAStream(hal.Stream):
    """A CuPy stream; ``with stream:`` makes it current for CuPy work."""

    def __init__(self, device: hal.Device, stream):
        super().__init__(device)
        self.cupy_stream = stream

    def synchronize(self) -> None:
        self.cupy_stream.synchronize()

    def __enter__(self):
        self.cupy_stream.__enter__()
        return self

    def __exit__(self, *exc):
        self.cupy_stream.__exit__(*exc)
        return False


class CUDAEvent(hal.Event):
    def __init__(self, device: hal.Device, event):
        super().__init__(device)
        self.cupy_event = event

    def record(self, stream: hal.Stream | None = None) -> None:
        self.cupy_event.record(getattr(stream, "cupy_stream", None))

    def synchronize(self) -> None:
        self.cupy_event.synchronize()

    def query(self) -> bool:
        return bool(self.cupy_event.done)


class CupyGenerator:
    """cupy.random.Generator plus ``permutation`` (which the CPU kernels' shuffle
    uses and CuPy's Generator lacks) and ``host``, a numpy generator seeded alike
    (seeds for the Triton random kernels)."""

    def __init__(self, seed=None):
        self._rng = _cupy().random.default_rng(seed)
        # a host-side stream for seeds of Triton's counter-based sampling kernels:
        # drawing one from the CuPy generator would synchronise with the device
        self.host = np.random.default_rng(seed)

    def __getattr__(self, name):
        return getattr(self._rng, name)

    def permutation(self, n: int):
        return _cupy().argsort(self._rng.random(n))


class CUDADevice(hal.DeviceType):
    """NVIDIA GPUs through CuPy (memory, streams, cuBLAS) and Triton (kernels)."""

    kind = "cuda"
    host_memory = False
    # bfloat16 through ml_dtypes, which CuPy (14+) understands
    dtypes = hal.ALL_DTYPES
    description = ("NVIDIA GPU: CuPy arrays; Triton kernels (priority 10), CuPy/cuBLAS "
                   "array-module fallbacks (priority -10)")

    def __init__(self):
        self._avail: Tuple[bool, str] | None = None
        self._generators: Dict[int, Any] = {}
        self._lock = threading.Lock()

    @property
    def xp(self):  # lazily: importing cupy costs ~0.25 s
        return _cupy()

    # availability -----------------------------------------------------------------------
    def availability(self) -> Tuple[bool, str]:
        if self._avail is None:
            self._avail = self._check()
        return self._avail

    @staticmethod
    def _check() -> Tuple[bool, str]:
        try:
            cupy = _cupy()
        except ImportError:
            return False, f"CuPy is not installed ({_INSTALL_HINT})"
        except Exception as exc:  # a broken install must not break mxcore
            return False, f"CuPy failed to import ({type(exc).__name__}: {exc})"
        try:
            version = f"cupy {cupy.__version__}"
            try:
                n = cupy.cuda.runtime.getDeviceCount()
            except Exception as exc:
                text = f"{type(exc).__name__}: {exc}"
                if "NoDevice" in text:
                    return False, f"no CUDA GPU found ({version}: {text})"
                if "InsufficientDriver" in text or "libcuda" in text or "driver" in text.lower():
                    return False, (f"CUDA driver not found or too old for this CuPy "
                                   f"({version}: {text})")
                return False, f"CUDA runtime error ({version}: {text})"
            if n <= 0:
                return False, f"no CUDA GPU found ({version}: getDeviceCount() == 0)"
            if not cupy.cuda.is_available():
                return False, f"cupy.cuda.is_available() is False ({version})"
            return True, ""
        except Exception as exc:
            return False, f"CUDA check failed ({type(exc).__name__}: {exc})"

    def device_count(self) -> int:
        if not self.availability()[0]:
            return 0
        try:
            return int(_cupy().cuda.runtime.getDeviceCount())
        except Exception:
            return 0

    # memory -------------------------------------------------------------------------------
    def allocate(self, index: int, shape, dtype):
        cupy = _cupy()
        with cupy.cuda.Device(index):
            return cupy.empty(shape, dtype=dtype)

    def from_host(self, index: int, array: np.ndarray):
        cupy = _cupy()
        host = np.ascontiguousarray(array)
        with cupy.cuda.Device(index):
            if host.nbytes <= staging.MAX_BYTES:  # batches, small tables: no wait
                return staging.upload(host)
            return cupy.array(host, copy=True)

    def to_host(self, index: int, array) -> np.ndarray:
        return _cupy().asnumpy(array)

    def memory_stats(self, index: int) -> Dict[str, int]:
        cupy = _cupy()
        with cupy.cuda.Device(index):
            pool = cupy.get_default_memory_pool()
            free, total = cupy.cuda.runtime.memGetInfo()
            return {"pool_used_bytes": int(pool.used_bytes()),
                    "pool_total_bytes": int(pool.total_bytes()),
                    "device_free_bytes": int(free), "device_total_bytes": int(total)}

    def empty_cache(self, index: int) -> None:
        # blocks still referenced (live arrays, the staging ring's buffers) stay
        cupy = _cupy()
        with cupy.cuda.Device(index):
            cupy.get_default_memory_pool().free_all_blocks()
            cupy.get_default_pinned_memory_pool().free_all_blocks()

    # ordering -----------------------------------------------------------------------------
    def synchronize(self, index: int) -> None:
        _cupy().cuda.Device(index).synchronize()

    def stream(self, index: int) -> CUDAStream:
        cupy = _cupy()
        with cupy.cuda.Device(index):
            return CUDAStream(hal.Device(self.kind, index), cupy.cuda.Stream(non_blocking=True))

    def event(self, index: int) -> CUDAEvent:
        cupy = _cupy()
        with cupy.cuda.Device(index):
            return CUDAEvent(hal.Device(self.kind, index), cupy.cuda.Event())

    def capture(self, index: int, fn):
        """CuPy stream capture: ``fn`` runs on a capturing stream (CuPy and the Triton
        launches read the current stream), the captured graph replays on that stream."""
        cupy = _cupy()
        with cupy.cuda.Device(index):
            stream = cupy.cuda.Stream(non_blocking=True)
            cupy.cuda.Device(index).synchronize()
            with stream:
                stream.begin_capture()
                try:
                    fn()
                finally:
                    graph = stream.end_capture()

        def replay():
            with cupy.cuda.Device(index):
                graph.launch(stream)
                stream.synchronize()
        return replay

    # randomness ---------------------------------------------------------------------------
    def generator(self, index: int):
        gen = self._generators.get(index)
        if gen is None:
            with self._lock, _cupy().cuda.Device(index):
                gen = self._generators.setdefault(index, CupyGenerator())
        return gen

    def seed(self, index: int, seed: int) -> None:
        with _cupy().cuda.Device(index):
            self._generators[index] = CupyGenerator(seed)

    def host_seed(self, index: int) -> int:
        # the generator's host-side stream: drawing from CuPy's would wait for the GPU
        return int(self.generator(index).host.integers(0, 2**31 - 1))

    def properties(self, index: int) -> Dict[str, Any]:
        out = super().properties(index)
        try:
            cupy = _cupy()
            p = cupy.cuda.runtime.getDeviceProperties(index)
            name = p.get("name", b"")
            out.update(name=name.decode() if isinstance(name, bytes) else str(name),
                       compute_capability=f"{p.get('major')}.{p.get('minor')}",
                       total_memory_bytes=int(p.get("totalGlobalMem", 0)),
                       multiprocessors=int(p.get("multiProcessorCount", 0)),
                       cupy=cupy.__version__)
        except Exception as exc:
            out["error"] = f"{type(exc).__name__}: {exc}"
        return out


class InterpretedCUDADevice(hal.DeviceType):
    """``MXCORE_CUDA_INTERPRET=1``: a "cuda" device on host memory whose Triton
    kernels run in Triton's interpreter; for testing kernels without a GPU."""

    kind = "cuda"
    xp = np
    host_memory = True
    dtypes = hal.ALL_DTYPES
    description = ("Triton interpreter on the host CPU (MXCORE_CUDA_INTERPRET=1): numpy "
                   "arrays; Triton kernels (priority 10) run interpreted, other ops use the "
                   "CPU plugin's numpy kernels (priority -10); CuPy-only kernels are skipped "
                   "(the fallbacks are numpy, not cupy)")

    def availability(self) -> Tuple[bool, str]:
        return True, ""

    def device_count(self) -> int:
        return 1

    def from_host(self, index: int, array: np.ndarray) -> np.ndarray:
        return np.array(array, copy=True, order="C")

    def capture(self, index: int, fn):
        """Stands in for CUDA graph capture: nothing runs now (a stream capture only
        records), and replaying runs ``fn``, which launches the same kernels on the same
        memory slots, so everything around the capture (static buffers, the replay after
        the capture, copies out) is tested without a GPU."""
        self.captures = getattr(self, "captures", 0) + 1
        return fn

    def to_host(self, index: int, array) -> np.ndarray:
        return array

    def properties(self, index: int) -> Dict[str, Any]:
        import importlib.metadata as md
        try:
            triton_version = md.version("triton")
        except md.PackageNotFoundError:
            triton_version = None
        return {**super().properties(index), "interpreted": True, "triton": triton_version}

    def memory_stats(self, index: int) -> Dict[str, int]:
        # the "device" memory is the host's
        page = os.sysconf("SC_PAGE_SIZE")
        return {"device_free_bytes": os.sysconf("SC_AVPHYS_PAGES") * page,
                "device_total_bytes": os.sysconf("SC_PHYS_PAGES") * page}
