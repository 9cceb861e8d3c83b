"""``ConformanceSuite``: a list of cases as pytest tests. Subclass it in a test module
with the cases as the class attribute ``cases``; the ``mxcore.testing`` pytest plugin
parametrises its tests over the cases, their dtypes and the devices (every installed
device, or those named with ``--mxcore-device``)::

    from mxcore.testing import Case, ConformanceSuite, In

    class TestMyOps(ConformanceSuite):
        cases = [Case("square_plus", lambda x: mx.nd.square_plus(x, shift=0.5),
                      lambda x: x * x + 0.5, (In((3, 4)),))]
"""
from __future__ import annotations

from typing import List, Sequence

from mxcore.testing import checks
from mxcore.testing.table import Case


class ConformanceSuite:
    """Forward values, dtypes and shapes against numpy in every dtype a case lists, the
    op's shape/dtype rule, first and second derivatives against finite differences in
    float64, and fresh outputs (the memory contract the threaded engine relies on)."""

    cases: Sequence[Case] = ()

    def test_forward(self, case: Case, dtype: str, mxcore_device) -> None:
        checks.check_forward(case, dtype, mxcore_device)

    def test_gradient(self, case: Case, mxcore_device) -> None:
        checks.check_gradient(case, mxcore_device)

    def test_second_order_gradient(self, case: Case, mxcore_device) -> None:
        checks.check_second_order_gradient(case, mxcore_device)

    def test_outputs_are_fresh_unless_the_op_declares_views(self, case: Case,
                                                            mxcore_device) -> None:
        checks.check_outputs_are_fresh(case, mxcore_device)


def parameters(test_name: str, cases: Sequence[Case]) -> List[tuple]:
    """(argnames, [(values, id)]) of one of the suite's tests over ``cases``."""
    if test_name == "test_forward":
        return [((c, dt), f"{c.name}-{dt}") for c in cases for dt in c.dtypes]
    if test_name == "test_gradient":
        return [((c,), c.name) for c in cases if checks.wants_gradient(c)]
    if test_name == "test_second_order_gradient":
        return [((c,), c.name) for c in cases if checks.wants_gradient(c) and c.grad2]
    return [((c,), c.name) for c in cases]
