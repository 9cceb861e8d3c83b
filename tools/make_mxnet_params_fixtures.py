#!/usr/bin/env python3
"""Writes the MXNet parameter-file fixtures of tests/data/mxnet_params/.

Run it with a Python that has Apache MXNet 1.9.1 (never with mxcore's):

    /work/mxnet-venv/bin/python tools/make_mxnet_params_fixtures.py

For every ``NAME.params`` written by MXNet (``mx.nd.save``, ``Block.save_parameters``,
``HybridBlock.export``) it writes ``NAME.npz``: the values MXNet reads back from that
file, under the names MXNet gives them (``0``, ``1``... for a list), and the container
(``list`` or ``dict``) in ``__container__``.  The sparse files have no ``.npz``: mxcore
refuses them.  Everything is tiny and deterministic.
"""
from __future__ import annotations

import os
import sys

import numpy as np

import mxnet as mx

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests", "data",
                   "mxnet_params")


def _nd(values, dtype):
    return mx.nd.array(np.asarray(values), dtype=dtype)


def _expect(name: str, loaded) -> None:
    """NAME.npz: what MXNet reads back from NAME.params."""
    if isinstance(loaded, dict):
        arrays, container = {k: v.asnumpy() for k, v in loaded.items()}, "dict"
    else:
        arrays, container = {str(i): v.asnumpy() for i, v in enumerate(loaded)}, "list"
    np.savez(os.path.join(OUT, name + ".npz"), __container__=np.array(container), **arrays)


def dtypes_dict() -> None:
    data = {
        "f16": _nd([[0.5, -1.25, 65504.0], [6e-5, 0.0, -0.0]], "float16"),
        "f32": _nd([1.5, np.inf, np.nan], "float32"),
        "f64": _nd([[np.pi, -1e300], [5e-324, 2.0]], "float64"),
        "i8": _nd([-128, -1, 0, 127], "int8"),
        "u8": _nd([[0, 1], [128, 255]], "uint8"),
        "i32": _nd([-2 ** 31, 7, 2 ** 31 - 1], "int32"),
        "i64": mx.nd.array(np.array([-(2 ** 62), 2 ** 40 + 3], np.int64), dtype="int64"),
        "flag": _nd([True, False, True], "bool"),
        "f32_4d": _nd(np.arange(4).reshape(1, 2, 1, 2) / 8, "float32"),
    }
    mx.nd.save(os.path.join(OUT, "dtypes_dict.params"), data)
    _expect("dtypes_dict", mx.nd.load(os.path.join(OUT, "dtypes_dict.params")))


def plain_list() -> None:
    data = [_nd([[1, 2], [3, 4]], "float32"), _nd([5, -6, 7], "int32"), _nd([0.25], "float64")]
    mx.nd.save(os.path.join(OUT, "list.params"), data)
    _expect("list", mx.nd.load(os.path.join(OUT, "list.params")))


def np_shape() -> None:
    """NumPy shape semantics: 0-d and zero-size arrays (NDArray header V3)."""
    with mx.util.np_shape(True):
        data = {"scalar": mx.nd.array(np.array(3.5, np.float32)),
                "empty": mx.nd.array(np.zeros((0, 3), np.float32)),
                "vec": mx.nd.array(np.array([1, 2], np.int64), dtype="int64")}
        mx.nd.save(os.path.join(OUT, "np_shape.params"), data)
        _expect("np_shape", mx.nd.load(os.path.join(OUT, "np_shape.params")))


def gluon_net() -> None:
    """A Dense + BatchNorm net: ``save_parameters`` (structural names) and ``export``
    (``arg:``/``aux:`` names)."""
    from mxnet import gluon
    mx.random.seed(7)
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(3, in_units=2), gluon.nn.BatchNorm(in_channels=3))
    net.initialize(mx.init.Normal(0.5))
    net[1].running_mean.set_data(mx.nd.array([0.1, -0.2, 0.3]))
    net[1].running_var.set_data(mx.nd.array([1.5, 0.5, 2.0]))
    net.hybridize()
    net(mx.nd.ones((1, 2)))
    net.save_parameters(os.path.join(OUT, "gluon_net.params"))
    _expect("gluon_net", mx.nd.load(os.path.join(OUT, "gluon_net.params")))
    net.export(os.path.join(OUT, "gluon_net"))
    os.remove(os.path.join(OUT, "gluon_net-symbol.json"))  # only the parameters are tested
    _expect("gluon_net-0000", mx.nd.load(os.path.join(OUT, "gluon_net-0000.params")))


def sparse() -> None:
    dense = mx.nd.array([[0, 1], [0, 0], [2, 0]])
    mx.nd.save(os.path.join(OUT, "row_sparse.params"), [dense.tostype("row_sparse")])
    mx.nd.save(os.path.join(OUT, "csr.params"), {"m": dense.tostype("csr")})


def main() -> int:
    if not mx.__version__.startswith("1."):
        print(f"needs MXNet 1.x, found {mx.__version__}", file=sys.stderr)
        return 1
    os.makedirs(OUT, exist_ok=True)
    for make in (dtypes_dict, plain_list, np_shape, gluon_net, sparse):
        make()
    print(f"wrote {len(os.listdir(OUT))} files to {os.path.normpath(OUT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
