"""Convolution and pooling layers (gluon.nn.Conv*D, Conv*DTranspose, *Pool*D,
ReflectionPad2D): shapes, MXNet names and reprs, values against direct numpy loops,
gradients, deferred shapes, parameter files and errors."""
from __future__ import annotations

import itertools
import math
import os

import numpy as np
import pytest

import mxcore as mx
from mxcore import autograd
from mxcore.base import MXCoreError
from mxcore.gluon import nn

nd = mx.nd

CONV = {1: nn.Conv1D, 2: nn.Conv2D, 3: nn.Conv3D}
CONV_T = {1: nn.Conv1DTranspose, 2: nn.Conv2DTranspose, 3: nn.Conv3DTranspose}
MAXPOOL = {1: nn.MaxPool1D, 2: nn.MaxPool2D, 3: nn.MaxPool3D}
AVGPOOL = {1: nn.AvgPool1D, 2: nn.AvgPool2D, 3: nn.AvgPool3D}
GLOBALMAX = {1: nn.GlobalMaxPool1D, 2: nn.GlobalMaxPool2D, 3: nn.GlobalMaxPool3D}
GLOBALAVG = {1: nn.GlobalAvgPool1D, 2: nn.GlobalAvgPool2D, 3: nn.GlobalAvgPool3D}


# numpy references: plain loops over output positions, written from the definitions -----

def conv_ref(x, w, b, stride, pad, dilate, groups):
    """Cross-correlation of x (N, C, *S) with w (F, C/groups, *K), plus b (F,)."""
    n, c = x.shape[:2]
    f, cg = w.shape[:2]
    kernel = w.shape[2:]
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in pad])
    out = [(s + 2 * p - d * (k - 1) - 1) // st + 1
           for s, p, d, k, st in zip(x.shape[2:], pad, dilate, kernel, stride)]
    y = np.zeros((n, f) + tuple(out))
    fg = f // groups
    for o in itertools.product(*(range(v) for v in out)):
        for fi in range(f):
            g = fi // fg
            acc = np.zeros(n)
            for ko in itertools.product(*(range(k) for k in kernel)):
                pos = tuple(oi * st + ki * d for oi, st, ki, d in zip(o, stride, ko, dilate))
                acc += xp[(slice(None), slice(g * cg, (g + 1) * cg)) + pos] @ w[(fi, slice(None))
                                                                              + ko]
            y[(slice(None), fi) + o] = acc + (b[fi] if b is not None else 0.0)
    return y


def conv_transpose_ref(x, w, b, stride, pad, dilate, adj, groups):
    """Transposed convolution of x (N, C, *S) with w (C, F/groups, *K), plus b (F,):
    input pixel i of channel c adds x * w[c, f, k] at output i * stride + k * dilate
    - pad, for every kernel offset k."""
    n, c = x.shape[:2]
    fg = w.shape[1]
    kernel = w.shape[2:]
    cg = c // groups
    out = [(s - 1) * st - 2 * p + d * (k - 1) + 1 + a
           for s, st, p, d, k, a in zip(x.shape[2:], stride, pad, dilate, kernel, adj)]
    y = np.zeros((n, fg * groups) + tuple(out))
    for ci in range(c):
        g = ci // cg
        for i in itertools.product(*(range(v) for v in x.shape[2:])):
            for ko in itertools.product(*(range(k) for k in kernel)):
                o = tuple(ii * st + ki * d - p
                          for ii, st, ki, d, p in zip(i, stride, ko, dilate, pad))
                if all(0 <= oi < size for oi, size in zip(o, out)):
                    y[(slice(None), slice(g * fg, (g + 1) * fg)) + o] += \
                        x[(slice(None), ci) + i][:, None] * w[(ci, slice(None)) + ko][None]
    if b is not None:
        y += b.reshape((1, -1) + (1,) * len(out))
    return y


def pool_ref(x, kernel, stride, pad, pool_type, ceil_mode=False, count_include_pad=True):
    """MXNet's pooling: windows clipped to the padded input (the divisor of an average
    with count_include_pad), then to the input itself."""
    rnd = math.ceil if ceil_mode else math.floor
    spatial = x.shape[2:]
    out = [int(rnd((s + 2 * p - k) / st)) + 1 for s, p, k, st in zip(spatial, pad, kernel, stride)]
    y = np.zeros(x.shape[:2] + tuple(out))
    for o in itertools.product(*(range(v) for v in out)):
        lo = [oi * st - p for oi, st, p in zip(o, stride, pad)]
        hi = [min(l + k, s + p) for l, k, s, p in zip(lo, kernel, spatial, pad)]
        padded_size = math.prod(h - l for l, h in zip(lo, hi))
        lo_c = [max(l, 0) for l in lo]
        hi_c = [min(h, s) for h, s in zip(hi, spatial)]
        win = x[(Ellipsis,) + tuple(slice(l, h) for l, h in zip(lo_c, hi_c))]
        axes = tuple(range(2, x.ndim))
        if pool_type == "max":
            y[(Ellipsis,) + o] = win.max(axis=axes)
        else:
            size = padded_size if count_include_pad else math.prod(
                h - l for l, h in zip(lo_c, hi_c))
            y[(Ellipsis,) + o] = win.sum(axis=axes) / size
    return y


def _arr(a, device, dtype="float32"):
    return nd.array(np.asarray(a, dtype=dtype), ctx=device, dtype=dtype)


def _expected_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


# shapes ----------------------------------------------------------------------------------

CONV_CASES = [
    # (dims, in_channels, spatial, channels, kernel, strides, padding, dilation, groups)
    (1, 3, (11,), 4, 3, 1, 0, 1, 1),
    (1, 4, (16,), 6, 5, 2, 2, 1, 2),
    (1, 2, (9,), 2, 2, 3, 1, 2, 2),
    (2, 1, (28, 28), 6, 5, 1, 2, 1, 1),
    (2, 3, (10, 7), 8, (3, 2), (2, 1), (1, 0), 1, 1),
    (2, 4, (9, 9), 4, 3, 1, 2, 2, 4),
    (2, 6, (8, 11), 9, (1, 3), (3, 2), (0, 1), (1, 3), 3),
    (2, 2, (5, 5), 3, 5, 1, 0, 1, 1),
    (3, 2, (5, 6, 7), 4, 3, 1, 1, 1, 1),
    (3, 4, (6, 6, 5), 2, (2, 3, 1), (2, 1, 2), (0, 1, 1), (1, 2, 1), 2),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0]}d-g{c[-1]}-{c[2]}")
def test_conv_output_and_weight_shapes(device, case):
    dims, cin, spatial, channels, kernel, strides, padding, dilation, groups = case
    layer = CONV[dims](channels, kernel, strides=strides, padding=padding, dilation=dilation,
                       groups=groups)
    layer.initialize(ctx=device)
    y = layer(nd.ones((2, cin) + spatial, ctx=device))

    def per_dim(v):
        return (v,) * dims if isinstance(v, int) else tuple(v)
    out = tuple(_expected_size(s, k, st, p, d) for s, k, st, p, d in zip(
        spatial, per_dim(kernel), per_dim(strides), per_dim(padding), per_dim(dilation)))
    assert y.shape == (2, channels) + out
    assert layer.weight.shape == (channels, cin // groups) + per_dim(kernel)
    assert layer.bias.shape == (channels,)


POOL_CASES = [
    # (dims, spatial, pool_size, strides, padding, ceil_mode)
    (1, (9,), 2, None, 0, False),
    (1, (9,), 3, 2, 1, True),
    (2, (28, 28), 2, 2, 0, False),
    (2, (7, 9), (3, 2), (2, 3), (1, 0), False),
    (2, (7, 10), (3, 2), (2, 3), (1, 0), True),  # a partial last window
    (2, (6, 6), 3, 1, 1, False),
    (3, (5, 6, 7), 2, None, 0, True),
    (3, (5, 6, 7), (3, 1, 2), (1, 2, 2), (1, 0, 1), False),
]


@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: f"{c[0]}d-{c[2]}-ceil{c[-1]}")
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_shapes_and_values_match_numpy(device, case, kind):
    dims, spatial, pool_size, strides, padding, ceil_mode = case
    layer = (MAXPOOL if kind == "max" else AVGPOOL)[dims](
        pool_size, strides=strides, padding=padding, ceil_mode=ceil_mode)
    x = np.random.default_rng(7).normal(size=(2, 3) + spatial)
    y = layer(_arr(x, device))

    def per_dim(v):
        return (v,) * dims if isinstance(v, int) else tuple(v)
    k = per_dim(pool_size)
    ref = pool_ref(x, k, per_dim(strides) if strides is not None else k, per_dim(padding),
                   kind, ceil_mode)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y.asnumpy(), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool_count_include_pad(device, count_include_pad):
    x = np.random.default_rng(3).uniform(size=(1, 2, 5, 5))
    layer = nn.AvgPool2D(3, strides=2, padding=1, count_include_pad=count_include_pad)
    y = layer(_arr(x, device)).asnumpy()
    np.testing.assert_allclose(y, pool_ref(x, (3, 3), (2, 2), (1, 1), "avg",
                                           count_include_pad=count_include_pad), rtol=1e-5)
    # the corner window holds 4 input values of 9 places
    expect = x[0, 0, :2, :2].sum() / (9 if count_include_pad else 4)
    assert y[0, 0, 0, 0] == pytest.approx(expect, rel=1e-5)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_global_pooling(device, dims):
    x = np.random.default_rng(dims).normal(size=(2, 3) + (4, 5, 3)[:dims])
    axes = tuple(range(2, 2 + dims))
    gmax, gavg = GLOBALMAX[dims](), GLOBALAVG[dims]()
    np.testing.assert_allclose(gmax(_arr(x, device)).asnumpy(),
                               x.max(axis=axes, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(gavg(_arr(x, device)).asnumpy(),
                               x.mean(axis=axes, keepdims=True), rtol=1e-5, atol=1e-7)


# values -------------------------------------------------------------------------------

VALUE_CASES = [
    # (dims, in_channels, spatial, channels, kernel, strides, padding, dilation, groups, bias)
    (1, 3, (8,), 4, 3, 2, 1, 1, 1, True),
    (1, 4, (9,), 2, 2, 1, 0, 3, 2, False),
    (2, 2, (5, 6), 3, (3, 2), 1, (1, 0), 1, 1, True),
    (2, 4, (7, 7), 6, 3, 2, 1, 2, 2, True),
    (2, 3, (4, 5), 3, 1, 1, 0, 1, 3, False),
    (3, 2, (4, 4, 5), 2, (2, 3, 2), (1, 2, 1), (1, 1, 0), 1, 1, True),
    (3, 4, (5, 4, 4), 2, 2, 1, 1, (2, 1, 1), 2, True),
]


def _init_like_reference(layer, device, seed):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=layer.weight.shape)
    layer.weight.set_data(_arr(w, device))
    b = None
    if layer.bias is not None:
        b = rng.normal(size=layer.bias.shape)
        layer.bias.set_data(_arr(b, device))
    return w, b


@pytest.mark.parametrize("case", VALUE_CASES, ids=lambda c: f"{c[0]}d-g{c[8]}-bias{c[9]}")
def test_conv_values_match_a_numpy_loop(device, case):
    dims, cin, spatial, channels, kernel, strides, padding, dilation, groups, bias = case
    layer = CONV[dims](channels, kernel, strides=strides, padding=padding, dilation=dilation,
                       groups=groups, use_bias=bias, in_channels=cin)
    layer.initialize(ctx=device)
    w, b = _init_like_reference(layer, device, 11)
    x = np.random.default_rng(5).normal(size=(2, cin) + spatial)

    def per_dim(v):
        return (v,) * dims if isinstance(v, int) else tuple(v)
    ref = conv_ref(x, w, b, per_dim(strides), per_dim(padding), per_dim(dilation), groups)
    np.testing.assert_allclose(layer(_arr(x, device)).asnumpy(), ref, rtol=1e-4, atol=1e-5)


def test_activation_is_applied(device):
    layer = nn.Conv2D(3, 2, in_channels=2, activation="relu")
    layer.initialize(ctx=device)
    w, b = _init_like_reference(layer, device, 2)
    x = np.random.default_rng(2).normal(size=(2, 2, 4, 4))
    ref = np.maximum(conv_ref(x, w, b, (1, 1), (0, 0), (1, 1), 1), 0)
    np.testing.assert_allclose(layer(_arr(x, device)).asnumpy(), ref, rtol=1e-4, atol=1e-5)
    assert (ref == 0).any()  # the activation had something to do


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_channel_last_layout_matches_channel_first(device, dims):
    first, last = ("NCW", "NCHW", "NCDHW")[dims - 1], ("NWC", "NHWC", "NDHWC")[dims - 1]
    a = CONV[dims](4, 3, padding=1, strides=2, groups=2, in_channels=6, layout=first)
    b = CONV[dims](4, 3, padding=1, strides=2, groups=2, in_channels=6, layout=last)
    a.initialize(ctx=device)
    b.initialize(ctx=device)
    to_last = (0,) + tuple(range(2, dims + 2)) + (1,)
    to_first = (0, dims + 1) + tuple(range(1, dims + 1))
    assert b.weight.shape == (4,) + (3,) * dims + (3,)  # MXNet: (F, *kernel, C/groups)
    b.weight.set_data(a.weight.data().transpose(to_last))
    b.bias.set_data(a.bias.data())
    x = nd.random.normal(shape=(2, 6) + (5, 6, 4)[:dims], ctx=device)
    np.testing.assert_allclose(b(x.transpose(to_last)).transpose(to_first).asnumpy(),
                               a(x).asnumpy(), rtol=1e-5, atol=1e-5)
    pool = MAXPOOL[dims](2, layout=last)
    np.testing.assert_allclose(pool(x.transpose(to_last)).transpose(to_first).asnumpy(),
                               MAXPOOL[dims](2)(x).asnumpy())


def test_reflection_pad2d_matches_numpy(device):
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 5))
    y = nn.ReflectionPad2D(2)(_arr(x, device))
    np.testing.assert_allclose(y.asnumpy(), np.pad(x, [(0, 0), (0, 0), (2, 2), (2, 2)],
                                                   mode="reflect"), rtol=1e-6)
    y = nn.ReflectionPad2D((0, 0, 0, 0, 1, 0, 0, 2))(_arr(x, device))
    assert y.shape == (2, 3, 5, 7)


# gradients ------------------------------------------------------------------------------

def test_gradients_match_the_reference(device):
    """The output is linear in the input and in the weight: their gradients are the
    reference convolution of basis arrays, contracted with the head gradient."""
    layer = nn.Conv2D(4, (2, 3), strides=(2, 1), padding=1, dilation=(1, 2), groups=2,
                      in_channels=4)
    layer.initialize(ctx=device)
    w, b = _init_like_reference(layer, device, 4)
    rng = np.random.default_rng(9)
    x = rng.normal(size=(2, 4, 4, 5))
    xa = _arr(x, device)
    xa.attach_grad()
    with autograd.record():
        y = layer(xa)
    head = rng.normal(size=y.shape)
    y.backward(_arr(head, device))
    args = ((2, 1), (1, 1), (1, 2), 2)
    dw = np.zeros_like(w)
    for i in np.ndindex(*w.shape):
        e = np.zeros_like(w)
        e[i] = 1
        dw[i] = (conv_ref(x, e, None, *args) * head).sum()
    dx = np.zeros_like(x)
    for i in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        e[i] = 1
        dx[i] = (conv_ref(e, w, None, *args) * head).sum()
    np.testing.assert_allclose(layer.weight.grad().asnumpy(), dw, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.bias.grad().asnumpy(), head.sum(axis=(0, 2, 3)),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(xa.grad.asnumpy(), dx, rtol=1e-4, atol=1e-4)


def test_gradients_flow_through_a_small_cnn(device):
    net = nn.HybridSequential()
    with net.name_scope():
        net.add(nn.Conv2D(4, 3, padding=1, activation="relu"), nn.MaxPool2D(),
                nn.AvgPool2D(2, ceil_mode=True),
                nn.Flatten(), nn.Dense(3))
    net.initialize(mx.init.Xavier(), ctx=device)
    x = nd.random.normal(shape=(3, 2, 8, 8), ctx=device)
    with autograd.record():
        loss = mx.gluon.loss.SoftmaxCrossEntropyLoss()(net(x), nd.array([0, 1, 2], ctx=device))
    loss.backward()
    for name, p in net.collect_params().items():
        g = p.grad().asnumpy()
        assert np.isfinite(g).all() and np.abs(g).sum() > 0, name


# parameters, names, files ---------------------------------------------------------------

def test_parameter_names_and_shapes_follow_mxnet(device):
    net = nn.HybridSequential(prefix="net_")
    with net.name_scope():
        net.add(nn.Conv2D(6, 5), nn.MaxPool2D(), nn.Conv2D(16, 3, use_bias=False),
                nn.Conv1D(2, 3), nn.Conv3D(2, 1), nn.AvgPool2D(), nn.GlobalAvgPool2D())
    params = net.collect_params()
    assert list(params.keys()) == ["net_conv0_weight", "net_conv0_bias", "net_conv1_weight",
                                   "net_conv2_weight", "net_conv2_bias", "net_conv3_weight",
                                   "net_conv3_bias"]
    assert params["net_conv0_weight"].shape == (6, 0, 5, 5)  # in_channels deferred
    assert params["net_conv0_bias"].shape == (6,)
    assert [net[i].name for i in (1, 5, 6)] == ["net_pool0", "net_pool1", "net_pool2"]
    # the structural names a parameter file is keyed by
    assert list(net._collect_params_with_prefix()) == [
        "0.weight", "0.bias", "2.weight", "3.weight", "3.bias", "4.weight", "4.bias"]


def test_deferred_in_channels_are_inferred_at_the_first_forward(device):
    layer = nn.Conv2D(8, 3, groups=2)
    layer.initialize(mx.init.Xavier(), ctx=device)
    assert layer.weight.shape == (8, 0, 3, 3)
    with pytest.raises(mx.gluon.DeferredInitializationError):
        layer.weight.data()
    y = layer(nd.ones((1, 6, 5, 5), ctx=device))
    assert y.shape == (1, 8, 3, 3) and layer.weight.shape == (8, 3, 3, 3)
    assert layer.weight.data().context == device
    assert repr(layer) == "Conv2D(6 -> 8, kernel_size=(3, 3), stride=(1, 1), groups=2)"
    fixed = nn.Conv2D(8, 3, in_channels=4)
    fixed.initialize(ctx=device)
    assert fixed.weight.data().shape == (8, 4, 3, 3)  # known at once: no deferral
    last = nn.Conv3D(4, (1, 2, 3), groups=2, layout="NDHWC")
    last.initialize(ctx=device)
    assert last.weight.shape == (4, 1, 2, 3, 0)
    assert last(nd.ones((1, 3, 4, 5, 6), ctx=device)).shape == (1, 3, 3, 3, 4)
    assert last.weight.shape == (4, 1, 2, 3, 3)


def test_save_load_round_trip(device, tmp_path):
    def make():
        net = nn.HybridSequential()
        with net.name_scope():
            net.add(nn.Conv2D(3, 3, padding=1, activation="tanh"), nn.MaxPool2D(),
                    nn.Conv2D(2, 2, use_bias=False),
                    nn.GlobalAvgPool2D(), nn.Flatten(), nn.Dense(4))
        return net
    net = make()
    net.initialize(mx.init.Xavier(), ctx=device)
    x = nd.random.normal(shape=(2, 1, 6, 6), ctx=device)
    expect = net(x).asnumpy()
    path = str(tmp_path / "cnn.safetensors")
    net.save_parameters(path)
    other = make()  # deferred shapes: set by the loaded arrays
    other.load_parameters(path, ctx=device)
    assert other[0].weight.shape == (3, 1, 3, 3)
    np.testing.assert_array_equal(other(x).asnumpy(), expect)
    assert os.listdir(tmp_path) == ["cnn.safetensors"]


def test_hybridize_is_accepted(device):
    net = nn.HybridSequential()
    with net.name_scope():
        net.add(nn.Conv2D(2, 3), nn.MaxPool2D(), nn.Flatten(), nn.Dense(2))
    net.initialize(ctx=device)
    x = nd.random.normal(shape=(1, 1, 8, 8), ctx=device)
    before = net(x).asnumpy()
    net.hybridize()
    assert net[0]._active
    np.testing.assert_array_equal(net(x).asnumpy(), before)


def test_reprs_follow_mxnet():
    assert repr(nn.Conv2D(6, 5, in_channels=1)) == \
        "Conv2D(1 -> 6, kernel_size=(5, 5), stride=(1, 1))"
    assert repr(nn.Conv2D(16, 5, padding=2, dilation=2, activation="relu")) == (
        "Conv2D(None -> 16, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2), "
        "dilation=(2, 2), Activation(relu))")
    assert repr(nn.Conv1D(4, 3, strides=2, use_bias=False, in_channels=2)) == \
        "Conv1D(2 -> 4, kernel_size=(3,), stride=(2,), bias=False)"
    assert repr(nn.Conv3D(4, (1, 2, 3), layout="NDHWC", in_channels=5)) == \
        "Conv3D(5 -> 4, kernel_size=(1, 2, 3), stride=(1, 1, 1))"
    assert repr(nn.MaxPool2D(2, 2)) == (
        "MaxPool2D(size=(2, 2), stride=(2, 2), padding=(0, 0), ceil_mode=False, "
        "global_pool=False, pool_type=max, layout=NCHW)")
    assert repr(nn.AvgPool1D(3, ceil_mode=True)) == (
        "AvgPool1D(size=(3,), stride=(3,), padding=(0,), ceil_mode=True, "
        "global_pool=False, pool_type=avg, layout=NCW)")
    assert repr(nn.GlobalMaxPool3D()) == (
        "GlobalMaxPool3D(size=(1, 1, 1), stride=(1, 1, 1), padding=(0, 0, 0), "
        "ceil_mode=True, global_pool=True, pool_type=max, layout=NCDHW)")
    assert repr(nn.ReflectionPad2D(3)) == "ReflectionPad2D(padding=(3, 3, 3, 3))"


# errors ---------------------------------------------------------------------------------

def test_wrong_channel_count_names_the_layer_and_the_shapes(device):
    net = nn.HybridSequential(prefix="model_")
    with net.name_scope():
        net.add(nn.Conv2D(4, 3))
    net.initialize(ctx=device)
    net(nd.ones((1, 3, 5, 5), ctx=device))  # in_channels is now 3
    with pytest.raises(MXCoreError, match=r"Conv2D 'model_conv0': input of shape "
                                          r"\(1, 2, 5, 5\) has 2 channels .*takes 3 .*"
                                          r"model_conv0_weight has shape \(4, 3, 3, 3\)"):
        net(nd.ones((1, 2, 5, 5), ctx=device))
    nhwc = nn.Conv2D(4, 3, layout="NHWC", in_channels=3)
    nhwc.initialize(ctx=device)
    with pytest.raises(MXCoreError, match=r"\(1, 5, 5, 2\) has 2 channels \(NHWC\)"):
        nhwc(nd.ones((1, 5, 5, 2), ctx=device))


def test_wrong_rank_and_groups_are_errors_naming_the_layer(device):
    conv = nn.Conv2D(4, 3, groups=2, prefix="c_")
    conv.initialize(ctx=device)
    with pytest.raises(MXCoreError, match=r"Conv2D 'c' takes 4-d input \(NCHW\), got shape "
                                          r"\(1, 4, 5\)"):
        conv(nd.ones((1, 4, 5), ctx=device))
    with pytest.raises(MXCoreError, match="3 channels, not a multiple of groups=2"):
        conv(nd.ones((1, 3, 5, 5), ctx=device))
    assert conv.weight.shape == (4, 0, 3, 3)  # a failed first call decides nothing
    assert conv(nd.ones((1, 4, 5, 5), ctx=device)).shape == (1, 4, 3, 3)
    with pytest.raises(MXCoreError, match=r"MaxPool2D 'p' takes 4-d input"):
        nn.MaxPool2D(prefix="p_")(nd.ones((2, 3), ctx=device))
    big = nn.Conv2D(2, 7, in_channels=1)
    big.initialize(ctx=device)
    with pytest.raises(MXCoreError, match="larger than the padded input"):
        big(nd.ones((1, 1, 5, 5), ctx=device))  # the operator's own check


@pytest.mark.parametrize("make, message", [
    (lambda: nn.Conv2D(4, (3, 3, 3)), "kernel_size must be an integer or 2 integers"),
    (lambda: nn.Conv2D(4, 3, strides=0), "strides must be >= 1"),
    (lambda: nn.Conv2D(4, 3, padding=-1), "padding must be >= 0"),
    (lambda: nn.Conv1D(4, 3, layout="NCHW"), r"layout must be one of \('NCW', 'NWC'\)"),
    (lambda: nn.Conv2D(5, 3, groups=2), "must be multiples of groups"),
    (lambda: nn.Conv2D(4, 3, groups=2, in_channels=3), "must be multiples of groups"),
    (lambda: nn.Conv3D(0, 3), "channels and groups must be >= 1"),
    (lambda: nn.MaxPool2D((2, 2, 2)), "pool_size must be an integer or 2 integers"),
    (lambda: nn.AvgPool3D(layout="NCHW"), "layout must be one of"),
    (lambda: nn.ReflectionPad2D((1, 0, 0, 0, 1, 1, 1, 1)), "first four values"),
    (lambda: nn.Conv2D(4, 2.5), "kernel_size must be an integer"),
])
def test_bad_constructor_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# transposed convolutions ---------------------------------------------------------------

# dims, in_channels, spatial, channels, kernel, strides, padding, output_padding, dilation,
# groups, bias
TRANSPOSE_CASES = [
    (1, 3, (5,), 2, 3, 2, 1, 1, 1, 1, True),
    (2, 4, (3, 4), 6, (3, 2), (2, 3), (1, 0), (1, 2), 1, 2, True),
    (2, 2, (4, 3), 3, 4, 2, 1, 0, (2, 1), 1, False),
    (3, 2, (2, 3, 2), 4, 2, (1, 2, 2), (0, 1, 0), (0, 1, 1), 1, 2, True),
]


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=lambda c: f"{c[0]}d-g{c[9]}-bias{c[10]}")
def test_conv_transpose_values_and_shapes_match_a_numpy_loop(device, case):
    dims, cin, spatial, channels, kernel, strides, padding, outpad, dilation, groups, bias = \
        case

    def per_dim(v):
        return (v,) * dims if isinstance(v, int) else tuple(v)
    layer = CONV_T[dims](channels, kernel, strides=strides, padding=padding,
                         output_padding=outpad, dilation=dilation, groups=groups,
                         use_bias=bias, in_channels=cin)
    layer.initialize(ctx=device)
    assert layer.weight.shape == (cin, channels // groups) + per_dim(kernel)
    w, b = _init_like_reference(layer, device, 3)
    x = np.random.default_rng(6).normal(size=(2, cin) + spatial)
    ref = conv_transpose_ref(x, w, b, per_dim(strides), per_dim(padding), per_dim(dilation),
                             per_dim(outpad), groups)
    y = layer(_arr(x, device))
    # MXNet's documented size: (size - 1) * strides - 2 * padding + kernel_size + outpad
    # (with dilation d the kernel spans d * (kernel_size - 1) + 1)
    assert y.shape[2:] == tuple((s - 1) * st - 2 * p + d * (k - 1) + 1 + a for s, st, p, d, k, a
                                in zip(spatial, per_dim(strides), per_dim(padding),
                                       per_dim(dilation), per_dim(kernel), per_dim(outpad)))
    np.testing.assert_allclose(y.asnumpy(), ref, rtol=1e-4, atol=1e-5)


def test_conv_transpose_gradients_match_the_reference(device):
    layer = nn.Conv2DTranspose(4, (3, 2), strides=(2, 1), padding=(1, 0), output_padding=(1, 0),
                               groups=2, in_channels=2)
    layer.initialize(ctx=device)
    w, b = _init_like_reference(layer, device, 8)
    rng = np.random.default_rng(10)
    x = rng.normal(size=(2, 2, 3, 3))
    xa = _arr(x, device)
    xa.attach_grad()
    with autograd.record():
        y = layer(xa)
    head = rng.normal(size=y.shape)
    y.backward(_arr(head, device))
    args = ((2, 1), (1, 0), (1, 1), (1, 0), 2)
    dw = np.zeros_like(w)
    for i in np.ndindex(*w.shape):
        e = np.zeros_like(w)
        e[i] = 1
        dw[i] = (conv_transpose_ref(x, e, None, *args) * head).sum()
    dx = np.zeros_like(x)
    for i in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        e[i] = 1
        dx[i] = (conv_transpose_ref(e, w, None, *args) * head).sum()
    np.testing.assert_allclose(layer.weight.grad().asnumpy(), dw, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.bias.grad().asnumpy(), head.sum(axis=(0, 2, 3)),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(xa.grad.asnumpy(), dx, rtol=1e-4, atol=1e-4)


def test_conv_transpose_parameters_follow_mxnet(device):
    net = nn.HybridSequential(prefix="gen_")
    with net.name_scope():
        net.add(nn.Conv2DTranspose(8, 4, strides=2, padding=1, use_bias=False),
                nn.Conv2DTranspose(3, 4, strides=2, padding=1, groups=1, activation="tanh"),
                nn.Conv1DTranspose(2, 3), nn.Conv3DTranspose(6, 1, groups=3, in_channels=3))
    params = net.collect_params()
    assert list(params.keys()) == ["gen_conv0_weight", "gen_conv1_weight", "gen_conv1_bias",
                                   "gen_conv2_weight", "gen_conv2_bias", "gen_conv3_weight",
                                   "gen_conv3_bias"]
    # (in_channels, channels / groups, *kernel): in_channels deferred
    assert params["gen_conv0_weight"].shape == (0, 8, 4, 4)
    assert params["gen_conv2_weight"].shape == (0, 2, 3)
    assert params["gen_conv3_weight"].shape == (3, 2, 1, 1, 1)
    assert params["gen_conv1_bias"].shape == (3,)


def test_conv_transpose_deferred_in_channels_and_channel_last(device):
    layer = nn.Conv2DTranspose(6, 3, strides=2, output_padding=1, groups=3)
    layer.initialize(mx.init.Xavier(), ctx=device)
    assert layer.weight.shape == (0, 2, 3, 3)
    y = layer(nd.ones((2, 9, 4, 5), ctx=device))
    assert y.shape == (2, 6, 10, 12) and layer.weight.shape == (9, 2, 3, 3)
    assert repr(layer) == ("Conv2DTranspose(9 -> 6, kernel_size=(3, 3), stride=(2, 2), "
                           "output_padding=(1, 1), groups=3)")
    last = nn.Conv2DTranspose(6, 3, strides=2, output_padding=1, groups=3, layout="NHWC")
    last.initialize(ctx=device)
    assert last.weight.shape == (0, 3, 3, 2)   # MXNet: (C, *kernel, channels / groups)
    x = nd.random.normal(shape=(2, 9, 4, 5), ctx=device)
    out = last(x.transpose((0, 2, 3, 1)))
    assert last.weight.shape == (9, 3, 3, 2)
    layer.weight.set_data(last.weight.data().transpose((0, 3, 1, 2)))
    layer.bias.set_data(last.bias.data())
    np.testing.assert_allclose(out.transpose((0, 3, 1, 2)).asnumpy(), layer(x).asnumpy(),
                               rtol=1e-5, atol=1e-5)


def test_conv_transpose_save_load_round_trip(device, tmp_path):
    def make():
        net = nn.HybridSequential()
        with net.name_scope():
            net.add(nn.Conv2DTranspose(4, 4, strides=2, padding=1, activation="relu"),
                    nn.Conv2DTranspose(1, 3, padding=1))
        return net
    net = make()
    net.initialize(mx.init.Xavier(), ctx=device)
    x = nd.random.normal(shape=(2, 3, 4, 4), ctx=device)
    expect = net(x).asnumpy()
    assert expect.shape == (2, 1, 8, 8)
    path = str(tmp_path / "gen.safetensors")
    net.save_parameters(path)
    other = make()
    other.load_parameters(path, ctx=device)
    assert other[0].weight.shape == (3, 4, 4, 4)
    np.testing.assert_array_equal(other(x).asnumpy(), expect)


def test_conv_transpose_wrong_channel_count_names_the_layer_and_the_shapes(device):
    layer = nn.Conv2DTranspose(4, 3, in_channels=3, prefix="up_")
    layer.initialize(ctx=device)
    with pytest.raises(MXCoreError, match=r"Conv2DTranspose 'up': input of shape "
                                          r"\(1, 2, 5, 5\) has 2 channels \(NCHW\), but the "
                                          r"layer takes 3 \(weight up_weight has shape "
                                          r"\(3, 4, 3, 3\)\)"):
        layer(nd.ones((1, 2, 5, 5), ctx=device))
    with pytest.raises(MXCoreError, match=r"Conv2DTranspose 'up' takes 4-d input"):
        layer(nd.ones((1, 3, 5), ctx=device))
    grouped = nn.Conv2DTranspose(4, 3, groups=2)
    grouped.initialize(ctx=device)
    with pytest.raises(MXCoreError, match="3 channels, not a multiple of groups=2"):
        grouped(nd.ones((1, 3, 5, 5), ctx=device))
    padded = nn.Conv2DTranspose(2, 3, padding=3, in_channels=1)
    padded.initialize(ctx=device)
    with pytest.raises(MXCoreError, match=r"pad \(3, 3\) is too large"):
        padded(nd.ones((1, 1, 2, 2), ctx=device))  # the operator's own check


@pytest.mark.parametrize("make, message", [
    (lambda: nn.Conv1DTranspose(4, 3, layout="NWC"), r"layout must be one of \('NCW',\)"),
    (lambda: nn.Conv2DTranspose(4, 3, strides=2, output_padding=2),
     r"output_padding \(2, 2\) must be smaller than strides \(2, 2\)"),
    (lambda: nn.Conv2DTranspose(4, 3, output_padding=(1, 1, 1)),
     "output_padding must be an integer or 2 integers"),
    (lambda: nn.Conv3DTranspose(5, 3, groups=2), "must be multiples of groups"),
    (lambda: nn.Conv2DTranspose(4, 3, layout="NCDHW"), "layout must be one of"),
])
def test_conv_transpose_bad_constructor_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()
