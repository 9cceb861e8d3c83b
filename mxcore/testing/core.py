"""mxcore's whole operator table as a conformance suite. A device plugin's author runs
it on their device with::

    pytest --pyargs mxcore.testing.core --mxcore-device KIND

(``mxcore conformance --device KIND`` does the same)."""
from mxcore.testing.optable import CASES
from mxcore.testing.suite import ConformanceSuite


class TestCoreOps(ConformanceSuite):
    """Every core op in every dtype it supports, with its gradients."""

    cases = CASES
