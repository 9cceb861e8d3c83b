"""mx.gluon.loss against numpy references of what MXNet 1.9.1 computes (each checked
against MXNet 1.9.1 on the same inputs: KLDivLoss sums over the non-batch axes,
PoissonNLLLoss averages over everything, CosineEmbeddingLoss returns (batch, 1),
SDMLLoss ignores its weight, CTCLoss uses the last class as blank), their gradients
against finite differences of the references, the ctc_loss operator against brute-force
path sums and PyTorch, and that every loss runs on inputs that hide their shapes (as
symbols do)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special

import mxcore as mx
from mxcore.base import MXCoreError, OperatorError
from mxcore.gluon import loss as gloss
from mxcore.testing.optable.ctc import _ctc_ref

nd = mx.nd
rng = np.random.default_rng(2024)
P = rng.normal(size=(4, 5))
P3 = rng.normal(size=(4, 3, 5))
REG = rng.normal(size=(4, 5))
BIN = (rng.random((4, 5)) > 0.5).astype(float)
SIGN = 2 * BIN - 1
DENSE = special.softmax(rng.normal(size=(4, 5)), axis=1)
DENSE3 = special.softmax(rng.normal(size=(4, 3, 5)), axis=2)
SPARSE = rng.integers(0, 5, 4).astype(float)
SPARSE3 = rng.integers(0, 5, (4, 3)).astype(float)
SW = rng.uniform(0.5, 2, (4, 1))
SW3 = rng.uniform(0.5, 2, (4, 1, 1))
POSW = rng.uniform(0.5, 3, (1, 5))
PROB = special.expit(P)
COUNTS = rng.integers(0, 6, (4, 5)).astype(float)
RATE = rng.uniform(0.2, 3, (4, 5))
X1 = rng.normal(size=(4, 6))
X2 = X1 + 0.3 * rng.normal(size=(4, 6))
PM = np.array([1., -1., 1., -1.])
CTC_X = rng.normal(size=(2, 4, 3))            # (N, T, C): C - 1 = 2 is the blank
CTC_LAB = np.array([[0, 1, -1], [1, 1, -1.]])  # padded with -1


# --- references -------------------------------------------------------------------------
def _per_sample(loss, reduce=np.mean, batch_axis=0):
    loss = np.moveaxis(loss, batch_axis, 0)
    return reduce(loss.reshape(loss.shape[0], -1), axis=1)


def _weighted(loss, weight=None, sw=None):
    loss = loss * sw if sw is not None else loss
    return loss * weight if weight is not None else loss


def _log_softmax(x, axis=-1):
    return x - special.logsumexp(x, axis=axis, keepdims=True)


def _pick(x, idx, axis=-1):
    return np.take_along_axis(x, np.expand_dims(idx.astype(int), axis), axis)


def _bce_logits(p, l, pos_weight=1.0):
    # -(z log sigmoid(x) pos_weight + (1 - z) log(1 - sigmoid(x)))
    return -(l * special.log_expit(p) * pos_weight + (1 - l) * special.log_expit(-p))


def _bce_probs(p, l, pos_weight=1.0):
    return -(l * np.log(p + 1e-12) * pos_weight + (1 - l) * np.log(1 - p + 1e-12))


def _huber(err, rho):
    return np.where(np.abs(err) > rho, np.abs(err) - rho / 2, err ** 2 / (2 * rho))


def _stirling(t):
    """log(t!) by Stirling where t > 1, else 0."""
    m = np.maximum(t, 1)
    return np.where(t > 1, m * np.log(m) - m + 0.5 * np.log(2 * np.pi * m), 0)


def _cosine(a, b, label, margin=0.0):
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1),
                                      1e-12)
    out = np.where(label == 1, 1 - cos, np.where(label == -1, np.maximum(0, cos - margin), 0))
    return out.reshape(-1, 1)


def _sdml(x1, x2, s=0.3):
    d = ((x1[:, None, :] - x2[None, :, :]) ** 2).sum(2)
    n = len(x1)
    labels = np.where(np.eye(n) > 0, 1 - s, s / (n - 1))
    return (labels * (np.log(labels + 1e-12) - _log_softmax(-d, axis=1))).sum(1)


def _ctc_gluon(x, label, pred_lengths=None, label_lengths=None, sw=None, weight=None,
               ntc=True):
    x = x.transpose(1, 0, 2) if ntc else x
    out = _ctc_ref(x, label, "last", pred_lengths, label_lengths)
    return _weighted(out, weight, sw)


# (id, loss factory, inputs (None: not passed), reference)
CASES = [
    ("l2", lambda: gloss.L2Loss(), (P, REG),
     lambda p, l: _per_sample(0.5 * (l - p) ** 2)),
    ("l2_weight_sw_flat_label", lambda: gloss.L2Loss(weight=0.7), (P, REG.reshape(20), SW),
     lambda p, l, sw: _per_sample(0.35 * (l.reshape(p.shape) - p) ** 2 * sw)),
    ("l2_batch_axis1", lambda: gloss.L2Loss(batch_axis=1), (P3, P3[::-1]),
     lambda p, l: _per_sample(0.5 * (l - p) ** 2, batch_axis=1)),
    ("l1_weight_sw", lambda: gloss.L1Loss(weight=2.0), (P, REG, SW),
     lambda p, l, sw: _per_sample(2 * np.abs(l - p) * sw)),
    ("bce", lambda: gloss.SigmoidBCELoss(), (P * 5, BIN),
     lambda p, l: _per_sample(_bce_logits(p, l))),
    ("bce_weight_sw", lambda: gloss.SigmoidBinaryCrossEntropyLoss(weight=0.3),
     (P * 5, BIN, SW), lambda p, l, sw: _per_sample(0.3 * _bce_logits(p, l) * sw)),
    ("bce_pos_weight", lambda: gloss.SigmoidBCELoss(), (P * 5, BIN, None, POSW),
     lambda p, l, sw, pw: _per_sample(_bce_logits(p, l, pw))),
    ("bce_from_sigmoid", lambda: gloss.SigmoidBCELoss(from_sigmoid=True), (PROB, BIN),
     lambda p, l: _per_sample(_bce_probs(p, l))),
    ("bce_from_sigmoid_pos_weight_sw", lambda: gloss.SigmoidBCELoss(from_sigmoid=True),
     (PROB, BIN, SW, POSW), lambda p, l, sw, pw: _per_sample(_bce_probs(p, l, pw) * sw)),
    ("sce", lambda: gloss.SoftmaxCrossEntropyLoss(), (P, SPARSE),
     lambda p, l: -_pick(_log_softmax(p), l)[:, 0]),
    ("sce_weight_sw", lambda: gloss.SoftmaxCELoss(weight=1.5), (P, SPARSE, SW),
     lambda p, l, sw: -1.5 * _pick(_log_softmax(p), l)[:, 0] * sw[:, 0]),
    ("sce_label_column", lambda: gloss.SoftmaxCELoss(), (P, SPARSE.reshape(4, 1)),
     lambda p, l: -_pick(_log_softmax(p), l[:, 0])[:, 0]),
    ("sce_3d_sw", lambda: gloss.SoftmaxCELoss(), (P3, SPARSE3, SW3),
     lambda p, l, sw: _per_sample(-_pick(_log_softmax(p), l) * sw)),
    ("sce_axis1", lambda: gloss.SoftmaxCELoss(axis=1), (P3.transpose(0, 2, 1), SPARSE3),
     lambda p, l: _per_sample(-_pick(_log_softmax(p, 1), l, 1))),
    ("sce_batch_axis1", lambda: gloss.SoftmaxCELoss(axis=0, batch_axis=1), (P.T, SPARSE),
     lambda p, l: -_pick(_log_softmax(p, 0), l, 0)[0]),
    ("sce_dense_3d_sw", lambda: gloss.SoftmaxCELoss(sparse_label=False), (P3, DENSE3, SW3),
     lambda p, l, sw: _per_sample(-(l * _log_softmax(p)).sum(-1, keepdims=True) * sw)),
    ("sce_from_logits", lambda: gloss.SoftmaxCELoss(from_logits=True), (P - 2, SPARSE),
     lambda p, l: -_pick(p, l)[:, 0]),
    ("kl_sums", lambda: gloss.KLDivLoss(), (P, DENSE),
     lambda p, l: _per_sample(l * (np.log(l + 1e-12) - p), np.sum)),
    ("kl_logits_weight_sw", lambda: gloss.KLDivLoss(from_logits=False, weight=2.0),
     (P, DENSE, SW),
     lambda p, l, sw: _per_sample(2 * l * (np.log(l + 1e-12) - _log_softmax(p)) * sw, np.sum)),
    ("kl_logits_axis1", lambda: gloss.KLDivLoss(from_logits=False, axis=1), (P3, DENSE3),
     lambda p, l: _per_sample(l * (np.log(l + 1e-12) - _log_softmax(p, 1)), np.sum)),
    ("huber", lambda: gloss.HuberLoss(), (2 * P, REG),
     lambda p, l: _per_sample(_huber(l - p, 1.0))),
    ("huber_rho_weight_sw", lambda: gloss.HuberLoss(rho=0.5, weight=3.0), (2 * P, REG, SW),
     lambda p, l, sw: _per_sample(3 * _huber(l - p, 0.5) * sw)),
    ("hinge_margin_sw", lambda: gloss.HingeLoss(margin=0.5), (P, SIGN, SW),
     lambda p, l, sw: _per_sample(np.maximum(0, 0.5 - p * l) * sw)),
    ("squared_hinge_weight", lambda: gloss.SquaredHingeLoss(margin=2.0, weight=0.5),
     (P, SIGN), lambda p, l: _per_sample(0.5 * np.maximum(0, 2 - p * l) ** 2)),
    ("logistic_signed", lambda: gloss.LogisticLoss(), (P * 5, SIGN),
     lambda p, l: _per_sample(np.logaddexp(0, -p * l))),
    ("logistic_binary_weight_sw", lambda: gloss.LogisticLoss(label_format="binary", weight=2.),
     (P * 5, BIN, SW), lambda p, l, sw: _per_sample(2 * np.logaddexp(0, -p * (2 * l - 1)) * sw)),
    ("triplet", lambda: gloss.TripletLoss(), (P, REG, P + 0.5),
     lambda p, a, b: np.maximum(0, _per_sample((a - p) ** 2 - (b - p) ** 2, np.sum) + 1)),
    ("triplet_margin_weight_3d", lambda: gloss.TripletLoss(margin=3.0, weight=0.5),
     (P3, P3 + 0.2, P3[::-1]),
     lambda p, a, b: 0.5 * np.maximum(0, _per_sample((a - p) ** 2 - (b - p) ** 2, np.sum) + 3)),
    ("poisson_log_rate", lambda: gloss.PoissonNLLLoss(), (P, COUNTS),
     lambda p, t: np.mean(np.exp(p) - t * p).reshape(1)),
    ("poisson_rate_weight_sw", lambda: gloss.PoissonNLLLoss(from_logits=False, weight=2.0),
     (RATE, COUNTS + 1, SW),
     lambda p, t, sw: np.mean(2 * (p - t * np.log(p + 1e-8)) * sw).reshape(1)),
    ("poisson_full_with_zero_targets",
     lambda: gloss.PoissonNLLLoss(from_logits=False, compute_full=True), (RATE, COUNTS),
     lambda p, t: np.mean(p - t * np.log(p + 1e-8) + _stirling(t)).reshape(1)),
    ("poisson_epsilon", lambda: gloss.PoissonNLLLoss(from_logits=False),
     (RATE, COUNTS, None, 0.1),
     lambda p, t, sw, eps: np.mean(p - t * np.log(p + eps)).reshape(1)),
    ("cosine", lambda: gloss.CosineEmbeddingLoss(), (X1, X2, PM),
     lambda a, b, l: _cosine(a, b, l)),
    ("cosine_margin_weight_sw", lambda: gloss.CosineEmbeddingLoss(margin=0.2, weight=2.0),
     (X1, 0.1 * X1 - X2, PM, SW), lambda a, b, l, sw: 2 * _cosine(a, b, l, 0.2) * sw),
    ("sdml", lambda: gloss.SDMLLoss(), (X1, X2), _sdml),
    ("sdml_ignores_weight", lambda: gloss.SDMLLoss(smoothing_parameter=0.1, weight=5.0),
     (X1, X2), lambda a, b: _sdml(a, b, 0.1)),
    ("ctc", lambda: gloss.CTCLoss(), (CTC_X, CTC_LAB), _ctc_gluon),
    ("ctc_tnc_tn", lambda: gloss.CTCLoss(layout="TNC", label_layout="TN"),
     (CTC_X.transpose(1, 0, 2), CTC_LAB.T),
     lambda x, l: _ctc_gluon(x, l.T, ntc=False)),
    ("ctc_lengths_weight_sw", lambda: gloss.CTCLoss(weight=2.0),
     (CTC_X, np.array([[0, 1, 1], [1, 0, 0.]]), np.array([4., 3]), np.array([2., 3]),
      np.array([1., .5])),
     lambda x, l, pl, ll, sw: _ctc_gluon(x, l, pl, ll, sw, 2.0)),
]
IDS = [c[0] for c in CASES]


def _nd(values, dtype="float64"):
    if values is None or isinstance(values, float):
        return values
    return nd.array(values, dtype=dtype)


@pytest.mark.parametrize("name,make,inputs,ref", CASES, ids=IDS)
def test_loss_values_float64(name, make, inputs, ref):
    out = make()(*[_nd(v) for v in inputs])
    expect = ref(*inputs)
    assert out.shape == expect.shape
    np.testing.assert_allclose(out.asnumpy(), expect, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,make,inputs,ref", CASES, ids=IDS)
def test_loss_values_float32(name, make, inputs, ref):
    out = make()(*[_nd(v, "float32") for v in inputs])
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.asnumpy(), ref(*inputs), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name,make,inputs,ref", CASES, ids=IDS)
def test_loss_gradient(name, make, inputs, ref):
    """d(sum(w * loss)) / d(first input) against central differences of the reference."""
    loss = make()
    xs = [_nd(v) for v in inputs]
    xs[0].attach_grad()
    with mx.autograd.record():
        out = loss(*xs)
    w = np.random.default_rng(5).normal(size=out.shape)
    out.backward(nd.array(w, dtype="float64"))
    x0, eps = inputs[0], 1e-6
    numeric = np.zeros_like(x0)
    for idx in np.ndindex(x0.shape):
        hi, lo = x0.copy(), x0.copy()
        hi[idx] += eps
        lo[idx] -= eps
        numeric[idx] = ((ref(hi, *inputs[1:]) - ref(lo, *inputs[1:])) * w).sum() / (2 * eps)
    np.testing.assert_allclose(xs[0].grad.asnumpy(), numeric, rtol=1e-5, atol=1e-6)


# --- hybrid_forward never looks at shapes or values ------------------------------------------
class _Opaque:
    """An NDArray in disguise that, like a symbol, has no shape, ndim, size or truth
    value: only arithmetic and comparisons."""

    def __init__(self, x):
        self.x = x

    def __getattr__(self, name):
        raise AssertionError(f"hybrid_forward read .{name} of an input")

    def __bool__(self):
        raise AssertionError("hybrid_forward branched on an input's value")


def _binary(op):
    def method(self, other, _op=op):
        return _Opaque(_op(self.x, other.x if isinstance(other, _Opaque) else other))
    return method


for _name, _op in [("add", lambda a, b: a + b), ("radd", lambda a, b: b + a),
                   ("sub", lambda a, b: a - b), ("rsub", lambda a, b: b - a),
                   ("mul", lambda a, b: a * b), ("rmul", lambda a, b: b * a),
                   ("truediv", lambda a, b: a / b), ("rtruediv", lambda a, b: b / a),
                   ("pow", lambda a, b: a ** b), ("gt", lambda a, b: a > b),
                   ("lt", lambda a, b: a < b), ("ge", lambda a, b: a >= b),
                   ("le", lambda a, b: a <= b), ("eq", lambda a, b: a == b),
                   ("ne", lambda a, b: a != b)]:
    setattr(_Opaque, f"__{_name}__", _binary(_op))
_Opaque.__neg__ = lambda self: _Opaque(-self.x)
_Opaque.__hash__ = None


def _unwrap(v):
    if isinstance(v, _Opaque):
        return v.x
    if isinstance(v, (list, tuple)):
        return type(v)(_unwrap(i) for i in v)
    return v


class _OpaqueF:
    """``F`` for opaque inputs: every ``F.<op>`` runs mx.nd's and hides the result."""

    def __getattr__(self, name):
        fn = getattr(nd, name)

        def call(*args, **kwargs):
            out = fn(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()})
            return _Opaque(out)
        return call


@pytest.mark.parametrize("name,make,inputs,ref", CASES, ids=IDS)
def test_hybrid_forward_needs_no_shapes(name, make, inputs, ref):
    loss = make()
    args = [v if v is None or isinstance(v, float) else _Opaque(_nd(v)) for v in inputs]
    out = loss.hybrid_forward(_OpaqueF(), *args)
    assert isinstance(out, _Opaque)
    np.testing.assert_allclose(out.x.asnumpy(), ref(*inputs), rtol=1e-10, atol=1e-12)


# --- MXNet's figures and API --------------------------------------------------------------
def test_ctc_loss_layouts_and_lengths_give_mxnets_values():
    expect = np.array([18.82820702, 16.50581741])  # MXNet 1.9.1 on all-ones scores
    ones_ntc, ones_tnc = nd.ones((2, 20, 4)), nd.ones((20, 2, 4))
    padded = nd.array([[1, 0, -1, -1], [2, 1, 1, -1]])
    results = [
        gloss.CTCLoss()(ones_ntc, padded),
        gloss.CTCLoss(layout="TNC")(ones_tnc, padded),
        gloss.CTCLoss(layout="TNC", label_layout="TN")(ones_tnc, padded.T),
        gloss.CTCLoss()(ones_ntc, nd.array([[2, 1, 2, 2], [3, 2, 2, 2]]), None,
                        nd.array([2, 3])),
        gloss.CTCLoss()(nd.ones((2, 25, 4)), nd.array([[2, 1, -1, -1], [3, 2, 2, -1]]),
                        nd.array([20, 20])),
        gloss.CTCLoss()(nd.ones((2, 25, 4)), nd.array([[2, 1, 3, 3], [3, 2, 2, 3]]),
                        nd.array([20, 20]), nd.array([2, 3])),
    ]
    for out in results:
        np.testing.assert_allclose(out.asnumpy(), expect, rtol=1e-5)


def test_softmax_ce_loss_mxnet_figures():
    out = nd.array([[0, 2], [1, 4]])
    label = nd.array([0, 1])
    loss = gloss.SoftmaxCrossEntropyLoss()
    np.testing.assert_allclose(loss(out, label).asnumpy(), [2.12692809, 0.04858733], rtol=1e-5)
    np.testing.assert_allclose(loss(out, label, nd.array([[0.5], [1.0]])).asnumpy(),
                               [1.06346405, 0.04858733], rtol=1e-5)


def test_module_lists_mxnets_losses():
    assert gloss.__all__ == [
        "Loss", "L2Loss", "L1Loss", "SigmoidBinaryCrossEntropyLoss", "SigmoidBCELoss",
        "SoftmaxCrossEntropyLoss", "SoftmaxCELoss", "KLDivLoss", "CTCLoss", "HuberLoss",
        "HingeLoss", "SquaredHingeLoss", "LogisticLoss", "TripletLoss", "PoissonNLLLoss",
        "CosineEmbeddingLoss", "SDMLLoss"]
    assert gloss.SigmoidBCELoss is gloss.SigmoidBinaryCrossEntropyLoss
    assert gloss.SoftmaxCELoss is gloss.SoftmaxCrossEntropyLoss
    assert repr(gloss.CTCLoss(weight=2.0)) == "CTCLoss(batch_axis=0, w=2.0)"
    assert repr(gloss.L2Loss()) == "L2Loss(batch_axis=0, w=1.0)"
    assert gloss.CTCLoss(label_layout="TN")._batch_axis == 1


def test_mean_exclude_keeps_a_1d_loss():
    v = nd.array([1., 2., 3.])
    out = nd.mean(v, axis=0, exclude=True)
    assert out.shape == (3,)
    np.testing.assert_array_equal(out.asnumpy(), [1., 2., 3.])


def test_loss_errors_name_the_loss():
    with pytest.raises(ValueError, match="label_format"):
        gloss.LogisticLoss(label_format="zero-one")
    with pytest.raises(ValueError, match="CTCLoss: layout"):
        gloss.CTCLoss(layout="NCT")
    with pytest.raises(ValueError, match="label_layout"):
        gloss.CTCLoss(label_layout="NN")
    with pytest.raises(TypeError, match="L1Loss: weight must be a number"):
        gloss.L1Loss(weight="heavy")
    with pytest.raises(MXCoreError, match="L2Loss: .*reshape"):
        gloss.L2Loss()(nd.ones((4, 5)), nd.ones((4, 6)))
    with pytest.raises(MXCoreError, match="SoftmaxCrossEntropyLoss"):
        gloss.SoftmaxCrossEntropyLoss()(nd.ones((4, 5)), nd.ones((4,)), nd.ones((3, 2)))


# --- the ctc_loss operator ------------------------------------------------------------------
def _ctc_call(x, label, dl=None, ll=None, blank="first", dtype="float64", grad_scale=None):
    d = nd.array(x, dtype=dtype)
    d.attach_grad()
    extra = [nd.array(v, dtype=dtype) if v is not None else None for v in (dl, ll)]
    with mx.autograd.record():
        out = nd.ctc_loss(d, nd.array(label, dtype=dtype), *extra,
                          use_data_lengths=dl is not None, use_label_lengths=ll is not None,
                          blank_label=blank)
    out.backward(None if grad_scale is None else nd.array(grad_scale, dtype=dtype))
    return out.asnumpy(), d.grad.asnumpy()


@pytest.mark.parametrize("blank", ["first", "last"])
def test_ctc_loss_matches_torch(blank):
    torch = pytest.importorskip("torch")
    r = np.random.default_rng(3)
    t, n, c, width = 30, 6, 7, 9
    x = r.normal(size=(t, n, c))
    ll = r.integers(0, width + 1, n)
    tl = r.integers(2 * width + 2, t + 1, n)
    label = r.integers(1, c, (n, width)).astype(float) - (blank == "last")
    scale = r.normal(size=n)
    loss, grad = _ctc_call(x, label, tl, ll, blank, grad_scale=scale)
    tx = torch.tensor(x, requires_grad=True)
    ref = torch.nn.functional.ctc_loss(
        torch.log_softmax(tx, 2), torch.tensor(label, dtype=torch.long), torch.tensor(tl),
        torch.tensor(ll), blank=0 if blank == "first" else c - 1, reduction="none")
    (ref * torch.tensor(scale)).sum().backward()
    np.testing.assert_allclose(loss, ref.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(grad, tx.grad.numpy(), atol=1e-10)


def test_ctc_loss_brute_force_and_padding_rules():
    x = np.random.default_rng(8).normal(size=(4, 3, 3))
    # 'first': 0 pads; 'last': -1 pads and the labels count from 0
    first = np.array([[1, 2, 0], [2, 0, 1], [1, 1, 0]])
    np.testing.assert_allclose(_ctc_call(x, first)[0], _ctc_ref(x, first), rtol=1e-10)
    np.testing.assert_allclose(_ctc_call(x, first - 1, blank="last")[0],
                               _ctc_ref(x, first - 1, "last"), rtol=1e-10)


def test_ctc_loss_unreachable_label_costs_zero():
    """MXNet 1.9.1: labels plus repeats above the sequence length give 0 and no gradient."""
    x = np.random.default_rng(1).normal(size=(4, 3, 4))
    label = np.array([[1, 1, 1], [1, 2, 0], [2, 2, 2]])
    loss, grad = _ctc_call(x, label)
    assert loss[0] == 0 and loss[2] == 0 and loss[1] > 0
    assert not grad[:, 0].any() and not grad[:, 2].any() and grad[:, 1].any()


def test_ctc_loss_gradient_is_zero_past_each_sequence():
    x = np.random.default_rng(2).normal(size=(5, 2, 3))
    _, grad = _ctc_call(x, np.array([[1, 2], [2, 0]]), dl=np.array([3, 5]))
    assert not grad[3:, 0].any() and grad[:3, 0].any() and grad[:, 1].all()
    # each step's gradient is softmax minus a distribution: it sums to 0 over classes
    np.testing.assert_allclose(grad.sum(axis=2), 0, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_ctc_loss_16bit_computes_in_float32(dtype):
    x = np.random.default_rng(4).normal(size=(6, 2, 4))
    label = np.array([[1, 2, 3], [3, 3, 0]])
    rounded = nd.array(x, dtype=dtype).astype("float32")
    expect = nd.ctc_loss(rounded, nd.array(label)).asnumpy()
    out = nd.ctc_loss(nd.array(x, dtype=dtype), nd.array(label))
    assert out.dtype == nd.array(x, dtype=dtype).dtype
    np.testing.assert_allclose(out.asnumpy().astype(np.float32), expect, rtol=1e-2)


def test_ctc_loss_forward_alone_keeps_no_workspace():
    x = nd.array(np.random.default_rng(6).normal(size=(4, 2, 3)))
    label = nd.array([[1, 2], [2, 0]])
    plain = nd.ctc_loss(x, label)
    x.attach_grad()
    with mx.autograd.record():
        recorded = nd.CTCLoss(x, label)
    np.testing.assert_array_equal(plain.asnumpy(), recorded.asnumpy())
    assert recorded._ag[0].outputs[1].shape == (4, 2, 3)


def test_ctc_loss_is_differentiable_once():
    x = nd.array(np.random.default_rng(7).normal(size=(4, 1, 3)), dtype="float64")
    x.attach_grad()
    with mx.autograd.record():
        loss = nd.ctc_loss(x, nd.array([[1, 2]]))
        (g,) = mx.autograd.grad(loss, [x], create_graph=True)
        total = (g * g).sum()
    with pytest.raises(MXCoreError, match="differentiable once"):
        total.backward()


@pytest.mark.parametrize("args,kwargs,message", [
    (((4, 2), (2, 2)), {}, "data must be 3-d"),
    (((4, 2, 3), (2,)), {}, "label must be 2-d"),
    (((4, 2, 3), (3, 2)), {}, "label batch size 3"),
    (((2, 2, 3), (2, 3)), {}, "label length 3 exceeds the sequence length 2"),
    (((4, 2, 3), (2, 2), (3,)), {"use_data_lengths": True}, r"data_lengths shape \(3,\)"),
    (((4, 2, 3), (2, 2)), {"blank_label": "middle"}, "blank_label"),
    (((4, 2, 3), (2, 2)), {"use_label_lengths": True}, "label_lengths"),
    (((4, 2, 3), (2, 2), (2,)), {}, "use_data_lengths=False, but lengths were given"),
])
def test_ctc_loss_shape_errors(args, kwargs, message):
    arrays = [nd.ones(s) for s in args]
    with pytest.raises(OperatorError, match=message) as info:
        nd.ctc_loss(*arrays, **kwargs)
    assert "ctc_loss" in str(info.value) and "cpu" in str(info.value)


@pytest.mark.parametrize("label,extra,message", [
    ([[1, 5]], {}, r"label values must be class indices in \[0, 2\]"),
    ([[1, 2]], {"data_lengths": [5], "use_data_lengths": True}, "data_lengths must be in"),
    ([[1, 2]], {"label_lengths": [3], "use_label_lengths": True}, "label_lengths must be in"),
])
def test_ctc_loss_value_errors(label, extra, message):
    kwargs = {k: nd.array(v) if isinstance(v, list) else v for k, v in extra.items()}
    with pytest.raises(MXCoreError, match=message):
        nd.ctc_loss(nd.ones((4, 1, 3)), nd.array(label), **kwargs).asnumpy()


def test_ctc_loss_by_name_and_signature():
    x, label = nd.ones((3, 1, 3)), nd.array([[1]])
    np.testing.assert_allclose(nd.invoke("CTCLoss", x, label)[0].asnumpy(),
                               nd.ctc_loss(x, label).asnumpy())
    out = nd.zeros((1,))
    assert nd.CTCLoss(data=x, label=label, out=out) is out
    # all-equal scores: every one of the 3 ** 3 paths has probability 1/27; 'a' is
    # spelled by the paths with one run of a and blanks around it: 6 of them
    np.testing.assert_allclose(out.asnumpy(), [-math.log(6 / 27)], rtol=1e-6)
