"""AMP keeps the MNIST models' accuracy: the main job's MLP and LeNet-5, trained with the
recipe's settings and seed for the same epochs, reach a test accuracy within 0.3 points
of float32 with bfloat16 AMP and with float16 AMP plus dynamic loss scaling
(asv_bench/compare_amp.py, one fresh process per run).  Long: nine training runs, about
three minutes on two cores."""
from __future__ import annotations

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "data", "mnist")
#: test accuracy points AMP may lose against float32
GAP = 0.3


def _compare():
    spec = importlib.util.spec_from_file_location(
        "compare_amp", os.path.join(ROOT, "asv_bench", "compare_amp.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _need_data():
    if not os.path.exists(os.path.join(DATA, "train-images-idx3-ubyte.gz")):
        pytest.skip("data/mnist is missing")


@pytest.mark.long
@pytest.mark.parametrize("model,epochs", [("mlp", 3), ("lenet", 3)])
def test_amp_accuracy_within_gap_of_float32(model, epochs):
    compare = _compare()
    rows = {dtype: compare.run_isolated(model, dtype, epochs, DATA)
            for dtype in ("float32", "bfloat16", "float16")}
    base = rows["float32"]["test_acc"]
    assert base > 0.97, rows  # the float32 run itself trained
    for dtype in ("bfloat16", "float16"):
        gap = 100 * (base - rows[dtype]["test_acc"])
        assert gap <= GAP, f"{model} {dtype}: {100 * rows[dtype]['test_acc']:.2f}% vs " \
                           f"float32 {100 * base:.2f}% ({gap:.2f} points lost)"
    assert rows["float16"]["loss_scale"] >= 1.0  # the scaler settled on a usable scale
