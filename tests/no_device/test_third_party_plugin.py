"""End-to-end test of the plugin contract with real, pip-installed plugins.

A module-scoped fixture writes four throw-away distributions into a temp folder
and pip-installs each with ``pip install --target`` (no deps, no build
isolation, no index), so that their ``*.dist-info/entry_points.txt`` is found by
``importlib.metadata`` once the target folder is on ``PYTHONPATH``:

* ``mxcore-toy``        (entry point ``toy``): a device kind ``toy`` on host numpy
  memory; a counting ``add`` kernel on ``cpu`` with priority 10; a ``multiply``
  kernel on ``cpu`` with priority 10 guarded to large inputs; ``add`` on ``toy``.
* ``mxcore-toy-broken`` (``toybroken``): its module raises on import.
* ``mxcore-toy-oldapi`` (``toyoldapi``): targets another plugin API version.
* ``mxcore-toy-tie``    (``toytie``): registers a device and a kernel, then an
  ``add`` kernel on ``cpu`` tying with mxcore-cpu's (same dtypes, priority 0).

Every check runs mxcore in a fresh subprocess (``python -c`` or
``python -m mxcore.cli``), so plugin discovery really goes through entry points
and the test process's plugin system is never touched.

Note on policy: the shipped registry.toml sets ``[devices.cpu] prefer =
["mxcore-cpu"]``, which ranks mxcore-cpu first on the CPU whatever the
priorities.  The priority and guard checks therefore run under a user policy
(MXCORE_REGISTRY) that clears that device-level preference.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import hal

PY = sys.executable
TIMEOUT = 120

# --------------------------------------------------------------------------------------
# the throw-away distributions
# --------------------------------------------------------------------------------------

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "{version}"
description = "throw-away mxcore plugin written by tests/no_device/test_third_party_plugin.py"
requires-python = ">=3.11"
dependencies = ["mxcore-hal"]

[project.entry-points."mxcore.plugins"]
{ep} = "{pkg}.plugin"

[tool.setuptools]
packages = ["{pkg}"]
"""

TOY_PLUGIN = '''\
"""A third-party device + kernel plugin: needs only hal and numpy."""
import numpy as np

import hal

MXCORE_PLUGIN_API = hal.PLUGIN_API_VERSION

#: how often each kernel ran (read by the test through ``import toy_plugin.plugin``)
CALLS = {"add_cpu": 0, "multiply_cpu": 0, "add_toy": 0}


class ToyDevice(hal.DeviceType):
    kind = "toy"
    xp = np
    host_memory = True
    dtypes = ("float32", "float64")
    description = "toy device (host numpy memory)"


def add_counting(a, b):
    CALLS["add_cpu"] += 1
    return np.subtract(a, np.negative(b))       # a + b, computed differently


def multiply_large(a, b):
    CALLS["multiply_cpu"] += 1
    return np.multiply(a, b)


def large_only(shapes, dtypes, attrs):
    return all(int(np.prod(s)) >= 10000 for s in shapes)


def add_toy(a, b):
    CALLS["add_toy"] += 1
    return np.add(a, b)


@hal.hookimpl
def register_devices(register):
    register(ToyDevice())


@hal.hookimpl
def register_kernels(register):
    register(hal.Kernel(op="add", device="cpu", fn=add_counting, name="add_counting",
                        dtypes={"float32", "float64"}, priority=10))
    register(hal.Kernel(op="multiply", device="cpu", fn=multiply_large, name="multiply_large",
                        dtypes={"float32"}, priority=10, applies=large_only))
    register(hal.Kernel(op="add", device="toy", fn=add_toy, name="add_toy",
                        dtypes={"float32", "float64"}))
'''

BROKEN_PLUGIN = '''\
import hal

MXCORE_PLUGIN_API = hal.PLUGIN_API_VERSION

raise RuntimeError("toy-broken: this plugin is deliberately broken")
'''

OLDAPI_PLUGIN = '''\
import numpy as np

import hal

MXCORE_PLUGIN_API = {api}


class OldDevice(hal.DeviceType):
    kind = "olddev"


@hal.hookimpl
def register_devices(register):
    register(OldDevice())


@hal.hookimpl
def register_kernels(register):
    register(hal.Kernel(op="add", device="cpu", fn=np.add, name="old_add",
                        dtypes={{"float32"}}, priority=3))
'''

TIE_PLUGIN = '''\
import numpy as np

import hal

MXCORE_PLUGIN_API = hal.PLUGIN_API_VERSION


class TieDevice(hal.DeviceType):
    kind = "tiedev"


@hal.hookimpl
def register_devices(register):
    register(TieDevice())


@hal.hookimpl
def register_kernels(register):
    # a valid kernel first: it must be rolled back with the rest
    register(hal.Kernel(op="negative", device="cpu", fn=np.negative, name="tie_negative",
                        dtypes={"float32"}, priority=7))
    # same op, device, dtype and priority as mxcore-cpu's add: a contract violation
    register(hal.Kernel(op="add", device="cpu", fn=np.add, name="tie_add",
                        dtypes={"float32"}, priority=0))
'''

WRONG_API = hal.PLUGIN_API_VERSION + 41

PACKAGES = {
    # key: (distribution, entry-point name, import package, plugin module source)
    "toy": ("mxcore-toy", "toy", "toy_plugin", TOY_PLUGIN),
    "broken": ("mxcore-toy-broken", "toybroken", "toy_broken", BROKEN_PLUGIN),
    "oldapi": ("mxcore-toy-oldapi", "toyoldapi", "toy_oldapi", OLDAPI_PLUGIN.format(api=WRONG_API)),
    "tie": ("mxcore-toy-tie", "toytie", "toy_tie", TIE_PLUGIN),
}


def install(root: Path, packages) -> dict:
    """Build and pip-install each throw-away plugin into its own target folder;
    returns {key: folder}.  The installs run in parallel."""
    procs, out = {}, {}
    for key, (dist, ep, pkg, source) in packages.items():
        src = root / "src" / key
        (src / pkg).mkdir(parents=True)
        (src / "pyproject.toml").write_text(PYPROJECT.format(dist=dist, version="0.3.1", ep=ep,
                                                             pkg=pkg))
        (src / pkg / "__init__.py").write_text("")
        (src / pkg / "plugin.py").write_text(source)
        out[key] = root / "site" / key
        procs[key] = subprocess.Popen(
            [PY, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
             "--no-index", "--no-cache-dir", "--disable-pip-version-check",
             "--target", str(out[key]), str(src)],
            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for key, proc in procs.items():
        log, _ = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, f"pip install of the {key} plugin failed:\n{log}"
        dist_info = list(out[key].glob("*.dist-info/entry_points.txt"))
        assert dist_info, f"pip installed no entry points for {key}: {list(out[key].iterdir())}"
    return out


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """Every throw-away plugin of PACKAGES, installed: {key: folder}."""
    return install(tmp_path_factory.mktemp("third_party_plugins"), PACKAGES)


@pytest.fixture
def workdir(tmp_path):
    return tmp_path


#: variables that change which plugins load or how kernels resolve: the tests set their own
PLUGIN_ENV = ("MXCORE_PLUGINS", "MXCORE_NO_THIRD_PARTY", "MXCORE_TRACE_PLUGINS",
              "MXCORE_REGISTRY", "MXCORE_DEVICE")


def _env(site_dirs, policy=None, **extra):
    env = {k: v for k, v in os.environ.items() if k not in PLUGIN_ENV}
    paths = [str(p) for p in site_dirs]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    if policy is not None:
        env["MXCORE_REGISTRY"] = str(policy)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def cli(args, site_dirs, cwd, policy=None, check=True, **extra):
    """Run ``python -m mxcore.cli ARGS``; returns the CompletedProcess."""
    proc = subprocess.run([PY, "-m", "mxcore.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=TIMEOUT, env=_env(site_dirs, policy, **extra))
    if check:
        assert proc.returncode == 0, \
            f"mxcore {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def py(code, site_dirs, cwd, policy=None, **extra):
    """Run ``code`` in a fresh interpreter; it must print one JSON document as
    its last line, which is returned parsed."""
    proc = subprocess.run([PY, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True,
                          text=True, timeout=TIMEOUT, env=_env(site_dirs, policy, **extra))
    assert proc.returncode == 0, f"subprocess failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def plugins_json(site_dirs, cwd, policy=None, **extra):
    proc = cli(["plugins", "--json"], site_dirs, cwd, policy, **extra)
    return {p["name"]: p for p in json.loads(proc.stdout)}


def explain(op, shapes, site_dirs, cwd, policy=None, dtype="float32", **extra):
    args = ["kernels", "explain", op, "--device", "cpu", "--dtype", dtype]
    for s in shapes:
        args += ["--shape", s]
    return cli(args, site_dirs, cwd, policy, **extra).stdout


def winner_line(text):
    lines = [ln for ln in text.splitlines() if ln.startswith("winner:")]
    assert len(lines) == 1, text
    return lines[0]


def candidate_line(text, qualified_name):
    lines = [ln for ln in text.splitlines() if qualified_name in ln and not ln.startswith("winner")]
    assert len(lines) == 1, f"{qualified_name} not listed once in:\n{text}"
    return lines[0]


def write_policy(path: Path, body: str) -> Path:
    path.write_text(textwrap.dedent(body))
    return path


NO_CPU_PREFERENCE = """\
[devices.cpu]
prefer = []
"""

# What runs for a + b and a * b, and how often each toy kernel ran.
ADD_MUL_PROBE = """
import json
import numpy as np
import mxcore as mx
import toy_plugin.plugin as toy

a, b = mx.nd.ones((2, 3)), mx.nd.ones((2, 3))
s = (a + b).asnumpy()
after_add = dict(toy.CALLS)
small = (a * b).asnumpy()
after_small_mul = dict(toy.CALLS)
big = (mx.nd.ones((200, 100)) * mx.nd.ones((200, 100)) * 3).asnumpy()
after_big_mul = dict(toy.CALLS)
small2 = (a * b).asnumpy()
print(json.dumps({"sum": s.tolist(), "small": small.tolist(), "big_sum": float(big.sum()),
                  "small2": small2.tolist(), "after_add": after_add,
                  "after_small_mul": after_small_mul, "after_big_mul": after_big_mul,
                  "final": dict(toy.CALLS)}))
"""

# --------------------------------------------------------------------------------------
# (a) discovery
# --------------------------------------------------------------------------------------


def test_plugin_is_discovered_with_hooks_devices_and_kernel_counts(sites, workdir):
    infos = plugins_json([sites["toy"]], workdir)
    toy = infos["toy"]
    assert toy["error"] is None and toy["skipped"] is None, toy
    assert toy["distribution"] == "mxcore-toy"
    assert toy["version"] == "0.3.1"
    assert toy["module"] == "toy_plugin.plugin"
    assert toy["builtin"] is False
    assert toy["hooks"] == ["register_devices", "register_kernels"]
    assert toy["devices"] == ["toy"]
    assert toy["kernels"] == 3
    assert toy["ops"] == 0
    # the built-ins still load beside it
    assert infos["cpu"]["error"] is None and infos["cpu"]["devices"] == ["cpu"]
    assert infos["core"]["error"] is None and infos["core"]["ops"] > 50

    text = cli(["plugins"], [sites["toy"]], workdir).stdout
    block = text[text.index("toy "):]
    assert "mxcore-toy 0.3.1" in block.splitlines()[0]
    assert "(built-in)" not in block.splitlines()[0]
    assert "loaded" in block.splitlines()[1]
    assert "hooks: register_devices, register_kernels; devices: toy; ops: 0; kernels: 3" in block


def test_plugin_device_and_kernels_are_listed_and_usable(sites, workdir):
    devices = json.loads(cli(["devices", "--json"], [sites["toy"]], workdir).stdout)
    assert devices["toy"] == {"status": "available", "provider": "mxcore-toy"}
    assert devices["cpu"]["provider"] == "mxcore-cpu"

    rows = json.loads(cli(["kernels", "--op", "add", "--json"], [sites["toy"]], workdir).stdout)
    kernels = {(r["device"], r["kernel"]): r for r in rows}
    assert kernels[("cpu", "mxcore-toy:add_counting")]["priority"] == 10
    assert kernels[("cpu", "mxcore-cpu:elemwise.add")]["priority"] == 0
    assert kernels[("toy", "mxcore-toy:add_toy")]["dtypes"] == ["float32", "float64"]
    # the listing puts the higher priority first
    cpu_rows = [r["kernel"] for r in rows if r["device"] == "cpu"]
    assert cpu_rows.index("mxcore-toy:add_counting") < cpu_rows.index("mxcore-cpu:elemwise.add")
    guarded = json.loads(cli(["kernels", "--op", "multiply", "--device", "cpu", "--json"],
                             [sites["toy"]], workdir).stdout)
    assert {r["kernel"]: r["guarded"] for r in guarded} == {
        "mxcore-toy:multiply_large": True, "mxcore-cpu:elemwise.multiply": False}

    # arrays on the toy device run the toy kernel and stay on the toy device
    got = py("""
        import json
        import numpy as np
        import mxcore as mx
        import toy_plugin.plugin as toy
        dev = mx.device("toy")
        x = mx.nd.array(np.arange(6, dtype="float32").reshape(2, 3), ctx=dev)
        y = x + x
        print(json.dumps({"device": str(y.context), "value": y.asnumpy().tolist(),
                          "calls": toy.CALLS}))
    """, [sites["toy"]], workdir)
    assert got["device"] == "toy:0"
    assert got["value"] == [[0, 2, 4], [6, 8, 10]]
    assert got["calls"]["add_toy"] == 1


# --------------------------------------------------------------------------------------
# (b) ranking by priority
# --------------------------------------------------------------------------------------


def test_higher_priority_kernel_wins(sites, workdir):
    policy = write_policy(workdir / "policy.toml", NO_CPU_PREFERENCE)
    text = explain("add", ["2,3", "2,3"], [sites["toy"]], workdir, policy)
    assert winner_line(text) == ("winner: mxcore-toy:add_counting because it has the highest "
                                 "priority (10 > 0)"), text
    assert candidate_line(text, "mxcore-toy:add_counting").startswith(" * ")
    assert "REJECTED" not in candidate_line(text, "mxcore-cpu:elemwise.add")
    assert str(policy) in text  # the user policy file is named as a source

    got = py(ADD_MUL_PROBE, [sites["toy"]], workdir, policy)
    assert got["sum"] == [[2.0] * 3] * 2
    assert got["after_add"]["add_cpu"] == 1
    assert got["final"]["add_cpu"] == 1


# --------------------------------------------------------------------------------------
# (c) ranking by registry.toml
# --------------------------------------------------------------------------------------


def test_policy_preference_beats_priority(sites, workdir):
    policy = write_policy(workdir / "policy.toml", NO_CPU_PREFERENCE + """
        [ops.add.cpu]
        prefer = ["mxcore-cpu"]
    """)
    text = explain("add", ["2,3", "2,3"], [sites["toy"]], workdir, policy)
    assert winner_line(text) == ("winner: mxcore-cpu:elemwise.add because its provider is "
                                 "preferred by policy"), text
    assert "preferred providers: mxcore-cpu" in text
    assert "preference #1" in candidate_line(text, "mxcore-cpu:elemwise.add")
    toy_line = candidate_line(text, "mxcore-toy:add_counting")
    assert "not preferred" in toy_line and "REJECTED" not in toy_line

    got = py(ADD_MUL_PROBE, [sites["toy"]], workdir, policy)
    assert got["sum"] == [[2.0] * 3] * 2
    assert got["final"]["add_cpu"] == 0


@pytest.mark.parametrize("denied", ["mxcore-toy", "mxcore-toy:add_counting"])
def test_policy_deny_removes_plugin_kernel(sites, workdir, denied):
    policy = write_policy(workdir / "policy.toml", NO_CPU_PREFERENCE + f"""
        [ops.add.cpu]
        deny = ["{denied}"]
    """)
    text = explain("add", ["2,3", "2,3"], [sites["toy"]], workdir, policy)
    assert "REJECTED: denied by policy" in candidate_line(text, "mxcore-toy:add_counting")
    assert candidate_line(text, "mxcore-toy:add_counting").startswith(" x ")
    assert winner_line(text) == ("winner: mxcore-cpu:elemwise.add because it is the only kernel "
                                 "that accepts this call"), text

    got = py(ADD_MUL_PROBE, [sites["toy"]], workdir, policy)
    assert got["sum"] == [[2.0] * 3] * 2
    assert got["final"]["add_cpu"] == 0
    # deny is per op: the guarded multiply kernel is untouched
    assert got["final"]["multiply_cpu"] == 1


# --------------------------------------------------------------------------------------
# (d) guards
# --------------------------------------------------------------------------------------


def test_guard_makes_cpu_kernel_win_for_small_shapes(sites, workdir):
    policy = write_policy(workdir / "policy.toml", NO_CPU_PREFERENCE)
    small = explain("multiply", ["2,3", "2,3"], [sites["toy"]], workdir, policy)
    assert "REJECTED: guard declined" in candidate_line(small, "mxcore-toy:multiply_large")
    assert winner_line(small).startswith("winner: mxcore-cpu:elemwise.multiply because"), small

    large = explain("multiply", ["200,100", "200,100"], [sites["toy"]], workdir, policy)
    assert winner_line(large) == ("winner: mxcore-toy:multiply_large because it has the highest "
                                  "priority (10 > 0)"), large

    got = py(ADD_MUL_PROBE, [sites["toy"]], workdir, policy)
    assert got["small"] == [[1.0] * 3] * 2 and got["small2"] == got["small"]
    assert got["big_sum"] == 3.0 * 200 * 100
    # small -> cpu kernel, large -> toy kernel (once), small again -> cpu kernel
    assert got["after_small_mul"]["multiply_cpu"] == 0
    assert got["after_big_mul"]["multiply_cpu"] == 1
    assert got["final"]["multiply_cpu"] == 1


# --------------------------------------------------------------------------------------
# (e) a plugin that fails to import, (f) a plugin for another API version,
# (h) a plugin that breaks the priority contract -- all installed together
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def everything(sites, tmp_path_factory):
    """`mxcore plugins --json` and a probe with all four plugins installed."""
    cwd = tmp_path_factory.mktemp("everything")
    dirs = list(sites.values())
    policy = write_policy(cwd / "policy.toml", NO_CPU_PREFERENCE)
    infos = plugins_json(dirs, cwd, policy)
    text = cli(["plugins"], dirs, cwd, policy).stdout
    probe = py("""
        import json
        import mxcore as mx
        from mxcore.plugins import registry, system
        import toy_plugin.plugin as toy
        reg = registry()
        x = mx.nd.array([[1.0, -2.0, 3.0]])
        out = {
            "sum": (x + x).asnumpy().tolist(),
            "neg": (-x).asnumpy().tolist(),
            "dot": mx.nd.dot(x, x.T).asnumpy().tolist(),
            "calls": dict(toy.CALLS),
            "devices": sorted(reg.devices),
            "providers": sorted({k.provider for ks in reg.kernels.values() for k in ks}),
            "negative_cpu": sorted(k.provider + ":" + k.name
                                   for k in reg.kernels[("negative", "cpu")]),
            "add_cpu": sorted(k.provider + ":" + k.name for k in reg.kernels[("add", "cpu")]),
            "pluggy": sorted(n for n, _ in system().pm.list_name_plugin()),
        }
        print(json.dumps(out))
    """, dirs, cwd, policy)
    return infos, text, probe


def test_broken_plugin_is_listed_with_its_error_and_the_rest_works(everything):
    infos, text, probe = everything
    broken = infos["toybroken"]
    assert broken["distribution"] == "mxcore-toy-broken"
    assert broken["error"].startswith("import of toy_broken.plugin failed: RuntimeError: "
                                      "toy-broken: this plugin is deliberately broken"), broken
    assert broken["hooks"] == [] and broken["kernels"] == 0
    assert "ERROR: import of toy_broken.plugin failed" in text
    # the good third-party plugin and the built-ins still load and run
    assert infos["toy"]["error"] is None and infos["toy"]["kernels"] == 3
    assert infos["cpu"]["error"] is None and infos["core"]["error"] is None
    assert probe["sum"] == [[2.0, -4.0, 6.0]]
    assert probe["neg"] == [[-1.0, 2.0, -3.0]]
    assert probe["dot"] == [[14.0]]
    assert probe["calls"]["add_cpu"] == 1
    assert "toy" in probe["devices"]
    assert "toybroken" not in probe["pluggy"]


def test_plugin_for_another_api_version_is_rejected(everything):
    infos, text, probe = everything
    old = infos["toyoldapi"]
    assert old["error"] is not None
    assert f"plugin API {WRONG_API}" in old["error"], old["error"]
    assert f"this mxcore speaks {hal.PLUGIN_API_VERSION}" in old["error"], old["error"]
    assert old["hooks"] == [] and old["devices"] == [] and old["kernels"] == 0
    assert f"ERROR: plugin targets plugin API {WRONG_API}" in text
    # none of its registrations happened
    assert "olddev" not in probe["devices"]
    assert "mxcore-toy-oldapi" not in probe["providers"]
    assert "toyoldapi" not in probe["pluggy"]


def test_tying_kernel_fails_registration_and_rolls_back(everything):
    infos, text, probe = everything
    tie = infos["toytie"]
    err = tie["error"]
    assert err is not None and err.startswith("registration failed: PluginError: "), tie
    assert ("kernels mxcore-cpu:elemwise.add and mxcore-toy-tie:tie_add both implement 'add' "
            "on 'cpu' for ['float32'] with priority 0; give one a different priority") in err, err
    # nothing it registered before the violation survives
    assert tie["devices"] == [] and tie["kernels"] == 0
    assert "tiedev" not in probe["devices"]
    assert "mxcore-toy-tie" not in probe["providers"]
    assert probe["negative_cpu"] == ["mxcore-cpu:elemwise.negative"]
    assert probe["neg"] == [[-1.0, 2.0, -3.0]]
    assert probe["add_cpu"] == ["mxcore-cpu:elemwise.add", "mxcore-toy:add_counting"]
    assert "toytie" not in probe["pluggy"]


# --------------------------------------------------------------------------------------
# (g) env switches
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("switch, reason", [
    ({"MXCORE_PLUGINS": "core,cpu"}, "not listed in MXCORE_PLUGINS"),
    ({"MXCORE_PLUGINS": " core , cpu ,"}, "not listed in MXCORE_PLUGINS"),
    ({"MXCORE_NO_THIRD_PARTY": "1"}, "third-party plugins disabled by MXCORE_NO_THIRD_PARTY"),
])
def test_env_switches_skip_third_party_plugins(sites, workdir, switch, reason):
    dirs = list(sites.values())
    infos = plugins_json(dirs, workdir, **switch)
    for name in ("toy", "toybroken", "toyoldapi", "toytie"):
        assert infos[name]["skipped"] == reason, infos[name]
        assert infos[name]["error"] is None, infos[name]  # skipped before import
    for name in ("core", "cpu"):
        assert infos[name]["skipped"] is None and infos[name]["error"] is None, infos[name]
    text = cli(["plugins"], dirs, workdir, **switch).stdout
    assert f"skipped: {reason}" in text

    devices = json.loads(cli(["devices", "--json"], dirs, workdir, **switch).stdout)
    assert "toy" not in devices and "cpu" in devices  # built-in kinds (cpu, cuda) stay
    policy = write_policy(workdir / "policy.toml", NO_CPU_PREFERENCE)
    text = explain("add", ["2,3", "2,3"], dirs, workdir, policy, **switch)
    assert "mxcore-toy" not in text
    assert winner_line(text).startswith("winner: mxcore-cpu:elemwise.add because it is the only")


def test_mxcore_plugins_selects_a_third_party_plugin(sites, workdir):
    """MXCORE_PLUGINS names entry points: listing the toy plugin loads it (and
    only it among the third-party ones)."""
    infos = plugins_json(list(sites.values()), workdir, MXCORE_PLUGINS="core,cpu,toy")
    assert infos["toy"]["skipped"] is None and infos["toy"]["error"] is None
    assert infos["toy"]["kernels"] == 3
    assert infos["toytie"]["skipped"] == "not listed in MXCORE_PLUGINS"


def test_trace_switch_prints_hook_calls(sites, workdir):
    proc = cli(["devices"], [sites["toy"]], workdir, MXCORE_TRACE_PLUGINS="1")
    assert "register_kernels" in proc.stderr and "register_devices" in proc.stderr, proc.stderr
    assert "toy" in proc.stdout
    quiet = cli(["devices"], [sites["toy"]], workdir)
    assert "register_kernels" not in quiet.stderr


# --------------------------------------------------------------------------------------
# (h) hostile plugins: a built-in's name claimed by another distribution, sys.exit()
# --------------------------------------------------------------------------------------

IMPOSTOR_PLUGIN = '''\
import numpy as np

import hal

MXCORE_PLUGIN_API = hal.PLUGIN_API_VERSION


class ImpostorCPU(hal.DeviceType):
    kind = "cpu"
    xp = np


@hal.hookimpl
def register_devices(register):
    register(ImpostorCPU())
'''

EXITING_PLUGIN = '''\
import sys

sys.exit(0)
'''

HOSTILE = {
    # an entry point named like the built-in CPU plugin, from another distribution
    "impostor": ("mxcore-impostor", "cpu", "impostor_cpu", IMPOSTOR_PLUGIN),
    "exiting": ("mxcore-toy-exit", "toyexit", "toy_exit", EXITING_PLUGIN),
}


@pytest.fixture(scope="module")
def hostile_sites(tmp_path_factory):
    return install(tmp_path_factory.mktemp("hostile_plugins"), HOSTILE)


FIRST_OP = """
import json
import mxcore as mx
from mxcore.plugins import system
y = (mx.nd.ones((2,)) * 3).asnumpy().tolist()
print(json.dumps({"y": y, "after": "still running"}))
"""


@pytest.mark.parametrize("switch", [{}, {"MXCORE_NO_THIRD_PARTY": "1"}])
def test_a_plugin_named_like_a_builtin_is_refused(hostile_sites, workdir, switch):
    dirs = [hostile_sites["impostor"]]
    listed = json.loads(cli(["plugins", "--json"], dirs, workdir, **switch).stdout)
    infos = {(p["name"], p["distribution"]): p for p in listed}
    cpu = infos[("cpu", "mxcore-cpu")]
    assert cpu["builtin"] is True and cpu["error"] is None and cpu["devices"] == ["cpu"]
    impostor = infos[("cpu", "mxcore-impostor")]
    assert impostor["builtin"] is False and impostor["devices"] == []
    assert impostor["error"] == ("entry point 'cpu' of distribution 'mxcore-impostor' is "
                                 "refused: the name belongs to 'mxcore-cpu'; rename the "
                                 "entry point"), impostor
    assert py(FIRST_OP, dirs, workdir, **switch)["y"] == [3.0, 3.0]
    text = cli(["plugins"], dirs, workdir, **switch).stdout
    assert "ERROR: entry point 'cpu' of distribution 'mxcore-impostor' is refused" in text


def test_a_plugin_calling_sys_exit_is_reported_not_fatal(hostile_sites, workdir):
    dirs = [hostile_sites["exiting"]]
    assert py(FIRST_OP, dirs, workdir) == {"y": [3.0, 3.0], "after": "still running"}
    info = plugins_json(dirs, workdir)["toyexit"]
    assert info["error"].startswith("import of toy_exit.plugin failed: the plugin called "
                                    "sys.exit(0)"), info
    assert info["builtin"] is False and info["hooks"] == []
