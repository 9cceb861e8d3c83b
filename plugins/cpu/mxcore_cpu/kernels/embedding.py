"""Embedding kernel: a row gather.  Its gradient is ``take_grad`` (indexing family)."""
from __future__ import annotations

from mxcore_cpu.kernels._dtypes import NUM


def kernels(xp, special):
    def embedding(data, weight, *, input_dim, output_dim):
        # float indices truncate as a cast does; out-of-range ones clip, as in MXNet
        idx = xp.clip(data.astype(xp.int64), 0, input_dim - 1)
        return xp.take(weight, idx, axis=0)

    return {"embedding": (embedding, NUM)}
