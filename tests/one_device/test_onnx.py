"""mx.onnx: export checked against onnxruntime, import round trips, bad files, the node
test tool.  Each model is small: the whole file runs in well under a minute."""
import os
import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

import mxcore as mx  # noqa: E402
from mxcore.onnx import OnnxError, importer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _ort():
    return pytest.importorskip("onnxruntime")


def _params(sym, shapes, seed=0):
    rng = np.random.default_rng(seed)
    arg_shapes, _, aux_shapes = sym.infer_shape(**shapes)
    args = {n: mx.nd.array(rng.standard_normal(s).astype("float32") * 0.5)
            for n, s in zip(sym.list_arguments(), arg_shapes) if n not in shapes}
    aux = {n: mx.nd.array(rng.uniform(0.5, 1.5, s).astype("float32"))
           for n, s in zip(sym.list_auxiliary_states(), aux_shapes)}
    return args, aux


def _inputs(shapes, seed=1):
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(s).astype("float32") for n, s in shapes.items()}


def _export_and_compare(tmp_path, sym, shapes, opset, rtol=1e-5, atol=1e-5, feeds=None):
    ort = _ort()
    args, aux = _params(sym, shapes)
    feeds = feeds or _inputs(shapes)
    want = [o.asnumpy() for o in importer.run(sym, args, aux, feeds)]
    path = mx.onnx.export_model(sym, {**args, **aux}, list(shapes.values()),
                                onnx_file_path=str(tmp_path / "m.onnx"), opset_version=opset)
    model = onnx.load(path)
    onnx.checker.check_model(model)
    assert model.opset_import[0].version == opset
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
    return path, args, aux, feeds, want


_VARS = {}


def _var(name="data"):
    if name not in _VARS:
        _VARS[name] = mx.sym.var(name)
    return _VARS[name]


S = mx.sym
X4 = {"data": (2, 3, 6, 6)}
X2 = {"data": (4, 5)}
X3 = {"data": (2, 3, 4)}

LAYERS = {
    "fc_flatten": (lambda: S.FullyConnected(_var(), num_hidden=7, name="fc"), X4),
    "fc_noflatten_nobias": (lambda: S.FullyConnected(_var(), num_hidden=6, flatten=False,
                                                     no_bias=True, name="fc"), X3),
    "conv1d": (lambda: S.Convolution(_var(), kernel=(3,), num_filter=4, pad=(1,), name="c"),
               X3),
    "conv2d_groups": (lambda: S.Convolution(_var(), kernel=(3, 3), num_filter=6, stride=(2, 2),
                                            pad=(1, 1), dilate=(1, 1), num_group=3,
                                            name="c"), X4),
    "conv2d_dilate_nobias": (lambda: S.Convolution(_var(), kernel=(3, 3), num_filter=4,
                                                   dilate=(2, 2), no_bias=True, name="c"), X4),
    "conv3d": (lambda: S.Convolution(_var(), kernel=(2, 2, 2), num_filter=2, name="c"),
               {"data": (1, 2, 4, 4, 4)}),
    "deconv": (lambda: S.Deconvolution(_var(), kernel=(3, 3), num_filter=4, stride=(2, 2),
                                       pad=(1, 1), adj=(1, 1), no_bias=False, name="d"), X4),
    "maxpool_full": (lambda: S.Pooling(_var(), kernel=(3, 3), stride=(2, 2),
                                       pooling_convention="full", pool_type="max"),
                     {"data": (1, 2, 8, 8)}),
    "avgpool_pad": (lambda: S.Pooling(_var(), kernel=(3, 3), stride=(1, 1), pad=(1, 1),
                                      pool_type="avg", count_include_pad=False), X4),
    "avgpool_include_pad": (lambda: S.Pooling(_var(), kernel=(2, 2), pad=(1, 1),
                                              pool_type="avg"), X4),
    "global_pools": (lambda: S.Pooling(_var(), kernel=(1, 1), global_pool=True,
                                       pool_type="avg") +
                     S.Pooling(_var(), kernel=(1, 1), global_pool=True, pool_type="max"), X4),
    "batchnorm": (lambda: S.BatchNorm(_var(), fix_gamma=False, eps=1e-3, name="bn"), X4),
    "batchnorm_fix_gamma": (lambda: S.BatchNorm(_var(), name="bn"), X4),
    "activations": (lambda: S.Activation(_var(), act_type="relu") +
                    S.Activation(_var(), act_type="sigmoid") +
                    S.Activation(_var(), act_type="tanh") +
                    S.Activation(_var(), act_type="softrelu") +
                    S.Activation(_var(), act_type="softsign"), X3),
    "leaky_family": (lambda: S.LeakyReLU(_var(), act_type="leaky", slope=0.1) +
                     S.LeakyReLU(_var(), act_type="elu", slope=0.7) +
                     S.LeakyReLU(_var(), act_type="selu") +
                     S.LeakyReLU(_var(), act_type="gelu"), X3),
    "prelu": (lambda: S.LeakyReLU(_var(), act_type="prelu", name="p"), X4),
    "softmax_family": (lambda: S.softmax(_var(), axis=1, temperature=2.0) +
                       S.log_softmax(_var(), axis=-1) + S.SoftmaxActivation(_var()), X3),
    "softmax_output": (lambda: S.SoftmaxOutput(_var(), name="softmax"), X2),
    "reshape_codes": (lambda: S.reshape(S.Reshape(_var(), shape=(0, -3, -2)),
                                        shape=(-4, 1, 2, -2)), X3),
    "flatten_transpose": (lambda: S.transpose(S.Flatten(_var()), axes=(1, 0)), X4),
    # symbols combine elementwise (same shapes) as in MXNet: broadcasting is asked for
    "concat_split": (lambda: S.broadcast_add(
        S.Concat(*S.split(_var(), num_outputs=3, axis=1), dim=1),
        S.SliceChannel(_var(), num_outputs=3, axis=1, squeeze_axis=True)[1]
        .expand_dims(axis=1)), X4),
    "arithmetic": (lambda: S.broadcast_add(_var(), _var("b")) * _var() -
                   S.broadcast_div(_var(), S.abs(_var("b")) + 1.0) +
                   S.broadcast_maximum(_var(), _var("b")) + S.broadcast_power(
                       S.abs(_var()) + 0.5, _var("b") * 0.1),
                   {"data": (2, 3), "b": (1, 3)}),
    "scalars": (lambda: (((_var() + 1.5) * 2.0 - 0.5) / 3.0) + (1.0 - _var()) +
                (2.0 / (S.abs(_var()) + 1.0)) + (S.abs(_var()) ** 1.5) + (_var() > 0.2)
                + S.broadcast_mod(_var(), S.ones_like(_var()) * 0.7), X3),
    "unary": (lambda: S.exp(_var()) + S.log(S.abs(_var()) + 1) + S.sqrt(S.abs(_var())) +
              S.negative(_var()) + S.square(_var()) + S.floor(_var()) + S.sin(_var()) +
              S.erf(_var()) + S.round(_var() * 3.0), X3),
    "dropout_clip": (lambda: S.clip(S.Dropout(_var(), p=0.5), a_min=-0.3, a_max=0.4), X3),
    "reductions": (lambda: S.broadcast_add(
        S.broadcast_add(S.sum(_var(), axis=1, keepdims=True),
                        S.mean(_var(), axis=(1, 2), keepdims=True)),
        S.broadcast_add(S.max(_var(), axis=2, keepdims=True),
                        S.min(_var(), axis=(1, 2), keepdims=True))), X3),
    "reduce_all_exclude": (lambda: S.sum(_var()) + S.sum(S.mean(_var(), axis=1, exclude=True)),
                           X3),
    "dot_batch_dot": (lambda: S.broadcast_add(
        S.dot(_var(), _var("w"), transpose_b=True),
        S.sum(S.batch_dot(S.reshape(_var(), shape=(2, 2, 2)), S.reshape(_var(), shape=(2, 2, 2)),
                          transpose_a=True))), {"data": (2, 4), "w": (3, 4)}),
    "dot_nd": (lambda: S.dot(_var(), _var("w")), {"data": (2, 3, 4), "w": (4, 5)}),
    "layernorm": (lambda: S.LayerNorm(_var(), name="ln"), X3),
    "layernorm_axis1": (lambda: S.LayerNorm(_var(), axis=1, name="ln"), X3),
    "instancenorm": (lambda: S.InstanceNorm(_var(), name="inorm"), X4),
    "shape_ops": (lambda: S.squeeze(S.expand_dims(S.slice_axis(_var(), axis=2, begin=1,
                                                               end=3), axis=0), axis=0) +
                  S.slice(_var(), begin=(None, None, 1), end=(None, None, 3)), X3),
    "where_like": (lambda: S.where(_var() > 0, S.ones_like(_var()), S.zeros_like(_var())) +
                   S.Cast(S.Cast(_var(), dtype="float64"), dtype="float32"), X3),
    "add_n_copy": (lambda: S.add_n(_var(), S.identity(_var()), S.ElementWiseSum(
        _var(), _var())), X3),
    "lrn": (lambda: S.LRN(_var(), nsize=3, alpha=1e-3, beta=0.75, knorm=2.0), X4),
    "upsampling_pad": (lambda: S.Pad(S.UpSampling(_var(), scale=2, sample_type="nearest"),
                                     mode="constant", pad_width=(0, 0, 0, 0, 1, 2, 2, 1),
                                     constant_value=0.5) +
                       S.Pad(S.UpSampling(_var(), scale=2, sample_type="nearest"),
                             mode="edge", pad_width=(0, 0, 0, 0, 1, 2, 2, 1)), X4),
    "tile_stack": (lambda: S.stack(S.tile(_var(), reps=(1, 2)), S.tile(_var(), reps=(1, 2)),
                                   axis=1), X2),
}


@pytest.mark.parametrize("opset", [13, 21])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_export_matches_onnxruntime(tmp_path, name, opset):
    build, shapes = LAYERS[name]
    _export_and_compare(tmp_path, build(), shapes, opset)


def test_embedding(tmp_path):
    sym = S.Embedding(_var(), input_dim=10, output_dim=4, name="emb")
    idx = {"data": np.array([[1, 3], [9, 0]], dtype="float32")}
    _export_and_compare(tmp_path, sym, {"data": (2, 2)}, 13, feeds=idx)


def _gluon(net, shape, tmp_path, name):
    net.initialize(mx.init.Xavier())
    net.hybridize()
    x = mx.nd.array(np.random.default_rng(0).standard_normal(shape).astype("float32"))
    y = net(x).asnumpy()
    prefix = str(tmp_path / name)
    net.export(prefix)
    return prefix, x.asnumpy(), y


def _ort_run(path, x):
    ort = _ort()
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _mlp():
    net = mx.gluon.nn.HybridSequential()
    net.add(mx.gluon.nn.Dense(16, activation="relu"), mx.gluon.nn.Dropout(0.3),
            mx.gluon.nn.Dense(10))
    return net


def _lenet():
    nn = mx.gluon.nn
    net = nn.HybridSequential()
    net.add(nn.Conv2D(6, 5, activation="tanh"), nn.MaxPool2D(2, 2), nn.Conv2D(16, 3),
            nn.BatchNorm(), nn.Activation("relu"), nn.AvgPool2D(2, 2), nn.Flatten(),
            nn.Dense(32, activation="sigmoid"), nn.Dense(10))
    return net


@pytest.mark.parametrize("opset", [13, 21])
def test_mlp_and_lenet_from_files(tmp_path, opset):
    for name, net, shape in (("mlp", _mlp(), (3, 20)), ("lenet", _lenet(), (2, 1, 20, 20))):
        prefix, x, y = _gluon(net, shape, tmp_path, name)
        path = mx.onnx.export_model(f"{prefix}-symbol.json", f"{prefix}-0000.params", [shape],
                                    np.float32, str(tmp_path / f"{name}.onnx"),
                                    opset_version=opset)
        np.testing.assert_allclose(_ort_run(path, x), y, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model,opset", [("resnet18_v1", 13), ("mobilenet0.25", 21)])
def test_model_zoo(tmp_path, model, opset):
    net = mx.gluon.model_zoo.vision.get_model(model)
    prefix, x, y = _gluon(net, (1, 3, 64, 64), tmp_path, "zoo")
    sym, arg, aux = mx.model.load_checkpoint(prefix, 0)
    path = mx.onnx.export_model(sym, [arg, aux], [(1, 3, 64, 64)],
                                onnx_file_path=str(tmp_path / "zoo.onnx"), opset_version=opset)
    got = _ort_run(path, x)
    np.testing.assert_allclose(got, y, rtol=1e-5, atol=1e-5 * np.abs(y).max())
    # and back: the imported graph computes the same
    sym2, arg2, aux2 = mx.onnx.import_model(path)
    back = importer.run(sym2, arg2, aux2, {"data": x})[0].asnumpy()
    np.testing.assert_allclose(back, y, rtol=1e-5, atol=1e-5 * np.abs(y).max())
    assert set(aux2) and all("running" in k or "moving" in k for k in aux2)


def test_import_round_trip_and_gluon(tmp_path):
    prefix, x, y = _gluon(_lenet(), (2, 1, 20, 20), tmp_path, "lenet")
    path = mx.onnx.export_model(f"{prefix}-symbol.json", f"{prefix}-0000.params",
                                [(2, 1, 20, 20)], onnx_file_path=str(tmp_path / "l.onnx"))
    sym, arg, aux = mx.onnx.import_model(path)
    assert [n for n in sym.list_arguments() if n not in arg] == ["data"]
    out = importer.run(sym, arg, aux, {"data": x})[0].asnumpy()
    np.testing.assert_allclose(out, y, rtol=1e-5, atol=1e-6)
    block = mx.onnx.import_to_gluon(path, mx.cpu())
    np.testing.assert_allclose(block(mx.nd.array(x)).asnumpy(), y, rtol=1e-5, atol=1e-6)
    meta = mx.onnx.get_model_metadata(path)
    assert meta["input_tensor_data"] == [("data", (2, 1, 20, 20))]
    assert meta["output_tensor_data"][0][1] == (2, 10)


def test_import_constant_inputs_and_folding(tmp_path):
    """Shape -> Gather -> Concat -> Reshape (an exported flatten) imports statically."""
    from onnx import TensorProto, helper, numpy_helper
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
             helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["flat"]),
             helper.make_node("MatMul", ["flat", "w"], ["y0"]),
             helper.make_node("Slice", ["y0", "st", "en", "ax1"], ["y1"]),
             helper.make_node("ReduceSum", ["y1", "ax1"], ["y"], keepdims=1)]
    w = np.arange(24, dtype=np.float32).reshape(12, 2) / 10
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array([0], np.int64), "ax"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
             numpy_helper.from_array(w, "w"),
             numpy_helper.from_array(np.array([1], np.int64), "st"),
             numpy_helper.from_array(np.array([100], np.int64), "en"),
             numpy_helper.from_array(np.array([1], np.int64), "ax1")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [2, 3, 4])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, None)], inits)
    path = str(tmp_path / "f.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    sym, arg, aux = mx.onnx.import_model(path)
    assert list(arg) == ["w"]  # shape constants were read, not turned into parameters
    out = importer.run(sym, arg, aux, {"x": x})[0].asnumpy()
    np.testing.assert_allclose(out, (x.reshape(2, 12) @ w)[:, 1:].sum(1, keepdims=True),
                               rtol=1e-5)


def test_bad_files(tmp_path):
    good = _mlp()
    prefix, _, _ = _gluon(good, (3, 20), tmp_path, "mlp")
    path = mx.onnx.export_model(f"{prefix}-symbol.json", f"{prefix}-0000.params", [(3, 20)],
                                onnx_file_path=str(tmp_path / "m.onnx"))
    raw = open(path, "rb").read()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(OnnxError, match="cut.onnx.*truncated"):
        mx.onnx.import_model(str(cut))
    text = tmp_path / "text.onnx"
    text.write_text('{"nodes": []}\n')
    with pytest.raises(OnnxError, match="text.onnx: not an ONNX model"):
        mx.onnx.import_model(str(text))
    with pytest.raises(OnnxError, match="missing.onnx: cannot read"):
        mx.onnx.import_model(str(tmp_path / "missing.onnx"))


def test_unsupported_ops_and_arguments(tmp_path):
    from onnx import TensorProto, helper
    sym = S.Crop(_var(), offset=(1, 1), h_w=(2, 2), name="crop1")
    with pytest.raises(OnnxError, match="'Crop'.*'crop1'.*opset 13"):
        mx.onnx.export_model(sym, {}, [(1, 1, 4, 4)], onnx_file_path=str(tmp_path / "x.onnx"),
                             opset_version=13)
    with pytest.raises(OnnxError, match="opset_version 9"):
        mx.onnx.export_model(S.relu(_var()), {}, [(2,)], opset_version=9,
                             onnx_file_path=str(tmp_path / "x.onnx"))
    with pytest.raises(OnnxError, match="1 shape.*2 input"):
        mx.onnx.export_model(_var() + _var("b"), {}, [(2,)],
                             onnx_file_path=str(tmp_path / "x.onnx"))
    graph = helper.make_graph([helper.make_node("Det", ["x"], ["y"], name="det0")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])])
    path = str(tmp_path / "det.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    with pytest.raises(OnnxError, match="det0.*'Det'.*not supported"):
        mx.onnx.import_model(path)


def test_dynamic_batch_and_operator_support(tmp_path):
    prefix, x, y = _gluon(_mlp(), (3, 20), tmp_path, "mlp")
    path = mx.onnx.export_model(f"{prefix}-symbol.json", f"{prefix}-0000.params", [(3, 20)],
                                onnx_file_path=str(tmp_path / "d.onnx"), dynamic=True,
                                dynamic_input_shapes=[("batch", 20)])
    dim = onnx.load(path).graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param == "batch"
    np.testing.assert_allclose(_ort_run(path, x[:2]), y[:2], rtol=1e-5, atol=1e-6)
    ops = mx.onnx.get_operator_support()
    assert {"Convolution", "FullyConnected", "BatchNorm", "_plus_scalar"} <= set(ops)


def test_import_does_not_load_onnx():
    code = "import sys, mxcore; mxcore.onnx; assert 'onnx' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_cli_export_import(tmp_path):
    prefix, x, y = _gluon(_mlp(), (3, 20), tmp_path, "mlp")
    out = str(tmp_path / "cli.onnx")
    run = [sys.executable, "-m", "mxcore", "onnx"]
    subprocess.run(run + ["export", prefix, "0", "--shape", "3,20", "--opset", "17", "-o", out],
                   check=True, cwd=ROOT, capture_output=True)
    np.testing.assert_allclose(_ort_run(out, x), y, rtol=1e-5, atol=1e-6)
    back = str(tmp_path / "back")
    subprocess.run(run + ["import", out, "-o", back], check=True, cwd=ROOT,
                   capture_output=True)
    sym, arg, aux = mx.model.load_checkpoint(back, 0)
    np.testing.assert_allclose(importer.run(sym, arg, aux, {"data": x})[0].asnumpy(), y,
                               rtol=1e-5, atol=1e-6)
    bad = subprocess.run(run + ["import", str(tmp_path / "mlp-symbol.json"), "-o", back],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode != 0 and "not an ONNX model" in bad.stderr


def test_node_test_tool():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        import onnx_node_tests as tool
    finally:
        sys.path.pop(0)
    names = ["test_relu", "test_conv_with_strides_padding", "test_reshape_negative_dim",
             "test_softmax_axis_1", "test_gemm_default_matrix_bias", "test_det_2d"]
    results = tool.run_cases(tool.collect(names))
    status = {r["name"]: r["status"] for r in results}
    assert status == {**{n: "passed" for n in names[:-1]}, "test_det_2d": "import"}
    s = tool.summary(results)
    assert (s["total"], s["passed"]) == (6, 5) and s["failures_by_op"] == {"Det": {"import": 1}}
