"""Pure op rules: MXNet reshape codes, attribute schemas, inference of
non-differentiable ops (the differentiable ones are checked against kernel
results by the conformance suite)."""
from __future__ import annotations

import numpy as np
import pytest

from mxcore.base import MXCoreError
from mxcore.op import REQUIRED, Op
from mxcore.ops import ALL_OPS
from mxcore.ops.shape import resolve_reshape


@pytest.mark.parametrize("src,spec,out", [
    ((2, 3, 4), (4, 0, 2), (4, 3, 2)),
    ((2, 3, 4), (6, 1, -1), (6, 1, 4)),
    ((2, 3, 4), (-2,), (2, 3, 4)),
    ((2, 3, 4), (2, -2), (2, 3, 4)),
    ((2, 3, 4), (-2, 1, 1), (2, 3, 4, 1, 1)),
    ((2, 3, 4), (-3, 4), (6, 4)),
    ((2, 3, 4, 5), (-3, -3), (6, 20)),
    ((2, 3, 4), (0, -3), (2, 12)),
    ((2, 3, 4), (-4, 1, 2, -2), (1, 2, 3, 4)),
    ((2, 3, 4), (2, -4, -1, 3, -2), (2, 1, 3, 4)),
    ((2, 3, 4), (-1,), (24,)),
])
def test_reshape_codes_match_mxnet_docs(src, spec, out):
    assert resolve_reshape(src, spec) == out


@pytest.mark.parametrize("src,spec", [((2, 3), (4, -1)), ((2, 3), (-1, -1)), ((2, 3), (5,)),
                                      ((2, 3), (-3, -3)), ((6,), (-4, 4, -1)), ((2,), (-5,))])
def test_bad_reshape_specs(src, spec):
    with pytest.raises(MXCoreError):
        resolve_reshape(src, spec)


def test_check_attrs():
    op = Op("demo", attrs={"axis": REQUIRED, "keepdims": False})
    assert op.check_attrs({"axis": 1}) == {"axis": 1, "keepdims": False}
    with pytest.raises(MXCoreError, match="missing required attribute 'axis'"):
        op.check_attrs({})
    with pytest.raises(MXCoreError, match="unknown attribute"):
        op.check_attrs({"axis": 1, "keep": True})


def test_every_core_op_has_inference():
    missing = [op.name for op in ALL_OPS if op.infer is None]
    assert not missing


def _op(name):
    return next(op for op in ALL_OPS if op.name == name)


def test_nondifferentiable_inference():
    f32 = np.dtype("float32")
    assert _op("greater").infer(((2, 1), (1, 3)), (f32, f32), {}) == ([(2, 3)], [f32])
    assert _op("argmax").infer(((2, 3, 4),), (np.dtype("int32"),),
                               {"axis": 1, "keepdims": False}) == ([(2, 4)], [f32])
    assert _op("argmax").infer(((2, 3),), (f32,), {"axis": None, "keepdims": True}) == \
        ([(1, 1)], [f32])
    assert _op("one_hot").infer(((4,),), (np.dtype("int64"),),
                                {"depth": 3, "on_value": 1, "off_value": 0,
                                 "dtype": "int32"}) == ([(4, 3)], [np.dtype("int32")])
    assert _op("arange").infer((), (), {"start": 1, "stop": 4, "step": 0.5, "repeat": 2,
                                        "dtype": "float32"}) == ([(12,)], [f32])
    assert _op("random_normal").infer((), (), {"loc": 0, "scale": 1, "shape": (2, 5),
                                               "dtype": "float64"})[0] == [(2, 5)]
    with pytest.raises(MXCoreError, match="do not broadcast"):
        _op("add").infer(((2, 3), (4,)), (f32, f32), {})
    with pytest.raises(MXCoreError, match="differ"):
        _op("add").infer(((2,), (2,)), (f32, np.dtype("float64")), {})


@pytest.mark.parametrize("g, index, keepdims, axis, out", [
    ((4,), (4,), False, 0, (3, 4)),
    ((1, 4), (4,), True, 0, (3, 4)),      # the index may lack the kept axis
    ((1, 4), (1, 4), True, 0, (3, 4)),
    ((3, 1), (3,), True, 1, (3, 5)),
])
def test_pick_grad_rule_gives_the_picked_arrays_shape(g, index, keepdims, axis, out):
    from mxcore.ops.indexing import PICK_GRAD
    attrs = {"axis": axis, "keepdims": keepdims, "mode": "clip", "size": out[axis]}
    shapes, dtypes = PICK_GRAD.infer_shape_dtype([g, index], ["float32", "int64"], attrs)
    assert tuple(shapes[0]) == out and dtypes[0] == "float32"
