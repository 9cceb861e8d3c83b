"""``mx.monitor.Monitor``: statistics of executor, Module and HybridBlock arrays, with
MXNet 1.x's names, ordering, step counting and string format."""
from __future__ import annotations

import logging
import re

import numpy as np
import pytest

import mxcore as mx
from mxcore.base import MXCoreError
from mxcore.gluon import nn


def _rms(x) -> float:
    """The default statistic, ``norm(x) / sqrt(size)``, computed with numpy."""
    x = np.asarray(x, dtype=np.float64)
    return float(np.sqrt(np.sum(x * x) / x.size))


def _value(stat: str) -> float:
    assert stat.endswith("\t"), repr(stat)
    return float(stat[:-1])


def _fc_relu():
    data = mx.sym.var("data")
    fc = mx.sym.FullyConnected(data, num_hidden=3, name="fc1")
    return mx.sym.Activation(fc, act_type="relu", name="relu1")


@pytest.fixture
def exe():
    rng = np.random.RandomState(0)
    args = {"data": mx.nd.array(rng.randn(2, 4)),
            "fc1_weight": mx.nd.array(rng.randn(3, 4)),
            "fc1_bias": mx.nd.array(rng.randn(3))}
    return _fc_relu().bind(mx.cpu(), args)


def _numpy_arrays(exe):
    x = exe.arg_dict["data"].asnumpy()
    w = exe.arg_dict["fc1_weight"].asnumpy()
    b = exe.arg_dict["fc1_bias"].asnumpy()
    fc = x @ w.T + b
    return {"data": x, "fc1_weight": w, "fc1_bias": b, "fc1_output": fc,
            "relu1_output": np.maximum(fc, 0)}


def _run(mon, exe):
    mon.tic()
    exe.forward(is_train=False)
    return mon.toc()


def test_module_names():
    assert mx.mon is mx.monitor
    assert mx.monitor.Monitor is mx.mon.Monitor


def test_default_stat_names_order_and_values(exe):
    mon = mx.monitor.Monitor(1)
    mon.install(exe)
    res = _run(mon, exe)
    # op outputs as they ran, then the arguments in list_arguments order
    assert [name for _, name, _ in res] == \
        ["fc1_output", "relu1_output", "data", "fc1_weight", "fc1_bias"]
    assert all(step == 1 for step, _, _ in res)
    want = _numpy_arrays(exe)
    for _, name, stat in res:
        assert _value(stat) == pytest.approx(_rms(want[name]), rel=1e-5), name
    assert not mon.activated and mon.queue == []
    assert mon.toc() == []  # nothing collected after the toc


def test_interval_counts_tic_calls(exe):
    mon = mx.monitor.Monitor(3)
    mon.install(exe)
    collected = {}
    for batch in range(1, 8):
        res = _run(mon, exe)
        if res:
            collected[batch] = {step for step, _, _ in res}
    # the first tic collects, then every third: the steps are the tic counts
    assert collected == {1: {1}, 4: {4}, 7: {7}}
    assert mon.step == 7


def test_no_tic_and_repeated_tic(exe):
    mon = mx.monitor.Monitor(1)
    mon.install(exe)
    exe.forward(is_train=False)
    assert mon.toc() == [] and mon.step == 0
    mon.tic()
    exe.forward(is_train=False)
    mon.tic()  # a new collection: what the first forward gave is dropped
    res = mon.toc()
    assert [(s, n) for s, n, _ in res] == [(2, "data"), (2, "fc1_weight"), (2, "fc1_bias")]


def test_pattern_is_matched_from_the_start(exe):
    def names(pattern):
        mon = mx.monitor.Monitor(1, pattern=pattern)
        mon.install(exe)
        return [n for _, n, _ in _run(mon, exe)]

    assert names("fc1_.*") == ["fc1_output", "fc1_weight", "fc1_bias"]
    assert names(".*weight|.*output") == ["fc1_output", "relu1_output", "fc1_weight"]
    assert names("weight") == []  # re.match: anchored at the start of the name
    assert names("relu") == ["relu1_output"]


def test_sort_by_name_is_stable(exe):
    rng = np.random.RandomState(1)
    other = _fc_relu().bind(mx.cpu(), {"data": mx.nd.array(rng.randn(3, 4)),
                                       "fc1_weight": mx.nd.array(rng.randn(3, 4)),
                                       "fc1_bias": mx.nd.array(rng.randn(3))})
    mon = mx.monitor.Monitor(1, sort=True)
    mon.install(exe)
    mon.install(other)
    mon.tic()
    exe.forward(is_train=False)
    other.forward(is_train=False)
    res = mon.toc()
    names = [n for _, n, _ in res]
    each = ["fc1_output", "relu1_output", "data", "fc1_weight", "fc1_bias"]
    assert names == sorted(each * 2)
    # equal names keep the order they were collected in: the first executor's first
    first, second = _numpy_arrays(exe), _numpy_arrays(other)
    for i in range(0, len(res), 2):
        name = res[i][1]
        assert _value(res[i][2]) == pytest.approx(_rms(first[name]), rel=1e-5)
        assert _value(res[i + 1][2]) == pytest.approx(_rms(second[name]), rel=1e-5)


def test_monitor_all_reports_op_inputs(exe):
    plain = mx.monitor.Monitor(1)
    plain.install(exe)
    outputs_only = _run(plain, exe)
    exe.set_monitor_callback(None)

    mon = mx.monitor.Monitor(1, monitor_all=True)
    mon.install(exe)
    res = _run(mon, exe)
    names = [n for _, n, _ in res]
    assert len(res) > len(outputs_only)
    assert set(n for _, n, _ in outputs_only) <= set(names)
    # the data input of fc1 comes before fc1's output
    assert "fc1_data" in names
    assert names.index("fc1_data") < names.index("fc1_output")
    want = _numpy_arrays(exe)
    stats = dict((n, _value(s)) for _, n, s in res if n == "fc1_data")
    assert stats["fc1_data"] == pytest.approx(_rms(want["data"]), rel=1e-5)


def test_stat_func_list_and_format(exe):
    def stat(x):
        return [mx.nd.abs(x).max(), mx.nd.abs(x).max(axis=0, keepdims=True)]

    mon = mx.monitor.Monitor(1, stat_func=stat, pattern="fc1_weight")
    mon.install(exe)
    res = _run(mon, exe)
    assert len(res) == 1
    w = np.abs(exe.arg_dict["fc1_weight"].asnumpy())
    first, second, rest = res[0][2].split("\t")
    assert rest == ""
    assert float(first) == pytest.approx(float(w.max()))
    # a statistic of more than one element is written as numpy prints it
    assert second == str(mx.nd.abs(exe.arg_dict["fc1_weight"]).max(axis=0, keepdims=True)
                         .asnumpy())
    assert second.startswith("[[")


def test_stat_func_must_return_ndarrays(exe):
    mon = mx.monitor.Monitor(1, stat_func=lambda x: 3.0)
    mon.install(exe)
    mon.tic()
    exe.forward(is_train=False)
    with pytest.raises(TypeError, match="stat_func must return an NDArray.*float"):
        mon.toc()


def test_toc_print_logs_each_stat(exe, caplog):
    mon = mx.monitor.Monitor(1, pattern="fc1_.*")
    mon.install(exe)
    mon.tic()
    exe.forward(is_train=False)
    with caplog.at_level(logging.INFO):
        mon.toc_print()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Batch:")]
    assert len(lines) == 3
    want = _numpy_arrays(exe)
    for line, name in zip(lines, ["fc1_output", "fc1_weight", "fc1_bias"]):
        m = re.fullmatch(r"Batch: {7}1 (\S+) +(\S+)\t", line)
        assert m is not None, repr(line)
        assert m.group(1) == name
        assert line[15:46] == f"{name:30s} "  # the name padded to 30 characters
        assert float(m.group(2)) == pytest.approx(_rms(want[name]), rel=1e-5)


def test_bad_arguments():
    mon = mx.monitor.Monitor(1)
    with pytest.raises(TypeError, match="builtins.object"):
        mon.install(object())
    with pytest.raises(TypeError, match="_PlainBlock"):  # a Block that is not hybrid
        mon.install(_PlainBlock())
    assert mon.exes == []
    for interval in (0, -2, 1.5):
        with pytest.raises(ValueError, match="interval"):
            mx.monitor.Monitor(interval)


class _PlainBlock(mx.gluon.Block):
    """A Gluon block without a graph: no op hook to install on."""


# Module -----------------------------------------------------------------------------------
def _softmax_module():
    data = mx.sym.var("data")
    fc = mx.sym.FullyConnected(data, num_hidden=3, name="fc1")
    return mx.mod.Module(mx.sym.SoftmaxOutput(fc, name="softmax"), context=mx.cpu())


def _batch(n, seed=0):
    rng = np.random.RandomState(seed)
    return mx.io.DataBatch(data=[mx.nd.array(rng.randn(n, 4))],
                           label=[mx.nd.array(np.arange(n) % 3)])


def test_module_install_monitor():
    mod = _softmax_module()
    mon = mx.monitor.Monitor(1, pattern="fc1_.*|softmax_.*")
    with pytest.raises(MXCoreError, match="bind"):
        mod.install_monitor(mon)
    mod.bind(data_shapes=[("data", (4, 4))], label_shapes=[("softmax_label", (4,))])
    mod.init_params(mx.init.Normal(1.0))
    mod.install_monitor(mon)
    assert mon.exes == [mod._exec]
    batch = _batch(4)
    mon.tic()
    mod.forward(batch, is_train=False)
    res = mon.toc()
    names = [n for _, n, _ in res]
    assert names == ["fc1_output", "softmax_output", "fc1_weight", "fc1_bias",
                     "softmax_label"]
    args, _ = mod.get_params()
    x = batch.data[0].asnumpy()
    fc = x @ args["fc1_weight"].asnumpy().T + args["fc1_bias"].asnumpy()
    want = {"fc1_output": fc, "softmax_output": mod.get_outputs()[0].asnumpy(),
            "fc1_weight": args["fc1_weight"].asnumpy(),
            "fc1_bias": args["fc1_bias"].asnumpy(),
            "softmax_label": batch.label[0].asnumpy()}
    for _, name, stat in res:
        assert _value(stat) == pytest.approx(_rms(want[name]), rel=1e-5), name


def test_module_through_monitor_install_and_reshape():
    mod = _softmax_module()
    mod.bind(data_shapes=[("data", (4, 4))], label_shapes=[("softmax_label", (4,))])
    mod.init_params(mx.init.Normal(1.0))
    mon = mx.monitor.Monitor(1, pattern="softmax_output")
    mon.install(mod)  # a module installs the monitor on its executor
    assert mon.exes == [mod._exec]
    # a batch of another size rebinds the executor: the callback goes with it
    small = _batch(2, seed=1)
    mon.tic()
    mod.forward(small, is_train=False)
    res = mon.toc()
    assert [n for _, n, _ in res] == ["softmax_output"]
    out = mod.get_outputs()[0].asnumpy()
    assert out.shape == (2, 3)
    assert _value(res[0][2]) == pytest.approx(_rms(out), rel=1e-5)


def test_module_fit_with_monitor(caplog):
    rng = np.random.RandomState(0)
    it = mx.io.NDArrayIter(rng.randn(12, 4).astype(np.float32),
                           (np.arange(12) % 3).astype(np.float32), batch_size=4,
                           label_name="softmax_label")
    mod = _softmax_module()
    mon = mx.monitor.Monitor(2, pattern="fc1_weight|softmax_output", sort=True)
    with caplog.at_level(logging.INFO):
        mod.fit(it, num_epoch=1, monitor=mon, optimizer_params=(("learning_rate", 0.1),))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Batch:")]
    # three batches, interval 2: the first and the third are reported, sorted by name
    parsed = [line.split()[1:3] for line in lines]
    assert parsed == [["1", "fc1_weight"], ["1", "softmax_output"],
                      ["3", "fc1_weight"], ["3", "softmax_output"]]
    assert mon.step == 3 and mon.exes == [mod._exec]
    # the third batch's weight statistic is that of the weight after the batch's update
    w = mod.get_params()[0]["fc1_weight"].asnumpy()
    assert float(lines[2].split()[3]) == pytest.approx(_rms(w), rel=1e-5)


# HybridBlock ------------------------------------------------------------------------------
def _net():
    net = nn.HybridSequential(prefix="net_")
    with net.name_scope():
        net.add(nn.Dense(3, in_units=4, activation="relu"), nn.Dense(2, in_units=3))
    net.initialize(mx.init.Normal(1.0))
    return net


def test_hybrid_block_outputs_and_parameters():
    net = _net()
    net.hybridize()
    mon = mx.monitor.Monitor(1)
    mon.install(net)
    assert mon.exes == [net]
    x = mx.nd.array(np.random.RandomState(2).randn(5, 4))
    mon.tic()
    y = net(x)
    res = mon.toc()
    names = [n for _, n, _ in res]
    params = net.collect_params()
    # the op outputs as they ran, then the block's parameters
    assert names[-4:] == list(params.keys())
    ops = names[:-4]
    assert ops and all(n.startswith("net_dense") and n.endswith("_output") for n in ops)
    stats = {n: _value(s) for _, n, s in res}
    assert stats[ops[-1]] == pytest.approx(_rms(y.asnumpy()), rel=1e-5)
    for name, p in params.items():
        assert stats[name] == pytest.approx(_rms(p.data().asnumpy()), rel=1e-5)
    w0, b0 = params["net_dense0_weight"].data().asnumpy(), params["net_dense0_bias"].data()
    fc0 = x.asnumpy() @ w0.T + b0.asnumpy()
    assert stats["net_dense0_fwd_output"] == pytest.approx(_rms(fc0), rel=1e-5)


def test_hybrid_block_monitor_all_and_pattern():
    net = _net()
    net.hybridize()
    mon = mx.monitor.Monitor(1, pattern="net_dense0_fwd_.*", monitor_all=True)
    mon.install(net)
    x = mx.nd.array(np.random.RandomState(3).randn(5, 4))
    mon.tic()
    net(x)
    res = mon.toc()
    stats = {n: _value(s) for _, n, s in res}
    assert set(stats) == {"net_dense0_fwd_data", "net_dense0_fwd_weight",
                          "net_dense0_fwd_bias", "net_dense0_fwd_output"}
    assert stats["net_dense0_fwd_data"] == pytest.approx(_rms(x.asnumpy()), rel=1e-5)
    w = net.collect_params()["net_dense0_weight"].data().asnumpy()
    assert stats["net_dense0_fwd_weight"] == pytest.approx(_rms(w), rel=1e-5)


def test_hybrid_block_not_collecting_between_intervals():
    net = _net()
    net.hybridize()
    mon = mx.monitor.Monitor(2, pattern=".*_output")
    mon.install(net)
    x = mx.nd.ones((1, 4))
    got = []
    for _ in range(4):
        mon.tic()
        net(x)
        got.append(sorted({s for s, _, _ in mon.toc()}))
    assert got == [[1], [], [3], []]
