"""The ``mxcore`` command line, in-process (``mxcore.cli.main`` with capsys)
where only the built-in plugins matter, and as ``python -m mxcore.cli`` where
the process state matters (the demo seeds the random generator)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from mxcore import cli
from mxcore.plugins import system


def run_main(capsys, *argv):
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def run_subprocess(*argv, **env):
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("MXCORE_PLUGINS", "MXCORE_REGISTRY", "MXCORE_DEVICE")}
    full_env.update(env)
    return subprocess.run([sys.executable, "-m", "mxcore.cli", *argv], capture_output=True,
                          text=True, timeout=120, env=full_env)


def test_plugins_lists_the_builtins(capsys):
    rc, out, _ = run_main(capsys, "plugins")
    assert rc == 0
    lines = out.splitlines()
    cpu = next(i for i, ln in enumerate(lines) if ln.startswith("cpu "))
    assert "mxcore-cpu" in lines[cpu] and "(built-in)" in lines[cpu]
    assert lines[cpu + 1].strip() == "loaded"
    n_cpu = system().plugins["cpu"].kernels
    assert lines[cpu + 2].strip() == (f"hooks: register_devices, register_kernels; devices: cpu; "
                                      f"ops: 0; kernels: {n_cpu}")
    core = next(i for i, ln in enumerate(lines) if ln.startswith("core "))
    assert "mxcore" in lines[core] and lines[core + 1].strip() == "loaded"
    assert f"ops: {system().plugins['core'].ops}" in lines[core + 2]


def test_plugins_json(capsys):
    rc, out, _ = run_main(capsys, "plugins", "--json")
    assert rc == 0
    infos = {p["name"]: p for p in json.loads(out)}
    cpu, core = infos["cpu"], infos["core"]
    assert cpu["distribution"] == "mxcore-cpu" and cpu["builtin"] is True
    assert cpu["module"] == "mxcore_cpu.plugin"
    assert cpu["hooks"] == ["register_devices", "register_kernels"]
    assert cpu["devices"] == ["cpu"] and cpu["kernels"] > 50
    assert cpu["error"] is None and cpu["skipped"] is None
    assert core["distribution"] == "mxcore" and core["hooks"] == ["register_ops"]
    assert core["ops"] > 50 and core["kernels"] == 0
    assert set(cpu) == {"name", "distribution", "version", "module", "builtin", "hooks", "devices",
                        "ops", "kernels", "error", "skipped"}


def test_kernels_filtered_by_op_and_device(capsys):
    rc, out, _ = run_main(capsys, "kernels", "--op", "add", "--device", "cpu")
    assert rc == 0
    rows = out.splitlines()
    assert rows, out
    assert all(r.split()[:2] == ["add", "cpu"] for r in rows), out
    assert any("mxcore-cpu:elemwise.add" in r for r in rows)
    builtin = next(r for r in rows if "mxcore-cpu:elemwise.add" in r)
    assert re.search(r"prio\s+0 ", builtin)
    assert "float32" in builtin and "float64" in builtin

    rc, out, _ = run_main(capsys, "kernels", "--op", "add", "--device", "cpu", "--json")
    rows = json.loads(out)
    assert rc == 0 and {r["op"] for r in rows} == {"add"} and {r["device"] for r in rows} == {"cpu"}
    row = next(r for r in rows if r["kernel"] == "mxcore-cpu:elemwise.add")
    assert row["priority"] == 0 and row["guarded"] is False and row["op_registered"] is True
    assert "float32" in row["dtypes"] and row["dtypes"] == sorted(row["dtypes"])


def test_kernels_listing_and_unknown_op(capsys):
    rc, out, _ = run_main(capsys, "kernels", "--json")
    rows = json.loads(out)
    ops = {r["op"] for r in rows}
    assert {"add", "matmul", "negative"} <= ops
    assert rc == 0
    rc, out, _ = run_main(capsys, "kernels", "--op", "no_such_op")
    assert rc == 1 and out.strip() == "no kernels match"


def test_kernels_explain_matmul(capsys):
    rc, out, _ = run_main(capsys, "kernels", "explain", "matmul", "--device", "cpu",
                          "--dtype", "float32", "--shape", "2,3", "--shape", "3,4")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0] == "op matmul on cpu, dtype float32, shapes ((2, 3), (3, 4))"
    assert lines[1].startswith("fallback chain: cpu;")
    assert lines[2].startswith("policy files: ") and "registry.toml" in lines[2]
    starred = [ln for ln in lines if ln.startswith(" * ")]
    assert len(starred) == 1 and "mxcore-cpu:linalg.matmul" in starred[0]
    assert lines[-1].startswith("winner: mxcore-cpu:linalg.matmul because ")


def test_kernels_explain_errors(capsys):
    rc, _, err = run_main(capsys, "kernels", "explain", "no_such_op", "--device", "cpu")
    assert rc == 1 and "unknown operator 'no_such_op'" in err
    rc, _, err = run_main(capsys, "kernels", "explain", "--device", "cpu")
    assert rc == 2 and "usage: mxcore kernels explain OP" in err
    rc, out, _ = run_main(capsys, "kernels", "explain", "add", "--device", "cpu",
                          "--dtype", "bool")
    assert rc == 0 and out.splitlines()[-1] == "no kernel can run this call"
    assert "REJECTED: does not take bool" in out


def test_devices(capsys):
    rc, out, _ = run_main(capsys, "devices")
    assert rc == 0
    cpu = next(ln for ln in out.splitlines() if ln.startswith("cpu "))
    assert cpu.split() == ["cpu", "available", "(from", "mxcore-cpu)"]
    rc, out, _ = run_main(capsys, "devices", "--json")
    assert rc == 0
    assert json.loads(out)["cpu"] == {"status": "available", "provider": "mxcore-cpu"}


def test_bad_arguments_exit_with_usage(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["no-such-command"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_demo_loss_falls():
    proc = run_subprocess("demo", "--epochs", "2")
    assert proc.returncode == 0, proc.stderr
    losses = [float(x) for x in re.findall(r"^epoch \d+: loss ([0-9.eE+-]+)$", proc.stdout, re.M)]
    assert len(losses) == 2, proc.stdout
    assert losses[-1] < losses[0], losses
    assert losses[-1] < 0.01, losses  # y = 2 x0 - 3.4 x1 + 4.2 + small noise is easy to fit
    m = re.search(r"learned w = \[(\S+), (\S+)\], b = (\S+) ", proc.stdout)
    assert m, proc.stdout
    w0, w1, b = (float(v) for v in m.groups())
    assert abs(w0 - 2.0) < 0.1 and abs(w1 + 3.4) < 0.1 and abs(b - 4.2) < 0.1
    # the learned values are printed rounded to three decimals
    assert all(len(v.split(".")[-1]) <= 3 for v in m.groups()), m.group(0)


def test_cli_is_installed_as_a_console_script():
    exe = os.path.join(os.path.dirname(sys.executable), "mxcore")
    if not os.path.exists(exe):
        pytest.skip("no `mxcore` console script next to this interpreter")
    proc = subprocess.run([exe, "devices", "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["cpu"]["status"] == "available"
