"""The threaded engine: the same results as the naive engine on random programs (reads,
in-place writes, views), asynchrony, errors at sync points, a bounded queue."""
from __future__ import annotations

import subprocess
import random
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mxcore as mx
from mxcore import engine
from mxcore.base import OperatorError
from mxcore.op import Op
from mxcore.threaded_engine import Pending, ThreadedEngine

nd = mx.nd


def _lagging_engine(workers: int = 1):
    """A threaded engine whose workers dawdle before each kernel, for a random while
    with several workers (so that kernels finish out of push order): a read that does
    not wait for the queued writes of its array sees stale values."""
    eng = ThreadedEngine(workers=workers)
    run = eng._execute
    lag = random.Random(workers)

    def late(task):
        time.sleep(0.0005 if workers == 1 else lag.random() * 0.001)
        run(task)
    eng._execute = late
    return eng


@pytest.fixture(params=[1, 2], ids=["1-worker", "2-workers"])
def threaded(request):
    """A threaded engine installed for the test (the previous engine back after)."""
    eng = ThreadedEngine(workers=request.param)
    old = engine.set_engine(eng)
    try:
        yield eng
    finally:
        engine.set_engine(old)
        eng.shutdown()


# random programs: both engines give the same arrays ----------------------------------
UNARY = ("exp", "negative", "relu", "square")
STEP = st.one_of(
    st.tuples(st.just("unary"), st.sampled_from(UNARY), st.integers(0, 7)),
    st.tuples(st.just("binary"), st.sampled_from(("add", "mul", "sub")), st.integers(0, 7),
              st.integers(0, 7)),
    st.tuples(st.just("write"), st.integers(0, 7), st.integers(0, 7)),   # a[:] = b
    st.tuples(st.just("iadd"), st.integers(0, 7), st.integers(0, 7)),    # a += b
    st.tuples(st.just("view_write"), st.integers(0, 7), st.floats(-2, 2)),  # a[1:][0] = v
    st.tuples(st.just("reshape_write"), st.integers(0, 7), st.floats(-2, 2)),
    st.tuples(st.just("sgd"), st.integers(0, 7), st.integers(0, 7)),     # in-place update
    st.tuples(st.just("random"), st.integers(0, 7)),  # the generator's state, in order
    st.tuples(st.just("transpose_add"), st.integers(0, 7), st.integers(0, 7)),  # a.T += ...
)


def _run_program(steps, device):
    rng = np.random.default_rng(7)
    mx.random.seed(11)
    pool = [nd.array(rng.uniform(-1, 1, (4, 3)), ctx=device, dtype="float32")
            for _ in range(4)]
    for step in steps:
        kind = step[0]
        pick = lambda i: pool[i % len(pool)]  # noqa: E731
        if kind == "unary":
            pool.append(getattr(nd, step[1])(pick(step[2])) * 0.5)
        elif kind == "binary":
            a, b = pick(step[2]), pick(step[3])
            pool.append({"add": a + b, "mul": a * b, "sub": a - b}[step[1]])
        elif kind == "write":
            pick(step[1])[:] = pick(step[2])
        elif kind == "iadd":
            a = pick(step[1])
            a += pick(step[2])
        elif kind == "view_write":
            pick(step[1])[1:][0] = step[2]
        elif kind == "reshape_write":
            v = pick(step[1]).reshape((12,))
            v[3] = step[2]
        elif kind == "random":
            pool.append(nd.random.uniform(-1, 1, shape=(4, 3), ctx=device) + pick(step[1]))
        elif kind == "transpose_add":
            t = pick(step[1]).T
            t += pick(step[2]).T
        else:
            w, g = pick(step[1]), pick(step[2])
            if w is not g:
                nd.sgd_update(w, g, lr=0.1, wd=0.01, out=w)
        pool = pool[-8:]
    return [x.asnumpy() for x in pool]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEP, min_size=1, max_size=25))
@pytest.mark.parametrize("workers", [1, 3])
def test_random_programs_match_the_naive_engine(device, workers, steps):
    want = _run_program(steps, device)
    eng = _lagging_engine(workers)
    old = engine.set_engine(eng)
    try:
        got = _run_program(steps, device)
    finally:
        engine.set_engine(old)
        eng.shutdown()
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("workers", [1, 3])
def test_training_steps_match_the_naive_engine(device, workers):
    def train():
        mx.random.seed(3)
        net = mx.gluon.nn.HybridSequential()
        net.add(mx.gluon.nn.Dense(8, activation="relu", in_units=5), mx.gluon.nn.Dense(3))
        net.initialize(mx.init.Xavier(), ctx=device)
        trainer = mx.gluon.Trainer(net.collect_params(), "sgd",
                                   {"learning_rate": 0.1, "momentum": 0.9})
        loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
        x = nd.array(np.random.default_rng(0).random((6, 5)), ctx=device)
        y = nd.array([0, 1, 2, 0, 1, 2], ctx=device)
        for _ in range(4):
            with mx.autograd.record():
                loss = loss_fn(net(x), y)
            loss.backward()
            trainer.step(6)
        return [p.data().asnumpy() for p in net.collect_params().values()]

    want = train()
    eng = _lagging_engine(workers)
    old = engine.set_engine(eng)
    try:
        got = train()
    finally:
        engine.set_engine(old)
        eng.shutdown()
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_results_are_placeholders_until_a_sync_point(device, threaded):
    a = nd.ones((3, 4), ctx=device)
    b = (a * 2).sum(axis=1)
    assert type(b._data) is Pending
    assert b.shape == (3,) and b.dtype == np.float32  # known without waiting
    assert b.asnumpy().tolist() == [8.0, 8.0, 8.0]


# engine-level tests: a fake operator whose kernel the test controls ---------------------
def _fake_op(eng, fn, name="fake", nout=1):
    """Make ``fn`` a queued kernel of a one-output op (shape and dtype of input 0)."""
    op = Op(name, 1, nout)
    op.def_infer(lambda shapes, dtypes, attrs: ([shapes[0]] * nout, [dtypes[0]] * nout))
    eng._op_of(fn)  # builds the registry map
    eng._ops[fn] = op
    return op


def test_push_returns_before_the_kernel_runs():
    eng = ThreadedEngine()
    try:
        release, ran = threading.Event(), threading.Event()

        def slow(x):
            # blocks until the caller, after push returned, lets it go: a synchronous
            # push would never return (the wait below would time out instead)
            assert release.wait(timeout=20)
            ran.set()
            return x + 1

        _fake_op(eng, slow)
        out = eng.push(slow, (np.zeros(3),), {})
        assert type(out) is Pending and not ran.is_set()
        release.set()
        eng.wait_to_read(out)
        assert ran.is_set() and out.value().tolist() == [1.0, 1.0, 1.0]
    finally:
        eng.shutdown()


def test_a_full_queue_blocks_the_producer():
    eng = ThreadedEngine(queue_size=2)
    try:
        release = threading.Event()
        gate = lambda x: (release.wait(timeout=20), x)[1]  # noqa: E731
        _fake_op(eng, gate)
        eng.push(gate, (np.zeros(1),), {})
        eng.push(gate, (np.zeros(1),), {})
        third = threading.Event()

        def producer():
            eng.push(gate, (np.zeros(1),), {})
            third.set()
        t = threading.Thread(target=producer)
        t.start()
        assert not third.wait(timeout=0.3)  # blocked while two kernels are queued
        release.set()
        assert third.wait(timeout=20)
        t.join(timeout=20)
        eng.wait_all()
    finally:
        eng.shutdown()


def test_errors_surface_at_sync_points_with_the_issuing_line(device, threaded):
    def broken(x):
        raise FloatingPointError("kernel exploded")

    _fake_op(threaded, broken, name="broken_op")
    x = nd.ones((2, 2), ctx=device)
    bad = threaded.push(broken, (x._data,), {}, (), device)        # issued here
    line = sys._getframe().f_lineno - 1
    dep = nd.exp(mx.nd.NDArray(bad, device))   # reads the failed output
    independent = x + 1                          # does not
    assert independent.asnumpy().tolist() == [[2.0, 2.0], [2.0, 2.0]]
    # the cause, not a new error; in the naive engine's words (the operator, the
    # kernel's exception, the shapes and the device), plus the line that queued it
    with pytest.raises(OperatorError, match="broken_op.*FloatingPointError: kernel exploded"
                       ) as info:
        dep.asnumpy()
    assert isinstance(info.value.__cause__, FloatingPointError)
    assert repr(device) in str(info.value)
    note = "\n".join(getattr(info.value, "__notes__", []))
    assert "'broken_op'" in note and "(2, 2)" in note and f"{__file__}:{line}" in note
    with pytest.raises(OperatorError, match="kernel exploded"):
        threaded.wait_to_read(bad)
    threaded.wait_all()  # already reported: waitall does not raise it again


def test_waitall_raises_an_unseen_error_once(threaded):
    def broken(x):
        raise ValueError("nobody read me")

    _fake_op(threaded, broken)
    threaded.push(broken, (np.zeros(2),), {})
    with pytest.raises(OperatorError, match="nobody read me"):
        threaded.wait_all()
    threaded.wait_all()


def test_a_failed_in_place_write_fails_readers_of_the_array(device, threaded):
    def broken_update(w, g):
        raise RuntimeError("update failed")

    op = _fake_op(threaded, broken_update)
    op.nin = 2
    w = nd.ones((3,), ctx=device)
    threaded.push(broken_update, (w._data, w._data), {}, (0,), device)
    with pytest.raises(OperatorError, match="update failed"):
        w.asnumpy()
    assert w.asnumpy().tolist() == [1.0, 1.0, 1.0]  # reported once; the array is whole


def test_interpreter_exit_with_queued_work_does_not_hang(tmp_path):
    code = ("import mxcore as mx\n"
            "a = mx.nd.ones((64, 64))\n"
            "for _ in range(200):\n"
            "    a = mx.nd.dot(a, a) * 1e-3\n"
            "print(mx.engine.current().name)\n")
    r = subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ,
                       "MXCORE_ENGINE": "threaded"}, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "threaded"


def test_bad_queue_size_is_refused():
    with pytest.raises(ValueError, match="room for one kernel, got 0"):
        ThreadedEngine(queue_size=0)


def test_the_profiler_times_kernels_on_the_worker_and_their_queueing(device, threaded,
                                                                      tmp_path):
    import json
    from mxcore import profiler
    profiler.set_config(filename=str(tmp_path / "trace.json"))
    profiler.set_state("run")
    try:
        a = nd.ones((16, 16), ctx=device)
        b = nd.dot(a, a) + 1
        b.asnumpy()
    finally:
        profiler.set_state("stop")
    assert engine.current() is threaded
    profiler.dump()
    events = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    ops = [e for e in events if e.get("cat") == "operator"]
    queued = [e for e in events if e.get("cat") == "queue"]
    assert {e["name"] for e in ops} >= {"dot", "_plus_scalar", "_ones"}
    # one track per engine worker: the kernels ran off the main thread
    assert {e["tid"] for e in ops} <= {t.ident for t in threaded.worker_threads()}
    names = [e["name"] for e in queued]
    assert sorted(names) == sorted(e["name"] for e in ops) and all(e["dur"] >= 0
                                                                    for e in queued)
    labels = {e["tid"]: e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert {labels[e["tid"]] for e in ops} <= {f"mxcore-engine-{device}-{i}" for i in (0, 1)}


def test_engines_are_chosen_by_mxcore_or_mxnet_variables(monkeypatch):
    monkeypatch.delenv("MXCORE_ENGINE", raising=False)
    monkeypatch.setenv("MXNET_ENGINE_TYPE", "ThreadedEnginePerDevice")
    eng = engine.create()
    try:
        assert eng.name == "threaded"
    finally:
        eng.shutdown()
    monkeypatch.setenv("MXNET_ENGINE_TYPE", "NaiveEngine")
    assert engine.create().name == "naive"
    monkeypatch.setenv("MXCORE_ENGINE", "naive")  # mxcore's variable wins
    monkeypatch.setenv("MXNET_ENGINE_TYPE", "ThreadedEngine")
    assert engine.create().name == "naive"
    monkeypatch.setenv("MXCORE_ENGINE", "turbo")
    with pytest.warns(RuntimeWarning, match="'turbo' is not an engine"):
        assert engine.create().name == "naive"
    with pytest.raises(ValueError, match="unknown engine 'turbo'"):
        engine.create("turbo")


def test_bulk_size_is_accepted_as_mxnet_does():
    before = mx.engine.set_bulk_size(30)
    try:
        with mx.engine.bulk(5):
            assert mx.engine.set_bulk_size(5) == 5
        assert mx.engine.set_bulk_size(30) == 30
    finally:
        mx.engine.set_bulk_size(before)


# dependency tracking with several workers ------------------------------------------------
def _two_ops(eng, fn):
    op = _fake_op(eng, fn)
    op.nin = 2
    return op


def test_independent_kernels_run_side_by_side(tmp_path):
    """Two kernels that each wait for the other to start: they finish only if two
    workers run them at once (one worker would time the barrier out); the profiler's
    trace shows their spans overlapping on two worker tracks."""
    from mxcore import profiler
    eng = ThreadedEngine(workers=2)
    old = engine.set_engine(eng)
    try:
        meet = threading.Barrier(2, timeout=20)

        def rendezvous(x):
            meet.wait()
            return x * 2

        _fake_op(eng, rendezvous, name="rendezvous")
        profiler.set_config(filename=str(tmp_path / "trace.json"))
        profiler.set_state("run")
        try:
            push = engine.current().push  # through the profiler
            a = push(rendezvous, (np.ones(3),), {})
            b = push(rendezvous, (np.ones(3),), {})
            eng.wait_all()
        finally:
            profiler.set_state("stop")
        assert a.value().tolist() == b.value().tolist() == [2.0, 2.0, 2.0]
        profiler.dump()
    finally:
        engine.set_engine(old)
        eng.shutdown()
    import json
    events = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    spans = sorted((e["ts"], e["ts"] + e["dur"], e["tid"]) for e in events
                   if e.get("cat") == "operator")
    assert len(spans) == 2 and spans[0][2] != spans[1][2]
    assert spans[1][0] < spans[0][1]  # the second started before the first ended


def test_reads_run_together_and_a_write_waits_for_them():
    eng = ThreadedEngine(workers=3)
    try:
        meet = threading.Barrier(2, timeout=20)
        order = []

        def read(x):  # two reads of the same array meet: they run at once
            meet.wait()
            order.append("read")
            return x.sum(keepdims=True)

        def write(x, y):
            order.append("write")
            x += y
            return x

        _fake_op(eng, read, name="read")
        _two_ops(eng, write)
        w = np.ones(4)
        r1 = eng.push(read, (w,), {})
        r2 = eng.push(read, (w[1:],), {})  # a view: the same variable as w
        eng.push(write, (w[:2], np.ones(2)), {}, (0,))  # through another view
        eng.wait_all()
        assert order == ["read", "read", "write"]
        assert r1.value().tolist() == [4.0] and r2.value().tolist() == [3.0]
        assert w.tolist() == [2.0, 2.0, 1.0, 1.0]
    finally:
        eng.shutdown()


def test_a_read_waits_for_the_write_before_it():
    eng = ThreadedEngine(workers=2)
    try:
        release = threading.Event()

        def slow_write(x, y):
            assert release.wait(timeout=20)
            x[...] = y
            return x

        def read(x):
            return x * 1

        _two_ops(eng, slow_write)
        _fake_op(eng, read, name="read")
        w = np.zeros(3)
        eng.push(slow_write, (w, np.full(3, 5.0)), {}, (0,))
        r = eng.push(read, (w.reshape(3, 1),), {})  # a view of w, read after the write
        independent = eng.push(read, (np.ones(2),), {})
        deadline = time.monotonic() + 20
        while independent._task.result is None and time.monotonic() < deadline:
            time.sleep(0.001)  # the independent read ran while the write was held
        assert independent._task.result is not None and r._task.result is None
        release.set()
        assert r.value().ravel().tolist() == [5.0, 5.0, 5.0]
    finally:
        eng.shutdown()


def test_errors_fail_dependents_only_with_several_workers():
    eng = ThreadedEngine(workers=2)
    old = engine.set_engine(eng)
    try:
        def broken(x):
            raise FloatingPointError("kernel exploded")

        _fake_op(eng, broken, name="broken_op")
        x = nd.ones((2, 2))
        bad = nd.NDArray(eng.push(broken, (x._data,), {}, (), x.context), x.context)
        dep = nd.exp(bad) + 1
        independent = x * 3
        assert independent.asnumpy().tolist() == [[3.0, 3.0], [3.0, 3.0]]
        with pytest.raises(OperatorError, match="kernel exploded"):
            dep.asnumpy()
    finally:
        engine.set_engine(old)
        eng.shutdown()


def test_a_second_device_turns_dependency_tracking_on():
    """One worker on one device runs kernels in push order; kernels on a second device
    run on its own worker, ordered against the first device's by their arrays."""
    eng = ThreadedEngine(workers=1)
    old = engine.set_engine(eng)
    try:
        a = nd.ones((3,), ctx=mx.cpu(0)) * 2
        assert not eng._tracking
        b = nd.ones((3,), ctx=mx.cpu(1)) + a.copyto(mx.cpu(1))
        c = b.copyto(mx.cpu(0)) + a
        assert eng._tracking and len(eng._pools) == 2
        assert c.asnumpy().tolist() == [5.0, 5.0, 5.0]
        names = {t.name for t in eng.worker_threads()}
        assert names == {"mxcore-engine-cpu:0-0", "mxcore-engine-cpu:1-0"}
    finally:
        engine.set_engine(old)
        eng.shutdown()


def test_worker_counts_come_from_mxcore_or_mxnet_variables(monkeypatch):
    from mxcore.threaded_engine import _workers
    monkeypatch.delenv("MXCORE_ENGINE_WORKERS", raising=False)
    monkeypatch.delenv("MXNET_CPU_WORKER_NTHREADS", raising=False)
    monkeypatch.delenv("MXNET_GPU_WORKER_NTHREADS", raising=False)
    assert _workers("cpu") == 1
    monkeypatch.setenv("MXNET_CPU_WORKER_NTHREADS", "3")
    assert _workers("cpu") == 3 and _workers("cuda") == 1
    monkeypatch.setenv("MXCORE_ENGINE_WORKERS", "2")
    monkeypatch.setenv("MXNET_GPU_WORKER_NTHREADS", "4")
    assert _workers("cpu") == 2 and _workers("cuda") == 4
    monkeypatch.setenv("MXCORE_ENGINE_WORKERS", "0")
    with pytest.raises(ValueError, match="at least one worker"):
        _workers("cpu")
    with pytest.raises(ValueError, match="at least one worker"):
        ThreadedEngine(workers=0)


def test_a_kernel_that_returns_a_view_unannounced_is_learned():
    eng = ThreadedEngine(workers=2)
    try:
        def sneaky(x):
            return x[1:]  # a view of the input, though the op does not say views=True

        op = _fake_op(eng, sneaky, name="sneaky")
        op.def_infer(lambda shapes, dtypes, attrs: ([(shapes[0][0] - 1,)], [dtypes[0]]))
        with pytest.warns(RuntimeWarning, match="'sneaky'.*views=True"):
            eng.push(sneaky, (np.ones(3),), {})
            eng.wait_all()
        assert op.views
    finally:
        eng.shutdown()


# sync points wait for what they read --------------------------------------------------
def _call_with_timeout(fn, seconds=10.0):
    """fn() in a thread: (returned within ``seconds``, its result)."""
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("r", fn()), daemon=True)
    t.start()
    t.join(seconds)
    return not t.is_alive(), box.get("r")


@pytest.mark.parametrize("workers", [1, 2])
def test_reading_a_value_does_not_wait_for_later_independent_kernels(workers):
    eng = ThreadedEngine(workers=workers)
    try:
        release = threading.Event()

        def gate(x):
            assert release.wait(timeout=30)
            return x + 1

        def plus(x):
            return x + 2

        _fake_op(eng, gate, name="gate")
        _fake_op(eng, plus, name="plus")
        w = np.zeros(3)
        loss = eng.push(plus, (np.ones(2),), {})
        eng.push(gate, (np.zeros(4),), {})          # a long kernel queued after
        eng.push(plus, (w,), {})                     # reads w, queued behind the gate
        done, value = _call_with_timeout(loss.value)
        assert done, "reading the first value waited for the kernel queued after it"
        assert value.tolist() == [3.0, 3.0]
        done, _ = _call_with_timeout(lambda: eng.wait_to_read(w))
        assert done                                  # nothing queued writes w
        release.set()
        eng.wait_all()
    finally:
        eng.shutdown()


def test_reading_waits_for_queued_in_place_writes_of_its_memory():
    eng = ThreadedEngine()
    try:
        release = threading.Event()

        def slow_fill(x, y):
            assert release.wait(timeout=30)
            x[...] = y
            return x

        def plus(x):
            return x + 2

        _two_ops(eng, slow_fill)
        _fake_op(eng, plus, name="plus")
        w = np.zeros(3)
        out = eng.push(plus, (np.ones(2),), {})
        eng.push(slow_fill, (w[1:], np.full(2, 7.0)), {}, (0,))   # writes w through a view
        done, _ = _call_with_timeout(lambda: eng.wait_to_read(w), seconds=0.5)
        assert not done                              # w waits for the in-place write
        # a placeholder written in place waits too
        p = eng.push(plus, (np.zeros(2),), {})
        eng.push(slow_fill, (p, np.full(2, 9.0)), {}, (0,))
        done, _ = _call_with_timeout(p.value, seconds=0.5)
        assert not done
        release.set()
        eng.wait_to_read(w)
        assert w.tolist() == [0.0, 7.0, 7.0]
        assert p.value().tolist() == [9.0, 9.0] and out.value().tolist() == [3.0, 3.0]
    finally:
        eng.shutdown()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_hybridized_call_is_one_task_with_the_naive_engines_results(device, workers):
    """On the threaded engine a hybridized block's forward is one engine task, and its
    backward another, not one per step; training gives the naive engine's bits."""
    def train(count=None):
        mx.random.seed(3)
        net = mx.gluon.nn.HybridSequential()
        net.add(mx.gluon.nn.Dense(8, activation="relu", in_units=5),
                mx.gluon.nn.Dropout(0.5), mx.gluon.nn.Dense(3, in_units=8))
        net.initialize(mx.init.Xavier(), ctx=device)
        net.hybridize()
        trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
        x = nd.array(np.random.default_rng(0).random((6, 5)), ctx=device)
        for step in range(3):
            if count is not None and step == 2:
                count.clear()
            with mx.autograd.record():
                out = net(x)
            out.backward()
            if count is not None and step == 2:
                pushes = list(count)
            trainer.step(6)
        mx.nd.waitall()
        return [p.data().asnumpy() for p in net.collect_params().values()], (
            pushes if count is not None else None)

    want, _ = train()
    eng = ThreadedEngine(workers=workers)
    names = []
    push = eng.push

    def counting(fn, args, attrs, mutates=(), device=None):
        op = eng._op_of(fn)
        names.append(op.name if op is not None else "?")
        return push(fn, args, attrs, mutates, device)
    eng.push = counting
    old = engine.set_engine(eng)
    try:
        got, pushes = train(names)
    finally:
        engine.set_engine(old)
        eng.shutdown()
    plan_tasks = [n for n in pushes if n.startswith("hybridized[")]
    assert len(plan_tasks) == 2, pushes         # the forward and the backward
    assert not any(n in ("fully_connected", "FullyConnected", "dropout") for n in pushes)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
