"""Convolution, deconvolution, upsampling and pooling beyond the op table: clear
errors on bad input, the layouts, gradients that skip what is not needed, kernel
scratch memory that never leaks into results, and the max-pool gradient's ties."""
from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

import mxcore as mx
from mxcore.base import OperatorError


@pytest.mark.parametrize("call, message", [
    (lambda d: mx.nd.Convolution(mx.nd.ones((2, 3, 5, 5), ctx=d), mx.nd.ones((4, 2, 3, 3), ctx=d),
                                 kernel=(3, 3), num_filter=4, no_bias=True),
     "weight shape (4, 2, 3, 3) does not match: expected (4, 3, 3, 3)"),
    (lambda d: mx.nd.Convolution(mx.nd.ones((2, 3, 5, 5), ctx=d), mx.nd.ones((4, 3, 7, 7), ctx=d),
                                 kernel=(7, 7), num_filter=4, no_bias=True),
     "kernel (7, 7) (dilate (1, 1)) is larger than the padded input (5, 5)"),
    (lambda d: mx.nd.Convolution(mx.nd.ones((2, 3, 5, 5), ctx=d), mx.nd.ones((4, 3, 3, 3), ctx=d),
                                 mx.nd.ones((5,), ctx=d), kernel=(3, 3), num_filter=4),
     "bias shape (5,) does not match num_filter 4"),
    (lambda d: mx.nd.Convolution(mx.nd.ones((2, 3, 5), ctx=d), mx.nd.ones((4, 3, 3, 3), ctx=d),
                                 kernel=(3, 3), num_filter=4, no_bias=True),
     "kernel (3, 3) must have 1 entries, one per spatial dim of the 3-d data"),
    (lambda d: mx.nd.Convolution(mx.nd.ones((2, 4, 5, 5), ctx=d), mx.nd.ones((3, 2, 3, 3), ctx=d),
                                 kernel=(3, 3), num_filter=3, num_group=2, no_bias=True),
     "channels 4 and num_filter 3 must both divide by num_group 2"),
    (lambda d: mx.nd.Convolution(mx.nd.ones((2, 3, 5, 5), ctx=d),
                                 mx.nd.ones((4, 3, 3, 3), ctx=d, dtype="float64"),
                                 kernel=(3, 3), num_filter=4, no_bias=True),
     "dtypes differ (float32, float64)"),
    (lambda d: mx.nd.Pooling(mx.nd.ones((2, 3, 5, 5), ctx=d), kernel=(7, 7)),
     "kernel (7, 7) is larger than the padded input (5, 5)"),
    (lambda d: mx.nd.Pooling(mx.nd.ones((2, 3, 5, 5), ctx=d), kernel=(2, 2), pool_type="median"),
     "pool_type must be one of ('max', 'avg', 'sum', 'lp'), got 'median'"),
    (lambda d: mx.nd.Pooling(mx.nd.ones((2, 3, 5, 5), ctx=d), kernel=(2, 2), layout="NCWH"),
     "unknown layout 'NCWH'"),
    (lambda d: mx.nd.Pooling(mx.nd.ones((2, 3), ctx=d), kernel=(2,)),
     "data must be 3-d to 5-d (N, C, *spatial), got 2-d"),
])
def test_bad_input_names_the_op_and_shapes(device, call, message):
    with pytest.raises(OperatorError) as info:
        call(device)
    msg = str(info.value)
    assert message in msg, msg
    assert msg.startswith("operator 'Convolution'") or msg.startswith("operator 'Pooling'")
    assert "[inputs: (2, " in msg and repr(device) in msg


def test_input_gradient_is_skipped_for_data_without_grad(device):
    """A first layer's input needs no gradient: only the weight's is computed."""
    x = mx.nd.ones((2, 3, 6, 6), ctx=device)
    w = mx.nd.ones((4, 3, 3, 3), ctx=device)
    w.attach_grad()
    with mx.autograd.record():
        y = mx.nd.Convolution(x, w, kernel=(3, 3), num_filter=4, no_bias=True)
    y.backward()
    # each weight element meets 2 images x 16 output positions of ones
    np.testing.assert_allclose(w.grad.asnumpy(), np.full((4, 3, 3, 3), 32.0))


def test_max_pool_gradient_goes_to_the_first_maximum(device):
    x = mx.nd.array([[[[1.0, 1.0], [0.0, 1.0]]]], ctx=device)
    x.attach_grad()
    with mx.autograd.record():
        y = mx.nd.Pooling(x, kernel=(2, 2))
    y.backward()
    np.testing.assert_array_equal(x.grad.asnumpy(), [[[[1.0, 0.0], [0.0, 0.0]]]])


def _ones(shape, device, dtype="float32"):
    return mx.nd.ones(shape, ctx=device, dtype=dtype)


@pytest.mark.parametrize("call, message", [
    (lambda d: mx.nd.Deconvolution(_ones((2, 4, 5, 5), d), _ones((3, 3, 3, 3), d),
                                   kernel=(3, 3), num_filter=3),
     "weight shape (3, 3, 3, 3) does not match: expected (4, 3, 3, 3) (channels 4, "
     "num_filter 3 / num_group 1, *kernel)"),
    (lambda d: mx.nd.Deconvolution(_ones((2, 4, 5, 5), d), _ones((4, 3, 3, 3), d),
                                   _ones((3,), d), kernel=(3, 3), num_filter=3),
     "a bias was given but no_bias=True (Deconvolution's default)"),
    (lambda d: mx.nd.Deconvolution(_ones((2, 4, 5, 5), d), _ones((4, 3, 3, 3), d),
                                   _ones((4,), d), kernel=(3, 3), num_filter=3, no_bias=False),
     "bias shape (4,) does not match num_filter 3"),
    (lambda d: mx.nd.Deconvolution(_ones((2, 4, 5, 5), d), _ones((4, 3, 3, 3), d),
                                   kernel=(3, 3), stride=(2, 2), adj=(2, 1), num_filter=3),
     "adj (2, 1) must be smaller than stride (2, 2)"),
    (lambda d: mx.nd.Deconvolution(_ones((2, 4, 5, 5), d), _ones((4, 3, 3, 3), d),
                                   kernel=(3, 3), pad=(4, 0), num_filter=3),
     "pad (4, 0) is too large: the output of input (5, 5) with kernel (3, 3), stride (1, 1) "
     "would be (-1, 7)"),
    (lambda d: mx.nd.Deconvolution(_ones((2, 4, 5, 5), d), _ones((4, 3, 3, 3), d),
                                   kernel=(3, 3), stride=(2, 2), target_shape=(12, 11),
                                   num_filter=3),
     "target_shape (12, 11) cannot be reached: with input (5, 5), kernel (3, 3) and stride "
     "(2, 2) each size must be between 1 and 11"),
    (lambda d: mx.nd.Deconvolution(_ones((2, 4, 5), d), _ones((4, 3, 3), d), kernel=(3,),
                                   num_filter=3, layout="NWC"),
     "unknown layout 'NWC' (one of NCW, NCHW, NCDHW, NHWC, NDHWC)"),
    (lambda d: mx.nd.Deconvolution(_ones((2, 4, 5, 5), d), _ones((4, 3, 3, 3), d),
                                   kernel=(3, 3), num_filter=4, num_group=2),
     "expected (4, 2, 3, 3) (channels 4, num_filter 4 / num_group 2, *kernel)"),
    (lambda d: mx.nd.Deconvolution(_ones((2, 4, 5, 5), d), _ones((4, 3, 3, 3), d, "float64"),
                                   kernel=(3, 3), num_filter=3),
     "dtypes differ (float32, float64)"),
    (lambda d: mx.nd.Deconvolution(_ones((2, 4, 5, 5), d), _ones((4, 3, 3), d),
                                   kernel=(3,), num_filter=3),
     "kernel (3,) must have 2 entries, one per spatial dim of the 4-d data"),
])
def test_deconvolution_bad_input_names_the_op_and_shapes(device, call, message):
    with pytest.raises(OperatorError) as info:
        call(device)
    msg = str(info.value)
    assert message in msg, msg
    assert msg.startswith("operator 'Deconvolution'")
    assert "[inputs: (2, 4, 5" in msg and repr(device) in msg


@pytest.mark.parametrize("call, message", [
    (lambda d: mx.nd.UpSampling(_ones((2, 3, 4), d), scale=2, sample_type="nearest"),
     "data must be 4-d (N, C, H, W), got shape (2, 3, 4)"),
    (lambda d: mx.nd.UpSampling(_ones((2, 3, 4, 4), d), scale=2),
     "sample_type must be one of ('nearest', 'bilinear'), got None"),
    (lambda d: mx.nd.UpSampling(_ones((2, 3, 4, 4), d), _ones((2, 3, 3, 3), d), scale=2,
                                sample_type="nearest"),
     "input of shape (2, 3, 3, 3) does not scale to the output size (8, 8)"),
    (lambda d: mx.nd.UpSampling(_ones((2, 3, 4, 4), d), _ones((2, 2, 2, 2), d), scale=2,
                                sample_type="nearest", multi_input_mode="sum"),
     "multi_input_mode 'sum' needs equal channel counts, got [3, 2]"),
    (lambda d: mx.nd.UpSampling(_ones((2, 3, 4, 4), d), _ones((3, 1, 3, 3), d), scale=2,
                                sample_type="bilinear", num_filter=3),
     "weight shape (3, 1, 3, 3) does not match: expected (3, 1, 4, 4)"),
    (lambda d: mx.nd.UpSampling(_ones((2, 3, 4, 4), d), _ones((3, 1, 4, 4), d), scale=2,
                                sample_type="bilinear", num_filter=2),
     "num_filter must be the channel count 3 for bilinear upsampling, got 2"),
    (lambda d: mx.nd.UpSampling(_ones((2, 3, 4, 4), d), scale=0, sample_type="nearest"),
     "scale must be an integer >= 1, got 0"),
])
def test_upsampling_bad_input_names_the_op_and_shapes(device, call, message):
    with pytest.raises(OperatorError) as info:
        call(device)
    msg = str(info.value)
    assert message in msg, msg
    assert msg.startswith("operator 'UpSampling'") and repr(device) in msg


def _rand(rng, shape, device, dtype="float64"):
    return mx.nd.array(rng.standard_normal(shape), ctx=device, dtype=dtype)


@pytest.mark.parametrize("stride, pad, dilate, adj, groups", [
    ((1, 1), (0, 0), (1, 1), (0, 0), 1), ((2, 2), (1, 1), (1, 1), (1, 1), 2),
    ((3, 2), (2, 0), (2, 1), (2, 1), 1), ((2, 1), (1, 1), (1, 2), (0, 0), 4),
])
def test_deconvolution_is_the_data_gradient_of_convolution(device, rng, stride, pad, dilate,
                                                           adj, groups):
    """Deconvolution(y, w) is d<Convolution(x, w), y>/dx for x of the output's shape."""
    y = _rand(rng, (2, 4, 3, 4), device)
    w = _rand(rng, (4, 8 // groups, 3, 2), device)
    out = mx.nd.Deconvolution(y, w, kernel=(3, 2), stride=stride, pad=pad, dilate=dilate,
                              adj=adj, num_filter=8, num_group=groups)
    x = mx.nd.zeros(out.shape, ctx=device, dtype="float64")
    x.attach_grad()
    with mx.autograd.record():
        conv = mx.nd.Convolution(x, w, kernel=(3, 2), stride=stride, pad=pad, dilate=dilate,
                                 num_filter=4, num_group=groups, no_bias=True)
        assert conv.shape == y.shape
        loss = (conv * y).sum()
    loss.backward()
    np.testing.assert_allclose(out.asnumpy(), x.grad.asnumpy(), rtol=1e-12, atol=1e-12)


def test_deconvolution_weight_gradient_only(device, rng):
    x = _rand(rng, (2, 3, 4, 4), device)
    w = _rand(rng, (3, 2, 3, 3), device)
    w.attach_grad()
    with mx.autograd.record():
        y = mx.nd.Deconvolution(x, w, kernel=(3, 3), stride=(2, 2), num_filter=2)
    y.backward()
    # each weight element meets every input pixel of its channel once
    expected = np.broadcast_to(x.asnumpy().sum(axis=(0, 2, 3))[:, None, None, None], w.shape)
    np.testing.assert_allclose(w.grad.asnumpy(), expected, rtol=1e-12)


def test_deconvolution_target_shape_overrides_pad_and_adj(device, rng):
    """MXNet's rule: pad and adj come from target_shape; the odd pixel goes to adj."""
    x = _rand(rng, (1, 2, 5, 5), device)
    w = _rand(rng, (2, 3, 3, 3), device)
    got = mx.nd.Deconvolution(x, w, kernel=(3, 3), stride=(2, 2), pad=(4, 4), adj=(1, 1),
                              target_shape=(8, 10), num_filter=3)
    want = mx.nd.Deconvolution(x, w, kernel=(3, 3), stride=(2, 2), pad=(2, 1), adj=(1, 1),
                               num_filter=3)
    assert got.shape == (1, 3, 8, 10)
    np.testing.assert_array_equal(got.asnumpy(), want.asnumpy())


@pytest.mark.parametrize("layout, shape, wshape", [
    ("NHWC", (2, 4, 5, 3), (3, 3, 2, 4)), ("NDHWC", (1, 3, 2, 4, 3), (3, 2, 2, 1, 4)),
])
def test_deconvolution_channel_last_matches_channel_first(device, rng, layout, shape, wshape):
    nd_ = len(shape) - 2
    to_first = (0, nd_ + 1) + tuple(range(1, nd_ + 1))
    x, w, b = _rand(rng, shape, device), _rand(rng, wshape, device), _rand(rng, (4,), device)
    kernel = tuple(wshape[1:-1])
    last = mx.nd.Deconvolution(x, w, b, kernel=kernel, stride=(2,) * nd_, num_filter=4,
                               no_bias=False, layout=layout)
    first = mx.nd.Deconvolution(x.transpose(to_first), w.transpose(to_first), b,
                                kernel=kernel, stride=(2,) * nd_, num_filter=4, no_bias=False)
    back = tuple(to_first.index(i) for i in range(nd_ + 2))
    np.testing.assert_allclose(last.asnumpy(), first.asnumpy().transpose(back), rtol=1e-12)


def test_bilinear_upsampling_with_bilinear_weights_interpolates(device):
    """With the interpolation kernel as weight (what MXNet's init.Bilinear fills in),
    bilinear upsampling of a linear ramp is a linear ramp, except at the borders."""
    k = np.array([0.25, 0.75, 0.75, 0.25])
    w = mx.nd.array(np.outer(k, k)[None, None], ctx=device)
    x = mx.nd.array(np.arange(16.0).reshape(1, 1, 4, 4), ctx=device)
    y = mx.nd.UpSampling(x, w, scale=2, sample_type="bilinear", num_filter=1).asnumpy()[0, 0]
    inner = y[1:-1, 1:-1]
    np.testing.assert_allclose(np.diff(inner, axis=1), 0.5)
    np.testing.assert_allclose(np.diff(inner, axis=0), 2.0)


def test_results_never_alias_kernel_scratch_memory(device, rng):
    """Kernels reuse scratch buffers between calls: earlier results must not change."""
    x1, x2 = _rand(rng, (2, 3, 6, 6), device, "float32"), _rand(rng, (2, 3, 6, 6), device,
                                                                 "float32")
    w = _rand(rng, (4, 3, 3, 3), device, "float32")
    kw = dict(kernel=(3, 3), pad=(1, 1), num_filter=4, no_bias=True)
    y1 = mx.nd.Convolution(x1, w, **kw)
    first = y1.asnumpy().copy()
    y2 = mx.nd.Convolution(x2, w, **kw)
    d1 = mx.nd.Deconvolution(y1, w, kernel=(3, 3), pad=(1, 1), num_filter=3)
    d2 = mx.nd.Deconvolution(y2, w, kernel=(3, 3), pad=(1, 1), num_filter=3)
    np.testing.assert_array_equal(y1.asnumpy(), first)
    assert not np.array_equal(y1.asnumpy(), y2.asnumpy())
    assert not np.array_equal(d1.asnumpy(), d2.asnumpy())
    np.testing.assert_array_equal(
        d1.asnumpy(), mx.nd.Deconvolution(y1, w, kernel=(3, 3), pad=(1, 1),
                                          num_filter=3).asnumpy())


def test_convolutions_in_threads_match_serial_results(device, rng):
    """Scratch memory is per thread: concurrent convolutions and their backward
    passes do not interfere (ops called directly: autograd's recording flag is
    process-wide)."""
    xs = [_rand(rng, (8, 8, 32, 32), device, "float32") for _ in range(4)]
    w = _rand(rng, (16, 8, 3, 3), device, "float32")
    geometry = dict(kernel=(3, 3), stride=(2, 2), dilate=(1, 1), pad=(1, 1), num_filter=16,
                    num_group=1, no_bias=True)

    def run(x):
        y = mx.nd.Convolution(x, w, kernel=(3, 3), stride=(2, 2), pad=(1, 1), num_filter=16,
                              no_bias=True)
        dx, dw = mx.nd.invoke("convolution_backward", y, x, w, grads=(1, 1, 0), **geometry)
        return y.asnumpy(), dx.asnumpy(), dw.asnumpy()

    serial = [run(x) for x in xs]
    results = [None] * len(xs)

    def work(i):
        for _ in range(5):
            results[i] = run(xs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, serial):
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kernel, stride, pad, full", [
    ((2, 2), (2, 2), (0, 0), False),   # windows tile the input
    ((3, 3), (2, 2), (1, 1), False),   # overlapping windows
    ((2, 2), (3, 3), (0, 0), False),   # gaps between windows
    ((2, 3), (2, 3), (1, 1), True),    # disjoint windows over a padded, ceil-sized grid
])
def test_max_pool_gradient_with_ties_goes_to_each_windows_first_maximum(device, kernel,
                                                                        stride, pad, full):
    """After a ReLU most windows are all zeros: each window's gradient goes to its
    first maximum in row-major order, and windows add up where they overlap."""
    rng = np.random.default_rng(5)
    x = np.maximum(rng.standard_normal((2, 3, 7, 8)), 0).round(1)
    g_shape = mx.nd.Pooling(mx.nd.array(x, ctx=device), kernel=kernel, stride=stride, pad=pad,
                            pooling_convention="full" if full else "valid").shape
    g = rng.standard_normal(g_shape)
    xs = mx.nd.array(x, ctx=device, dtype="float64")
    xs.attach_grad()
    with mx.autograd.record():
        y = mx.nd.Pooling(xs, kernel=kernel, stride=stride, pad=pad,
                          pooling_convention="full" if full else "valid")
    y.backward(mx.nd.array(g, ctx=device, dtype="float64"))
    want = np.zeros_like(x)
    for n, c, i, j in np.ndindex(*g_shape):
        lo = (i * stride[0] - pad[0], j * stride[1] - pad[1])
        rows = range(max(lo[0], 0), min(lo[0] + kernel[0], x.shape[2]))
        cols = range(max(lo[1], 0), min(lo[1] + kernel[1], x.shape[3]))
        window = [(r, s) for r in rows for s in cols]
        if not window:  # a 'full' window wholly in the padding reaches no input
            continue
        best = max(x[n, c, r, s] for r, s in window)
        r, s = next(p for p in window if x[n, c, p[0], p[1]] == best)
        want[n, c, r, s] += g[n, c, i, j]
    np.testing.assert_allclose(xs.grad.asnumpy(), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("spatial, kernel, stride, pad, dilate, groups", [
    ((7, 6), (3, 2), (1, 1), (1, 0), (1, 1), 1), ((9, 8), (3, 3), (2, 2), (1, 1), (1, 2), 2),
    ((11,), (4,), (3,), (2,), (2,), 1), ((4, 5, 3), (2, 3, 2), (2, 1, 1), (1, 1, 0), (1, 1, 2), 2),
])
def test_per_sample_and_batch_folded_products_agree(device, monkeypatch, spatial, kernel,
                                                    stride, pad, dilate, groups):
    """Products run per sample, or folded over the batch for small images, on the
    whole batch or a chunk of samples at a time: every way gives the convolution and
    transposed convolution and their gradients."""
    from mxcore_cpu.kernels import conv as conv_kernels
    from mxcore.testing.optable import _conv_ref
    from mxcore.testing.optable.conv import deconv_ref
    rng = np.random.default_rng(len(spatial) + groups)
    x = rng.standard_normal((3, 4) + spatial)
    w = rng.standard_normal((6, 4 // groups) + kernel)
    wt = rng.standard_normal((6, 4 // groups) + kernel)
    geometry = dict(kernel=kernel, stride=stride, dilate=dilate, pad=pad, num_group=groups)
    results = []
    for fold_run, chunk in itertools.product((0, 1 << 30), (1, 1 << 30)):
        # never fold / always fold; one sample per chunk / the whole batch at once
        monkeypatch.setattr(conv_kernels, "FOLD_RUN", fold_run)
        monkeypatch.setattr(conv_kernels, "CHUNK_BYTES", chunk)
        monkeypatch.setattr(conv_kernels, "FOLD_WIDTH", chunk)
        heads = np.random.default_rng(7)  # the same output gradients in both runs
        xs, ws, wts = (mx.nd.array(a, ctx=device, dtype="float64") for a in (x, w, wt))
        y = mx.nd.Convolution(xs, ws, num_filter=6, no_bias=True, **geometry)
        g = mx.nd.array(heads.standard_normal(y.shape), ctx=device, dtype="float64")
        conv_grads = mx.nd.invoke("convolution_backward", g, xs, ws, num_filter=6,
                                  no_bias=True, grads=(1, 1, 0), **geometry)
        d = mx.nd.Deconvolution(y, wts, num_filter=4, **geometry)
        gd = mx.nd.array(heads.standard_normal(d.shape), ctx=device, dtype="float64")
        deconv_grads = mx.nd.invoke("deconvolution_backward", gd, y, wts, num_filter=4,
                                    no_bias=True, adj=(0,) * len(spatial), grads=(1, 1, 0),
                                    **geometry)
        results.append([a.asnumpy() for a in (y, d) + tuple(conv_grads) + tuple(deconv_grads)])
        np.testing.assert_allclose(results[-1][0], _conv_ref(x, w, None, stride, pad, dilate,
                                                             groups), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(results[-1][1], deconv_ref(results[-1][0], wt, None, stride,
                                                              pad, dilate, None, groups),
                                   rtol=1e-10, atol=1e-10)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_scratch_memory_is_fully_written_before_it_is_read(device, monkeypatch):
    """Scratch buffers hold the previous call's values: poisoned with NaN on every
    hand-out, no result may change (every element read was written first)."""
    from mxcore_cpu.kernels import conv as conv_kernels
    rng = np.random.default_rng(21)
    x = rng.standard_normal((3, 4, 7, 6))
    w = rng.standard_normal((6, 2, 3, 2))
    geometry = dict(kernel=(3, 2), stride=(2, 1), dilate=(1, 2), pad=(1, 1), num_group=2)

    def run():
        xs, ws = (mx.nd.array(a, ctx=device) for a in (x, w))
        y = mx.nd.Convolution(xs, ws, num_filter=6, no_bias=True, **geometry)
        grads = mx.nd.invoke("convolution_backward", y, xs, ws, num_filter=6, no_bias=True,
                             grads=(1, 1, 0), **geometry)
        d = mx.nd.Deconvolution(y, ws, num_filter=4, **geometry)
        dgrads = mx.nd.invoke("deconvolution_backward", d, y, ws, num_filter=4, no_bias=True,
                              adj=(0, 0), grads=(1, 1, 0), **geometry)
        return [a.asnumpy() for a in (y, d) + tuple(grads) + tuple(dgrads)]

    clean = run()
    take = conv_kernels.Workspace.take

    def poisoned(self, slot, shape, dtype):
        out = take(self, slot, shape, dtype)
        out.fill(np.nan)
        return out

    monkeypatch.setattr(conv_kernels.Workspace, "take", poisoned)
    for fold_run in (0, 1 << 30):
        monkeypatch.setattr(conv_kernels, "FOLD_RUN", fold_run)
        for got, want in zip(run(), clean):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
