"""Operator behaviours MXNet 1.9.1's test_operator relies on: BatchNorm's extra
outputs, PReLU's gamma layouts, symbols that keep an explicit ``axis=None``,
Deconvolution's default of no bias, head gradients cast to their output's dtype,
exact LayerNorm parameter gradients, dense-only storage casts and AMP casts."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore.base import MXCoreError
from mxcore.test_utils import assert_almost_equal_ignore_nan, check_symbolic_forward


def test_batch_norm_output_mean_var(device):
    rs = np.random.RandomState(0)
    x = mx.nd.array(rs.uniform(size=(4, 3, 2)), ctx=device)
    gamma, beta = mx.nd.ones(3, ctx=device), mx.nd.zeros(3, ctx=device)
    mean0, var0 = mx.nd.zeros(3, ctx=device), mx.nd.ones(3, ctx=device)
    x.attach_grad()
    with mx.autograd.record():
        out, mean, invstd = mx.nd.BatchNorm(x, gamma, beta, mean0, var0, fix_gamma=False,
                                            output_mean_var=True, eps=1e-3)
    out.backward()
    h = x.asnumpy()
    np.testing.assert_allclose(mean.asnumpy(), h.mean(axis=(0, 2)), rtol=1e-5)
    np.testing.assert_allclose(invstd.asnumpy(), 1 / np.sqrt(h.var(axis=(0, 2)) + 1e-3),
                               rtol=1e-4)
    # outside training: the moving statistics (backward above updated the first ones)
    _, mean, invstd = mx.nd.BatchNorm(x, gamma, beta, mx.nd.zeros(3, ctx=device),
                                      mx.nd.ones(3, ctx=device), output_mean_var=True,
                                      eps=1e-3)
    np.testing.assert_allclose(mean.asnumpy(), 0)
    np.testing.assert_allclose(invstd.asnumpy(), 1 / np.sqrt(1 + 1e-3), rtol=1e-6)
    with mx.autograd.record():
        _, _, var = mx.nd.contrib.SyncBatchNorm(x, gamma, beta, mean0, var0,
                                                output_mean_var=True, eps=1e-3)
    np.testing.assert_allclose(var.asnumpy(), h.var(axis=(0, 2)), rtol=1e-3, atol=1e-6)
    sym = mx.sym.BatchNorm(mx.sym.Variable("data"), output_mean_var=True)
    assert len(sym.list_outputs()) == 3
    assert sym.infer_shape(data=(4, 3, 2))[1] == [(4, 3, 2), (3,), (3,)]


def test_prelu_gamma_on_leading_axes(device):
    rs = np.random.RandomState(1)
    x = rs.uniform(-1, 1, (3, 4, 2, 5)).astype(np.float32)
    gamma = np.tile(np.array([0.1, 0.2, 0.3, 0.4], np.float32), (3, 1))
    y = mx.nd.LeakyReLU(mx.nd.array(x, ctx=device), mx.nd.array(gamma, ctx=device),
                        act_type="prelu")
    want = np.where(x > 0, x, x * gamma[:, :, None, None])
    np.testing.assert_allclose(y.asnumpy(), want, rtol=1e-6)


def test_symbol_keeps_explicit_axis_none(device):
    a = mx.sym.Variable("a")
    for sym in (mx.sym.sort(a, axis=None), mx.sym.load_json(mx.sym.sort(a, axis=None).tojson())):
        assert sym.infer_shape(a=(2, 3))[1] == [(6,)]
        data = np.array([[3, 1, 2], [0, 5, 4]], np.float32)
        check_symbolic_forward(sym, [data], [np.sort(data, axis=None)], ctx=device)


def test_deconvolution_symbol_has_no_bias_by_default():
    data = mx.sym.Variable("data")
    sym = mx.sym.Deconvolution(data, kernel=(3, 3), stride=(2, 2), pad=(1, 1), adj=(1, 1),
                               num_filter=5, name="d")
    assert sym.list_arguments() == ["data", "d_weight"]
    assert sym.infer_shape(data=(2, 3, 4, 4))[1] == [(2, 5, 8, 8)]
    with_bias = mx.sym.Deconvolution(data, kernel=(3, 3), num_filter=5, no_bias="false",
                                     name="e")
    assert with_bias.list_arguments() == ["data", "e_weight", "e_bias"]


def test_head_gradient_takes_the_output_dtype(device):
    """A float head gradient of an int32 output is cast to int32 (0.7 -> 0), as MXNet
    copies it into the output's gradient buffer."""
    a = mx.sym.Variable("a")
    sym = mx.sym.cast(a, dtype="int32") * 3
    grad = mx.nd.ones((2,), ctx=device) * 9
    exe = sym.bind(device, args={"a": mx.nd.array([1.5, 2.5], ctx=device)}, args_grad=[grad])
    exe.forward(is_train=True)
    exe.backward([mx.nd.array([0.7, 1.2], ctx=device)])
    np.testing.assert_array_equal(grad.asnumpy(), [0, 3])


def test_layer_norm_parameter_gradients_are_exact(device):
    """gamma and beta gradients sum over every row of a large batch: on the CPU float32
    results as exact as float64 sums allow (row-by-row float32 sums drift to ~1e-4);
    devices that reduce in float32 trees stay within 2e-5."""
    rs = np.random.RandomState(2)
    x = rs.normal(size=(8192, 8)).astype(np.float32)
    dy = rs.normal(size=x.shape).astype(np.float32)
    data = mx.nd.array(x, ctx=device)
    gamma, beta = mx.nd.ones(8, ctx=device), mx.nd.zeros(8, ctx=device)
    gamma.attach_grad()
    beta.attach_grad()
    with mx.autograd.record():
        y = mx.nd.LayerNorm(data, gamma, beta, axis=-1, eps=1e-5)
    y.backward(mx.nd.array(dy, ctx=device))
    x64 = x.astype(np.float64)
    xhat = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-5)
    rtol = 2e-6 if device.kind == "cpu" else 2e-5
    np.testing.assert_allclose(beta.grad.asnumpy(), dy.astype(np.float64).sum(0), rtol=rtol,
                               atol=1e-4)
    np.testing.assert_allclose(gamma.grad.asnumpy(), (xhat * dy).sum(0), rtol=rtol, atol=1e-4)


def test_dense_storage_and_amp_cast(device):
    x = mx.nd.array([[1.5, -2]], ctx=device)
    assert mx.nd.cast_storage(x, "default").asnumpy().tolist() == [[1.5, -2]]
    assert x.tostype("default") is not x
    with pytest.raises(MXCoreError, match="sparse storage types"):
        x.tostype("csr")
    assert mx.nd.amp_cast(x, dtype="float16").dtype == np.float16
    ints = mx.nd.array([1, 2], ctx=device, dtype="int32")
    assert mx.nd.amp_cast(ints, dtype="float16") is ints  # only floats are cast
    assert mx.sym.amp_cast(mx.sym.Variable("x"), dtype="float16").infer_type(
        x=np.float32)[1] == [np.float16]


def test_test_utils_nan_and_asnumpy_dtype(device):
    assert_almost_equal_ignore_nan(np.array([1.0, np.nan, 3.0]), np.array([1.0, 7.0, np.nan]))
    with pytest.raises(AssertionError):
        assert_almost_equal_ignore_nan(np.array([1.0, np.nan]), np.array([2.0, 0.0]))
    a = mx.sym.Variable("a")
    out = check_symbolic_forward(a * 1, [np.array([1, 2], np.int32)],
                                 [np.array([1, 2], np.int32)], dtype="asnumpy", ctx=device)
    assert out[0].dtype == np.int32


def test_always_dropout_survives_inference_graphs(device):
    from mxcore.gluon import nn
    x = mx.sym.var("data")
    exe = mx.sym.Dropout(x, p=0.5, mode="always").simple_bind(device, data=(50, 50))
    exe.arg_arrays[0][:] = 1
    out = exe.forward(is_train=False)[0].asnumpy()
    assert set(np.unique(out)) == {0.0, 2.0}

    class Block(nn.HybridBlock):
        def hybrid_forward(self, F, x):
            return F.Dropout(x, p=0.5, mode="always") + F.Dropout(x, p=0.5)

    block = Block()
    block.hybridize()
    out = block(mx.nd.ones((50, 50), ctx=device)).asnumpy()  # inference: one dropout runs
    assert set(np.unique(out)) == {1.0, 3.0}
    assert [st.op.name for st in block.last_plan().forward.steps].count("dropout") == 1


def test_softmax_length_and_dtype(device):
    rs = np.random.RandomState(3)
    d = rs.uniform(-1, 1, (2, 4, 3)).astype(np.float32)
    length = np.array([[1, 4, 2], [3, 3, 4]])
    x = mx.nd.array(d, ctx=device)
    x.attach_grad()
    with mx.autograd.record():
        y = mx.nd.softmax(x, mx.nd.array(length, ctx=device, dtype="int32"), axis=1,
                          use_length=True)
    y.backward()
    want = np.zeros_like(d)
    for i in range(2):
        for j in range(3):
            e = np.exp(d[i, :length[i, j], j] - d[i, :length[i, j], j].max())
            want[i, :length[i, j], j] = e / e.sum()
    np.testing.assert_allclose(y.asnumpy(), want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(x.grad.asnumpy(), 0, atol=1e-6)  # rows sum to one
    half = mx.nd.array(d, ctx=device, dtype="float16")
    assert mx.nd.softmax(half, axis=-1, dtype="float32").dtype == np.float32
    assert mx.nd.log_softmax(x, axis=1, dtype="float64").dtype == np.float64
    sym = mx.sym.softmax(data=mx.sym.Variable("data"), length=mx.sym.Variable("length"),
                         use_length=True, axis=1)
    assert sym.list_arguments() == ["data", "length"]


def test_symbol_api_details(device):
    """A data input left out becomes a variable; split_v2 has one output per section;
    nodes that make arrays (ones) run inside compiled executor plans; backward without
    a forward runs one; MXNet's tolerance tables and operator list."""
    s = mx.sym.softmin(axis=1)
    assert s.list_arguments() == ["softmin0_data"]
    parts = mx.sym.split_v2(mx.sym.Variable("data"), indices_or_sections=(1, 3), axis=1)
    assert parts.infer_shape(data=(2, 5))[1] == [(2, 1), (2, 2), (2, 2)]
    a = mx.sym.Variable("a")
    sym = a * mx.sym.ones(shape=(1, 4)) + mx.sym.zeros(shape=(3, 1))
    grad = mx.nd.zeros((3, 4), ctx=device)
    exe = sym.bind(device, {"a": mx.nd.ones((3, 4), ctx=device) * 2}, args_grad={"a": grad})
    exe.backward(mx.nd.ones((3, 4), ctx=device))  # no forward yet: one runs first
    np.testing.assert_array_equal(grad.asnumpy(), np.ones((3, 4)))
    np.testing.assert_array_equal(exe.outputs[0].asnumpy(), np.full((3, 4), 2.0))
    assert any(p for p in exe._plans.values())  # compiled, the constants as steps
    from mxcore.test_utils import default_rtols
    assert default_rtols()[np.dtype(np.float32)] == default_rtols()["float32"]
    names = mx.operator.get_all_registered_operators()
    assert {"Activation", "FullyConnected", "_plus_scalar"} <= set(names)
    assert mx.contrib.ndarray is mx.nd.contrib and mx.contrib.symbol is mx.sym.contrib


@pytest.mark.parametrize("normalization", ["null", "batch", "valid"])
def test_softmax_output_multi_output_normalization(device, normalization):
    rs = np.random.RandomState(4)
    n, c, h, w = 3, 4, 2, 5
    data = mx.nd.array(rs.uniform(-1, 1, (n, c, h, w)), ctx=device)
    label_np = rs.randint(0, c, (n, h, w)).astype(np.float32)
    label_np[0, 0, :2] = -1
    data.attach_grad()
    with mx.autograd.record():
        out = mx.nd.SoftmaxOutput(data=data, label=mx.nd.array(label_np, ctx=device),
                                  multi_output=True, use_ignore=True, ignore_label=-1,
                                  normalization=normalization, grad_scale=2.0)
    out.backward(mx.nd.ones_like(data))
    e = np.exp(data.asnumpy())
    soft = e / e.sum(1, keepdims=True)
    onehot = np.eye(c)[np.clip(label_np, 0, None).astype(int)].transpose(0, 3, 1, 2)
    keep = (label_np != -1)[:, None]
    scale = {"null": 2.0 / (h * w), "batch": 2.0 / n / (h * w),
             "valid": 2.0 / keep.sum()}[normalization]
    np.testing.assert_allclose(data.grad.asnumpy(), (soft - onehot) * keep * scale,
                               rtol=1e-5, atol=1e-7)


def test_histogram_and_index_array_symbols(device):
    rs = np.random.RandomState(5)
    x = rs.normal(size=(3, 4))
    data = mx.nd.array(x, ctx=device, dtype="float64")
    edges = mx.nd.array([-1.0, 0.5, 2.0, 4.5, 50.0], ctx=device, dtype="float64")
    by_count = mx.sym.histogram(a=mx.sym.Variable("data"), bins=5, range=(-2.5, 2.5))
    by_edges = mx.sym.histogram(a=mx.sym.Variable("data"), bins=mx.sym.Variable("bins"))
    assert by_count.list_arguments() == ["data"] and len(by_count.list_outputs()) == 2
    assert by_edges.list_arguments() == ["data", "bins"]
    counts, bins = by_count.bind(device, {"data": data}).forward()
    want_counts, want_bins = np.histogram(x, 5, range=(-2.5, 2.5))
    np.testing.assert_array_equal(counts.asnumpy(), want_counts)
    np.testing.assert_allclose(bins.asnumpy(), want_bins)
    counts = by_edges.bind(device, {"data": data, "bins": edges}).forward()[0]
    np.testing.assert_array_equal(counts.asnumpy(), np.histogram(x, edges.asnumpy())[0])
    with pytest.raises(MXCoreError, match="histogram"):
        mx.nd.histogram(data, bins=0)
    index = mx.sym.contrib.index_array(mx.sym.Variable("data"), axes=(-1, 0))
    grad = mx.nd.ones((5, 3), ctx=device)
    exe = index.bind(device, {"data": mx.nd.ones((5, 3), ctx=device)}, args_grad=[grad])
    out = exe.forward(is_train=True)[0]
    exe.backward(mx.nd.ones(out.shape, ctx=device))
    want = np.moveaxis(np.indices((5, 3)), 0, -1)[..., [1, 0]]
    np.testing.assert_array_equal(out.asnumpy(), want)
    np.testing.assert_array_equal(grad.asnumpy(), 0)  # no gradient: zeros written


@pytest.mark.parametrize("use_linear", [True, False])
def test_svm_output(device, use_linear):
    rs = np.random.RandomState(6)
    x_np = rs.uniform(-1, 2, (6, 4)).astype(np.float32)
    l_np = rs.randint(0, 4, (6,))
    x = mx.nd.array(x_np, ctx=device)
    x.attach_grad()
    with mx.autograd.record():
        y = mx.nd.SVMOutput(x, mx.nd.array(l_np, ctx=device), margin=0.5,
                            regularization_coefficient=3.0, use_linear=use_linear)
    y.backward(mx.nd.ones_like(y) * 7)  # the head gradient is ignored
    np.testing.assert_array_equal(y.asnumpy(), x_np)
    sign = np.where(np.arange(4)[None, :] == l_np[:, None], 1.0, -1.0)
    slack = 0.5 - sign * x_np
    want = (-3.0 * sign * (slack > 0) if use_linear
            else -2 * 3.0 * sign * np.maximum(slack, 0))
    np.testing.assert_allclose(x.grad.asnumpy(), want, rtol=1e-6, atol=1e-6)
    sym = mx.sym.SVMOutput(data=mx.sym.Variable("X"), name="svm")
    assert sym.list_arguments() == ["X", "svm_label"]
    assert sym.infer_shape(X=(6, 4))[0] == [(6, 4), (6,)]


def test_roi_pooling(device):
    """Corners rounded, floor/ceil bins clipped to the map, max per bin; the gradient
    goes to each bin's maximum and none to the rois."""
    data = mx.nd.array(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4), ctx=device)
    rois = mx.nd.array([[0, 0, 0, 3, 3], [0, 0, 0, 6.2, 6.2], [0, 3, 3, 3, 3]], ctx=device)
    data.attach_grad()
    with mx.autograd.record():
        out = mx.nd.ROIPooling(data, rois[0:2], pooled_size=(2, 2), spatial_scale=1.0)
    out.backward()
    np.testing.assert_array_equal(out.asnumpy()[0, 0], [[5, 7], [13, 15]])
    # 0..6 makes bins of 3.5 rows/columns, clipped to the 4x4 map: all reach (3, 3)
    np.testing.assert_array_equal(out.asnumpy()[1, 0], [[15, 15], [15, 15]])
    want = np.zeros((4, 4))
    want.flat[[5, 7, 13, 15]] = 1, 1, 1, 5
    np.testing.assert_array_equal(data.grad.asnumpy()[0, 0], want)
    half = mx.nd.ROIPooling(data, rois[0:1] * 2, pooled_size=(2, 2), spatial_scale=0.5)
    np.testing.assert_array_equal(half.asnumpy(), out.asnumpy()[:1])
    point = mx.nd.ROIPooling(data, rois[2:3], pooled_size=2, spatial_scale=1.0)
    np.testing.assert_array_equal(point.asnumpy()[0, 0], [[15, 15], [15, 15]])
    sym = mx.sym.ROIPooling(data=mx.sym.Variable("data"), rois=mx.sym.Variable("rois"),
                            pooled_size=(3, 2), spatial_scale=0.5)
    assert sym.infer_shape(data=(2, 3, 8, 8), rois=(5, 5))[1] == [(5, 3, 3, 2)]
    with pytest.raises(MXCoreError, match="rois must be"):
        mx.nd.ROIPooling(data, rois[:, :4], pooled_size=(2, 2), spatial_scale=1.0)


def test_adaptive_avg_pooling(device):
    rs = np.random.RandomState(7)
    x = rs.uniform(size=(2, 3, 7, 5))
    y = mx.nd.contrib.AdaptiveAvgPooling2D(mx.nd.array(x, ctx=device, dtype="float64"),
                                           output_size=(3, 2))
    want = np.empty((2, 3, 3, 2))
    for i in range(3):
        for j in range(2):
            r0, r1 = (i * 7) // 3, -(-(i + 1) * 7 // 3)
            c0, c1 = (j * 5) // 2, -(-(j + 1) * 5 // 2)
            want[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    np.testing.assert_allclose(y.asnumpy(), want, rtol=1e-12)
    assert mx.nd.contrib.AdaptiveAvgPooling2D(mx.nd.ones((1, 1, 4, 4), ctx=device)).shape == \
        (1, 1, 1, 1)


@pytest.mark.parametrize("align_corners,want", [
    (False, [64.0, 56.0, 40.0, 32.0, 56.0, 52.0, 44.0, 40.0, 40.0, 44.0, 52.0, 56.0,
             36.5, 45.625, 63.875, 73.0, 45.5, 56.875, 79.625, 91.0, 50.0, 62.5, 87.5, 100.0]),
    (True, [64.0, 53.333, 42.667, 32.0, 51.2, 49.067, 46.933, 44.8, 38.4, 44.8, 51.2, 57.6,
            35.6, 47.467, 59.333, 71.2, 42.8, 57.067, 71.333, 85.6, 50.0, 66.667, 83.333, 100.0])])
def test_bilinear_resize(device, align_corners, want):
    """MXNet's documented example (3x2 -> 6x4), sizes from the modes, and gradients."""
    from mxcore.test_utils import check_numeric_gradient
    x = mx.nd.array(np.array([64, 32, 32, 64, 50, 100], np.float32).reshape(1, 1, 3, 2),
                    ctx=device)
    y = mx.nd.contrib.BilinearResize2D(x, height=6, width=4, align_corners=align_corners)
    np.testing.assert_allclose(y.asnumpy().ravel(), want, atol=1e-3)
    z = mx.nd.zeros((2, 2, 21, 20), ctx=device)
    for mode, shape in [("to_even_down", (20, 20)), ("to_even_up", (22, 20)),
                        ("to_odd_down", (21, 19)), ("to_odd_up", (21, 21))]:
        assert mx.nd.contrib.BilinearResize2D(z, mode=mode).shape[2:] == shape, mode
    assert mx.nd.contrib.BilinearResize2D(z, scale_height=0.5, scale_width=0.5,
                                          mode="odd_scale").shape[2:] == (11, 10)
    assert mx.nd.contrib.BilinearResize2D(z, mx.nd.zeros((1, 1, 3, 4), ctx=device),
                                          mode="like").shape[2:] == (3, 4)
    sym = mx.sym.contrib.BilinearResize2D(mx.sym.var("data"), height=5, width=3,
                                          align_corners=align_corners)
    check_numeric_gradient(sym, [np.random.RandomState(8).uniform(size=(1, 2, 4, 4))],
                           ctx=device, dtype=np.float64, numeric_eps=1e-6, rtol=1e-5,
                           atol=1e-7)


def test_spatial_transformer_symbol(device):
    """SpatialTransformer names its missing ``loc`` as MXNet does, infers it as (N, 6),
    survives a JSON round trip; the identity transform on the same grid copies the
    data, and its gradient reaches the data one to one."""
    st = mx.sym.SpatialTransformer(mx.sym.var("data"), target_shape=(5, 6), name="st")
    assert st.list_arguments() == ["data", "st_loc"]
    assert st.infer_shape(data=(2, 3, 5, 6))[0] == [(2, 3, 5, 6), (2, 6)]
    loaded = mx.sym.load_json(st.tojson())
    data = np.random.RandomState(0).normal(size=(2, 3, 5, 6)).astype(np.float32)
    loc = np.tile([1.0, 0, 0, 0, 1.0, 0], (2, 1)).astype(np.float32)
    grads = {"data": mx.nd.zeros(data.shape, ctx=device), "st_loc": mx.nd.zeros((2, 6),
                                                                                 ctx=device)}
    exe = loaded.bind(device, args={"data": mx.nd.array(data, ctx=device),
                                    "st_loc": mx.nd.array(loc, ctx=device)}, args_grad=grads)
    out = exe.forward(is_train=True)[0]
    np.testing.assert_allclose(out.asnumpy(), data, rtol=1e-5, atol=1e-5)
    exe.backward(mx.nd.ones(out.shape, ctx=device))
    np.testing.assert_allclose(grads["data"].asnumpy(), np.ones(data.shape), atol=1e-5)


def test_correlation_attributes_round_trip(device):
    a = mx.sym.var("a")
    corr = mx.sym.Correlation(a, mx.sym.var("b"), kernel_size=3, max_displacement=2,
                              is_multiply=False)
    assert corr.list_arguments() == ["a", "b"]
    again = mx.sym.load_json(corr.tojson())
    rs = np.random.RandomState(1)
    x, y = (mx.nd.array(rs.uniform(size=(1, 2, 8, 8)), ctx=device) for _ in range(2))
    got = again.eval(ctx=device, a=x, b=y)[0]
    want = mx.nd.Correlation(x, y, kernel_size=3, max_displacement=2, is_multiply=False)
    assert got.shape == (1, 25, 2, 2)  # 8 - 2 * (2 + 1)
    np.testing.assert_array_equal(got.asnumpy(), want.asnumpy())
    assert (want.asnumpy() > 0).all()  # absolute differences, not products of uniforms
    assert corr.infer_type(a="float16")[1] == [np.float16]


@pytest.mark.parametrize("call,match", [
    (lambda x: mx.nd.Correlation(x, x, kernel_size=7), "do not fit"),
    (lambda x: mx.nd.Correlation(x, x, kernel_size=2), "must be odd"),
    (lambda x: mx.nd.Correlation(x, x[:, :, :4], max_displacement=0), "of one shape"),
    (lambda x: mx.nd.BilinearSampler(x, x), r"grid must be \(batch, 2"),
    (lambda x: mx.nd.GridGenerator(x, transform_type="affine", target_shape=(2, 2)),
     r"\(batch, 6\) matrices"),
    (lambda x: mx.nd.GridGenerator(x, transform_type="perspective"), "affine' or 'warp"),
    (lambda x: mx.nd.SpatialTransformer(x, x, target_shape=(2, 2), sampler_type="nearest"),
     "sampler_type"),
])
def test_sampling_and_correlation_errors(device, call, match):
    """Bad input names the operator, the shapes and dtypes, and the device."""
    x = mx.nd.ones((1, 3, 6, 6), ctx=device)
    with pytest.raises(MXCoreError, match=match) as info:
        call(x)
    assert "(1, 3, 6, 6) float32" in str(info.value) and repr(device) in str(info.value)


def test_executor_outputs_are_writable(device):
    """As in MXNet, a bound executor's outputs may be written to after forward (they
    share memory with the result); backward still starts from the recorded graph."""
    x = mx.sym.var("x")
    y = mx.sym.exp(x) * 2
    xv = mx.nd.array([[0.0, 1.0]], ctx=device)
    gx = mx.nd.zeros((1, 2), ctx=device)
    exe = y.bind(device, args={"x": xv}, args_grad={"x": gx})
    out = exe.forward(is_train=True)[0]
    out[0, 0] = 7.0
    assert exe.outputs[0].asnumpy()[0, 0] == 7.0
    exe.backward(mx.nd.ones((1, 2), ctx=device))
    np.testing.assert_allclose(gx.asnumpy(), 2 * np.exp([[0.0, 1.0]]), rtol=1e-6)


@pytest.mark.parametrize("kernel,stride", [(2, 2), (3, 2), (4, 3), (5, 4), (1, 1)])
def test_pooling_same_convention(device, kernel, stride):
    """'same': ceil(W / stride) outputs, window i = data[i*stride : i*stride + kernel]
    cut at the right edge (MXNet's CPU kernel); the gradient reaches each maximum."""
    x = np.random.RandomState(kernel).normal(size=(2, 3, 11)).astype(np.float32)
    a = mx.nd.array(x, ctx=device)
    a.attach_grad()
    with mx.autograd.record():
        out = mx.nd.Pooling(a, kernel=(kernel,), stride=(stride,), pool_type="max",
                            pooling_convention="same", pad=(0, 0, 0))
    out.backward()
    n_out = -(-11 // stride)
    want = np.stack([x[:, :, i * stride:i * stride + kernel].max(axis=2)
                     for i in range(n_out)], axis=2)
    np.testing.assert_array_equal(out.asnumpy(), want)
    grad = np.zeros_like(x)
    for i in range(n_out):
        win = x[:, :, i * stride:i * stride + kernel]
        for n, c in np.ndindex(2, 3):
            grad[n, c, i * stride + win[n, c].argmax()] += 1
    np.testing.assert_array_equal(a.grad.asnumpy(), grad)


@pytest.mark.parametrize("kwargs,match", [
    ({"pad": (2,)}, "takes no pad"), ({"pool_type": "avg"}, "max pooling only")])
def test_pooling_same_convention_errors(device, kwargs, match):
    x = mx.nd.ones((1, 1, 10), ctx=device)
    with pytest.raises(MXCoreError, match=match):
        mx.nd.Pooling(x, kernel=(2,), stride=(2,), pooling_convention="same",
                      **{"pool_type": "max", **kwargs})
    with pytest.raises(MXCoreError, match="1-d"):
        mx.nd.Pooling(mx.nd.ones((1, 1, 4, 4), ctx=device), kernel=(2, 2),
                      pooling_convention="same")


def test_slice_takes_a_single_number_for_the_first_axis(device):
    """MXNet reads ``slice(x, begin=1, end=3)`` as ``begin=(1,), end=(3,)`` (also in
    symbols: MXNet 1.9.1's test_bf16_flatten_slice_after_conv writes it so)."""
    x = mx.nd.arange(12, ctx=device).reshape((3, 4))
    np.testing.assert_array_equal(mx.nd.slice(x, begin=1, end=3).asnumpy(),
                                  x.asnumpy()[1:3])
    np.testing.assert_array_equal(mx.nd.slice(x, begin=0, end=None, step=2).asnumpy(),
                                  x.asnumpy()[0::2])
    s = mx.sym.slice(mx.sym.var("data"), begin=0, end=1)
    out = s.eval(ctx=device, data=x)[0]
    np.testing.assert_array_equal(out.asnumpy(), x.asnumpy()[0:1])
