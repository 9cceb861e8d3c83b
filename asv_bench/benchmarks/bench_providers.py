"""Kernel providers side by side: for a few ops people pick kernels for (a matrix
product, a 3x3 convolution, softmax, layer norm, RMSNorm and attention when the contrib
plugin is installed), every kernel the registry holds for the op on each available
device, each timed pinned: called directly on device arrays, bypassing the registry's
choice.  The dashboard then shows one series per (case, device, provider:kernel), so a
plugin's kernel is compared with the built-in one commit by commit, and the registry's
(or ``MXCORE_AUTOTUNE``'s) choice can be checked against the fastest series.

A parameter combination that does not apply (the kernel serves another device, does not
take float32, or its guard declines the shapes) is skipped (``NotImplementedError``).
"""
import numpy as np

import mxcore as mx
from mxcore.device import device_type
from mxcore.plugins import registry

from .bench_dispatch import DEVICES, _device

#: case -> (op, input shapes, attributes given)
CASES = {
    "matmul_256": ("dot", [(256, 256), (256, 256)], {}),
    "conv3x3_8x64x28": ("convolution", [(8, 64, 28, 28), (64, 64, 3, 3), (64,)],
                        {"kernel": (3, 3), "stride": (1, 1), "dilate": (1, 1),
                         "pad": (1, 1), "num_filter": 64}),
    "softmax_64x1000": ("softmax", [(64, 1000)], {}),
    "layer_norm_64x1024": ("layer_norm", [(64, 1024), (1024,), (1024,)], {"axis": 1}),
    "rms_norm_64x1024": ("rms_norm", [(64, 1024), (1024,)], {}),
    "attention_2x8x128x64": ("scaled_dot_product_attention",
                             [(2, 8, 128, 64), (2, 8, 128, 64), (2, 8, 128, 64)], {}),
}


def _kernel_names():
    """Every 'provider:name' of a kernel of the cases' ops (the benchmark's parameter)."""
    try:
        reg = registry()
        names = {f"{k.provider}:{k.name}"
                 for case in CASES.values() for kernels in
                 (reg.kernels.get((case[0], kind), ()) for kind in {d.split(":")[0]
                                                                     for d in DEVICES})
                 for k in kernels}
    except Exception:  # a broken plugin must not hide the whole suite
        names = set()
    return sorted(names) or ["none"]


class KernelProviders:
    params = [list(CASES), DEVICES, _kernel_names()]
    param_names = ["case", "device", "kernel"]
    timeout = 120

    def setup(self, case, device, kernel):
        op_name, shapes, given = CASES[case]
        reg = registry()
        dev = _device(device)
        op = reg.ops.get(op_name)
        if op is None:
            raise NotImplementedError(f"{op_name} is not registered (plugin missing)")
        chosen = [k for k in reg.kernels.get((op_name, dev.kind), ())
                  if f"{k.provider}:{k.name}" == kernel]
        if not chosen or "float32" not in chosen[0].dtypes:
            raise NotImplementedError(f"{kernel} does not serve {op_name} on {dev.kind}")
        k = chosen[0]
        self.attrs = {**op.attrs, **given}
        dtypes = ["float32"] * len(shapes)
        if k.applies is not None and not k.applies([tuple(s) for s in shapes], dtypes,
                                                   self.attrs):
            raise NotImplementedError(f"{kernel}'s guard declines {case}")
        rng = np.random.default_rng(0)
        self.args = [mx.nd.array(rng.standard_normal(s).astype(np.float32), ctx=dev)._data
                     for s in shapes]
        self.fn = k.fn
        self.sync = device_type(dev).synchronize
        self.index = dev.index
        self.fn(*self.args, **self.attrs)  # warm caches (scratch buffers, compilation)
        self.sync(self.index)

    def time_kernel(self, case, device, kernel):
        """One pinned call of the kernel (and the device's synchronisation)."""
        self.fn(*self.args, **self.attrs)
        self.sync(self.index)
