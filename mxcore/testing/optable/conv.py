"""Op-table cases: transposed convolution (Deconvolution, and its fused backward op)
and upsampling (UpSampling nearest and bilinear).  Imported by mxcore.testing.optable,
which collects every case into one table.

The references are direct loops over input positions on tiny shapes, written from
the definitions: a transposed convolution scatters ``x[n, c, i] * w[c, f, k]`` to
output position ``i * stride + k * dilate - pad`` (dropped outside the output).
"""
from __future__ import annotations

import itertools

import numpy as np

import mxcore as mx
from mxcore.testing.table import ALL, In, collector

CASES: list = []
case = collector(CASES)


nd = mx.nd
_T = {"float32": (1e-4, 1e-5), "float16": (2e-2, 2e-2), "bfloat16": (3e-2, 3e-2)}


def deconv_ref(x, w, b=None, stride=None, pad=None, dilate=None, adj=None, groups=1):
    """Transposed convolution of x (N, C, *in) with w (C, F/groups, *k), plus b (F,)."""
    nd_ = x.ndim - 2
    stride, pad = stride or (1,) * nd_, pad or (0,) * nd_
    dilate, adj = dilate or (1,) * nd_, adj or (0,) * nd_
    c_in, fg = w.shape[:2]
    k = w.shape[2:]
    cg = c_in // groups
    out = [(x.shape[2 + i] - 1) * stride[i] + dilate[i] * (k[i] - 1) + 1 - 2 * pad[i] + adj[i]
           for i in range(nd_)]
    y = np.zeros((x.shape[0], fg * groups) + tuple(out))
    for n, c in itertools.product(range(x.shape[0]), range(c_in)):
        g = c // cg
        for i in np.ndindex(*x.shape[2:]):
            for kk in np.ndindex(*k):
                o = tuple(i[d] * stride[d] + kk[d] * dilate[d] - pad[d] for d in range(nd_))
                if all(0 <= o[d] < out[d] for d in range(nd_)):
                    for f in range(fg):
                        y[(n, g * fg + f) + o] += x[(n, c) + i] * w[(c, f) + kk]
    if b is not None:
        y += b.reshape((1, -1) + (1,) * nd_)
    return y


def deconv_backward_ref(gy, x, w, grads, **geometry):
    """(d data, d weight, d bias) as ``grads`` asks, by differentiating the linear
    map deconv_ref numerically exactly: its matrix applied transposed."""
    x_cols = np.eye(x.size).reshape((x.size,) + x.shape)
    w_cols = np.eye(w.size).reshape((w.size,) + w.shape)
    out = []
    if grads[0]:
        out.append(np.array([(deconv_ref(e, w, **geometry) * gy).sum()
                             for e in x_cols]).reshape(x.shape))
    if grads[1]:
        out.append(np.array([(deconv_ref(x, e, **geometry) * gy).sum()
                             for e in w_cols]).reshape(w.shape))
    if grads[2]:
        out.append(gy.sum(axis=tuple(i for i in range(gy.ndim) if i != 1)))
    return tuple(out)


def nearest_ref(x, scale):
    """Each pixel of x (N, C, H, W) copied into a scale x scale block."""
    n, c, h, w = x.shape
    y = np.zeros((n, c, h * scale, w * scale), dtype=x.dtype)
    for i, j in itertools.product(range(h * scale), range(w * scale)):
        y[:, :, i, j] = x[:, :, i // scale, j // scale]
    return y


# --- Deconvolution ------------------------------------------------------------------------
case("deconvolution_2d_bias",
     lambda x, w, b: nd.Deconvolution(x, w, b, kernel=(3, 3), num_filter=2, no_bias=False),
     deconv_ref, (In((2, 3, 3, 4)), In((3, 2, 3, 3)), In((2,))), grad2=False, tol=_T)
case("deconvolution_2d_stride_pad_adj",
     lambda x, w, b: nd.Deconvolution(x, w, b, kernel=(3, 2), stride=(2, 3), pad=(1, 1),
                                      adj=(1, 2), num_filter=2, no_bias=False),
     lambda x, w, b: deconv_ref(x, w, b, (2, 3), (1, 1), None, (1, 2)),
     (In((2, 2, 3, 3)), In((2, 2, 3, 2)), In((2,))), grad2=False, tol=_T)
case("deconvolution_grouped_no_bias",
     lambda x, w: nd.Deconvolution(x, w, kernel=(3, 3), stride=(2, 2), pad=(1, 1),
                                   num_filter=4, num_group=2),
     lambda x, w: deconv_ref(x, w, None, (2, 2), (1, 1), groups=2),
     (In((2, 4, 3, 3)), In((4, 2, 3, 3))), grad2=False, tol=_T)
case("deconvolution_dilate_stride",
     lambda x, w: nd.Deconvolution(x, w, kernel=(3, 2), stride=(2, 3), dilate=(2, 3),
                                   pad=(2, 1), adj=(1, 0), num_filter=2),
     lambda x, w: deconv_ref(x, w, None, (2, 3), (2, 1), (2, 3), (1, 0)),
     (In((1, 2, 3, 3)), In((2, 2, 3, 2))), grad2=False, tol=_T)
case("deconvolution_depthwise_upsample",
     lambda x, w: nd.Deconvolution(x, w, kernel=(4, 4), stride=(2, 2), pad=(1, 1),
                                   num_filter=3, num_group=3),
     lambda x, w: deconv_ref(x, w, None, (2, 2), (1, 1), groups=3),
     (In((1, 3, 3, 2)), In((3, 1, 4, 4))), grad2=False, tol=_T)
case("deconvolution_1d",
     lambda x, w, b: nd.Deconvolution(x, w, b, kernel=(3,), stride=(3,), pad=(1,), adj=(2,),
                                      num_filter=2, no_bias=False),
     lambda x, w, b: deconv_ref(x, w, b, (3,), (1,), None, (2,)),
     (In((2, 3, 4)), In((3, 2, 3)), In((2,))), grad2=False, tol=_T)
case("deconvolution_3d",
     lambda x, w, b: nd.Deconvolution(x, w, b, kernel=(2, 2, 2), stride=(2, 1, 2),
                                      pad=(0, 1, 1), num_filter=2, no_bias=False),
     lambda x, w, b: deconv_ref(x, w, b, (2, 1, 2), (0, 1, 1)),
     (In((1, 2, 2, 3, 2)), In((2, 2, 2, 2, 2)), In((2,))), grad2=False, tol=_T)
case("deconvolution_nhwc",
     lambda x, w, b: nd.Deconvolution(x, w, b, kernel=(3, 3), stride=(2, 2), num_filter=2,
                                      no_bias=False, layout="NHWC"),
     lambda x, w, b: deconv_ref(x.transpose(0, 3, 1, 2), w.transpose(0, 3, 1, 2), b, (2, 2))
     .transpose(0, 2, 3, 1),
     (In((2, 3, 2, 3)), In((3, 3, 3, 2)), In((2,))), grad2=False, tol=_T)
# target_shape (8, 7) from a 3x3 input, kernel 3, stride 3: full output 9, so MXNet pads
# (1, 1) and adjusts (1, 0)
case("deconvolution_target_shape",
     lambda x, w: nd.Deconvolution(x, w, kernel=(3, 3), stride=(3, 3), target_shape=(8, 7),
                                   num_filter=2),
     lambda x, w: deconv_ref(x, w, None, (3, 3), (1, 1), None, (1, 0)),
     (In((1, 2, 3, 3)), In((2, 2, 3, 3))), grad2=False, tol=_T)
case("deconvolution_backward",
     lambda g, x, w: nd.invoke("deconvolution_backward", g, x, w, kernel=(2, 3),
                               stride=(2, 1), dilate=(1, 2), pad=(1, 1), adj=(1, 0),
                               num_filter=2, num_group=1, no_bias=False, grads=(1, 1, 1)),
     lambda g, x, w: deconv_backward_ref(g, x, w, (1, 1, 1), stride=(2, 1), pad=(1, 1),
                                         dilate=(1, 2), adj=(1, 0)),
     (In((2, 2, 5, 4)), In((2, 3, 3, 2)), In((3, 2, 2, 3))), grad=False, tol=_T)
case("deconvolution_backward_weight_only",
     lambda g, x, w: nd.invoke("deconvolution_backward", g, x, w, kernel=(3,), stride=(2,),
                               dilate=(1,), pad=(0,), adj=(0,), num_filter=4, num_group=2,
                               no_bias=True, grads=(0, 1, 0)),
     lambda g, x, w: deconv_backward_ref(g, x, w, (0, 1, 0), stride=(2,), groups=2),
     (In((2, 4, 7)), In((2, 2, 3)), In((2, 2, 3))), grad=False, tol=_T)

# --- UpSampling ---------------------------------------------------------------------------
case("upsampling_nearest_2x",
     lambda x: nd.UpSampling(x, scale=2, sample_type="nearest"),
     lambda x: nearest_ref(x, 2), (In((2, 3, 2, 3)),), ALL)
case("upsampling_nearest_concat",
     lambda a, b: nd.UpSampling(a, b, scale=3, sample_type="nearest", num_args=2),
     lambda a, b: np.concatenate([nearest_ref(a, 3), nearest_ref(b, 6)], axis=1),
     (In((1, 2, 2, 2)), In((1, 3, 1, 1))))
case("upsampling_nearest_sum",
     lambda a, b, c: nd.UpSampling(a, b, c, scale=1, sample_type="nearest",
                                   multi_input_mode="sum"),
     lambda a, b, c: a + nearest_ref(b, 2) + nearest_ref(c, 4),
     (In((1, 2, 4, 4)), In((1, 2, 2, 2)), In((1, 2, 1, 1))))
case("upsampling_bilinear",
     lambda x, w: nd.UpSampling(x, w, scale=2, sample_type="bilinear", num_filter=2),
     lambda x, w: deconv_ref(x, w, None, (2, 2), (1, 1), groups=2),
     (In((1, 2, 3, 2)), In((2, 1, 4, 4))), grad2=False, tol=_T)
case("upsampling_bilinear_scale3",
     lambda x, w: nd.UpSampling(x, w, scale=3, sample_type="bilinear", num_filter=1),
     lambda x, w: deconv_ref(x, w, None, (3, 3), (1, 1), groups=1),
     (In((2, 1, 2, 2)), In((1, 1, 5, 5))), grad2=False, tol=_T)


# --- im2col / col2im ----------------------------------------------------------------------
def im2col_ref(x, kernel, stride, dilate, pad):
    """Column (c, kernel offset) x output position of the zero-padded x, by loops."""
    n, c = x.shape[:2]
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple((p, p) for p in pad))
    out = [(xp.shape[2 + i] - dilate[i] * (kernel[i] - 1) - 1) // stride[i] + 1
           for i in range(len(kernel))]
    cols = np.zeros((n, c * int(np.prod(kernel)), int(np.prod(out))))
    for ch in range(c):
        for ki, k in enumerate(np.ndindex(*kernel)):
            for li, o in enumerate(np.ndindex(*out)):
                pos = tuple(o[i] * stride[i] + k[i] * dilate[i] for i in range(len(k)))
                cols[:, ch * int(np.prod(kernel)) + ki, li] = xp[(slice(None), ch) + pos]
    return cols


def col2im_ref(cols, size, kernel, stride, dilate, pad):
    """The transpose of im2col_ref: each input's column entries summed into place."""
    n, rows = cols.shape[:2]
    c = rows // int(np.prod(kernel))
    basis = np.eye(c * int(np.prod(size))).reshape((-1, 1, c) + tuple(size))
    mat = np.stack([im2col_ref(e, kernel, stride, dilate, pad)[0] for e in basis])
    return np.einsum("iro,nro->ni", mat, cols).reshape((n, c) + tuple(size))


_I2C = dict(kernel=(3, 2), stride=(2, 1), dilate=(1, 2), pad=(1, 1))
case("im2col_2d", lambda x: nd.im2col(x, **_I2C),
     lambda x: im2col_ref(x, **_I2C), (In((2, 2, 5, 4)),), grad2=True)
case("im2col_1d", lambda x: nd.im2col(x, kernel=(3,), stride=(2,), pad=(1,)),
     lambda x: im2col_ref(x, (3,), (2,), (1,), (1,)), (In((2, 3, 6)),))
case("col2im_2d", lambda c: nd.col2im(c, output_size=(5, 4), **_I2C),
     lambda c: col2im_ref(c, (5, 4), **_I2C), (In((1, 12, 12)),), tol=_T)
