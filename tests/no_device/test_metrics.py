"""mx.metric: every metric against a numpy reference over several updates (MXNet 1.9
semantics), local/global statistics, composite metrics, creation by name, errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

import mxcore as mx
from mxcore import metric as M

BATCH_SIZES = (7, 12, 3, 20)


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def _batches(kind, seed=0, classes=5):
    """[(label, pred), ...] numpy batches of uneven sizes."""
    rng = np.random.default_rng(seed)
    out = []
    for n in BATCH_SIZES:
        if kind == "cls":
            out.append((rng.integers(0, classes, n).astype(np.float32),
                        _softmax(rng.normal(size=(n, classes)))))
        elif kind == "bin":
            out.append((rng.integers(0, 2, n).astype(np.float32),
                        _softmax(rng.normal(size=(n, 2)))))
        elif kind == "reg":
            out.append((rng.normal(size=n).astype(np.float32),
                        rng.normal(size=(n, 1)).astype(np.float32)))
        elif kind == "reg2":
            out.append((rng.normal(size=(n, 3)).astype(np.float32),
                        rng.normal(size=(n, 3)).astype(np.float32)))
    return out


def _nd(batch):
    label, pred = batch
    return [mx.nd.array(label)], [mx.nd.array(pred)]


# numpy references: each returns (sum_metric, num_inst) for a list of (label, pred) pairs --
def ref_accuracy(pairs):
    correct = sum(int((p.argmax(axis=1).astype(np.int32) == l.astype(np.int32)).sum())
                  for l, p in pairs)
    return correct, sum(len(l) for l, _ in pairs)


def ref_topk(k):
    def ref(pairs):
        correct = 0
        for l, p in pairs:
            top = np.argsort(-p, axis=1)[:, :k]
            correct += int(sum(int(l[i]) in top[i] for i in range(len(l))))
        return correct, sum(len(l) for l, _ in pairs)
    return ref


def ref_ce(pairs, eps=1e-12):
    nll = sum(float(-np.log(p[np.arange(len(l)), l.astype(int)].astype(np.float64) + eps).sum())
              for l, p in pairs)
    return nll, sum(len(l) for l, _ in pairs)


def _pair_means(fn):
    # MXNet 1.x regression metrics: one instance per (label, pred) pair, the pair's mean
    def ref(pairs):
        vals = []
        for l, p in pairs:
            l = l.reshape(len(l), -1).astype(np.float64)
            p = p.reshape(len(p), -1).astype(np.float64)
            vals.append(fn(l - p))
        return sum(vals), len(vals)
    return ref


ref_mse = _pair_means(lambda d: (d ** 2).mean())
ref_mae = _pair_means(lambda d: np.abs(d).mean())
ref_rmse = _pair_means(lambda d: math.sqrt((d ** 2).mean()))


def _counts(pairs):
    l = np.concatenate([l for l, _ in pairs]).astype(int)
    p = np.concatenate([p.argmax(axis=1) for _, p in pairs])
    tp = int(((p == 1) & (l == 1)).sum())
    fp = int(((p == 1) & (l != 1)).sum())
    fn = int(((p != 1) & (l == 1)).sum())
    tn = int(((p != 1) & (l != 1)).sum())
    return tp, fp, fn, tn


def _f1(tp, fp, fn, tn):
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return 2 * prec * rec / (prec + rec) if prec + rec else 0.0


def _mcc(tp, fp, fn, tn):
    den = 1.0
    for t in (tp + fp, tp + fn, tn + fp, tn + fn):
        den *= t if t else 1
    return (tp * tn - fp * fn) / math.sqrt(den)


CASES = {  # name -> (factory, data kind, reference over the pairs of ONE update)
    "accuracy": (lambda: M.Accuracy(), "cls", ref_accuracy),
    "top3": (lambda: M.TopKAccuracy(3), "cls", ref_topk(3)),
    "top7_of_5": (lambda: M.TopKAccuracy(7), "cls", ref_topk(7)),
    "ce": (lambda: M.CrossEntropy(), "cls", ref_ce),
    "nll": (lambda: M.NegativeLogLikelihood(), "cls", ref_ce),
    "mse": (lambda: M.MSE(), "reg", ref_mse),
    "mae": (lambda: M.MAE(), "reg", ref_mae),
    "rmse": (lambda: M.RMSE(), "reg", ref_rmse),
    "mse2d": (lambda: M.MSE(), "reg2", ref_mse),
    "rmse2d": (lambda: M.RMSE(), "reg2", ref_rmse),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_metric_against_reference_over_updates(case):
    factory, kind, ref = CASES[case]
    m = factory()
    assert math.isnan(m.get()[1]) and math.isnan(m.get_global()[1])
    batches = _batches(kind, seed=len(case))
    loc = [0.0, 0]
    glob = [0.0, 0]
    for i, b in enumerate(batches):
        pairs = [b, batches[0]] if i == 1 else [b]       # update 1 carries two pairs
        labels = [mx.nd.array(l) for l, _ in pairs]
        preds = [mx.nd.array(p) for _, p in pairs]
        m.update(labels, preds)
        s, n = ref(pairs)
        loc = [loc[0] + s, loc[1] + n]
        glob = [glob[0] + s, glob[1] + n]
        name, value = m.get()
        assert value == pytest.approx(loc[0] / loc[1], rel=1e-5)
        assert m.get_global()[1] == pytest.approx(glob[0] / glob[1], rel=1e-5)
        assert (m.num_inst, m.global_num_inst) == (loc[1], glob[1])
        if i == 2:
            m.reset_local()
            loc = [0.0, 0]
            assert math.isnan(m.get()[1])
            assert m.get_global()[1] == pytest.approx(glob[0] / glob[1], rel=1e-5)
    m.reset()
    assert math.isnan(m.get()[1]) and math.isnan(m.get_global()[1])
    assert (m.num_inst, m.global_num_inst, m.sum_metric, m.global_sum_metric) == (0, 0, 0, 0)


def test_regression_metrics_average_per_batch_means_like_mxnet():
    # MXNet 1.x: MSE/MAE/RMSE add each batch's mean and count 1 per batch, so uneven
    # batches are *not* weighted by size.
    mse = M.MSE()
    mse.update(mx.nd.array([0.0]), mx.nd.array([[2.0]]))                 # mean 4, 1 sample
    mse.update(mx.nd.array([0.0, 0, 0]), mx.nd.array([[0.0], [0], [0]]))  # mean 0, 3 samples
    assert mse.get() == ("mse", 2.0)
    assert mse.num_inst == 2
    rmse = M.RMSE()
    rmse.update([mx.nd.array([0.0, 0])], [mx.nd.array([3.0, 4.0])])
    assert rmse.get()[1] == pytest.approx(math.sqrt(12.5))
    # MXNet's doc example
    mae = M.MAE()
    mae.update([mx.nd.array(np.array([2.5, 0.0, 2, 8]).reshape(4, 1))],
               [mx.nd.array(np.array([3, -0.5, 2, 7]).reshape(4, 1))])
    assert mae.get() == ("mae", 0.5)


def test_mxnet_doc_examples():
    preds = [mx.nd.array([[0.3, 0.7], [0, 1.0], [0.4, 0.6]])]
    labels = [mx.nd.array([0, 1, 1])]
    for m, expected in ((M.Accuracy(), 2 / 3), (M.F1(), 0.8), (M.CrossEntropy(), 0.5715994835),
                        (M.NegativeLogLikelihood(), 0.5715994835)):
        m.update(labels, preds)
        assert m.get()[1] == pytest.approx(expected, rel=1e-6)
    perp = M.Perplexity(ignore_label=None)
    perp.update(labels, preds)
    assert perp.get() == ("perplexity", pytest.approx(1.7710976285155853, rel=1e-6))
    mse = M.MSE()
    mse.update([mx.nd.array(np.array([2.5, 0.0, 2, 8]).reshape(4, 1))],
               [mx.nd.array(np.array([3, -0.5, 2, 7]).reshape(4, 1))])
    assert mse.get() == ("mse", 0.375)


def test_accuracy_variants():
    # class-index predictions (same shape as labels) are compared directly, as int32
    acc = M.Accuracy()
    acc.update(mx.nd.array([0, 1, 2, 3]), mx.nd.array([0.0, 1.7, 1.0, 3.2]))
    assert acc.get() == ("accuracy", 0.75)
    # axis picks the class axis of the scores
    acc = M.Accuracy(axis=0)
    acc.update([mx.nd.array([0, 1, 1])], [mx.nd.array([[0.2, 0.8, 0.3], [0.9, 0.1, 0.5]])])
    assert acc.get()[1] == pytest.approx(1 / 3)
    # 3-d scores (batch, classes, time) against (batch, time) labels
    rng = np.random.default_rng(3)
    scores = rng.random((4, 6, 5)).astype(np.float32)
    labels = rng.integers(0, 6, (4, 5))
    acc = M.Accuracy()
    acc.update([mx.nd.array(labels)], [mx.nd.array(scores)])
    assert acc.get()[1] == pytest.approx((scores.argmax(axis=1) == labels).mean())
    # host numpy arrays are accepted as well
    acc = M.Accuracy()
    acc.update([labels[:, 0].astype(np.float32)], [scores[:, :, 0]])
    assert acc.get()[1] == pytest.approx((scores[:, :, 0].argmax(1) == labels[:, 0]).mean())


def test_accuracy_2d_labels_numpy_or_ndarray():
    """A (2, 3) label against (6, 2) scores: labels are read row-major (MXNet's
    test_acc_2d_label), whether the inputs are NDArrays or numpy arrays."""
    scores = np.array([[0.3, 0.7], [0, 1.], [0.4, 0.6], [0.8, 0.2], [0.3, 0.5], [0.6, 0.4]],
                      np.float32)
    labels = np.array([[0, 1, 1], [1, 0, 1]], np.float32)
    hits = [int(scores[i].argmax() == labels.flat[i]) for i in range(6)]   # 0 1 1 0 0 0
    for wrap in (mx.nd.array, np.asarray):
        acc = M.create("acc")
        acc.update([wrap(labels)], [wrap(scores)])
        assert acc.get()[1] == sum(hits) / 6 == pytest.approx(1 / 3)
    # numpy and NDArray batches give the same value for every metric
    for name, kind in (("acc", "cls"), ("top_k_accuracy", "cls"), ("ce", "cls"),
                       ("nll_loss", "cls"), ("f1", "bin"), ("mcc", "bin"), ("mae", "reg2"),
                       ("mse", "reg2"), ("rmse", "reg2"), ("pearsonr", "reg2")):
        kwargs = {"top_k": 3} if name == "top_k_accuracy" else {}
        a, b = M.create(name, **kwargs), M.create(name, **kwargs)
        for label, pred in _batches(kind, seed=5):
            a.update([label], [pred])
            b.update(*_nd((label, pred)))
        assert a.get()[1] == pytest.approx(b.get()[1], rel=1e-6), name


def test_top_k_name_and_all_classes():
    m = M.TopKAccuracy(top_k=3)
    assert m.name == "top_k_accuracy_3"
    m = M.create("top_k_accuracy", top_k=10)       # more than the 4 classes: all are "top"
    m.update([mx.nd.array([0, 3, 2])], [mx.nd.array(np.random.rand(3, 4))])
    assert m.get()[1] == 1.0


@pytest.mark.parametrize("average", ["macro", "micro"])
def test_f1_and_mcc(average):
    batches = _batches("bin", seed=5)
    f1, mcc = M.F1(average=average), M.MCC(average=average)
    f1_vals, mcc_vals = [], []
    for b in batches:
        f1.update(*_nd(b))
        mcc.update(*_nd(b))
        f1_vals.append(_f1(*_counts([b])))
        mcc_vals.append(_mcc(*_counts([b])))
    if average == "macro":
        assert f1.get()[1] == pytest.approx(np.mean(f1_vals))
        assert mcc.get()[1] == pytest.approx(np.mean(mcc_vals))
        assert f1.num_inst == len(batches)
    else:
        assert f1.get()[1] == pytest.approx(_f1(*_counts(batches)))
        assert mcc.get()[1] == pytest.approx(_mcc(*_counts(batches)))
        assert f1.num_inst == sum(BATCH_SIZES)
    # global survives reset_local; local restarts
    f1.reset_local()
    assert math.isnan(f1.get()[1])
    f1.update(*_nd(batches[0]))
    assert f1.get()[1] == pytest.approx(_f1(*_counts([batches[0]])))
    if average == "micro":
        assert f1.get_global()[1] == pytest.approx(_f1(*_counts(batches + [batches[0]])))
    else:
        assert f1.get_global()[1] == pytest.approx(np.mean(f1_vals + [f1_vals[0]]))
    f1.reset()
    assert math.isnan(f1.get_global()[1])


def test_f1_edge_cases():
    f1 = M.F1()
    f1.update([mx.nd.array([0, 0])], [mx.nd.array([[0.9, 0.1], [0.8, 0.2]])])  # no positives
    assert f1.get()[1] == 0.0
    with pytest.raises(ValueError, match="binary"):
        f1.update([mx.nd.array([0, 1, 2])], [mx.nd.array(np.ones((3, 2)))])
    with pytest.raises(ValueError, match="average"):
        M.F1(average="weighted")


def test_perplexity_ignore_label():
    batches = _batches("cls", seed=8)
    m = M.Perplexity(ignore_label=2)
    total, count = 0.0, 0
    for l, p in batches:
        m.update([mx.nd.array(l)], [mx.nd.array(p)])
        keep = l != 2
        total += -np.log(p[np.arange(len(l)), l.astype(int)][keep].astype(np.float64)).sum()
        count += int(keep.sum())
    assert m.get()[1] == pytest.approx(math.exp(total / count), rel=1e-6)


def test_pcc_multiclass():
    batches = _batches("cls", seed=9, classes=4)
    m = M.PCC()
    for b in batches:
        m.update(*_nd(b))
    t = np.concatenate([l for l, _ in batches]).astype(int)
    p = np.concatenate([p.argmax(axis=1) for _, p in batches])
    # multiclass MCC (Gorodkin): (c*s - sum p_k t_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2))
    k = 4
    pk = np.bincount(p, minlength=k)
    tk = np.bincount(t, minlength=k)
    c, s = int((p == t).sum()), len(t)
    ref = (c * s - pk @ tk) / math.sqrt((s * s - pk @ pk) * (s * s - tk @ tk))
    assert m.get()[1] == pytest.approx(ref)
    # binary data: PCC equals MCC over all updates
    bb = _batches("bin", seed=10)
    pcc, mcc = M.PCC(), M.MCC(average="micro")
    for b in bb:
        pcc.update(*_nd(b))
        mcc.update(*_nd(b))
    assert pcc.get()[1] == pytest.approx(mcc.get()[1])


@pytest.mark.parametrize("average", ["macro", "micro"])
def test_pearson_correlation(average):
    batches = _batches("reg2", seed=11)
    m = M.create("pearsonr", average=average)
    for b in batches:
        m.update(*_nd(b))
    if average == "macro":
        ref = np.mean([np.corrcoef(p.ravel(), l.ravel())[0, 1] for l, p in batches])
    else:
        ref = np.corrcoef(np.concatenate([p.ravel() for _, p in batches]),
                          np.concatenate([l.ravel() for l, _ in batches]))[0, 1]
    assert m.get()[1] == pytest.approx(ref, rel=1e-6)


def test_loss_and_custom_metrics():
    loss = M.Loss()
    loss.update(None, [mx.nd.array([1.0, 2.0, 3.0]), mx.nd.array([[4.0]])])
    loss.update(None, mx.nd.array([5.0]))
    assert loss.get() == ("loss", 3.0)

    def abs_sum(label, pred):
        assert isinstance(label, np.ndarray) and isinstance(pred, np.ndarray)
        return float(np.abs(label - pred).sum())
    cm = M.create(abs_sum)
    assert isinstance(cm, M.CustomMetric) and cm.name == "abs_sum"
    cm.update([mx.nd.array([1, 2])], [mx.nd.array([1, 4])])
    cm.update([mx.nd.array([0])], [mx.nd.array([1])])
    assert cm.get() == ("abs_sum", 1.5)
    tup = M.CustomMetric(lambda l, p: (float((l == p).sum()), l.size))
    assert tup.name == "custom(<lambda>)"
    tup.update([mx.nd.array([1, 2, 3])], [mx.nd.array([1, 0, 3])])
    assert tup.get()[1] == pytest.approx(2 / 3)
    npm = M.np(lambda l, p: float(np.mean(l)), name="lmean")
    npm.update([mx.nd.array([2.0, 4.0])], [mx.nd.array([0.0, 0.0])])
    assert npm.get() == ("lmean", 3.0)
    with pytest.raises(NotImplementedError):
        cm.get_config()


def test_composite():
    comp = M.create(["acc", "ce"])
    assert isinstance(comp, M.CompositeEvalMetric)
    comp.add(M.TopKAccuracy(2))
    assert isinstance(comp.get_metric(2), M.TopKAccuracy)
    with pytest.raises(ValueError, match="out of range"):
        comp.get_metric(5)
    batches = _batches("cls", seed=12)
    for b in batches:
        comp.update(*_nd(b))
    names, values = comp.get()
    assert names == ["accuracy", "cross-entropy", "top_k_accuracy_2"]
    for ref, v in zip((ref_accuracy, ref_ce, ref_topk(2)), values):
        s, n = ref(batches)
        assert v == pytest.approx(s / n, rel=1e-6)
    assert comp.get_name_value() == list(zip(names, values))
    assert str(comp) == f"EvalMetric: {dict(zip(names, values))}"
    comp.reset_local()
    assert all(math.isnan(v) for v in comp.get()[1])
    assert comp.get_global()[1] == pytest.approx(values)
    comp.reset()
    assert all(math.isnan(v) for v in comp.get_global()[1])
    assert M.CompositeEvalMetric().get() == ([], [])


@pytest.mark.parametrize("name,cls", [
    ("acc", M.Accuracy), ("accuracy", M.Accuracy), ("Accuracy", M.Accuracy),
    ("ce", M.CrossEntropy), ("crossentropy", M.CrossEntropy), ("mse", M.MSE),
    ("mae", M.MAE), ("rmse", M.RMSE), ("f1", M.F1), ("mcc", M.MCC),
    ("nll_loss", M.NegativeLogLikelihood), ("pearsonr", M.PearsonCorrelation),
    ("pcc", M.PCC), ("loss", M.Loss), ("composite", M.CompositeEvalMetric),
])
def test_create_by_name(name, cls):
    assert type(M.create(name)) is cls


def test_create_variants_and_config_round_trip():
    acc = M.create("acc", axis=0, name="myacc")
    assert (acc.axis, acc.name) == (0, "myacc")
    assert M.create(acc) is acc
    assert type(M.create(M.MSE)) is M.MSE
    assert type(M.create("top_k_acc", 4)) is M.TopKAccuracy
    assert type(M.create("perplexity", ignore_label=-1)) is M.Perplexity
    for m in (M.Accuracy(axis=2), M.TopKAccuracy(4), M.F1(average="micro"), M.CrossEntropy(1e-5),
              M.create(["acc", "mse"])):
        again = M.create(**m.get_config())
        assert type(again) is type(m) and again.get_config() == m.get_config()
    with pytest.raises(ValueError, match="unknown metric 'nosuch'"):
        M.create("nosuch")

    @M.register
    @M.alias("my_test_metric")
    class MyTestMetric(M.EvalMetric):
        def __init__(self, name="mine", **kw):
            super().__init__(name, **kw)

        def update(self, labels, preds):
            self.sum_metric += 1
            self.num_inst += 1
    assert type(M.create("my_test_metric")) is MyTestMetric
    assert mx.metric.Accuracy is M.Accuracy


def test_update_dict_and_names():
    acc = M.Accuracy(output_names=["out1"], label_names=["lab1"])
    labels = {"lab0": mx.nd.array([0, 0]), "lab1": mx.nd.array([1, 1])}
    preds = {"out0": mx.nd.array([[1.0, 0.0], [1.0, 0.0]]),
             "out1": mx.nd.array([[0.0, 1.0], [1.0, 0.0]])}
    acc.update_dict(labels, preds)
    assert acc.get()[1] == 0.5
    assert acc.get_name_value() == [("accuracy", 0.5)]
    assert acc.get_global_name_value() == [("accuracy", 0.5)]
    assert str(acc) == "EvalMetric: {'accuracy': 0.5}"


def test_shape_errors():
    p2 = mx.nd.array([[0.2, 0.8], [0.9, 0.1]])
    with pytest.raises(ValueError, match="Shape of labels 1 does not match shape of predictions 2"):
        M.Accuracy().update([mx.nd.array([0, 1])], [p2, p2])
    with pytest.raises(ValueError, match="Shape of labels 3 does not match"):
        M.Accuracy().update([mx.nd.array([0, 1, 1])], [p2])
    with pytest.raises(ValueError):
        M.CrossEntropy().update([mx.nd.array([0, 1, 1])], [p2])
    with pytest.raises(ValueError):
        M.MSE().update([mx.nd.array([0, 1, 1])], [p2])
    with pytest.raises(ValueError, match="at most 2 dims"):
        M.TopKAccuracy(2).update([mx.nd.array([0, 1])], [mx.nd.zeros((2, 3, 4))])
    with pytest.raises(ValueError, match="top_k"):
        M.TopKAccuracy(1)
    with pytest.raises(ValueError):
        M.PearsonCorrelation().update([mx.nd.zeros((2, 3))], [mx.nd.zeros((2, 4))])
    with pytest.raises(ValueError):
        M.Perplexity(None).update([mx.nd.array([0, 1, 1])], [p2])


def test_check_label_shapes():
    a, b = mx.nd.zeros((3,)), mx.nd.zeros((3, 2))
    assert M.check_label_shapes(a, b, wrap=True) == ([a], [b])
    assert M.check_label_shapes([a], [b]) == ([a], [b])
    with pytest.raises(ValueError):
        M.check_label_shapes(a, b, shape=True)
    with pytest.raises(ValueError):
        M.check_label_shapes([a], [b, b])
