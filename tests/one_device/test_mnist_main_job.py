"""The main job and the Gluon example on real MNIST (repository data)."""
from __future__ import annotations

import json
import os
import re
import signal
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
    before = engine.current().name
    out = tmp_path / "run"
    rc = main(["train", "mnist", "--epochs", "1", "--limit", "640", "--data-root", DATA,
               "--output", str(out), "--no-progress", "--profile", "3"])
    assert rc == 0
    assert engine.current().name == before  # the profiler is gone after its steps
    trace = json.loads((out / "profile.json").read_text())["traceEvents"]
    steps = [e for e in trace if e.get("cat") == "scope"]
    assert [e["name"] for e in steps] == ["train_step"] * 3
    names = {e["name"] for e in trace if e.get("cat") == "operator"}
    assert {"FullyConnected", "softmax_ce_loss_grad", "multi_sgd_mom_update"} <= names
    printed = capsys.readouterr().out
    assert re.search(r"^FullyConnected +6 ", printed, re.M)  # 2 layers x 3 steps
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


def _run_cli(*argv, **kwargs):
    env = {k: v for k, v in os.environ.items()
           if k not in ("MXCORE_PLUGINS", "MXCORE_REGISTRY", "MXCORE_DEVICE", "MXCORE_DEBUG")}
    return subprocess.run([sys.executable, "-m", "mxcore.cli", *argv], capture_output=True,
                          text=True, timeout=300, env=env, **kwargs)


def test_a_non_finite_loss_stops_with_exit_3_and_keeps_the_previous_files(tmp_path):
    out = tmp_path / "run"
    common = ["train", "mnist", "--epochs", "1", "--limit", "640", "--data-root", DATA,
              "--output", str(out), "--no-progress"]
    good = _run_cli(*common)
    assert good.returncode == 0, good.stderr
    params, history = out / "mnist-mlp.safetensors", out / "history.json"
    before = {p.name: p.read_bytes() for p in (params, history)}
    # a valid but far too large learning rate: the loss overflows within a few steps
    proc = _run_cli(*common, "--lr", "1e30")
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr  # no traceback, no numpy warnings
    assert re.fullmatch(r"mxcore: error: training loss became (nan|inf) in epoch 1, "
                        r"(at step \d+|between steps \d+ and \d+); stopped without saving "
                        r"parameters or history \(try a lower --lr\)", lines[0]), lines[0]
    assert {p.name: p.read_bytes() for p in (params, history)} == before
    assert sorted(os.listdir(out)) == ["history.json", "mnist-mlp.safetensors"]


def test_parameters_made_non_finite_by_the_last_step_are_not_saved(tmp_path):
    # one step: its loss is computed on the initial (finite) parameters, and its update
    # overflows them, so only a check of the parameters can see it
    out = tmp_path / "run"
    proc = _run_cli("train", "mnist", "--epochs", "1", "--limit", "1", "--batch-size", "1",
                    "--lr", "3e38", "--momentum", "0", "--data-root", DATA,
                    "--output", str(out), "--no-progress")
    assert proc.returncode == 3, proc.stderr
    assert re.fullmatch(r"mxcore: error: parameter \S+ became NaN or infinite in epoch 1; "
                        r"stopped without saving parameters or history \(try a lower --lr\)\n",
                        proc.stderr), proc.stderr
    assert os.listdir(out) == []


def test_ctrl_c_during_training_is_one_line_and_exit_130(tmp_path):
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("MXCORE_DEVICE", "MXCORE_DEBUG")}
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen([sys.executable, "-m", "mxcore.cli", "train", "mnist", "--epochs",
                             "50", "--data-root", DATA, "--output", str(out), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            # a runner started in the background ignores SIGINT, and children
                            # inherit that (Python then installs no KeyboardInterrupt handler)
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stdout.readline().startswith("training MLP")  # inside the training loop
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert err == "mxcore: interrupted\n"
    assert os.listdir(out) == []


def test_history_is_written_atomically(tmp_path, monkeypatch):
    from mxcore.cli import main
    from mxcore.recipes import mnist
    out = tmp_path / "run"
    out.mkdir()
    (out / "history.json").write_text('{"previous": true}')

    def fails_half_way(obj, f, **kwargs):
        f.write('{"config": ')
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(mnist.json, "dump", fails_half_way)
    rc = main(["train", "mnist", "--epochs", "1", "--limit", "64", "--data-root", DATA,
               "--output", str(out), "--no-progress"])
    assert rc == 2  # an OSError on a file is the user's to fix
    assert (out / "history.json").read_text() == '{"previous": true}'
    assert not [n for n in os.listdir(out) if n.startswith(".")]


def test_lenet_one_epoch_on_a_subset_learns(tmp_path):
    from mxcore.cli import main
    out = tmp_path / "run"
    rc = main(["train", "mnist", "--model", "lenet", "--epochs", "1", "--limit", "6400",
               "--data-root", DATA, "--output", str(out), "--no-progress", "--seed", "3"])
    assert rc == 0
    record = json.loads((out / "history.json").read_text())
    h, config = record["history"], record["config"]
    assert h["step_loss"][-1] < h["step_loss"][0] / 2  # the loss falls
    assert h["test_acc"][0] > 0.85  # chance is 0.10
    # the model's own optimizer defaults, recorded as used
    from mxcore.recipes.mnist import MODEL_DEFAULTS
    assert {k: config[k] for k in MODEL_DEFAULTS["lenet"]} == MODEL_DEFAULTS["lenet"]
    assert (config["model"], config["dataset"]) == ("lenet", "mnist")
    assert "_given" not in config
    assert sorted(os.listdir(out)) == ["history.json", "mnist-lenet.safetensors"]
    # the file loads into the model zoo's LeNet and gives the same accuracy
    import mxcore as mx
    from mxcore.gluon.model_zoo import vision
    from mxcore.recipes import mnist
    net = vision.lenet(pretrained=True, root=str(out / "mnist-lenet.safetensors"), ctx=mx.cpu())
    _, test = mnist._datasets(DATA, None)
    acc = mnist.evaluate(net, mx.gluon.data.DataLoader(test, batch_size=2000), mx.cpu())
    assert acc == pytest.approx(h["test_acc"][0], abs=1e-9)


def test_model_defaults_apply_only_to_the_flags_left_out():
    from mxcore import cli
    from mxcore.recipes.mnist import DEFAULTS, MODEL_DEFAULTS, resolve_defaults

    def resolved(*argv):
        args = cli.build_parser().parse_args(["train", "mnist", *argv])
        resolve_defaults(args)
        return args
    # the quick start is unchanged: the MLP on MNIST with DEFAULTS
    args = resolved("--data-root", "data/mnist")
    assert (args.model, args.dataset) == ("mlp", "mnist")
    assert all(getattr(args, k) == v for k, v in DEFAULTS.items())
    args = resolved("--model", "lenet")
    assert all(getattr(args, k) == v for k, v in MODEL_DEFAULTS["lenet"].items())
    # a value given explicitly stays, even when it is the MLP's default
    args = resolved("--model", "lenet", "--lr", str(DEFAULTS["lr"]), "--optimizer", "Adam")
    assert (args.lr, args.optimizer) == (DEFAULTS["lr"], "adam")
    assert args.momentum == MODEL_DEFAULTS["lenet"]["momentum"]


def test_cosine_schedule_falls_to_zero_at_the_last_step(tmp_path, monkeypatch):
    import math

    import mxcore as mx
    from mxcore.cli import main
    rates = {}

    class Recording(mx.lr_scheduler.CosineScheduler):
        def __call__(self, num_update):
            rates[num_update] = super().__call__(num_update)
            return rates[num_update]
    monkeypatch.setattr(mx.lr_scheduler, "CosineScheduler", Recording)
    rc = main(["train", "mnist", "--epochs", "2", "--limit", "100", "--batch-size", "64",
               "--lr", "0.1", "--lr-schedule", "cosine", "--data-root", DATA,
               "--output", str(tmp_path / "run"), "--no-progress"])
    assert rc == 0
    # 2 epochs of 2 steps (64 + a short last batch of 36): 4 updates
    assert sorted(rates) == [1, 2, 3, 4]
    assert rates[1] == pytest.approx(0.1 * (1 + math.cos(math.pi / 4)) / 2)
    assert rates[4] == pytest.approx(0.0, abs=1e-12)


def test_unknown_model_or_dataset_is_a_usage_error(capsys):
    from mxcore.cli import main
    for flag, value in (("--model", "resnet"), ("--dataset", "cifar10")):
        with pytest.raises(SystemExit) as info:
            main(["train", "mnist", flag, value])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert f"argument {flag}: invalid choice: '{value}'" in err


def test_another_datasets_folder_is_named_without_advice_to_delete_it(tmp_path):
    proc = _run_cli("train", "mnist", "--dataset", "fashion-mnist", "--data-root", DATA,
                    "--epochs", "1", "--limit", "64", "--output", str(tmp_path / "run"),
                    "--no-progress")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"mxcore: error: --data-root {DATA} does not hold the "
                                  "fashion-mnist files (checksum mismatch for ")
    assert proc.stderr.count("\n") == 1 and "delete" not in proc.stderr


FASHION = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not os.path.exists(os.path.join(FASHION, "t10k-labels-idx1-ubyte.gz")),
                    reason="Fashion-MNIST is not installed (Debian: dataset-fashion-mnist)")
def test_fashion_mnist_from_the_debian_package(tmp_path, monkeypatch, capsys):
    from mxcore.cli import main
    # an empty default root: the files must come from the package, not a download
    monkeypatch.setenv("MXCORE_DATA", str(tmp_path / "datasets"))
    out = tmp_path / "run"
    rc = main(["train", "mnist", "--dataset", "fashion-mnist", "--epochs", "1", "--limit",
               "3000", "--output", str(out), "--no-progress"])
    assert rc == 0
    assert "training MLP 784-256-10 on cpu(0): 3000 fashion-mnist images" in \
        capsys.readouterr().out
    record = json.loads((out / "history.json").read_text())
    assert record["config"]["dataset"] == "fashion-mnist"
    assert record["history"]["test_acc"][0] > 0.65  # chance is 0.10
    assert sorted(os.listdir(out)) == ["fashion-mnist-mlp.safetensors", "history.json"]
    assert not (tmp_path / "datasets").exists()
