"""AMP's operator lists (mxcore/amp/lists.py): MXNet 1.9.1's lists restricted to mxcore's
operators, every name an operator mxcore runs, no operator in two lists, mxcore's
departures as documented, and the ``list_*`` API with its argument checks."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore import amp
from mxcore.amp import lists
from mxcore.graph import functions

TARGETS = ("float16", "bfloat16")


@pytest.mark.parametrize("target", TARGETS)
def test_every_listed_name_is_an_mxcore_operator(target):
    table = lists.lists_for(target)
    names = (table.lp16 + table.lp16_fp32 + table.fp32 + table.widest + table.loss_output
             + tuple(c[0] for c in table.conditional_fp32))
    missing = []
    for name in names:
        try:
            functions.op_function(name)
        except functions.UnknownGraphOpError:
            missing.append(name)
    assert not missing, f"{target}: listed but not provided by mxcore: {missing}"


@pytest.mark.parametrize("target", TARGETS)
def test_no_operator_is_in_two_lists(target):
    table = lists.lists_for(target)
    groups = {"lp16": table.lp16, "lp16_fp32": table.lp16_fp32, "fp32": table.fp32,
              "widest": table.widest, "conditional": tuple(c[0] for c in table.conditional_fp32)}
    seen = {}
    for group, names in groups.items():
        assert len(set(names)) == len(names), f"{target} {group} repeats a name"
        for name in names:
            assert name not in seen, f"{target}: {name} in {seen.get(name)} and {group}"
            seen[name] = group


@pytest.mark.parametrize("target", TARGETS)
def test_mxcore_departures_from_mxnet(target):
    """Matrix products run in low precision; BatchNorm in float32 (one dtype for data and
    parameters); mxcore's own names join their MXNet operator's list."""
    table = lists.lists_for(target)
    for op in ("FullyConnected", "Convolution", "dot", "batch_dot", "fully_connected",
               "convolution", "matmul"):
        assert op in table.lp16
    for op in ("BatchNorm", "batch_norm", "softmax", "log_softmax", "softmax_ce_loss",
               "SoftmaxOutput", "norm", "sum", "mean", "exp", "log", "LayerNorm"):
        assert op in table.fp32, op
    assert ("Activation", "act_type", ("softrelu",)) in table.conditional_fp32
    assert ("activation", "act_type", ("softrelu",)) in table.conditional_fp32
    assert "broadcast_add" in table.widest and "elemwise_add" in table.widest


def test_per_dtype_lists_follow_mxnet():
    """MXNet 1.9.1 runs Deconvolution and RNN in float16 but keeps them float32 under
    bfloat16, and lists broadcast_mul as a float32 operator for bfloat16."""
    assert {"Deconvolution", "RNN"} <= set(amp.list_lp16_ops("float16"))
    assert {"Deconvolution", "RNN"} <= set(amp.list_fp32_ops("bfloat16"))
    assert "broadcast_mul" in amp.list_widest_type_cast("float16")
    assert "broadcast_mul" in amp.list_fp32_ops("bfloat16")
    assert "Pooling" in amp.list_lp16_fp32_ops("bfloat16")
    assert "Pooling" in amp.list_lp16_fp32_ops("float16")
    # mxcore: Concat takes the widest type of its inputs under both (MXNet: bfloat16 either)
    assert "Concat" in amp.list_widest_type_cast("float16")
    assert "Concat" in amp.list_widest_type_cast("bfloat16")


@pytest.mark.parametrize("target", [*TARGETS, np.float16,
                                    mx.nd.ones((1,), dtype="bfloat16").dtype])
def test_list_functions(target):
    assert "FullyConnected" in amp.list_lp16_ops(target)
    assert "softmax" in amp.list_fp32_ops(target)
    assert "Reshape" in amp.list_lp16_fp32_ops(target) + amp.list_fp32_ops(target)
    assert ("LeakyReLU", "act_type", ["elu", "selu"]) in amp.list_conditional_fp32_ops(target)
    assert "broadcast_add" in amp.list_widest_type_cast(target)
    assert amp.list_loss_output_functions(target) == [
        "SoftmaxOutput", "LinearRegressionOutput", "LogisticRegressionOutput",
        "MAERegressionOutput"]
    assert amp.list_lp16_use_fp32_params(target) is None
    lst = amp.list_lp16_ops(target)
    lst.append("mine")  # a copy: the table is not changed
    assert "mine" not in amp.list_lp16_ops(target)


@pytest.mark.parametrize("fn", [amp.list_lp16_ops, amp.list_fp32_ops, amp.list_lp16_fp32_ops,
                                amp.list_conditional_fp32_ops, amp.list_widest_type_cast,
                                amp.list_loss_output_functions])
@pytest.mark.parametrize("bad", ["float32", "int8", "fp16", None])
def test_list_functions_name_the_argument_and_allowed_values(fn, bad):
    with pytest.raises(ValueError, match=r"target_dtype must be one of 'float16', "
                                         r"'bfloat16', got " + repr(bad).replace("(", r"\(")):
        fn(bad)
