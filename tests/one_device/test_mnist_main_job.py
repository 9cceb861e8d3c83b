"""The main job and the Gluon example on real MNIST (repository data)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "data", "mnist")


@pytest.fixture(autouse=True)
def _need_data():
    if not os.path.exists(os.path.join(DATA, "train-images-idx3-ubyte.gz")):
        pytest.skip("data/mnist is missing")


def test_one_epoch_on_a_subset_learns(tmp_path):
    from mxcore.cli import main
    out = tmp_path / "run"
    rc = main(["train", "mnist", "--epochs", "1", "--limit", "6000", "--data-root", DATA,
               "--output", str(out), "--no-progress", "--seed", "3"])
    assert rc == 0
    record = json.loads((out / "history.json").read_text())
    h = record["history"]
    steps = h["step_loss"]
    assert len(steps) >= 2 and np.mean(steps[-1:]) < steps[0] / 3  # the loss falls
    assert h["test_acc"][0] > 0.85      # chance is 0.10
    assert record["config"]["epochs"] == 1
    # the saved parameters load into a fresh network and give the same accuracy
    import mxcore as mx
    from mxcore.recipes import mnist
    net = mnist.build_net()
    net.load_parameters(str(out / "mnist-mlp.safetensors"), ctx=mx.cpu())
    _, test = mnist._datasets(DATA, None)
    acc = mnist.evaluate(net, mx.gluon.data.DataLoader(test, batch_size=2000), mx.cpu())
    assert acc == pytest.approx(h["test_acc"][0], abs=1e-9)


def test_profile_flag_writes_a_trace_of_the_first_steps(tmp_path, capsys):
    from mxcore import engine
    from mxcore.cli import main
    out = tmp_path / "run"
    rc = main(["train", "mnist", "--epochs", "1", "--limit", "640", "--data-root", DATA,
               "--output", str(out), "--no-progress", "--profile", "3"])
    assert rc == 0
    assert engine.current().name == "naive"  # the profiler is gone after its steps
    trace = json.loads((out / "profile.json").read_text())["traceEvents"]
    steps = [e for e in trace if e.get("cat") == "scope"]
    assert [e["name"] for e in steps] == ["train_step"] * 3
    names = {e["name"] for e in trace if e.get("cat") == "operator"}
    assert {"fully_connected", "softmax_ce_loss_grad", "multi_sgd_mom_update"} <= names
    printed = capsys.readouterr().out
    assert re.search(r"^fully_connected +6 ", printed, re.M)  # 2 layers x 3 steps
    assert "profile.json" in printed


def test_plot_is_written_when_matplotlib_exists(tmp_path):
    pytest.importorskip("matplotlib", reason="plots are an optional extra (mxcore[plot])")
    from mxcore.recipes.mnist import plot
    plot({"epoch": [1, 2], "train_loss": [0.5, 0.3], "train_acc": [0.8, 0.9],
          "test_acc": [0.85, 0.9]}, str(tmp_path / "c.png"))
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_gluon_example_script_runs_unchanged():
    script = os.path.join(ROOT, "examples", "mnist_mlp.py")
    src = open(script).read()
    # the only mxcore-specific line is the import
    assert len(re.findall(r"mxcore", src.split('"""', 2)[2])) == 1
    proc = subprocess.run([sys.executable, script, "--epochs", "1", "--num-examples", "3000"],
                          capture_output=True, text=True, timeout=300, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = re.search(r"Test acc ([0-9.]+)", proc.stdout)
    assert m and float(m.group(1)) > 0.8
    os.remove(os.path.join(ROOT, "mnist_mlp.params"))
