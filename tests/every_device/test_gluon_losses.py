"""Every Gluon loss against a numpy reference, with weight and sample_weight,
and its gradient against finite differences."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import special

import mxcore as mx
from mxcore.gluon import loss as gloss

nd = mx.nd


def _log_softmax(x, axis=-1):
    s = x - x.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def _mean_exclude_batch(loss):
    return loss.reshape(loss.shape[0], -1).mean(axis=1)


def _sum_exclude_batch(loss):
    return loss.reshape(loss.shape[0], -1).sum(axis=1)


rng = np.random.default_rng(7)
PRED = rng.normal(size=(4, 5))
LOGITS_BIG = PRED * 40  # exercises numerical stability
SPARSE = rng.integers(0, 5, size=4).astype(np.float64)
DENSE = special.softmax(rng.normal(size=(4, 5)), axis=1)
BINARY = (rng.random((4, 5)) > 0.5).astype(np.float64)
SIGNED = 2 * BINARY - 1
REG = rng.normal(size=(4, 5))
SW = rng.uniform(0.5, 2, size=(4, 1))


def _ref_sce(pred, label, sparse=True, from_logits=False, axis=-1):
    lp = pred if from_logits else _log_softmax(pred, axis)
    if sparse:
        return -np.take_along_axis(lp, label.astype(int)[:, None], axis=1)[:, 0]
    return -(lp * label).sum(axis=axis)


CASES = [
    ("l2", gloss.L2Loss(), PRED, REG, lambda p, l: _mean_exclude_batch(0.5 * (p - l) ** 2)),
    ("l2_weight", gloss.L2Loss(weight=3.0), PRED, REG,
     lambda p, l: _mean_exclude_batch(1.5 * (p - l) ** 2)),
    ("l1", gloss.L1Loss(), PRED, REG, lambda p, l: _mean_exclude_batch(np.abs(p - l))),
    ("sce_sparse", gloss.SoftmaxCrossEntropyLoss(), PRED, SPARSE, _ref_sce),
    ("sce_sparse_big_logits", gloss.SoftmaxCrossEntropyLoss(), LOGITS_BIG, SPARSE, _ref_sce),
    ("sce_dense", gloss.SoftmaxCrossEntropyLoss(sparse_label=False), PRED, DENSE,
     lambda p, l: _ref_sce(p, l, sparse=False)),
    ("sce_from_logits", gloss.SoftmaxCrossEntropyLoss(from_logits=True), _log_softmax(PRED),
     SPARSE, lambda p, l: _ref_sce(p, l, from_logits=True)),
    ("sce_axis0", gloss.SoftmaxCrossEntropyLoss(axis=0, batch_axis=1), PRED.T, SPARSE,
     lambda p, l: _ref_sce(p.T, l)),
    ("sigmoid_bce", gloss.SigmoidBinaryCrossEntropyLoss(), PRED, BINARY,
     lambda p, l: _mean_exclude_batch(-(l * np.log(special.expit(p))
                                       + (1 - l) * np.log(1 - special.expit(p))))),
    ("sigmoid_bce_big_logits", gloss.SigmoidBinaryCrossEntropyLoss(), LOGITS_BIG, BINARY,
     lambda p, l: _mean_exclude_batch(np.logaddexp(0, p) - p * l)),
    ("sigmoid_bce_from_sigmoid", gloss.SigmoidBinaryCrossEntropyLoss(from_sigmoid=True),
     special.expit(PRED), BINARY,
     lambda p, l: _mean_exclude_batch(-(l * np.log(p + 1e-12) + (1 - l) * np.log(1 - p + 1e-12)))),
    ("huber", gloss.HuberLoss(rho=0.5), PRED, REG,
     lambda p, l: _mean_exclude_batch(np.where(np.abs(p - l) > 0.5, np.abs(p - l) - 0.25,
                                               (p - l) ** 2)),),
    # MXNet 1.9.1 sums KL over the non-batch axes (its docs say mean)
    ("kl", gloss.KLDivLoss(), _log_softmax(PRED), DENSE,
     lambda p, l: _sum_exclude_batch(l * (np.log(l + 1e-12) - p))),
    ("kl_logits", gloss.KLDivLoss(from_logits=False), PRED, DENSE,
     lambda p, l: _sum_exclude_batch(l * (np.log(l + 1e-12) - _log_softmax(p)))),
    ("hinge", gloss.HingeLoss(), PRED, SIGNED,
     lambda p, l: _mean_exclude_batch(np.maximum(0, 1 - p * l))),
    ("squared_hinge_margin", gloss.SquaredHingeLoss(margin=0.5), PRED, SIGNED,
     lambda p, l: _mean_exclude_batch(np.maximum(0, 0.5 - p * l) ** 2)),
    ("logistic_signed", gloss.LogisticLoss(), LOGITS_BIG, SIGNED,
     lambda p, l: _mean_exclude_batch(np.logaddexp(0, -p * l))),
    ("logistic_binary", gloss.LogisticLoss(label_format="binary"), PRED, BINARY,
     lambda p, l: _mean_exclude_batch(np.logaddexp(0, -p * (2 * l - 1)))),
]


@pytest.mark.parametrize("name,loss,pred,label,ref", CASES, ids=[c[0] for c in CASES])
def test_loss_forward(name, loss, pred, label, ref, device):
    out = loss(nd.array(pred, ctx=device, dtype="float64"),
               nd.array(label, ctx=device, dtype="float64"))
    expect = ref(pred, label)
    assert out.shape == expect.shape
    np.testing.assert_allclose(out.asnumpy(), expect, rtol=1e-10, atol=1e-12)
    assert np.isfinite(out.asnumpy()).all()


@pytest.mark.parametrize("name,loss,pred,label,ref", CASES, ids=[c[0] for c in CASES])
def test_loss_sample_weight_and_gradient(name, loss, pred, label, ref, device):
    if "axis0" in name:
        pytest.skip("sample weights broadcast along the batch axis 0")
    p = nd.array(pred, ctx=device, dtype="float64")
    p.attach_grad()
    sw = nd.array(SW, ctx=device, dtype="float64")
    lab = nd.array(label, ctx=device, dtype="float64")
    with mx.autograd.record():
        out = loss(p, lab, sw)
    np.testing.assert_allclose(out.asnumpy(), ref(pred, label) * SW[:, 0], rtol=1e-10)
    out.backward()
    eps = 1e-6
    numeric = np.zeros_like(pred)
    for idx in np.ndindex(pred.shape):
        hi, lo = pred.copy(), pred.copy()
        hi[idx] += eps
        lo[idx] -= eps
        numeric[idx] = ((ref(hi, label) - ref(lo, label)) * SW[:, 0]).sum() / (2 * eps)
    np.testing.assert_allclose(p.grad.asnumpy(), numeric, rtol=1e-5, atol=1e-6)


def test_losses_accept_float32_and_reshape_labels(device):
    pred = nd.array(REG, ctx=device, dtype="float32")
    label = nd.array(REG.reshape(-1), ctx=device, dtype="float32")  # reshaped like pred
    out = gloss.L2Loss()(pred, label)
    np.testing.assert_allclose(out.asnumpy(), _mean_exclude_batch(0 * REG), atol=1e-6)
    assert out.dtype == np.float32
