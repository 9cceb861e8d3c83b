"""Model-zoo graphs built on symbols name their nodes exactly as MXNet 1.9.1 does
(tests/data/mxnet_graph_names.json, written by tools/mxnet_graph_names.py), so
``get_internals()['..._output']`` lookups written for MXNet work."""
from __future__ import annotations

import json
import os

import pytest

import mxcore as mx

with open(os.path.join(os.path.dirname(__file__), "..", "data", "mxnet_graph_names.json")) as f:
    NAMES = json.load(f)["names"]


@pytest.mark.parametrize("model", sorted(NAMES))
def test_model_zoo_graph_names_match_mxnet(model):
    net = mx.gluon.model_zoo.vision.get_model(model)
    got = net(mx.sym.var("data")).get_internals().list_outputs()
    # the fixture's models were each the first of their class in a fresh process
    first = net._alias() + "0_"
    assert [n.replace(net.prefix, first, 1) for n in got] == NAMES[model]


def test_layer_node_names():
    dense = mx.gluon.nn.Dense(8, activation="tanh", prefix="test_")
    assert dense(mx.sym.var("data")).list_outputs() == ["test_tanh_fwd_output"]
    conv = mx.gluon.nn.Conv2D(4, 3, prefix="c_")
    assert conv(mx.sym.var("data")).list_outputs() == ["c_fwd_output"]
