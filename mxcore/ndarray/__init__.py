"""``mx.nd``: the NDArray type and every core operator as a function."""
from mxcore.ndarray.ndarray import NDArray  # noqa: I001 - must come first
from mxcore.ops.creation import (arange, array, cast, copy, empty, from_dlpack, full, full_like,
                                 linspace, ones, ones_like, to_device, to_dlpack_for_read,
                                 to_dlpack_for_write, zeros, zeros_like)
from mxcore.ops.elemwise import (abs, add, broadcast_add, broadcast_div, broadcast_equal,
                                 broadcast_greater, broadcast_greater_equal, broadcast_lesser,
                                 broadcast_lesser_equal, broadcast_maximum, broadcast_minimum,
                                 broadcast_mod, broadcast_mul, broadcast_not_equal,
                                 broadcast_power, broadcast_sub, ceil, clip, cos, divide,
                                 elemwise_add, elemwise_div, elemwise_mul, elemwise_sub, equal,
                                 erf, exp, expm1, floor, gelu, greater, greater_equal, leaky_relu,
                                 less, less_equal, lesser, lesser_equal, log, log1p, maximum,
                                 minimum, mod, multiply, negative, not_equal, power, reciprocal,
                                 relu, round, rsqrt, sigmoid, sign, sin, softplus, softrelu, sqrt,
                                 square, subtract, tanh, where)
from mxcore.ops.indexing import (getitem, one_hot, pick, setitem, slice, slice_axis, slice_like,
                                 take)
from mxcore.ops.linalg import batch_dot, dot, matmul
from mxcore.ops.nn import (Activation, Dropout, FullyConnected, LayerNorm, LeakyReLU, activation,
                           dropout, fully_connected, fully_connected_backward, layer_norm,
                           layer_norm_backward,
                           leaky_relu_act, log_softmax, softmax, softmax_ce_loss)
from mxcore.ops.optimizer import (adadelta_update, adagrad_update, adam_update, adamw_update,
                                  multi_adam_update, multi_adamw_update, multi_sgd_mom_update,
                                  multi_sgd_update, nag_mom_update, rmsprop_update, rmspropalex_update,
                                  sgd_mom_update, sgd_update)
from mxcore.ops.reduce import argmax, argmin, max, mean, min, nansum, norm, prod, sum
from mxcore.ops.shape import (Flatten, SliceChannel, SwapAxis, broadcast_axis, broadcast_like,
                              broadcast_to, concat, concatenate, expand_dims, flatten, pad,
                              repeat, reshape, reshape_like, split, squeeze, stack, swapaxes,
                              tile, transpose)
from mxcore import random  # noqa: E402  (mx.nd.random is mx.random)
from mxcore.serialization import load, save  # noqa: E402


def stop_gradient(data: NDArray) -> NDArray:
    """The same values, cut from the autograd graph (MXNet's BlockGrad)."""
    return data.detach()


BlockGrad = stop_gradient


def waitall() -> None:
    """Wait for every pushed operation to finish, on every device this process has
    used (surfaces pending errors)."""
    from mxcore import dispatch
    from mxcore.device import synchronize
    dispatch.ENGINE.wait_all()
    synchronize()


def invoke(op_name: str, *inputs, **attrs):
    """Run any registered operator by name (e.g. one from an operator plugin)."""
    from mxcore.dispatch import invoke as _invoke, invoke_nullary
    from mxcore.plugins import registry
    op = registry().op(op_name)
    full_attrs = op.check_attrs(attrs)
    if op.nullary:
        from mxcore.device import default_device
        return invoke_nullary(op, default_device(), full_attrs, full_attrs.get("dtype", "float32"))
    return _invoke(op, inputs, full_attrs)


def __getattr__(name: str):
    """Operators registered by plugins appear here by name (``mx.nd.my_op``)."""
    from mxcore.plugins import registry
    if name.startswith("__"):
        raise AttributeError(name)
    reg = registry()
    if name in reg.ops:
        def call(*inputs, **attrs):
            return invoke(name, *inputs, **attrs)
        call.__name__ = name
        call.__doc__ = reg.ops[name].doc
        return call
    raise AttributeError(f"module 'mxcore.ndarray' has no attribute {name!r} "
                         "(no such function or registered operator)")
