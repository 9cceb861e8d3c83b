"""mxcore: a deep-learning framework in the line of Apache MXNet.

``import mxcore as mx`` gives MXNet 1.x names: ``mx.nd``, ``mx.autograd``,
``mx.cpu()``, ``mx.gpu()``, ``mx.random``.  Devices and kernels come from
plugins, loaded on first use (``mxcore plugins`` lists them).
"""
__version__ = "0.1.0"

from hal import Device  # noqa: E402
from mxcore import autograd, context, engine  # noqa: E402
from mxcore import ndarray  # noqa: E402
from mxcore import ndarray as nd  # noqa: E402
from mxcore import random  # noqa: E402
from mxcore import gluon  # noqa: E402
from mxcore import lr_scheduler, optimizer  # noqa: E402
from mxcore import kvstore, kvstore as kv  # noqa: E402
from mxcore import initializer, initializer as init, metric, profiler  # noqa: E402
from mxcore import runtime, test_utils, util  # noqa: E402
from mxcore import attribute, name, symbol, symbol as sym  # noqa: E402
from mxcore import io, model, module, module as mod  # noqa: E402
from mxcore import monitor, monitor as mon  # noqa: E402
from mxcore import amp, contrib, operator, rnn  # noqa: E402
from mxcore import onnx  # noqa: E402  (imports the onnx package only when used)
from mxcore.attribute import AttrScope  # noqa: E402
from mxcore.base import MXCoreError, MXNetError, OperatorError  # noqa: E402
from mxcore.util import (is_np_array, is_np_shape, np_shape, set_np_shape,  # noqa: E402
                         use_np_shape)
from mxcore.device import (Context, available_devices, cpu, cpu_pinned, current_context,  # noqa: E402
                           default_device, device, gpu, num_gpus)

__all__ = ["amp", "contrib", "operator", "rnn", "Device", "Context", "context", "autograd", "engine", "nd", "ndarray", "random", "gluon",
           "initializer", "init", "metric", "profiler", "optimizer", "lr_scheduler", "kv",
           "kvstore", "cpu", "gpu",
           "cpu_pinned", "device", "num_gpus", "current_context", "default_device",
           "available_devices", "test_utils", "util", "runtime", "np_shape", "set_np_shape",
           "is_np_shape", "is_np_array", "use_np_shape", "MXCoreError", "MXNetError",
           "OperatorError", "attribute", "AttrScope", "name", "symbol", "sym",
           "io", "model", "module", "mod", "onnx"]
