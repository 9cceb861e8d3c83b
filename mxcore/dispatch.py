"""Eager dispatch: run an Op on NDArrays.

The hot path is: read the inputs' device arrays, look the kernel up in the
op's resolution cache (keyed by device kind and dtype), push it to the engine,
wrap the result, and record a tape node when autograd is recording.  Anything
else (registry resolution, guards, error reporting) happens only on a miss or
on failure.
"""
from __future__ import annotations

import functools
from typing import Any, Dict, Sequence

import hal
from hal import Device, DeviceType
from mxcore import autograd as _autograd
from mxcore import engine as _engine_mod
from mxcore.base import IndexOutOfRange, MXCoreError, OperatorError, UnknownOperatorError
from mxcore.device import device_type
from mxcore.array import NDArray
from mxcore.op import Op

ENGINE = _engine_mod.current()  # mirrors of engine.current(), kept by set_engine below
_push = ENGINE.push
_STATE = _autograd.STATE
_record = _autograd.record_op
_new = object.__new__
_EMPTY: Dict[str, Any] = {}


def set_engine(engine) -> None:
    """Bind the hot path to ``engine`` (called by ``engine.set_engine``)."""
    global ENGINE, _push
    ENGINE = engine
    _push = engine.push


_engine_mod.on_change(set_engine)


class _Guarded:
    """Cache entry for (op, kind, dtype) whose candidates have guards: the
    choice depends on shapes and attributes, cached per signature."""

    __slots__ = ("op", "kind", "dtype", "by_sig", "volatile")

    def __init__(self, op: Op, kind: str, dtype: str):
        self.op, self.kind, self.dtype, self.by_sig = op, kind, dtype, {}
        self.volatile = op.volatile_attrs

    #: distinct signatures kept per entry (attributes such as scalars vary freely)
    MAX_SIGS = 4096

    def pick(self, datas, attrs):
        # The key is the attributes' items as they are (hashing them is ~3x cheaper
        # than the sorted reprs this used to build); unhashable values (lists) fall
        # back to reprs.  Equal values of different types (1, 1.0, True) share an
        # entry: guards must decide by value.
        shapes = tuple([d.shape for d in datas])
        items = attrs.items()
        if self.volatile:  # learning rates, seeds...: not part of the signature
            volatile = self.volatile
            items = [kv for kv in items if kv[0] not in volatile]
        try:
            sig = (shapes, tuple(items))
            fn = self.by_sig.get(sig)
        except TypeError:
            sig = (shapes, tuple([(k, repr(v)) for k, v in items]))
            fn = self.by_sig.get(sig)
        if fn is None:
            from mxcore.plugins import registry
            dtypes = tuple(d.dtype.name for d in datas)
            reg = registry()
            fn = _for_device(reg.resolve(self.op.name, self.kind, self.dtype, shapes, dtypes,
                                         attrs), reg, self.kind)
            if len(self.by_sig) >= self.MAX_SIGS:
                self.by_sig.clear()
            self.by_sig[sig] = fn
        return fn


def _for_device(kernel, reg, kind: str):
    """The kernel's function as dispatch calls it on device kind ``kind``.  Wrapped
    (only) when the device overrides ``adopt_output`` (its outputs pass through it) or
    when the kernel is borrowed through a fallback chain (the wrapper records the kind
    it runs on, for the profiler); plain otherwise, at no cost."""
    fn = kernel.fn
    dt = reg.devices.get(kind)
    adopts = dt is not None and type(dt).adopt_output is not DeviceType.adopt_output
    if adopts:
        adopt = dt.adopt_output

        def wrapper(*args, **kwargs):
            out = fn(*args, **kwargs)
            if type(out) is tuple:
                return tuple([adopt(o) for o in out])
            return adopt(out)
    elif kernel.device != kind:
        def wrapper(*args, **kwargs):
            return fn(*args, **kwargs)
    else:
        return fn
    # the kernel's names and __wrapped__: the profiler and tests name it after the kernel
    wrapper = functools.update_wrapper(wrapper, fn)
    wrapper.mxcore_device_kind = kind
    return wrapper


#: the device kind of shape-only arrays: no memory, no computation; every op on it
#: returns outputs of the shapes and dtypes its rule gives (graph shape inference)
META = "meta"


def _meta_kernel(op: Op):
    """The kernel of ``op`` on the meta device: its shape/dtype rule, with outputs that
    are read-only broadcast views of one zero (no memory, whatever their size)."""
    import numpy as np

    def run(*datas, **attrs):
        if op.needs_rng:
            datas = datas[1:]
        if op.infer is None:
            raise OperatorError(op.name, "has no shape inference rule")
        shapes, dtypes = op.infer_shape_dtype([d.shape for d in datas],
                                              [d.dtype for d in datas], attrs)
        outs = tuple(np.broadcast_to(np.zeros((), hal.to_dtype(dt)), tuple(s))
                     for s, dt in zip(shapes, dtypes))
        out = outs[0] if op.nout == 1 else outs
        recorder = meta_recorder()
        if recorder is not None:  # hybridize is recording a plan
            recorder.log_op(op, datas, attrs, out)
        return out
    from mxcore.device import meta_recorder
    return run


def _resolve(op: Op, kind: str, dtype) -> Any:
    from mxcore.plugins import registry
    if kind == META:
        entry = op.cache[(kind, dtype)] = _meta_kernel(op)
        return entry
    reg = registry()
    if reg.ops.get(op.name) is not op:
        raise UnknownOperatorError(
            f"operator {op.name!r} is not registered (is the plugin that defines it loaded? "
            "`mxcore plugins` lists plugins and their errors)")
    name = dtype.name if hasattr(dtype, "name") else str(dtype)
    if reg.has_guards(op.name, kind):
        # no kernel takes this dtype at all: NoKernelError now, as for unguarded ops
        # (guards are not evaluated without shapes)
        reg.resolve(op.name, kind, name)
        entry = _Guarded(op, kind, name)
    else:
        entry = _for_device(reg.resolve(op.name, kind, name), reg, kind)
    op.cache[(kind, dtype)] = entry
    return entry


def _serving_kernel(op: Op, kind: str, datas, attrs):
    """The registry entry that serves a call (for error messages; slow path)."""
    from mxcore.plugins import registry
    try:
        shapes = tuple(tuple(d.shape) for d in datas)
        dtypes = tuple(d.dtype.name for d in datas)
        dtype = dtypes[op.dtype_arg] if datas else attrs.get("dtype", "float32")
        return registry().resolve(op.name, kind, hal.dtype_name(dtype), shapes, dtypes, attrs)
    except Exception:  # noqa: BLE001 - naming the kernel must never mask the real error
        return None


def _first_call(op: Op, key, run, datas, attrs, device: Device):
    """The first call of an op on a (device kind, dtype) pair, after its kernel was
    resolved: run it, then hold its outputs' dtypes to the op's rule.  A kernel that
    returns another dtype (float64 for float32...) is reported naming its plugin, and
    its entry is dropped so it is checked again.  (Shapes are the wrappers' and the
    conformance suite's to check; calls by name check them against the rule too.)"""
    out = run()
    if op.infer is None or op.mutates:
        return out
    try:
        _, dtypes = op.infer_shape_dtype([d.shape for d in datas], [d.dtype for d in datas],
                                         attrs)
        want = [hal.dtype_name(d) for d in dtypes]
    except Exception:  # noqa: BLE001 - the wrappers validate core calls; no opinion here
        return out
    outs = out if isinstance(out, tuple) else (out,)
    got = [o._data.dtype.name for o in outs]
    if got == want:
        return out
    op.cache.pop(key, None)
    k = _serving_kernel(op, device.kind, datas, attrs)
    who = f"kernel {k.provider}:{k.name}" if k is not None else "its kernel"
    shapes = [tuple(o._data.shape) for o in outs]
    raise OperatorError(op.name, f"{who} returned {_fmt(zip(shapes, got))} where the "
                        f"operator's rule gives dtype {', '.join(want)}; the kernel is wrong "
                        "(fix or deny it in a policy file)",
                        [d.shape for d in datas], [d.dtype for d in datas], device)


def _fmt(outs) -> str:
    return ", ".join(f"{s} {d}" for s, d in outs)


def _error(op: Op, exc: Exception, datas, device, attrs=_EMPTY) -> OperatorError:
    if isinstance(exc, OperatorError):
        return exc
    shapes = [tuple(getattr(d, "shape", ())) for d in datas]
    dtypes = [str(getattr(d, "dtype", type(d).__name__)) for d in datas]
    if isinstance(exc, MXCoreError):
        msg = str(exc)
    else:  # an exception from kernel code: say whose kernel it was
        k = _serving_kernel(op, device.kind, datas, attrs) if device is not None else None
        who = f"kernel {k.provider}:{k.name} raised " if k is not None else ""
        msg = f"{who}{type(exc).__name__}: {exc}"
    if isinstance(exc, IndexError):  # still an IndexError, as MXNet's is
        return IndexOutOfRange(op.name, msg, shapes, dtypes, device)
    return OperatorError(op.name, msg, shapes, dtypes, device)


def _check_devices(op: Op, inputs) -> None:
    devs = {x._device for x in inputs}
    raise OperatorError(op.name, "inputs are on different devices "
                        f"({', '.join(sorted(repr(d) for d in devs))}); "
                        "move them with .as_in_context()/.copyto() first",
                        [x._data.shape for x in inputs], [x._data.dtype for x in inputs])


def wrap(data, device: Device) -> NDArray:
    r = _new(NDArray)
    r._data = data
    r._device = device
    r._ag = None
    return r


def invoke(op: Op, inputs: Sequence[NDArray], attrs: Dict[str, Any] = _EMPTY):
    """Run ``op`` on NDArray ``inputs`` (all on one device)."""
    x0 = inputs[0]
    dev = x0._device
    if len(inputs) == 1:
        datas = (x0._data,)
    else:
        datas = []
        for x in inputs:
            if x._device is not dev:
                if type(x) is not NDArray:
                    raise OperatorError(op.name, f"expected NDArray inputs, got {type(x).__name__}")
                _check_devices(op, inputs)
            datas.append(x._data)
    try:
        fn = op.cache[(dev.kind, datas[op.dtype_arg].dtype)]
    except KeyError:
        key = (dev.kind, datas[op.dtype_arg].dtype)
        _resolve(op, *key)
        return _first_call(op, key, lambda: invoke(op, inputs, attrs), datas, attrs, dev)
    except AttributeError:
        raise OperatorError(op.name, f"expected NDArray inputs, got "
                            f"{[type(x).__name__ for x in inputs]}") from None
    try:
        if type(fn) is _Guarded:
            fn = fn.pick(datas, attrs)
        if op.needs_rng:
            out = _push(fn, (_generator(dev), *datas), attrs, (), dev)
        else:
            m = op.mutates
            out = _push(fn, datas, attrs, m(attrs) if callable(m) else m, dev)
    except Exception as exc:
        raise _error(op, exc, datas, dev, attrs) from exc
    if op.nout == 1:
        r = _new(NDArray)
        r._data = out
        r._device = dev
        r._ag = None
        if _STATE.recording:
            for x in inputs:
                if x._ag is not None:
                    _record(op, inputs, (r,), attrs)
                    break
        return r
    outs = []
    for o in out:
        r = _new(NDArray)
        r._data = o
        r._device = dev
        r._ag = None
        outs.append(r)
    outs = tuple(outs)
    if _STATE.recording:
        for x in inputs:
            if x._ag is not None:
                _record(op, inputs, outs, attrs)
                break
    return outs


def invoke_in_place(op: Op, inputs: Sequence[NDArray], attrs: Dict[str, Any]) -> None:
    """Run an op that writes its results into its inputs (``op.mutates``: the fused
    optimizer updates) and has no gradient: ``invoke`` without wrapping results that
    the caller already holds.  The first call of a signature goes through ``invoke``."""
    x0 = inputs[0]
    dev = x0._device
    datas = []
    for x in inputs:
        if x._device is not dev:
            return invoke(op, inputs, attrs)  # it says what is wrong
        datas.append(x._data)
    fn = op.cache.get((dev.kind, datas[op.dtype_arg].dtype))
    if fn is None or type(fn) is _Guarded or op.needs_rng or op.grad is not None:
        invoke(op, inputs, attrs)
        return
    m = op.mutates
    try:
        _push(fn, datas, attrs, m(attrs) if callable(m) else m, dev)
    except Exception as exc:
        raise _error(op, exc, datas, dev, attrs) from exc


def invoke_nullary(op: Op, device: Device, attrs: Dict[str, Any], dtype) -> NDArray:
    """Run an op with no array inputs (creation, random) on ``device``."""
    dtype_key = dtype
    try:
        fn = op.cache[(device.kind, dtype_key)]
    except KeyError:
        device_type(device)  # raises a clear error for unknown/unavailable devices
        _resolve(op, device.kind, dtype_key)
        return _first_call(op, (device.kind, dtype_key),
                           lambda: invoke_nullary(op, device, attrs, dtype), (), attrs, device)
    try:
        if type(fn) is _Guarded:
            fn = fn.pick((), attrs)
        if op.needs_rng:
            out = _push(fn, (_generator(device),), attrs, (), device)
        else:
            out = _push(fn, (), attrs, (), device)
    except Exception as exc:
        raise _error(op, exc, (), device, attrs) from exc
    return wrap(out, device)


def _generator(device: Device):
    from mxcore.device import device_type
    return device_type(device).generator(device.index)


def invoke_binary(op: Op, a: NDArray, b: NDArray) -> NDArray:
    """Fast path for elementwise binary ops (the most frequent calls)."""
    dev = a._device
    ad = a._data
    bd = b._data
    if b._device is not dev:
        _check_devices(op, (a, b))
    try:
        fn = op.cache[(dev.kind, ad.dtype)]
    except KeyError:
        _resolve(op, dev.kind, ad.dtype)
        return _first_call(op, (dev.kind, ad.dtype), lambda: invoke_binary(op, a, b),
                           (ad, bd), _EMPTY, dev)
    try:
        if ad.dtype != bd.dtype:
            raise OperatorError(op.name, "inputs have different dtypes; cast one with .astype()",
                                (ad.shape, bd.shape), (ad.dtype, bd.dtype), dev)
        if type(fn) is _Guarded:
            fn = fn.pick((ad, bd), _EMPTY)
        out = _push(fn, (ad, bd), _EMPTY, (), dev)
    except Exception as exc:
        raise _error(op, exc, (ad, bd), dev) from exc
    r = _new(NDArray)
    r._data = out
    r._device = dev
    r._ag = None
    if _STATE.recording and (a._ag is not None or b._ag is not None):
        _record(op, (a, b), (r,), _EMPTY)
    return r


def invoke_unary(op: Op, a: NDArray, attrs: Dict[str, Any] = _EMPTY) -> NDArray:
    """Fast path for single-input single-output ops."""
    dev = a._device
    ad = a._data
    try:
        fn = op.cache[(dev.kind, ad.dtype)]
    except KeyError:
        _resolve(op, dev.kind, ad.dtype)
        return _first_call(op, (dev.kind, ad.dtype), lambda: invoke_unary(op, a, attrs),
                           (ad,), attrs, dev)
    except AttributeError:
        raise OperatorError(op.name, f"expected an NDArray, got {type(a).__name__}") from None
    try:
        if type(fn) is _Guarded:
            fn = fn.pick((ad,), attrs)
        out = _push(fn, (ad,), attrs, (), dev)
    except Exception as exc:
        raise _error(op, exc, (ad,), dev, attrs) from exc
    r = _new(NDArray)
    r._data = out
    r._device = dev
    r._ag = None
    if _STATE.recording and a._ag is not None:
        _record(op, (a,), (r,), attrs)
    return r
