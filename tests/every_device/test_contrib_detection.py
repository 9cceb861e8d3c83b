"""mxcore-contrib-ops' detection operators on every device: ``box_nms``,
``ROIAlign`` and ``bipartite_matching`` against MXNet 1.9.1's results (the reference
values at the end of this file), their gradients, and their errors."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore.base import MXCoreError

# inputs -----------------------------------------------------------------------------------
# (id, score, x1, y1, x2, y2) rows in 2 batches: ties, overlaps across classes, the default
# background class -1, a zero score
NMS_DATA = [
    [[0, 0.9, 0.0, 0.0, 1.0, 1.0],
     [1, 0.8, 0.1, 0.1, 1.1, 1.1],
     [0, 0.8, 0.05, 0.0, 1.05, 1.0],
     [2, 0.3, 2.0, 2.0, 3.0, 3.5],
     [2, 0.2, 2.1, 2.2, 3.0, 3.4],
     [0, 0.05, 5.0, 5.0, 6.0, 6.0]],
    [[1, 0.5, 0.0, 0.0, 2.0, 2.0],
     [1, 0.5, 1.0, 1.0, 3.0, 3.0],
     [0, 0.7, 0.5, 0.5, 1.5, 1.5],
     [1, 0.6, 0.0, 0.0, 2.0, 1.9],
     [-1, 0.9, 4.0, 4.0, 5.0, 5.0],
     [3, 0.0, 0.0, 0.0, 1.0, 1.0]]]
# (x1, y1, x2, y2, score) rows, no batch axis; the first box has a negative x1
NMS_SCORE_LAST = [[-0.5, 3.0, 1.0, 4.0, 0.4],
                  [0.0, 0.0, 1.0, 1.0, 0.6],
                  [2.0, 1.0, 4.0, 2.0, 0.3],
                  [2.5, 1.0, 4.5, 2.0, 0.2]]
NMS_INPUTS = {"data": np.array(NMS_DATA, np.float32),
              "data_4d": np.array(NMS_DATA, np.float32).reshape(2, 2, 3, 6),
              "score_last": np.array(NMS_SCORE_LAST, np.float32)}
NMS_CASES = {
    "default": ("data", {}),
    "by_class": ("data", {"id_index": 0}),
    "force_background": ("data", {"id_index": 0, "force_suppress": True, "background_id": 2,
                                  "overlap_thresh": 0.1}),
    "topk_valid": ("data", {"topk": 3, "valid_thresh": 0.25, "overlap_thresh": 0.7}),
    "topk0": ("data", {"topk": 0}),
    "all_invalid": ("data", {"valid_thresh": 1.0}),
    "center_in": ("data", {"id_index": 0, "in_format": "center"}),
    # MXNet leaves rows whose first coordinate is negative unconverted
    "center_out": ("score_last", {"coord_start": 0, "score_index": 4, "out_format": "center",
                                  "overlap_thresh": 0.3}),
    "batch_axes": ("data_4d", {"id_index": 0, "overlap_thresh": 0.3}),
}
NMS_GRAD_CASES = ("by_class", "topk0", "center_in")


def nms_out_grad(shape):
    return (np.arange(np.prod(shape)).reshape(shape) / 10).astype(np.float32)


def pattern(shape, dtype=np.float32):
    """Deterministic values, exact in float32: multiples of 1/8."""
    n = int(np.prod(shape))
    return ((np.arange(n) * 37 % 101) / 8.0 - 6.0).reshape(shape).astype(dtype)


# (batch index, x1, y1, x2, y2): fractional, partly outside the map, malformed (x2 < x1)
ROIS = [[0, 0.6, 1.3, 5.2, 4.9],
        [1, 2.25, 0.5, 7.9, 6.4],
        [0, -1.5, -0.7, 3.1, 2.2],
        [1, 4.0, 3.0, 3.5, 2.5],
        [0, 6.3, 5.1, 9.8, 8.7]]
ROI_CASES = {  # name: (data shape, rois, dtype, keyword arguments)
    "adaptive": ((2, 3, 7, 8), ROIS, "float32", {"pooled_size": (2, 3), "spatial_scale": 1.0}),
    "ratio2_scaled": ((2, 3, 7, 8), ROIS, "float32",
                      {"pooled_size": (3, 3), "spatial_scale": 0.5, "sample_ratio": 2}),
    "aligned": ((2, 3, 7, 8), [r for i, r in enumerate(ROIS) if i != 3], "float32",
                {"pooled_size": (2, 2), "spatial_scale": 1.0, "aligned": True}),
    "ratio1_4x4": ((2, 3, 7, 8), ROIS[:2], "float32",
                   {"pooled_size": (4, 4), "spatial_scale": 1.0, "sample_ratio": 1}),
    "position_sensitive": ((2, 8, 5, 6), ROIS[:3], "float32",
                           {"pooled_size": (2, 2), "spatial_scale": 0.75, "sample_ratio": 2,
                            "position_sensitive": True}),
    # spatial_scale is a float32 in MXNet, also for float64 data
    "float64_scale": ((2, 3, 7, 8), [[r[0]] + [v * 10 / 3 for v in r[1:]] for r in ROIS],
                      "float64", {"pooled_size": (2, 3), "spatial_scale": 0.3}),
}
ROI_GRAD_CASES = {  # name: (data shape, rois, keyword arguments), float32
    "adaptive": ((2, 1, 5, 6), ROIS[:3], {"pooled_size": (2, 2), "spatial_scale": 1.0}),
    "aligned": ((2, 1, 5, 6), ROIS[:3], {"pooled_size": (2, 3), "spatial_scale": 0.8,
                                         "aligned": True, "sample_ratio": 2}),
    "position_sensitive": ((1, 4, 4, 5), [[0, 0.3, 0.2, 3.7, 2.9]],
                           {"pooled_size": (2, 2), "spatial_scale": 1.0,
                            "position_sensitive": True}),
}


def roi_out_grad(shape):
    return (np.arange(np.prod(shape)).reshape(shape) % 7 - 3).astype(np.float32)


MATCH_INPUTS = {
    "docs": [[0.5, 0.6], [0.1, 0.2], [0.3, 0.4]],  # the example in MXNet's docs
    "batch": [[[0.9, 0.2, 0.9, 0.1],
               [0.9, 0.8, 0.3, 0.4],
               [0.1, 0.5, 0.6, 0.35]],
              [[0.05, 0.2, 0.1, 0.3],
               [0.7, 0.1, 0.2, 0.25],
               [0.4, 0.45, 0.2, 0.1]]],
    "tall": [[0.3, 0.1], [0.2, 0.9], [0.8, 0.7], [0.05, 0.6], [0.4, 0.4]],
}
MATCH_CASES = {
    "docs": ("docs", {"threshold": 1e-12}),
    "batch_ties": ("batch", {"threshold": 0.3}),
    "ascend": ("batch", {"threshold": 0.5, "is_ascend": True}),
    "topk1": ("batch", {"threshold": 0.0, "topk": 1}),  # MXNet makes topk + 1 matches
    "topk2": ("tall", {"threshold": 0.0, "topk": 2}),
    "tall": ("tall", {"threshold": 0.25}),
}


def _nd(values, device, dtype="float32"):
    return mx.nd.array(np.asarray(values, dtype), ctx=device, dtype=dtype)


def test_reachable_under_mxnet_names():
    contrib = mx.nd.contrib
    for name in ("box_nms", "box_non_maximum_suppression", "ROIAlign", "bipartite_matching"):
        assert callable(getattr(contrib, name)), name
    assert contrib.box_non_maximum_suppression is contrib.box_nms
    assert contrib.ROIAlign.__name__ == "ROIAlign"


# box_nms ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(NMS_CASES))
def test_box_nms_matches_mxnet(name, device):
    key, kwargs = NMS_CASES[name]
    data = NMS_INPUTS[key]
    out = mx.nd.contrib.box_nms(_nd(data, device), **kwargs)
    assert out.shape == data.shape and out.dtype == np.float32 and out.context == device
    batches = out.asnumpy().reshape((-1,) + data.shape[-2:])
    for rows, expected in zip(batches, NMS_EXPECTED[name]):
        kept = np.reshape(expected, (-1, data.shape[-1]))
        np.testing.assert_allclose(rows[:len(kept)], kept, atol=1e-6)
        assert (rows[len(kept):] == -1).all()


@pytest.mark.parametrize("name", NMS_GRAD_CASES)
def test_box_nms_gradient_matches_mxnet(name, device):
    key, kwargs = NMS_CASES[name]
    x = _nd(NMS_INPUTS[key], device)
    x.attach_grad()
    with mx.autograd.record():
        y = mx.nd.contrib.box_nms(x, **kwargs)
    y.backward(_nd(nms_out_grad(x.shape), device))
    np.testing.assert_allclose(x.grad.asnumpy(), NMS_GRAD_EXPECTED[name], atol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "float64"])
def test_box_nms_other_dtypes(dtype, device):
    out = mx.nd.contrib.box_nms(_nd(NMS_DATA, device, dtype), id_index=0)
    assert out.dtype == np.dtype(dtype)
    kept = [len(rows) for rows in NMS_EXPECTED["by_class"]]
    got = out.asnumpy().astype(np.float64)
    for b, n in enumerate(kept):
        np.testing.assert_allclose(got[b, :n], NMS_EXPECTED["by_class"][b], atol=1e-3)
        assert (got[b, n:] == -1).all()


def test_box_nms_writes_out(device):
    x = _nd(NMS_DATA, device)
    out = mx.nd.zeros(x.shape, ctx=device)
    assert mx.nd.contrib.box_nms(x, out=out) is out
    np.testing.assert_array_equal(out.asnumpy(), mx.nd.contrib.box_nms(x).asnumpy())


@pytest.mark.parametrize("shape,kwargs,match", [
    ((6,), {}, r"at least 2 axes.*\(6,\)"),
    ((2, 4), {}, r"at least 5 values.*\(2, 4\)"),
    ((2, 5), {"id_index": 0}, r"at least 6 values.*\(2, 5\)"),
    ((2, 6), {"score_index": 3}, "score_index=3"),
    ((2, 6), {"coord_start": 3}, r"coordinates 3\.\.6"),
    ((2, 6), {"id_index": 1}, "id_index=1"),
    ((2, 6), {"in_format": "xywh"}, "in_format"),
])
def test_box_nms_errors(shape, kwargs, match, device):
    with pytest.raises(MXCoreError, match=match):
        mx.nd.contrib.box_nms(mx.nd.zeros(shape, ctx=device), **kwargs)


# ROIAlign ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(ROI_CASES))
def test_roi_align_matches_mxnet(name, device):
    shape, rois, dtype, kwargs = ROI_CASES[name]
    out = mx.nd.contrib.ROIAlign(_nd(pattern(shape, dtype), device, dtype),
                                 _nd(rois, device, dtype), **kwargs)
    expected = np.array(ROI_EXPECTED[name])
    assert out.shape == expected.shape and out.dtype == np.dtype(dtype)
    np.testing.assert_allclose(out.asnumpy(), expected,
                               atol=2e-10 if dtype == "float64" else 1e-5)


@pytest.mark.parametrize("name", list(ROI_GRAD_CASES))
def test_roi_align_gradient_matches_mxnet(name, device):
    shape, rois, kwargs = ROI_GRAD_CASES[name]
    data, boxes = _nd(pattern(shape), device), _nd(rois, device)
    data.attach_grad()
    boxes.attach_grad()
    with mx.autograd.record():
        out = mx.nd.contrib.ROIAlign(data, boxes, **kwargs)
    out.backward(_nd(roi_out_grad(out.shape), device))
    np.testing.assert_allclose(data.grad.asnumpy(), ROI_GRAD_EXPECTED[name], atol=1e-5)
    assert not boxes.grad.asnumpy().any()


@pytest.mark.parametrize("kwargs", [
    {"pooled_size": (2, 3), "spatial_scale": 0.5},
    {"pooled_size": (2, 2), "spatial_scale": 1.0, "aligned": True, "sample_ratio": 3},
    {"pooled_size": (2, 1), "spatial_scale": 1.0, "position_sensitive": True},
])
def test_roi_align_gradient_finite_differences(kwargs, device):
    rng = np.random.default_rng(7)
    data = rng.normal(size=(2, 4, 5, 6))
    rois = np.array([[0, 0.3, 0.7, 9.1, 6.2], [1, 2.6, 1.1, 5.9, 4.4], [1, -1.2, 3.3, 4.4, 9.6]])
    boxes = _nd(rois, device, "float64")
    x = _nd(data, device, "float64")
    weights = rng.normal(size=mx.nd.contrib.ROIAlign(x, boxes, **kwargs).shape)

    def loss(values):
        out = mx.nd.contrib.ROIAlign(_nd(values, device, "float64"), boxes, **kwargs)
        return float((out.asnumpy() * weights).sum())

    x.attach_grad()
    with mx.autograd.record():
        out = mx.nd.contrib.ROIAlign(x, boxes, **kwargs)
    out.backward(_nd(weights, device, "float64"))
    numeric = np.zeros_like(data)
    eps = 1e-4
    for i in np.ndindex(data.shape):
        step = np.zeros_like(data)
        step[i] = eps
        numeric[i] = (loss(data + step) - loss(data - step)) / (2 * eps)
    np.testing.assert_allclose(x.grad.asnumpy(), numeric, rtol=1e-6, atol=1e-8)


def test_roi_align_second_order(device):
    # the backward is linear in the output gradient: its own gradient is the forward
    rng = np.random.default_rng(3)
    x = _nd(rng.normal(size=(1, 2, 5, 5)), device, "float64")
    rois = _nd([[0, 0.5, 0.5, 3.2, 3.9]], device, "float64")
    v = _nd(rng.normal(size=(1, 2, 5, 5)), device, "float64")
    g = _nd(rng.normal(size=(1, 2, 2, 2)), device, "float64")
    x.attach_grad()
    g.attach_grad()
    with mx.autograd.record():
        y = mx.nd.contrib.ROIAlign(x, rois, (2, 2), 1.0)
        gx = mx.autograd.grad(y, x, head_grads=g, create_graph=True)
        z = (gx * v).sum()
    z.backward()
    np.testing.assert_allclose(g.grad.asnumpy(),
                               mx.nd.contrib.ROIAlign(v, rois, (2, 2), 1.0).asnumpy(), atol=1e-12)


def test_roi_align_negative_batch_index_gives_zeros(device):
    data = _nd(pattern((2, 3, 7, 8)), device)
    data.attach_grad()
    rois = _nd([[-1, 0.6, 1.3, 5.2, 4.9], ROIS[1]], device)
    with mx.autograd.record():
        out = mx.nd.contrib.ROIAlign(data, rois, pooled_size=(2, 3), spatial_scale=1.0)
    out.backward(mx.nd.ones_like(out))
    assert not out.asnumpy()[0].any()
    np.testing.assert_allclose(out.asnumpy()[1], ROI_EXPECTED["adaptive"][1], atol=1e-5)
    assert not data.grad.asnumpy()[0].any()


@pytest.mark.parametrize("data_shape,rois_shape,kwargs,match", [
    ((2, 3, 7, 8), (4, 4), {}, r"rois must be \(num_rois, 5\).*\(4, 4\)"),
    ((2, 3, 7, 8), (5,), {}, r"rois must be \(num_rois, 5\).*\(5,\)"),
    ((3, 7, 8), (4, 5), {}, r"data must be \(batch, channels, height, width\).*\(3, 7, 8\)"),
    ((2, 3, 7, 8), (4, 5), {"position_sensitive": True}, r"divisible by.*4.*\(2, 3, 7, 8\)"),
    ((2, 3, 7, 8), (4, 5), {"spatial_scale": 2.0}, r"spatial_scale must be in \[0, 1\]"),
    ((2, 3, 7, 8), (4, 5), {"pooled_size": (2, 0)}, "pooled_size"),
])
def test_roi_align_shape_errors(data_shape, rois_shape, kwargs, match, device):
    args = {"pooled_size": (2, 2), "spatial_scale": 1.0, **kwargs}
    with pytest.raises(MXCoreError, match=match):
        mx.nd.contrib.ROIAlign(mx.nd.zeros(data_shape, ctx=device),
                               mx.nd.zeros(rois_shape, ctx=device), **args)


def test_roi_align_value_errors(device):
    data = mx.nd.zeros((2, 3, 7, 8), ctx=device)
    with pytest.raises(MXCoreError, match="dtype"):
        mx.nd.contrib.ROIAlign(data, _nd([ROIS[0]], device, "float64"), (2, 2), 1.0)
    with pytest.raises(MXCoreError, match="batch index 2"):
        mx.nd.contrib.ROIAlign(data, _nd([[2, 0, 0, 3, 3]], device), (2, 2), 1.0).asnumpy()
    with pytest.raises(MXCoreError, match="positive size"):  # MXNet's aligned check
        mx.nd.contrib.ROIAlign(data, _nd([ROIS[3]], device), (2, 2), 1.0,
                               aligned=True).asnumpy()


# bipartite_matching -----------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MATCH_CASES))
def test_bipartite_matching_matches_mxnet(name, device):
    key, kwargs = MATCH_CASES[name]
    x = _nd(MATCH_INPUTS[key], device)
    x.attach_grad()
    with mx.autograd.record():
        rows, cols = mx.nd.contrib.bipartite_matching(x, **kwargs)
        total = rows.sum() + cols.sum()
    total.backward()
    expected_rows, expected_cols = MATCH_EXPECTED[name]
    assert rows.dtype == cols.dtype == np.float32
    np.testing.assert_array_equal(rows.asnumpy(), expected_rows)
    np.testing.assert_array_equal(cols.asnumpy(), expected_cols)
    assert not x.grad.asnumpy().any()


def test_bipartite_matching_errors(device):
    with pytest.raises(MXCoreError, match=r"at least 2 axes.*\(4,\)"):
        mx.nd.contrib.bipartite_matching(mx.nd.zeros((4,), ctx=device), threshold=0.1)
    with pytest.raises(MXCoreError, match="threshold"):
        mx.nd.contrib.bipartite_matching(mx.nd.zeros((2, 3), ctx=device))


# reference values: MXNet 1.9.1's outputs (mx.nd.contrib on cpu) for the inputs above -------
# box_nms: the rows that are not all -1, per batch (the rest of each batch is -1)
NMS_EXPECTED = {'default': [[[0.0, 0.9, 0.0, 0.0, 1.0, 1.0], [2.0, 0.3, 2.0, 2.0, 3.0, 3.5],
              [0.0, 0.05, 5.0, 5.0, 6.0, 6.0]],
             [[-1.0, 0.9, 4.0, 4.0, 5.0, 5.0], [0.0, 0.7, 0.5, 0.5, 1.5, 1.5],
              [1.0, 0.6, 0.0, 0.0, 2.0, 1.9], [1.0, 0.5, 1.0, 1.0, 3.0, 3.0]]],
 'by_class': [[[0.0, 0.9, 0.0, 0.0, 1.0, 1.0], [1.0, 0.8, 0.1, 0.1, 1.1, 1.1],
               [2.0, 0.3, 2.0, 2.0, 3.0, 3.5], [0.0, 0.05, 5.0, 5.0, 6.0, 6.0]],
              [[0.0, 0.7, 0.5, 0.5, 1.5, 1.5], [1.0, 0.6, 0.0, 0.0, 2.0, 1.9],
               [1.0, 0.5, 1.0, 1.0, 3.0, 3.0]]],
 'force_background': [[[0.0, 0.9, 0.0, 0.0, 1.0, 1.0], [0.0, 0.05, 5.0, 5.0, 6.0, 6.0]],
                      [[-1.0, 0.9, 4.0, 4.0, 5.0, 5.0], [0.0, 0.7, 0.5, 0.5, 1.5, 1.5],
                       [1.0, 0.5, 1.0, 1.0, 3.0, 3.0]]],
 'topk_valid': [[[0.0, 0.9, 0.0, 0.0, 1.0, 1.0], [1.0, 0.8, 0.1, 0.1, 1.1, 1.1]],
                [[-1.0, 0.9, 4.0, 4.0, 5.0, 5.0], [0.0, 0.7, 0.5, 0.5, 1.5, 1.5],
                 [1.0, 0.6, 0.0, 0.0, 2.0, 1.9]]],
 'topk0': [[[0.0, 0.9, 0.0, 0.0, 1.0, 1.0], [1.0, 0.8, 0.1, 0.1, 1.1, 1.1],
            [0.0, 0.8, 0.05, 0.0, 1.05, 1.0], [2.0, 0.3, 2.0, 2.0, 3.0, 3.5],
            [2.0, 0.2, 2.1, 2.2, 3.0, 3.4], [0.0, 0.05, 5.0, 5.0, 6.0, 6.0]],
           [[1.0, 0.5, 0.0, 0.0, 2.0, 2.0], [1.0, 0.5, 1.0, 1.0, 3.0, 3.0],
            [0.0, 0.7, 0.5, 0.5, 1.5, 1.5], [1.0, 0.6, 0.0, 0.0, 2.0, 1.9],
            [-1.0, 0.9, 4.0, 4.0, 5.0, 5.0], [3.0, 0.0, 0.0, 0.0, 1.0, 1.0]]],
 'all_invalid': [[], []],
 'center_in': [[[0.0, 0.9, -0.5, -0.5, 0.5, 0.5], [1.0, 0.8, -0.45, -0.45, 0.65, 0.65],
                [2.0, 0.3, 0.5, 0.25, 3.5, 3.75], [0.0, 0.05, 2.0, 2.0, 8.0, 8.0]],
               [[0.0, 0.7, -0.25, -0.25, 1.25, 1.25], [1.0, 0.6, -1.0, -0.95, 1.0, 0.95],
                [1.0, 0.5, -0.5, -0.5, 2.5, 2.5]]],
 'center_out': [[[0.5, 0.5, 1.0, 1.0, 0.6], [-0.5, 3.0, 1.0, 4.0, 0.4],
                 [3.0, 1.5, 2.0, 1.0, 0.3]]],
 'batch_axes': [[[0.0, 0.9, 0.0, 0.0, 1.0, 1.0], [1.0, 0.8, 0.1, 0.1, 1.1, 1.1]],
                [[2.0, 0.3, 2.0, 2.0, 3.0, 3.5], [0.0, 0.05, 5.0, 5.0, 6.0, 6.0]],
                [[0.0, 0.7, 0.5, 0.5, 1.5, 1.5], [1.0, 0.5, 0.0, 0.0, 2.0, 2.0],
                 [1.0, 0.5, 1.0, 1.0, 3.0, 3.0]],
                [[1.0, 0.6, 0.0, 0.0, 2.0, 1.9]]]}

# box_nms: data gradients for the output gradient nms_out_grad() gives
NMS_GRAD_EXPECTED = {'by_class': [[[0.0, 0.1, 0.2, 0.3, 0.4, 0.5], [0.6, 0.7, 0.8, 0.9, 1.0, 1.1],
               [0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [1.2, 1.3, 1.4, 1.5, 1.6, 1.7],
               [0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [1.8, 1.9, 2.0, 2.1, 2.2, 2.3]],
              [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [4.8, 4.9, 5.0, 5.1, 5.2, 5.3],
               [3.6, 3.7, 3.8, 3.9, 4.0, 4.1], [4.2, 4.3, 4.4, 4.5, 4.6, 4.7],
               [0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]],
 'topk0': [[[0.0, 0.1, 0.2, 0.3, 0.4, 0.5], [0.6, 0.7, 0.8, 0.9, 1.0, 1.1],
            [1.2, 1.3, 1.4, 1.5, 1.6, 1.7], [1.8, 1.9, 2.0, 2.1, 2.2, 2.3],
            [2.4, 2.5, 2.6, 2.7, 2.8, 2.9], [3.0, 3.1, 3.2, 3.3, 3.4, 3.5]],
           [[3.6, 3.7, 3.8, 3.9, 4.0, 4.1], [4.2, 4.3, 4.4, 4.5, 4.6, 4.7],
            [4.8, 4.9, 5.0, 5.1, 5.2, 5.3], [5.4, 5.5, 5.6, 5.7, 5.8, 5.9],
            [6.0, 6.1, 6.2, 6.3, 6.4, 6.5], [6.6, 6.7, 6.8, 6.9, 7.0, 7.1]]],
 'center_in': [[[0.0, 0.1, 0.2, 0.3, 0.4, 0.5], [0.6, 0.7, 0.8, 0.9, 1.0, 1.1],
                [0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [1.2, 1.3, 1.4, 1.5, 1.6, 1.7],
                [0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [1.8, 1.9, 2.0, 2.1, 2.2, 2.3]],
               [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [4.8, 4.9, 5.0, 5.1, 5.2, 5.3],
                [3.6, 3.7, 3.8, 3.9, 4.0, 4.1], [4.2, 4.3, 4.4, 4.5, 4.6, 4.7],
                [0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]]}

# ROIAlign outputs (5 decimals; float64_scale: 10)
ROI_EXPECTED = {'adaptive': [[[[-1.49896, 2.72578, -0.04583], [-3.07396, 2.12396, -1.62083]],
               [[0.16146, -0.6375, 0.98333], [2.2556, 0.15206, -0.59167]],
               [[-1.12396, 3.10078, 0.32917], [-2.69896, 2.49896, -1.24583]]],
              [[[1.27172, -0.13949, 1.87852], [-0.16715, -0.69103, 2.50547]],
               [[-0.94531, 0.42318, -1.03828], [1.02005, 1.2205, -0.44728]],
               [[1.64672, 0.23551, -0.92859], [0.20785, -0.31603, 2.88047]]],
              [[[-1.86172, -1.75609, 0.09818], [2.66719, 0.09167, 1.12596]],
               [[0.16523, 2.87318, -1.18724], [-0.39531, 1.75208, -2.30833]],
               [[-1.67422, -1.38109, 0.47318], [2.85469, 0.46667, 1.50096]]],
              [[[2.57292, -0.09375, -2.76041], [2.13542, -0.53125, -3.19791]],
               [[-1.44792, 0.09375, 1.63542], [-1.88542, -0.34375, 1.19792]],
               [[2.94792, 0.28125, -2.38541], [2.51042, -0.15625, -2.82291]]],
              [[[-2.29479, -1.96406, 0.0], [0.0, 0.0, 0.0]],
               [[1.6276, 1.28594, 0.0], [0.0, 0.0, 0.0]],
               [[-1.91979, -1.77656, 0.0], [0.0, 0.0, 0.0]]]],
 'ratio2_scaled': [[[[-0.07271, -0.125, 0.82219], [-0.19792, -0.65, 1.6649],
                     [-0.72292, -1.175, 2.37083]],
                    [[2.82917, 0.69375, -2.70417], [2.30417, 0.16875, -3.22917],
                     [1.77917, -0.35625, -3.75417]],
                    [[0.30229, 0.25, 1.19719], [0.17708, -0.275, 2.0399],
                     [-0.34792, -0.8, 2.74583]]],
                   [[[0.08438, -0.66302, 2.12941], [-0.77604, -1.52344, 2.83177],
                     [-1.63646, -2.38385, 1.97135]],
                    [[1.48177, -0.94896, -2.43281], [0.62135, -1.80937, -3.29323],
                     [-0.23906, 2.13691, 0.50402]],
                    [[0.45938, -0.28802, 2.50441], [-0.40104, -1.14844, 3.20677],
                     [-1.26146, -2.00885, 2.34635]]],
                   [[[-5.92656, -4.10813, -0.60865], [-1.59375, -1.6375, -0.87311],
                     [4.08542, 1.60083, -1.21975]],
                    [[0.49453, 2.34453, 3.62839], [0.17187, 2.02187, 3.30573],
                     [-0.25104, 1.59896, 2.88281]],
                    [[-5.55156, -3.73312, -0.23365], [-1.21875, -1.2625, -0.49811],
                     [4.46042, 1.97583, -0.84475]]],
                   [[[-3.1875, -1.64583, -0.10417], [-3.47917, -1.9375, -0.39583],
                     [-3.77083, -2.22917, -0.6875]],
                    [[1.20833, -1.45833, -4.125], [1.00434, -1.48698, -3.9783],
                     [1.32639, 0.0625, -1.20139]],
                    [[-2.8125, -1.27083, 0.27083], [-3.10417, -1.5625, -0.02083],
                     [-3.39583, -1.85417, -0.3125]]],
                   [[[1.84792, -1.74036, 0.19479], [1.32292, -2.26536, -0.33021],
                     [0.79792, -2.79036, -0.85521]],
                    [[1.29896, 2.91849, -0.98542], [0.77396, 2.39349, -1.51042],
                     [0.24896, 1.86849, -2.03542]],
                    [[2.22292, -1.36536, 0.56979], [1.69792, -1.89036, 0.04479],
                     [1.17292, -2.41536, -0.48021]]]],
 'aligned': [[[[0.44175, 0.46198], [-1.10694, 0.83333]],
              [[-0.46667, 1.47361], [0.55347, 0.35451]],
              [[0.81675, 0.83698], [-0.73194, 1.20833]]],
             [[[0.39289, 0.03885], [0.18351, -0.00098]],
              [[-0.57962, -0.03038], [0.6125, 1.17027]],
              [[0.76789, -0.91128], [0.55851, 0.37402]]],
             [[[-4.0, -0.20556], [2.21719, 0.16963]],
              [[0.33333, 1.10417], [-0.23542, 0.25104]],
              [[-3.75, 0.16944], [2.46719, 0.54463]]],
             [[[-0.6375, -1.84375], [-0.5375, -1.03125]],
              [[1.04922, 1.40625], [0.30586, 0.59375]],
              [[-0.2625, -1.65625], [-0.35, -0.9375]]]],
 'ratio1_4x4': [[[[-2.09688, 2.19609, 0.88672, 1.23437],
                  [-2.88438, 2.43438, 1.75625, 0.44687],
                  [-3.67188, 1.64688, 0.96875, -0.34063],
                  [-4.45937, 0.85938, 0.18125, -1.12813]],
                 [[2.19375, -2.90312, 2.41563, -0.15625],
                  [1.40625, -3.69062, 1.62813, -0.94375],
                  [1.83391, 0.20891, 0.84063, -1.73125],
                  [2.04063, 3.25625, 0.05313, -2.51875]],
                 [[-1.72188, 2.57109, 1.26172, 1.60937],
                  [-2.50938, 2.80938, 2.13125, 0.82187],
                  [-3.29688, 2.02188, 1.34375, 0.03437],
                  [-4.08437, 1.23438, 0.55625, -0.75313]]],
                [[[0.83984, 2.71719, 1.28047, -2.70938],
                  [-0.45078, 1.42656, -0.01016, 5.62656],
                  [-1.63784, 0.13594, -1.30078, 4.33594],
                  [-2.47969, 1.92956, -0.76177, 3.04531]],
                 [[-4.73281, 1.24766, -2.08281, 0.79219],
                  [2.57833, -0.04297, -3.37344, -0.49844],
                  [4.75859, -1.33359, 5.19922, -1.78906],
                  [3.46797, -2.62422, 3.90859, -3.07969]],
                 [[1.21484, 3.09219, 1.65547, -5.33281],
                  [-0.07578, 1.80156, 0.36484, 2.37188],
                  [-1.26284, 0.51094, -0.92578, 4.71094],
                  [-2.10469, 2.30456, -0.38677, 3.42031]]]],
 'position_sensitive': [[[[1.14361, 0.29338], [1.41369, 0.08878]],
                         [[0.64361, -0.20662], [0.91369, 1.54911]]],
                        [[[-0.74683, 1.32593], [0.75943, -0.30866]],
                         [[-1.03344, 0.82593], [0.25943, -0.80866]]],
                        [[[-5.24648, 1.00234], [-2.13685, 2.05074]],
                         [[4.1335, 0.50234], [-2.63685, 1.55074]]]],
 'float64_scale': [[[[-1.4989584053, 2.7257811776, -0.0458325951],
                     [-3.0739584679, 2.1239579036, -1.6208326576]],
                    [[0.161458069, -0.6374995435, 0.9833318475],
                     [2.2555993056, 0.1520574115, -0.5916682151]],
                    [[-1.1239584053, 3.1007811776, 0.3291674049],
                     [-2.6989584679, 2.4989579036, -1.2458326576]]],
                   [[[1.2717171501, -0.1394931657, 1.8785223525],
                     [-0.167146175, -0.6910256944, 2.5054691749]],
                    [[-0.9453052445, 0.4231765563, -1.0382807225],
                     [1.02005158, 1.2205036631, -0.4472818178]],
                    [[1.6467171501, 0.2355068343, -0.9285917919],
                     [0.207853825, -0.3160256944, 2.8804691749]]],
                   [[[-1.8617187048, -1.7560870912, 0.098176824],
                     [2.6671874744, 0.0916666579, 1.1259638266]],
                    [[0.1652343716, 2.8731769268, -1.1872396504],
                     [-0.3953125256, 1.7520831323, -2.3083334449]],
                    [[-1.6742187048, -1.3810870912, 0.473176824],
                     [2.8546874744, 0.4666666579, 1.5009638266]]],
                   [[[2.5729152908, -0.0937513759, -2.7604180425],
                     [2.1354152908, -0.5312513759, -3.1979180425]],
                    [[-1.4479160359, 0.0937506308, 1.6354172975],
                     [-1.8854160359, -0.3437493692, 1.1979172975]],
                    [[2.9479152908, 0.2812486241, -2.3854180425],
                     [2.5104152908, -0.1562513759, -2.8229180425]]],
                   [[[-2.2947928109, -1.9640625482, 0.0], [0.0, 0.0, 0.0]],
                    [[1.6276046759, 1.2859374518, 0.0], [0.0, 0.0, 0.0]],
                    [[-1.9197928109, -1.7765625482, 0.0], [0.0, 0.0, 0.0]]]]}

# ROIAlign: data gradients for the output gradient roi_out_grad() gives (5
# decimals; the rois' gradients are 0)
ROI_GRAD_EXPECTED = {'adaptive': [[[[-0.85104, -0.45687, -0.38073, -0.1926, 0.0, 0.0],
                [-0.2066, -0.11229, 0.00226, -0.04517, -0.11806, -0.07222],
                [-0.00917, -0.54111, -0.45403, -0.43347, -0.51944, -0.31778],
                [-0.00667, -0.49333, -0.49333, -0.36194, -0.30694, -0.18778],
                [-0.00431, -0.31861, -0.31861, -0.13347, 0.0, 0.0]]],
              [[[0.0, 0.0, 0.00026, 0.00098, 0.00098, 0.00241],
                [0.0, 0.0, 0.03154, 0.11955, 0.11955, 0.29417],
                [0.0, 0.0, 0.03154, 0.11955, 0.11955, 0.29417],
                [0.0, 0.0, 0.03515, 0.13327, 0.13327, 0.2696],
                [0.0, 0.0, 0.18068, 0.68498, 0.68498, -0.25619]]]],
 'aligned': [[[[2.70047, -1.4148, -1.17583, -0.041, -0.00883, 0.0],
               [-1.98893, -1.60253, -0.97067, -0.5248, -0.11307, 0.0],
               [-0.3782, -0.62237, -0.15557, 0.2243, 0.06183, 0.0],
               [0.0, 0.15573, 0.61013, 0.928, 0.22613, 0.0],
               [0.0, 0.0073, 0.0286, 0.0435, 0.0106, 0.0]]],
             [[[0.0, 0.12367, 0.47685, -0.17212, -0.50745, -0.43095],
               [0.0, 0.19885, 0.7667, -0.27675, -0.8159, -0.6929],
               [0.0, 0.15035, 0.5797, -0.24225, -0.65503, -0.50278],
               [0.0, -0.06871, -0.26492, -0.09138, 0.06588, 0.35913],
               [0.0, -0.08083, -0.31167, -0.1075, 0.0775, 0.4225]]]],
 'position_sensitive': [[[[-0.09539, -0.39891, -0.19945, 0.0, 0.0],
                          [-0.27328, -1.14281, -0.57141, 0.0, 0.0],
                          [-0.04383, -0.18328, -0.09164, 0.0, 0.0],
                          [0.0, 0.0, 0.0, 0.0, 0.0]],
                         [[0.0, 0.0, -0.13297, -0.26594, -0.06359],
                          [0.0, 0.0, -0.38094, -0.76187, -0.18219],
                          [0.0, 0.0, -0.06109, -0.12219, -0.02922],
                          [0.0, 0.0, 0.0, 0.0, 0.0]],
                         [[0.0, 0.0, 0.0, 0.0, 0.0],
                          [-0.00773, -0.03234, -0.01617, 0.0, 0.0],
                          [-0.09109, -0.38094, -0.19047, 0.0, 0.0],
                          [-0.03867, -0.16172, -0.08086, 0.0, 0.0]],
                         [[0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0],
                          [0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]]]]}

# bipartite_matching: (row marker, column marker); its data gradient is 0
MATCH_EXPECTED = {'docs': ([1.0, -1.0, 0.0], [2.0, 0.0]),
 'batch_ties': ([[0.0, 1.0, 2.0], [-1.0, 0.0, 1.0]],
                [[0.0, 1.0, 2.0, -1.0], [1.0, 2.0, -1.0, -1.0]]),
 'ascend': ([[3.0, 2.0, 0.0], [0.0, 1.0, 3.0]],
            [[2.0, -1.0, 1.0, 0.0], [0.0, 1.0, -1.0, 2.0]]),
 'topk1': ([[0.0, 1.0, -1.0], [-1.0, 0.0, 1.0]],
           [[0.0, 1.0, -1.0, -1.0], [1.0, 2.0, -1.0, -1.0]]),
 'topk2': ([-1.0, 1.0, 0.0, -1.0, -1.0], [2.0, 1.0]),
 'tall': ([-1.0, 1.0, 0.0, -1.0, -1.0], [2.0, 1.0])}
