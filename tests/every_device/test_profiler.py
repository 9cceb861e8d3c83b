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
            nd.waitall()  # the step's kernels run inside its span (queued ones too)
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
    # forward, backward and optimizer kernels, once per step each; named as MXNet
    # names them where the core op is one MXNet operator
    for name, per_step in (("FullyConnected", 2), ("softmax_ce_loss", 1),
                           ("softmax_ce_loss_grad", 1), ("fully_connected_backward", 2)):
        assert names.count(name) == 3 * per_step, (name, names)
    assert any(n.startswith("multi_sgd") or n == "sgd_update" for n in names)
    fc = next(e for e in ops if e["name"] == "FullyConnected")
    assert fc["args"]["device"] == device.kind and fc["args"]["op"] == "fully_connected"
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
    assert "FullyConnected" not in profiler.dumps()


def test_dumps_aggregates_counts_and_times(device):
    a = nd.ones((3, 3), ctx=device)
    profiler.set_state("run")
    for _ in range(5):
        a + a
    nd.dot(a, a)
    profiler.set_state("stop")
    table = profiler.dumps(sort_by="count")
    rows = [ln.split() for ln in table.splitlines()]
    add = next(r for r in rows if r and r[0] == "broadcast_add")
    assert int(add[1]) == 5 and float(add[2]) > 0
    # sorted by count, descending
    assert table.index("\nbroadcast_add ") < table.index("\ndot ")
    report = json.loads(profiler.dumps(format="json", reset=True))
    assert report["Unit"] == {"Time": "ms", "Memory": "kB"}
    stats = report["Time"]["operator"]
    assert stats["broadcast_add"]["Count"] == 5 and stats["dot"]["Count"] == 1
    add = stats["broadcast_add"]
    assert add["Min"] <= add["Avg"] <= add["Max"] and add["Total"] == pytest.approx(
        5 * add["Avg"])
    assert json.loads(profiler.dumps(format="json"))["Time"] == {}  # reset cleared them


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
    stats = json.loads(profiler.dumps(format="json"))["Time"]
    # (a threaded engine adds each kernel's wait in its queue as "queue")
    assert set(stats) - {"queue"} == {"operator"}
    assert set(stats["operator"]) == {"broadcast_sub"}


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
    with pytest.warns(UserWarning, match="profile_api.*no effect"):
        profiler.set_config(profile_api=True)
    with pytest.raises(ValueError, match="'run' or 'stop'.*'go'"):
        profiler.set_state("go")
    with pytest.raises(ValueError, match="format.*'csv'"):
        profiler.dumps(format="csv")
    with pytest.raises(ValueError, match="sort_by.*'speed'"):
        profiler.dumps(sort_by="speed")


# MXNet's user-defined events -----------------------------------------------------------
def _trace_events(tmp_path):
    profiler.dump(finished=False)
    return json.loads((tmp_path / "trace.json").read_text())["traceEvents"]


def test_domains_tasks_frames_events_counters_and_markers(device, tmp_path):
    profiler.set_state("run")
    domain = profiler.Domain("PythonDomain::train")
    task = domain.new_task("load")
    task.start()
    nd.ones((4,), ctx=device).asnumpy()
    task.stop()
    for _ in range(2):
        with profiler.Frame(domain, "batch"):
            pass
    with profiler.Event("epoch"):
        pass
    counter = profiler.Counter(domain, "seen", 5)
    counter += 3
    counter -= 1
    counter.decrement(2)
    profiler.Marker(domain, "start").mark("thread")
    profiler.set_state("stop")

    events = _trace_events(tmp_path)
    spans = {(e["cat"], e["name"]): e for e in events if e["ph"] == "X"}
    assert ("PythonDomain::train", "load") in spans
    assert ("PythonDomain::train,frame", "batch") in spans and ("event", "epoch") in spans
    load = spans[("PythonDomain::train", "load")]
    ones = [e for e in events if e["ph"] == "X" and e["name"] == "_ones"]
    assert ones and load["ts"] <= ones[0]["ts"] <= load["ts"] + load["dur"]
    values = [e["args"]["seen"] for e in events if e["ph"] == "C" and e["name"] == "seen"]
    assert values == [5, 8, 7, 5] and counter.value == 5
    marker = next(e for e in events if e["ph"] == "i")
    assert marker["name"] == "start" and marker["s"] == "t"
    assert marker["cat"] == "PythonDomain::train,instant_marker"

    report = json.loads(profiler.dumps(format="json"))
    assert report["Time"]["PythonDomain::train,frame"]["batch"]["Count"] == 2
    assert report["Time"]["event"]["epoch"]["Count"] == 1
    seen = report["Counter"]["PythonDomain::train"]["seen"]
    assert (seen["Count"], seen["Min"], seen["Max"]) == (4, 5, 8)
    assert seen["Avg"] == pytest.approx(25 / 4)
    assert "PythonDomain::train,frame" in profiler.dumps()  # and in the table


def test_user_events_are_free_and_silent_while_stopped_or_paused(tmp_path):
    domain = profiler.Domain("d")
    with profiler.Task(domain, "before"):  # stopped: nothing recorded
        pass
    profiler.set_state("run")
    profiler.pause()
    with profiler.Event("paused"):
        pass
    profiler.Counter(domain, "c").set_value(3)
    profiler.resume()
    with profiler.Event("kept"):
        pass
    profiler.set_state("stop")
    names = {e["name"] for e in _trace_events(tmp_path) if e["ph"] != "M"}
    assert names == {"kept"}


def test_user_event_misuse_is_named():
    domain = profiler.Domain("d")
    with pytest.raises(TypeError, match="Task: expected a profiler.Domain, got str"):
        profiler.Task("d", "t")
    with pytest.raises(RuntimeError, match="Event 'e': stop\\(\\) without start\\(\\)"):
        profiler.Event("e").stop()
    with pytest.raises(ValueError, match="Marker 'm': scope must be one of .*'galaxy'"):
        profiler.Marker(domain, "m").mark("galaxy")
    with pytest.raises(TypeError, match="Counter 'c': value must be a number, got str"):
        profiler.Counter(domain, "c").set_value("7")


def test_sorting_applies_to_every_table(device):
    profiler.set_config(profile_memory=True)
    profiler.set_state("run")
    a = nd.ones((8, 8), ctx=device)
    for k in range(3):
        a = a + k
    nd.dot(a, a).asnumpy()
    profiler.set_state("stop")
    for key, field in (("total", "Total"), ("avg", "Avg"), ("min", "Min"), ("max", "Max"),
                       ("count", "Count")):
        for ascending in (False, True):
            report = json.loads(profiler.dumps(format="json", sort_by=key,
                                               ascending=ascending))
            for section in ("Time", "Memory"):
                for table in report[section].values():
                    column = [row.get(field, row["Count"]) for row in table.values()]
                    assert column == sorted(column, reverse=not ascending)


def test_profile_memory_counts_live_kernel_outputs(device, tmp_path):
    profiler.set_config(profile_memory=True)
    profiler.set_state("run")
    a = nd.zeros((100, 100), ctx=device)    # 40 kB
    b = a + 1                              # 40 kB more
    del b                                  # and back
    c = a.reshape((10000,))                # a view: no new memory
    profiler.set_state("stop")
    key = f"Memory: {device.kind}/{device.index}"
    samples = [e["args"][key] for e in _trace_events(tmp_path)
               if e["ph"] == "C" and e["name"] == key]
    # counted from zero in each run, whatever earlier runs left alive
    assert samples[:2] == [40000, 80000]
    if device.kind == "cpu":  # (Triton's interpreter keeps its last launch's arrays)
        assert samples == [40000, 80000, 40000]
    memory = json.loads(profiler.dumps(format="json"))["Memory"]["Device Storage"][key]
    assert memory["Max"] == pytest.approx(80.0)
    del c


def test_custom_operators_are_named_as_mxnet_names_them(device):
    class Twice(mx.operator.CustomOp):
        def forward(self, is_train, req, in_data, out_data, aux):
            nd.zeros((2, 2), ctx=in_data[0].context)
            self.assign(out_data[0], req[0], in_data[0] * 2)

        def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
            self.assign(in_grad[0], req[0], out_grad[0] * 2)

    @mx.operator.register("profiled_twice")
    class TwiceProp(mx.operator.CustomOpProp):
        def create_operator(self, ctx, shapes, dtypes):
            return Twice()

    x = nd.array([1.0, 2.0], ctx=device)
    x.attach_grad()
    profiler.set_state("run")
    with autograd.record():
        y = nd.Custom(x, op_type="profiled_twice")
    y.backward()
    # a Symbol executor runs the same op through its plan
    sym = mx.sym.Custom(mx.sym.var("a"), op_type="profiled_twice")
    sym.bind(device, {"a": x}).forward()
    profiler.set_state("stop")
    assert x.grad.asnumpy().tolist() == [2.0, 2.0]
    custom = json.loads(profiler.dumps(format="json"))["Time"]["Custom Operator"]
    assert custom["profiled_twice::pure_python"]["Count"] == 2
    assert custom["_backward_profiled_twice::pure_python"]["Count"] == 1
    assert custom["profiled_twice::_zeros"]["Count"] >= 2
    assert custom["profiled_twice::_mul_scalar"]["Count"] == 2
    operators = json.loads(profiler.dumps(format="json"))["Time"]["operator"]
    assert not any("forward" in name or "bind" in name for name in operators)
