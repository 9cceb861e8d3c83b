"""Convolution, transposed convolution, upsampling and pooling kernels.

Convolutions are GEMMs on im2col matrices, built on a *phase layout* of the padded
input: each spatial axis of stride s is split into s interleaved planes, so that the
element a kernel offset reads for output position o sits at o + shift in one plane,
whatever the stride and dilation.  Each plane is flattened at its full row width, so
the columns of one kernel offset for a whole (sample, channel) plane are one
contiguous run: im2col is one copy per kernel offset and col2im one add per offset
(numpy pays per run, and image rows are short).  The products run over full-width
rows too; the few columns past each output row are dropped afterwards, and are zero
in every gradient that is scattered back.

Small images (runs below ``FOLD_RUN``, where the full-width runs would carry up to three
times the columns a convolution needs) take exact columns instead, from strided windows
of the padded input laid out with the batch innermost, (C, *spatial, N): one copy per
kernel offset whose innermost runs are output rows times the batch, and one GEMM over
the batch.

A transposed convolution is the data gradient of a convolution (product, then
col2im) and its gradients are a convolution (im2col, then products), so the four
kernels share three passes: ``correlate`` (im2col, product), ``scatter`` (product,
col2im) and ``weight_grad``.  Products are per-sample GEMMs, or one GEMM over the
batch for small images; columns are built a chunk of samples at a time, into
per-thread scratch buffers reused from call to call.

Arrays are channel-first (N, C, *spatial) with 1 to 3 spatial dims; the op wrappers
transpose channel-last layouts.  16-bit floats compute in float32 and round once.
"""
from __future__ import annotations

import functools
import itertools
import math
import threading
from typing import NamedTuple, Tuple

import numpy as np

from mxcore_cpu.device import product_threads
from mxcore_cpu.kernels._dtypes import ALL, FLOAT
from mxcore_cpu.kernels.linalg import mnk


class Geometry(NamedTuple):
    """Where a correlation of a padded grid with a kernel reads, in the phase layout."""
    out: Tuple[int, ...]        # output spatial shape
    phases: Tuple[int, ...]     # strides: the phase count per axis
    planes: Tuple[int, ...]     # one phase plane's shape (first axis one row longer)
    full: Tuple[int, ...]       # output at full plane width: (out[0], *planes[1:])
    run: int                    # one kernel offset's columns: prod(full)
    taps: Tuple[Tuple[int, int], ...]   # per kernel offset: (phase index, flat start)
    cropped: bool               # whether ``full`` is wider than ``out``


@functools.lru_cache(maxsize=1024)
def geometry(padded, kernel, stride, dilate) -> Geometry:
    """The phase layout of a grid of shape ``padded`` read by ``kernel`` windows."""
    nd = len(kernel)
    out = tuple((p - d * (k - 1) - 1) // s + 1
                for p, k, s, d in zip(padded, kernel, stride, dilate))
    q = [-(-p // s) for p, s in zip(padded, stride)]
    if nd > 1:
        q[0] += 1  # a run that starts mid-row may end up to a row past the plane
    planes = tuple(q)
    full = (out[0],) + planes[1:]
    steps = [math.prod(planes[i + 1:]) for i in range(nd)]
    taps = []
    for offset in itertools.product(*(range(k) for k in kernel)):
        at = [o * d for o, d in zip(offset, dilate)]
        phase = int(np.ravel_multi_index([a % s for a, s in zip(at, stride)], stride))
        taps.append((phase, sum((a // s) * st for a, s, st in zip(at, stride, steps))))
    return Geometry(out, tuple(stride), planes, full, math.prod(full), tuple(taps),
                    full != out)


@functools.lru_cache(maxsize=1024)
def phase_map(geo: Geometry, pad, spatial):
    """How a grid of shape ``spatial``, placed at ``pad`` in the padded buffer, lies
    in the phase layout: per phase, (phase index, slices of its plane, slices of the
    grid).  Padded position q * s + a (plane row q of phase a) is grid index
    q * s + a - pad: phase a holds grid rows r0, r0 + s, ... with r0 = (a - pad) mod s."""
    parts = []
    for phase in itertools.product(*(range(s) for s in geo.phases)):
        plane, grid = [], []
        for a, s, p, size in zip(phase, geo.phases, pad, spatial):
            r0 = (a - p) % s
            q0 = (r0 + p - a) // s
            count = len(range(r0, size, s))
            plane.append(slice(q0, q0 + count))
            grid.append(slice(r0, size, s))
        parts.append((phase, tuple(plane), tuple(grid)))
    return tuple(parts)


@functools.lru_cache(maxsize=1024)
def windows(geo: Geometry, kernel, dilate):
    """Per kernel offset, the slices of the padded grid it reads for every output (the
    exact columns of small images)."""
    return tuple(tuple(slice(o * d, o * d + s * (m - 1) + 1, s)
                       for o, d, s, m in zip(offset, dilate, geo.phases, geo.out))
                 for offset in itertools.product(*(range(k) for k in kernel)))


#: the largest scratch array a workspace slot keeps between calls (bytes; a thread keeps
#: at most seven slots)
WORKSPACE_SLOT_LIMIT = 16 << 20
#: runs (full-width output rows per sample) below which products fold the batch into
#: one GEMM: per-sample GEMMs on 4x4 to 8x8 images ran at a third to half of BLAS speed
FOLD_RUN = 128
#: the fewest columns a folded product over a chunk of samples runs on
FOLD_WIDTH = 512
#: bytes of im2col columns built and used per chunk of samples: about an L2 cache, where
#: whole-batch columns (tens of MB for a ResNet stage) made the copies and products wait
#: on memory
CHUNK_BYTES = 1 << 20


def settle_allocator() -> None:
    """Let glibc serve arrays of up to 16 MiB from its heap.

    glibc maps each allocation above its threshold afresh (a page fault per 4 KiB
    on first touch) and unmaps it on free; freeing a mapped block raises the
    threshold to that block's size, up to 32 MiB.  Once the workspace kept the
    columns between calls, the largest block a LeNet step freed was one 1.2 MB
    activation, so every array of that size was mapped again: 650 page faults
    (2 ms) per step, in relu and pooling gradients as much as here.  Freeing one
    16 MiB block raises the threshold once (elsewhere it is a plain allocation)."""
    np.empty((16 << 20) - 4096, dtype=np.uint8)


class Workspace(threading.local):
    """Per-thread scratch memory for the arrays a kernel drops before returning
    (columns, products, padded copies), one growing buffer per named slot.

    Allocating them afresh on every call made glibc hand megabytes back to the
    system and fault them in again on the next call: a third of a LeNet training
    step went to page faults.  Arrays over ``WORKSPACE_SLOT_LIMIT`` are allocated
    as usual."""

    def __init__(self):
        self.slots = {}

    def take(self, slot, shape, dtype):
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        buf = self.slots.get(slot)
        if buf is None or buf.nbytes < nbytes:
            if nbytes > WORKSPACE_SLOT_LIMIT:
                return np.empty(shape, dtype=dtype)
            buf = self.slots[slot] = np.empty(nbytes, dtype=np.uint8)
        return buf[:nbytes].view(dtype).reshape(shape)


def kernels(xp, special):
    threads = product_threads(xp)  # one BLAS thread for small products (device.py)
    # host arrays only: device array modules (CuPy) keep their own memory pools
    workspace = Workspace() if xp is np else None
    if workspace is not None:
        settle_allocator()

    def scratch(slot, shape, dtype):
        """An uninitialised array that must not outlive the kernel call."""
        if workspace is None:
            return xp.empty(shape, dtype=dtype)
        return workspace.take(slot, shape, dtype)

    def zeros(shape, dtype, slot):
        out = scratch(slot, shape, dtype)
        out.fill(0)
        return out

    def place(buf, lead, box, values):
        """buf[lead + box] = values, zeros around the box along its axes (an array
        about to be filled needs only its border cleared)."""
        for axis, part in enumerate(box):
            whole = [slice(None)] * len(box)
            for edge in (slice(0, part.start), slice(part.stop, None)):
                whole[axis] = edge
                buf[lead + tuple(whole)] = 0
        buf[lead + box] = values
        return buf

    def copy_out(view, dt):
        """A fresh contiguous copy of ``view`` in ``dt`` (never a workspace alias)."""
        out = xp.empty(view.shape, dtype=dt)
        out[...] = view
        return out

    def work_dtype(dt):
        # float16/bfloat16: no BLAS, and too few bits to accumulate in
        return xp.float32 if dt.itemsize == 2 else dt

    def interior(pad, spatial):
        return (slice(None), slice(None)) + tuple(slice(p, p + s) for p, s in zip(pad, spatial))

    # the phase layout -------------------------------------------------------------
    def to_phases(x, geo, pad, wd):
        """x (N, C, *spatial) zero-padded by ``pad`` before, as (N, C, phases, plane)
        (scratch)."""
        n, c = x.shape[:2]
        xq = scratch("phases", (n, c) + geo.phases + geo.planes, wd)
        for phase, plane_part, grid_part in phase_map(geo, tuple(pad), x.shape[2:]):
            place(xq, (slice(None), slice(None)) + phase, plane_part,
                  x[(slice(None), slice(None)) + grid_part])
        return xq.reshape(n, c, math.prod(geo.phases), math.prod(geo.planes))

    def from_phases(xq, geo, pad, spatial, dt):
        """The inverse of to_phases, cropped to ``spatial``: a new (N, C, *spatial)."""
        n, c = xq.shape[:2]
        grid = xq.reshape((n, c) + geo.phases + geo.planes)
        out = xp.empty((n, c) + tuple(spatial), dtype=dt)
        for phase, plane_part, grid_part in phase_map(geo, tuple(pad), tuple(spatial)):
            out[(slice(None), slice(None)) + grid_part] = \
                grid[(slice(None), slice(None)) + phase + plane_part]
        return out

    # GEMM operands -------------------------------------------------------------------
    # Per-sample layout: columns (N, G, Cg*K, run), rows (N, G, Cg, run), one GEMM per
    # sample.  Folded layout, for short runs (small images): columns (G, Cg*K, N*run),
    # rows (G, Cg, N*run), one GEMM over the batch (BLAS is slow on narrow matrices).
    # Either way the columns are built and used a chunk of samples at a time, so that
    # they stay in cache between the copy and the product.
    def folded(n, geo):
        return n > 1 and geo.run < FOLD_RUN

    def chunks(n, geo, channels, wd, fold):
        """Sample ranges whose columns take about CHUNK_BYTES: one sample at least,
        and FOLD_WIDTH columns at least when folded (narrow GEMMs are slow).  Device
        array modules take the whole batch at once."""
        if workspace is None:
            return [(0, n)]
        per_sample = channels * len(geo.taps) * geo.run * np.dtype(wd).itemsize
        step = max(1, CHUNK_BYTES // per_sample)
        if fold:
            step = max(step, -(-FOLD_WIDTH // geo.run))
        return [(a, min(a + step, n)) for a in range(0, n, step)]

    def samples(rows, a, b, run, fold):
        """Samples a..b of GEMM rows (or columns) in either layout."""
        return rows[:, :, a * run:b * run] if fold else rows[a:b]

    def im2col(xq, geo, groups, fold):
        """The columns of xq's samples (scratch): per kernel offset, one copy of a
        run per plane."""
        n, c = xq.shape[:2]
        k, run = len(geo.taps), geo.run
        if fold:
            cols = scratch("cols", (c, k, n, run), xq.dtype)
            for i, (phase, start) in enumerate(geo.taps):
                cols[:, i] = xq[:, :, phase, start:start + run].transpose(1, 0, 2)
            return cols.reshape(groups, -1, n * run)
        cols = scratch("cols", (n, c, k, run), xq.dtype)
        for i, (phase, start) in enumerate(geo.taps):
            cols[:, :, i] = xq[:, :, phase, start:start + run]
        return cols.reshape(n, groups, -1, run)

    def col2im(dcols, geo, dq, fold):
        """The adjoint of im2col: columns added into dq (samples, C, phases, plane)."""
        n, c = dq.shape[:2]
        k, run = len(geo.taps), geo.run
        if fold:
            d = dcols.reshape(c, k, n, run)
            for i, (phase, start) in enumerate(geo.taps):
                dq[:, :, phase, start:start + run] += d[:, i].transpose(1, 0, 2)
        else:
            d = dcols.reshape(n, c, k, run)
            for i, (phase, start) in enumerate(geo.taps):
                dq[:, :, phase, start:start + run] += d[:, :, i]

    def grid(n, channels, geo, dtype):
        """Zeros (N, C, phases, plane) for col2im to add into (scratch)."""
        return zeros((n, channels, math.prod(geo.phases), math.prod(geo.planes)), dtype,
                     "grid")

    def to_rows(y, geo, groups, wd, fold):
        """y (N, C, *out) as GEMM rows at full plane width, zeros past each row."""
        n, c = y.shape[:2]
        box = tuple(slice(0, o) for o in geo.out)
        if fold:
            full = place(scratch("full", (c, n) + geo.full, wd), (slice(None),) * 2, box,
                         y.transpose((1, 0) + tuple(range(2, y.ndim))))
            return full.reshape(groups, c // groups, n * geo.run)
        if not geo.cropped:
            return y.astype(wd, copy=False).reshape(n, groups, c // groups, geo.run)
        full = place(scratch("full", (n, c) + geo.full, wd), (slice(None),) * 2, box, y)
        return full.reshape(n, groups, c // groups, geo.run)

    def new_rows(n, w, geo, wd, fold):
        """Uninitialised GEMM rows for an (N, w.shape[1] * G, *out) result: scratch
        unless from_rows can hand them out as they are."""
        g, rows = w.shape[0], w.shape[1]
        if fold:
            return scratch("product", (g, rows, n * geo.run), wd)
        if geo.cropped:
            return scratch("product", (n, g, rows, geo.run), wd)
        return xp.empty((n, g, rows, geo.run), dtype=wd)

    def from_rows(y, geo, n, dt, bias=None):
        """GEMM rows, plus a per-channel ``bias``, as a new (N, C, *out) in ``dt``."""
        crop = interior((0,) * len(geo.out), geo.out)
        if y.ndim == 3:  # folded: (G, rows, N*run)
            y = y.reshape(-1, n, geo.run)
            if bias is not None:
                y += bias.astype(y.dtype, copy=False).reshape(-1, 1, 1)
            y = y.reshape((-1, n) + geo.full)[crop]
            return copy_out(y.transpose((1, 0) + tuple(range(2, y.ndim))), dt)
        y = y.reshape(n, -1, geo.run)
        if bias is not None:
            y += bias.astype(y.dtype, copy=False).reshape(1, -1, 1)
        if not geo.cropped:
            return y.reshape((n, -1) + geo.out).astype(dt, copy=False)
        return copy_out(y.reshape((n, -1) + geo.full)[crop], dt)

    def weight_grad_part(rows, cols):
        """rows @ cols^T summed over samples: (G, rows, cols).  With many columns
        per row it runs as cols @ rows^T, rows^T copied contiguous in the per-sample
        layout: BLAS ran rows @ cols^T several times slower on LeNet's second
        convolution, and the copy of the small operand costs 1/cols of the product.
        Per-sample GEMMs stay single-threaded in BLAS where one large GEMM over N*run
        made threads wait."""
        if cols.shape[-2] < 64:
            dw = product(rows, cols.swapaxes(-1, -2), "wgrad")
            return dw.sum(axis=0) if dw.ndim == 4 else dw
        if rows.ndim == 4:
            rows_t = scratch("rows", rows.shape[:2] + rows.shape[:1:-1], rows.dtype)
            rows_t[...] = rows.swapaxes(-1, -2)
            return product(cols, rows_t, "wgrad").sum(axis=0).swapaxes(-1, -2)
        return product(cols, rows.swapaxes(-1, -2), "wgrad").swapaxes(-1, -2)

    def product(a, b, slot=None, out=None):
        """a @ b (batched); into ``out``, or a workspace slot when one is named."""
        threads(mnk(a, b))
        if out is None and slot is not None:
            batch = a.shape[:-2] if len(a.shape) >= len(b.shape) else b.shape[:-2]
            out = scratch(slot, batch + (a.shape[-2], b.shape[-1]), xp.result_type(a, b))
        return xp.matmul(a, b) if out is None else xp.matmul(a, b, out=out)

    def grouped(w, groups, wd):
        """(G, rows/G, rest) view of a weight whose first axis splits into groups."""
        return w.astype(wd, copy=False).reshape(groups, w.shape[0] // groups, -1)

    def bias_grad(gy, dt):
        n, f = gy.shape[:2]
        g = gy.astype(work_dtype(dt), copy=False).reshape(n, f, -1)
        return g.sum(axis=2).sum(axis=0).astype(dt)

    def conv_geometry(spatial, kernel, stride, dilate, pad):
        return geometry(tuple(s + 2 * p for s, p in zip(spatial, pad)), tuple(kernel),
                        tuple(stride), tuple(dilate))

    # the three passes, shared by convolution and transposed convolution -----------------
    def correlate(xq, w, geo, n, groups, fold, dt, bias=None):
        """Rows of w (G, rows, Cg*K) against the windows of xq: a convolution."""
        wd = xq.dtype
        y = new_rows(n, w, geo, wd, fold)
        for a, b in chunks(n, geo, xq.shape[1], wd, fold):
            cols = im2col(xq[a:b], geo, groups, fold)
            product(w, cols, out=samples(y, a, b, geo.run, fold))
        return from_rows(y, geo, n, dt, bias)

    def scatter(rows, w, geo, n, channels, fold):
        """w^T (G, Cg*K, rows) applied to GEMM rows and added back through the kernel
        windows: the adjoint of correlate, as (N, channels, phases, plane)."""
        dq = grid(n, channels, geo, rows.dtype)
        for a, b in chunks(n, geo, channels, rows.dtype, fold):
            dcols = product(w.swapaxes(1, 2), samples(rows, a, b, geo.run, fold), "product")
            col2im(dcols, geo, dq[a:b], fold)
        return dq

    def weight_grad(rows, xq, geo, n, groups, fold, shape, dt):
        """Sum over samples of rows @ columns(xq)^T: the weight gradient."""
        dw = None
        for a, b in chunks(n, geo, xq.shape[1], xq.dtype, fold):
            cols = im2col(xq[a:b], geo, groups, fold)
            part = weight_grad_part(samples(rows, a, b, geo.run, fold), cols)
            dw = xp.array(part) if dw is None else dw + part
        return dw.reshape(shape).astype(dt)

    # exact columns for small images ------------------------------------------------------
    # On small planes the full-width runs of the phase layout carry many columns past each
    # output row (a 3x3 pad-1 convolution of a 1x1 image computes 3 columns per output,
    # of a 2x2 image 2, of a 4x4 one 1.5), and the GEMMs, which dominate, do that much
    # more work (ResNet-18's stages 3 and 4 on 32x32 input ran at half PyTorch's speed).
    # Folded (small-image) convolutions instead take exact columns from
    # windows of the padded input, with the batch as the innermost axis: (C, *spatial, N).
    # Image rows are a few elements long, and numpy pays per innermost run: with N last a
    # kernel offset's window is runs of out_width * N (stride 1) or N elements, in the
    # same axis order on both sides of each copy and gradient add.
    def exact(n, geo):
        return folded(n, geo)

    def batch_last(x):
        """(N, C, *spatial) as a (C, *spatial, N) view."""
        return x.transpose((1,) + tuple(range(2, x.ndim)) + (0,))

    def batch_first(y):
        """(C, *spatial, N) as an (N, C, *spatial) view."""
        return y.transpose((y.ndim - 1, 0) + tuple(range(1, y.ndim - 1)))

    def padded(x, pad, wd):
        """x zero-padded by ``pad`` on both sides, as (C, *padded, N) (scratch)."""
        n, c = x.shape[:2]
        shape = (c,) + tuple(s + 2 * p for s, p in zip(x.shape[2:], pad)) + (n,)
        return place(scratch("phases", shape, wd), (slice(None),),
                     tuple(slice(p, p + s) for p, s in zip(pad, x.shape[2:])), batch_last(x))

    def exact_cols(xpad, geo, kernel, dilate, groups):
        """(G, Cg*K, out*N) columns of a padded (C, *padded, N) batch (scratch)."""
        c, n = xpad.shape[0], xpad.shape[-1]
        taps = windows(geo, tuple(kernel), tuple(dilate))
        cols = scratch("cols", (c, len(taps)) + geo.out + (n,), xpad.dtype)
        for i, win in enumerate(taps):
            cols[:, i] = xpad[(slice(None),) + win]
        return cols.reshape(groups, -1, math.prod(geo.out) * n)

    def exact_rows(y, groups, wd):
        """(N, C, *out) as (G, C/G, out*N) GEMM rows (scratch)."""
        c = y.shape[1]
        rows = scratch("full", (c,) + y.shape[2:] + y.shape[:1], wd)
        rows[...] = batch_last(y)
        return rows.reshape(groups, c // groups, -1)

    def exact_forward(x, w, geo, kernel, dilate, pad, groups, bias):
        wd = work_dtype(x.dtype)
        n = x.shape[0]
        wg = grouped(w, groups, wd)
        y = product(wg, exact_cols(padded(x, pad, wd), geo, kernel, dilate, groups),
                    "product")
        y = y.reshape((-1,) + geo.out + (n,))
        if bias is not None:
            y += bias.astype(y.dtype, copy=False).reshape((-1,) + (1,) * (y.ndim - 1))
        return copy_out(batch_first(y), x.dtype)

    def exact_backward(gy, x, w, geo, kernel, dilate, pad, groups, grads):
        dt = x.dtype
        wd = work_dtype(dt)
        n, c = x.shape[:2]
        wg = grouped(w, groups, wd)
        rows = exact_rows(gy, groups, wd)
        taps = windows(geo, tuple(kernel), tuple(dilate))
        result = []
        if grads[0]:
            dcols = product(wg.swapaxes(1, 2), rows, "product")
            d = dcols.reshape((c, len(taps)) + geo.out + (n,))
            spatial = tuple(s + 2 * p for s, p in zip(x.shape[2:], pad))
            dpad = zeros((c,) + spatial + (n,), wd, "grid")
            for i, win in enumerate(taps):
                dpad[(slice(None),) + win] += d[:, i]
            inner = (slice(None),) + tuple(slice(p, p + s) for p, s in zip(pad, x.shape[2:]))
            result.append(copy_out(batch_first(dpad[inner]), dt))
        if grads[1]:
            cols = exact_cols(padded(x, pad, wd), geo, kernel, dilate, groups)
            result.append(weight_grad_part(rows, cols).reshape(w.shape).astype(dt))
        if grads[2]:
            result.append(bias_grad(gy, dt))
        return tuple(result)

    # convolution --------------------------------------------------------------------
    def convolution(x, w, *bias, kernel, stride, dilate, pad, num_filter, num_group, no_bias):
        wd = work_dtype(x.dtype)
        n = x.shape[0]
        geo = conv_geometry(x.shape[2:], kernel, stride, dilate, pad)
        if exact(n, geo):
            return exact_forward(x, w, geo, kernel, dilate, pad, num_group,
                                 bias[0] if bias else None)
        return correlate(to_phases(x, geo, pad, wd), grouped(w, num_group, wd), geo, n,
                         num_group, folded(n, geo), x.dtype, bias[0] if bias else None)

    def convolution_backward(gy, x, w, *, kernel, stride, dilate, pad, num_filter,
                             num_group, no_bias, grads):
        dt = x.dtype
        wd = work_dtype(dt)
        n, c = x.shape[:2]
        geo = conv_geometry(x.shape[2:], kernel, stride, dilate, pad)
        if exact(n, geo):
            return exact_backward(gy, x, w, geo, kernel, dilate, pad, num_group, grads)
        fold = folded(n, geo)
        result = []
        if grads[0] or grads[1]:
            gy_rows = to_rows(gy, geo, num_group, wd, fold)
        if grads[0]:
            dq = scatter(gy_rows, grouped(w, num_group, wd), geo, n, c, fold)
            result.append(from_phases(dq, geo, pad, x.shape[2:], dt))
        if grads[1]:
            result.append(weight_grad(gy_rows, to_phases(x, geo, pad, wd), geo, n,
                                      num_group, fold, w.shape, dt))
        if grads[2]:
            result.append(bias_grad(gy, dt))
        return tuple(result)

    # transposed convolution: the data gradient of a convolution -------------------------
    def deconv_geometry(x_shape, kernel, stride, dilate, pad, adj):
        out = tuple((i - 1) * s + d * (k - 1) + 1 - 2 * p + a for i, k, s, d, p, a
                    in zip(x_shape[2:], kernel, stride, dilate, pad, adj))
        return geometry(tuple(o + 2 * p for o, p in zip(out, pad)), tuple(kernel),
                        tuple(stride), tuple(dilate)), out

    def deconvolution(x, w, *bias, kernel, stride, dilate, pad, adj, num_filter, num_group,
                      no_bias):
        dt = x.dtype
        wd = work_dtype(dt)
        n = x.shape[0]
        geo, out = deconv_geometry(x.shape, kernel, stride, dilate, pad, adj)
        fold = folded(n, geo)
        x_rows = to_rows(x, geo, num_group, wd, fold)
        dq = scatter(x_rows, grouped(w, num_group, wd), geo, n, num_filter, fold)
        y = from_phases(dq, geo, pad, out, wd)
        if bias:
            y += bias[0].astype(wd, copy=False).reshape((1, num_filter) + (1,) * len(out))
        return y.astype(dt, copy=False)

    def deconvolution_backward(gy, x, w, *, kernel, stride, dilate, pad, adj, num_filter,
                               num_group, no_bias, grads):
        dt = x.dtype
        wd = work_dtype(dt)
        n = x.shape[0]
        geo, _ = deconv_geometry(x.shape, kernel, stride, dilate, pad, adj)
        fold = folded(n, geo)
        result = []
        if grads[0] or grads[1]:
            gq = to_phases(gy, geo, pad, wd)
        if grads[0]:
            result.append(correlate(gq, grouped(w, num_group, wd), geo, n, num_group, fold,
                                    dt))
        if grads[1]:
            x_rows = to_rows(x, geo, num_group, wd, fold)
            result.append(weight_grad(x_rows, gq, geo, n, num_group, fold, w.shape, dt))
        if grads[2]:
            result.append(bias_grad(gy, dt))
        return tuple(result)

    # nearest-neighbour upsampling ---------------------------------------------------------
    def upsampling_nearest(x, *, scale):
        n, c, h, w = x.shape
        big = xp.broadcast_to(x.reshape(n, c, h, 1, w, 1), (n, c, h, scale, w, scale))
        return xp.ascontiguousarray(big).reshape(n, c, h * scale, w * scale)

    # pooling ------------------------------------------------------------------------
    def pad_spatial(x, before, after, value=0.0):
        if not any(before) and not any(after):
            return x
        widths = [(0, 0), (0, 0)] + [(int(b), int(a)) for b, a in zip(before, after)]
        return xp.pad(x, widths, mode="constant", constant_values=value)

    def offset_slices(offset, out, stride):
        """Slices of the padded input that kernel ``offset`` reads across all outputs."""
        return (slice(None), slice(None)) + tuple(
            slice(o, o + s * (n - 1) + 1, s) for o, n, s in zip(offset, out, stride))

    def pool_geometry(shape, kernel, stride, pad, convention):
        """(padded input's end padding, output spatial shape) for a pooling call."""
        out, extra = [], []
        for s, k, st, p in zip(shape[2:], kernel, stride, pad):
            span = s + 2 * p - k
            o = (-(-span // st) if convention == "full" else span // st) + 1
            out.append(o)
            extra.append(max(0, (o - 1) * st + k - (s + 2 * p)))
        return extra, tuple(out)

    def pool_counts(shape, kernel, stride, pad, extra, out, include_pad, wd):
        """How many elements each window averages: the window clipped to the padded
        input (count_include_pad) or to the input itself (MXNet's rule)."""
        mask = xp.ones((1, 1) + tuple(shape[2:]), dtype=wd)
        if include_pad:
            mask = pad_spatial(mask, pad, pad, 1.0)
            mask = pad_spatial(mask, (0,) * len(pad), extra, 0.0)
        else:
            mask = pad_spatial(mask, pad, [p + e for p, e in zip(pad, extra)], 0.0)
        counts = xp.zeros((1, 1) + tuple(out), dtype=wd)
        for offset in offsets(kernel):
            counts += mask[offset_slices(offset, out, stride)]
        return counts

    def offsets(kernel):
        return itertools.product(*(range(k) for k in kernel))

    def pooling(x, *, kernel, stride, pad, pool_type, pooling_convention,
                count_include_pad, p_value):
        # one elementwise pass per kernel offset over output-sized strided slices:
        # numpy reduces over a window view's last axes far more slowly
        dt = x.dtype
        wd = work_dtype(dt)
        extra, out = pool_geometry(x.shape, kernel, stride, pad, pooling_convention)
        after = [p + e for p, e in zip(pad, extra)]
        xw = x.astype(wd, copy=False)
        if pool_type == "max":
            xw = pad_spatial(xw, pad, after, -xp.inf)
        else:
            xw = pad_spatial(xw, pad, after, 0.0)
            if pool_type == "lp":
                xw = xw ** p_value
        y = None
        for offset in offsets(kernel):
            v = xw[offset_slices(offset, out, stride)]
            if y is None:
                y = v.copy()
            elif pool_type == "max":
                xp.maximum(y, v, out=y)
            else:
                y += v
        if pool_type == "lp":
            y **= 1.0 / p_value
        elif pool_type == "avg":
            y /= pool_counts(x.shape, kernel, stride, pad, extra, out, count_include_pad, wd)
        return y.astype(dt, copy=False)

    def max_pool_backward(g, xpad, y, dx, kernel, stride, out, disjoint):
        """Each window's gradient to its first maximum: per kernel offset, the outputs
        whose maximum this offset holds and no earlier offset took."""
        taken = xp.empty(y.shape, dtype=bool)
        hit = xp.empty(y.shape, dtype=bool)
        first = xp.empty(y.shape, dtype=bool)
        last = math.prod(kernel) - 1
        for i, offset in enumerate(offsets(kernel)):
            sl = offset_slices(offset, out, stride)
            if i == 0:  # nothing taken yet: the first offset takes its hits
                xp.equal(xpad[sl], y, out=taken)
                mine = taken
            else:
                xp.equal(xpad[sl], y, out=hit)
                xp.greater(hit, taken, out=first)      # hit and not taken
                if i < last:
                    taken |= hit
                mine = first
            if disjoint:  # windows do not overlap: each input belongs to one
                xp.multiply(g, mine, out=dx[sl])
            else:
                dx[sl] += g * mine

    def pooling_backward(gy, x, y, *, kernel, stride, pad, pool_type, pooling_convention,
                         count_include_pad, p_value):
        dt = x.dtype
        wd = work_dtype(dt)
        extra, out = pool_geometry(x.shape, kernel, stride, pad, pooling_convention)
        after = [p + e for p, e in zip(pad, extra)]
        g = gy.astype(wd, copy=False)
        xw = x.astype(wd, copy=False)
        padded_shape = x.shape[:2] + tuple(s + b + a for s, b, a in zip(x.shape[2:], pad,
                                                                         after))
        disjoint = all(s >= k for s, k in zip(stride, kernel))
        # tiled: every padded element is in exactly one window and written once
        tiled = pool_type != "lp" and tuple(stride) == tuple(kernel) and all(
            o * s == n for o, s, n in zip(out, stride, padded_shape[2:]))
        dx = xp.empty(padded_shape, dtype=wd) if tiled else xp.zeros(padded_shape, dtype=wd)
        if pool_type == "max":
            max_pool_backward(g, pad_spatial(xw, pad, after, -xp.inf), y.astype(wd, copy=False),
                              dx, kernel, stride, out, disjoint)
        else:
            if pool_type == "avg":
                g = g / pool_counts(x.shape, kernel, stride, pad, extra, out,
                                    count_include_pad, wd)
            if pool_type == "lp":
                xpad = pad_spatial(xw, pad, after, 0.0)
                yw = y.astype(wd, copy=False)
                # d (sum x^p)^(1/p) / dx = x^(p-1) * y^(1-p); 0 where y is 0
                with np.errstate(divide="ignore", invalid="ignore"):
                    scale = xp.where(yw != 0, g * yw ** (1.0 - p_value), 0.0)
                for offset in offsets(kernel):
                    sl = offset_slices(offset, out, stride)
                    dx[sl] += scale * xpad[sl] ** (p_value - 1)
            else:
                for offset in offsets(kernel):
                    sl = offset_slices(offset, out, stride)
                    if tiled:
                        dx[sl] = g
                    else:
                        dx[sl] += g
        return xp.ascontiguousarray(dx[interior(pad, x.shape[2:])], dtype=dt)

    return {"convolution": (convolution, FLOAT),
            "convolution_backward": (convolution_backward, FLOAT),
            "deconvolution": (deconvolution, FLOAT),
            "deconvolution_backward": (deconvolution_backward, FLOAT),
            "upsampling_nearest": (upsampling_nearest, ALL),
            "pooling": (pooling, FLOAT),
            "pooling_backward": (pooling_backward, FLOAT)}
