"""amp.init: the listed operators of mx.nd, mx.sym and NDArray/Symbol arithmetic cast
their inputs (eagerly, in hybridized plans and in exported graphs), parameters stay
float32 with float32 gradients, init is idempotent and refuses another dtype, and
``_reset`` gives every namespace its own functions back."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import mxcore as mx
from mxcore import amp, autograd, gluon
from mxcore.base import MXCoreError
from mxcore.gluon import nn

nd = mx.nd
RNG = np.random.default_rng(7)


def _mlp(hidden=16, out=4, activation="relu"):
    net = nn.HybridSequential()
    with net.name_scope():
        net.add(nn.Dense(hidden, activation=activation), nn.Dense(out))
    net.initialize(mx.init.Xavier())
    return net


def _x(*shape):
    return nd.array(RNG.standard_normal(shape))


# turning it on and off -------------------------------------------------------------------------
def test_reset_restores_every_namespace_and_operator():
    before = (nd.FullyConnected, nd.softmax, nd.broadcast_add, nd.linalg.gemm2,
              nd.NDArray.__add__, mx.sym.Symbol._binary)
    sym_names = set(vars(mx.sym))
    try:
        amp.init("float16")
        assert nd.FullyConnected is not before[0] and nd.NDArray.__add__ is not before[4]
        assert "FullyConnected" in vars(mx.sym)
    finally:
        amp._reset()
    after = (nd.FullyConnected, nd.softmax, nd.broadcast_add, nd.linalg.gemm2,
             nd.NDArray.__add__, mx.sym.Symbol._binary)
    assert all(a is b for a, b in zip(before, after))
    assert set(vars(mx.sym)) == sym_names  # names from the module __getattr__ removed again
    x = _x(2, 3).astype("float16")
    with pytest.raises(mx.OperatorError, match="different dtypes"):
        x + _x(2, 3)  # AMP off: mixed dtypes are an error again


def test_init_is_idempotent_and_refuses_another_dtype(amp_on):
    amp_on("float16")
    wrapped = nd.FullyConnected
    amp_on("float16")
    assert nd.FullyConnected is wrapped  # nothing wrapped twice
    with pytest.raises(MXCoreError, match="already initialised with target_dtype 'float16'.*"
                                          "'bfloat16'"):
        amp_on("bfloat16")
    with pytest.raises(MXCoreError, match="other operator lists"):
        amp_on("float16", fp32_ops=["softmax"])


@pytest.mark.parametrize("bad", ["float32", "int8", "float64", 3, "fp16"])
def test_bad_target_dtype_names_argument_and_allowed_values(amp_on, bad):
    with pytest.raises(ValueError, match=r"amp.init: target_dtype must be one of 'float16', "
                                         r"'bfloat16', got"):
        amp_on(bad)
    assert amp.amp.initialized_dtype() is None


def test_bad_op_lists_and_layout_optimization(amp_on):
    with pytest.raises(ValueError, match="not an mxcore operator"):
        amp_on("float16", target_precision_ops=["NoSuchOp"])
    with pytest.raises(ValueError, match=r"two lists.*\['softmax'\]"):
        amp_on("float16", target_precision_ops=["softmax"], fp32_ops=["softmax"])
    with pytest.raises(ValueError, match="layout_optimization"):
        amp_on("float16", layout_optimization=True)
    with pytest.raises(TypeError, match=r"rows are \(operator, attribute, \[values\]\)"):
        amp_on("float16", conditional_fp32_ops=[("Activation", "act_type", "softrelu")])
    with pytest.raises(TypeError, match="must be a list of operator names"):
        amp_on("float16", fp32_ops="softmax")
    assert amp.amp.initialized_dtype() is None and nd.FullyConnected.__module__ == "mxcore.ops.nn"


# what is cast ----------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["float16", "bfloat16"])
def test_listed_operators_cast_their_inputs(amp_on, target):
    amp_on(target)
    x, w, b = _x(3, 5), _x(4, 5), _x(4)
    assert str(nd.FullyConnected(x, w, b, num_hidden=4).dtype) == target
    assert str(nd.dot(x, w.T).dtype) == target
    low = x.astype(target)
    assert nd.softmax(low).dtype == np.float32  # fp32 op: float32 inputs
    assert nd.log_softmax(low).dtype == np.float32
    assert nd.sum(low).dtype == np.float32
    assert (low + x).dtype == np.float32  # widest
    assert nd.broadcast_add(low, x).dtype == np.float32
    assert nd.concat(low, x, dim=1).dtype == np.float32
    assert nd.Activation(low, act_type="softrelu").dtype == np.float32  # conditional
    assert str(nd.Activation(low, act_type="relu").dtype) == target
    ints = nd.array([1, 2], dtype="int32")
    assert nd.softmax(nd.array([1.0, 2.0], dtype="float64")).dtype == np.float64  # not cast
    assert nd.amp_cast(ints, dtype=target) is ints


def test_fused_softrelu_runs_in_float32_after_the_product(amp_on):
    """Dense(activation='softrelu') fuses the activation into FullyConnected; under AMP
    the product runs in float16 and softrelu in float32, as separate layers would."""
    net = nn.Dense(6, activation="softrelu", in_units=5)
    net.initialize()
    x = _x(3, 5)
    want = nd.Activation(nd.FullyConnected(x.astype("float16"), net.weight.data().astype(
        "float16"), net.bias.data().astype("float16"), num_hidden=6).astype("float32"),
        act_type="softrelu")
    amp_on("float16")
    out = net(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.asnumpy(), want.asnumpy())


@pytest.mark.parametrize("target", ["float16", "bfloat16"])
def test_parameters_stay_float32_with_float32_gradients(amp_on, target):
    amp_on(target)
    net = _mlp()
    x = _x(8, 10)
    label = nd.array(RNG.integers(0, 4, 8))
    with autograd.record():
        out = net(x)
        loss = gluon.loss.SoftmaxCrossEntropyLoss()(out, label)
    loss.backward()
    assert str(out.dtype) == target and loss.dtype == np.float32
    for p in net.collect_params().values():
        assert p.data().dtype == np.float32 and p.grad().dtype == np.float32
        assert np.isfinite(p.grad().asnumpy()).all() and np.abs(p.grad().asnumpy()).sum() > 0


def test_hybridized_plan_and_export_carry_the_casts(amp_on, tmp_path):
    amp_on("float16")
    net = _mlp()
    x = _x(4, 10)
    eager = net(x)
    net.hybridize()
    hybrid = net(x)
    assert hybrid.dtype == np.float16
    np.testing.assert_array_equal(hybrid.asnumpy(), eager.asnumpy())
    steps = [s.op.name for s in net.last_plan().forward.steps]
    assert "cast" in steps  # the traced program casts before each product
    sym_file, _ = net.export(str(tmp_path / "mlp"), remove_amp_cast=False)
    nodes = json.load(open(sym_file))["nodes"]
    casts = [n for n in nodes if n["op"] == "amp_cast"]
    fcs = [n for n in nodes if n["op"] == "FullyConnected"]
    assert len(fcs) == 2 and len(casts) == 6  # data, weight and bias of each layer
    assert {c["attrs"]["dtype"] for c in casts} == {"float16"}
    by_index = {i: n for i, n in enumerate(nodes)}
    for fc in fcs:
        assert all(by_index[i]["op"] == "amp_cast" for i, _, _ in fc["inputs"])


def test_symbols_get_cast_nodes_also_for_automatic_variables(amp_on):
    amp_on("float16")
    data = mx.sym.var("data")
    fc = mx.sym.FullyConnected(data, num_hidden=3, name="fc")  # fc_weight, fc_bias made here
    node = json.loads(fc.tojson(remove_amp_cast=False))["nodes"]
    fc_node = [n for n in node if n["op"] == "FullyConnected"][0]
    assert [node[i]["op"] for i, _, _ in fc_node["inputs"]] == ["amp_cast"] * 3
    assert fc.list_arguments() == ["data", "fc_weight", "fc_bias"]
    _, out_types, _ = fc.infer_type(data="float32", fc_weight="float32", fc_bias="float32")
    assert out_types == [np.float16]
    bn = mx.sym.BatchNorm(mx.sym.var("x"), name="bn")  # fp32 op: moving stats not cast
    bn_nodes = json.loads(bn.tojson(remove_amp_cast=False))["nodes"]
    bn_node = [n for n in bn_nodes if n["op"] == "BatchNorm"][0]
    ops = [bn_nodes[i]["op"] for i, _, _ in bn_node["inputs"]]
    assert ops == ["amp_cast"] * 3 + ["null", "null"]
    ex = fc.bind(mx.cpu(), {"data": _x(2, 4), "fc_weight": _x(3, 4), "fc_bias": _x(3)})
    assert ex.forward()[0].dtype == np.float16


def test_symbol_arithmetic_uses_multicast(amp_on):
    amp_on("float16")
    a, b = mx.sym.var("a"), mx.sym.var("b")
    s = a + b
    assert "amp_multicast" in s.tojson(remove_amp_cast=False)
    _, out_types, _ = s.infer_type(a="float16", b="float32")
    assert out_types == [np.float32]
    out = s.eval(a=nd.ones((2,), dtype="float16"), b=nd.ones((2,)))[0]
    assert out.dtype == np.float32 and out.asnumpy().tolist() == [2.0, 2.0]
    r = 1.0 / a  # _rdiv_scalar is a float32 op
    _, out_types, _ = r.infer_type(a="float16")
    assert out_types == [np.float32]


def test_ndarray_operators(amp_on):
    amp_on("float16")
    low, high = _x(2, 3).astype("float16"), _x(2, 3)
    for op in (lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b,
               lambda a, b: a / b, lambda a, b: a > b, lambda a, b: a == b):
        assert op(low, high).dtype == np.float32 and op(high, low).dtype == np.float32
    assert (low * 2).dtype == np.float16  # _mul_scalar runs in either precision
    assert (1 / low).dtype == np.float32 and (low ** 2).dtype == np.float32
    x = high.copy()
    x.attach_grad()
    with autograd.record():
        y = (x.astype("float16") * x).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.asnumpy(),
                               2 * high.asnumpy(), rtol=2e-3, atol=2e-3)


def test_loss_output_gradient_is_scaled(amp_on):
    """SoftmaxOutput's gradient is multiplied by the loss scale (its grad_scale)."""
    x, label = _x(4, 3), nd.array([0, 1, 2, 0])
    x.attach_grad()
    with autograd.record():
        out = nd.SoftmaxOutput(x, label)
    out.backward()
    plain = x.grad.asnumpy().copy()
    amp_on("float16")
    with autograd.record():
        out = nd.SoftmaxOutput(x, label)
    out.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), plain * 2.0 ** 16, rtol=1e-6)


def test_user_lists_replace_the_defaults(amp_on):
    amp_on("float16", target_precision_ops=["FullyConnected"], fp32_ops=["dot"],
           conditional_fp32_ops=[("Activation", "act_type", ["tanh"])])
    x = _x(2, 3).astype("float16")
    assert nd.dot(x, x.T).dtype == np.float32
    assert nd.Activation(x, act_type="tanh").dtype == np.float32
    assert nd.Activation(x, act_type="softrelu").dtype == np.float16
    assert nd.softmax(x).dtype == np.float16  # not in the given fp32 list


def test_amp_multicast_and_amp_cast_ops():
    low, high = nd.ones((2,), dtype="float16"), nd.ones((2,))
    out = nd.amp_multicast(low, high, num_outputs=2)
    assert [o.dtype for o in out] == [np.float32, np.float32]
    out = nd.amp_multicast(low, high, num_outputs=2, cast_narrow=True)
    assert [o.dtype for o in out] == [np.float16, np.float16]
    ints = nd.array([1, 2], dtype="int32")
    assert nd.amp_multicast(ints, low, num_outputs=2)[0] is ints
    with pytest.raises(mx.OperatorError, match="amp_multicast.*num_outputs=3 but 2"):
        nd.amp_multicast(low, high, num_outputs=3)
    assert nd.amp_cast(nd.ones((1,), dtype="float64"), dtype="float16").dtype == np.float64
    a, b = mx.sym.var("a"), mx.sym.var("b")
    s = mx.sym.amp_multicast(a, b, num_outputs=2)
    assert len(s) == 2
    assert s.infer_type(a="float16", b="float32")[1] == [np.float32, np.float32]
    assert mx.sym.amp_multicast(a, b, num_outputs=2, cast_narrow=True).infer_type(
        a="float16", b="float32")[1] == [np.float16, np.float16]
    # gradients come back in each input's dtype
    low.attach_grad()
    high.attach_grad()
    with autograd.record():
        p, q = nd.amp_multicast(low, high, num_outputs=2)
        (p * q).sum().backward()
    assert low.grad.dtype == np.float16 and high.grad.dtype == np.float32


def test_amp_multicast_exports_to_onnx(tmp_path):
    pytest.importorskip("onnx")
    from mxcore.onnx import export_model
    a, b = mx.sym.var("a"), mx.sym.var("b")
    m = mx.sym.amp_multicast(a, b, num_outputs=2)
    s = m[0] + m[1]
    path = str(tmp_path / "m.onnx")
    export_model(s, {}, in_shapes=[(2,), (2,)], in_types=[np.float16, np.float32],
                 onnx_file_path=path)
    import onnx
    model = onnx.load(path)
    casts = [n for n in model.graph.node if n.op_type == "Cast"]
    assert len(casts) == 2 and all(c.attribute[0].i == onnx.TensorProto.FLOAT for c in casts)
    assert os.path.getsize(path) > 0


class _Widest(gluon.HybridBlock):
    def hybrid_forward(self, F, a, b):
        p, q = F.amp_multicast(a, b, num_outputs=2)
        return p * q


def test_amp_multicast_in_hybridized_blocks_and_export(tmp_path):
    block = _Widest()
    a, b = nd.array([1.5, 2.0], dtype="float16"), nd.array([3.0, 4.0])
    a.attach_grad()
    b.attach_grad()
    eager = block(a, b)
    block.hybridize()
    with autograd.record():
        out = block(a, b)
    out.backward()
    assert out.dtype == np.float32 and out.asnumpy().tolist() == eager.asnumpy().tolist()
    assert a.grad.dtype == np.float16 and a.grad.asnumpy().tolist() == [3.0, 4.0]
    assert b.grad.asnumpy().tolist() == [1.5, 2.0]
    sym_file, _ = block.export(str(tmp_path / "widest"), remove_amp_cast=False)
    nodes = json.load(open(sym_file))["nodes"]
    multicast = [n for n in nodes if n["op"] == "amp_multicast"]
    assert len(multicast) == 1 and multicast[0]["attrs"]["num_outputs"] == "2"
    loaded = gluon.SymbolBlock.imports(sym_file, ["data0", "data1"])
    assert loaded(a, b).asnumpy().tolist() == eager.asnumpy().tolist()


#: MXNet 1.9.1 under amp.init('float16'): the op nodes of test_symbols_match_mxnet's graph
#: (op, name, dtype, input names), from its tojson(remove_amp_cast=False)
MXNET_NODES = [
    ("amp_cast", "amp_cast0", "float16", ["data"]),
    ("amp_cast", "amp_cast1", "float16", ["fc_weight"]),
    ("amp_cast", "amp_cast2", "float16", ["fc_bias"]),
    ("FullyConnected", "fc", None, ["amp_cast0", "amp_cast1", "amp_cast2"]),
    ("amp_cast", "amp_cast3", "float32", ["fc"]),
    ("softmax", "sm", None, ["amp_cast3"]),
    ("amp_multicast", "amp_multicast0", None, ["sm", "c"]),
    ("elemwise_add", "_plus0", None, ["amp_multicast0", "amp_multicast0"]),
]


def test_symbols_match_mxnet(amp_on):
    amp_on("float16")
    with mx.name.NameManager():
        fc = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=3, name="fc")
        out = mx.sym.softmax(fc, name="sm") + mx.sym.var("c")
    nodes = json.loads(out.tojson(remove_amp_cast=False))["nodes"]
    got = [(n["op"], n["name"], n.get("attrs", {}).get("dtype"),
            [nodes[i]["name"] for i, _, _ in n["inputs"]]) for n in nodes if n["op"] != "null"]
    assert got == MXNET_NODES


def test_export_leaves_the_casts_out_by_default_as_mxnet(amp_on, tmp_path):
    """MXNet's export/save/tojson default to remove_amp_cast=True: the written graph is
    the float32 one, whose users read the casts' inputs; deepcopy keeps them."""
    amp_on("float16")
    net = _mlp()
    x = _x(4, 10)
    net.hybridize()
    net(x)
    sym_file, param_file = net.export(str(tmp_path / "plain"))
    nodes = json.load(open(sym_file))["nodes"]
    assert not [n for n in nodes if n["op"] in ("amp_cast", "amp_multicast")]
    fcs = [n for n in nodes if n["op"] == "FullyConnected"]
    # the first layer reads the data and its parameters directly again
    assert len(fcs) == 2 and [nodes[i]["op"] for i, _, _ in fcs[0]["inputs"]] == ["null"] * 3
    assert nodes[fcs[0]["inputs"][0][0]]["name"] == "data"
    amp._reset()
    loaded = gluon.SymbolBlock.imports(sym_file, ["data"], param_file)
    out = loaded(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.asnumpy(), net(x).asnumpy().astype(np.float32),
                               rtol=2e-2, atol=2e-2)
    sym = mx.sym.load(sym_file)
    assert "amp_cast" not in sym.tojson(remove_amp_cast=False)
