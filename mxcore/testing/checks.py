"""The checks of the conformance kit, one function per property of an op on a device;
``mxcore.testing.ConformanceSuite`` runs them over a table of cases. Each raises an
AssertionError naming what differs."""
from __future__ import annotations

import zlib

import numpy as np

import hal

import mxcore as mx
from mxcore.array import NDArray
from mxcore.testing.table import TOLERANCES, Case, make_input

__all__ = ["check_forward", "check_gradient", "check_second_order_gradient",
           "check_outputs_are_fresh", "wants_gradient"]


def wants_gradient(case: Case) -> bool:
    """Whether the case's first derivatives are checked (float64 and a differentiable
    input needed)."""
    return case.grad and "float64" in case.dtypes and any(i.diff for i in case.inputs)


def _rng(name: str, salt: int = 0) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()) + salt)


def _arrays(case, dtype, device, rng):
    host = [make_input(spec, dtype, rng) for spec in case.inputs]
    return host, [mx.nd.array(a, ctx=device, dtype=a.dtype) for a in host]


def _tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def check_forward(case: Case, dtype: str, device) -> None:
    """The case's call against its numpy reference in ``dtype`` on ``device``: values
    within the dtype's tolerance, shapes, dtypes, device; inputs left unchanged."""
    host, xs = _arrays(case, dtype, device, _rng(case.name))
    outs = _tuple(case.fn(*xs))
    ref_in = [a.astype(np.float64) if hal.is_float(a.dtype) else a for a in host]
    refs = _tuple(case.ref(*ref_in))
    assert len(outs) == len(refs)
    expected = hal.to_dtype(case.out_dtype or dtype)
    for out, ref in zip(outs, refs):
        assert isinstance(out, NDArray)
        assert out.context == device
        assert out.shape == np.shape(ref), f"shape {out.shape} != reference {np.shape(ref)}"
        assert out.dtype == expected, f"dtype {out.dtype} != {expected}"
        got = out.asnumpy()
        if hal.is_float(expected):
            rtol, atol = case.tol.get(expected.name, TOLERANCES[expected.name])
            np.testing.assert_allclose(got.astype(np.float64), np.asarray(ref, np.float64),
                                       rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(got, np.asarray(ref).astype(expected))
    # inputs are never modified by an out-of-place op
    for a, x in zip(host, xs):
        np.testing.assert_array_equal(x.asnumpy(), a)


def _loss_fn(case, weights):
    def loss(xs):
        outs = _tuple(case.fn(*xs))
        total = None
        for o, w in zip(outs, weights):
            term = (o * w).sum()
            total = term if total is None else total + term
        return total
    return loss


def _setup_grad(case, device):
    rng = _rng(case.name, 1)
    host, xs = _arrays(case, "float64", device, rng)
    outs = _tuple(case.fn(*xs))
    weights = [mx.nd.array(rng.normal(size=o.shape), ctx=device, dtype="float64") for o in outs]
    diff = [i for i, spec in enumerate(case.inputs) if spec.diff]
    return rng, host, weights, diff


def _numeric_grad(f, host, diff, device, eps=1e-6):
    grads = []
    for i in diff:
        g = np.zeros_like(host[i])
        it = np.nditer(host[i], flags=["multi_index"])
        for _ in it:
            idx = it.multi_index
            vals = []
            for sign in (1, -1):
                pert = [a.copy() for a in host]
                pert[i][idx] += sign * eps
                vals.append(f(pert))
            g[idx] = (vals[0] - vals[1]) / (2 * eps)
        grads.append(g)
    return grads


def _to_nd(host, device):
    return [mx.nd.array(a, ctx=device, dtype=a.dtype) for a in host]


def _check_infer(outs):
    """The op's shape/dtype rule agrees with what its kernel produced."""
    for out in outs:
        ag = out._ag
        if type(ag) is not tuple or ag[0].inputs is None:
            continue
        node, idx = ag
        shapes, dtypes = node.op.infer_shape_dtype([x.shape for x in node.inputs],
                                                   [x.dtype for x in node.inputs], node.attrs)
        assert tuple(shapes[idx]) == out.shape, f"{node.op.name}: inferred {shapes[idx]}"
        assert hal.to_dtype(dtypes[idx]) == out.dtype, f"{node.op.name}: inferred {dtypes[idx]}"


def check_gradient(case: Case, device) -> None:
    """First derivatives (autograd.grad and backward) against float64 central finite
    differences; the op's shape/dtype rule against what its kernel produced."""
    rng, host, weights, diff = _setup_grad(case, device)
    loss = _loss_fn(case, weights)
    xs = _to_nd(host, device)
    for i in diff:
        xs[i].attach_grad()
    with mx.autograd.record():
        outs = _tuple(case.fn(*xs))
        _check_infer(outs)
        L = loss(xs)
    analytic = mx.autograd.grad(L, [xs[i] for i in diff], retain_graph=True)
    numeric = _numeric_grad(lambda h: float(loss(_to_nd(h, device)).asscalar()), host, diff,
                            device)
    for i, a, n in zip(diff, analytic, numeric):
        assert a.shape == host[i].shape and a.dtype == np.float64
        np.testing.assert_allclose(a.asnumpy(), n, rtol=1e-5, atol=1e-6,
                                   err_msg=f"gradient of input {i}")
    # backward() writes the same gradients into .grad
    L.backward()
    for i, a in zip(diff, analytic):
        np.testing.assert_allclose(xs[i].grad.asnumpy(), a.asnumpy(), rtol=1e-12, atol=0)


def check_second_order_gradient(case: Case, device) -> None:
    """Second derivatives (a directional derivative of the gradient) against finite
    differences of the first, in float64."""
    rng, host, weights, diff = _setup_grad(case, device)
    loss = _loss_fn(case, weights)
    vs = [mx.nd.array(rng.normal(size=host[i].shape), ctx=device, dtype="float64") for i in diff]

    def directional(h, create_graph):
        xs = _to_nd(h, device)
        for i in diff:
            xs[i].attach_grad()
        with mx.autograd.record():
            L = loss(xs)
            gs = mx.autograd.grad(L, [xs[i] for i in diff], create_graph=create_graph)
            M = None
            for g, v in zip(gs, vs):
                term = (g * v).sum()
                M = term if M is None else M + term
        return xs, M

    xs, M = directional(host, True)
    if M._ag is None:  # the first-order gradient does not depend on the inputs
        analytic = [np.zeros_like(host[i]) for i in diff]
    else:
        analytic = [g.asnumpy() for g in mx.autograd.grad(M, [xs[i] for i in diff])]
    numeric = _numeric_grad(lambda h: float(directional(h, False)[1].asscalar()), host, diff,
                            device, eps=1e-5)
    for i, a, n in zip(diff, analytic, numeric):
        np.testing.assert_allclose(a, n, rtol=1e-4, atol=1e-5,
                                   err_msg=f"second-order gradient of input {i}")


# the memory contract the threaded engine orders kernels by --------------------------------
class _ViewRecorder:
    """The naive engine, noting every kernel whose output shares its root array with an
    input while its operator does not declare ``views``."""

    name = "naive"

    def __init__(self):
        from mxcore.threaded_engine import ThreadedEngine
        self.ops = ThreadedEngine._build_ops()
        self.breaches = set()

    def push(self, fn, args, attrs, mutates=(), device=None):
        from mxcore.threaded_engine import _root
        out = fn(*args, **attrs)
        op = self.ops.get(fn) or self.ops.get(getattr(fn, "__wrapped__", None))
        if op is not None and not op.views and not mutates and op.overwrites is None:
            roots = {id(_root(a)) for a in args if hasattr(a, "shape")}
            for o in (out if type(out) is tuple else (out,)):
                if getattr(o, "base", None) is not None and id(_root(o)) in roots:
                    self.breaches.add(op.name)
        return out

    def wait_to_read(self, data):
        pass

    def wait_all(self):
        pass

    def resolve(self, data):
        return data


def check_outputs_are_fresh(case: Case, device) -> None:
    """A kernel returns new memory unless its operator says ``views=True`` (reshape,
    getitem, split): the threaded engine gives fresh outputs variables of their own and
    would run a write to a view's base beside a read of the view otherwise."""
    from mxcore import engine
    rec = _ViewRecorder()
    old = engine.set_engine(rec)
    try:
        dtype = "float64" if "float64" in case.dtypes else case.dtypes[0]
        _, xs = _arrays(case, dtype, device, _rng(case.name))
        diff = [x for x, spec in zip(xs, case.inputs) if spec.diff and dtype == "float64"]
        for x in diff:
            x.attach_grad()
        with mx.autograd.record():
            outs = _tuple(case.fn(*xs))
        if diff and case.grad:
            mx.autograd.backward([o for o in outs if o.dtype == np.float64])
    finally:
        engine.set_engine(old)
    assert not rec.breaches, f"kernels returned views of their inputs: {sorted(rec.breaches)}"
