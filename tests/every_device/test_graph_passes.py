"""Graph passes: each pass on small traced programs, the pipeline and its plugin hook,
MXCORE_GRAPH_DEBUG, memory planning, and hybridized results through the passes (bit for
bit against imperative runs, on every device)."""
from __future__ import annotations

import numpy as np
import pytest

import hal
import mxcore as mx
from mxcore.base import MXCoreError
from mxcore.gluon import nn
from mxcore.graph import passes
from mxcore.graph.plan import Compiled, GraphDivergence
from mxcore.graph.program import Program, Step
from mxcore.graph.trace import Trace


# programs from small functions -----------------------------------------------------------
def program_of(fn, *shapes, training=False, dtype="float32"):
    """The unoptimised program of ``fn`` applied to meta inputs of ``shapes``."""
    t = Trace("t")
    with t:
        ins = [t.input(s, dtype) for s in shapes]
        out = fn(*ins)
    outs = out if isinstance(out, tuple) else (out,)
    steps = [Step(*st, name=n) for st, n in zip(t.steps, t.names)]
    return Program("t", t.nslots, t.shapes, t.dtypes, t.inputs, t.params, t.constants,
                   steps, [t.slot_of[id(o._data)] for o in outs], training)


def execute(program, arrays, ctx=None):
    """Run ``program`` on host ``arrays`` (kernels of ``ctx``), return host outputs."""
    ctx = ctx or hal.Device("cpu", 0)
    xs = [mx.nd.array(a, ctx=ctx, dtype=a.dtype) for a in arrays]
    vals = [None] * program.nslots
    for slot, x in zip(program.inputs, xs):
        vals[slot] = x._data
    for slot, host in program.constants:
        vals[slot] = mx.nd.array(host, ctx=ctx, dtype=host.dtype)._data
    Compiled(program, ctx).run(vals, {})
    return [_host(vals[s], ctx) for s in program.outputs]


def _host(data, ctx):
    from mxcore.dispatch import wrap
    return wrap(data, ctx).asnumpy()


def ops_of(program):
    return [st.op.name for st in program.steps]


CPU = hal.Device("cpu", 0)
RNG = np.random.default_rng(0)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# dead code, common subexpressions, constants ------------------------------------------------
def test_dce_drops_unread_steps_and_keeps_writes():
    def fn(x):
        mx.nd.exp(x)  # unread
        return mx.nd.tanh(x)
    p = program_of(fn, (3, 4))
    assert ops_of(p) == ["exp", "tanh"]
    q = passes.eliminate_dead_code(p)
    assert ops_of(q) == ["tanh"]
    assert ops_of(p) == ["exp", "tanh"]  # passes make new programs
    # a step that writes in place is a side effect: kept though nothing reads it
    mut = Step(_op("sgd_update"),
               (p.inputs[0], p.inputs[0]), {}, (p.new_slot((3, 4), np.float32),))
    r = p.replace(steps=p.steps + [mut])
    assert "sgd_update" in ops_of(passes.eliminate_dead_code(r))


def _op(name):
    from mxcore.plugins import registry
    return registry().ops[name]


def test_cse_merges_equal_pure_steps_only():
    def fn(x):
        return mx.nd.exp(x) + mx.nd.exp(x), mx.nd.Dropout(x, p=0.5, mode="always") + \
            mx.nd.Dropout(x, p=0.5, mode="always")
    p = program_of(fn, (4, 5))
    q = passes.eliminate_common_subexpressions(p)
    assert ops_of(q).count("exp") == 1
    assert ops_of(q).count("dropout") == 2  # random: never merged
    x = rand(4, 5)
    np.testing.assert_array_equal(execute(q, [x])[0], 2 * np.exp(x))


def test_constant_folding_computes_constants_once():
    def fn(x):
        c = mx.nd.array(np.arange(6, dtype=np.float32).reshape(2, 3), ctx=x.context)
        return x * mx.nd.exp(c * 2)
    p = program_of(fn, (2, 3))
    q = passes.fold_constants(p)
    assert ops_of(q) == ["multiply"]
    x = rand(2, 3)
    want = x * np.exp(np.arange(6, dtype=np.float32).reshape(2, 3) * np.float32(2))
    np.testing.assert_array_equal(execute(q, [x])[0], want)


# algebraic simplification -----------------------------------------------------------------
def test_simplify_removes_identities():
    def fn(x):
        y = mx.nd.transpose(mx.nd.transpose(x, axes=(1, 0, 2)), axes=(1, 0, 2))
        return mx.nd.tanh(((y * 1) + 0) / 1).reshape((2, 3, 4))
    p = program_of(fn, (2, 3, 4))
    q = passes.eliminate_dead_code(passes.simplify(p))
    assert ops_of(q) == ["tanh"]
    x = rand(2, 3, 4)
    np.testing.assert_array_equal(execute(q, [x])[0], np.tanh(x))


def test_simplify_keeps_real_work():
    def fn(x):
        return mx.nd.transpose(mx.nd.transpose(x, axes=(1, 0, 2)), axes=(0, 2, 1)) * 2 + 1
    p = program_of(fn, (2, 3, 4))
    q = passes.simplify(p)
    assert ops_of(q) == ops_of(p)


def test_simplify_merges_reshape_chains():
    def fn(x):
        return mx.nd.exp(x.reshape((6, 4)).reshape((4, 6)))
    q = passes.eliminate_dead_code(passes.simplify(program_of(fn, (2, 3, 4))))
    assert ops_of(q) == ["reshape", "exp"]
    x = rand(2, 3, 4)
    np.testing.assert_array_equal(execute(q, [x])[0], np.exp(x.reshape(4, 6)))


# inference rewrites -----------------------------------------------------------------------
def test_drop_dropout_only_outside_training():
    """A training dropout step goes from a program run outside training; a program run
    in training keeps it, and mode='always' dropout stays in inference too."""
    def fn(x):
        return mx.nd.Dropout(x, p=0.5) * 3
    with mx.autograd.train_mode():
        p = program_of(fn, (3, 3))
    assert "dropout" in ops_of(p)
    assert "dropout" not in ops_of(passes.drop_dropout(p.replace(training=False)))
    assert "dropout" in ops_of(passes.drop_dropout(p.replace(training=True)))
    always = program_of(lambda x: mx.nd.Dropout(x, p=0.5, mode="always") * 3, (3, 3))
    assert "dropout" in ops_of(passes.drop_dropout(always.replace(training=False)))


def _conv_bn_net(dense=False):
    net = nn.HybridSequential()
    if dense:
        net.add(nn.Dense(6, in_units=5), nn.BatchNorm(in_channels=6), nn.Activation("relu"))
    else:
        net.add(nn.Conv2D(4, 3, in_channels=3, use_bias=False), nn.BatchNorm(in_channels=4),
                nn.Conv2D(5, 1, in_channels=4), nn.BatchNorm(in_channels=5, scale=False))
    net.initialize()
    for p in net.collect_params().values():  # non-trivial statistics
        if p.name.endswith(("running_mean", "running_var", "gamma", "beta")):
            p.set_data(mx.nd.array(RNG.uniform(0.5, 1.5, p.shape).astype(np.float32)))
    return net


@pytest.mark.parametrize("dense", [False, True])
def test_fold_batch_norm_backend(dense):
    net = _conv_bn_net(dense)
    x = mx.nd.array(rand(2, 5) if dense else rand(2, 3, 6, 6))
    want = net(x).asnumpy()
    got = net.optimize_for(x, backend="fold_bn").asnumpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert "batch_norm" not in ops_of(net.last_plan().forward)
    net.hybridize()  # the default pipeline keeps BatchNorm (bit for bit)
    np.testing.assert_array_equal(net(x).asnumpy(), want)
    assert "batch_norm" in ops_of(net.last_plan().forward)
    # training programs are never folded
    net.hybridize(backend="fold_bn")
    with mx.autograd.train_mode():
        net(x)
    assert "batch_norm" in ops_of(net.last_plan().forward)


def test_unknown_backend_is_refused():
    net = _conv_bn_net()
    with pytest.raises(ValueError, match="unknown backend 'nope'.*fold_bn"):
        net.optimize_for(mx.nd.array(rand(1, 3, 6, 6)), backend="nope")


# fusion ----------------------------------------------------------------------------------
UNARY_POSITIVE = ("log", "sqrt", "log1p")
UNARY = ("negative", "abs", "sign", "exp", "expm1", "square", "sin", "cos", "tanh",
         "sigmoid", "relu") + UNARY_POSITIVE
BINARY = ("add", "subtract", "multiply", "divide", "maximum", "minimum", "power")
SCALAR = ("add_scalar", "sub_scalar", "rsub_scalar", "mul_scalar", "div_scalar",
          "rdiv_scalar", "pow_scalar", "rpow_scalar", "maximum_scalar", "minimum_scalar")


def _apply(name, x, y):
    from mxcore.dispatch import invoke
    op = _op(name)
    if name in SCALAR:
        return invoke(op, [x], {"scalar": 1.7})
    if name in BINARY:
        return invoke(op, [x, y], {})
    return invoke(op, [x], {})


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", UNARY + BINARY + SCALAR)
def test_fused_chain_is_bit_exact(device, name, dtype):
    # tanh(op(exp(x), y)) * 0.5: the op sits inside a three-step chain
    def fn(x, y):
        return mx.nd.tanh(_apply(name, mx.nd.exp(x) * 0.3 + 0.1, y)) * 0.5
    p = program_of(fn, (5, 7), (5, 7), dtype=dtype)
    q = passes.fuse_elementwise(p, device)
    x = RNG.uniform(-1, 1, (5, 7)).astype(dtype)
    y = RNG.uniform(0.5, 2, (5, 7)).astype(dtype)
    eager = fn(mx.nd.array(x, ctx=device, dtype=dtype), mx.nd.array(y, ctx=device, dtype=dtype))
    if "fused_elemwise" not in ops_of(q):
        pytest.skip(f"the {device.kind} fuser does not take {name}")
    assert len(q.steps) < len(p.steps)
    np.testing.assert_array_equal(execute(q, [x, y], device)[0], eager.asnumpy())


def test_fusion_keeps_values_read_elsewhere(device):
    def fn(x):
        a = mx.nd.exp(x)
        b = mx.nd.tanh(a) * 2
        return b + 1, a  # a is an output: not swallowed by the chain
    p = program_of(fn, (4, 4))
    q = passes.fuse_elementwise(p, device)
    assert ops_of(q)[0] == "exp"
    x = rand(4, 4)
    got = execute(q, [x], device)
    want = fn(mx.nd.array(x, ctx=device))
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w.asnumpy())


# memory planning ------------------------------------------------------------------------
def _deep(x):
    for _ in range(8):
        x = mx.nd.tanh(mx.nd.FullyConnected(x, mx.nd.ones((64, 64), ctx=x.context),
                                            no_bias=True, num_hidden=64))
    return x


def test_memory_plan_frees_dead_values_and_lowers_the_peak():
    p = passes.run(program_of(_deep, (32, 64)), CPU, passes.pipeline("cpu", False))
    q = passes.plan_memory(p)
    assert q.free_after is not None and len(q.free_after) == len(q.steps)
    freed = {s for f in q.free_after for s in f}
    assert not freed & (q.sources() | set(q.outputs))
    last = {}
    for i, st in enumerate(q.steps):
        for s in st.ins:
            last[s] = i
    for i, f in enumerate(q.free_after):  # freed exactly after the last read
        for s in f:
            assert last.get(s, i) == i
    from mxcore.graph.passes.memory import peak_bytes
    assert peak_bytes(q, planned=True) < peak_bytes(q, planned=False)
    x = rand(32, 64)
    np.testing.assert_array_equal(execute(q, [x])[0], execute(p, [x])[0])


def test_inplace_fused_step_overwrites_only_dead_fresh_values():
    def fn(x):
        a = mx.nd.FullyConnected(x, mx.nd.ones((8, 8), ctx=x.context), no_bias=True,
                                 num_hidden=8)
        return mx.nd.tanh(a * 2 + 1)
    p = passes.run(program_of(fn, (4, 8)), CPU, passes.pipeline("cpu", False))
    fused = [st for st in p.steps if st.op.name == "fused_elemwise"]
    assert fused and fused[0].attrs["inplace"] == 0
    # an input of the block is never overwritten
    q = passes.run(program_of(lambda x: mx.nd.tanh(x * 2 + 1), (4, 8)), CPU,
                   passes.pipeline("cpu", False))
    assert all(st.attrs.get("inplace", -1) == -1 for st in q.steps)
    x = rand(4, 8)
    before = x.copy()
    np.testing.assert_array_equal(execute(q, [x])[0], np.tanh(x * np.float32(2) + 1))
    np.testing.assert_array_equal(x, before)


def test_memory_planning_lowers_measured_peak(monkeypatch):
    """(On the naive engine: a threaded engine's queue keeps the arrays of the kernels
    it holds alive, whatever the plan reuses.)"""
    from mxcore import engine
    old = engine.set_engine("naive")
    try:
        _check_planned_peak(monkeypatch)
    finally:
        engine.set_engine(old)


def _check_planned_peak(monkeypatch):
    import tracemalloc
    net = nn.HybridSequential()
    for _ in range(6):
        net.add(nn.Dense(256, in_units=256, activation="tanh"))
    net.initialize()
    x = mx.nd.array(rand(512, 256))

    def peak():
        net.hybridize()
        net(x)  # trace outside the measurement
        tracemalloc.start()
        net(x).wait_to_read()
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top
    planned = peak()
    monkeypatch.setenv("MXCORE_GRAPH_PASSES", "-plan_memory")
    unplanned = peak()
    assert planned < unplanned * 0.6, (planned, unplanned)


# the pipeline ---------------------------------------------------------------------------
def test_loss_and_its_gradient_become_one_step():
    from mxcore.ops.nn import SOFTMAX_CE_GRAD
    x, label, g = rand(6, 5), RNG.integers(0, 5, 6).astype(np.int32), rand(6)

    def step(x, lab, g):  # the loss, something else, then the loss's gradient
        loss = mx.nd.softmax_ce_loss(x, lab, axis=1)
        from mxcore.dispatch import invoke
        return loss * 2, invoke(SOFTMAX_CE_GRAD, (x, lab, g), {"axis": 1})
    t = Trace("t")
    with t:
        ins = [t.input((6, 5), "float32"), t.input((6,), "int32"), t.input((6,), "float32")]
        outs = step(*ins)
    steps = [Step(*st, name=n) for st, n in zip(t.steps, t.names)]
    prog = Program("t", t.nslots, t.shapes, t.dtypes, t.inputs, [], [], steps,
                   [t.slot_of[id(o._data)] for o in outs], True)
    fused = passes.fuse_loss_gradient(prog, CPU)
    assert ops_of(prog)[0] == "softmax_ce_loss" and ops_of(prog)[-1] == "softmax_ce_loss_grad"
    assert ops_of(fused)[0] == "softmax_ce_loss_with_grad"
    assert "softmax_ce_loss_grad" not in ops_of(fused) and len(fused) == len(prog) - 1
    for a, b in zip(execute(prog, [x, label, g]), execute(fused, [x, label, g])):
        assert np.array_equal(a, b)  # the same bits
    # a lone loss, or a gradient whose head is computed after the loss: left as they are
    lone = prog.replace(steps=prog.steps[:-1], outputs=prog.outputs[:1])
    assert passes.fuse_loss_gradient(lone, CPU) is lone
    late_head = Program("t", t.nslots, t.shapes, t.dtypes, t.inputs[:2], [], [],
                        [prog.steps[0], prog.steps[1],
                         prog.steps[2].replace(ins=prog.steps[2].ins[:2] + (prog.outputs[0],))],
                        prog.outputs, True)
    assert passes.fuse_loss_gradient(late_head, CPU) is late_head
    assert "fuse_loss_gradient" in [p.name for p in passes.pipeline("cpu", True)]
    # Triton's two softmax kernels stay on cuda
    assert "fuse_loss_gradient" not in [p.name for p in passes.pipeline("cuda", True)]


def test_pipeline_order_and_switches(monkeypatch):
    names = [p.name for p in passes.pipeline("cpu", training=False)]
    assert names.index("dce") < names.index("cse") < names.index("simplify") \
        < names.index("fuse_elementwise") < names.index("plan_memory")
    assert "fold_batch_norm" not in names
    assert "fold_batch_norm" in [p.name for p in passes.pipeline("cpu", False, "fold_bn")]
    assert "drop_dropout" not in [p.name for p in passes.pipeline("cpu", training=True)]
    monkeypatch.setenv("MXCORE_GRAPH_PASSES", "off")
    assert passes.pipeline("cpu", False) == []
    monkeypatch.setenv("MXCORE_GRAPH_PASSES", "-cse,-fuse_elementwise")
    names = [p.name for p in passes.pipeline("cpu", False)]
    assert "cse" not in names and "fuse_elementwise" not in names and "dce" in names


def test_graph_pass_record_checks_its_stage():
    with pytest.raises(ValueError, match="stage must be one of"):
        hal.GraphPass("x", lambda p, c: p, stage="later")


class _PassPlugin:
    """A plugin that registers graph passes through the hook."""
    MXCORE_PLUGIN_API = hal.PLUGIN_API_VERSION

    def __init__(self, *graph_passes):
        self.graph_passes = graph_passes

    @hal.hookimpl
    def register_passes(self, register):
        for p in self.graph_passes:
            register(p)


@pytest.fixture
def plugin_passes():
    from mxcore.plugins import system
    names = []

    def add(*graph_passes):
        name = f"test_passes_{len(names)}"
        system().register_plugin(_PassPlugin(*graph_passes), name)
        names.append(name)
    yield add
    for name in names:
        system().unregister_plugin(name)


def test_plugin_passes_run_for_their_devices_and_backend(plugin_passes):
    seen = []

    def count(program, ctx):
        seen.append((program.name, ctx.kind))
        return program
    plugin_passes(hal.GraphPass("counting", count, stage="simplify", devices={"cpu"}),
                  hal.GraphPass("mine", count, stage="cleanup", backend="mine"))
    assert "mine" in passes.backends()
    net = nn.HybridSequential()
    net.add(nn.Dense(3, in_units=2))
    net.initialize()
    net.hybridize()
    net(mx.nd.ones((1, 2)))
    assert seen == [(net.name, "cpu")]
    seen.clear()
    net.optimize_for(mx.nd.ones((1, 2)), backend="mine")
    assert seen == [(net.name, "cpu"), (net.name, "cpu")]


def test_failing_plugin_pass_is_named(plugin_passes):
    def broken(program, ctx):
        raise KeyError("oops")
    plugin_passes(hal.GraphPass("broken_pass", broken, stage="fuse"))
    net = nn.Dense(3, in_units=2)
    net.initialize()
    net.hybridize()
    with pytest.raises(MXCoreError, match="graph pass 'broken_pass' failed on 'dense.*KeyError"):
        net(mx.nd.ones((1, 2)))


def test_graph_debug_names_the_diverging_step(plugin_passes, monkeypatch):
    def exp_to_log(program, ctx):  # a wrong rewrite
        log = _op("log")
        steps = [st.replace(op=log) if st.op.name == "exp" else st for st in program.steps]
        return program.replace(steps=steps)

    class B(nn.HybridBlock):
        def hybrid_forward(self, F, x):
            return F.tanh(F.exp(F.relu(x) + 1))
    plugin_passes(hal.GraphPass("wrong", exp_to_log, stage="simplify", backend="wrong"))
    b = B(prefix="diverging_")
    b.initialize()
    x = mx.nd.array(RNG.uniform(0.1, 1, (3, 3)).astype(np.float32))
    monkeypatch.setenv("MXCORE_GRAPH_PASSES", "-fuse_elementwise")
    monkeypatch.setenv("MXCORE_GRAPH_DEBUG", "1")
    b.hybridize()
    xh = x.asnumpy()
    np.testing.assert_array_equal(b(x).asnumpy(), np.tanh(np.exp(np.maximum(xh, 0) + 1)))
    b.hybridize(backend="wrong")
    with pytest.raises(GraphDivergence, match=r"step diverging:exp .*differs"):
        b(x)


# hybridized blocks through the passes ------------------------------------------------------
class _Chain(nn.HybridBlock):
    def __init__(self, **kw):
        super().__init__(**kw)
        with self.name_scope():
            self.dense = nn.Dense(6, in_units=4)

    def hybrid_forward(self, F, x):
        h = self.dense(x)
        y = F.tanh(h * 0.5 + 1) * F.sigmoid(h) - F.exp(h) * 1
        return F.Dropout(y, p=0.3) + y * 0


def _train_step(block, x):
    for p in block.collect_params().values():
        p.zero_grad()
    x.attach_grad()
    with mx.autograd.record():
        out = block(x)
        loss = (out * out).sum()
    loss.backward()
    return out.asnumpy(), {k: p.grad().asnumpy().copy()
                           for k, p in block.collect_params().items()}, x.grad.asnumpy()


def test_hybridized_training_through_passes_matches_eager(device):
    b = _Chain()
    b.initialize(ctx=device)
    x = mx.nd.array(rand(3, 4), ctx=device)
    mx.random.seed(3)
    eager = _train_step(b, x)
    b.hybridize()
    for _ in range(2):
        out, grads, xg = _train_step(b, x)
        # dropout masks differ per call; where both kept the value, results agree, and
        # every gradient is consistent with this call's own mask
        kept = (out != 0) & (eager[0] != 0)
        assert kept.any()
        np.testing.assert_array_equal(out[kept], eager[0][kept])
    assert any(st.op.name == "fused_elemwise" for st in b.last_plan().forward.steps) or \
        device.kind != "cpu"
    # without dropout (inference), outputs equal eager bit for bit
    b.hybridize(False)
    want = b(x).asnumpy()
    b.hybridize()
    np.testing.assert_array_equal(b(x).asnumpy(), want)


def test_hybridized_gradients_equal_eager_without_randomness(device):
    class NoDrop(_Chain):
        def hybrid_forward(self, F, x):
            h = self.dense(x)
            return F.tanh(h * 0.5 + 1) * F.sigmoid(h) - F.exp(h) * 1
    b = NoDrop()
    b.initialize(ctx=device)
    x = mx.nd.array(rand(3, 4), ctx=device)
    eager = _train_step(b, x)
    for static in (False, True):
        b.hybridize(static_alloc=static)
        for _ in range(2):  # the second call reuses the plan (and its scratch buffers)
            got = _train_step(b, x)
            np.testing.assert_array_equal(got[0], eager[0])
            for k in eager[1]:
                np.testing.assert_array_equal(got[1][k], eager[1][k], err_msg=k)
            np.testing.assert_array_equal(got[2], eager[2])
        b.hybridize(False)


def test_static_alloc_outputs_are_not_shared_between_calls():
    class B(nn.HybridBlock):
        def hybrid_forward(self, F, x):
            return F.tanh(F.exp(x) * 2 + 1)
    b = B()
    b.hybridize(static_alloc=True, static_shape=True)  # the CPU captures no device graph
    x1, x2 = mx.nd.array(rand(4, 4)), mx.nd.array(rand(4, 4))
    y1 = b(x1)
    keep = y1.asnumpy().copy()
    y2 = b(x2)
    b(x1)
    np.testing.assert_array_equal(y1.asnumpy(), keep)
    np.testing.assert_array_equal(y2.asnumpy(),
                                  np.tanh(np.exp(x2.asnumpy()) * np.float32(2) + 1))


def test_outputs_never_alias_inputs_or_constants():
    class Same(nn.HybridBlock):
        def hybrid_forward(self, F, x):
            return x * 1, x + 0
    b = Same()
    b.hybridize()
    x = mx.nd.array(rand(2, 2))
    a, c = b(x)
    a[:] = 5
    assert not np.any(x.asnumpy() == 5) and not np.any(c.asnumpy() == 5)


def test_higher_order_gradients_through_a_plan_are_refused():
    b = nn.Dense(3, in_units=2, activation="tanh")
    b.initialize()
    b.hybridize()
    x = mx.nd.ones((1, 2))
    x.attach_grad()
    with mx.autograd.record():
        y = b(x)
        with pytest.raises(MXCoreError, match="higher-order gradients.*hybridize\\(False\\)"):
            mx.autograd.grad(y, [x], create_graph=True)


def test_symbol_cse_merges_and_isolates_outputs():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    d = a + 1
    cases = [((a + 1) + (a + 2), 0), ((a + b) + (a + b), 1),
             (mx.sym.Group([a * d, a * d]), 0),  # a copy keeps the two outputs apart
             (mx.sym.Group([a * d + b, a * d + b]), 1),
             (mx.sym.Dropout(a) + mx.sym.Dropout(a), 0)]
    for sym, saving in cases:
        names = sym.list_arguments()
        exe = sym.simple_bind(ctx=mx.cpu(), **{n: (2, 3) for n in names})
        opt = exe.get_optimized_symbol()
        assert len(opt.get_internals()) + saving == len(sym.get_internals()), sym.tojson()
        if "dropout" in sym.tojson().lower():
            continue
        feed = {n: mx.nd.array(rand(2, 3)) for n in names}
        want = sym.eval(ctx=mx.cpu(), **feed)
        got = opt.eval(ctx=mx.cpu(), **feed)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.asnumpy(), w.asnumpy())


# device graphs (static_alloc + static_shape) --------------------------------------------------
def test_static_plans_replay_a_captured_device_graph(device, monkeypatch):
    """The capture itself needs a GPU; a stand-in capture (replay = run again on the same
    slots, as the interpreted cuda device does) tests everything around it: input
    buffers, parameters updated in place or replaced, outputs copied out."""
    from mxcore.device import device_type
    dt = device_type(device)
    captured = []

    def capture(index, fn):  # records only, as a CUDA stream capture
        captured.append(fn)
        return fn
    monkeypatch.setattr(dt, "capture", capture, raising=False)
    net = nn.HybridSequential()
    net.add(nn.Dense(8, in_units=5, activation="tanh"), nn.Dense(3, in_units=8))
    net.initialize(ctx=device)
    xs = [mx.nd.array(rand(4, 5), ctx=device) for _ in range(4)]
    want = [net(x).asnumpy() for x in xs]
    net.hybridize(static_alloc=True, static_shape=True)
    outs = [net(x) for x in xs]
    assert len(captured) == 1  # the first call runs the plan, the second captures
    for o, w in zip(outs, want):  # every output is its own copy
        np.testing.assert_array_equal(o.asnumpy(), w)
    w = net[0].weight.data(device)
    w[:] = w * 2  # in place: the graph reads the same memory
    net.hybridize(False)
    want2 = net(xs[0]).asnumpy()
    net.hybridize(static_alloc=True, static_shape=True)
    for _ in range(3):
        np.testing.assert_array_equal(net(xs[0]).asnumpy(), want2)
    net[0].weight.set_data(mx.nd.ones((8, 5), ctx=device))  # written in place: replayed
    n = len(captured)
    got = net(xs[1]).asnumpy()
    assert len(captured) == n
    net.hybridize(False)
    np.testing.assert_array_equal(got, net(xs[1]).asnumpy())
    net.hybridize(static_alloc=True, static_shape=True)
    net(xs[0])
    net(xs[0])
    n = len(captured)
    w = net[0].weight.data(device)
    from mxcore import engine
    w._data = engine.resolve(w._data) * 0.5  # the parameter's memory replaced: a new capture
    net(xs[0])
    got = net(xs[1]).asnumpy()
    assert len(captured) == n + 1
    net.hybridize(False)
    np.testing.assert_array_equal(got, net(xs[1]).asnumpy())
    # recording calls run the plan (the tape needs this call's values)
    net.hybridize(static_alloc=True, static_shape=True)
    with mx.autograd.record():
        y = net(xs[2])
    np.testing.assert_array_equal(y.asnumpy(), net(xs[2]).asnumpy())


def test_plans_push_every_step_through_the_current_engine(device):
    from mxcore import engine
    pushed = []

    class Recording(engine.NaiveEngine):
        def push(self, fn, args, attrs, mutates=(), device=None):
            pushed.append(fn)
            return fn(*args, **attrs)
    net = nn.Dense(3, in_units=2, activation="tanh")
    net.initialize(ctx=device)
    net.hybridize()
    x = mx.nd.ones((1, 2), ctx=device)
    net(x)  # the plan is built
    old = engine.set_engine(Recording())
    try:
        net(x)
    finally:
        engine.set_engine(old)
    assert len(pushed) == len(net.last_plan().forward.steps) >= 1
