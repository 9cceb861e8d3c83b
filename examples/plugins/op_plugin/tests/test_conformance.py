"""The example operators under mxcore's conformance kit (mxcore.testing): forward
against numpy in each dtype, the shape rule, first and second derivatives against
finite differences, fresh outputs; on every device, or `pytest --mxcore-device KIND`."""
import numpy as np
import mxcore as mx
from mxcore.testing import Case, ConformanceSuite, In


def _logsumexp(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def _huber(x, delta):
    return np.where(np.abs(x) <= delta, 0.5 * x * x, delta * (np.abs(x) - 0.5 * delta))


class TestExampleOps(ConformanceSuite):
    cases = [
        # name, the call, its numpy reference (float inputs arrive in float64), inputs
        Case("squared_difference", mx.nd.squared_difference, lambda a, b: (a - b) ** 2,
             (In((2, 3)), In((1, 3))), ("float32", "float64")),
        Case("logsumexp", lambda x: mx.nd.logsumexp(x, axis=1), lambda x: _logsumexp(x, 1),
             (In((3, 4)),), ("float32", "float64")),
        # In(shape, kind): kind is the value domain (real, pos, unit, nonzero, away0,
        # distinct, frac, index, mask); Case(..., grad=False, grad2=False, out_dtype=, tol=)
        Case("huber", lambda x: mx.nd.huber(x, delta=1.0), lambda x: _huber(x, 1.0),
             (In((2, 5), "away0"),), ("float32", "float64"), grad2=False),
    ]
