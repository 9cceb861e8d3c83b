"""tools/mxnet_compat.py, the runner of MXNet 1.9.1's own test files: its import alias,
its junit parsing and tables, and one real run of a tiny test file on the mxcore side."""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


compat = _load("mxnet_compat_under_test", TOOLS / "mxnet_compat.py")


@pytest.fixture
def alias():
    """The alias finder installed for one test only: other tests must not see `mxnet`."""
    before = set(sys.modules)
    module = _load("mxnet_alias", TOOLS / "mxnet_alias" / "mxnet_alias.py")
    try:
        yield module
    finally:
        module.uninstall()
        for name in set(sys.modules) - before:
            if name == "mxnet_alias":
                del sys.modules[name]
        assert not any(type(f).__name__ == "MxnetAliasFinder" for f in sys.meta_path)


def test_alias_maps_mxnet_modules_to_mxcore(alias):
    import mxcore
    mx = importlib.import_module("mxnet")
    assert mx is mxcore
    assert importlib.import_module("mxnet.ndarray") is sys.modules["mxcore.ndarray"]
    assert importlib.import_module("mxnet.nd") is mxcore.nd  # an attribute, not a module
    nn = importlib.import_module("mxnet.gluon.nn")
    assert nn is sys.modules["mxcore.gluon.nn"] is sys.modules["mxnet.gluon.nn"]
    from mxnet.base import MXNetError  # noqa: F401 -- `from` imports go through it too
    # mxcore's modules keep their own identity
    assert mxcore.__spec__.name == "mxcore" and mxcore.gluon.nn.__name__ == "mxcore.gluon.nn"


def test_alias_missing_submodule_is_an_ordinary_import_error(alias):
    with pytest.raises(ModuleNotFoundError) as info:
        importlib.import_module("mxnet.no_such_module")
    assert info.value.name == "mxnet.no_such_module"
    assert "No module named 'mxnet.no_such_module'" in str(info.value)
    with pytest.raises(ModuleNotFoundError, match="'mxnet.gluon.no_such'"):
        importlib.import_module("mxnet.gluon.no_such.deeper")
    assert "mxnet.no_such_module" not in sys.modules
    # names outside `mxnet` are none of its business
    with pytest.raises(ModuleNotFoundError, match="'mxnetx'"):
        importlib.import_module("mxnetx")


JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="2" failures="1" skipped="2" tests="7">
<testcase classname="test_tiny" name="test_ok" time="0.01"/>
<testcase classname="test_tiny" name="test_shape" time="0.01">
 <failure message="mxcore.base.MXNetError: bad shape (2, 3) vs (4, 5)">def test_shape():
&gt;       raise MXNetError("bad shape (2, 3) vs (4, 5)")
E       mxcore.base.MXNetError: bad shape (2, 3) vs (4, 5)

{root}/mxcore/ndarray/ndarray.py:12: MXNetError</failure></testcase>
<testcase classname="test_tiny" name="test_setup" time="0.0">
 <error message="failed on setup with &quot;TypeError: bad fixture&quot;">text</error></testcase>
<testcase classname="test_tiny" name="test_skip" time="0.0">
 <skipped type="pytest.skip" message="not here">skip</skipped></testcase>
<testcase classname="test_tiny" name="test_xf" time="0.0">
 <skipped type="pytest.xfail" message="known">xfail</skipped></testcase>
<testcase classname="test_tiny.TestThing" name="test_method[a-1]" time="0.0"/>
<testcase classname="" name="test_broken" time="0.0">
 <error message="collection failure">ImportError while importing test module
Traceback:
E   ModuleNotFoundError: No module named 'mxnet.numpy'</error></testcase>
</testsuite></testsuites>
"""


def test_parse_junit_and_tables(tmp_path):
    path = tmp_path / "junit.xml"
    # a frame in the repository (wherever it is checked out) is shown relative to it
    root = Path(compat.__file__).resolve().parents[1]
    path.write_text(JUNIT.replace("{root}", str(root)))
    tests, collect_errors = compat.parse_junit(path, "test_tiny.py")
    assert tests["test_tiny.py::test_ok"] == {"outcome": "passed"}
    shape = tests["test_tiny.py::test_shape"]
    assert (shape["outcome"], shape["exc_type"]) == ("failed", "mxcore.base.MXNetError")
    assert shape["message"] == "bad shape (2, 3) vs (4, 5)"
    assert shape["where"] == "mxcore/ndarray/ndarray.py:12"
    assert tests["test_tiny.py::test_setup"]["outcome"] == "error"
    assert tests["test_tiny.py::test_setup"]["exc_type"] == "TypeError"
    assert tests["test_tiny.py::test_skip"]["outcome"] == "skipped"
    assert tests["test_tiny.py::test_xf"]["outcome"] == "xfailed"
    assert tests["test_tiny.py::TestThing::test_method[a-1]"]["outcome"] == "passed"
    assert collect_errors == [{"exc_type": "ModuleNotFoundError",
                               "message": "No module named 'mxnet.numpy'", "where": ""}]

    mx_side = {n: {"outcome": "passed"} for n in tests}
    results = {"mxnet": {"test_tiny.py": {"status": "ok", "tests": mx_side, "duration": 1.0}},
               "mxcore": {"test_tiny.py": {"status": "ok", "tests": tests, "duration": 2.0,
                                            "collect_errors": []}}}
    cmp = compat.compare(["test_tiny.py"], results, None, {"test_tiny.py": {"test_xf": "sparse"}})
    row = cmp["rows"][0]
    assert (row["collected"], row["pass_mxnet"], row["pass_mxcore"], row["pass_both"]) \
        == (6, 6, 2, 2)
    assert row["out_of_scope"] == 1
    table = compat.format_table(cmp["rows"], True, True)
    assert "test_tiny.py" in table and table.splitlines()[-1].startswith("total")
    ranked, scope = compat.rank_failures(cmp["tests"])
    assert scope == {"sparse": 1}
    causes = {g["cause"]: g["count"] for g in ranked}
    assert causes["mxcore.base.MXNetError: bad shape (N, N) vs (N, N)"] == 1
    assert "TypeError: bad fixture" in causes and "Skipped: not here" in causes


def test_exception_split_and_normalisation():
    assert compat.split_exception("AssertionError") == ("AssertionError", "")
    assert compat.split_exception("Failed: Timeout (>5.0s) from pytest-timeout.") == \
        ("Failed", "Timeout (>5.0s) from pytest-timeout.")
    assert compat.split_exception("", "x\nE   ValueError: first\nE   second\n") == \
        ("ValueError", "first")
    assert compat.normalise_cause("AttributeError", "module 'mxcore' has no attribute 'sym'") \
        == "AttributeError: module 'mxcore' has no attribute 'sym'"
    assert compat.normalise_cause("AssertionError", "Error 3.5e-02 exceeds tolerance 0.001\nx") \
        == "AssertionError: Error N exceeds tolerance N"
    assert compat.junit_nodeid("test_a.Cls", "test_b[1]", "test_a.py") == \
        "test_a.py::Cls::test_b[1]"


def test_out_of_scope_classification(tmp_path):
    f = tmp_path / "test_cls.py"
    f.write_text(textwrap.dedent('''
        import mxnet as mx
        import mxnet.ndarray.sparse as mxsps

        def _helper():
            return mxsps.zeros('csr', (2, 2))

        def test_uses_helper():
            """mentions sparse only in its docstring"""
            _helper()

        def test_plain():
            """sparse"""  # the docstring does not count
            mx.nd.ones((2,))

        def test_np():
            mx.np.ones((2,))

        class TestK:
            def test_gpu(self):
                mx.gpu(0)
    '''))
    assert compat.classify_file(f) == {"test_uses_helper": "sparse", "test_plain": None,
                                       "test_np": "numpy interface", "TestK::test_gpu": "gpu"}
    assert compat.test_key("test_cls.py::TestK::test_gpu[x]") == "TestK::test_gpu"


def test_keyword_filter_on_cached_results():
    match = compat.keyword_filter("ndarray and not slice")
    assert match("test_ndarray.py::test_ndarray_elementwise")
    assert not match("test_ndarray.py::test_ndarray_slice")
    assert match("test_ndarray.py::test_dot")  # the file's name counts too
    assert compat.keyword_filter(None) is None


def test_runs_a_tiny_file_on_mxcore(tmp_path, capsys):
    tests = tmp_path / "mxnet-tests"
    (tests / "unittest").mkdir(parents=True)
    (tests / "unittest" / "common.py").write_text("VALUE = 2\n")
    (tests / "unittest" / "test_tiny.py").write_text(textwrap.dedent("""
        import time
        import mxnet as mx
        from common import VALUE
        from nose.tools import assert_raises

        def test_ones():
            assert mx.nd.ones((VALUE,)).shape == (2,)

        def test_one_module_object():
            import sys
            import mxnet.test_utils  # a test_*.py name: pytest must not load a copy of it
            assert sys.modules["mxnet.test_utils"] is sys.modules["mxcore.test_utils"]

        def test_missing():
            mx.no_such_function()

        def test_raises():
            assert_raises(ZeroDivisionError, lambda: 1 / 0)
    """))
    out = tmp_path / "out.json"
    rc = compat.main(["--tests", str(tests), "--side", "mxcore", "--json", str(out),
                      "--mxnet-results", str(tmp_path / "none.json"), "-q",
                      "--file-timeout", "120"])
    assert rc == 0
    data = json.loads(out.read_text())
    outcomes = {n: t["mxcore"] for n, t in data["tests"].items()}
    assert outcomes == {"test_tiny.py::test_ones": "passed", "test_tiny.py::test_raises":
                        "passed", "test_tiny.py::test_missing": "failed",
                        "test_tiny.py::test_one_module_object": "passed"}
    missing = data["tests"]["test_tiny.py::test_missing"]
    assert missing["mxcore_exc_type"] == "AttributeError"
    assert "no_such_function" in missing["mxcore_message"]
    assert data["rows"][0]["pass_mxcore"] == 3
    assert "test_tiny.py" in capsys.readouterr().out
    # nothing was written beside the test files
    assert sorted(p.name for p in (tests / "unittest").iterdir()) == ["common.py", "test_tiny.py"]


def test_a_hanging_file_is_cut_and_keeps_its_finished_tests(tmp_path):
    unittest_dir = tmp_path / "unittest"
    unittest_dir.mkdir()
    (unittest_dir / "test_hang.py").write_text(textwrap.dedent("""
        import time

        def test_quick():
            pass

        def test_hangs():
            time.sleep(60)

        def test_after():
            pass
    """))
    rec = compat.run_file("mxnet", sys.executable, unittest_dir, "test_hang.py",
                          tmp_path / "work", kexpr=None, file_timeout=4, test_timeout=0,
                          has_timeout_plugin=False)
    assert rec["status"] == "timeout" and rec["collected"] == 3
    assert {n: t["outcome"] for n, t in rec["tests"].items()} == {
        "test_hang.py::test_quick": "passed", "test_hang.py::test_hangs": "timeout",
        "test_hang.py::test_after": "not-run"}


def test_stub_missing_defers_import_time_gaps_to_the_tests_using_them(tmp_path):
    (tmp_path / "uses_missing.py").write_text(textwrap.dedent("""
        import mxnet as mx
        import mxnet.no_such_module as gone
        from mxnet.test_utils import no_such_helper

        @no_such_helper
        def decorated():
            return 1

        class Sub(gone.Base):
            pass

        def plain():
            return mx.nd.ones((2,)).shape
    """))
    # what a test does when it runs: inside a function, not at module level
    code = textwrap.dedent("""
        def main():
            import uses_missing as m
            from mxnet_alias import MissingInMxcore
            assert m.plain() == (2,)
            for call in (m.decorated, m.Sub, m.no_such_helper):
                try:
                    call()
                except MissingInMxcore as e:
                    print(str(e).splitlines()[0])
            try:
                import mxnet.late_import  # an ordinary error here
            except ModuleNotFoundError as e:
                print(e.name)
        main()
    """)
    env = compat.side_env("mxcore", stub_missing=True)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:4] == [
        "mxnet.test_utils.no_such_helper is missing in mxcore",
        "mxnet.no_such_module is missing in mxcore",
        "mxnet.test_utils.no_such_helper is missing in mxcore",
        "mxnet.late_import"]
