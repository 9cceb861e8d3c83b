"""Write tests/data/mxnet_graph_names.json: the node output names of model-zoo graphs
as Apache MXNet 1.9.1 builds them (``net(mx.sym.var('data')).get_internals()``).

Run with MXNet 1.9.1's python (see tools/mxnet_compat.py --setup-mxnet):
    /work/mxnet-venv/bin/python tools/mxnet_graph_names.py
tests/no_device/test_graph_names.py checks mxcore's graphs against it.
"""
import json
import os
import sys

MODELS = ("resnet18_v1", "resnet18_v2", "mobilenetv2_0.25", "squeezenet1.1", "vgg11_bn",
          "alexnet")


def main(path: str) -> None:
    import mxnet as mx
    names = {}
    for model in MODELS:
        net = mx.gluon.model_zoo.vision.get_model(model)
        names[model] = net(mx.sym.var("data")).get_internals().list_outputs()
    with open(path, "w") as f:
        json.dump({"mxnet": mx.__version__, "names": names}, f, indent=0)
        f.write("\n")


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    main(sys.argv[1] if len(sys.argv) > 1 else
         os.path.join(here, "..", "tests", "data", "mxnet_graph_names.json"))
