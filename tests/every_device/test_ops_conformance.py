"""mxcore's op table (``mxcore.testing.optable``) on every available device, or on those
named with ``--mxcore-device``: forward results against numpy in every supported dtype,
shape/dtype inference against the results, float64 finite-difference checks of first-
and second-order gradients, and fresh outputs unless an op declares views. The suite is
the conformance kit's (``mxcore.testing.core``), the one plugin authors run."""
from mxcore.testing.core import TestCoreOps  # noqa: F401  (collected here)
