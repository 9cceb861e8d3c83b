"""mx.sym: graph construction, shape/dtype inference, JSON, the executor and its
gradients against eager autograd, and the output-layer ops of symbolic training."""
from __future__ import annotations

import json

import numpy as np
import pytest

import mxcore as mx
from mxcore.base import MXCoreError
from mxcore.graph.ir import GraphFormatError


def _mlp(num_out=10):
    data = mx.sym.Variable("data")
    fc1 = mx.sym.FullyConnected(data, name="fc1", num_hidden=16)
    act = mx.sym.Activation(fc1, name="relu1", act_type="relu")
    return mx.sym.FullyConnected(act, name="fc2", num_hidden=num_out)


def test_arguments_outputs_and_auto_variables():
    net = _mlp()
    assert net.list_arguments() == ["data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"]
    assert net.list_outputs() == ["fc2_output"]
    assert net.name == "fc2"
    nb = mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=3, no_bias=True, name="nb")
    assert nb.list_arguments() == ["x", "nb_weight"]
    bn = mx.sym.BatchNorm(mx.sym.var("x"), name="bn")
    assert bn.list_arguments() == ["x", "bn_gamma", "bn_beta"]
    assert bn.list_auxiliary_states() == ["bn_moving_mean", "bn_moving_var"]
    assert bn.list_inputs() == ["x", "bn_gamma", "bn_beta", "bn_moving_mean", "bn_moving_var"]


def test_automatic_names_and_prefix():
    with mx.name.NameManager():
        a = mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=2)
        b = mx.sym.FullyConnected(a, num_hidden=2)
    assert (a.name, b.name) == ("fullyconnected0", "fullyconnected1")
    with mx.name.Prefix("net_"):
        c = mx.sym.Activation(mx.sym.var("x"), act_type="relu")
    assert c.name == "net_activation0"


def test_infer_shape_full_partial_and_type():
    net = _mlp()
    args, outs, aux = net.infer_shape(data=(4, 7))
    assert args == [(4, 7), (16, 7), (16,), (10, 16), (10,)]
    assert outs == [(4, 10)] and aux == []
    assert net.infer_shape() == (None, None, None)
    args, outs, _ = net.infer_shape_partial()
    assert args == [()] * 5 and outs == [()]
    conv = mx.sym.Convolution(mx.sym.var("x"), kernel=(3, 3), num_filter=8, pad=(1, 1),
                              num_group=2, name="c")
    args, outs, _ = conv.infer_shape(x=(2, 4, 9, 9))
    assert args == [(2, 4, 9, 9), (8, 2, 3, 3), (8,)] and outs == [(2, 8, 9, 9)]
    types = net.infer_type(data="float64")
    assert types[0] == [np.float64] * 5 and types[1] == [np.float64]


def test_infer_shape_error_names_the_node():
    x = mx.sym.var("x")
    y = mx.sym.broadcast_add(x, mx.sym.var("y"), name="adder")
    with pytest.raises(MXCoreError, match="adder"):
        y.infer_shape(x=(2, 3), y=(4, 5))


def test_json_round_trip_and_mxnet_format():
    net = _mlp()
    doc = json.loads(net.tojson())
    assert [n["op"] for n in doc["nodes"]] == ["null", "null", "null", "FullyConnected",
                                                "Activation", "null", "null",
                                                "FullyConnected"]
    assert doc["nodes"][3]["attrs"] == {"num_hidden": "16"}
    assert doc["arg_nodes"] == [0, 1, 2, 5, 6] and doc["heads"] == [[7, 0, 0]]
    again = mx.sym.load_json(net.tojson())
    assert again.tojson() == net.tojson()
    assert again.infer_shape(data=(2, 3))[1] == [(2, 10)]


def test_loads_json_as_mxnet_writes_it(tmp_path):
    # the form MXNet 1.9.1 writes for x*2+1 through a named FullyConnected
    text = json.dumps({
        "nodes": [{"op": "null", "name": "data", "inputs": []},
                  {"op": "null", "name": "fc_weight", "inputs": []},
                  {"op": "null", "name": "fc_bias", "inputs": []},
                  {"op": "FullyConnected", "name": "fc",
                   "attrs": {"flatten": "True", "no_bias": "False", "num_hidden": "3"},
                   "inputs": [[0, 0, 0], [1, 0, 0], [2, 0, 0]]},
                  {"op": "_mul_scalar", "name": "m", "attrs": {"scalar": "2.0"},
                   "inputs": [[3, 0, 0]]},
                  {"op": "_plus_scalar", "name": "p", "attrs": {"scalar": "1.0"},
                   "inputs": [[4, 0, 0]]}],
        "arg_nodes": [0, 1, 2], "node_row_ptr": [0, 1, 2, 3, 4, 5, 6],
        "heads": [[5, 0, 0]], "attrs": {"mxnet_version": ["int", 10901]}})
    path = tmp_path / "net-symbol.json"
    path.write_text(text)
    sym = mx.sym.load(str(path))
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    w = np.ones((3, 4), np.float32)
    b = np.array([0, 1, 2], np.float32)
    out = sym.eval(mx.cpu(), data=mx.nd.array(x), fc_weight=mx.nd.array(w),
                   fc_bias=mx.nd.array(b))[0]
    np.testing.assert_allclose(out.asnumpy(), (x @ w.T + b) * 2 + 1)


@pytest.mark.parametrize("text,match", [
    ("{not json", "invalid JSON"),
    ('{"nodes": []}', "'nodes' and 'heads'"),
    ('{"nodes": [{"op": "null", "name": "a", "inputs": [[3, 0, 0]]}], "heads": [[0,0,0]]}',
     "does not come before it"),
    ('{"nodes": [{"op": "null", "name": "a"}], "heads": [[4, 0, 0]]}', "malformed head"),
])
def test_malformed_json_is_a_clear_error(text, match):
    with pytest.raises(GraphFormatError, match=match):
        mx.sym.load_json(text)


def test_truncated_file_names_the_file(tmp_path):
    path = tmp_path / "bad-symbol.json"
    path.write_text(_mlp().tojson()[:50])
    with pytest.raises(GraphFormatError, match="bad-symbol.json"):
        mx.sym.load(str(path))


def test_unknown_op_in_file_is_reported_at_inference():
    text = json.dumps({"nodes": [{"op": "null", "name": "x", "inputs": []},
                                 {"op": "NoSuchOp", "name": "n", "inputs": [[0, 0, 0]]}],
                       "heads": [[1, 0, 0]]})
    sym = mx.sym.load_json(text)
    with pytest.raises(MXCoreError, match="NoSuchOp"):
        sym.infer_shape(x=(2,))


def test_arithmetic_group_getitem_and_internals(device):
    a, b = mx.sym.var("a"), mx.sym.var("b")
    expr = (a * 2 + b) / (b - 1) - 3 ** a
    x = np.array([0.5, 1.5], np.float32)
    y = np.array([2.0, 3.0], np.float32)
    out = expr.eval(device, a=mx.nd.array(x, ctx=device), b=mx.nd.array(y, ctx=device))[0]
    np.testing.assert_allclose(out.asnumpy(), (x * 2 + y) / (y - 1) - 3 ** x, rtol=1e-6)
    g = mx.sym.Group([a + b, a * b])
    assert len(g) == 2 and g.list_outputs() == [s.list_outputs()[0] for s in g]
    internals = _mlp().get_internals()
    assert "relu1_output" in internals.list_outputs()
    relu = internals["relu1_output"]
    assert relu.infer_shape(data=(3, 5))[1] == [(3, 16)]
    parts = mx.sym.split(mx.sym.var("x"), num_outputs=3, axis=1)
    assert len(parts) == 3
    assert parts[1].infer_shape(x=(2, 6))[1] == [(2, 2)]
    with pytest.raises(mx.base.NotImplementedForSymbol):
        bool(a)


def test_compose_replaces_variables():
    inner = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=4, name="inner")
    outer = mx.sym.Activation(mx.sym.var("data"), act_type="tanh", name="outer")
    net = outer(data=inner)
    assert net.list_arguments() == ["data", "inner_weight", "inner_bias"]
    assert net.infer_shape(data=(2, 3))[1] == [(2, 4)]


def test_executor_matches_eager_forward_and_gradients(device):
    rng = np.random.default_rng(0)
    net = _mlp(5)
    exe = net.simple_bind(device, data=(4, 7))
    values = {}
    for name, arr in exe.arg_dict.items():
        values[name] = rng.standard_normal(arr.shape).astype(np.float32)
        arr[:] = mx.nd.array(values[name], ctx=device)
    head = rng.standard_normal((4, 5)).astype(np.float32)
    out = exe.forward(is_train=True)[0]
    exe.backward(mx.nd.array(head, ctx=device))

    eager = {k: mx.nd.array(v, ctx=device) for k, v in values.items()}
    for v in eager.values():
        v.attach_grad()
    with mx.autograd.record():
        h = mx.nd.relu(mx.nd.FullyConnected(eager["data"], eager["fc1_weight"],
                                            eager["fc1_bias"], num_hidden=16))
        ref = mx.nd.FullyConnected(h, eager["fc2_weight"], eager["fc2_bias"], num_hidden=5)
    ref.backward(mx.nd.array(head, ctx=device))
    np.testing.assert_array_equal(out.asnumpy(), ref.asnumpy())
    for name in ("fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias", "data"):
        np.testing.assert_array_equal(exe.grad_dict[name].asnumpy(),
                                      eager[name].grad.asnumpy(), err_msg=name)


def test_executor_grad_req_add_and_null(device):
    x = mx.sym.var("x")
    w = mx.sym.var("w")
    y = mx.sym.sum(x * w)
    args = {"x": mx.nd.array([1.0, 2.0], ctx=device), "w": mx.nd.array([3.0, 4.0], ctx=device)}
    grads = {"x": mx.nd.zeros((2,), ctx=device), "w": mx.nd.zeros((2,), ctx=device)}
    exe = y.bind(device, args, args_grad=grads, grad_req={"x": "null", "w": "add"})
    for _ in range(2):
        exe.forward(is_train=True)
        exe.backward()
    np.testing.assert_array_equal(grads["w"].asnumpy(), [2.0, 4.0])
    np.testing.assert_array_equal(grads["x"].asnumpy(), [0.0, 0.0])
    exe.backward()  # again without a forward: as in MXNet, the gradients at the bound values
    np.testing.assert_array_equal(grads["w"].asnumpy(), [3.0, 6.0])
    exe.forward()  # an inference forward may be differentiated too, as in MXNet
    exe.backward()
    np.testing.assert_array_equal(grads["w"].asnumpy(), [4.0, 8.0])


def test_bind_errors_name_the_arguments(device):
    net = _mlp()
    with pytest.raises(MXCoreError, match="no array for arguments"):
        net.bind(device, {"data": mx.nd.zeros((2, 3), ctx=device)})
    with pytest.raises(MXCoreError, match="cannot be inferred"):
        net.simple_bind(device)


def test_batch_norm_aux_states_update_in_training(device):
    x = mx.sym.var("x")
    bn = mx.sym.BatchNorm(x, name="bn", fix_gamma=False)
    exe = bn.simple_bind(device, x=(8, 3))
    exe.arg_dict["bn_gamma"][:] = 1
    exe.aux_dict["bn_moving_var"][:] = 1
    data = np.random.default_rng(1).standard_normal((8, 3)).astype(np.float32) + 5
    exe.arg_dict["x"][:] = mx.nd.array(data, ctx=device)
    exe.forward(is_train=True)
    exe.backward(mx.nd.ones((8, 3), ctx=device))
    mean = exe.aux_dict["bn_moving_mean"].asnumpy()
    np.testing.assert_allclose(mean, 0.1 * data.mean(0), rtol=1e-5)
    out = exe.forward(is_train=False)[0].asnumpy()  # moving statistics now
    var = exe.aux_dict["bn_moving_var"].asnumpy()
    np.testing.assert_allclose(out, (data - mean) / np.sqrt(var + 1e-3), rtol=1e-4, atol=1e-4)


def test_random_symbols_run_on_the_bound_device(device):
    u = mx.sym.random.uniform(low=2.0, high=3.0, shape=(50,))
    out = u.eval(device)[0]
    assert out.context == device and out.shape == (50,)
    v = out.asnumpy()
    assert ((v >= 2) & (v < 3)).all()


def test_softmax_output_gradient(device):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 4))
    label = np.array([0, 3, 1, 1, 2])
    data = mx.nd.array(x, ctx=device, dtype="float64")
    data.attach_grad()
    with mx.autograd.record():
        y = mx.nd.SoftmaxOutput(data, mx.nd.array(label, ctx=device, dtype="float64"),
                                grad_scale=2.0, normalization="batch")
    y.backward(mx.nd.ones((5, 4), ctx=device, dtype="float64") * 7)  # ignored, as in MXNet
    p = np.exp(x) / np.exp(x).sum(1, keepdims=True)
    np.testing.assert_allclose(y.asnumpy(), p, rtol=1e-12)
    np.testing.assert_allclose(data.grad.asnumpy(), (p - np.eye(4)[label]) * 2.0 / 5,
                               rtol=1e-12)


def test_softmax_output_ignore_label(device):
    x = np.zeros((3, 2))
    data = mx.nd.array(x, ctx=device, dtype="float64")
    data.attach_grad()
    with mx.autograd.record():
        y = mx.nd.SoftmaxOutput(data, mx.nd.array([0, -1, 1], ctx=device, dtype="float64"),
                                use_ignore=True, ignore_label=-1, normalization="valid")
    y.backward()
    np.testing.assert_allclose(data.grad.asnumpy(),
                               [[-0.25, 0.25], [0, 0], [0.25, -0.25]], rtol=1e-12)


@pytest.mark.parametrize("name,forward,grad", [
    ("LinearRegressionOutput", lambda x: x, lambda o, t: o - t),
    ("LogisticRegressionOutput", lambda x: 1 / (1 + np.exp(-x)), lambda o, t: o - t),
    ("MAERegressionOutput", lambda x: x, lambda o, t: np.sign(o - t)),
])
def test_regression_outputs(device, name, forward, grad):
    rng = np.random.default_rng(3)
    x, t = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    data = mx.nd.array(x, ctx=device, dtype="float64")
    data.attach_grad()
    with mx.autograd.record():
        y = getattr(mx.nd, name)(data, mx.nd.array(t, ctx=device, dtype="float64"),
                                 grad_scale=3.0)
    y.backward()
    np.testing.assert_allclose(y.asnumpy(), forward(x), rtol=1e-12)
    np.testing.assert_allclose(data.grad.asnumpy(), grad(forward(x), t) * 3.0 / 3, rtol=1e-12)


def test_make_loss_gradient_ignores_head(device):
    data = mx.nd.array([[1.0, -2.0], [3.0, 0.5]], ctx=device, dtype="float64")
    data.attach_grad()
    with mx.autograd.record():
        y = mx.nd.make_loss(data * data, grad_scale=0.5, normalization="batch")
    y.backward(mx.nd.ones((2, 2), ctx=device, dtype="float64") * 9)
    np.testing.assert_allclose(data.grad.asnumpy(), 2 * data.asnumpy() * 0.5 / 2)


def test_meta_arrays_have_no_values():
    sym = mx.sym.var("x") + 1
    with pytest.raises(MXCoreError, match="no values"):
        sym.eval(mx.device("meta"), x=mx.nd.zeros((2,), ctx=mx.device("meta")))[0].asnumpy()


def test_graph_show_cli(tmp_path, capsys):
    from mxcore.cli import main
    path = tmp_path / "net-symbol.json"
    _mlp().save(str(path))
    assert main(["graph", "show", str(path), "--shape", "data=4,7"]) == 0
    text = capsys.readouterr().out
    assert "FullyConnected  fc1(#0, #1, #2)  {num_hidden=16}  -> (4, 16) float32" in text
    assert "var  fc2_weight (10, 16) float32" in text
    assert main(["graph", "show", str(path), "--dot"]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith("digraph mxcore {") and 'label="FullyConnected\\nfc2"' in dot
    assert main(["graph", "show", str(tmp_path / "missing.json")]) == 2
    assert "cannot read the symbol file" in capsys.readouterr().err


@pytest.mark.parametrize("grad_req", ["write", "add"])
def test_executor_compiled_plan_equals_node_by_node(device, grad_req, monkeypatch):
    """Executors run a compiled plan (one tape node per forward); the node-by-node run
    gives the same outputs, gradients and BatchNorm statistics, bit for bit."""
    from mxcore.graph.executor import Executor
    data = mx.sym.var("data")
    net = mx.sym.FullyConnected(data, num_hidden=6, name="fc1")
    net = mx.sym.BatchNorm(net, name="bn", fix_gamma=False)
    net = mx.sym.Activation(net * 2 + 1, act_type="tanh")
    net = mx.sym.FullyConnected(net, num_hidden=3, name="fc2")
    rng = np.random.default_rng(0)

    def run(compiled):
        if not compiled:
            monkeypatch.setattr(Executor, "_trace_plan", lambda self: False)
        exe = net.simple_bind(ctx=device, grad_req=grad_req, data=(4, 5))
        for name, arr in sorted(exe.arg_dict.items()):
            arr[:] = mx.nd.array(np.random.default_rng(len(name)).standard_normal(arr.shape),
                                 ctx=device)
        exe.aux_dict["bn_moving_var"][:] = 1
        outs = []
        for step in range(2):
            exe.forward(is_train=True, data=mx.nd.array(rng.standard_normal((4, 5)), ctx=device))
            exe.backward(mx.nd.ones((4, 3), ctx=device))
            outs.append(exe.outputs[0].asnumpy())
        outs.append(exe.forward(is_train=False)[0].asnumpy())
        monkeypatch.undo()
        return (outs, {k: v.asnumpy() for k, v in exe.grad_dict.items() if v is not None},
                {k: v.asnumpy() for k, v in exe.aux_dict.items()}, exe)
    rng = np.random.default_rng(0)
    got = run(True)
    assert got[3]._plans and all(p is not False for p in got[3]._plans.values())
    rng = np.random.default_rng(0)
    want = run(False)
    for a, b in zip(got[0], want[0]):
        np.testing.assert_array_equal(a, b)
    for part in (1, 2):
        assert got[part].keys() == want[part].keys()
        for k in got[part]:
            np.testing.assert_array_equal(got[part][k], want[part][k], err_msg=k)


def test_executor_outputs_exist_from_bind_and_monitor(device):
    """As in MXNet: ``outputs`` holds arrays of the inferred shapes and dtypes right
    after binding; a monitor callback sees every op output (and inputs with
    ``monitor_all``), with MXNet's names; ``simple_bind`` takes a variable's own dtype
    and ignores keywords that are not shapes."""
    x = mx.sym.Variable("x", dtype=np.int32)
    y = mx.sym.Cast(x, dtype=np.float16)
    exe = y.simple_bind(device, x=(2, 3), grad_req="null", axis=0)
    assert exe.arg_dict["x"].dtype == np.int32
    assert [(o.shape, o.dtype) for o in exe.outputs] == [((2, 3), np.float16)]
    parts = mx.sym.SliceChannel(mx.sym.Variable("data"), num_outputs=3, axis=1)
    exe = parts.simple_bind(device, data=(2, 6))
    assert [o.shape for o in exe.outputs] == [(2, 2)] * 3

    data = mx.sym.Variable("data")
    sym = mx.sym.clip(data, a_min=-0.5, a_max=0.5, name="c") * 2
    exe = sym.simple_bind(device, data=(2, 2))
    seen = []
    exe.set_monitor_callback(lambda name, arr: seen.append((name.decode(),
                                                            arr.asnumpy().copy())),
                             monitor_all=True)
    value = np.array([[-1, 0.25], [0.75, 0]], np.float32)
    out = exe.forward(is_train=True, data=value)[0]
    names = [n for n, _ in seen]
    # MXNet's names: clip has no input names of its own (input0), and an input that is
    # a variable is reported under the variable's name first
    assert names[:3] == ["data", "c_input0", "c_output"]
    assert names[-1] == sym.list_outputs()[0]
    np.testing.assert_array_equal(dict(seen)["c_output"], np.clip(value, -0.5, 0.5))
    np.testing.assert_array_equal(out.asnumpy(), 2 * np.clip(value, -0.5, 0.5))
    exe.set_monitor_callback(None)
    seen.clear()
    exe.forward()
    assert seen == []


def test_executor_write_gradients_without_a_path_are_zero(device):
    """'write' gradients of arguments that no differentiable path reaches are zeros
    after backward (MXNet writes them), not left as they were; bind ignores a
    ``None`` entry for a name the graph lacks (``{'b': None}`` with no_bias)."""
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    sym = (a != b) + a * 2
    ga = mx.nd.ones((2, 2), ctx=device) * 5
    gb = mx.nd.ones((2, 2), ctx=device) * 5
    exe = sym.bind(device, args={"a": mx.nd.ones((2, 2), ctx=device),
                                 "b": mx.nd.zeros((2, 2), ctx=device), "c": None},
                   args_grad=[ga, gb])
    for _ in range(2):
        exe.forward(is_train=True)
        exe.backward([mx.nd.ones((2, 2), ctx=device)])
        np.testing.assert_array_equal(ga.asnumpy(), np.full((2, 2), 2.0))
        np.testing.assert_array_equal(gb.asnumpy(), np.zeros((2, 2)))


def test_symbol_arithmetic_is_elementwise_as_in_mxnet():
    """Two symbols combine with MXNet's same-shape ops (elemwise_add, _power...), named
    as MXNet names them; shapes then infer both ways, and mismatches are refused."""
    a, b = mx.sym.var("a"), mx.sym.var("b")
    for expr, op, name in [(a + b, "elemwise_add", "_plus"), (a - b, "elemwise_sub", "_minus"),
                           (a * b, "elemwise_mul", "_mul"), (a / b, "elemwise_div", "_div"),
                           (a ** b, "_power", "_power"), (a % b, "_mod", "_mod"),
                           (a > b, "_greater", "_greater"), (a + 1, "_plus_scalar",
                                                              "_plusscalar"),
                           (-a, "_mul_scalar", "_mulscalar")]:
        node = json.loads(expr.tojson())["nodes"][-1]
        assert node["op"] == op and node["name"].rstrip("0123456789") == name
        args, outs, _ = expr.infer_shape(a=(2, 3))
        assert outs == [(2, 3)] and all(s == (2, 3) for s in args)
    assert mx.sym.broadcast_add(a, b).infer_shape(a=(2, 3), b=(1, 3))[1] == [(2, 3)]
    with pytest.raises(MXCoreError, match="needs inputs of one shape"):
        (a + b).infer_shape(a=(2, 3), b=(1, 3))


def test_shapes_inferred_backwards():
    """MXNet's inference runs both ways: the unknown dimensions of ones(shape=-1...),
    of a reshape's input and of variables behind transpose are decided by what the graph
    later does with them, and bind gives the arrays those shapes."""
    o1 = mx.sym.ones(shape=(2, -1))
    t = mx.sym.transpose(mx.sym.ones(shape=(3, -1)))
    out = (o1 + t).bind(mx.cpu(), args={}).forward()[0]
    np.testing.assert_array_equal(out.asnumpy(), np.full((2, 3), 2.0))
    v = mx.sym.var("v")
    net = mx.sym.elemwise_add(mx.sym.Reshape(v, shape=(0, -1)), mx.sym.ones(shape=(2, 75)))
    assert net.infer_shape(v=(0, 3, 5, 5)) == ([(2, 3, 5, 5)], [(2, 75)], [])
    x, w = mx.sym.var("x"), mx.sym.var("w")
    both = mx.sym.transpose(w) + mx.sym.relu(x)
    assert both.infer_shape(x=(4, 2))[0] == [(2, 4), (4, 2)]
    # and the same graph refuses shapes that only a second pass shows to disagree
    s3 = mx.sym.transpose(v) + (x + v)
    with pytest.raises(MXCoreError, match="one shape"):
        s3.simple_bind(mx.cpu(), x=(2, 3), grad_req="null")
    with pytest.raises(MXCoreError, match="does not decide"):
        mx.sym.ones(shape=(2, -1)).bind(mx.cpu(), args={})


def test_reshape_target_shape_and_upsampling_weight():
    net = mx.sym.load_json(mx.sym.Reshape(mx.sym.var("d"), target_shape=(2, 0)).tojson())
    assert net.infer_shape(d=(2, 3, 5, 5))[1] == [(2, 75)]
    assert mx.nd.Reshape(mx.nd.ones((2, 3, 4)), target_shape=(0, 0),
                         keep_highest=True).shape == (2, 12)
    up = mx.sym.UpSampling(mx.sym.var("data"), sample_type="bilinear", scale=3, num_filter=2,
                           name="up")
    assert up.list_arguments() == ["data", "up_weight"]
    assert up.infer_shape(data=(1, 2, 4, 4)) == ([(1, 2, 4, 4), (2, 1, 5, 5)],
                                                 [(1, 2, 12, 12)], [])


def test_integer_arguments_get_gradients_through_cast():
    """As in MXNet, an int32 argument's gradient through Cast is the head gradient in
    int32 (truncated); an integer index's gradient stays 0."""
    x = mx.sym.Variable("x", dtype=np.int32)
    exe = mx.sym.Cast(x, dtype=np.float32).simple_bind(mx.cpu(), x=(2, 2))
    exe.arg_arrays[0][:] = np.array([[1, 2], [3, 4]])
    exe.forward(is_train=True)
    exe.backward(mx.nd.array([[1.7, -2.5], [0.2, 9.9]]))
    assert exe.grad_arrays[0].dtype == np.int32
    np.testing.assert_array_equal(exe.grad_arrays[0].asnumpy(), [[1, -2], [0, 9]])
    data, idx = mx.sym.var("data"), mx.sym.Variable("idx", dtype=np.int32)
    exe = mx.sym.take(data, idx).simple_bind(mx.cpu(), data=(4, 2), idx=(3,))
    exe.grad_dict["idx"][:] = 5
    exe.arg_dict["idx"][:] = np.array([0, 2, 2])
    exe.forward(is_train=True)
    exe.backward(mx.nd.ones((3, 2)))
    np.testing.assert_array_equal(exe.grad_dict["idx"].asnumpy(), [0, 0, 0])
    np.testing.assert_array_equal(exe.grad_dict["data"].asnumpy()[:, 0], [1, 0, 2, 0])
