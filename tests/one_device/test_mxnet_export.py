"""export / SymbolBlock.imports: files written by Apache MXNet 1.9.1 load in mxcore
with MXNet's outputs, mxcore's exports round-trip in a fresh process and, when an
MXNet 1.9.1 python is given (MXCORE_MXNET_PYTHON), load in MXNet with mxcore's outputs."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import mxcore as mx
from mxcore.gluon import nn
from mxcore.graph.ir import GraphFormatError

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "data", "mxnet_export")


def test_model_exported_by_mxnet_gives_mxnet_outputs():
    block = mx.gluon.SymbolBlock.imports(os.path.join(FIXTURE, "net-symbol.json"), ["data"],
                                         os.path.join(FIXTURE, "net-0000.params"))
    x = mx.nd.array(np.load(os.path.join(FIXTURE, "input.npy")))
    want = np.load(os.path.join(FIXTURE, "output.npy"))
    np.testing.assert_allclose(block(x).asnumpy(), want, rtol=1e-5, atol=1e-6)
    block.hybridize()
    np.testing.assert_allclose(block(x).asnumpy(), want, rtol=1e-5, atol=1e-6)
    assert "net_batchnorm0_running_mean" in block.collect_params()


def _net():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3, padding=1), nn.BatchNorm(), nn.Activation("relu"),
            nn.MaxPool2D(), nn.Flatten(), nn.Dense(5))
    net.initialize(mx.init.Xavier())
    return net


def test_export_needs_a_hybridized_call(tmp_path):
    with pytest.raises(RuntimeError, match="hybridize"):
        _net().export(str(tmp_path / "m"))


@pytest.mark.parametrize("fmt", ["safetensors", "mxnet"])
def test_export_imports_round_trip_in_a_fresh_process(tmp_path, fmt):
    net = _net()
    net.hybridize()
    x = np.random.default_rng(0).random((2, 3, 8, 8)).astype(np.float32)
    out = net(mx.nd.array(x)).asnumpy()
    sym_file, param_file = net.export(str(tmp_path / "m"), 2, format=fmt)
    np.save(tmp_path / "x.npy", x)
    code = textwrap.dedent(f"""
        import numpy as np, mxcore as mx
        b = mx.gluon.SymbolBlock.imports({sym_file!r}, ["data"], {param_file!r})
        np.save({str(tmp_path / "y.npy")!r}, b(mx.nd.array(np.load({str(tmp_path / "x.npy")!r}))).asnumpy())
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), out)


def test_symbol_block_trains(tmp_path):
    net = _net()
    net.hybridize()
    x = mx.nd.array(np.random.default_rng(1).random((2, 3, 8, 8)))
    net(x)
    sym_file, param_file = net.export(str(tmp_path / "m"))
    block = mx.gluon.SymbolBlock.imports(sym_file, ["data"], param_file)
    params = {name.split("_", 1)[0].rstrip("0123456789") + "_" + name.split("_", 1)[1]: p
              for name, p in block.collect_params().items()}
    assert params["dense_weight"].grad_req == "write"
    assert params["batchnorm_running_mean"].grad_req == "null"
    with mx.autograd.record():
        loss = block(x).sum()
    loss.backward()
    assert float(params["dense_bias"].grad().abs().sum().asscalar()) > 0


def test_broken_files_are_clear_errors(tmp_path):
    net = _net()
    net.hybridize()
    net(mx.nd.ones((1, 3, 8, 8)))
    sym_file, param_file = net.export(str(tmp_path / "m"))
    bad = tmp_path / "bad-symbol.json"
    bad.write_text(open(sym_file).read()[:100])
    with pytest.raises(GraphFormatError, match="bad-symbol.json"):
        mx.gluon.SymbolBlock.imports(str(bad), ["data"], param_file)
    short = tmp_path / "short.params"
    short.write_bytes(open(param_file, "rb").read()[:64])
    with pytest.raises(mx.MXCoreError, match="short.params"):
        mx.gluon.SymbolBlock.imports(sym_file, ["data"], str(short))
    with pytest.raises(mx.MXCoreError, match="not variables"):
        mx.gluon.SymbolBlock.imports(sym_file, ["image"], param_file)


@pytest.mark.skipif(not os.environ.get("MXCORE_MXNET_PYTHON"),
                    reason="MXCORE_MXNET_PYTHON (a python with mxnet 1.9.1) is not set")
def test_mxnet_loads_mxcore_exports(tmp_path):
    net = _net()
    net.hybridize()
    x = np.random.default_rng(2).random((2, 3, 8, 8)).astype(np.float32)
    out = net(mx.nd.array(x)).asnumpy()
    sym_file, param_file = net.export(str(tmp_path / "m"), format="mxnet")
    np.save(tmp_path / "x.npy", x)
    code = textwrap.dedent(f"""
        import numpy as np, mxnet as mx
        b = mx.gluon.SymbolBlock.imports({sym_file!r}, ["data"], {param_file!r})
        np.save({str(tmp_path / "y.npy")!r}, b(mx.nd.array(np.load({str(tmp_path / "x.npy")!r}))).asnumpy())
    """)
    subprocess.run([os.environ["MXCORE_MXNET_PYTHON"], "-c", code], check=True, timeout=600)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), out, rtol=1e-5, atol=1e-6)
