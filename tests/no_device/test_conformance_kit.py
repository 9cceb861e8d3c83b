"""The conformance kit (``mxcore.testing``, pytest plugin ``mxcore_pytest``): a suite of
cases becomes tests that pass for a correct op and fail, naming the case, for a wrong
reference or a wrong gradient; ``--mxcore-device`` picks devices and refuses unknown
ones; the core table runs through ``pytest --pyargs mxcore.testing.core`` and
``mxcore conformance``."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest_plugins = ["pytester"]

SUITE = '''
import numpy as np
import mxcore as mx
from mxcore.testing import Case, ConformanceSuite, In


class TestKit(ConformanceSuite):
    cases = [
        Case("square", mx.nd.square, np.square, (In((2, 3)),), ("float32", "float64")),
        # a reference that is off by 1e-3: forward must fail
        Case("wrong_ref", mx.nd.square, lambda x: x * x + 1e-3, (In((2, 3)),),
             ("float64",), grad=False),
        # right values, gradient x instead of 2x: the gradient check must fail
        Case("wrong_grad", lambda x: mx.nd.BlockGrad(x) * x, np.square, (In((2, 3)),),
             ("float64",), grad2=False),
    ]
'''


def _outcomes(result):
    lines = result.outlines
    passed = {ln.split("::", 1)[1].split(" ")[0] for ln in lines if ln.startswith("PASSED")}
    failed = {ln.split("::", 1)[1].split(" ")[0] for ln in lines if ln.startswith("FAILED")}
    return passed, failed


def test_a_suite_passes_right_cases_and_fails_wrong_ones(pytester):
    pytester.makepyfile(test_kit=SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", "--mxcore-device", "cpu")
    passed, failed = _outcomes(result)
    assert failed == {"TestKit::test_forward[wrong_ref-float64-cpu:0]",
                      "TestKit::test_gradient[wrong_grad-cpu:0]"}, result.outlines[-30:]
    assert {"TestKit::test_forward[square-float32-cpu:0]",
            "TestKit::test_forward[square-float64-cpu:0]",
            "TestKit::test_forward[wrong_grad-float64-cpu:0]",
            "TestKit::test_gradient[square-cpu:0]",
            "TestKit::test_second_order_gradient[square-cpu:0]",
            "TestKit::test_outputs_are_fresh_unless_the_op_declares_views[wrong_ref-cpu:0]",
            } <= passed
    text = "\n".join(result.outlines)
    assert "gradient of input 0" in text  # the failing check says what differs


def test_an_unknown_device_is_a_usage_error(pytester):
    pytester.makepyfile(test_kit=SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--mxcore-device", "nosuch")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--mxcore-device" in "\n".join(result.errlines) and "nosuch" in "\n".join(
        result.errlines)


def test_a_suite_without_gradient_cases_skips_with_the_reason(pytester):
    pytester.makepyfile(test_kit='''
import numpy as np
import mxcore as mx
from mxcore.testing import Case, ConformanceSuite, In

class TestNoGrad(ConformanceSuite):
    cases = [Case("ceil", mx.nd.ceil, np.ceil, (In((4,), "frac"),), ("float32",), grad=False)]
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs", "--mxcore-device", "cpu")
    result.assert_outcomes(passed=2, skipped=2)
    assert "no case of TestNoGrad applies" in "\n".join(result.outlines)


def _run(args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "MXCORE_TEST_SHARD"}
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def test_the_core_table_runs_by_module_name_and_from_the_cli(tmp_path):
    r = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--pyargs",
              "mxcore.testing.core", "--mxcore-device", "cpu", "-k", "softmax and not log"],
             tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert " passed" in r.stdout and "failed" not in r.stdout
    r2 = _run([sys.executable, "-m", "mxcore", "conformance", "--device", "cpu", "--", "-q",
               "-k", "softmax and not log"], tmp_path)
    assert r2.returncode == 0, r2.stdout[-2000:] + r2.stderr[-2000:]
    count = [ln for ln in r.stdout.splitlines() if " passed" in ln][-1].split(" passed")[0]
    assert f"{count.split()[-1]} passed" in r2.stdout
