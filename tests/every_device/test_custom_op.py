"""Custom operators written in Python (``mx.operator``, MXNet 1.x's API): eager calls,
autograd, Symbol graphs and executors, hybridized blocks, on every device."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore.base import MXCoreError, OperatorError
from mxcore.gluon import nn

CALLS = {"forward": 0, "backward": 0}


class Square(mx.operator.CustomOp):
    """out = x^2, counting calls; aux is set to 1 (an auxiliary state the op writes);
    backward checks it runs on the instance forward ran on."""

    def forward(self, is_train, req, in_data, out_data, aux):
        CALLS["forward"] += 1
        self.ran_forward = True
        aux[0][:] = 1
        self.assign(out_data[0], req[0], in_data[0] * in_data[0])

    def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
        CALLS["backward"] += 1
        assert getattr(self, "ran_forward", False), "backward on another instance"
        assert (aux[0].asnumpy() == 1).all()
        self.assign(in_grad[0], req[0], 2 * in_data[0] * out_grad[0])


@mx.operator.register("test_square")
class SquareProp(mx.operator.CustomOpProp):
    def __init__(self):
        super().__init__(need_top_grad=True)

    def list_auxiliary_states(self):
        return ["aux"]

    def infer_shape(self, in_shape):
        return in_shape, [in_shape[0]], [in_shape[0]]

    def create_operator(self, ctx, shapes, dtypes):
        return Square()


class HostTanhScaled(mx.operator.CustomOp):
    """tanh(x) * scale through numpy on the host (reads values: untraceable as core
    ops, so it must stay one node in a hybridized plan)."""

    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, is_train, req, in_data, out_data, aux):
        y = np.tanh(in_data[0].asnumpy()) * self.scale
        self.assign(out_data[0], req[0], mx.nd.array(y, ctx=in_data[0].context))

    def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
        t = np.tanh(in_data[0].asnumpy())
        g = out_grad[0].asnumpy() * (1 - t * t) * self.scale
        self.assign(in_grad[0], req[0], mx.nd.array(g, ctx=in_data[0].context))


@mx.operator.register("test_host_tanh")
class HostTanhProp(mx.operator.CustomOpProp):
    def __init__(self, scale="1.0"):
        super().__init__()
        assert isinstance(scale, str), "params reach the prop as strings"
        self.scale = float(scale)

    def create_operator(self, ctx, shapes, dtypes):
        return HostTanhScaled(self.scale)


class Mult(mx.operator.CustomOp):
    def forward(self, is_train, req, in_data, out_data, aux):
        self.assign(out_data[0], req[0], in_data[0] * in_data[1])

    def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
        self.assign(in_grad[0], req[0], in_data[1])  # no out_grad: need_top_grad=False
        self.assign(in_grad[1], req[1], in_data[0])


@mx.operator.register("test_mult_loss")
class MultProp(mx.operator.CustomOpProp):
    def __init__(self):
        super().__init__(need_top_grad=False)

    def list_arguments(self):
        return ["lhs", "rhs"]

    def infer_shape(self, in_shape):
        return in_shape, [in_shape[0]], []

    def create_operator(self, ctx, shapes, dtypes):
        return Mult()


class Ones(mx.operator.CustomOp):
    def __init__(self, shape):
        super().__init__()
        self.shape = shape

    def forward(self, is_train, req, in_data, out_data, aux):
        self.assign(out_data[0], req[0], np.ones(self.shape, np.float32))


@mx.operator.register("test_ones")
class OnesProp(mx.operator.CustomOpProp):
    def __init__(self, rows, cols):
        super().__init__()
        self.shape = (int(rows), int(cols))

    def list_arguments(self):
        return []

    def infer_shape(self, in_shape):
        return [], [self.shape], []

    def infer_type(self, in_type):
        return [], [np.float32], []

    def create_operator(self, ctx, shapes, dtypes):
        return Ones(self.shape)


class Failing(mx.operator.CustomOp):
    def forward(self, is_train, req, in_data, out_data, aux):
        raise ValueError("no good")


@mx.operator.register("test_failing")
class FailingProp(mx.operator.CustomOpProp):
    def create_operator(self, ctx, shapes, dtypes):
        return Failing()


@pytest.fixture
def x(device):
    rs = np.random.RandomState(0)
    return mx.nd.array(rs.uniform(-1, 1, (4, 6)), ctx=device)


def test_forward_backward_with_aux(device, x):
    aux = mx.nd.zeros(x.shape, ctx=device)
    x.attach_grad()
    before = dict(CALLS)
    with mx.autograd.record():
        y = mx.nd.Custom(x, aux, op_type="test_square")
    y.backward(mx.nd.ones(x.shape, ctx=device) * 3)
    assert y.context == device
    np.testing.assert_allclose(y.asnumpy(), x.asnumpy() ** 2, rtol=1e-6)
    np.testing.assert_allclose(x.grad.asnumpy(), 6 * x.asnumpy(), rtol=1e-6)
    assert (aux.asnumpy() == 1).all()  # the op wrote its auxiliary state
    assert (CALLS["forward"] - before["forward"], CALLS["backward"] - before["backward"]) == (1, 1)


def test_inputs_by_name_and_params_as_strings(device, x):
    y = mx.nd.Custom(data=x, op_type="test_host_tanh", scale=2)
    np.testing.assert_allclose(y.asnumpy(), 2 * np.tanh(x.asnumpy()), rtol=1e-6)


def test_no_top_grad_and_two_inputs(device, x):
    lhs, rhs = x, x * 2 + 1
    lhs.attach_grad()
    rhs.attach_grad()
    with mx.autograd.record():
        y = mx.nd.Custom(lhs, rhs, op_type="test_mult_loss")
    y.backward()
    np.testing.assert_allclose(lhs.grad.asnumpy(), rhs.asnumpy())
    np.testing.assert_allclose(rhs.grad.asnumpy(), lhs.asnumpy())


def test_no_inputs(device):
    with device:  # the current device
        y = mx.nd.Custom(rows=3, cols=2, op_type="test_ones")
    assert y.shape == (3, 2) and y.dtype == np.float32 and y.context == device
    assert (y.asnumpy() == 1).all()


def test_errors_name_the_custom_op(device, x):
    with pytest.raises(OperatorError, match=r"'test_failing'.*Failing\.forward raised "
                                            r"ValueError: no good.*\(4, 6\)"):
        mx.nd.Custom(x, op_type="test_failing")
    with pytest.raises(OperatorError, match="no custom operator is registered as 'nope'"):
        mx.nd.Custom(x, op_type="nope")
    with pytest.raises(OperatorError, match=r"'test_square' takes 2 inputs"):
        mx.nd.Custom(x, op_type="test_square")
    with pytest.raises(OperatorError, match="op_type"):
        mx.nd.Custom(x)
    with pytest.raises(MXCoreError, match="pre-1.0"):
        mx.operator.NumpyOp()


def test_registered_names():
    names = mx.operator.get_all_registered_operators()
    assert "test_square" in names and "fully_connected" in names
    with pytest.raises(MXCoreError, match="CustomOpProp subclass"):
        mx.operator.register("bad")(object)


def test_symbol_graph(device, x):
    data, aux = mx.sym.Variable("data"), mx.sym.Variable("aux")
    y = mx.sym.Custom(data=data, aux=aux, name="sq", op_type="test_square") * 2
    assert y.list_arguments() == ["data"]
    assert y.list_auxiliary_states() == ["aux"]
    sq = y.get_internals()["sq_output"]
    assert sq.list_outputs() == ["sq_output"]
    assert y.infer_shape(data=(4, 6)) == ([(4, 6)], [(4, 6)], [(4, 6)])
    for sym in (y, mx.sym.load_json(y.tojson())):
        grad = mx.nd.zeros(x.shape, ctx=device)
        ex = sym.bind(device, args={"data": x}, args_grad={"data": grad},
                      aux_states={"aux": mx.nd.zeros(x.shape, ctx=device)})
        ex.forward(is_train=True)
        ex.backward(mx.nd.ones(x.shape, ctx=device))
        np.testing.assert_allclose(ex.outputs[0].asnumpy(), 2 * x.asnumpy() ** 2, rtol=1e-6)
        np.testing.assert_allclose(grad.asnumpy(), 4 * x.asnumpy(), rtol=1e-6)
        assert (ex.aux_dict["aux"].asnumpy() == 1).all()


class _Net(nn.HybridBlock):
    def __init__(self, op_type, **params):
        super().__init__()
        self.op_type, self.op_params = op_type, params
        with self.name_scope():
            self.fc = nn.Dense(5)

    def hybrid_forward(self, F, x):
        h = F.Custom(self.fc(x), op_type=self.op_type, **self.op_params)
        return F.Custom(h, op_type=self.op_type, **self.op_params) + 1


@pytest.mark.parametrize("op_type,params", [("test_host_tanh", {"scale": 0.5})])
def test_hybridized_equals_eager(device, x, op_type, params):
    results = []
    for hybrid in (False, True):
        net = _Net(op_type, **params)
        net.initialize(mx.init.Constant(0.1), ctx=device)
        if hybrid:
            net.hybridize()
        for _ in range(2):  # the second call replays the plan
            with mx.autograd.record():
                out = net(x)
            out.backward()
        results.append((out.asnumpy(), net.fc.weight.grad(device).asnumpy()))
        if hybrid:
            plan = net.last_plan()
            fwd = [st.op.name for st in plan.forward.steps]
            bwd = [st.op.name for st in plan.backward.steps]
            # both calls stay (custom ops are never merged), one node each way
            assert fwd.count("Custom") == 2, fwd
            assert bwd.count("_backward_Custom") == 2, bwd
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_hybridized_aux_writes_and_instance(device, x):
    class Block(nn.HybridBlock):
        def hybrid_forward(self, F, x, aux):
            return F.Custom(x, aux, op_type="test_square")

    block = Block()
    block.hybridize()
    aux = mx.nd.zeros(x.shape, ctx=device)
    x.attach_grad()
    with mx.autograd.record():
        y = block(x, aux)
    y.backward()
    np.testing.assert_allclose(y.asnumpy(), x.asnumpy() ** 2, rtol=1e-6)
    np.testing.assert_allclose(x.grad.asnumpy(), 2 * x.asnumpy(), rtol=1e-6)


def test_two_equal_calls_both_run(device, x):
    """Custom ops may have side effects: the graph passes never merge, fold or fuse
    them (two equal calls stay two steps, and both run)."""
    class Block(nn.HybridBlock):
        def hybrid_forward(self, F, x):
            return F.Custom(x, op_type="test_host_tanh") + F.Custom(x, op_type="test_host_tanh")

    block = Block()
    block.hybridize()
    y = block(x)
    np.testing.assert_allclose(y.asnumpy(), 2 * np.tanh(x.asnumpy()), rtol=1e-6)
    steps = [st.op.name for st in block.last_plan().forward.steps]
    assert steps.count("Custom") == 2, steps


def test_export_imports_and_get_symbol(device, x, tmp_path):
    net = _Net("test_host_tanh", scale=0.5)
    net.initialize(mx.init.Constant(0.1), ctx=device)
    net.hybridize()
    y = net(x)
    net.export(str(tmp_path / "net"), 0)
    nodes = [n for n in __import__("json").loads((tmp_path / "net-symbol.json").read_text())
             ["nodes"] if n["op"] == "Custom"]
    assert [n["attrs"] for n in nodes] == [{"op_type": "test_host_tanh", "scale": "0.5"}] * 2
    block = mx.gluon.SymbolBlock.imports(str(tmp_path / "net-symbol.json"), ["data"],
                                         str(tmp_path / "net-0000.params"), ctx=device)
    np.testing.assert_array_equal(block(x).asnumpy(), y.asnumpy())

    x.attach_grad()
    with mx.autograd.record():
        z = mx.nd.Custom(x, op_type="test_host_tanh", scale=3) * 2
    sym = mx.autograd.get_symbol(z)
    assert [n.op for n in sym._order() if not n.is_variable] == ["Custom", "_mul_scalar"]
    out = sym.eval(ctx=device, **{sym.list_arguments()[0]: x})[0]
    np.testing.assert_array_equal(out.asnumpy(), z.asnumpy())
