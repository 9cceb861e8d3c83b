#!/usr/bin/env python3
"""Records MXNet 1.9.1's Gluon vision model zoo as a test fixture.

Run with the Python of an environment that has mxnet 1.9.1 (never mxcore's):

    /work/mxnet-venv/bin/python tools/mxnet_model_zoo_names.py \
        --out tests/data/mxnet_model_zoo_params.json

For every model of ``mx.gluon.model_zoo.vision.get_model`` it builds the model
(``classes=10``, and the default 1000 classes for a few), finishes deferred
initialisation with one forward pass and writes, in order:

* ``params``: ``[structural name, name below the model's prefix, shape]`` for each
  parameter, the structural name being the one ``save_parameters`` writes
  (``features.0.weight``) and the second the ``collect_params()`` key without the
  model's own counter-dependent prefix (``conv0_weight`` of ``resnetv10_conv0_weight``);
* ``input`` / ``output``: the input shape used and the output shape it gave.

``numeric`` holds a few models' outputs on inputs of a small size, with every
parameter set by ``deterministic_values`` below (a closed-form function of the
parameter's structural name and shape), so that the test can set the same values
in mxcore and compare outputs without committing any weights.  Importing this
module needs numpy only (mxnet is imported by ``main``).

Only the standard library, numpy and mxnet are used; nothing here is imported by mxcore.
"""
from __future__ import annotations

import argparse
import json
import sys
import zlib
from typing import Dict, List, Tuple

import numpy as np

# (get_model name, constructor kwargs, input shape): the shapes of the classifier
# layers of alexnet and vgg depend on the input size, so those use 224x224 as in MXNet's
# pretrained models; inception_v3 needs 299x299.
SHAPE_MODELS: List[Tuple[str, Dict, Tuple[int, ...]]] = [
    *[(f"resnet{d}_v{v}", {"classes": 10}, (1, 3, 224, 224))
      for v in (1, 2) for d in (18, 34, 50, 101, 152)],
    *[(f"vgg{d}{bn}", {"classes": 10}, (1, 3, 224, 224))
      for bn in ("", "_bn") for d in (11, 13, 16, 19)],
    ("alexnet", {"classes": 10}, (1, 3, 224, 224)),
    *[(f"densenet{d}", {"classes": 10}, (1, 3, 224, 224)) for d in (121, 161, 169, 201)],
    ("squeezenet1.0", {"classes": 10}, (1, 3, 224, 224)),
    ("squeezenet1.1", {"classes": 10}, (1, 3, 224, 224)),
    ("inceptionv3", {"classes": 10}, (1, 3, 299, 299)),
    *[(f"mobilenet{m}", {"classes": 10}, (1, 3, 224, 224))
      for m in ("1.0", "0.75", "0.5", "0.25")],
    *[(f"mobilenetv2_{m}", {"classes": 10}, (1, 3, 224, 224))
      for m in ("1.0", "0.75", "0.5", "0.25")],
    # the default number of classes
    ("resnet18_v1", {}, (1, 3, 224, 224)),
    ("mobilenet0.25", {}, (1, 3, 224, 224)),
    ("squeezenet1.1", {}, (1, 3, 224, 224)),
]

# models whose outputs are compared number for number, on the smallest inputs they take
# (squeezenet and densenet end in a fixed-size average pooling, so they need 224x224)
NUMERIC_MODELS: List[Tuple[str, Dict, Tuple[int, ...]]] = [
    ("resnet18_v1", {"classes": 10}, (2, 3, 32, 32)),
    ("resnet18_v2", {"classes": 10}, (2, 3, 32, 32)),
    ("resnet50_v1", {"classes": 10}, (1, 3, 32, 32)),
    ("resnet50_v2", {"classes": 10}, (1, 3, 32, 32)),
    ("vgg11_bn", {"classes": 10}, (1, 3, 32, 32)),
    ("alexnet", {"classes": 10}, (1, 3, 64, 64)),
    ("mobilenet0.25", {"classes": 10}, (2, 3, 32, 32)),
    ("mobilenetv2_0.25", {"classes": 10}, (2, 3, 32, 32)),
    ("squeezenet1.0", {"classes": 10}, (1, 3, 224, 224)),
    ("squeezenet1.1", {"classes": 10}, (1, 3, 224, 224)),
    ("densenet121", {"classes": 10}, (1, 3, 224, 224)),
    ("inceptionv3", {"classes": 10}, (1, 3, 299, 299)),
]


def _uniform(n: int, seed: int) -> np.ndarray:
    """``n`` values in [-1, 1) from the splitmix64 hash of (seed, index): integer
    arithmetic only, so every numpy version and platform gives the same bits."""
    with np.errstate(over="ignore"):
        z = np.arange(n, dtype=np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -52 - 1.0


def deterministic_values(name: str, shape: Tuple[int, ...]) -> np.ndarray:
    """float32 values of parameter ``name`` (a structural name) of ``shape``.

    Weights are uniform with variance 2 / fan-in (He), BatchNorm statistics stay near
    their usual values (positive variances).  tests/every_device/test_model_zoo.py
    imports this function to set the same values in mxcore.
    """
    n = int(np.prod(shape)) if shape else 1
    wave = _uniform(n, zlib.crc32(name.encode()))
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "weight":
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        values = wave * np.sqrt(6.0 / fan_in)
    elif leaf == "gamma":
        values = 1.0 + 0.2 * wave
    elif leaf == "running_var":
        values = 1.0 + 0.5 * wave
    else:  # bias, beta, running_mean
        values = 0.1 * wave
    return values.reshape(shape).astype(np.float32)


def deterministic_input(shape: Tuple[int, ...]) -> np.ndarray:
    return _uniform(int(np.prod(shape)), 7).reshape(shape).astype(np.float32)


def build(mx, name: str, kwargs: Dict, shape: Tuple[int, ...]):
    net = mx.gluon.model_zoo.vision.get_model(name, **kwargs)
    net.initialize()
    out = net(mx.nd.zeros(shape))
    return net, out


def record_shapes(mx, name: str, kwargs: Dict, shape: Tuple[int, ...]) -> Dict:
    net, out = build(mx, name, kwargs, shape)
    prefix = net.prefix
    params = []
    for key, p in net._collect_params_with_prefix().items():
        if not p.name.startswith(prefix):
            raise RuntimeError(f"{name}: parameter {p.name} is outside the prefix {prefix}")
        params.append([key, p.name[len(prefix):], list(p.shape)])
    return {"name": name, "kwargs": kwargs, "input": list(shape), "output": list(out.shape),
            "params": params}


def record_numeric(mx, name: str, kwargs: Dict, shape: Tuple[int, ...]) -> Dict:
    net, _ = build(mx, name, kwargs, shape)
    for key, p in net._collect_params_with_prefix().items():
        p.set_data(mx.nd.array(deterministic_values(key, tuple(p.shape))))
    out = net(mx.nd.array(deterministic_input(shape))).asnumpy()
    return {"name": name, "kwargs": kwargs, "input": list(shape),
            "output": [[float(v) for v in row] for row in out.astype(np.float64)]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="tests/data/mxnet_model_zoo_params.json")
    args = parser.parse_args(argv)
    import mxnet as mx
    if mx.__version__ != "1.9.1":
        print(f"warning: mxnet {mx.__version__}, the fixture describes 1.9.1", file=sys.stderr)
    models = [record_shapes(mx, *spec) for spec in SHAPE_MODELS]
    numeric = [record_numeric(mx, *spec) for spec in NUMERIC_MODELS]
    data = {"mxnet_version": mx.__version__, "models": models, "numeric": numeric}
    with open(args.out, "w") as f:
        # one model or parameter a line keeps the file small and its diffs readable
        f.write('{"mxnet_version": %s,\n "models": [\n' % json.dumps(data["mxnet_version"]))
        for i, m in enumerate(models):
            head = {k: m[k] for k in ("name", "kwargs", "input", "output")}
            f.write("  " + json.dumps(head)[:-1] + ', "params": [\n')
            f.write(",\n".join("   " + json.dumps(p) for p in m["params"]))
            f.write("]}" + ("," if i + 1 < len(models) else "") + "\n")
        f.write(' ],\n "numeric": [\n')
        f.write(",\n".join("  " + json.dumps(m) for m in numeric))
        f.write("\n ]}\n")
    print(f"wrote {args.out}: {len(models)} models, {len(numeric)} numeric checks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
