"""Custom operators written in Python (MXNet's ``mx.operator.CustomOp``).

A user registers a ``CustomOpProp`` subclass under a name (``@mx.operator.register``);
``mx.nd.Custom(*inputs, op_type=name, **params)`` then builds the prop with the params
(as strings, as MXNet passes them), infers output shapes and dtypes through it, makes
the operator (``create_operator``) and calls its ``forward`` on NDArrays of the
inputs' device, with preallocated outputs.  While recording, the call is one tape node
whose gradient rule calls the operator's ``backward``.

Both directions are also ops of the core (``Custom`` and ``_backward_Custom``) so that
graphs hold them as single nodes: on the meta device (shape inference, hybridize's
trace) they run the prop's shape and dtype rules; a compiled plan runs them through
``Op.python_kernel``, which wraps the device arrays as NDArrays and calls the Python
code.  A custom op therefore runs on every device (its code uses ``mx.nd``), in
autograd, in Symbol executors and in hybridized blocks, even when it reads values
(``asnumpy``).
"""
from __future__ import annotations

import weakref
from typing import Any, Dict, List, Sequence, Tuple, Type

import numpy as np

import hal
from mxcore import autograd, engine
from mxcore.array import NDArray
from mxcore.base import MXCoreError, OperatorError
from mxcore.dispatch import invoke, wrap
from mxcore.op import REQUIRED, Op
from mxcore.ops.creation import zeros

META = "meta"


class CustomOp:
    """The operator: ``forward`` and ``backward`` write their results into the arrays
    given to them, through ``assign`` (which honours ``req``)."""

    def __init__(self):
        pass

    def forward(self, is_train: bool, req: List[str], in_data: List[NDArray],
                out_data: List[NDArray], aux: List[NDArray]) -> None:
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, req: List[str], out_grad: List[NDArray], in_data: List[NDArray],
                 out_data: List[NDArray], in_grad: List[NDArray], aux: List[NDArray]) -> None:
        raise NotImplementedError(f"{type(self).__name__}.backward")

    def assign(self, dst: NDArray, req: str, src) -> None:
        """``dst`` takes ``src`` as ``req`` says: 'write'/'inplace' overwrite, 'add'
        accumulates, 'null' leaves it."""
        if req == "null":
            return
        if req in ("write", "inplace"):
            dst[:] = src
        elif req == "add":
            dst[:] = dst + src
        else:
            raise MXCoreError(f"CustomOp.assign: req must be 'write', 'inplace', 'add' or "
                              f"'null', got {req!r}")


class CustomOpProp:
    """What the graph needs to know of a custom operator: its inputs, outputs and
    auxiliary states by name, shape and dtype rules, and the operator itself."""

    def __init__(self, need_top_grad: bool = True):
        self.need_top_grad_ = need_top_grad

    def infer_shape(self, in_shape):
        return in_shape, (in_shape[0],) * len(self.list_outputs()), ()

    def infer_type(self, in_type):
        return (in_type, [in_type[0]] * len(self.list_outputs()),
                [in_type[0]] * len(self.list_auxiliary_states()))

    def infer_storage_type(self, in_stype):
        return (in_stype, ["default"] * len(self.list_outputs()),
                ["default"] * len(self.list_auxiliary_states()))

    def infer_storage_type_backward(self, ograd_stype, in_stype, out_stype, igrad_stype,
                                    aux_stype):
        return (ograd_stype, in_stype, out_stype, ["default"] * len(igrad_stype), aux_stype)

    def list_outputs(self) -> List[str]:
        return ["output"]

    def list_arguments(self) -> List[str]:
        return ["data"]

    def list_auxiliary_states(self) -> List[str]:
        return []

    def declare_backward_dependency(self, out_grad, in_data, out_data):
        deps = list(out_grad) if self.need_top_grad_ else []
        return deps + list(in_data) + list(out_data)

    def create_operator(self, ctx, in_shapes, in_dtypes) -> CustomOp:
        return CustomOp()


#: op_type -> CustomOpProp subclass
PROPS: Dict[str, Type[CustomOpProp]] = {}


def register_prop(reg_name: str, prop_cls: Type[CustomOpProp]) -> None:
    if not (isinstance(prop_cls, type) and issubclass(prop_cls, CustomOpProp)):
        raise MXCoreError(f"mx.operator.register({reg_name!r}): expected a CustomOpProp "
                          f"subclass, got {prop_cls!r}")
    PROPS[reg_name] = prop_cls
    _SIGNATURES.clear()


def _params(attrs: Dict[str, Any]) -> Dict[str, str]:
    return dict(attrs.get("params", ()))


def make_prop(op_type: str, params: Dict[str, str]) -> CustomOpProp:
    cls = PROPS.get(op_type)
    if cls is None:
        raise OperatorError("Custom", f"no custom operator is registered as {op_type!r} "
                                      f"(registered: {sorted(PROPS) or 'none'})")
    try:
        return cls(**params)
    except TypeError as exc:
        raise OperatorError("Custom", f"{op_type!r}: {cls.__name__}({', '.join(params)}) "
                                      f"failed: {exc}") from None


def _prop(attrs) -> CustomOpProp:
    return make_prop(attrs["op_type"], _params(attrs))


def _names(prop: CustomOpProp) -> Tuple[List[str], List[str], List[str]]:
    return (list(prop.list_arguments()), list(prop.list_outputs()),
            list(prop.list_auxiliary_states()))


def _shapes_and_types(prop: CustomOpProp, op_type: str, shapes, dtypes):
    """(input shapes, output shapes, output dtypes) by the prop's rules."""
    args, outs, aux = _names(prop)
    nargs = len(args)
    if len(shapes) != nargs + len(aux):
        raise OperatorError("Custom", f"{op_type!r} takes {nargs + len(aux)} inputs "
                                      f"({args + aux}), got {len(shapes)}")
    ret = prop.infer_shape([list(s) for s in shapes[:nargs]])
    ishape, oshape = ret[0], ret[1]
    if len(oshape) != len(outs):
        raise OperatorError("Custom", f"{op_type!r}: infer_shape gave {len(oshape)} output "
                                      f"shapes for outputs {outs}")
    tret = prop.infer_type([np.dtype(d).type for d in dtypes[:nargs]])
    otype = tret[1]
    return ([tuple(int(d) for d in s) for s in ishape],
            [tuple(int(d) for d in s) for s in oshape],
            [hal.to_dtype(t) for t in otype])


def _aux_inputs(attrs) -> Tuple[int, ...]:
    """The inputs a custom op may write: its auxiliary states."""
    prop = _prop(attrs)
    nargs = len(prop.list_arguments())
    return tuple(range(nargs, nargs + len(prop.list_auxiliary_states())))


CUSTOM = Op("Custom", -1, -1, {"op_type": REQUIRED, "params": ()}, saves_output=True,
            mutates=_aux_inputs,
            doc="a custom operator written in Python (mx.operator.CustomOp)")
CUSTOM_BACKWARD = Op("_backward_Custom", -1, -1,
                     {"op_type": REQUIRED, "params": (), "nargs": REQUIRED, "nout": REQUIRED,
                      "grads": REQUIRED},
                     doc="a custom operator's backward (its CustomOp.backward)")
OPS = [CUSTOM, CUSTOM_BACKWARD]


@CUSTOM.def_infer
def _custom_infer(shapes, dtypes, attrs):
    _, oshape, otype = _shapes_and_types(_prop(attrs), attrs["op_type"], shapes, dtypes)
    return oshape, otype


@CUSTOM_BACKWARD.def_infer
def _custom_backward_infer(shapes, dtypes, attrs):
    # inputs: out grads, then the forward's inputs (args, aux), then its outputs
    nout, nargs = attrs["nout"], attrs["nargs"]
    ins = range(nout, nout + nargs)
    return ([shapes[i] for i, g in zip(ins, attrs["grads"]) if g],
            [dtypes[i] for i, g in zip(ins, attrs["grads"]) if g])


def _reported(exc: Exception, op_type: str, operator, method: str, inputs, device):
    """An exception of the user's code as an OperatorError naming the custom op, its
    class and method, the inputs' shapes and dtypes and the device."""
    if isinstance(exc, OperatorError) and exc.op == "Custom":
        return exc
    what = "failed" if isinstance(exc, OperatorError) else f"raised {type(exc).__name__}"
    return OperatorError("Custom", f"{op_type!r}: {type(operator).__name__}.{method} "
                                   f"{what}: {exc}", [x.shape for x in inputs],
                         [x.dtype for x in inputs], device)


#: id(first output's device array) -> the operator that computed it: backward runs on
#: the instance forward ran on (custom ops keep state on ``self``), as in MXNet
_OPERATORS: Dict[int, CustomOp] = {}


def _remember(outs: Sequence[NDArray], operator: CustomOp) -> None:
    if outs:
        data = engine.resolve(outs[0]._data)  # the array, not a threaded placeholder
        key = id(data)
        _OPERATORS[key] = operator
        weakref.finalize(data, _OPERATORS.pop, key, None)


class _Signature:
    """What one call signature of a custom op needs, worked out once: its prop (built
    from the params), input counts and output shapes and dtypes."""

    __slots__ = ("prop", "nargs", "oshape", "otype", "like_first", "arg_shapes",
                 "arg_dtypes", "region", "req")

    def __init__(self, op_type: str, params: Dict[str, str], shapes, dtypes):
        self.region = f"{op_type}::pure_python"
        self.prop = make_prop(op_type, params)
        self.nargs = len(self.prop.list_arguments())
        _, self.oshape, self.otype = _shapes_and_types(self.prop, op_type, shapes, dtypes)
        # outputs shaped like the first input are made by its zeros_like (the fast path)
        self.like_first = [bool(shapes) and s == tuple(shapes[0]) and t == dtypes[0]
                           for s, t in zip(self.oshape, self.otype)]
        self.arg_shapes = [tuple(x) for x in shapes[:self.nargs]]
        self.arg_dtypes = list(dtypes[:self.nargs])
        self.req = ("write",) * len(self.oshape)


#: (op_type, params, input shapes, dtypes) -> _Signature; cleared when a prop is
#: registered (a name may be registered again)
_SIGNATURES: Dict[Tuple, _Signature] = {}


def _signature(attrs, inputs: Sequence[NDArray]) -> _Signature:
    # the key is cheap to build on purpose: this lookup is most of a call's own cost
    key = (attrs["op_type"], attrs["params"], *[(x.shape, x.dtype) for x in inputs])
    sig = _SIGNATURES.get(key)
    if sig is None:
        if len(_SIGNATURES) > 4096:
            _SIGNATURES.clear()
        sig = _SIGNATURES[key] = _Signature(attrs["op_type"], _params(attrs),
                                            [x.shape for x in inputs],
                                            [x.dtype for x in inputs])
    return sig


def _run_forward(attrs, inputs: Sequence[NDArray], device, is_train: bool,
                 remember: bool = True):
    """The forward on NDArrays: outputs allocated by the prop's rules, then filled."""
    sig = _signature(attrs, inputs)
    # the profiler shows the call (and the ops inside it) as MXNet's does
    with engine.region(sig.region, "Custom Operator"):
        return _forward(sig, attrs, inputs, device, is_train, remember)


def _forward(sig: _Signature, attrs, inputs, device, is_train, remember):
    nargs = sig.nargs
    outs = [inputs[0].zeros_like() if like else zeros(s, ctx=device, dtype=t)
            for like, s, t in zip(sig.like_first, sig.oshape, sig.otype)]
    operator = sig.prop.create_operator(device, sig.arg_shapes, sig.arg_dtypes)
    state = autograd.STATE
    prev, prev_train = state.recording, state.training
    state.recording, state.training = False, is_train
    try:
        operator.forward(is_train=is_train, req=list(sig.req), in_data=list(inputs[:nargs]),
                         out_data=outs, aux=list(inputs[nargs:]))
    except Exception as exc:
        raise _reported(exc, attrs["op_type"], operator, "forward", inputs, device) from exc
    finally:
        state.recording, state.training = prev, prev_train
    if remember and outs:
        _remember(outs, operator)
    return outs


def _current_device():
    from mxcore.device import current_context
    return current_context()


def _run_backward(prop, attrs, operator, out_grads, inputs, outputs, grads: Sequence[bool]):
    """The backward on NDArrays: the gradients of the arguments ``grads`` marks."""
    with engine.region(f"_backward_{attrs['op_type']}::pure_python", "Custom Operator"):
        return _backward(prop, attrs, operator, out_grads, inputs, outputs, grads)


def _backward(prop, attrs, operator, out_grads, inputs, outputs, grads):
    args, _, _ = _names(prop)
    nargs = len(args)
    in_grad = [zeros(x.shape, ctx=x.context, dtype=x.dtype) for x in inputs[:nargs]]
    if operator is None and outputs:
        operator = _OPERATORS.get(id(engine.resolve(outputs[0]._data)))
    if operator is None:
        operator = prop.create_operator(inputs[0].context if inputs else None,
                                        [x.shape for x in inputs[:nargs]],
                                        [x.dtype for x in inputs[:nargs]])
    prev = autograd.set_recording(False)
    try:
        operator.backward(req=["write" if g else "null" for g in grads],
                          out_grad=list(out_grads), in_data=list(inputs[:nargs]),
                          out_data=list(outputs), in_grad=in_grad, aux=list(inputs[nargs:]))
    except Exception as exc:
        raise _reported(exc, attrs["op_type"], operator, "backward", inputs,
                        inputs[0].context if inputs else None) from exc
    finally:
        autograd.set_recording(prev)
    return [g for g, want in zip(in_grad, grads) if want]


@CUSTOM.def_grad
def _custom_grad(c, *grads):
    inputs, outputs, attrs = c.inputs, c.outputs, c.attrs
    prop = _prop(attrs)
    nargs = len(prop.list_arguments())
    want = tuple(c.needs_grad(i) for i in range(nargs))
    grads = [o.zeros_like() if g is None else g for o, g in zip(outputs, grads)]
    if outputs[0].context.kind == META:  # traced: one backward node in the plan
        battrs = dict(attrs, nargs=nargs, nout=len(outputs), grads=want)
        res = invoke(CUSTOM_BACKWARD, [*grads, *inputs, *outputs], battrs) if any(want) else ()
        res = list(res) if isinstance(res, tuple) else [res]
    else:
        res = _run_backward(prop, attrs, None, grads, inputs, outputs, want)
    it = iter(res)
    return tuple(next(it) if w else None for w in want) + (None,) * (len(inputs) - nargs)


def _python_kernel(op: Op):
    """``Op.python_kernel`` of the two ops: a kernel bound to a device that runs the
    Python code on NDArrays wrapping the device arrays (compiled plans call it)."""
    def bind(device):
        def forward(*datas, **attrs):
            inputs = [wrap(d, device) for d in datas]
            outs = _run_forward(attrs, inputs, device, autograd.is_training())
            return tuple(engine.resolve(o._data) for o in outs)

        def backward(*datas, **attrs):
            prop = _prop(attrs)
            nout, nargs = attrs["nout"], attrs["nargs"]
            arrays = [wrap(d, device) for d in datas]
            grads, rest = arrays[:nout], arrays[nout:]
            inputs, outputs = rest[:len(rest) - nout], rest[len(rest) - nout:]
            res = _run_backward(prop, attrs, None, grads, inputs, outputs, attrs["grads"])
            return tuple(g._data for g in res)
        # the region inside names the call: the profiler does not record the push too
        forward.mxcore_region = backward.mxcore_region = True
        return forward if op is CUSTOM else backward
    return bind


CUSTOM.python_kernel = _python_kernel(CUSTOM)
CUSTOM_BACKWARD.python_kernel = _python_kernel(CUSTOM_BACKWARD)


def Custom(*data: NDArray, op_type: str = None, name=None, out=None, **kwargs):
    """``mx.nd.Custom(*inputs, op_type=..., **params)``: run the custom operator
    registered as ``op_type``.  Inputs are its arguments then its auxiliary states
    (also by name, as keywords); the other keywords go to its prop as strings."""
    if op_type is None:
        raise OperatorError("Custom", "op_type= (the registered name) is required")
    params, arrays = {}, {}
    for k, v in kwargs.items():
        if isinstance(v, NDArray):
            arrays[k] = v
        else:
            params[k] = str(v)
    inputs = data
    if arrays:  # inputs by name: the prop says which and in what order
        inputs = list(data)
        args, _, aux = _names(make_prop(op_type, params))
        for input_name in (args + aux)[len(inputs):]:
            if input_name in arrays:
                inputs.append(arrays.pop(input_name))
        if arrays:
            raise OperatorError("Custom", f"{op_type!r}: {sorted(arrays)} are not inputs "
                                          f"(its inputs: {args + aux})")
    for x in inputs:
        if type(x) is not NDArray:
            raise OperatorError("Custom", f"{op_type!r}: inputs must be NDArrays, got "
                                          f"{type(x).__name__}")
    attrs = {"op_type": op_type, "params": tuple(sorted(params.items())) if params else ()}
    device = inputs[0]._device if inputs else _current_device()
    if device.kind == META:  # shape inference or a trace
        res = invoke(CUSTOM, list(inputs), attrs)
        outs = list(res) if isinstance(res, tuple) else [res]
    else:
        for x in inputs:
            if x._device is not device:
                raise OperatorError("Custom", f"{op_type!r}: inputs on {device} and "
                                              f"{x._device}")
        recording = autograd.STATE.recording and any(x._ag is not None for x in inputs)
        outs = _run_forward(attrs, inputs, device, autograd.is_training(), recording)
        if recording:
            outs = [o.detach() for o in outs]
            autograd.record_op(CUSTOM, inputs, outs, attrs)
    if out is not None:
        targets = out if isinstance(out, (list, tuple)) else [out]
        for t, o in zip(targets, outs):
            t[:] = o
        return out
    return outs[0] if len(outs) == 1 else outs


__all__ = ["Custom", "CustomOp", "CustomOpProp"]
