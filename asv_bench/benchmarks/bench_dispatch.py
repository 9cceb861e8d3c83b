"""Eager-dispatch benchmarks: the per-call cost of small ops, autograd, GEMM.

Small-array ops are dispatch-bound (the kernel itself is ~0.3 us in numpy), so
``time_add_small`` & co. measure mxcore's Python overhead: cache look-up,
engine push, NDArray wrapping and, when recording, the tape node.

Units: the dispatch-scale benchmarks (everything but ``MatMul``, ``DenseStep`` and
``PeakMem``) time a batch of ``CALLS = 1000`` calls, so **read their "ms" as
"us per call"** (1.20 ms = 1.20 us per call).  The batch is needed because the
installed asv_runner (0.3.2) times a single call per sample whenever a
benchmark class has a ``setup`` (its fix for asv#966: every call sees fresh
setup state), and one ~1 us call is dominated by timer overhead and cold
caches.  ``time_matmul`` times one ``dot`` per sample, ``time_dense_step`` one
layer step.

Every class is parametrised over the devices that are installed and available
on the machine running the benchmarks (``mxcore.available_devices()``, as
strings like ``"cpu:0"``); ``setup`` raises ``NotImplementedError`` (asv's way
to skip a parameter combination) when a device cannot be used after all.
Inputs are built in ``setup`` from a fixed seed, never inside ``time_*``.
"""
import numpy as np

import mxcore as mx
from hal import DeviceType
from mxcore.device import device_type
from mxcore.ops import elemwise as _elemwise


def _device_params():
    try:
        devs = [str(d) for d in mx.available_devices()]
    except Exception:  # a broken plugin must not hide the whole suite
        devs = []
    return devs or ["cpu:0"]


DEVICES = _device_params()
#: Calls per timed sample of the dispatch-scale benchmarks (ms read as us/call).
CALLS = 1000
_BATCH = range(CALLS)


def _device(spec):
    """The checked device for ``spec``; NotImplementedError (skip) if unusable."""
    try:
        return mx.device(spec)
    except Exception as exc:
        raise NotImplementedError(f"device {spec} unavailable: {exc}") from None


def _syncer(dev):
    """A no-argument callable waiting for ``dev``'s queued work, or None on
    synchronous host devices (the CPU: nothing to wait for)."""
    dt = device_type(dev)
    if dt.host_memory and type(dt).synchronize is DeviceType.synchronize:
        return None
    index = dev.index

    def sync():
        mx.nd.waitall()
        dt.synchronize(index)
    return sync


def _random(shape, seed=0, dtype=np.float32):
    return np.random.RandomState(seed).standard_normal(shape).astype(dtype)


def _array(host, dev):
    try:
        return mx.nd.array(host, ctx=dev)
    except Exception as exc:  # e.g. a GPU that fails at first allocation
        raise NotImplementedError(f"cannot allocate on {dev}: {exc}") from None


class _DeviceBench:
    params = [DEVICES]
    param_names = ["device"]

    def _setup_device(self, device):
        self.dev = _device(device)
        self.sync = _syncer(self.dev)


class AddSmall(_DeviceBench):
    """``c = a + b`` on 10x10 float32, 1000 calls: pure dispatch overhead."""

    def setup(self, device):
        self._setup_device(device)
        self.a = _array(_random((10, 10), 0), self.dev)
        self.b = _array(_random((10, 10), 1), self.dev)
        self.a + self.b  # resolve and cache the kernel outside the timing

    def time_add_small(self, device):
        a, b = self.a, self.b
        for _ in _BATCH:
            a + b
        if self.sync is not None:
            self.sync()


class AddRecording(_DeviceBench):
    """``c = a + b`` on 10x10 float32, 1000 calls, while ``autograd.record()``
    is active and ``a`` has a gradient attached: dispatch plus one tape node.
    The ``record()`` scope is entered in setup (left in teardown), so only
    the adds are timed."""

    def setup(self, device):
        self._setup_device(device)
        self.a = _array(_random((10, 10), 0), self.dev)
        self.b = _array(_random((10, 10), 1), self.dev)
        self.a.attach_grad()
        self.scope = mx.autograd.record()
        self.scope.__enter__()
        self.a + self.b

    def teardown(self, device):
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope.__exit__(None, None, None)
            self.scope = None

    def time_add_recording(self, device):
        a, b = self.a, self.b
        for _ in _BATCH:
            a + b
        if self.sync is not None:
            self.sync()


class UnarySmall(_DeviceBench):
    """``mx.nd.relu(a)`` on 10x10 float32, 1000 calls: the unary dispatch path."""

    def setup(self, device):
        self._setup_device(device)
        self.a = _array(_random((10, 10), 0), self.dev)
        mx.nd.relu(self.a)

    def time_unary_small(self, device):
        a, relu = self.a, mx.nd.relu
        for _ in _BATCH:
            relu(a)
        if self.sync is not None:
            self.sync()


class _AddOneOp(mx.operator.CustomOp):
    def forward(self, is_train, req, in_data, out_data, aux):
        self.assign(out_data[0], req[0], in_data[0] + 1)


@mx.operator.register("bench_add_one")
class _AddOneProp(mx.operator.CustomOpProp):
    def create_operator(self, ctx, shapes, dtypes):
        return _AddOneOp()


class CustomOpSmall(_DeviceBench):
    """``mx.nd.Custom(a, op_type='bench_add_one')`` on 10x10 float32, 1000 calls: a
    Python custom op (``mx.operator``) whose forward runs one core op; compare with
    AddSmall (one core op): the custom op's own cost is the difference."""

    def setup(self, device):
        self._setup_device(device)
        self.a = _array(_random((10, 10), 0), self.dev)
        mx.nd.Custom(self.a, op_type="bench_add_one")

    def time_custom_op_small(self, device):
        a, custom = self.a, mx.nd.Custom
        for _ in _BATCH:
            custom(a, op_type="bench_add_one")
        if self.sync is not None:
            self.sync()


class MatMul(_DeviceBench):
    """One ``mx.nd.dot(a, b)`` on n x n float32 (2 n^3 flops); waits for the
    result on asynchronous devices so the kernel time is included.  Timed per
    call (not batched): 1024 gives GFLOP/s = 2.147 / seconds."""

    params = [DEVICES, [64, 256, 1024]]
    param_names = ["device", "n"]

    def setup(self, device, n):
        self._setup_device(device)
        self.a = _array(_random((n, n), 0), self.dev)
        self.b = _array(_random((n, n), 1), self.dev)
        mx.nd.dot(self.a, self.b)
        if self.sync is not None:
            self.sync()

    def time_matmul(self, device, n):
        mx.nd.dot(self.a, self.b)
        if self.sync is not None:
            self.sync()


class BackwardSmall(_DeviceBench):
    """Record ``y = (a*b + a).sum()`` on 10x10 float32 (a, b with gradients)
    and run ``y.backward()``, 1000 times: a whole small forward+backward
    step (3 recorded ops, their gradient rules, gradient writes)."""

    def setup(self, device):
        self._setup_device(device)
        self.a = _array(_random((10, 10), 0), self.dev)
        self.b = _array(_random((10, 10), 1), self.dev)
        self.a.attach_grad()
        self.b.attach_grad()
        self._step()

    def _step(self):
        a, b = self.a, self.b
        with mx.autograd.record():
            y = (a * b + a).sum()
        y.backward()

    def time_backward_small(self, device):
        step = self._step
        for _ in _BATCH:
            step()
        if self.sync is not None:
            self.sync()


class DenseStep(_DeviceBench):
    """One recorded Dense layer (64 x 784 input, 256 units, relu) and its backward
    (weight and bias gradients), per call: ``fused`` runs ``FullyConnected(...,
    act_type="relu")`` (one op forward, one ``fully_connected_backward``),
    otherwise ``relu(FullyConnected(...))`` (the composed form: two ops forward,
    four backward).  The ratio is what the fused op saves on each device."""

    params = [DEVICES, [True, False]]
    param_names = ["device", "fused"]

    def setup(self, device, fused):
        self._setup_device(device)
        self.x = _array(_random((64, 784), 0), self.dev)
        self.w = _array(_random((256, 784), 1) * 0.05, self.dev)
        self.b = _array(_random((256,), 2), self.dev)
        self.w.attach_grad()
        self.b.attach_grad()
        self.time_dense_step(device, fused)

    def time_dense_step(self, device, fused):
        fc = mx.nd.FullyConnected
        with mx.autograd.record():
            if fused:
                y = fc(self.x, self.w, self.b, act_type="relu")
            else:
                y = mx.nd.relu(fc(self.x, self.w, self.b))
        y.backward()
        if self.sync is not None:
            self.sync()


class KernelResolutionMiss(_DeviceBench):
    """``a + b`` right after clearing the add op's resolution cache, 1000
    times: the cost of a first call (registry look-up of the kernel for the
    device kind and dtype, then caching it).  Subtract ``time_add_small`` for
    the miss alone."""

    def setup(self, device):
        self._setup_device(device)
        self.a = _array(_random((10, 10), 0), self.dev)
        self.b = _array(_random((10, 10), 1), self.dev)
        self.op = _elemwise.ADD
        self.a + self.b  # load plugins and the registry outside the timing

    def teardown(self, device):
        self.a + self.b  # leave a warm cache behind

    def time_kernel_resolution_miss(self, device):
        a, b, cache = self.a, self.b, self.op.cache
        for _ in _BATCH:
            cache.clear()
            a + b
        if self.sync is not None:
            self.sync()


class PeakMem(_DeviceBench):
    """Peak resident memory of the benchmark process around one 1024x1024
    float32 ``dot`` (three 4 MiB arrays plus the interpreter and mxcore)."""

    def setup(self, device):
        self._setup_device(device)
        self.a = _array(_random((1024, 1024), 0), self.dev)
        self.b = _array(_random((1024, 1024), 1), self.dev)

    def peakmem_dot_1024(self, device):
        mx.nd.dot(self.a, self.b)
        if self.sync is not None:
            self.sync()
