"""``mx.nd``: the NDArray type and every core operator as a function."""
from mxcore.ndarray.ndarray import NDArray  # noqa: I001 - must come first
import hal as _hal
from mxcore.ops import creation as _creation
from mxcore.ops.conv import (Convolution, Deconvolution, Pooling, UpSampling, convolution,
                             deconvolution, pooling, upsampling)
from mxcore.ops.norm import (LRN, BatchNorm, BatchNorm_v1, GroupNorm, InstanceNorm,
                             L2Normalization, batch_norm, group_norm, group_norm_backward,
                             instance_norm, instance_norm_backward, l2_normalization, lrn,
                             lrn_backward)
from mxcore.ops.ordering import *  # noqa: F401,F403  (names in its __all__)
from mxcore.ops.embedding import *  # noqa: F401,F403
from mxcore.ops.rnn import *  # noqa: F401,F403
from mxcore.ops.ctc import *  # noqa: F401,F403  (ctc_loss, CTCLoss)
from mxcore.ops.loss_output import *  # noqa: F401,F403  (MakeLoss, SoftmaxOutput, ...)
from mxcore.ops.random import *  # noqa: F401,F403  (random_*, sample_*, shuffle: its __all__)
from mxcore.ops.random import random_normal as normal, random_uniform as uniform  # noqa: F401
from mxcore.ops.custom import Custom  # noqa: F401  (mx.operator's custom ops)
from mxcore.ops.roi import ROIPooling  # noqa: F401
from mxcore.ops.sampling import BilinearSampler, GridGenerator, SpatialTransformer  # noqa: F401
from mxcore.ops.correlation import Correlation  # noqa: F401
from mxcore.ops.im2col import col2im, im2col  # noqa: F401
from mxcore.ops.creation import (arange, array, cast, copy, empty, eye, from_dlpack,
                                 from_numpy, full, full_like, linspace, ones, ones_like,
                                 to_device, to_dlpack_for_read, to_dlpack_for_write, zeros,
                                 zeros_like)
from mxcore.ops.elemwise import (ElementWiseSum, abs, add, add_n, arccos, arccosh, arcsin,
                                 arcsinh, arctan, arctanh, broadcast_add, broadcast_div,
                                 broadcast_equal, broadcast_greater, broadcast_greater_equal,
                                 broadcast_hypot, broadcast_lesser, broadcast_lesser_equal,
                                 broadcast_logical_and, broadcast_logical_or,
                                 broadcast_logical_xor, broadcast_maximum, broadcast_minimum,
                                 broadcast_minus, broadcast_mod, broadcast_mul,
                                 broadcast_not_equal, broadcast_plus, broadcast_power,
                                 broadcast_sub, cbrt, ceil, clip, cos, cosh, degrees, divide,
                                 elemwise_add, elemwise_div, elemwise_mul, elemwise_sub, equal,
                                 erf, erfinv, exp, expm1, fix, floor, gamma, gammaln, gelu,
                                 greater, greater_equal, hard_sigmoid, hypot, leaky_relu, less,
                                 less_equal, lesser, lesser_equal, log, log10, log1p, log2,
                                 logical_and, logical_not, logical_or, logical_xor, maximum,
                                 minimum, mod, modulo, multiply, negative, not_equal, power,
                                 radians, rcbrt, reciprocal, relu, rint, round, rsqrt, sigmoid,
                                 sign, sin, sinh, smooth_l1, softplus, softrelu, softsign, sqrt,
                                 square, subtract, tan, tanh, true_divide, trunc, where)
from mxcore.ops.indexing import (SequenceLast, SequenceMask, SequenceReverse, batch_take,
                                 choose_element_0index, crop, fill_element_0index, gather_nd,
                                 getitem, one_hot, onehot_encode, pick, ravel_multi_index,
                                 scatter_nd, sequence_last, sequence_mask, sequence_reverse,
                                 setitem, slice, slice_axis, slice_like, take, unravel_index)
from mxcore.ops.linalg import (batch_dot, dot, linalg_det, linalg_extractdiag,
                               linalg_extracttrian, linalg_gelqf, linalg_gemm, linalg_gemm2,
                               linalg_inverse, linalg_makediag, linalg_maketrian, linalg_potrf,
                               linalg_potri, linalg_slogdet, linalg_sumlogdiag, linalg_syevd,
                               linalg_syrk, linalg_trmm, linalg_trsm, matmul)
from mxcore.ndarray import linalg  # noqa: E402  (mx.nd.linalg.gemm2...)
from mxcore.ops.nn import (Activation, Dropout, FullyConnected, LayerNorm, LeakyReLU,
                           SoftmaxActivation, activation, dropout, fully_connected,
                           fully_connected_backward, layer_norm, layer_norm_backward,
                           leaky_relu_act, log_softmax, softmax, softmax_ce_loss,
                           softmax_ce_loss_with_grad,
                           softmax_cross_entropy, softmin)
from mxcore.ops.optimizer import (adadelta_update, adagrad_update, adam_update, adamw_update,
                                  ftml_update, ftrl_update, lamb_update_phase1,
                                  lamb_update_phase2, mp_lamb_update_phase1,
                                  mp_lamb_update_phase2, multi_adam_update, multi_adamw_update,
                                  multi_lamb_update, multi_mp_lamb_update, multi_sgd_mom_update,
                                  multi_sgd_update, nag_mom_update, rmsprop_update, rmspropalex_update,
                                  sgd_mom_update, sgd_update, signsgd_update, signum_update)
from mxcore.ops.reduce import (all_finite, argmax, argmax_channel, argmin, histogram, max,
                               max_axis, mean, min, min_axis, moments, multi_all_finite,
                               nanprod, nansum, norm, prod, sum, sum_axis)
from mxcore.ops.shape import (Concat, Crop, Flatten, Pad, Reshape, SliceChannel, SwapAxis,
                              broadcast_axes, broadcast_axis, broadcast_like, broadcast_to,
                              concat, concatenate, depth_to_space, diag, expand_dims, flatten,
                              flip, moveaxis, pad, repeat, reshape, reshape_like, reverse,
                              shape_array, size_array, space_to_depth, split, split_v2, squeeze,
                              stack, swapaxes, tile, transpose)
from mxcore import random  # noqa: E402  (mx.nd.random is mx.random)
from mxcore.serialization import load, load_frombuffer, save  # noqa: E402
from mxcore.ndarray import _internal, contrib, image, sparse  # noqa: E402,F401
from mxcore.graph.cached_op import CachedOp  # noqa: E402,F401


def stop_gradient(data: NDArray) -> NDArray:
    """The same values, cut from the autograd graph (MXNet's BlockGrad)."""
    return data.detach()


BlockGrad = stop_gradient


#: the types AMP casts between; other data (float64, integers) passes through its casts
_AMP_FLOATS = frozenset({"float16", "bfloat16", "float32"})


def amp_cast(data: NDArray, dtype) -> NDArray:
    """MXNet's AMP cast: float32, float16 or bfloat16 data cast to ``dtype``; other data
    (float64, integers) as it is."""
    # the op module's cast: mx.nd.cast itself may be wrapped by amp.init (bfloat16 lists it)
    return _creation.cast(data, dtype) if _hal.dtype_name(data.dtype) in _AMP_FLOATS else data


def amp_multicast(*data: NDArray, num_outputs: int, cast_narrow: bool = False) -> list:
    """MXNet's AMP multicast: the inputs cast to their widest float type (float32 if any
    is float32), or with ``cast_narrow`` to their narrowest (a 16-bit type if any is
    one); only float32, float16 and bfloat16 inputs are cast.  A list of
    ``num_outputs`` arrays, one per input; gradients flow back in each input's dtype."""
    from mxcore.base import OperatorError
    if len(data) != int(num_outputs) or not data:
        raise OperatorError("amp_multicast", f"num_outputs={num_outputs} but {len(data)} "
                            "inputs were given; give one input per output",
                            [getattr(x, "shape", None) for x in data],
                            [getattr(x, "dtype", None) for x in data],
                            getattr(data[0], "context", None) if data else None)
    names = [_hal.dtype_name(x.dtype) for x in data]
    target = _amp_multicast_dtype(names, cast_narrow)
    return [amp_cast(x, target) if name in _AMP_FLOATS and name != target else x
            for x, name in zip(data, names)]


def _amp_multicast_dtype(dtype_names, cast_narrow: bool = False) -> str:
    """The type ``amp_multicast`` casts inputs of these dtypes (names) to."""
    floats = [n for n in dtype_names if n in _AMP_FLOATS]
    if cast_narrow:
        narrow = [n for n in floats if n != "float32"]
        return narrow[-1] if narrow else "float32"
    return "float32" if "float32" in floats else (floats[0] if floats else "float32")


def cast_storage(data: NDArray, stype: str = "default") -> NDArray:
    """MXNet's storage cast: a copy for ``'default'``; mxcore has no sparse storage."""
    return data.tostype(stype)


def waitall() -> None:
    """Wait for every pushed operation to finish, on every device this process has
    used (surfaces pending errors)."""
    from mxcore import engine
    from mxcore.device import synchronize
    engine.current().wait_all()
    synchronize()


#: distinct call signatures whose rule check is kept per op
_MAX_CHECKED = 4096


def _signature(inputs, attrs):
    key = (inputs[0]._device.kind, tuple([(x._data.shape, x._data.dtype) for x in inputs]))
    try:
        return key + (tuple(attrs.items()),)
    except TypeError:
        return key + (tuple((k, repr(v)) for k, v in attrs.items()),)


def _check_call(op, inputs, attrs):
    """Hold a call by name to the op's rules: arity, NDArray inputs, and its
    shape/dtype rule, once per signature.  Returns the signature when it is new
    (the outputs are then checked against the rule too), else None."""
    from mxcore.base import OperatorError
    if any(type(x) is not NDArray for x in inputs):
        raise OperatorError(op.name, "expected NDArray inputs, got "
                            f"{[type(x).__name__ for x in inputs]}")
    if (op.nin >= 0 and len(inputs) != op.nin) or not inputs:
        want = f"{op.nin}" if op.nin >= 0 else "at least 1"
        raise OperatorError(op.name, f"takes {want} input array(s), got {len(inputs)}",
                            [x._data.shape for x in inputs], [x._data.dtype for x in inputs],
                            inputs[0]._device if inputs else None)
    sig = _signature(inputs, attrs)
    if sig in op.checked:  # the usual call: one key built, one lookup
        return None
    shapes = [x._data.shape for x in inputs]
    dtypes = [x._data.dtype for x in inputs]
    want = None
    if op.infer is not None:
        try:
            out_shapes, out_dtypes = op.infer_shape_dtype(shapes, dtypes, attrs)
        except Exception as exc:  # noqa: BLE001 - the rule's own words, with the call
            raise OperatorError(op.name, f"{exc}", shapes, dtypes, inputs[0]._device) from None
        want = [(tuple(s), _hal.dtype_name(d)) for s, d in zip(out_shapes, out_dtypes)]
    if len(op.checked) >= _MAX_CHECKED:
        op.checked.clear()
    return sig, want


def _check_outputs(op, inputs, out, want) -> None:
    from mxcore.base import OperatorError
    outs = out if isinstance(out, tuple) else (out,)
    got = [(tuple(o.shape), o.dtype.name) for o in outs]
    if len(got) != len(want) or any(g[1] != w[1] or (g[0] != w[0] and -1 not in w[0])
                                    for g, w in zip(got, want)):
        fmt = lambda rows: ", ".join(f"{s} {d}" for s, d in rows)  # noqa: E731
        raise OperatorError(op.name, f"the kernel returned {fmt(got)} where the operator's "
                            f"rule gives {fmt(want)}", [x.shape for x in inputs],
                            [x.dtype for x in inputs], inputs[0]._device)


def invoke(op_name: str, *inputs, **attrs):
    """Run any registered operator by name (e.g. one from an operator plugin).

    The call is held to the op's rules (attribute schema, arity, shape/dtype rule),
    the shape/dtype rule once per call signature; outputs of a new signature are
    checked against the rule."""
    from mxcore.dispatch import invoke as _invoke, invoke_nullary
    from mxcore.plugins import registry
    op = registry().op(op_name)
    full_attrs = op.check_attrs(attrs)
    if op.nullary:
        from mxcore.device import default_device
        return invoke_nullary(op, default_device(), full_attrs, full_attrs.get("dtype", "float32"))
    new = _check_call(op, inputs, full_attrs)
    out = _invoke(op, inputs, full_attrs)
    if new is not None:
        sig, want = new
        if want is not None and not op.mutates:
            _check_outputs(op, inputs, out, want)
        op.checked[sig] = True
    return out


def __getattr__(name: str):
    """Operators registered by plugins appear here by name (``mx.nd.my_op``)."""
    from mxcore.plugins import registry
    if name.startswith("__"):
        raise AttributeError(name)
    call = registered_function(name)
    if call is None:
        raise AttributeError(f"module 'mxcore.ndarray' has no attribute {name!r} "
                             "(no such function or registered operator)")
    return call


def registered_function(name: str):
    """The function of a plugin's operator ``name``: its ``frontend``, else a call by
    name; None when no such operator is registered."""
    from mxcore.plugins import registry
    op = registry().ops.get(name)
    if op is None:
        return None
    if op.frontend is not None:
        return op.frontend

    def call(*inputs, **attrs):
        return invoke(name, *inputs, **attrs)
    call.__name__ = name
    call.__doc__ = op.doc
    return call
