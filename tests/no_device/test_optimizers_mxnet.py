"""``mx.test_utils.compare_optimizer`` and ``compare_ndarray_tuple``, the helpers
MXNet 1.x's optimizer tests run a Python reference optimizer against the real one
with: they pass when the two agree and fail when they do not (states before and
after one update, then the weights; a list of shapes goes through the
optimizer's multi-tensor path).  Also: the quick path of ``almost_equal`` gives
numpy's allclose answers."""
from __future__ import annotations

import numpy as np
import pytest

import mxcore as mx
from mxcore import test_utils as tu


class RefSGD(mx.optimizer.Optimizer):
    """SGD with momentum written with NDArray arithmetic (the reference style of
    MXNet's tests); ``skip_wd`` leaves weight decay out (a wrong reference)."""

    def __init__(self, momentum=0.0, skip_wd=False, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum
        self.skip_wd = skip_wd

    def create_state(self, index, weight):
        return mx.nd.zeros(weight.shape, weight.context, dtype=weight.dtype) \
            if self.momentum else None

    def update(self, index, weight, grad, state):
        self._update_count(index)
        lr, wd = self._get_lr(index), 0.0 if self.skip_wd else self._get_wd(index)
        g = grad * self.rescale_grad
        if self.clip_gradient is not None:
            g = mx.nd.clip(g, -self.clip_gradient, self.clip_gradient)
        if state is None:
            weight[:] = (1 - lr * wd) * weight - lr * g
        else:
            state[:] = self.momentum * state - lr * (g + wd * weight)
            weight[:] = weight + state


class RefLAMB(mx.optimizer.Optimizer):
    """One-tensor LAMB from NDArray arithmetic."""

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-6, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon

    def create_state(self, index, weight):
        return (mx.nd.zeros(weight.shape, weight.context, dtype=weight.dtype),
                mx.nd.zeros(weight.shape, weight.context, dtype=weight.dtype))

    def update(self, index, weight, grad, state):
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        t = self._index_update_count[index]
        mean, var = state
        g = grad * self.rescale_grad
        mean[:] = self.beta1 * mean + (1 - self.beta1) * g
        var[:] = self.beta2 * var + (1 - self.beta2) * g * g
        d = (mean / (1 - self.beta1 ** t)) / (mx.nd.sqrt(var / (1 - self.beta2 ** t))
                                              + self.epsilon) + wd * weight
        r1, r2 = float(weight.norm().asscalar()), float(d.norm().asscalar())
        weight[:] = weight - lr * (r1 / r2 if r1 and r2 else 1.0) * d


KW = dict(learning_rate=0.1, momentum=0.9, wd=0.05, rescale_grad=0.5, clip_gradient=0.3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("stype", ["default", "row_sparse", "csr"])
def test_agreeing_optimizers_pass(dtype, stype):
    tu.compare_optimizer(RefSGD(**KW), mx.optimizer.SGD(**KW), (3, 4), dtype, w_stype=stype,
                         g_stype=stype)
    no_mom = {k: v for k, v in KW.items() if k != "momentum"}
    tu.compare_optimizer(RefSGD(**no_mom), mx.optimizer.SGD(**no_mom), (3, 4, 5), dtype)


def test_disagreeing_optimizers_fail():
    with pytest.raises(AssertionError):
        tu.compare_optimizer(RefSGD(skip_wd=True, **KW), mx.optimizer.SGD(**KW), (3, 4),
                             np.float32)
    # the states are compared too, before the update: here they start apart
    ones = RefSGD(**KW)
    ones.create_state = lambda index, w: mx.nd.ones(w.shape, w.context, dtype=w.dtype)
    with pytest.raises(AssertionError):
        tu.compare_optimizer(ones, mx.optimizer.SGD(**KW), (3, 4), np.float32)
    tu.compare_optimizer(ones, mx.optimizer.SGD(**KW), (3, 4), np.float32,
                         compare_states=False, rtol=1.0, atol=1.0)


def test_multi_tensor_path():
    """A list of shapes: LAMB updates them in one multi-tensor call, the reference
    one by one; the multi-precision float16 case through float32 masters."""
    shapes = [(4, 3), (7,), (2, 3, 2)]
    kw = dict(learning_rate=0.1, wd=0.01, rescale_grad=0.8)
    tu.compare_optimizer(RefLAMB(**kw), mx.optimizer.LAMB(**kw), shapes, np.float32,
                         rtol=1e-5, atol=1e-6, ntensors=len(shapes))
    kw["multi_precision"] = True
    tu.compare_optimizer(RefLAMB(**kw), mx.optimizer.LAMB(**kw), shapes, np.float16,
                         rtol=1e-3, atol=1e-3, ntensors=len(shapes))
    with pytest.raises(AssertionError):
        tu.compare_optimizer(RefLAMB(**kw), mx.optimizer.LAMB(lower_bound=50.0, **kw), shapes,
                             np.float16, rtol=1e-3, atol=1e-3, ntensors=len(shapes))


def test_bad_arguments():
    with pytest.raises(ValueError, match="storage type 'dense'"):
        tu.compare_optimizer(RefSGD(), mx.optimizer.SGD(), (2, 2), np.float32, w_stype="dense")
    with pytest.raises(ValueError, match="list of shapes"):
        tu.compare_optimizer(RefSGD(), mx.optimizer.SGD(), (2, 2), np.float32, ntensors=2)


def test_compare_ndarray_tuple():
    a = (mx.nd.array([1.0, 2.0]), (None, mx.nd.array([3.0])))
    b = (mx.nd.array([1.0, 2.0]), (mx.nd.array([9.0]), mx.nd.array([3.00001])))
    tu.compare_ndarray_tuple(a, b)      # None on either side is skipped
    tu.compare_ndarray_tuple(None, b)
    with pytest.raises(AssertionError):
        tu.compare_ndarray_tuple(a, b, rtol=1e-9, atol=0)
    with pytest.raises(AssertionError):
        tu.compare_ndarray_tuple(mx.nd.array([1.0]), mx.nd.array([1.5]))


def test_star_import_hands_tests_the_helpers():
    names = {}
    exec("from mxcore.test_utils import *", names)
    for name in ("compare_optimizer", "compare_ndarray_tuple", "array", "assert_almost_equal"):
        assert name in names
    assert names["array"]([1, 2]).shape == (2,)


SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, 1e-30, 1e30, 3.4e38, np.inf, -np.inf, np.nan])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_quick_closeness_gives_allclose_answers(dtype):
    rng = np.random.default_rng(0)
    with np.errstate(over="ignore"):
        for trial in range(400):
            n = int(rng.integers(1, 5)) if trial % 4 else 70000  # several chunks
            a = rng.normal(size=n) * 10.0 ** rng.integers(-3, 4)
            b = a * (1 + rng.normal(size=n) * 10.0 ** rng.integers(-8, -1))
            if trial % 3 == 0:
                a[rng.integers(n)] = rng.choice(SPECIAL)
                b[rng.integers(n)] = rng.choice(SPECIAL)
            a, b = a.astype(dtype), b.astype(dtype)
            rtol, atol = 10.0 ** rng.integers(-7, -1), float(rng.choice([0.0, 1e-8, 1e-3]))
            want = np.allclose(a.astype(np.float64), b.astype(np.float64), rtol=rtol, atol=atol)
            assert tu.almost_equal(a, b, rtol=rtol, atol=atol) is want, (trial, a, b)
            try:
                tu.assert_almost_equal(a, b, rtol=rtol, atol=atol)
                passed = True
            except AssertionError:
                passed = False
            assert passed is want
