"""``mxcore.testing``: the conformance kit. The op table's format (``Case``, ``In``,
dtype groups, tolerances), the checks that run a case on a device, ``ConformanceSuite``
(cases -> pytest tests) and a pytest plugin (``--mxcore-device``). Operator authors
declare their ops' references in the table format; device authors run mxcore's own
table (``mxcore.testing.core``) on their device. See docs/writing-plugins.md."""
from mxcore.testing.checks import (check_forward, check_gradient, check_outputs_are_fresh,
                                   check_second_order_gradient)
from mxcore.testing.suite import ConformanceSuite
from mxcore.testing.table import ALL, FLOATS, INTS, NUMERIC, TOLERANCES, Case, In, make_input

__all__ = ["ALL", "FLOATS", "INTS", "NUMERIC", "TOLERANCES", "Case", "ConformanceSuite", "In",
           "check_forward", "check_gradient", "check_outputs_are_fresh",
           "check_second_order_gradient", "make_input"]
