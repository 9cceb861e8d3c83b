"""The vision model zoo against MXNet 1.9.1's, and gluon.contrib.nn.

tests/data/mxnet_model_zoo_params.json was written by tools/mxnet_model_zoo_names.py
from MXNet 1.9.1: for every model, the structural parameter names (what
``save_parameters`` writes), the ``collect_params()`` names below the model's prefix
and the shapes, in order; and for a few models the outputs on a fixed input with
every parameter set by the tool's ``deterministic_values``.

The big models (deep ResNets, VGG 13-19, DenseNet 161-201, Inception V3) run only
with ``MXCORE_LONG_TESTS=1`` (they are marked ``long``).
"""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

import mxcore as mx
from mxcore.base import MXCoreError
from mxcore.gluon import nn
from mxcore.gluon.contrib import nn as cnn
from mxcore.gluon.model_zoo import model_store, vision

REPO = Path(__file__).resolve().parents[2]
FIXTURE = json.loads((REPO / "tests" / "data" / "mxnet_model_zoo_params.json").read_text())


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        "mxnet_model_zoo_names", REPO / "tools" / "mxnet_model_zoo_names.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOOL = _load_tool()

SLOW = {"resnet101_v1", "resnet152_v1", "resnet101_v2", "resnet152_v2", "vgg13", "vgg16",
        "vgg19", "vgg13_bn", "vgg16_bn", "vgg19_bn", "densenet161", "densenet169",
        "densenet201", "inceptionv3"}

# families whose parameter shapes do not depend on the image size: their name/shape
# checks run on 32x32 images (the others end in a fixed-size pooling or a Dense layer
# sized by the image, and use the size the fixture records)
SIZE_FREE = ("resnet", "mobilenet")


def _slow_unless_asked(name: str) -> list:
    return [pytest.mark.long] if name in SLOW else []


def _param(entry):
    label = entry["name"] + ("" if entry["kwargs"] else "-classes1000")
    return pytest.param(entry, id=label, marks=_slow_unless_asked(entry["name"]))


def _zero_initialized(net, ctx=None):
    """Initialise with zeros (fast for the 100M-parameter VGG heads); only shapes matter."""
    net.collect_params().setattr("init", "zeros")
    net.initialize(ctx=ctx)
    return net


# names and shapes --------------------------------------------------------------------------

@pytest.mark.parametrize("entry", [_param(e) for e in FIXTURE["models"]])
def test_parameter_names_and_shapes_match_mxnet(entry):
    net = _zero_initialized(vision.get_model(entry["name"], **entry["kwargs"]))
    shape = tuple(entry["input"])
    if entry["name"].startswith(SIZE_FREE):
        shape = shape[:2] + (32, 32)
    out = net(mx.nd.zeros(shape))
    assert list(out.shape) == [shape[0]] + entry["output"][1:]
    got = [[key, p.name[len(net.prefix):], list(p.shape)]
           for key, p in net._collect_params_with_prefix().items()]
    want = entry["params"]
    assert [g[0] for g in got] == [w[0] for w in want]  # structural names, in order
    assert got == want  # and the collect_params() names and the shapes
    assert list(net.collect_params().keys()) == [net.prefix + w[1] for w in want]
    assert re.fullmatch(type(net).__name__.lower() + r"\d+_", net.prefix)  # resnetv10_


def test_the_fixture_covers_every_mxnet_model():
    mxnet_names = {"resnet18_v1", "resnet34_v1", "resnet50_v1", "resnet101_v1",
                   "resnet152_v1", "resnet18_v2", "resnet34_v2", "resnet50_v2",
                   "resnet101_v2", "resnet152_v2", "vgg11", "vgg13", "vgg16", "vgg19",
                   "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn", "alexnet", "densenet121",
                   "densenet161", "densenet169", "densenet201", "squeezenet1.0",
                   "squeezenet1.1", "inceptionv3", "mobilenet1.0", "mobilenet0.75",
                   "mobilenet0.5", "mobilenet0.25", "mobilenetv2_1.0", "mobilenetv2_0.75",
                   "mobilenetv2_0.5", "mobilenetv2_0.25"}
    assert {e["name"] for e in FIXTURE["models"]} == mxnet_names
    assert set(vision._models) == mxnet_names | {"lenet"}
    assert FIXTURE["mxnet_version"] == "1.9.1"


def test_constructors_and_get_model_build_the_same_models():
    pairs = [("resnet50_v2", vision.resnet50_v2, vision.ResNetV2),
             ("mobilenetv2_0.5", vision.mobilenet_v2_0_5, vision.MobileNetV2),
             ("squeezenet1.0", vision.squeezenet1_0, vision.SqueezeNet),
             ("MobileNet0.75", vision.mobilenet0_75, vision.MobileNet),
             ("densenet169", vision.densenet169, vision.DenseNet),
             ("vgg13_bn", vision.vgg13_bn, vision.VGG),
             ("inceptionv3", vision.inception_v3, vision.Inception3),
             ("alexnet", vision.alexnet, vision.AlexNet)]
    for name, fn, cls in pairs:
        a, b = vision.get_model(name, classes=7), fn(classes=7)
        assert type(a) is type(b) is cls
        assert list(a._collect_params_with_prefix()) == list(b._collect_params_with_prefix())
    assert isinstance(vision.get_resnet(1, 34), vision.ResNetV1)
    assert isinstance(vision.get_resnet(2, 101).features[5][0], vision.BottleneckV2)
    assert isinstance(vision.get_resnet(1, 18).features[4][0], vision.BasicBlockV1)
    assert isinstance(vision.resnet50_v1().features[4][0], vision.BottleneckV1)
    assert isinstance(vision.resnet34_v2().features[5][0], vision.BasicBlockV2)
    assert vision.vgg16_bn(batch_norm=False)._collect_params_with_prefix().keys() == \
        vision.vgg16_bn()._collect_params_with_prefix().keys()  # _bn always has BatchNorm


def test_reprs_follow_mxnet():
    net = vision.resnet18_v1(classes=10)
    assert repr(net.features[5][0].downsample[0]) == (
        "Conv2D(64 -> 128, kernel_size=(1, 1), stride=(2, 2), bias=False)")
    assert repr(net.output) == "Dense(512 -> 10, linear)"
    v2 = vision.mobilenet_v2_0_25(classes=10)
    assert repr(v2.features[3].out[3]) == ("Conv2D(None -> 8, kernel_size=(3, 3), "
                                           "stride=(1, 1), padding=(1, 1), groups=8, bias=False)")


def test_bad_arguments_are_clear_errors():
    with pytest.raises(MXCoreError, match=r"get_resnet: no ResNet of depth 20; choose one of "
                                          r"\[18, 34, 50, 101, 152\]"):
        vision.get_resnet(1, 20)
    with pytest.raises(MXCoreError, match="version must be 1 or 2, got 3"):
        vision.get_resnet(3, 18)
    with pytest.raises(MXCoreError, match="get_vgg: no VGG of depth 12"):
        vision.get_vgg(12)
    with pytest.raises(MXCoreError, match="SqueezeNet: version must be one of"):
        vision.SqueezeNet("2.0")
    with pytest.raises(MXCoreError, match="ResNetV1: channels needs one entry more"):
        vision.ResNetV1(vision.BasicBlockV1, [2, 2], [64, 64])
    with pytest.raises(vision.UnknownModelError, match=r"'resnet19_v1' is not in the model "
                                                       r"zoo; available: alexnet, densenet121"):
        vision.get_model("resnet19_v1")


# forward passes ----------------------------------------------------------------------------

# (name, input size): the smallest standard size each model takes; the models of the
# numeric tests below are left out (those run a forward pass on every device already)
FORWARD = [("resnet34_v2", 32), ("mobilenet1.0", 32), ("mobilenetv2_0.5", 32), ("vgg11", 32),
           ("resnet152_v1", 32), ("resnet101_v2", 32), ("vgg19_bn", 32),
           ("densenet201", 224), ("inceptionv3", 299)]


@pytest.mark.parametrize("name,size", [
    pytest.param(n, s, id=n, marks=_slow_unless_asked(n)) for n, s in FORWARD])
def test_forward_gives_one_row_of_scores_per_image(device, name, size):
    net = vision.get_model(name, classes=5)
    net.initialize(mx.init.Xavier(), ctx=device)
    x = mx.nd.array(np.random.default_rng(0).uniform(size=(2, 3, size, size)).astype(np.float32),
                    ctx=device)
    out = net(x)
    assert out.shape == (2, 5) and out.context == device
    values = out.asnumpy()
    assert np.isfinite(values).all() and np.abs(values).max() > 0


def test_thumbnail_resnet_keeps_32x32_images_at_full_resolution():
    net = vision.resnet18_v1(classes=10, thumbnail=True)
    net.initialize()
    x = mx.nd.ones((1, 3, 32, 32))
    assert net.features[:2](x).shape == (1, 64, 32, 32)
    assert net(x).shape == (1, 10)
    assert net.features[0].weight.shape == (64, 3, 3, 3)


def test_a_training_step_reaches_every_weight(device):
    """Backward through ReLU6, depthwise convolutions and the inverted residuals; in
    training mode BatchNorm uses the batch and updates its running averages."""
    net = vision.mobilenet_v2_0_25(classes=4)
    net.initialize(mx.init.Xavier(), ctx=device)
    x = mx.nd.array(np.random.default_rng(2).uniform(size=(2, 3, 32, 32)).astype(np.float32),
                    ctx=device)
    net(x)
    before = net.features[1].running_mean.data().asnumpy().copy()
    with mx.autograd.record():
        loss = mx.gluon.loss.SoftmaxCrossEntropyLoss()(net(x), mx.nd.array([0, 3], ctx=device))
    loss.backward()
    weights = {k: p for k, p in net._collect_params_with_prefix().items()
               if k.endswith("weight")}
    assert len(weights) == 1 + 17 * 3 + 2  # stem, 17 bottlenecks, last conv, classifier
    for key, p in weights.items():
        assert np.abs(p.grad(device).asnumpy()).max() > 0, key
    assert not np.allclose(net.features[1].running_mean.data().asnumpy(), before)


def test_hybrid_concurrent_gradient_is_the_sum_over_branches(device):
    net = cnn.HybridConcurrent(axis=1)
    net.add(nn.Dense(3, in_units=2, use_bias=False), cnn.Identity())
    net.initialize(ctx=device)
    x = mx.nd.array([[1.0, -2.0]], ctx=device)
    x.attach_grad()
    head = np.float32([[1, 2, 3, 4, 5]])
    with mx.autograd.record():
        y = net(x)
    y.backward(mx.nd.array(head, ctx=device))
    w = net[0].weight.data().asnumpy()
    np.testing.assert_allclose(x.grad.asnumpy(), head[:, :3] @ w + head[:, 3:], rtol=1e-6)


# numbers against MXNet ---------------------------------------------------------------------

def _deterministic_file(net, shape, path):
    """Write the tool's deterministic parameter values for ``net`` as an MXNet file."""
    from mxcore import mxnet_params
    _zero_initialized(net)
    net(mx.nd.zeros(shape))
    arrays = {key: TOOL.deterministic_values(key, tuple(p.shape))
              for key, p in net._collect_params_with_prefix().items()}
    mxnet_params.save(path, arrays)


@pytest.mark.parametrize("entry", [_param(e) for e in FIXTURE["numeric"]])
def test_outputs_match_mxnet_with_the_same_parameters(device, entry, tmp_path):
    """The parameters go through an MXNet-format ``{name}-{hash}.params`` file and
    ``pretrained=True``, as a file from MXNet's model store would."""
    name, shape = entry["name"], tuple(entry["input"])
    _deterministic_file(vision.get_model(name, **entry["kwargs"]), shape,
                        tmp_path / f"{name}-0123abcd.params")
    net = vision.get_model(name, pretrained=True, root=str(tmp_path), ctx=device,
                           **entry["kwargs"])
    x = mx.nd.array(TOOL.deterministic_input(shape), ctx=device)
    got = net(x).asnumpy().astype(np.float64)
    want = np.array(entry["output"])
    scale = np.abs(want).max()
    assert scale > 0.1 and np.abs(want).min() < scale  # a real, non-constant output
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * scale)


def test_deterministic_values_are_the_tools():
    w = TOOL.deterministic_values("features.0.weight", (4, 3, 2, 2))
    assert w.dtype == np.float32 and w.shape == (4, 3, 2, 2)
    assert np.abs(w).max() <= np.sqrt(6 / 12) and np.abs(w).max() > 0.5 * np.sqrt(6 / 12)
    var = TOOL.deterministic_values("features.1.running_var", (1000,))
    assert var.min() >= 0.5 and abs(var.mean() - 1) < 0.05
    u = TOOL._uniform(100000, 3)  # uniform on [-1, 1): mean 0, variance 1/3
    assert abs(u.mean()) < 0.01 and abs(u.var() - 1 / 3) < 0.01
    assert not np.array_equal(TOOL._uniform(8, 1), TOOL._uniform(8, 2))


# pretrained files ---------------------------------------------------------------------------

def test_pretrained_without_root_names_the_model():
    with pytest.raises(MXCoreError, match=r"pretrained 'resnet18_v1': mxcore downloads no "
                                          r"pretrained weights; pass root="):
        vision.get_model("resnet18_v1", pretrained=True)
    with pytest.raises(MXCoreError, match=r"pretrained 'mobilenetv2_0.25'"):
        vision.mobilenet_v2_0_25(pretrained=True)
    with pytest.raises(MXCoreError, match=r"pretrained 'vgg11_bn'"):
        vision.vgg11_bn(pretrained=True)
    with pytest.raises(MXCoreError, match=r"pretrained 'squeezenet1.1'"):
        vision.squeezenet1_1(pretrained=True)


def test_pretrained_files_are_found_by_model_name(tmp_path):
    for name in ["mobilenet0.25.safetensors", "mobilenet0.25.params",
                 "mobilenet0.25-0a1b2c3d.params"]:
        (tmp_path / name).write_bytes(b"")
    found = model_store.get_model_file("mobilenet0.25", root=str(tmp_path))
    assert found == str(tmp_path / "mobilenet0.25.safetensors")  # mxcore's own file first
    (tmp_path / "mobilenet0.25.safetensors").unlink()
    assert model_store.get_model_file("mobilenet0.25", str(tmp_path)).endswith("0.25.params")
    (tmp_path / "mobilenet0.25.params").unlink()
    assert model_store.get_model_file("mobilenet0.25", str(tmp_path)).endswith("-0a1b2c3d.params")
    with pytest.raises(MXCoreError, match=r"pretrained 'mobilenet0.5': no parameter file at "
                                          r".*mobilenet0\.5\.safetensors, mobilenet0\.5\.params"):
        model_store.get_model_file("mobilenet0.5", str(tmp_path))


def test_a_saved_model_loads_back_as_pretrained(device, tmp_path):
    net = vision.mobilenet0_25(classes=4)
    net.initialize(mx.init.Xavier(), ctx=device)
    x = mx.nd.array(np.random.default_rng(1).uniform(size=(1, 3, 32, 32)).astype(np.float32),
                    ctx=device)
    want = net(x).asnumpy()
    net.save_parameters(str(tmp_path / "mobilenet0.25.safetensors"))
    again = vision.get_model("mobilenet0.25", classes=4, pretrained=True, root=str(tmp_path),
                             ctx=device)
    np.testing.assert_array_equal(again(x).asnumpy(), want)
    with pytest.raises(MXCoreError, match="shape"):  # another number of classes
        vision.mobilenet0_25(classes=5, pretrained=True, root=str(tmp_path))


# gluon.contrib.nn ---------------------------------------------------------------------------

def test_hybrid_concurrent_concatenates_its_children(device):
    net = cnn.HybridConcurrent(axis=1)
    with net.name_scope():
        net.add(nn.Dense(3, in_units=2), cnn.Identity(), nn.Dense(1, in_units=2))
    net.initialize(ctx=device)
    x = np.array([[1.0, 2.0], [3.0, -1.0]], dtype=np.float32)
    out = net(mx.nd.array(x, ctx=device)).asnumpy()
    w0, b0 = net[0].weight.data().asnumpy(), net[0].bias.data().asnumpy()
    w2, b2 = net[2].weight.data().asnumpy(), net[2].bias.data().asnumpy()
    np.testing.assert_allclose(out, np.concatenate([x @ w0.T + b0, x, x @ w2.T + b2], axis=1),
                               rtol=1e-6, atol=1e-6)
    assert list(net._collect_params_with_prefix()) == ["0.weight", "0.bias", "2.weight",
                                                       "2.bias"]
    assert net.collect_params().keys() == {net.prefix + k for k in
                                           ["dense0_weight", "dense0_bias", "dense1_weight",
                                            "dense1_bias"]}


def test_concurrent_default_axis_is_the_last(device):
    net = cnn.Concurrent()
    net.add(cnn.Identity(), nn.Lambda(lambda x: x * 2))
    x = mx.nd.array(np.arange(6, dtype=np.float32).reshape(2, 3), ctx=device)
    np.testing.assert_array_equal(net(x).asnumpy(),
                                  [[0, 1, 2, 0, 2, 4], [3, 4, 5, 6, 8, 10]])
    assert net.axis == -1 and cnn.HybridConcurrent().axis == -1


def _shuffle_reference(x, factors):
    """out[n, c, i1*f1 + j1, ...] = x[n, c*prod(f) + flat(j1, ...), i1, ...], by loops."""
    n_sub = int(np.prod(factors))
    c_out = x.shape[1] // n_sub
    out = np.zeros(x.shape[:1] + (c_out,) + tuple(d * f for d, f in zip(x.shape[2:], factors)),
                   x.dtype)
    for c in range(c_out):
        for j, offsets in enumerate(np.ndindex(*factors)):  # row-major over the factors
            for pos in np.ndindex(*x.shape[2:]):
                target = tuple(p * f + o for p, f, o in zip(pos, factors, offsets))
                out[(slice(None), c) + target] = x[(slice(None), c * n_sub + j) + pos]
    return out


@pytest.mark.parametrize("layer,factors,shape", [
    (cnn.PixelShuffle1D, (3,), (2, 6, 4)),
    (cnn.PixelShuffle2D, (2, 3), (2, 12, 2, 3)),
    (cnn.PixelShuffle3D, (1, 2, 2), (1, 8, 2, 1, 3)),
])
def test_pixel_shuffle_matches_a_loop_reference(device, layer, factors, shape):
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    block = layer(factors if len(factors) > 1 else factors[0])
    out = block(mx.nd.array(x, ctx=device)).asnumpy()
    np.testing.assert_array_equal(out, _shuffle_reference(x, factors))


def test_pixel_shuffle_2d_matches_mxnet_values(device):
    # MXNet 1.9.1: PixelShuffle2D((2, 3)) of arange(144).reshape(2, 12, 2, 3), image 0 channel 0
    x = mx.nd.array(np.arange(144, dtype=np.float32).reshape(2, 12, 2, 3), ctx=device)
    out = cnn.PixelShuffle2D((2, 3))(x)
    assert out.shape == (2, 2, 4, 9)
    np.testing.assert_array_equal(out.asnumpy()[0, 0], [
        [0, 6, 12, 1, 7, 13, 2, 8, 14], [18, 24, 30, 19, 25, 31, 20, 26, 32],
        [3, 9, 15, 4, 10, 16, 5, 11, 17], [21, 27, 33, 22, 28, 34, 23, 29, 35]])
    assert repr(cnn.PixelShuffle2D(2)) == "PixelShuffle2D((2, 2))"
    assert repr(cnn.PixelShuffle1D(3)) == "PixelShuffle1D(3)"


def test_pixel_shuffle_errors_name_the_layer_and_shape(device):
    with pytest.raises(MXCoreError, match=r"PixelShuffle2D .*multiple of 25 \(factor \(5, 5\)\)"
                                          r", got shape \(1, 12, 2, 3\)"):
        cnn.PixelShuffle2D(5)(mx.nd.zeros((1, 12, 2, 3), ctx=device))
    with pytest.raises(MXCoreError, match=r"PixelShuffle1D .*got shape \(4, 6\)"):
        cnn.PixelShuffle1D(2)(mx.nd.zeros((4, 6), ctx=device))
    with pytest.raises(ValueError, match="PixelShuffle3D: factor must be"):
        cnn.PixelShuffle3D((2, 2))


def test_relu6_clips_to_0_6(device):
    from mxcore.gluon.model_zoo.vision.mobilenet import RELU6
    x = mx.nd.array([-3.0, 0.5, 5.9, 6.0, 8.0], ctx=device)
    np.testing.assert_array_equal(RELU6()(x).asnumpy(), np.float32([0, 0.5, 5.9, 6, 6]))
