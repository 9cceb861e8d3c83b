"""amp.convert_symbol / convert_model / convert_hybrid_block: the converted graph has
amp_cast nodes of the right dtype before the low-precision and float32 operators, float32
outputs close to the float32 model's, excluded nodes stay float32, and
``cast_optional_params`` stores the parameters in the low-precision type."""
from __future__ import annotations

import json

import numpy as np
import pytest

import mxcore as mx
from mxcore import amp
from mxcore.gluon import nn

nd = mx.nd
RNG = np.random.default_rng(11)
TOL = {"float16": 2e-2, "bfloat16": 6e-2}


def _net():
    net = nn.HybridSequential()
    with net.name_scope():
        net.add(nn.Conv2D(4, 3, activation="relu"), nn.BatchNorm(), nn.Flatten(),
                nn.Dense(16, activation="relu"), nn.Dense(5))
    net.initialize(mx.init.Xavier())
    net.hybridize()
    return net


def _x():
    return nd.array(RNG.standard_normal((3, 2, 7, 7)))


def _nodes(sym):
    return json.loads(sym.tojson(remove_amp_cast=False))["nodes"]


def _inputs_of(nodes, op_node):
    return [nodes[i] for i, _, _ in op_node["inputs"]]


def _close(got, want, target):
    scale = np.abs(want).max()
    assert np.abs(got - want).max() <= TOL[target] * scale, (np.abs(got - want).max(), scale)


@pytest.mark.parametrize("target", ["float16", "bfloat16"])
def test_convert_hybrid_block(target):
    net = _net()
    x = _x()
    want = net(x).asnumpy()
    conv = amp.convert_hybrid_block(net, target_dtype=target)
    assert isinstance(conv, mx.gluon.SymbolBlock)
    out = conv(x)
    assert out.dtype == np.float32  # outputs are cast back
    _close(out.asnumpy(), want, target)
    nodes = _nodes(conv._graph)
    assert any(n["op"] == "amp_cast" and n["attrs"]["dtype"] == target for n in nodes)
    internals = conv._graph.get_internals()
    dtypes = dict(zip(internals.list_outputs(), internals.infer_type(data="float32")[1]))
    for node in (n for n in nodes if n["op"] in ("Convolution", "FullyConnected")):
        assert np.dtype(dtypes[node["name"] + "_output"]).name == target
        srcs = _inputs_of(nodes, node)  # a cast, or the activation of a product before
        assert all(s["op"] == "amp_cast" or s["op"] == "Activation" for s in srcs)
    bn = next(n for n in nodes if n["op"] == "BatchNorm")
    assert dtypes[bn["name"] + "_output"] == np.float32
    srcs = _inputs_of(nodes, bn)
    assert srcs[0]["op"] == "amp_cast" and srcs[0]["attrs"]["dtype"] == "float32"
    assert [s["op"] for s in srcs[1:]] == ["null"] * 4  # parameters and statistics as they are
    for p in conv.collect_params().values():
        assert p.data().dtype == np.float32
    conv.hybridize()
    np.testing.assert_array_equal(conv(x).asnumpy(), out.asnumpy())


@pytest.mark.parametrize("target", ["float16", "bfloat16"])
def test_cast_optional_params_stores_low_precision_parameters(target):
    net = _net()
    x = _x()
    want = net(x).asnumpy()
    conv = amp.convert_hybrid_block(net, target_dtype=target, cast_optional_params=True)
    _close(conv(x).asnumpy(), want, target)
    dtypes = {name: str(p.data().dtype) for name, p in conv.collect_params().items()}
    lows = {n for n, d in dtypes.items() if d == target}
    assert lows == {n for n in dtypes if "conv" in n or "dense" in n}, dtypes
    assert all(dtypes[n] == "float32" for n in dtypes if "batchnorm" in n)
    nodes = _nodes(conv._graph)
    casts = [n for n in nodes if n["op"] == "amp_cast"]
    assert not any("weight" in n["name"] or "bias" in n["name"] for n in casts)


def test_excluded_sym_names_keep_a_layer_float32():
    net = _net()
    x = _x()
    want = net(x).asnumpy()
    last = net[4].name + "_fwd"
    conv = amp.convert_hybrid_block(net, excluded_sym_names=[last], cast_optional_params=True)
    nodes = _nodes(conv._graph)
    fc = next(n for n in nodes if n["name"] == last)
    srcs = _inputs_of(nodes, fc)
    assert srcs[0]["op"] == "amp_cast" and srcs[0]["attrs"]["dtype"] == "float32"
    assert [s["op"] for s in srcs[1:]] == ["null", "null"]
    params = conv.collect_params()
    assert params[net[4].weight.name].data().dtype == np.float32
    assert params[net[3].weight.name].data().dtype == np.float16
    # the excluded layer runs in float32: its result is the float32 layer's on its input
    _close(conv(x).asnumpy(), want, "float16")


def test_convert_model_on_a_symbol():
    data = mx.sym.var("data")
    fc = mx.sym.FullyConnected(data, num_hidden=6, name="fc")
    act = mx.sym.Activation(fc, act_type="softrelu", name="act")
    out = mx.sym.softmax(mx.sym.FullyConnected(act, num_hidden=3, name="fc2"), name="sm")
    args = {"fc_weight": nd.array(RNG.standard_normal((6, 4))), "fc_bias": nd.zeros(6),
            "fc2_weight": nd.array(RNG.standard_normal((3, 6))), "fc2_bias": nd.zeros(3)}
    x = nd.array(RNG.standard_normal((5, 4)))
    want = out.eval(data=x, **args)[0].asnumpy()
    sym, arg_params, aux_params = amp.convert_model(out, dict(args), {},
                                                    target_dtype="float16",
                                                    cast_optional_params=True)
    assert aux_params == {}
    assert {k: str(v.dtype) for k, v in arg_params.items()} == dict.fromkeys(args, "float16")
    assert all(v.dtype == np.float32 for v in args.values())  # the given dict is not changed
    nodes = _nodes(sym)
    act_node = next(n for n in nodes if n["name"] == "act")  # softrelu: float32
    assert _inputs_of(nodes, act_node)[0]["attrs"]["dtype"] == "float32"
    sm = next(n for n in nodes if n["name"] == "sm")
    assert _inputs_of(nodes, sm)[0]["attrs"]["dtype"] == "float32"
    got = sym.eval(data=x, **arg_params)[0]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got.asnumpy(), want, atol=1e-2)
    assert sym.attr_dict()["fc_weight"]["__dtype__"] == "float16"
    assert sym.list_arguments() == out.list_arguments()


def test_widest_ops_get_multicast_when_input_types_are_unknown():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    fc = mx.sym.FullyConnected(a, num_hidden=3, name="fc")
    summed = mx.sym.broadcast_add(fc, b, name="add")  # b's dtype is not known
    conv = amp.convert_symbol(summed, data_names=["a", "b"])
    nodes = _nodes(conv)
    add = next(n for n in nodes if n["name"] == "add")
    assert {s["op"] for s in _inputs_of(nodes, add)} == {"amp_multicast"}
    both = mx.sym.broadcast_add(fc, mx.sym.softmax(b), name="add2")  # float16 + float32
    nodes = _nodes(amp.convert_symbol(both, data_names=["a", "b"]))
    add = next(n for n in nodes if n["name"] == "add2")
    assert [s["attrs"]["dtype"] for s in _inputs_of(nodes, add) if s["op"] == "amp_cast"] \
        == ["float32"]


def test_conversion_errors():
    net = nn.Dense(3)
    net.initialize()
    with pytest.raises(mx.MXCoreError, match="hybridize"):
        amp.convert_hybrid_block(net)
    sym = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=2)
    with pytest.raises(ValueError, match=r"amp.convert_symbol: target_dtype must be one of "
                                         r"'float16', 'bfloat16', got 'float32'"):
        amp.convert_symbol(sym, target_dtype="float32")
    with pytest.raises(ValueError, match=r"amp.convert_model: target_dtype must be one of"):
        amp.convert_model(sym, {}, {}, target_dtype="int8")
    with pytest.raises(TypeError, match="sym must be a Symbol"):
        amp.convert_symbol("graph.json")
    with pytest.raises(TypeError, match="arg_params must be a dict"):
        amp.convert_model(sym, [], {})
    with pytest.raises(ValueError, match="two lists"):
        amp.convert_symbol(sym, target_dtype_ops=["FullyConnected"], fp32_ops=["FullyConnected"])
    with pytest.raises(ValueError, match=r"none of AMP's lists"):
        amp.convert_symbol(sym, fp32_ops=["broadcast_add"])
    with pytest.raises(TypeError, match="excluded_sym_names must be a list"):
        amp.convert_symbol(sym, excluded_sym_names="fc")


#: MXNet 1.9.1's convert_symbol on the graph of test_matches_mxnet_convert_symbol (its
#: ``tojson(remove_amp_cast=False)``): (op, name, dtype, input names) of the casts
MXNET_CASTS = {
    False: [("amp_cast", "data_amp_cast_float16", "float16", ["data"]),
            ("amp_cast", "fc_weight_amp_cast_float16", "float16", ["fc_weight"]),
            ("amp_cast", "fc_bias_amp_cast_float16", "float16", ["fc_bias"]),
            ("amp_cast", "fc2_weight_amp_cast_float16", "float16", ["fc2_weight"]),
            ("amp_cast", "fc2_bias_amp_cast_float16", "float16", ["fc2_bias"]),
            ("amp_multicast", "fc2_output_amp_multicast", None, ["fc2", "b"]),
            ("amp_cast", "add_0_amp_cast_float32", "float32", ["add"]),
            ("amp_cast", "fc2_output_amp_cast_float32", "float32", ["fc2"])],
    True: [("amp_cast", "data_amp_cast_float16", "float16", ["data"]),
           ("amp_multicast", "fc2_output_amp_multicast", None, ["fc2", "b"]),
           ("amp_cast", "add_0_amp_cast_float32", "float32", ["add"]),
           ("amp_cast", "fc2_output_amp_cast_float32", "float32", ["fc2"])],
}


@pytest.mark.parametrize("cast_optional_params", [False, True])
def test_matches_mxnet_convert_symbol(cast_optional_params):
    data, b = mx.sym.var("data"), mx.sym.var("b")
    fc = mx.sym.FullyConnected(data, num_hidden=6, name="fc")
    act = mx.sym.Activation(fc, act_type="relu", name="act")
    fc2 = mx.sym.FullyConnected(act, num_hidden=3, name="fc2")
    add = mx.sym.broadcast_add(fc2, b, name="add")
    out = mx.sym.Group([mx.sym.softmax(add, name="sm"),
                        mx.sym.Activation(fc2, act_type="softrelu", name="sr")])
    sym = amp.convert_symbol(out, "float16", data_names=["data", "b"],
                             cast_optional_params=cast_optional_params)
    nodes = _nodes(sym)
    casts = [(n["op"], n["name"], n.get("attrs", {}).get("dtype"),
              [nodes[i]["name"] for i, _, _ in n["inputs"]])
             for n in nodes if n["op"] in ("amp_cast", "amp_multicast")]
    assert casts == MXNET_CASTS[cast_optional_params]
    params = {n["name"]: n.get("attrs", {}).get("__dtype__") for n in nodes if n["op"] == "null"}
    want = "float16" if cast_optional_params else "float32"  # MXNet: type codes 2 and 0
    assert params == {"data": None, "b": None, **dict.fromkeys(
        ["fc_weight", "fc_bias", "fc2_weight", "fc2_bias"], want)}
