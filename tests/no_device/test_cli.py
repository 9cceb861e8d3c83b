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
    rc, out, err = run_main(capsys, "kernels", "--op", "no_such_op")
    assert rc == 2 and out == ""
    assert err == ("mxcore: error: unknown operator 'no_such_op'; "
                   "`mxcore kernels` lists the registered ones\n")


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
    assert rc == 2 and err.startswith("mxcore: error: unknown operator 'no_such_op'")
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


# errors: one line, exit codes ---------------------------------------------------------------

def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mxcore: error: "), err
    return lines[0]


@pytest.mark.parametrize("argv, flag", [
    (["train", "mnist", "--epochs", "0"], "--epochs"),
    (["train", "mnist", "--limit", "0"], "--limit"),
    (["train", "mnist", "--limit", "-5"], "--limit"),
    (["train", "mnist", "--batch-size", "0"], "--batch-size"),
    (["train", "mnist", "--lr", "-1"], "--lr"),
    (["train", "mnist", "--lr", "0"], "--lr"),
    (["train", "mnist", "--lr", "nan"], "--lr"),
    (["train", "mnist", "--lr", "inf"], "--lr"),
    (["train", "mnist", "--lr", "fast"], "--lr"),
    (["train", "mnist", "--momentum", "-0.1"], "--momentum"),
    (["train", "mnist", "--momentum", "1"], "--momentum"),
    (["train", "mnist", "--wd", "-1e-4"], "--wd"),
    (["train", "mnist", "--hidden", "0"], "--hidden"),
    (["train", "mnist", "--seed", "-1"], "--seed"),
    (["train", "mnist", "--profile", "-1"], "--profile"),
    (["train", "mnist", "--threads", "-1"], "--threads"),
    (["train", "mnist", "--optimizer", "sgdx"], "--optimizer"),
    (["train", "mnist", "--device", "cpu:x"], "--device"),
    (["demo", "--epochs", "0"], "--epochs"),
    (["demo", "--seed", "-1"], "--seed"),
    (["demo", "--device", "gpu(x)"], "--device"),
    (["kernels", "explain", "add", "--shape", "a,b"], "--shape"),
    (["kernels", "explain", "add", "--shape", "-1,2"], "--shape"),
    (["kernels", "explain", "add", "--dtype", "float33"], "--dtype"),
])
def test_invalid_arguments_are_one_line_with_exit_2(capsys, argv, flag):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    line = one_error_line(err)
    assert line.startswith(f"mxcore: error: argument {flag}: "), line
    assert "--help" in line  # says where the valid values are


def test_valid_arguments_and_the_quick_start_defaults_still_parse():
    from mxcore.recipes.mnist import DEFAULTS
    args = cli.build_parser().parse_args(["train", "mnist", "--data-root", "data/mnist"])
    for key, value in DEFAULTS.items():
        assert getattr(args, key) == value, key
    assert args.limit is None and args.profile == 0 and args.threads == 1
    args = cli.build_parser().parse_args(
        ["train", "mnist", "--optimizer", "Adam", "--lr", "1e-3", "--momentum", "0",
         "--wd", "0", "--limit", "1", "--profile", "0", "--threads", "0", "--seed", "0",
         "--device", "cuda:1"])
    assert (args.optimizer, args.lr, args.momentum, args.limit, args.device) == (
        "adam", 1e-3, 0.0, 1, "cuda:1")
    args = cli.build_parser().parse_args(["kernels", "explain", "add", "--shape", "(2, 3)",
                                          "--shape", ""])
    assert args.shape == [(2, 3), ()]


def test_optimizer_choices_are_the_registered_optimizers():
    from mxcore.optimizer import Optimizer
    parser = cli.build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    mnist = train._subparsers._group_actions[0].choices["mnist"]
    action = next(a for a in mnist._actions if a.dest == "optimizer")
    assert list(action.choices) == sorted(Optimizer.opt_registry)


@pytest.mark.parametrize("argv, defaults", [
    (["train", "mnist", "--help"], ["(default: 10)", "(default: 64)", "(default: sgd)",
                                    "(default: 0.02)", "(default: 0.9)", "(default: 42)",
                                    "(default: mnist-output)", "(default: all 60000)"]),
    (["demo", "--help"], ["(default: 5)", "(default: 0)"]),
    (["kernels", "--help"], ["(default: float32)", "(default: list)"]),
])
def test_help_shows_the_defaults(capsys, monkeypatch, argv, defaults):
    monkeypatch.setenv("COLUMNS", "500")  # no wrapping inside a value (mnist-output)
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for d in defaults:
        assert d in text, (d, text)
    assert "(default: None)" not in text and "(default: False)" not in text


@pytest.mark.parametrize("argv", [
    ["kernels", "explain", "add", "--device", "tpu"],
    ["kernels", "--device", "tpu"],
    ["kernels", "--device", "tpu", "--json"],
])
def test_kernels_refuse_an_unknown_device_kind(capsys, argv):
    rc, out, err = run_main(capsys, *argv)
    assert rc == 2 and out == ""
    line = one_error_line(err)
    assert "unknown device kind 'tpu'" in line
    known = re.search(r"known kinds: ([^;)]*)", line).group(1).split(", ")
    assert "cpu" in known and set(known) >= set(system().registry.devices)


def test_kernels_refuse_an_unknown_operator_in_json_too(capsys):
    rc, out, err = run_main(capsys, "kernels", "--op", "no_such_op", "--json")
    assert rc == 2 and out == ""
    assert "unknown operator 'no_such_op'" in one_error_line(err)


def test_kernels_of_a_known_op_on_a_kind_without_them_is_no_error(capsys):
    # filters that match nothing are not errors of the user: the op and kind exist
    rc, out, err = run_main(capsys, "kernels", "--op", "add", "--device", "cpu", "--json")
    assert rc == 0 and json.loads(out) and err == ""


def test_debug_flag_prints_the_traceback(capsys, monkeypatch):
    monkeypatch.delenv("MXCORE_DEBUG", raising=False)
    for argv in (["--debug", "kernels", "--device", "tpu"], ["kernels", "--device", "tpu",
                                                             "--debug"]):
        rc, _, err = run_main(capsys, *argv)
        assert rc == 2
        assert err.startswith("Traceback (most recent call last):"), err
        assert "UsageError: unknown device kind 'tpu'" in err
        assert err.splitlines()[-1].startswith("mxcore: error: unknown device kind 'tpu'")
    monkeypatch.setenv("MXCORE_DEBUG", "1")
    rc, _, err = run_main(capsys, "kernels", "--device", "tpu")
    assert rc == 2 and err.startswith("Traceback (most recent call last):")


def test_an_internal_error_is_one_line_with_exit_1_and_a_hint(capsys, monkeypatch):
    monkeypatch.delenv("MXCORE_DEBUG", raising=False)

    def broken(args):
        return {}["missing"]
    monkeypatch.setattr(cli, "_devices", broken)
    rc, _, err = run_main(capsys, "devices")
    assert rc == 1
    assert err == ("mxcore: internal error: KeyError: 'missing' "
                   "(rerun with --debug for the traceback)\n")
    rc, _, err = run_main(capsys, "devices", "--debug")
    assert rc == 1 and "Traceback" in err and "--debug" not in err.splitlines()[-1]


def test_an_unwritable_file_is_a_user_error(capsys, monkeypatch):
    def unwritable(args):
        raise PermissionError(13, "Permission denied", "/root/out")
    monkeypatch.setattr(cli, "_devices", unwritable)
    rc, _, err = run_main(capsys, "devices")
    assert rc == 2
    assert one_error_line(err) == "mxcore: error: [Errno 13] Permission denied: '/root/out'"


def test_keyboard_interrupt_is_one_line_and_exit_130(capsys, monkeypatch):
    monkeypatch.delenv("MXCORE_DEBUG", raising=False)

    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "_devices", interrupted)
    rc, out, err = run_main(capsys, "devices")
    assert rc == 130 and err == "mxcore: interrupted\n"


def test_unknown_device_in_a_real_process_is_one_line_with_exit_2():
    proc = run_subprocess("demo", "--device", "tpu")
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc.stderr)
    assert "device kind 'tpu'" in line and "cpu" in line
    assert proc.stdout == ""


def test_train_on_an_unknown_device_is_one_line_with_exit_2(tmp_path):
    proc = run_subprocess("train", "mnist", "--device", "tpu", "--epochs", "1", "--limit", "64",
                          "--output", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert "device kind 'tpu'" in one_error_line(proc.stderr)
    assert not (tmp_path / "out").exists()


def test_a_closed_stdout_ends_quietly_with_exit_141():
    # `mxcore kernels | head`: a reader that is gone before the output is written
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {k: v for k, v in os.environ.items() if k not in ("MXCORE_PLUGINS", "MXCORE_DEBUG")}
    try:
        proc = subprocess.run([sys.executable, "-m", "mxcore.cli", "kernels"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120, env=env)
    finally:
        os.close(write_end)
    assert proc.returncode == 141
    assert proc.stderr == ""
