"""Executor monitor callbacks (``Executor.set_monitor_callback``): the arrays MXNet 1.9.1's
graph executor reports, with its names and in its order, forward and backward.  The
expected name lists are MXNet 1.9.1's for the same graphs; the values are computed here
with numpy."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx


def _watch(exe, monitor_all=False):
    seen = []
    exe.set_monitor_callback(
        lambda name, arr: seen.append((name.decode(), arr.asnumpy().copy())), monitor_all)
    return seen


def _names(seen):
    return [n for n, _ in seen]


def _fill(exe, seed=0):
    rng = np.random.RandomState(seed)
    for name in sorted(exe.arg_dict):
        a = exe.arg_dict[name]
        a[:] = rng.randint(0, 3, a.shape) if name.endswith("label") else \
            rng.uniform(-1, 1, a.shape)
    for name in sorted(exe.aux_dict):
        exe.aux_dict[name][:] = rng.uniform(0.5, 1, exe.aux_dict[name].shape)


def _mlp():
    data = mx.sym.var("data")
    fc = mx.sym.FullyConnected(data, num_hidden=3, name="fc1")
    act = mx.sym.Activation(fc, act_type="relu", name="relu1")
    return mx.sym.SoftmaxOutput(act, name="softmax")


def _mlp_numpy(exe):
    x = exe.arg_dict["data"].asnumpy().astype(np.float64)
    w = exe.arg_dict["fc1_weight"].asnumpy()
    b = exe.arg_dict["fc1_bias"].asnumpy()
    label = exe.arg_dict["softmax_label"].asnumpy().astype(int)
    fc = x @ w.T + b
    r = np.maximum(fc, 0)
    e = np.exp(r - r.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    g_r = p - np.eye(3)[label]
    g_fc = g_r * (fc > 0)
    return {"fc1_output": fc, "relu1_output": r, "softmax_output": p,
            "softmax_backward_output0": g_r, "softmax_backward_output1": np.zeros(len(x)),
            "relu1_backward_output": g_fc, "fc1_backward_output0": g_fc @ w,
            "fc1_backward_output1": g_fc.T @ x, "fc1_backward_output2": g_fc.sum(axis=0),
            "data": x, "fc1_data": x, "fc1_weight": w, "fc1_bias": b, "relu1_input0": fc,
            "softmax_data": r, "softmax_label": label}


def _check_values(seen, want):
    for name, value in seen:
        np.testing.assert_allclose(value, want[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_forward_and_backward_names_values_and_order():
    exe = _mlp().simple_bind(mx.cpu(), data=(4, 5))
    _fill(exe)
    seen = _watch(exe)
    exe.forward(is_train=True)
    assert _names(seen) == ["fc1_output", "relu1_output", "softmax_output"]
    forward = len(seen)
    exe.backward()
    # the backward nodes of MXNet's gradient graph, one output per input of the forward
    # node (SoftmaxOutput's label included); a loss takes no head gradient
    assert _names(seen[forward:]) == [
        "softmax_backward_output0", "softmax_backward_output1", "relu1_backward_output",
        "fc1_backward_output0", "fc1_backward_output1", "fc1_backward_output2"]
    want = _mlp_numpy(exe)
    _check_values(seen, want)
    for name, grad in (("data", "fc1_backward_output0"), ("fc1_weight", "fc1_backward_output1"),
                       ("fc1_bias", "fc1_backward_output2")):
        np.testing.assert_allclose(exe.grad_dict[name].asnumpy(), want[grad], rtol=1e-5,
                                   atol=1e-6)


def test_monitor_all_names_op_inputs_as_mxnet():
    exe = _mlp().simple_bind(mx.cpu(), data=(4, 5))
    _fill(exe)
    seen = _watch(exe, monitor_all=True)
    exe.forward(is_train=True)
    # an input that is a variable is reported under the variable's own name first, then
    # under the op's name for it (so fc1_weight twice); Activation has no input names
    assert _names(seen) == [
        "data", "fc1_data", "fc1_weight", "fc1_weight", "fc1_bias", "fc1_bias", "fc1_output",
        "relu1_input0", "relu1_output", "softmax_data", "softmax_label", "softmax_label",
        "softmax_output"]
    _check_values(seen, _mlp_numpy(exe))


def test_list_inputs_and_a_variable_feeding_two_ops():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    exe = mx.sym.Concat(a, b, dim=1, name="concat").simple_bind(mx.cpu(), a=(2, 3), b=(2, 2))
    seen = _watch(exe, monitor_all=True)
    exe.forward()
    assert _names(seen) == ["a", "concat_arg0", "b", "concat_arg1", "concat_output"]

    v = mx.sym.var("v")
    net = mx.sym.Group([mx.sym.Activation(v, act_type="tanh", name="act"),
                        mx.sym.exp(v, name="ex")])
    exe = net.simple_bind(mx.cpu(), v=(2, 3))
    _fill(exe)
    seen = _watch(exe, monitor_all=True)
    exe.forward(is_train=True)
    assert _names(seen) == ["v", "act_input0", "act_output", "v", "ex_input0", "ex_output"]
    del seen[:]
    rng = np.random.RandomState(1)
    g0, g1 = rng.randn(2, 3), rng.randn(2, 3)
    exe.backward([mx.nd.array(g0), mx.nd.array(g1)])
    # MXNet's order: depth first from v's gradient, the sum of ex's then act's (the
    # forward nodes in reverse), each after the head gradient it reads
    assert _names(seen) == [
        "_head_grad_1", "_head_grad_1_id_lhs", "_head_grad_1_id_rhs", "_head_grad_1_id_output",
        "ex_backward_output",
        "_head_grad_0", "_head_grad_0_id_lhs", "_head_grad_0_id_rhs", "_head_grad_0_id_output",
        "act_backward_output", "sum_grad_arg0", "sum_grad_arg1", "sum_grad_output"]
    x = exe.arg_dict["v"].asnumpy().astype(np.float64)
    ex, act = g1 * np.exp(x), g0 * (1 - np.tanh(x) ** 2)
    want = {"_head_grad_1": g1, "_head_grad_1_id_lhs": g1, "_head_grad_1_id_rhs": np.exp(x),
            "_head_grad_1_id_output": g1, "ex_backward_output": ex,
            "_head_grad_0": g0, "_head_grad_0_id_lhs": g0, "_head_grad_0_id_rhs": np.tanh(x),
            "_head_grad_0_id_output": g0, "act_backward_output": act,
            "sum_grad_arg0": ex, "sum_grad_arg1": act, "sum_grad_output": ex + act}
    _check_values(seen, want)
    np.testing.assert_allclose(exe.grad_dict["v"].asnumpy(), ex + act, rtol=1e-5)


def test_backward_order_elementwise_graph():
    x, y = mx.sym.var("x"), mx.sym.var("y")
    with mx.name.NameManager():
        mul = mx.sym.elemwise_mul(x, y, name="mul")
        add = mx.sym.elemwise_add(mul, x, name="add")
        net = mx.sym.sin(add, name="sin") + x * 2
    exe = net.simple_bind(mx.cpu(), x=(2, 2), y=(2, 2))
    _fill(exe)
    seen = _watch(exe)
    exe.forward(is_train=True)
    assert _names(seen) == ["mul_output", "add_output", "sin_output", "_mulscalar0_output",
                            "_plus0_output"]
    del seen[:]
    g = np.random.RandomState(2).randn(2, 2)
    exe.backward(mx.nd.array(g))
    # elemwise_add passes its gradient through (no node); x's three gradients are summed
    assert _names(seen) == ["_head_grad_0_id_output", "_mulscalar0_backward_output",
                            "sin_backward_output", "mul_backward_output0",
                            "mul_backward_output1", "sum_grad_output"]
    xv, yv = (exe.arg_dict[n].asnumpy().astype(np.float64) for n in "xy")
    d_sin = g * np.cos(xv * yv + xv)
    want = {"_head_grad_0_id_output": g, "_mulscalar0_backward_output": 2 * g,
            "sin_backward_output": d_sin, "mul_backward_output0": d_sin * yv,
            "mul_backward_output1": d_sin * xv,
            "sum_grad_output": 2 * g + d_sin + d_sin * yv}
    _check_values(seen, want)
    np.testing.assert_allclose(exe.grad_dict["y"].asnumpy(), d_sin * xv, rtol=1e-5)


def test_many_gradients_summed_in_place_as_running_sums():
    # from MXNET_EXEC_INPLACE_GRAD_SUM_CAP (8) gradients on, MXNet adds each into the
    # previous ones' buffer: each is reported as the sum so far, then sum_grad_final
    x = mx.sym.var("x")
    ops = ["sin", "cos", "exp", "tanh", "sigmoid", "square", "abs", "arctan", "softsign"]
    net = mx.sym.Group([getattr(mx.sym, op)(x, name="n" + op) for op in ops])
    exe = net.simple_bind(mx.cpu(), x=(2, 2))
    _fill(exe)
    seen = _watch(exe)
    exe.forward(is_train=True)
    del seen[:]
    exe.backward([mx.nd.ones((2, 2))] * len(ops))
    want_names = []
    for i, op in reversed(list(enumerate(ops))):
        want_names += [f"_head_grad_{i}_id_output", f"n{op}_backward_output"]
    assert _names(seen) == want_names + ["sum_grad_final_output"]
    v = exe.arg_dict["x"].asnumpy().astype(np.float64)
    sig = 1 / (1 + np.exp(-v))
    derivative = {"sin": np.cos(v), "cos": -np.sin(v), "exp": np.exp(v),
                  "tanh": 1 - np.tanh(v) ** 2, "sigmoid": sig * (1 - sig), "square": 2 * v,
                  "abs": np.sign(v), "arctan": 1 / (1 + v * v),
                  "softsign": 1 / (1 + np.abs(v)) ** 2}
    so_far = 0
    got = dict(seen)
    for op in reversed(ops):
        so_far = so_far + derivative[op]
        np.testing.assert_allclose(got[f"n{op}_backward_output"], so_far, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["sum_grad_final_output"], so_far, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(exe.grad_dict["x"].asnumpy(), so_far, rtol=1e-5, atol=1e-6)


def test_zero_and_copied_gradients():
    x, y = mx.sym.var("x"), mx.sym.var("y")
    # BlockGrad has no gradient: MXNet's zeros node for its input
    exe = mx.sym.sin(mx.sym.BlockGrad(x, name="bg"), name="s").simple_bind(mx.cpu(), x=(2, 2))
    _fill(exe)
    exe.grad_dict["x"][:] = 5
    seen = _watch(exe)
    exe.forward(is_train=True)
    del seen[:]
    exe.backward(mx.nd.ones((2, 2)))
    assert _names(seen) == ["bg_backward_output"]
    assert not seen[0][1].any() and not exe.grad_dict["x"].asnumpy().any()
    # one head gradient for two arguments: the second gets a copy
    exe = mx.sym.elemwise_add(x, y, name="pl").simple_bind(mx.cpu(), x=(2, 2), y=(2, 2))
    seen = _watch(exe)
    exe.forward(is_train=True)
    del seen[:]
    g = np.arange(4.0).reshape(2, 2)
    exe.backward(mx.nd.array(g))
    assert _names(seen) == ["_head_grad_0_id_output", "_head_grad_0_id_1_copy_output"]
    for _, value in seen:
        np.testing.assert_array_equal(value, g)
    for name in "xy":
        np.testing.assert_array_equal(exe.grad_dict[name].asnumpy(), g)


@pytest.mark.parametrize("is_train", [True, False])
def test_batch_norm_hidden_outputs(is_train):
    data = mx.sym.var("data")
    bn = mx.sym.BatchNorm(data, fix_gamma=False, eps=1e-3, name="bn1")
    exe = bn.simple_bind(mx.cpu(), data=(4, 3, 2))
    _fill(exe)
    seen = _watch(exe)
    exe.forward(is_train=is_train)
    assert _names(seen) == ["bn1_output", "bn1_mean", "bn1_var"]
    got = dict(seen)
    x = exe.arg_dict["data"].asnumpy().astype(np.float64)
    if is_train:  # the batch's statistics (var: 1/sqrt(var + eps), as MXNet keeps it)
        mean, var = x.mean(axis=(0, 2)), x.var(axis=(0, 2))
    else:  # the moving ones
        mean = exe.aux_dict["bn1_moving_mean"].asnumpy()
        var = exe.aux_dict["bn1_moving_var"].asnumpy()
    np.testing.assert_allclose(got["bn1_mean"], mean, rtol=1e-5)
    np.testing.assert_allclose(got["bn1_var"], 1 / np.sqrt(var + 1e-3), rtol=1e-5)
    gamma, beta = (exe.arg_dict[f"bn1_{n}"].asnumpy() for n in ("gamma", "beta"))
    want = (x - mean[:, None]) / np.sqrt(var[:, None] + 1e-3) * gamma[:, None] + beta[:, None]
    np.testing.assert_allclose(got["bn1_output"], want, rtol=1e-4, atol=1e-5)
    if is_train:
        del seen[:]
        exe.backward(mx.nd.ones((4, 3, 2)))
        # gradients of data, gamma and beta; the auxiliary states have none
        assert _names(seen) == ["_head_grad_0_id_output", "bn1_backward_output0",
                                "bn1_backward_output1", "bn1_backward_output2"]
        np.testing.assert_allclose(got["bn1_output"].shape, (4, 3, 2))
        np.testing.assert_allclose(dict(seen)["bn1_backward_output2"], np.full(3, 8.0))
    # with output_mean_var they are outputs, named as MXNet names them
    shown = mx.sym.BatchNorm(data, output_mean_var=True, name="bn1")
    assert shown.list_outputs() == ["bn1_output", "bn1_mean", "bn1_var"]


def test_other_hidden_outputs():
    data = mx.sym.var("data")
    x = np.random.RandomState(3).randn(2, 4, 3).astype(np.float32)
    cases = [
        (mx.sym.LayerNorm(data, name="ln"), {"ln_mean": x.mean(-1, keepdims=True),
                                              "ln_std": np.sqrt(x.var(-1, keepdims=True) + 1e-5)}),
        (mx.sym.InstanceNorm(data, name="in"), {"in_mean": x.mean(-1), "in_var": x.var(-1)}),
        (mx.sym.L2Normalization(data, name="l2"),
         {"l2_norm": np.sqrt((x * x).sum(axis=(1, 2)) + 1e-10)}),
        (mx.sym.L2Normalization(data, mode="channel", name="l2c"),
         {"l2c_norm": np.sqrt((x * x).sum(axis=1, keepdims=True) + 1e-10)}),
        (mx.sym.LRN(data, nsize=3, alpha=0.3, beta=0.75, knorm=2.0, name="lrn"), None),
    ]
    for sym, want in cases:
        exe = sym.simple_bind(mx.cpu(), data=x.shape, grad_req="null")
        exe.arg_dict["data"][:] = x
        for name in exe.arg_dict:
            if name != "data":
                exe.arg_dict[name][:] = 1.0 if name.endswith("gamma") else 0.0
        seen = _watch(exe)
        exe.forward()
        got = dict(seen)
        if want is None:  # LRN: the divisor, to the power -beta, scales the data
            sq = np.pad(x.astype(np.float64) ** 2, ((0, 0), (1, 1), (0, 0)))
            tmp = 2.0 + 0.3 / 3 * (sq[:, :-2] + sq[:, 1:-1] + sq[:, 2:])
            want = {"lrn_tmp_norm": tmp}
            np.testing.assert_allclose(got["lrn_output"], x * tmp ** -0.75, rtol=1e-5)
        assert _names(seen) == [sym.list_outputs()[0]] + list(want), _names(seen)
        for name, value in want.items():
            np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_mxnet_all_names_lists():
    """MXNet's test_op_all_names_monitor and test_op_output_names_monitor, compared in
    full (MXNet's own test compares a zip of the two lists)."""
    data = mx.sym.Variable("data", shape=(10, 3, 10, 10))
    length = mx.sym.Variable("length", shape=(10, 10, 10))
    cases = [
        (mx.sym.Convolution(data, kernel=(2, 2), num_filter=1, name="conv"),
         ["data", "conv_data", "conv_weight", "conv_weight", "conv_bias", "conv_bias",
          "conv_output"]),
        (mx.sym.Deconvolution(data, kernel=(2, 2), num_filter=1, name="deconv"),
         ["data", "deconv_data", "deconv_weight", "deconv_weight", "deconv_output"]),
        (mx.sym.FullyConnected(data, num_hidden=10, name="fc"),
         ["data", "fc_data", "fc_weight", "fc_weight", "fc_bias", "fc_bias", "fc_output"]),
        (mx.sym.LRN(data, nsize=1, name="lrn"),
         ["data", "lrn_data", "lrn_output", "lrn_tmp_norm"]),
        (mx.sym.Activation(data, act_type="relu", name="act"),
         ["data", "act_input0", "act_output"]),
        (mx.sym.concat(data, data, dim=0, name="concat"),
         ["data", "concat_arg0", "data", "concat_arg1", "concat_output"]),
        (mx.sym.softmax(data, name="softmax"), ["data", "softmax_data", "softmax_output"]),
        (mx.sym.softmax(data, length, axis=1, use_length=True, name="softmax"),
         ["data", "softmax_data", "length", "softmax_length", "softmax_output"]),
        (mx.sym.SoftmaxActivation(data, name="softmax"),
         ["data", "softmax_input0", "softmax_output"]),
        (mx.sym.UpSampling(data, scale=2, sample_type="nearest", name="upsampling"),
         ["data", "upsampling_arg0", "upsampling_output"]),
        (mx.sym.Pooling(data, kernel=(2, 2), pool_type="avg", name="pooling"),
         ["data", "pooling_data", "pooling_output"]),
    ]
    for sym, want in cases:
        for monitor_all in (True, False):
            exe = sym.simple_bind(mx.cpu(), grad_req="null")
            exe.arg_dict["data"][:] = 0.5
            if "length" in exe.arg_dict:
                exe.arg_dict["length"][:] = 2
            seen = []
            exe.set_monitor_callback(lambda name, arr: seen.append(name.decode()), monitor_all)
            exe.forward()
            outputs = [n for n in want if n.startswith(sym.name + "_output")
                       or n == "lrn_tmp_norm"]
            assert seen == (want if monitor_all else outputs)


def test_monitored_gradients_equal_unmonitored():
    data = mx.sym.var("data")
    net = mx.sym.BatchNorm(mx.sym.FullyConnected(data, num_hidden=4, name="fc"),
                           fix_gamma=False, name="bn")
    scale = mx.sym.sum(data, axis=1, keepdims=True, name="s")
    net = mx.sym.LinearRegressionOutput(
        mx.sym.broadcast_mul(mx.sym.tanh(net, name="t"), scale, name="m"), name="lro")
    results = []
    for monitored in (False, True):
        exe = net.simple_bind(mx.cpu(), data=(5, 3), lro_label=(5, 4),
                              grad_req={"data": "write", "fc_weight": "add", "fc_bias": "write",
                                        "bn_gamma": "add", "bn_beta": "null",
                                        "lro_label": "null"})
        _fill(exe)
        for g in exe.grad_dict.values():
            if g is not None:
                g[:] = 0.5
        seen = _watch(exe) if monitored else []
        for _ in range(2):
            exe.forward(is_train=True)
            exe.backward()
        assert any(n.endswith("_backward_output0") for n in _names(seen)) == monitored
        results.append({**{"grad " + k: v.asnumpy() for k, v in exe.grad_dict.items()
                           if v is not None},
                        **{"aux " + k: v.asnumpy() for k, v in exe.aux_dict.items()},
                        "output": exe.outputs[0].asnumpy()})
    plain, monitored = results
    assert plain.keys() == monitored.keys()
    for key in plain:
        np.testing.assert_allclose(monitored[key], plain[key], rtol=1e-5, atol=1e-6,
                                   err_msg=key)


def test_callback_set_or_removed_between_forward_and_backward():
    exe = _mlp().simple_bind(mx.cpu(), data=(4, 5))
    _fill(exe)
    exe.forward(is_train=True)
    exe.backward()
    want = {k: v.asnumpy().copy() for k, v in exe.grad_dict.items()}
    # removed after a monitored forward: backward still right, reporting nothing
    seen = _watch(exe)
    exe.forward(is_train=True)
    exe.set_monitor_callback(None)
    del seen[:]
    exe.backward()
    assert seen == []
    for name, value in want.items():
        np.testing.assert_allclose(exe.grad_dict[name].asnumpy(), value, rtol=1e-6)
    # set after an unmonitored forward: that forward's backward is not reported
    exe.forward(is_train=True)
    seen = _watch(exe)
    exe.backward()
    assert seen == []
    for name, value in want.items():
        np.testing.assert_allclose(exe.grad_dict[name].asnumpy(), value, rtol=1e-6)
    # without a callback the executor keeps no per-node records
    exe.set_monitor_callback(None)
    exe.forward(is_train=True)
    assert exe._segments is None


def test_monitor_pattern_keeps_backward_gradients():
    data = mx.sym.var("data")
    net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(data, num_hidden=3, name="fc1"),
                               name="softmax")
    mod = mx.mod.Module(net, context=mx.cpu())
    mod.bind(data_shapes=[("data", (4, 5))], label_shapes=[("softmax_label", (4,))])
    mod.init_params(mx.init.Normal(1.0))
    mon = mx.monitor.Monitor(1, pattern=".*backward.*")
    mod.install_monitor(mon)
    rng = np.random.RandomState(4)
    batch = mx.io.DataBatch(data=[mx.nd.array(rng.randn(4, 5))],
                            label=[mx.nd.array(np.arange(4) % 3)])
    mon.tic()
    mod.forward_backward(batch)
    res = mon.toc()
    assert [n for _, n, _ in res] == [
        "softmax_backward_output0", "softmax_backward_output1", "fc1_backward_output0",
        "fc1_backward_output1", "fc1_backward_output2"]
    stats = {n: float(s[:-1]) for _, n, s in res}
    grads = dict(zip(mod._exec._arg_names, mod._exec.grad_arrays))
    for name, grad in (("fc1_backward_output1", "fc1_weight"),
                       ("fc1_backward_output2", "fc1_bias")):
        g = grads[grad].asnumpy().astype(np.float64)
        assert stats[name] == pytest.approx(np.sqrt((g * g).mean()), rel=1e-5)
