"""Graph APIs over eager code: ``autograd.get_symbol`` (the recorded computation as a
Symbol), ``mx.nd.CachedOp`` (a Symbol called on NDArrays) and the op hooks of
hybridized blocks (``mxcore.graph.op_hook``), with MXNet 1.9.1's names."""
from __future__ import annotations

import json

import numpy as np
import pytest

import mxcore as mx
from mxcore.base import MXCoreError
from mxcore.graph import from_core, functions
from mxcore.graph.op_hook import run_with_hook


def _leaf(a, device):
    x = mx.nd.array(np.asarray(a, dtype=np.float32), ctx=device)
    x.attach_grad()
    return x


# get_symbol ---------------------------------------------------------------------------------
def test_get_symbol_names_ops_and_inputs_as_mxnet(device):
    x, z = _leaf([1.0, 2.0], device), _leaf([3.0, 4.0], device)
    c = mx.nd.array([5.0, 6.0], ctx=device)
    with mx.autograd.record():
        y = x * x + 2 * z - 1 + c
    sym = mx.autograd.get_symbol(y)
    nodes = json.loads(sym.tojson())["nodes"]
    # MXNet 1.9.1 gives these ops and names (its variable counter is process-wide)
    assert [(n["op"], n["name"]) for n in nodes] == [
        ("null", "var0"), ("broadcast_mul", "node_0"), ("null", "var1"),
        ("_mul_scalar", "node_1"), ("broadcast_add", "node_2"), ("_minus_scalar", "node_3"),
        ("null", "null2"), ("broadcast_add", "node_4")]
    assert sym.list_arguments() == ["var0", "var1", "null2"]
    assert sym.list_outputs() == ["node_4_output"]
    out = sym.eval(ctx=device, var0=x, var1=z, null2=c)[0]
    np.testing.assert_allclose(out.asnumpy(), [1 + 6 - 1 + 5, 4 + 8 - 1 + 6])


def test_get_symbol_counts_arguments(device):  # MXNet's test_get_symbol
    x, z = _leaf([1.0], device), _leaf([1.0], device)
    with mx.autograd.record():
        y = x * x + 2 * x - 1
    assert len(mx.autograd.get_symbol(y).list_arguments()) == 1
    with mx.autograd.record():
        y = x * x + 2 * z - 1
    assert len(mx.autograd.get_symbol(y).list_arguments()) == 2


def _record_cases(device):
    rng = np.random.default_rng(3)
    x = _leaf(rng.standard_normal((2, 3, 4)), device)
    w = _leaf(rng.standard_normal((5, 12)), device)
    k = _leaf(rng.standard_normal((2, 3, 2)), device)
    idx = mx.nd.array([[0, 1, 2, 3]] * 2, ctx=device)
    return x, w, k, idx, {
        "fc_relu": lambda: mx.nd.FullyConnected(x, w, num_hidden=5, no_bias=True).relu(),
        "softmax_sum": lambda: mx.nd.softmax(x, axis=1).sum(axis=2),
        "index_int": lambda: x[0:1, 1],
        "index_step": lambda: x[:, ::2, 1:3],
        "reshape_transpose": lambda: x.reshape((6, 4)).T,
        "conv_pool": lambda: mx.nd.Pooling(mx.nd.Convolution(x, k, kernel=(2,), num_filter=2,
                                                             no_bias=True),
                                           kernel=(2,), pool_type="max"),
        "split_tanh": lambda: mx.nd.split(x, 2, axis=2)[1].tanh(),
        "concat_stack": lambda: mx.nd.stack(mx.nd.concat(x, x, dim=1), x.tile((1, 2, 1))),
        "pick": lambda: mx.nd.pick(x, idx, axis=1),
        "leaky_softrelu": lambda: mx.nd.LeakyReLU(mx.nd.Activation(x, act_type="softrelu")),
        "log_softmax_ce": lambda: mx.nd.softmax_cross_entropy(x.reshape((6, 4)),
                                                              mx.nd.zeros((6,), ctx=device)),
        "scalars": lambda: (1 - x) / 2 + x ** 2 - 3 / (x * x + 1),
        "flip_clip": lambda: mx.nd.clip(mx.nd.flip(x, axis=0), -0.5, 0.5),
    }


@pytest.mark.parametrize("case", ["fc_relu", "softmax_sum", "index_int", "index_step",
                                  "reshape_transpose", "conv_pool", "split_tanh",
                                  "concat_stack", "pick", "leaky_softrelu", "log_softmax_ce",
                                  "scalars", "flip_clip"])
def test_get_symbol_reproduces_the_recorded_values(device, case):
    cases = _record_cases(device)[-1]
    with mx.autograd.record():
        y = cases[case]()
    sym = mx.autograd.get_symbol(y)
    # each graph input stands for an array the tape starts from, in order of appearance
    args = dict(zip(sym.list_arguments(), _appearance(y)))
    assert any(name.startswith("var") for name in args)
    out = sym.eval(ctx=device, **args)[0]
    np.testing.assert_allclose(out.asnumpy(), y.asnumpy(), rtol=1e-5, atol=1e-6)


def _appearance(y):
    """Arrays the tape starts from, in the depth-first order get_symbol numbers them."""
    seen, found = set(), []

    def visit(node):
        for a in node.inputs:
            if type(a._ag) is tuple:
                if id(a._ag[0]) not in seen:
                    seen.add(id(a._ag[0]))
                    visit(a._ag[0])
            else:
                key = id(a._ag) if a._ag is not None else id(a)
                if key not in seen:
                    seen.add(key)
                    found.append(a)
    visit(y._ag[0])
    return found


def test_get_symbol_fused_activation_becomes_two_nodes(device):
    x, w = _leaf(np.ones((2, 3)), device), _leaf(np.ones((4, 3)), device)
    with mx.autograd.record():
        y = mx.nd.fully_connected(x, w, no_bias=True, act_type="tanh")
    nodes = json.loads(mx.autograd.get_symbol(y).tojson())["nodes"]
    assert [n["op"] for n in nodes if n["op"] != "null"] == ["FullyConnected", "Activation"]
    assert nodes[2]["attrs"]["num_hidden"] == "4"


def test_get_symbol_errors(device):
    x = _leaf([1.0, 2.0], device)
    with pytest.raises(MXCoreError, match="not computed inside"):
        mx.autograd.get_symbol(mx.nd.ones((2,), ctx=device))
    with mx.autograd.record():
        y = mx.nd.take_along_axis(x, mx.nd.array([0, 1], ctx=device), axis=0) \
            if hasattr(mx.nd, "take_along_axis") else None
    if y is not None:
        with pytest.raises(from_core.NoMXNetEquivalentError, match="take_along_axis"):
            mx.autograd.get_symbol(y)
    with mx.autograd.record():
        y = x * 2
    y.backward()
    with pytest.raises(MXCoreError, match="freed"):
        mx.autograd.get_symbol(y)
    assert mx.autograd.get_symbol(x).list_arguments() == ["var0"]


def test_every_rule_targets_an_op_graphs_can_run():
    targets = {getattr(rule, "target", None) for rule in from_core.TABLE.values()}
    assert None not in targets
    for name in targets:
        functions.op_function(name)  # raises for a name mxcore cannot run


# CachedOp ------------------------------------------------------------------------------------
def _conv_ref(data, weight, bias):
    n, c, h, w = data.shape
    f, _, kh, kw = weight.shape
    out = np.zeros((n, f, h - kh + 1, w - kw + 1))
    for i in range(h - kh + 1):
        for j in range(w - kw + 1):
            patch = data[:, :, i:i + kh, j:j + kw]
            out[:, :, i, j] = np.tensordot(patch, weight, axes=([1, 2, 3], [1, 2, 3]))
    return out + bias[None, :, None, None]


def test_cached_op_runs_the_symbol(device):
    rng = np.random.default_rng(0)
    sym = mx.sym.Convolution(kernel=(3, 3), num_filter=4) + 2
    op = mx.nd.CachedOp(sym, flags=[("static_alloc", True)])
    d, w, b = (rng.standard_normal(s).astype(np.float32)
               for s in ((2, 3, 5, 5), (4, 3, 3, 3), (4,)))
    arrays = [mx.nd.array(a, ctx=device) for a in (d, w, b)]
    out = op(*arrays)
    np.testing.assert_allclose(out.asnumpy(), _conv_ref(d, w, b) + 2, rtol=1e-4, atol=1e-4)
    dst = mx.nd.zeros(out.shape, ctx=device)
    assert op(*arrays, out=dst) is dst
    np.testing.assert_allclose(dst.asnumpy(), out.asnumpy())
    with pytest.raises(MXCoreError, match="3 inputs"):
        op(arrays[0])
    with pytest.raises(TypeError, match="unexpected keyword"):
        op(*arrays, foo=1)


def test_cached_op_gradients_reach_inputs(device):
    a = mx.sym.var("a")
    b = mx.sym.var("b")
    op = mx.nd.CachedOp(mx.sym.Group([a * b, mx.sym.sum(a)]))
    x = _leaf([1.0, 2.0, 3.0], device)
    y = _leaf([4.0, 5.0, 6.0], device)
    with mx.autograd.record():
        prod, total = op(x, y)
        loss = (prod * 2).sum() + total
    loss.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), 2 * np.array([4.0, 5.0, 6.0]) + 1)
    np.testing.assert_allclose(y.grad.asnumpy(), 2 * np.array([1.0, 2.0, 3.0]))


# op hooks -----------------------------------------------------------------------------------
def _hooked(block, x, monitor_all):
    names, ops = [], []

    def callback(name, op_name, arr):
        names.append(name.decode())
        ops.append(op_name.decode())
    out = run_with_hook(block, [x], callback, monitor_all)
    return out, names, ops


def test_op_hook_names_as_mxnet(device):
    # the names MXNet 1.9.1's test_op_hook_output_names expects
    net = mx.gluon.nn.HybridSequential(prefix="dense_")
    with net.name_scope():
        net.add(mx.gluon.nn.Dense(2))
        net.add(mx.gluon.nn.Activation("relu"))
    net.initialize(ctx=device)
    x = mx.nd.array(np.linspace(-1, 1, 24).reshape(2, 3, 4), ctx=device)
    out, names, ops = _hooked(net, x, True)
    assert names == ["dense_dense0_fwd_data", "dense_dense0_fwd_weight",
                     "dense_dense0_fwd_bias", "dense_dense0_fwd_output",
                     "dense_relu0_fwd_input0", "dense_relu0_fwd_output"]
    assert ops == ["FullyConnected"] * 4 + ["Activation"] * 2
    np.testing.assert_allclose(out.asnumpy(), net(x).asnumpy(), rtol=1e-6)
    _, names, _ = _hooked(net, x, False)
    assert names == ["dense_dense0_fwd_output", "dense_relu0_fwd_output"]

    pool = mx.gluon.nn.HybridSequential("pool_")
    with pool.name_scope():
        pool.add(mx.gluon.nn.AvgPool1D())
    pool.initialize(ctx=device)
    out, names, ops = _hooked(pool, x, True)
    assert names == ["pool_pool0_fwd_data", "pool_pool0_fwd_output"]
    assert ops == ["Pooling", "Pooling"]
    np.testing.assert_allclose(out.asnumpy(), (x.asnumpy()[..., 0::2] +
                                               x.asnumpy()[..., 1::2]) / 2, rtol=1e-6)


def test_op_hook_reports_arrays_and_only_used_outputs(device):
    class Net(mx.gluon.HybridBlock):
        def hybrid_forward(self, F, x):
            return F.split(x, num_outputs=3, axis=1)[1] * 2

    net = Net(prefix="n_")
    net.initialize(ctx=device)
    x = mx.nd.array(np.arange(6.0).reshape(2, 3), ctx=device)
    seen = {}
    out = run_with_hook(net, [x], lambda n, o, a: seen.__setitem__(n.decode(), a.asnumpy()))
    split = [k for k in seen if k.endswith("output1")]
    assert len(seen) == 2 and len(split) == 1  # unused outputs 0 and 2 are not reported
    np.testing.assert_allclose(seen[split[0]], [[1.0], [4.0]])
    np.testing.assert_allclose(out.asnumpy(), [[2.0], [8.0]])


def test_a_hybridized_call_is_one_cached_op_node():
    b = from_core.Builder()
    x, w = mx.sym.var("x")._outputs[0], mx.sym.var("w")._outputs[0]
    outs = from_core.convert(b, "hybridized[net0]", {}, [x, w], [(2, 3), (4, 3)], nout=2)
    node = outs[0][0]
    assert (node.op, node.name, node.nout, len(outs)) == ("_CachedOp", "node_0", 2, 2)
    assert [src for src, _ in node.inputs] == [x[0], w[0]]


def test_get_symbol_inlines_small_hybridized_blocks(device):
    """As MXNet's CachedOp: a hybridized call with at most ``inline_limit`` ops (default
    2) and no static_alloc shows in ``autograd.get_symbol`` as its ops, otherwise as one
    _CachedOp node over the block's inputs and parameters."""
    net = mx.gluon.nn.HybridSequential()
    for _ in range(3):
        net.add(mx.gluon.nn.Dense(4))
    net.initialize(ctx=device)
    x = mx.nd.zeros((1, 4), ctx=device)

    def ops(**flags):
        net.hybridize(**flags)
        with mx.autograd.record():
            y = net(x)
        nodes = json.loads(mx.autograd.get_symbol(y).tojson())["nodes"]
        y.backward()
        return [n["op"] for n in nodes if n["op"] != "null"], len(nodes)
    assert ops(inline_limit=3) == (["FullyConnected"] * 3, 10)  # data, 6 params, 3 ops
    assert ops(inline_limit=0) == (["_CachedOp"], 8)
    assert ops() == (["_CachedOp"], 8)                           # 3 ops > the default 2
    assert ops(inline_limit=3, static_alloc=True) == (["_CachedOp"], 8)
    small = mx.gluon.nn.Dense(4)
    small.initialize(ctx=device)
    small.hybridize()
    with mx.autograd.record():
        y = small(x)
    assert mx.autograd.get_symbol(y).get_internals().list_outputs()[-1].endswith("_output")
    assert "FullyConnected" in mx.autograd.get_symbol(y).tojson()
