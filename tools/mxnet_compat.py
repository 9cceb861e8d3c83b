#!/usr/bin/env python3
"""Runs Apache MXNet 1.9.1's own unit-test files against mxcore and against MXNet 1.9.1.

The mxcore side runs the files unchanged with ``import mxnet`` resolving to mxcore
(tools/mxnet_alias/); the MXNet side runs them in a virtualenv with mxnet 1.9.1
(``--setup-mxnet DIR`` makes one). Each file is one pytest process with its own temporary
folder (junit xml, log, basetemp, working directory), bounded by a wall-clock limit, so
nothing is written beside the test files. The report compares the two sides test by test.

    python tools/mxnet_compat.py --mxnet-python /work/mxnet-venv/bin/python --failures
    python tools/mxnet_compat.py --files test_loss.py,test_init.py -k "not rnn"

MXNet's side never changes, so its results are kept in a JSON file (``--mxnet-results``,
default tools/mxnet_results_1.9.1.json) and reused; only mxcore's side is rerun.

Standard library and pytest only. See docs/mxnet-compat.md.
"""
from __future__ import annotations

import argparse
import ast
import collections
import concurrent.futures
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / "tools"
ALIAS_DIR = TOOLS / "mxnet_alias"
SUPPORT_DIR = TOOLS / "mxnet_compat_support"
DEFAULT_TESTS = REPO.parent / "shared" / "mxnet-1.9.1-tests"
DEFAULT_RESULTS = TOOLS / "mxnet_results_1.9.1.json"
MXNET_VERSION = "1.9.1"
RESULTS_FORMAT = 1

SIDES = ("mxnet", "mxcore")
PASSED = frozenset({"passed", "xpassed"})
MESSAGE_CHARS = 300

# The pip command of --setup-mxnet: numpy 1.24 removed aliases (np.bool...) MXNet 1.9.1
# uses; scipy and requests are imported by some of its test files; pytest-timeout bounds
# each test.
MXNET_REQUIREMENTS = ["mxnet==1.9.1", "numpy<1.24", "pytest", "pytest-timeout", "scipy",
                      "requests"]


# --------------------------------------------------------------------------- results

def _first_line(text: str) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


_EXC_RE = re.compile(r"^([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)(?::\s?(.*))?$", re.S)
_PHASE_RE = re.compile(r'^failed on (?:setup|teardown|call) with "(.*)"$', re.S)
_E_LINE_RE = re.compile(r"^E\s{1,3}([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning"
                        r"|Failed|Skipped|Expired|Timeout|StopIteration))(?::\s?(.*))?$")
_WHERE_RE = re.compile(r"^(\S+?):(\d+): ([A-Za-z_][\w.]*)\s*$")


def split_exception(message: str, text: str = "") -> tuple[str, str]:
    """(exception type, first line of its message) from a pytest crash message such as
    ``mxcore.base.MXNetError: shape mismatch``; falls back on the ``E   Type: msg`` lines
    of a traceback (collection errors report only "collection failure")."""
    message = (message or "").strip()
    phase = _PHASE_RE.match(message)
    if phase:
        message = phase.group(1)
    if message.startswith("assert "):  # pytest reports a rewritten assert without its type
        return "AssertionError", _first_line(message)
    m = _EXC_RE.match(message) if message else None
    if m and (m.group(2) is not None or re.search(r"(Error|Exception|Exit|Interrupt|Failed)$",
                                                   m.group(1))):
        exc_type = m.group(1)
        if exc_type.startswith("builtins."):
            exc_type = exc_type[len("builtins."):]
        return exc_type, _first_line(m.group(2) or "")
    found = None
    for line in (text or "").splitlines():
        e = _E_LINE_RE.match(line.rstrip())
        if e:
            found = (e.group(1), _first_line(e.group(2) or ""))
    if found:
        return found
    return "", _first_line(message or text)


def where_raised(text: str) -> str:
    """``path:line`` of the innermost frame in a pytest long traceback."""
    last = ""
    for line in (text or "").splitlines():
        m = _WHERE_RE.match(line.strip())
        if m and "mxnet_alias" not in m.group(1):  # the alias's own frames say nothing
            last = f"{_short_path(m.group(1))}:{m.group(2)}"
    return last


def _short_path(path: str) -> str:
    if path.startswith(str(REPO) + os.sep):
        return path[len(str(REPO)) + 1:]
    m = re.search(r"(?:site-packages|lib/python3[.\d]*)/(.*)$", path)
    if m:
        return m.group(1)
    m = re.search(r"((?:unittest|common)/[^/]*)$", path)
    return m.group(1) if m else path


def _outcome(nodeid_entry: dict) -> str:
    return nodeid_entry.get("outcome", "missing")


def junit_nodeid(classname: str, name: str, file: str) -> str:
    """pytest's junit ``classname``/``name`` back to a nodeid, knowing the file (relative
    to the rootdir, as each run has its file at the top of the rootdir)."""
    module = file[:-3] if file.endswith(".py") else file
    module_dotted = module.replace("/", ".")
    rest = classname[len(module_dotted):].lstrip(".") if classname.startswith(module_dotted) \
        else ""
    parts = [file] + ([p for p in rest.split(".") if p] if rest else []) + [name]
    return "::".join(parts)


def parse_junit(path: Path, file: str) -> tuple[dict, list]:
    """{nodeid: {"outcome", "exc_type", "message", "where"}} and the collection errors
    [{"exc_type", "message", "where"}] of one pytest --junitxml file."""
    tree = ET.parse(path)
    tests: dict[str, dict] = {}
    collect_errors: list[dict] = []
    for case in tree.iter("testcase"):
        classname = case.get("classname", "")
        name = case.get("name", "")
        failure = case.find("failure")
        error = case.find("error")
        skipped = case.find("skipped")
        if error is not None and not classname and error.get("message") == "collection failure":
            exc_type, msg = split_exception("", error.text or "")
            collect_errors.append({"exc_type": exc_type, "message": msg,
                                   "where": where_raised(error.text or "")})
            continue
        entry: dict = {}
        bad = failure if failure is not None else error
        if bad is not None:
            entry["outcome"] = "failed" if failure is not None else "error"
            exc_type, msg = split_exception(bad.get("message", ""), bad.text or "")
            entry.update(exc_type=exc_type, message=msg[:MESSAGE_CHARS],
                         where=where_raised(bad.text or ""))
        elif skipped is not None:
            entry["outcome"] = "xfailed" if skipped.get("type") == "pytest.xfail" else "skipped"
            entry["message"] = _first_line(skipped.get("message", ""))[:MESSAGE_CHARS]
        else:
            entry["outcome"] = "passed"
        tests[junit_nodeid(classname, name, file)] = entry
    return tests, collect_errors


def parse_progress(path: Path) -> dict:
    """What the mxnet_compat_progress plugin recorded: collected ids, per-test outcomes
    from the phase reports, the test that started last, collection errors, and whether
    pytest reached its end."""
    out = {"collected": None, "tests": {}, "last_started": None, "finished": False,
           "collect_errors": [], "exitstatus": None}
    if not path.exists():
        return out
    phases: dict[str, list] = collections.defaultdict(list)
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue  # a line cut by a kill
        kind = ev.get("event")
        if kind == "collected":
            out["collected"] = ev["nodeids"]
        elif kind == "start":
            out["last_started"] = ev["nodeid"]
        elif kind == "report":
            phases[ev["nodeid"]].append(ev)
        elif kind == "collect_error":
            exc_type, msg = split_exception("", ev.get("longrepr", ""))
            out["collect_errors"].append({"exc_type": exc_type, "message": msg,
                                          "where": where_raised(ev.get("longrepr", ""))})
        elif kind == "finish":
            out["finished"] = True
            out["exitstatus"] = ev.get("exitstatus")
    for nodeid, reports in phases.items():
        entry = {"outcome": "passed"}
        call = [r for r in reports if r["when"] == "call"]
        bad = [r for r in reports if r["outcome"] == "failed"]
        if bad:
            r = bad[0]
            entry["outcome"] = "failed" if r["when"] == "call" else "error"
            exc_type, msg = split_exception(r.get("message", ""))
            entry.update(exc_type=exc_type, message=msg[:MESSAGE_CHARS])
        elif any(r["outcome"] == "skipped" for r in reports):
            r = next(r for r in reports if r["outcome"] == "skipped")
            entry["outcome"] = "xfailed" if r.get("xfail") else "skipped"
            entry["message"] = _first_line(r.get("message", ""))[:MESSAGE_CHARS]
        elif call and call[0].get("xfail"):
            entry["outcome"] = "xpassed"
        if not any(r["when"] == "teardown" for r in reports) and entry["outcome"] == "passed":
            continue  # unfinished: settled by the caller
        out["tests"][nodeid] = entry
    return out


# --------------------------------------------------------------------------- running

def _probe(python: str, env: dict) -> dict:
    """Versions and installed test dependencies of a Python, in its own process."""
    code = (
        "import json, sys, platform, importlib.util as u\n"
        "info = {'python': platform.python_version()}\n"
        "import pytest; info['pytest'] = pytest.__version__\n"
        "info['pytest_timeout'] = u.find_spec('pytest_timeout') is not None\n"
        "info['missing'] = [m for m in ('scipy', 'requests', 'graphviz')\n"
        "                   if u.find_spec(m) is None]\n"
        "for m in ('numpy', 'scipy'):\n"
        "    try:\n"
        "        info[m] = __import__(m).__version__\n"
        "    except Exception:\n"
        "        pass\n"
        "try:\n"
        "    import mxnet; info['mxnet'] = getattr(mxnet, '__version__', '?')\n"
        "    info['mxnet_module'] = mxnet.__name__\n"
        "except Exception as e:\n"
        "    info['mxnet_error'] = '%s: %s' % (type(e).__name__, e)\n"
        "print('MXNET-COMPAT-PROBE' + json.dumps(info))\n")
    r = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True,
                       timeout=300)
    for line in r.stdout.splitlines():
        if line.startswith("MXNET-COMPAT-PROBE"):
            return json.loads(line[len("MXNET-COMPAT-PROBE"):])
    raise SystemExit(f"{python} cannot run pytest:\n{r.stdout}{r.stderr}")


def side_env(side: str, progress: Path | None = None, stub_missing: bool = False) -> dict:
    env = dict(os.environ)
    env.pop("MXNET_ALIAS_STUB_MISSING", None)
    if stub_missing and side == "mxcore":
        env["MXNET_ALIAS_STUB_MISSING"] = "1"
    paths = ([str(ALIAS_DIR)] if side == "mxcore" else []) + [str(SUPPORT_DIR)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # the test folder is read-only in CI
    env.pop("MXNET_COMPAT_PROGRESS", None)
    if progress is not None:
        env["MXNET_COMPAT_PROGRESS"] = str(progress)
    return env


_RUNNING: set = set()
_RUNNING_LOCK = threading.Lock()


def _kill_group(proc: subprocess.Popen) -> None:
    """Ends the pytest process and whatever it spawned (its own session)."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_file(side: str, python: str, unittest_dir: Path, file: str, workdir: Path, *,
             kexpr: str | None, file_timeout: float, test_timeout: float,
             has_timeout_plugin: bool, stub_missing: bool = False, extra_args=()) -> dict:
    """Runs one test file under pytest on one side; returns its result record."""
    d = workdir / side / Path(file).stem
    if d.exists():
        shutil.rmtree(d)
    (d / "cwd").mkdir(parents=True)
    ini = d / "pytest.ini"
    # An ini of our own: no setting of the repository's or of the test folder applies.
    # python_files names the one file: with the default test_*.py, pytest's assertion
    # rewriter would also claim mxcore/test_utils.py when imported as mxnet.test_utils,
    # loading a second copy of it ahead of the alias.
    ini.write_text(f"[pytest]\njunit_family = xunit2\npython_files = {Path(file).name}\n",
                   encoding="utf-8")
    junit, progress, log = d / "junit.xml", d / "progress.jsonl", d / "pytest.log"
    cmd = [python, "-m", "pytest", str(unittest_dir / file), "-c", str(ini),
           "--rootdir", str(unittest_dir), "-p", "no:cacheprovider",
           "-p", "mxnet_compat_progress", "--junitxml", str(junit),
           "--basetemp", str(d / "basetemp"), "-q", "-rN", "--tb=long"]
    if kexpr:
        cmd += ["-k", kexpr]
    if test_timeout and has_timeout_plugin:
        cmd += ["--timeout", str(int(test_timeout))]
    cmd += list(extra_args)
    start = time.monotonic()
    status = None
    with open(log, "wb") as logf:
        proc = subprocess.Popen(cmd, cwd=d / "cwd", env=side_env(side, progress, stub_missing),
                                stdin=subprocess.DEVNULL, stdout=logf,
                                stderr=subprocess.STDOUT, start_new_session=True)
        with _RUNNING_LOCK:
            _RUNNING.add(proc)
        try:
            rc = proc.wait(timeout=file_timeout if file_timeout > 0 else None)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            rc = proc.returncode
            status = "timeout"
        except BaseException:
            _kill_group(proc)
            raise
        finally:
            with _RUNNING_LOCK:
                _RUNNING.discard(proc)
    duration = round(time.monotonic() - start, 1)
    prog = parse_progress(progress)
    if junit.exists() and status is None:
        tests, collect_errors = parse_junit(junit, file)
    else:
        tests, collect_errors = dict(prog["tests"]), list(prog["collect_errors"])
    collected = prog["collected"]
    if collected is None:
        collected = [n for n in tests]
    if status is None:
        if rc is not None and rc < 0 or not prog["finished"]:
            status = "crashed"
        elif collect_errors:
            status = "collection-error"
        elif rc in (0, 1, 5):
            status = "ok"
        else:
            status = f"pytest-exit-{rc}"
    if status in ("timeout", "crashed"):
        for nodeid in collected:
            if nodeid not in tests:
                if nodeid == prog["last_started"]:
                    what = ("file wall-clock limit reached" if status == "timeout"
                            else f"pytest process ended (exit {rc})")
                    tests[nodeid] = {"outcome": status, "exc_type": status.capitalize(),
                                     "message": f"{what} in this test"}
                else:
                    tests[nodeid] = {"outcome": "not-run", "exc_type": "NotRun",
                                     "message": f"file {status} before this test ran"}
    if status == "crashed" and collected == [] and not collect_errors:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        collect_errors.append({"exc_type": "Crashed", "message": _first_line(tail[-300:]),
                               "where": ""})
    return {"status": status, "returncode": rc, "duration": duration,
            "collected": len(collected), "last_started": prog["last_started"]
            if status in ("timeout", "crashed") else None,
            "collect_errors": collect_errors, "tests": tests, "workdir": str(d)}


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def list_files(unittest_dir: Path, selection: str | None) -> list[str]:
    available = sorted(p.name for p in unittest_dir.glob("test_*.py"))
    if not selection:
        return available
    chosen = []
    for name in (s.strip() for s in selection.split(",")):
        if not name:
            continue
        if not name.endswith(".py"):
            name += ".py"
        if not name.startswith("test_"):
            name = "test_" + name
        if name not in available:
            raise SystemExit(f"no test file {name} in {unittest_dir}")
        chosen.append(name)
    return chosen


# --------------------------------------------------------------------------- -k on cached

def keyword_filter(expr: str | None):
    """A predicate on nodeids approximating pytest's ``-k`` (names of the file, classes and
    test; markers and extra keywords are not known from cached results)."""
    if not expr:
        return None
    try:
        from _pytest.mark.expression import Expression
        compiled = Expression.compile(expr)
    except Exception:  # pytest internals moved: select everything, mxcore's run decides
        return None

    def match(nodeid: str) -> bool:
        parts = nodeid.split("::")
        names = {parts[0], parts[0][:-3], *parts[1:]}

        def matcher(subname, **kwargs):
            if kwargs:
                return False
            return any(subname.lower() in n.lower() for n in names)
        return bool(compiled.evaluate(matcher))
    return match


# --------------------------------------------------------------------------- scope

# What mxcore does not aim for (docs/mxnet-compat.md, "Out of scope"). A test belongs to a
# category when its code -- the test, the module-level helpers it calls, transitively --
# or the message of its failure on mxcore matches. Comments and docstrings do not count.
CATEGORIES = [
    ("c++ extension / C API", r"\bmx\.library\b|\bload_library\b|\blib_api\b|\b_LIB\b|"
                              r"\bctypes\b|\bcheck_call\b|\bc_str\b|\w+Handle\b|"
                              r"\bMXNET_LIBRARY\b|\bsubgraph_backend\b|\boptimize_for\b"),
    ("gpu", r"\bmx\.gpu\b|\bgpu\s*\(|\bnum_gpus\b|\bcudnn\b|\bcuda\b|\bgpu_memory_info\b|"
            r"'gpu'|\"gpu\""),
    ("network", r"\bdownload\b|\brequests\b|https?://|\burlopen\b|\bMockResponse\b|"
                r"\bpretrained\s*=\s*True\b"),
    ("numpy interface", r"\bmx\.np\b|\bmx\.npx\b|\bmxnet\.numpy\b|\bmxnet\.numpy_extension\b|"
                        r"\bnpx\b|\buse_np\w*|\bset_np\w*|\bis_np_array\b|\bnp_shape\b|"
                        r"\bis_np_shape\b|\bas_np_ndarray\b|\bas_nd_ndarray\b|\bnp_array\b|"
                        r"\b_Numpy\w*Scope\b"),
    ("sparse", r"\bsparse\b|\bstype\s*=\s*['\"](?:csr|row_sparse)|['\"]csr['\"]|"
               r"['\"]row_sparse['\"]|\btostype\b|\bcast_storage\b|\bcsr_matrix\b|"
               r"\brow_sparse_array\b|\bCSRNDArray\b|\bRowSparseNDArray\b|\brand_ndarray\b.*stype|"
               r"\bsparse_grad\b|\bgrad_stype\b|\b_STORAGE_TYPE\w*"),
]
MESSAGE_CATEGORIES = [
    # The test code itself uses numpy aliases removed in numpy 1.24 (np.int, np.bool...);
    # mxcore needs numpy >= 1.24, so such a test cannot pass with it whatever mxcore does.
    ("test needs numpy<1.24", r"module 'numpy' has no attribute '(?:bool|int|float|complex|"
                              r"object|str|long|unicode)'"),
    ("c++ extension / C API", r"mxnet\.library|load_library|\b_LIB\b|optimize_for|"
                              r"check_call|\w+Handle\b"),
    ("gpu", r"\bgpu\b|cuda|cudnn"),
    ("numpy interface", r"'mxnet\.numpy|'mxnet\.numpy_extension'|attribute 'np'|"
                        r"attribute 'npx'|use_np|set_np|np_shape|is_np_array"),
    ("sparse", r"sparse|stype|\bcsr\b|row_sparse|tostype|cast_storage"),
]


def _import_aliases(tree: ast.Module) -> dict[str, str]:
    """Names bound by imports of out-of-scope modules (``import mxnet.ndarray.sparse as
    mxsps``), so that code using them is recognised too."""
    extra: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            base = getattr(node, "module", None) or ""
            for alias in node.names:
                full = (base + "." + alias.name) if base else alias.name
                bound = alias.asname or alias.name.split(".")[0]
                for cat, pattern in CATEGORIES:
                    if cat != "network" and re.search(pattern, full) \
                            and bound not in ("mxnet", "mx", "np", "numpy"):
                        extra.setdefault(cat, "")
                        extra[cat] += rf"|\b{re.escape(bound)}\b"
    return extra


def _strip_docstrings(node):
    for sub in ast.walk(node):
        if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            body = getattr(sub, "body", [])
            if body and isinstance(body[0], ast.Expr) and \
                    isinstance(getattr(body[0], "value", None), ast.Constant) and \
                    isinstance(body[0].value.value, str):
                sub.body = body[1:] or [ast.Pass()]
    return node


def classify_file(path: Path) -> dict[str, str | None]:
    """{test name ("test_x" or "Class::test_x"): category or None} for one test file."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return {}
    patterns = dict(CATEGORIES)
    for cat, extra in _import_aliases(tree).items():
        patterns[cat] += extra
    functions: dict[str, ast.AST] = {}
    classes: dict[str, ast.ClassDef] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions[node.name] = node
        elif isinstance(node, ast.ClassDef):
            classes[node.name] = node
    sources: dict[str, str] = {}

    def source(node) -> str:
        return ast.unparse(_strip_docstrings(node))

    for name, node in {**functions, **classes}.items():
        sources[name] = source(node)

    def closure(start_src: str) -> str:
        seen, todo, parts = set(), [start_src], []
        while todo:
            src = todo.pop()
            parts.append(src)
            for ident in set(re.findall(r"\b[A-Za-z_]\w*\b", src)):
                if ident in sources and ident not in seen:
                    seen.add(ident)
                    todo.append(sources[ident])
        return "\n".join(parts)

    def category(src: str) -> str | None:
        text = closure(src)
        for cat, _ in CATEGORIES:
            if re.search(patterns[cat], text):
                return cat
        return None

    result: dict[str, str | None] = {}
    for name, node in functions.items():
        if name.startswith("test"):
            result[name] = category(sources[name])
    for cname, cnode in classes.items():
        for sub in cnode.body:
            if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                    sub.name.startswith("test"):
                result[f"{cname}::{sub.name}"] = category(source(sub))
    return result


def message_category(exc_type: str, message: str) -> str | None:
    text = f"{exc_type}: {message}"
    for cat, pattern in MESSAGE_CATEGORIES:
        if re.search(pattern, text, re.I):
            return cat
    return None


def test_key(nodeid: str) -> str:
    """``file::Class::test[param]`` -> ``Class::test`` (the key classify_file uses)."""
    parts = nodeid.split("::")[1:]
    if parts:
        parts[-1] = parts[-1].split("[", 1)[0]
    return "::".join(parts)


# --------------------------------------------------------------------------- imports

def _module_level(tree: ast.Module):
    """Statements run at import time (not inside functions or classes)."""
    todo = list(tree.body)
    while todo:
        node = todo.pop(0)
        yield node
        if isinstance(node, (ast.If, ast.Try, ast.With)) or \
                type(node).__name__ == "TryStar":
            for field in ("body", "orelse", "finalbody", "handlers"):
                for sub in getattr(node, field, []) or []:
                    todo.append(sub)
                    if isinstance(sub, ast.ExceptHandler):
                        todo.extend(sub.body)


def collection_imports(path: Path) -> tuple[list[tuple[str, str | None]], set[str]]:
    """What a test file imports from mxnet when it is collected: [(module, name or None)],
    and the local modules it imports (``common``, ``models``)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return [], set()
    needed, local = [], set()
    for node in _module_level(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "mxnet" or alias.name.startswith("mxnet."):
                    needed.append((alias.name, None))
                elif alias.name in ("common", "models"):
                    local.add(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "mxnet" or node.module.startswith("mxnet."):
                for alias in node.names:
                    if alias.name != "*":
                        needed.append((node.module, alias.name))
                    else:
                        needed.append((node.module, None))
            elif node.module in ("common", "models"):
                local.add(node.module)
    return needed, local


_IMPORT_CHECK = """
import importlib, json, sys
out = []
for module, name in json.loads(sys.stdin.read()):
    try:
        m = importlib.import_module(module)
        if name is not None and not hasattr(m, name):
            try:
                importlib.import_module(module + "." + name)
            except ImportError:
                out.append([module, name, "cannot import name %r from %r" % (name, module)])
    except Exception as e:
        out.append([module, name, "%s: %s" % (type(e).__name__, e)])
print("MXNET-COMPAT-IMPORTS" + json.dumps(out))
"""


def missing_imports(python: str, unittest_dir: Path, files: list[str]) -> list[dict]:
    """The mxnet names the selected files (and the ``common``/``models`` helpers they
    import) need at collection time and mxcore lacks; each one alone stops whole files
    from being collected, which hides every later failure in them."""
    helpers = {"common": unittest_dir / "common.py",
               "models": unittest_dir.parent / "common" / "models.py"}
    helper_needs = {k: collection_imports(p) for k, p in helpers.items() if p.exists()}
    users: dict[tuple, set] = collections.defaultdict(set)
    for f in files:
        needed, local = collection_imports(unittest_dir / f)
        for item in needed:
            users[item].add(f)
        seen = set()
        while local:
            helper = local.pop()
            if helper in seen or helper not in helper_needs:
                continue
            seen.add(helper)
            h_needed, h_local = helper_needs[helper]
            for item in h_needed:
                users[(item[0], item[1], helper + ".py")].add(f)
            local |= h_local
    keys = sorted({(k[0], k[1]) for k in users}, key=lambda k: (k[0], k[1] or ""))
    r = subprocess.run([python, "-c", _IMPORT_CHECK], input=json.dumps(keys),
                       env=side_env("mxcore"), capture_output=True, text=True, timeout=600)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("MXNET-COMPAT-IMPORTS")),
                None)
    if line is None:
        raise SystemExit(f"import check failed:\n{r.stdout}{r.stderr}")
    out = []
    for module, name, error in json.loads(line[len("MXNET-COMPAT-IMPORTS"):]):
        blocked, via = set(), set()
        for k, fs in users.items():
            if (k[0], k[1]) == (module, name):
                blocked |= fs
                via.add(k[2] if len(k) == 3 else "the test file")
        statement = f"from {module} import {name}" if name else f"import {module}"
        category = next((cat for cat, pattern in CATEGORIES if cat != "network"
                         and re.search(pattern, statement)), None)
        out.append({"import": statement, "error": error, "files": sorted(blocked),
                    "via": sorted(via), "out_of_scope": category})
    out.sort(key=lambda e: (-len(e["files"]), e["import"]))
    return out


def format_missing_imports(items: list[dict], tests_per_file: dict) -> str:
    lines = ["Imports made at collection time that mxcore lacks (each stops the files named "
             "from being collected at all):"]
    def blocked(e):
        return sum(tests_per_file.get(f, 0) for f in e["files"])
    for e in sorted(items, key=lambda e: (-len(e["files"]), -blocked(e), e["import"])):
        n_tests = blocked(e)
        files = ", ".join(e["files"][:5]) + (f", +{len(e['files']) - 5}"
                                             if len(e["files"]) > 5 else "")
        scope = f" [{e['out_of_scope']}]" if e.get("out_of_scope") else ""
        lines.append(f"  {e['import']:58s} {len(e['files']):3d} files {n_tests:4d} tests"
                     f"  (in {', '.join(e['via'])}: {files}){scope}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- comparing

def normalise_cause(exc_type: str, message: str) -> str:
    """Groups failures that differ only in numbers, addresses or array contents."""
    msg = _first_line(message)
    msg = re.sub(r" \((?:/|[A-Za-z]:\\)[^()]*\)$", "", msg)  # "(/path/of/module.py)" of ImportError
    msg = re.sub(r"0x[0-9a-fA-F]+", "0x?", msg)
    msg = re.sub(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w])", "N", msg)
    msg = re.sub(r"\[[^\[\]]{40,}\]", "[...]", msg)
    msg = re.sub(r"\s+", " ", msg).strip()
    if len(msg) > 160:
        msg = msg[:157] + "..."
    if not exc_type and msg.startswith("assert "):
        exc_type = "AssertionError"
    exc_type = exc_type or "?"
    return f"{exc_type}: {msg}" if msg else exc_type


def compare(files: list[str], results: dict, kfilter=None, categories=None) -> dict:
    """Per-file counts and per-test outcomes of both sides.

    ``results[side][file]`` is a run record (or None when that side was not run).
    ``categories[file]`` maps test keys to an out-of-scope category or None.
    """
    rows, tests = [], {}
    for file in files:
        mx = results.get("mxnet", {}).get(file)
        co = results.get("mxcore", {}).get(file)
        mx_tests = dict((mx or {}).get("tests", {}))
        if kfilter is not None and mx is not None and mx.get("_cached"):
            mx_tests = {n: e for n, e in mx_tests.items() if kfilter(n)}
        co_tests = dict((co or {}).get("tests", {}))
        nodeids = list(mx_tests) + [n for n in co_tests if n not in mx_tests]
        co_collect = (co or {}).get("collect_errors") or []
        cats = (categories or {}).get(file, {})
        row = collections.Counter()
        for nodeid in nodeids:
            m = mx_tests.get(nodeid)
            c = co_tests.get(nodeid)
            if c is None and co is not None:
                if co_collect:
                    err = co_collect[0]
                    c = {"outcome": "error", "exc_type": err["exc_type"],
                         "message": err["message"], "where": err.get("where", ""),
                         "collection_error": True}
                else:
                    c = {"outcome": "missing", "exc_type": "NotCollected",
                         "message": "not collected on mxcore"}
            rec = {"file": file}
            if mx is not None:
                rec["mxnet"] = _outcome(m) if m else "missing"
                if m and m.get("outcome") not in PASSED and m.get("exc_type"):
                    rec["mxnet_exc_type"] = m["exc_type"]
                    rec["mxnet_message"] = m.get("message", "")
            if co is not None:
                rec["mxcore"] = c["outcome"]
                if c["outcome"] not in PASSED:
                    rec["mxcore_exc_type"] = c.get("exc_type", "")
                    rec["mxcore_message"] = c.get("message", "")
                    if c.get("where"):
                        rec["mxcore_where"] = c["where"]
                    if c.get("collection_error"):
                        rec["mxcore_collection_error"] = True
            cat = cats.get(test_key(nodeid))
            if cat is None and co is not None and c["outcome"] not in PASSED \
                    and not c.get("collection_error"):
                cat = message_category(c.get("exc_type", ""), c.get("message", ""))
            if cat:
                rec["out_of_scope"] = cat
            tests[nodeid] = rec
            mx_pass = rec.get("mxnet") in PASSED
            co_pass = rec.get("mxcore") in PASSED
            row["collected"] += 1
            row["pass_mxnet"] += mx_pass
            row["pass_mxcore"] += co_pass
            row["pass_both"] += mx_pass and co_pass
            row["pass_mxcore_only"] += co_pass and not mx_pass and mx is not None
            row["out_of_scope"] += bool(cat) and mx_pass and not co_pass
        rows.append({"file": file, **{k: row[k] for k in (
            "collected", "pass_mxnet", "pass_mxcore", "pass_both", "pass_mxcore_only",
            "out_of_scope")},
            "mxnet_status": (mx or {}).get("status"), "mxcore_status": (co or {}).get("status"),
            "mxnet_seconds": (mx or {}).get("duration"),
            "mxcore_seconds": (co or {}).get("duration"),
            "mxcore_note": _note(co)})
    return {"rows": rows, "tests": tests}


def _note(record: dict | None) -> str:
    if not record:
        return ""
    status = record.get("status")
    if status == "collection-error" and record.get("collect_errors"):
        err = record["collect_errors"][0]
        return normalise_cause(err["exc_type"], err["message"])
    if status in ("timeout", "crashed"):
        return f"{status} in {record.get('last_started') or '?'}"
    return "" if status == "ok" else str(status)


def rank_failures(tests: dict, include_out_of_scope: bool = False) -> tuple[list, dict]:
    """mxcore failures of tests that pass on MXNet, grouped by normalised cause, most
    frequent first; plus the out-of-scope ones counted per category."""
    groups: dict[str, dict] = {}
    scope = collections.Counter()
    for nodeid, rec in tests.items():
        if rec.get("mxnet") not in PASSED or rec.get("mxcore") in PASSED or "mxcore" not in rec:
            continue
        cat = rec.get("out_of_scope")
        if cat:
            scope[cat] += 1
            if not include_out_of_scope:
                continue
        outcome = rec["mxcore"]
        if outcome == "skipped":
            cause = "Skipped: " + normalise_cause("", rec.get("mxcore_message", "")).lstrip("?: ")
        else:
            cause = normalise_cause(rec.get("mxcore_exc_type", ""), rec.get("mxcore_message", ""))
        if rec.get("mxcore_collection_error"):
            cause = f"[collection] {cause}"
        g = groups.setdefault(cause, {"cause": cause, "count": 0, "files": collections.Counter(),
                                      "examples": [], "where": collections.Counter()})
        g["count"] += 1
        g["files"][rec["file"]] += 1
        if len(g["examples"]) < 3:
            g["examples"].append(nodeid)
        if rec.get("mxcore_where"):
            g["where"][rec["mxcore_where"]] += 1
    ranked = sorted(groups.values(), key=lambda g: (-g["count"], g["cause"]))
    for g in ranked:
        g["files"] = dict(g["files"].most_common())
        g["where"] = g["where"].most_common(1)[0][0] if g["where"] else ""
    return ranked, dict(scope.most_common())


# --------------------------------------------------------------------------- printing

def format_table(rows: list[dict], with_mxnet: bool, with_mxcore: bool) -> str:
    head = ["file", "collected", "pass MXNet", "pass mxcore", "both", "mxcore only",
            "out of scope", "MXNet s", "mxcore s", "mxcore note"]
    lines = []
    total = collections.Counter()
    data = []
    for r in rows:
        for k in ("collected", "pass_mxnet", "pass_mxcore", "pass_both", "pass_mxcore_only",
                  "out_of_scope"):
            total[k] += r[k]
        for k in ("mxnet_seconds", "mxcore_seconds"):
            total[k] += r[k] or 0
        data.append([r["file"], r["collected"],
                     r["pass_mxnet"] if with_mxnet else "-",
                     r["pass_mxcore"] if with_mxcore else "-",
                     r["pass_both"] if with_mxnet and with_mxcore else "-",
                     r["pass_mxcore_only"] if with_mxnet and with_mxcore else "-",
                     r["out_of_scope"] if with_mxnet and with_mxcore else "-",
                     _secs(r["mxnet_seconds"]), _secs(r["mxcore_seconds"]),
                     r["mxcore_note"][:70]])
    data.append(["total", total["collected"],
                 total["pass_mxnet"] if with_mxnet else "-",
                 total["pass_mxcore"] if with_mxcore else "-",
                 total["pass_both"] if with_mxnet and with_mxcore else "-",
                 total["pass_mxcore_only"] if with_mxnet and with_mxcore else "-",
                 total["out_of_scope"] if with_mxnet and with_mxcore else "-",
                 _secs(total["mxnet_seconds"]), _secs(total["mxcore_seconds"]), ""])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *data)]
    fmt = "  ".join("{:<%d}" % widths[0] if i == 0 or i == len(head) - 1 else "{:>%d}" % w
                    for i, w in enumerate(widths))
    lines.append(fmt.format(*head).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    for i, d in enumerate(data):
        if i == len(data) - 1:
            lines.append("  ".join("-" * w for w in widths))
        lines.append(fmt.format(*[str(x) for x in d]).rstrip())
    return "\n".join(lines)


def _secs(v) -> str:
    return "" if v in (None, "") else f"{v:.0f}"


def format_failures(ranked: list, scope: dict, top: int | None) -> str:
    total = sum(g["count"] for g in ranked)
    left_out = ", ".join(f"{k} {v}" for k, v in scope.items())
    lines = [f"mxcore failures of tests that pass on MXNet {MXNET_VERSION}: {total} tests, "
             f"{len(ranked)} causes"
             + (f" (out of scope, not listed: {left_out})" if scope else "")]
    for i, g in enumerate(ranked[:top] if top else ranked, 1):
        lines.append(f"{i:4d}. {g['count']:4d}  {g['cause']}")
        files = ", ".join(f"{f} {n}" for f, n in list(g["files"].items())[:4])
        if len(g["files"]) > 4:
            files += f", +{len(g['files']) - 4} files"
        lines.append(f"            {files}" + (f"; raised at {g['where']}" if g["where"] else ""))
        lines.append(f"            e.g. {g['examples'][0]}")
    if top and len(ranked) > top:
        lines.append(f"      ... {len(ranked) - top} more causes (--top 0 lists all)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- MXNet cache

def load_cache(path: Path | None) -> dict | None:
    if path is None or not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != RESULTS_FORMAT:
        print(f"note: {path} has another format; ignoring it", file=sys.stderr)
        return None
    return data


def save_cache(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _slim(record: dict) -> dict:
    out = {k: v for k, v in record.items() if k != "workdir"}
    out["tests"] = {n: {k: v for k, v in e.items() if k != "where"}
                    for n, e in record["tests"].items()}
    return out


# --------------------------------------------------------------------------- setup

def setup_mxnet(directory: Path, base_python: str) -> str:
    directory = directory.resolve()
    python = directory / "bin" / "python"
    if not python.exists():
        subprocess.run([base_python, "-m", "venv", str(directory)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", *MXNET_REQUIREMENTS], check=True)
    r = subprocess.run([str(python), "-c",
                        "import mxnet; print(mxnet.__version__, "
                        "mxnet.nd.ones((2,)).asnumpy().tolist())"],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0 or not r.stdout.startswith(MXNET_VERSION):
        raise SystemExit(f"mxnet {MXNET_VERSION} does not work in {directory}:\n"
                         f"{r.stdout}{r.stderr}")
    print(f"MXNet {r.stdout.strip()} works in {directory}; run with --mxnet-python {python}")
    return str(python)


# --------------------------------------------------------------------------- main

def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Run Apache MXNet 1.9.1's unit-test files against mxcore (through an "
                    "`import mxnet` alias) and against MXNet 1.9.1, and compare.")
    p.add_argument("--tests", type=Path, default=DEFAULT_TESTS,
                   help="folder with unittest/ and common/ of MXNet 1.9.1's tests "
                        "(default: %(default)s)")
    p.add_argument("--files", help="comma-separated test files (test_ndarray.py,loss,...)")
    p.add_argument("-k", dest="kexpr", help="passed to pytest -k on both sides")
    p.add_argument("--side", choices=("both", "mxcore", "mxnet"), default="both",
                   help="which sides to run; MXNet's results are reused from --mxnet-results "
                        "when not run (default: %(default)s)")
    p.add_argument("--mxcore-python", default=sys.executable,
                   help="python with mxcore installed (default: this one)")
    p.add_argument("--mxnet-python", help="python with mxnet 1.9.1 installed")
    p.add_argument("--mxnet-results", type=Path, default=DEFAULT_RESULTS,
                   help="JSON cache of MXNet's side: reused for files it holds, updated after "
                        "MXNet runs without -k (default: %(default)s)")
    p.add_argument("--rerun-mxnet", action="store_true",
                   help="run MXNet's side even for files the cache holds")
    p.add_argument("--setup-mxnet", type=Path, metavar="DIR",
                   help="create a virtualenv with mxnet 1.9.1 in DIR, then use it")
    p.add_argument("--base-python", default=sys.executable,
                   help="python that --setup-mxnet makes the virtualenv from")
    p.add_argument("--file-timeout", type=float, default=600,
                   help="wall-clock seconds per file and side; 0: none (default: %(default)s)")
    p.add_argument("--test-timeout", type=float, default=300,
                   help="seconds per test, with pytest-timeout where installed; 0: none "
                        "(default: %(default)s)")
    p.add_argument("--jobs", "-j", type=int, default=1, help="files run at once")
    p.add_argument("--json", type=Path, help="write per-test outcomes of both sides here")
    p.add_argument("--failures", action="store_true",
                   help="print mxcore's failures of tests passing on MXNet, by cause")
    p.add_argument("--include-out-of-scope", action="store_true",
                   help="rank out-of-scope tests' failures with the others")
    p.add_argument("--top", type=int, default=40, help="causes --failures prints (0: all)")
    p.add_argument("--stub-missing", action="store_true",
                   help="diagnostic: names and modules mxcore lacks that a test file needs "
                        "at import become placeholders raising MissingInMxcore when a test "
                        "uses them, so that the rest of the file runs (mxnet.x is then a "
                        "proxy of mxcore.x, not the same object)")
    p.add_argument("--keep", type=Path, metavar="DIR",
                   help="keep each run's junit xml, progress and log under DIR")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.setup_mxnet:
        args.mxnet_python = setup_mxnet(args.setup_mxnet, args.base_python)
    unittest_dir = (args.tests / "unittest").resolve()
    if not unittest_dir.is_dir():
        raise SystemExit(f"no {unittest_dir}: pass --tests DIR (the folder holding unittest/)")
    files = list_files(unittest_dir, args.files)
    digests = {f: file_digest(unittest_dir / f) for f in files}

    run_mxcore = args.side in ("both", "mxcore")
    want_mxnet = args.side in ("both", "mxnet")
    cache = load_cache(args.mxnet_results)
    results: dict[str, dict] = {"mxnet": {}, "mxcore": {}}
    mxnet_todo: list[str] = []
    if want_mxnet:
        for f in files:
            rec = (cache or {}).get("files", {}).get(f)
            if rec and rec.get("digest") == digests[f] and not args.rerun_mxnet:
                results["mxnet"][f] = dict(rec, _cached=True)
            else:
                mxnet_todo.append(f)
        if mxnet_todo and not args.mxnet_python:
            if args.side == "mxnet":
                raise SystemExit("MXNet's side needs --mxnet-python (or --setup-mxnet DIR)")
            print(f"note: no MXNet results for {', '.join(mxnet_todo)} "
                  f"(not in {args.mxnet_results}; pass --mxnet-python)", file=sys.stderr)
            mxnet_todo = []

    probes = {}
    if run_mxcore:
        probes["mxcore"] = _probe(args.mxcore_python, side_env("mxcore"))
        if probes["mxcore"].get("mxnet_module") != "mxcore":
            raise SystemExit("`import mxnet` does not give mxcore with "
                             f"{args.mxcore_python}: {probes['mxcore']}")
    if mxnet_todo:
        probes["mxnet"] = _probe(args.mxnet_python, side_env("mxnet"))
        if probes["mxnet"].get("mxnet") != MXNET_VERSION:
            raise SystemExit(f"{args.mxnet_python} has no mxnet {MXNET_VERSION}: "
                             f"{probes['mxnet']}")
    for side, info in probes.items():
        if info.get("missing"):
            print(f"note: {side} side lacks {', '.join(info['missing'])}, which some of "
                  "MXNet's test files import", file=sys.stderr)
        if not info.get("pytest_timeout") and args.test_timeout:
            print(f"note: no pytest-timeout on the {side} side: only the per-file limit "
                  "applies", file=sys.stderr)

    tasks = [("mxnet", f) for f in mxnet_todo] + ([("mxcore", f) for f in files]
                                                  if run_mxcore else [])
    # Big files first, so that parallel runs end together.
    tasks.sort(key=lambda t: -(unittest_dir / t[1]).stat().st_size)
    workdir = Path(tempfile.mkdtemp(prefix="mxnet-compat-")) if args.keep is None \
        else args.keep.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    pythons = {"mxnet": args.mxnet_python, "mxcore": args.mxcore_python}
    lock = threading.Lock()
    t0 = time.monotonic()

    def one(task):
        side, f = task
        rec = run_file(side, pythons[side], unittest_dir, f, workdir, kexpr=args.kexpr,
                       file_timeout=args.file_timeout, test_timeout=args.test_timeout,
                       has_timeout_plugin=probes[side].get("pytest_timeout", False),
                       stub_missing=args.stub_missing)
        rec["digest"] = digests[f]
        with lock:
            results[side][f] = rec
            if not args.quiet:
                passed = sum(e["outcome"] in PASSED for e in rec["tests"].values())
                print(f"[{time.monotonic() - t0:6.0f}s] {side:6s} {f:28s} {rec['status']:16s}"
                      f" {passed}/{rec['collected']} passed in {rec['duration']:.0f}s",
                      file=sys.stderr, flush=True)
        return rec

    try:
        with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
            for fut in concurrent.futures.as_completed([pool.submit(one, t) for t in tasks]):
                fut.result()
    except KeyboardInterrupt:
        with _RUNNING_LOCK:
            for proc in list(_RUNNING):
                _kill_group(proc)
        raise
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)

    if mxnet_todo and not args.kexpr:
        cache = cache or {"format": RESULTS_FORMAT, "files": {}}
        cache.update({"format": RESULTS_FORMAT, "mxnet_version": MXNET_VERSION,
                      "python": probes["mxnet"]["python"], "pytest": probes["mxnet"]["pytest"],
                      "numpy": probes["mxnet"].get("numpy"), "scipy": probes["mxnet"].get("scipy"),
                      "platform": f"{platform.system()} {platform.machine()}",
                      "test_timeout": args.test_timeout, "file_timeout": args.file_timeout,
                      "measured": datetime.date.today().isoformat()})
        for f in mxnet_todo:
            cache["files"][f] = _slim(results["mxnet"][f])
        save_cache(args.mxnet_results, cache)
        print(f"MXNet results saved to {args.mxnet_results}", file=sys.stderr)

    categories = {f: classify_file(unittest_dir / f) for f in files}
    kfilter = keyword_filter(args.kexpr)
    with_mxnet = bool(results["mxnet"])
    cmp = compare(files, results, kfilter, categories)
    print(format_table(cmp["rows"], with_mxnet, run_mxcore))
    ranked, scope = rank_failures(cmp["tests"], args.include_out_of_scope)
    imports = missing_imports(args.mxcore_python, unittest_dir, files) \
        if run_mxcore and (args.failures or args.json) else []
    if args.failures and with_mxnet and run_mxcore:
        print()
        print(format_failures(ranked, scope, args.top or None))
    for row in cmp["rows"]:
        row["mxcore_missing_imports"] = [e["import"] for e in imports if row["file"] in e["files"]]
    if args.failures and imports:
        print()
        print(format_missing_imports(imports, {r["file"]: r["pass_mxnet"] if with_mxnet
                                               else r["collected"] for r in cmp["rows"]}))
        print()
        print("The same, per file:")
        for row in cmp["rows"]:
            if row["mxcore_missing_imports"]:
                names = [i.replace("from ", "").replace(" import ", ".").replace("import ", "")
                         for i in row["mxcore_missing_imports"]]
                print(f"  {row['file']:26s} {', '.join(names)}")
    if args.json:
        meta = {"mxnet_version": MXNET_VERSION, "date": datetime.date.today().isoformat(),
                "probes": probes, "k": args.kexpr, "files": files,
                "stub_missing": args.stub_missing,
                "mxnet_results": str(args.mxnet_results) if with_mxnet else None}
        payload = {"meta": meta, "rows": cmp["rows"], "tests": cmp["tests"],
                   "failure_causes": [{k: g[k] for k in ("count", "cause", "files", "where",
                                                         "examples")} for g in ranked],
                   "out_of_scope": scope, "missing_imports": imports}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
