"""Write tests/data/mxnet_export/: a small CNN exported by Apache MXNet 1.9.1
(``-symbol.json`` + binary ``.params``), an input and MXNet's output for it.

Run with MXNet 1.9.1's python (see tools/mxnet_compat.py --setup-mxnet):
    /work/mxnet-venv/bin/python tools/mxnet_export_fixture.py
tests/one_device/test_mxnet_export.py loads the files into mxcore and compares.
"""
import os
import sys

import numpy as np


def main(out_dir: str) -> None:
    import mxnet as mx
    from mxnet.gluon import nn
    mx.random.seed(7)
    np.random.seed(7)
    net = nn.HybridSequential(prefix="net_")
    with net.name_scope():
        net.add(nn.Conv2D(6, 3, padding=1), nn.BatchNorm(), nn.Activation("relu"),
                nn.MaxPool2D(), nn.Conv2D(4, 3, strides=2, use_bias=False), nn.Flatten(),
                nn.Dense(8, activation="tanh"), nn.Dropout(0.3), nn.Dense(3))
    net.initialize(mx.init.Xavier())
    x = mx.nd.array(np.random.rand(2, 3, 10, 10).astype(np.float32))
    with mx.autograd.record():  # moves BatchNorm's running statistics off their defaults
        net(x)
    net.hybridize()
    out = net(x)
    os.makedirs(out_dir, exist_ok=True)
    net.export(os.path.join(out_dir, "net"), epoch=0)
    np.save(os.path.join(out_dir, "input.npy"), x.asnumpy())
    np.save(os.path.join(out_dir, "output.npy"), out.asnumpy())


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    main(sys.argv[1] if len(sys.argv) > 1 else
         os.path.join(here, "..", "tests", "data", "mxnet_export"))
