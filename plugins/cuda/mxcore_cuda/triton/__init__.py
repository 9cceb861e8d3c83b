"""The Triton kernel table: which op each kernel implements, for which dtypes,
under which guard.  Declaring the table imports no Triton: each kernel is a
lazy proxy that imports its module (and compiles, or interprets) on first call,
so loading the plugin stays cheap for processes that never touch the device.

Kernels register at priority 10 (``PRIORITY``); the array-module fallbacks at
-10, so a Triton kernel wins whenever its guard accepts the call.
"""
from __future__ import annotations

import functools

import importlib
from typing import Callable, List, Optional, Sequence, Tuple

import hal
from mxcore_cuda.placement import on_array_device
from mxcore_cuda.triton._layout import MAX_DIMS, broadcast_plan
from mxcore_cuda.triton._runtime import MAX_COLS_SOFTMAX, numel, size_ok, worth_launching

PRIORITY = 10
#: bfloat16 where ml_dtypes provides it: kernels load it, compute in float32, round on store
BF16 = frozenset(hal.BFLOAT16_DTYPES)
FLOAT = frozenset(hal.FLOAT_DTYPES) | BF16
INT = frozenset(hal.INT_DTYPES)

UNARY_OPS = {name: FLOAT for name in ("exp", "log", "sqrt", "tanh", "sigmoid", "softrelu",
                                      "sin", "cos", "reciprocal", "floor", "ceil", "abs",
                                      "square")}
UNARY_OPS.update({name: FLOAT | INT for name in ("negative", "relu")})
BINARY_OPS = {name: FLOAT | INT for name in ("add", "subtract", "multiply", "maximum",
                                             "minimum")}
BINARY_OPS["divide"] = FLOAT
BINARY_OPS.update({name: FLOAT | INT for name in ("equal", "not_equal", "greater",
                                                  "greater_equal", "less", "less_equal")})
#: scalar forms, layer norm, sampling: 16/32-bit floats (Triton passes scalars as float32)
HALF_SINGLE = frozenset({"float16", "float32"}) | BF16
#: matrix products: tl.dot's float inputs
PRODUCTS = HALF_SINGLE
SCALAR_OPS = ("add_scalar", "sub_scalar", "rsub_scalar", "mul_scalar", "div_scalar",
              "rdiv_scalar", "maximum_scalar", "minimum_scalar", "equal_scalar",
              "not_equal_scalar", "greater_scalar", "greater_equal_scalar", "less_scalar",
              "less_equal_scalar")
REDUCE_OPS = ("sum", "mean", "prod", "max", "min")
ARG_OPS = ("argmax", "argmin")
#: ops ``fused_elemwise`` chains (its kernel's ``fusable``): the elementwise formulas the
#: CPU fuser also names; their Triton formulas compile the same fused or not (no
#: multiply-add inside one), so fused chains equal unfused ones bit for bit
FUSABLE_OPS = frozenset({
    "negative", "abs", "square", "exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid",
    "relu", "add", "subtract", "multiply", "divide", "maximum", "minimum", "add_scalar",
    "sub_scalar", "rsub_scalar", "mul_scalar", "div_scalar", "rdiv_scalar",
    "maximum_scalar", "minimum_scalar"})
#: float64 chains: no scalar forms (their Triton kernels take 16/32-bit floats only, so
#: unfused float64 scalar ops run on the fallback; fusion must not change that) and no
#: log (libdevice's float64 log has a multiply-add the unfused kernel contracts to an FMA
#: and the fused one, compiled without contraction, does not)
FUSABLE_OPS_FLOAT64 = FUSABLE_OPS - frozenset(SCALAR_OPS) - {"log"}
#: dtypes the array-module fuser (the fallback) takes
FALLBACK_FUSED = frozenset({"float32", "float64"})


def fusable_ops(dtype: Optional[str]) -> frozenset:
    """The op names the Triton fuser chains in ``dtype`` (none where this Triton cannot
    compile the chain kernel: graph fusion then leaves chains unfused)."""
    if not fused_chain_compiles():
        return frozenset()
    return FUSABLE_OPS_FLOAT64 if dtype == "float64" else FUSABLE_OPS


# guards ----------------------------------------------------------------------------------
# Guards run once per (shapes, attrs) signature (mxcore.dispatch caches the choice).
# ``worth_launching``: interpreted, arrays up to the interpreter's maximum; on a GPU, at
# least MXCORE_CUDA_TRITON_MIN_ELEMENTS elements (smaller ones go to the CuPy fallback),
# bfloat16 at every size.
def unary_size(shapes, dtypes, attrs) -> bool:
    """Elementwise unary and scalar forms: the array's size is in the launch window."""
    return worth_launching(shapes[0], dtypes)


def broadcastable(shapes, dtypes, attrs) -> bool:
    """Elementwise binary: inputs that broadcast, to a pattern of at most 4 merged
    dimensions, with an output in the launch window."""
    p = broadcast_plan(tuple(shapes))
    return p is not None and len(p[1]) <= MAX_DIMS and worth_launching(p[0], dtypes)


def reduce_split(shape: Sequence[int], axis) -> Optional[Tuple[int, int, int]]:
    """(outer, R, inner): a C-contiguous array of ``shape`` reduced over ``axis`` (None:
    all) seen as an (outer, R, inner) block reduced over R; None when the reduced axes
    are not one run.  Size-1 axes do not change the memory order, so they never break a
    run (axes (0, 2) of shape (4, 1, 5) are one)."""
    nd = len(shape)
    axes = set(range(nd)) if axis is None else {a % nd for a in axis}
    run = [i for i in axes if shape[i] != 1]
    lo, hi = (min(run), max(run)) if run else (nd, nd)
    outer = reduced = inner = 1
    for i, n in enumerate(shape):
        if i in axes:
            reduced *= n
        elif n == 1:
            continue
        elif i < lo:
            outer *= n
        elif i > hi:
            inner *= n
        else:
            return None  # a kept axis inside the run
    return outer, reduced, inner


def axis_run(shapes, dtypes, attrs) -> bool:
    """Reductions: over all axes or one contiguous run of axes (leading, middle or
    trailing), a non-empty input (under 2**31 elements) in the launch window."""
    shape = shapes[0]
    return (0 < numel(shape) < 2**31 and worth_launching(shape, dtypes)
            and reduce_split(shape, attrs.get("axis")) is not None)


def norm_run(shapes, dtypes, attrs) -> bool:
    """norm: ord 1 or 2 over the axis sets the other reductions take."""
    return attrs.get("ord", 2) in (1, 2) and axis_run(shapes, dtypes, attrs)


def one_axis(shapes, dtypes, attrs) -> bool:
    """argmax/argmin: flattened or along one axis, a non-empty input (under 2**31
    elements) in the launch window."""
    axis = attrs.get("axis")
    return axis_run(shapes, dtypes, {"axis": None if axis is None else (axis,)})


def layer_norm_last(shapes, dtypes, attrs) -> bool:
    """layer_norm over the last axis, rows that fit one block, gamma/beta of the
    row's length.  Fused (one launch for CuPy's mean/variance/normalise chain): no
    minimum size on a GPU."""
    x = shapes[0]
    return (len(x) >= 1 and attrs.get("axis", -1) in (-1, len(x) - 1)
            and 0 < x[-1] <= MAX_COLS_SOFTMAX and tuple(shapes[1]) == x[-1:]
            and tuple(shapes[2]) == x[-1:] and one_dtype(dtypes) and size_ok(x))


def layer_norm_backward_last(shapes, dtypes, attrs) -> bool:
    """layer_norm_backward (out_grad, data, gamma) over the last axis: a non-empty data
    whose rows fit one block, out_grad of its shape, gamma of the row's length, one
    dtype.  No minimum size on a GPU: this one kernel replaces the ~15 launches of the
    composed backward, so it wins at every size; interpreted, small arrays only."""
    g, x, gamma = shapes
    return (len(x) >= 1 and attrs.get("axis", -1) in (-1, len(x) - 1)
            and 0 < x[-1] <= MAX_COLS_SOFTMAX and numel(x) > 0 and tuple(g) == tuple(x)
            and tuple(gamma) == x[-1:] and one_dtype(dtypes) and size_ok(x))


def sampling(shapes, dtypes, attrs) -> bool:
    """random_uniform/normal: int32 offsets, a size in the launch window."""
    shape = tuple(attrs.get("shape", ()))
    return numel(shape) < 2**31 and worth_launching(shape, (attrs.get("dtype"),))


def unshared_mask(shapes, dtypes, attrs) -> bool:
    """dropout: one mask value per element (no ``axes``), int32 offsets.  Fused (one
    launch for sampling, comparison and scaling): no minimum size on a GPU."""
    return not attrs.get("axes") and numel(shapes[0]) < 2**31 and size_ok(shapes[0])


def one_dtype(dtypes) -> bool:
    return dtypes is None or all(d == dtypes[0] for d in dtypes[1:])


def last_axis(shapes, dtypes, attrs) -> bool:
    """softmax/log_softmax: over the last axis, rows that fit one block, and a
    temperature that float32 represents exactly (Triton passes floats as fp32).
    Fused (one launch for CuPy's five): no minimum size on a GPU."""
    shape = shapes[0]
    t = attrs.get("temperature")
    if t is not None and t != 1.0:
        import numpy as np
        if t == 0 or float(np.float32(1.0 / t)) != 1.0 / t:
            return False
    return (len(shape) >= 1 and attrs.get("axis", -1) in (-1, len(shape) - 1)
            and 0 < shape[-1] <= MAX_COLS_SOFTMAX and size_ok(shape))


def rows_2d(shapes, dtypes, attrs) -> bool:
    """softmax_ce_loss(_grad): a (batch, classes) input, classes on axis 1.
    Fused (one launch for CuPy's log-softmax-and-pick chain): no minimum size."""
    x = shapes[0]
    return (len(x) == 2 and attrs.get("axis", -1) in (-1, 1) and shapes[1] == x[:1]
            and 0 < x[1] <= MAX_COLS_SOFTMAX and size_ok(x)
            and (len(shapes) < 3 or shapes[2] == x[:1]))


def _product_ok(a, b, out, dtypes) -> bool:
    """every matrix dimension a multiple of 16, one dtype; interpreted, small
    operands; on a GPU, an output in the launch window."""
    from mxcore_cuda import INTERPRET
    if a[-1] != b[-2] or not one_dtype(dtypes):
        return False
    if not all(d > 0 and d % 16 == 0 for d in (a[-2], a[-1], b[-1])):
        return False
    if INTERPRET:
        return size_ok((numel(a) + numel(b) + numel(out),))
    return worth_launching(out, dtypes)


def matmul_2d(shapes, dtypes, attrs) -> bool:
    """dot: 2-D @ 2-D, every dimension a multiple of 16, no transposes, one dtype."""
    if attrs.get("transpose_a") or attrs.get("transpose_b") or len(shapes) != 2:
        return False
    a, b = shapes
    return len(a) == 2 and len(b) == 2 and _product_ok(a, b, (a[0], b[1]), dtypes)


#: CUDA's limit on a grid's second dimension (the batch dimension of batched products)
MAX_GRID_Y = 65535


def batched(shapes, dtypes, attrs) -> bool:
    """batch_dot (and matmul of 3-D operands): one batch size (at most 65535, a
    grid dimension), matrix dimensions multiples of 16, no transposes, one dtype;
    matmul also takes 2-D @ 2-D."""
    if attrs.get("transpose_a") or attrs.get("transpose_b") or len(shapes) != 2:
        return False
    a, b = shapes
    if len(a) == 2 and len(b) == 2:
        return matmul_2d(shapes, dtypes, attrs)
    if len(a) != 3 or len(b) != 3 or a[0] != b[0] or not 0 < a[0] <= MAX_GRID_Y:
        return False
    return _product_ok(a, b, (a[0], a[1], b[2]), dtypes)


def _dense_ok(x, w, dtypes) -> bool:
    """A non-empty fully_connected of one dtype: interpreted, small operands; on a GPU
    every 16-bit product (tensor cores), and float32 ones up to FUSED_FP32_MAX_MACS
    multiply-adds (larger stay with cuBLAS SGEMM, faster than IEEE-float32 tl.dot)."""
    from mxcore_cuda import INTERPRET
    from mxcore_cuda.triton._runtime import FUSED_FP32_MAX_MACS
    if len(w) != 2 or not one_dtype(dtypes) or numel(x) == 0 or numel(w) == 0:
        return False
    rows = numel(x) // w[1]
    if INTERPRET:
        return size_ok((numel(x) + numel(w) + rows * w[0],))
    return dtypes is None or dtypes[0] != "float32" or rows * w[0] * w[1] <= FUSED_FP32_MAX_MACS


def dense(shapes, dtypes, attrs) -> bool:
    """fully_connected: one launch for CuPy's product, bias add and activation; every
    16-bit size on a GPU, float32 up to MXCORE_CUDA_FUSED_FP32_MAX_MACS."""
    return _dense_ok(shapes[0], shapes[1], dtypes)


def dense_backward(shapes, dtypes, attrs) -> bool:
    """fully_connected_backward (out_grad, data, weight, output): two launches for
    CuPy's up to six; sizes as for fully_connected."""
    return _dense_ok(shapes[1], shapes[2], dtypes)


def updates(shapes, dtypes, attrs) -> bool:
    """Fused optimizer updates: weight, gradient and states of one shape and
    dtype.  No minimum size on a GPU: one launch replaces several CuPy ones."""
    return all(s == shapes[0] for s in shapes[1:]) and one_dtype(dtypes) and \
        size_ok(shapes[0])


#: the oldest Triton whose compiler takes the fused chain kernel (Triton 3.3 rejects its
#: constexpr branches for a GPU; the interpreter runs it on any version).  Older ones
#: keep the kernel registered (the kernel tables do not depend on the Triton version)
#: but fuse nothing: ``fusable_ops`` is empty and the guard declines every chain
FUSED_MIN_TRITON = (3, 8)


@functools.lru_cache(maxsize=None)
def fused_chain_compiles() -> bool:
    from importlib.metadata import version
    from mxcore_cuda import INTERPRET
    try:
        parts = tuple(int(p) for p in version("triton").split(".")[:2])
    except Exception:  # noqa: BLE001 - an unparsable version: assume a new one
        return True
    return INTERPRET or parts >= FUSED_MIN_TRITON


def fused_chain(shapes, dtypes, attrs) -> bool:
    """fused_elemwise: fusable ops only, inputs of one shape and dtype, any chain length
    or input count (longer chains run as several launches).  Sizes: the launch window of
    the unfused kernels, so that below it float32/float64 chains run the fallback's
    ufuncs as their unfused ops do (bit for bit); 16-bit chains at every size (no other
    fuser takes them)."""
    chain = attrs.get("chain") or ()
    dtype = dtypes[0] if dtypes else None
    ops = fusable_ops(dtype)
    return (bool(chain) and all(entry[0] in ops for entry in chain)
            and all(tuple(s) == tuple(shapes[0]) for s in shapes[1:]) and one_dtype(dtypes)
            and (dtype not in FALLBACK_FUSED or worth_launching(shapes[0], dtypes)))


def multi_updates(shapes, dtypes, attrs) -> bool:
    """Multi-weight updates: one dtype; every weight in one launch."""
    return one_dtype(dtypes) and all(size_ok(s) for s in shapes)


# convolution and pooling: 2-D, NCHW (other ranks go to the fallback) ----------------------
def _pairs(attrs, *names) -> Optional[Tuple[Tuple[int, ...], ...]]:
    values = tuple(tuple(attrs.get(n) or ()) for n in names)
    return values if all(len(v) == 2 for v in values) else None


def _conv2d_out(shapes, attrs) -> Optional[Tuple[int, ...]]:
    """(N, F, OH, OW) of a consistent 2-D convolution of (data, weight[, bias]), else None."""
    geo = _pairs(attrs, "kernel", "stride", "dilate", "pad")
    x, w = tuple(shapes[0]), tuple(shapes[1])
    groups = attrs.get("num_group", 1)
    if geo is None or len(x) != 4 or len(w) != 4 or not 1 <= groups <= MAX_GRID_Y:
        return None
    k, s, d, p = geo
    f = w[0]
    if x[1] % groups or f % groups or w != (f, x[1] // groups) + k \
            or attrs.get("num_filter", f) != f or min(s + d) < 1 or min(p) < 0:
        return None
    if not attrs.get("no_bias", False) and (len(shapes) < 3 or tuple(shapes[2]) != (f,)):
        return None
    out = tuple((n + 2 * pp - dd * (kk - 1) - 1) // ss + 1
                for n, kk, ss, dd, pp in zip(x[2:], k, s, d, p))
    return (x[0], f) + out if min(out) >= 1 else None


def _conv_sizes_ok(x, w, y, dtypes) -> bool:
    """Every array non-empty under 2**31 elements (int32 offsets), one dtype;
    interpreted, small arrays; on a GPU every 16-bit size and float32 up to
    FUSED_FP32_MAX_MACS multiply-adds (IEEE-float32 tl.dot runs on the FMA units;
    larger ones keep CuPy's im2col and cuBLAS SGEMM)."""
    from mxcore_cuda import INTERPRET
    from mxcore_cuda.triton._runtime import FUSED_FP32_MAX_MACS
    if not one_dtype(dtypes) or not all(0 < numel(s) < 2**31 for s in (x, w, y)):
        return False
    if INTERPRET:
        return size_ok((numel(x) + numel(w) + numel(y),))
    return dtypes is None or dtypes[0] != "float32" or \
        numel(y) * numel(w[1:]) <= FUSED_FP32_MAX_MACS


def conv2d(shapes, dtypes, attrs) -> bool:
    """convolution: 2-D NCHW, any stride/pad/dilate/num_group, bias or not (implicit
    GEMM: no im2col matrix); sizes as for fully_connected."""
    y = _conv2d_out(shapes, attrs)
    return y is not None and _conv_sizes_ok(shapes[0], shapes[1], y, dtypes)


def conv2d_backward(shapes, dtypes, attrs) -> bool:
    """convolution_backward (out_grad, data, weight): 2-D NCHW, out_grad of the
    forward output's shape; sizes as for the forward."""
    y = _conv2d_out(shapes[1:], {**attrs, "no_bias": True})
    return y is not None and tuple(shapes[0]) == y and \
        _conv_sizes_ok(shapes[1], shapes[2], y, dtypes)


#: pooling kinds the Triton kernels take (lp goes to the fallback)
POOL_KINDS = ("max", "avg", "sum")


def _pool2d_out(x, attrs) -> Optional[Tuple[int, ...]]:
    """(N, C, OH, OW) of a 2-D max/avg/sum pooling of x, else None."""
    geo = _pairs(attrs, "kernel", "stride", "pad")
    convention = attrs.get("pooling_convention", "valid")
    if geo is None or len(x) != 4 or attrs.get("pool_type", "max") not in POOL_KINDS \
            or convention not in ("valid", "full"):
        return None
    k, s, p = geo
    if min(k + s) < 1 or min(p) < 0 or any(kk > n + 2 * pp for n, kk, pp in zip(x[2:], k, p)):
        return None
    spans = [n + 2 * pp - kk for n, kk, pp in zip(x[2:], k, p)]
    out = tuple((-(-sp // ss) if convention == "full" else sp // ss) + 1
                for sp, ss in zip(spans, s))
    return tuple(x[:2]) + out


def pool2d(shapes, dtypes, attrs) -> bool:
    """pooling: 2-D NCHW max/avg/sum, either convention, count_include_pad or not; a
    non-empty input under 2**31 elements.  One launch for CuPy's one pass per
    kernel offset: every size on a GPU."""
    x = tuple(shapes[0])
    y = _pool2d_out(x, attrs)
    return y is not None and 0 < numel(x) < 2**31 and size_ok((numel(x) + numel(y),))


def pool2d_backward(shapes, dtypes, attrs) -> bool:
    """pooling_backward (out_grad, data, output): as pooling, out_grad and output of
    the forward output's shape, one dtype."""
    g, x, y = (tuple(s) for s in shapes)
    out = _pool2d_out(x, attrs)
    return (out is not None and g == out and y == out and one_dtype(dtypes)
            and 0 < numel(x) < 2**31 and size_ok((numel(x) + 2 * numel(out),)))


# the table -------------------------------------------------------------------------------
def _lazy(module: str, factory: str, *args) -> Callable:
    """A kernel function that imports ``mxcore_cuda.triton.<module>`` on first call."""
    impl = None

    def kernel(*arrays, **attrs):
        nonlocal impl
        if impl is None:
            mod = importlib.import_module(f"mxcore_cuda.triton.{module}")
            impl = on_array_device(getattr(mod, factory)(*args) if args
                                   else getattr(mod, factory))
        return impl(*arrays, **attrs)
    kernel.__qualname__ = f"triton.{module}.{args[0] if args else factory}"
    return kernel


def specs():
    """(op, module, factory, factory args, dtypes, guard) for every Triton kernel."""
    out = []
    for name, dts in UNARY_OPS.items():
        out.append((name, "elementwise", "unary", (name,), dts, unary_size))
    for name, dts in BINARY_OPS.items():
        out.append((name, "elementwise", "binary", (name,), dts, broadcastable))
    for name in SCALAR_OPS:
        out.append((name, "elementwise", "scalar", (name,), HALF_SINGLE, unary_size))
    for name in REDUCE_OPS:
        out.append((name, "reduce", name, (), FLOAT, axis_run))
    out.append(("norm", "reduce", "norm", (), FLOAT, norm_run))
    for name in ARG_OPS:
        out.append((name, "reduce", name, (), FLOAT, one_axis))
    for name in ("softmax", "log_softmax"):
        out.append((name, "softmax", name, (), FLOAT, last_axis))
    for name in ("softmax_ce_loss", "softmax_ce_loss_grad"):
        out.append((name, "softmax", name, (), FLOAT, rows_2d))
    out.append(("layer_norm", "norm", "layer_norm", (), HALF_SINGLE, layer_norm_last))
    out.append(("layer_norm_backward", "norm", "layer_norm_backward", (), HALF_SINGLE,
                layer_norm_backward_last))
    for name in ("random_uniform", "random_normal"):
        out.append((name, "random", name, (), HALF_SINGLE, sampling))
    out.append(("dropout", "random", "dropout", (), HALF_SINGLE, unshared_mask))
    for dts in (HALF_SINGLE, frozenset({"float64"})):  # two ``fusable`` sets
        out.append(("fused_elemwise", "fused", "fused_elemwise", (), dts, fused_chain))
    out.append(("dot", "matmul", "dot", (), PRODUCTS, matmul_2d))
    out.append(("fully_connected", "matmul", "fully_connected", (), PRODUCTS, dense))
    out.append(("fully_connected_backward", "matmul", "fully_connected_backward", (), PRODUCTS,
                dense_backward))
    for name in ("matmul", "batch_dot"):
        out.append((name, "matmul", name, (), PRODUCTS, batched))
    for name in ("sgd_update", "sgd_mom_update", "nag_mom_update", "adam_update",
                 "adamw_update"):
        out.append((name, "optimizer", name, (), FLOAT, updates))
    for name in ("multi_sgd_update", "multi_sgd_mom_update", "multi_adam_update",
                 "multi_adamw_update"):
        out.append((name, "optimizer", name, (), FLOAT, multi_updates))
    for name, guard in (("convolution", conv2d), ("convolution_backward", conv2d_backward),
                        ("pooling", pool2d), ("pooling_backward", pool2d_backward)):
        out.append((name, "conv", name, (), HALF_SINGLE, guard))
    return out


def kernels(device: str = "cuda") -> List[hal.Kernel]:
    out = []
    for op, module, factory, args, dtypes, guard in specs():
        fn = _lazy(module, factory, *args)
        if op == "fused_elemwise":  # what graph fusion asks before any launch
            fn.fusable = fusable_ops("float64" if "float64" in dtypes else None)
        out.append(hal.Kernel(op=op, device=device, fn=fn,
                              dtypes=dtypes, priority=PRIORITY, applies=guard,
                              name=f"triton.{module}.{op}",
                              doc=(guard.__doc__ or "").strip()))
    return out
