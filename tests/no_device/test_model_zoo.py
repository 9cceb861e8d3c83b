"""gluon.model_zoo.vision: models by name, LeNet, pretrained parameters from local files."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore.base import MXCoreError
from mxcore.gluon import nn
from mxcore.gluon.model_zoo import vision


def test_get_model_builds_lenet_by_name():
    assert mx.gluon.model_zoo.vision is vision
    net = vision.get_model("lenet", classes=10)
    assert isinstance(net, vision.LeNet) and isinstance(vision.get_model("LeNet"), vision.LeNet)
    layers = [type(b).__name__ for b in net.features._children.values()]
    assert layers == ["Conv2D", "MaxPool2D", "Conv2D", "MaxPool2D", "Flatten", "Dense", "Dense"]
    assert repr(net.features[0]) == ("Conv2D(None -> 6, kernel_size=(5, 5), stride=(1, 1), "
                                     "padding=(2, 2), Activation(relu))")
    net.initialize(mx.init.Xavier(), ctx=mx.cpu())
    out = net(mx.nd.zeros((3, 1, 28, 28), ctx=mx.cpu()))
    assert out.shape == (3, 10)
    shapes = {k: p.shape for k, p in net._collect_params_with_prefix().items()}
    assert shapes == {"features.0.weight": (6, 1, 5, 5), "features.0.bias": (6,),
                      "features.2.weight": (16, 6, 5, 5), "features.2.bias": (16,),
                      "features.5.weight": (120, 400), "features.5.bias": (120,),
                      "features.6.weight": (84, 120), "features.6.bias": (84,),
                      "output.weight": (10, 84), "output.bias": (10,)}
    assert sum(int(np.prod(s)) for s in shapes.values()) == 61706  # LeNet-5's count


def test_gluon_names_use_the_model_prefix():
    net = vision.lenet(classes=5, prefix="lenet_")
    names = list(net.collect_params().keys())
    assert names[:2] == ["lenet_conv0_weight", "lenet_conv0_bias"]
    assert names[-2:] == ["lenet_dense2_weight", "lenet_dense2_bias"]
    assert net.output._units == 5


def test_unknown_model_lists_the_available_ones():
    with pytest.raises(vision.UnknownModelError,
                       match=r"model 'resnet50_v3' is not in the model zoo; available: "
                             r"alexnet, densenet121, .*, lenet, .*, vgg19_bn$"):
        vision.get_model("resnet50_v3")
    with pytest.raises(ValueError):  # what MXNet raises, for code that catches it
        vision.get_model("alexnet2")
    with pytest.raises(MXCoreError):
        vision.get_model("vgg12")


def test_a_registered_model_is_found(monkeypatch):
    def tiny(pretrained=False, ctx=None, root=None, classes=10, **kwargs):
        return nn.Dense(classes, **kwargs)
    monkeypatch.setitem(vision._models, "tiny", tiny)
    assert isinstance(vision.get_model("tiny", classes=3), nn.Dense)
    with pytest.raises(vision.UnknownModelError,
                       match="available: .*, squeezenet1.1, tiny, vgg11"):
        vision.get_model("huge")


def test_pretrained_needs_a_local_file_and_never_downloads(monkeypatch, tmp_path):
    import urllib.request

    def no_network(*args, **kwargs):
        raise AssertionError("the model zoo must not download")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(MXCoreError, match=r"downloads no pretrained weights; pass root="):
        vision.get_model("lenet", pretrained=True)
    missing = tmp_path / "nothing-here"
    with pytest.raises(MXCoreError, match=r"no parameter file at .*nothing-here .*"
                                          r"lenet\.safetensors"):
        vision.lenet(pretrained=True, root=str(missing))


def test_pretrained_loads_from_a_folder_or_a_file(tmp_path):
    trained = vision.lenet()
    trained.initialize(mx.init.Xavier(), ctx=mx.cpu())
    x = mx.nd.random.normal(shape=(2, 1, 28, 28), ctx=mx.cpu())
    expect = trained(x).asnumpy()
    trained.save_parameters(str(tmp_path / "lenet.safetensors"))
    from_folder = vision.get_model("lenet", pretrained=True, root=str(tmp_path), ctx=mx.cpu())
    np.testing.assert_array_equal(from_folder(x).asnumpy(), expect)
    other = tmp_path / "mine.safetensors"
    (tmp_path / "lenet.safetensors").rename(other)
    from_file = vision.lenet(pretrained=True, root=str(other))
    np.testing.assert_array_equal(from_file(x).asnumpy(), expect)
    with pytest.raises(MXCoreError, match="shape"):  # a file of another model is refused
        vision.lenet(pretrained=True, root=str(other), classes=3)
