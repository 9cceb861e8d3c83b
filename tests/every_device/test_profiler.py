"""mx.profiler: kernel calls recorded as Chrome trace events and aggregate tables."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import mxcore as mx
from mxcore import autograd, engine, profiler

nd = mx.nd


@pytest.fixture(autouse=True)
def clean_profiler(tmp_path):
    profiler.set_config(filename=str(tmp_path / "trace.json"), profile_all=False,
                        profile_imperative=True, aggregate_stats=False, synchronize=False)
    yield
    profiler.set_state("stop")
    profiler.dumps(reset=True)


def _train_steps(device, steps):
    net = mx.gluon.nn.HybridSequential()
    net.add(mx.gluon.nn.Dense(6, activation="relu", in_units=5), mx.gluon.nn.Dense(3, in_units=6))
    net.initialize(ctx=device)
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    x = nd.array(np.random.default_rng(0).random((4, 5)), ctx=device, dtype="float32")
    y = nd.array([0, 1, 2, 0], ctx=device)
    for _ in range(steps):
        with profiler.scope("step"):
            with autograd.record():
                loss = loss_fn(net(x), y)
            loss.backward()
            trainer.step(4)
    return net


def test_training_steps_become_a_chrome_trace(device, tmp_path):
    before = engine.current()
    profiler.set_state("run")
    assert profiler.get_state() == "run" and engine.current() is not before
    _train_steps(device, steps=3)
    profiler.set_state("stop")
    assert engine.current() is before  # stopped: the engine is the plain one again
    path = profiler.dump()
    assert path == str(tmp_path / "trace.json")
    trace = json.loads((tmp_path / "trace.json").read_text())
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    ops = [e for e in spans if e["cat"] == "operator"]
    names = [e["name"] for e in ops]
    # forward, backward and optimizer kernels, once per step each
    for name, per_step in (("fully_connected", 2), ("softmax_ce_loss", 1),
                           ("softmax_ce_loss_grad", 1), ("fully_connected_backward", 2)):
        assert names.count(name) == 3 * per_step, (name, names)
    assert any(n.startswith("multi_sgd") or n == "sgd_update" for n in names)
    fc = next(e for e in ops if e["name"] == "fully_connected")
    assert fc["args"]["device"] == device.kind
    assert fc["args"]["shapes"][:2] == [[4, 5], [6, 5]]
    assert fc["args"]["dtypes"][0] == "float32"
    assert fc["args"]["kernel"].split(":")[0].startswith("mxcore-")
    steps = [e for e in spans if e["cat"] == "scope"]
    assert [e["name"] for e in steps] == ["step"] * 3
    for e in spans:
        assert e["dur"] >= 0 and e["ts"] >= 0
    # every kernel call of a step lies inside that step's span
    s0 = steps[0]
    inside = [e for e in ops if s0["ts"] <= e["ts"] <= s0["ts"] + s0["dur"]]
    assert len(inside) >= 5
    # finished=True (the default) cleared the events
    assert "fully_connected" not in profiler.dumps()


def test_dumps_aggregates_counts_and_times(device):
    a = nd.ones((3, 3), ctx=device)
    profiler.set_state("run")
    for _ in range(5):
        a + a
    nd.dot(a, a)
    profiler.set_state("stop")
    table = profiler.dumps(sort_by="count")
    rows = [ln.split() for ln in table.splitlines()]
    add = next(r for r in rows if r and r[0] == "add")
    assert int(add[1]) == 5 and float(add[2]) > 0
    assert table.index("\nadd ") < table.index("\ndot ")  # sorted by count, descending
    stats = json.loads(profiler.dumps(format="json", reset=True))["operator"]
    assert stats["add"]["count"] == 5 and stats["dot"]["count"] == 1
    assert stats["add"]["min_ms"] <= stats["add"]["avg_ms"] <= stats["add"]["max_ms"]
    assert json.loads(profiler.dumps(format="json")) == {}  # reset cleared them


def test_pause_resume_and_stopped_profiler_record_nothing(device):
    a = nd.ones((2,), ctx=device)
    a + a  # stopped: not recorded
    with profiler.scope("ignored"):
        a * a
    profiler.set_state("run")
    profiler.pause()
    a + a
    profiler.resume()
    a - a
    profiler.set_state("stop")
    stats = json.loads(profiler.dumps(format="json"))
    assert set(stats) == {"operator"} and set(stats["operator"]) == {"subtract"}


def test_synchronize_waits_for_the_device_after_each_kernel(device, monkeypatch):
    from mxcore.device import device_type
    dtype = device_type(device)
    waits = []
    monkeypatch.setattr(dtype, "synchronize", lambda index: waits.append(index))
    a = nd.ones((2,), ctx=device)
    profiler.set_config(synchronize=True)
    profiler.set_state("run")
    a + a
    a * a
    profiler.set_state("stop")
    # one wait per kernel for the array's device; other devices of its kind only
    # where this process used them
    from mxcore.device import _checked
    used = {d.index for d in _checked if d.kind == device.kind}
    assert waits.count(device.index) == 2 and set(waits) <= used
    assert len(waits) == 2 * len(used)


def test_dump_is_atomic(device, tmp_path, monkeypatch):
    target = tmp_path / "trace.json"
    target.write_text("previous")
    profiler.set_state("run")
    nd.ones((2,), ctx=device) + 1
    profiler.set_state("stop")

    def broken(*a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(json, "dump", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        profiler.dump()
    assert target.read_text() == "previous"
    assert os.listdir(tmp_path) == ["trace.json"]  # no temporary file left behind


def test_bad_configuration_is_named():
    with pytest.raises(ValueError, match="unknown option.*'filenme'"):
        profiler.set_config(filenme="x.json")
    with pytest.warns(UserWarning, match="profile_memory.*no effect"):
        profiler.set_config(profile_memory=True)
    with pytest.raises(ValueError, match="'run' or 'stop'.*'go'"):
        profiler.set_state("go")
    with pytest.raises(ValueError, match="format.*'csv'"):
        profiler.dumps(format="csv")
    with pytest.raises(ValueError, match="sort_by.*'speed'"):
        profiler.dumps(sort_by="speed")
