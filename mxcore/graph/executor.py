"""The executor: a graph bound to a device and to arrays (MXNet 1.x's Executor).

``forward`` runs the nodes in topological order through the same op functions as
eager code; while training with gradients requested it records them on the autograd
tape, with the bound argument arrays marked as variables whose gradients go into the
bound gradient arrays, so ``backward`` is autograd's backward over the same gradient
rules as eager code.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import hal
import numpy as np

from mxcore.base import MXCoreError
from mxcore.graph import functions, infer as _infer
from mxcore.graph.ir import topological

GRAD_REQS = ("write", "add", "null")


def _as_dict(names: Sequence[str], value, what: str, required: bool) -> Dict[str, Any]:
    if value is None:
        value = {}
    if isinstance(value, dict):
        # an entry set to None for a name the graph lacks is no array at all (MXNet
        # takes {'b': None} for a layer built with no_bias)
        value = {k: v for k, v in value.items() if v is not None or k in names}
        unknown = [k for k in value if k not in names]
        if unknown:
            raise MXCoreError(f"bind: {what} {unknown} are not in the symbol's {what} "
                              f"{list(names)}")
        out = dict(value)
    else:
        value = list(value)
        if len(value) != len(names):
            raise MXCoreError(f"bind: {len(value)} {what} arrays given for {len(names)} "
                              f"{what} {list(names)}")
        out = dict(zip(names, value))
    if required:
        missing = [n for n in names if out.get(n) is None]
        if missing:
            raise MXCoreError(f"bind: no array for {what} {missing}")
    return out


class Executor:
    """A bound graph: ``forward``, ``backward``, ``arg_dict``, ``grad_dict``,
    ``aux_dict``, ``outputs``."""

    def __init__(self, symbol, ctx, args: Dict[str, Any], grads: Dict[str, Any],
                 reqs: Dict[str, str], aux: Dict[str, Any]):
        from mxcore import autograd
        from mxcore.device import device
        self._symbol = symbol
        import os
        self._cse = os.environ.get("MXNET_ELIMINATE_COMMON_EXPR", "1") != "0"
        self._ctx = device(ctx)
        self._arg_names = symbol.list_arguments()
        self._aux_names = symbol.list_auxiliary_states()
        self._order = topological(symbol._outputs)
        self.arg_dict = {n: args[n] for n in self._arg_names}
        self.aux_dict = {n: aux[n] for n in self._aux_names}
        self.grad_dict = {n: grads.get(n) for n in self._arg_names}
        self._reqs = reqs
        self.outputs: List[Any] = []
        self._heads: List[Any] = []  # the last forward's outputs as autograd recorded them
        self._recorded = False
        self._marked = [n for n in self._arg_names
                        if reqs.get(n, "null") != "null" and self.grad_dict[n] is not None]
        # integer arguments are variables too: a gradient reaches them through Cast (in
        # their dtype, as MXNet's); paths through indices leave their 'write' arrays 0
        if self._marked:
            autograd.mark_variables([self.arg_dict[n] for n in self._marked],
                                    [self.grad_dict[n] for n in self._marked],
                                    [reqs[n] for n in self._marked])
        self._values = {**self.arg_dict, **self.aux_dict}
        self._shape_fill = self._fill_partial_shapes()
        self._plans: Dict[Any, Any] = {}  # (training, recording) -> Plan, False: untraceable
        self.outputs = self._initial_outputs()
        self._monitor = None  # (callback, monitor_all) of set_monitor_callback
        self._segments = None  # a monitored forward's per-node records, for backward

    def _fill_partial_shapes(self) -> Dict[int, Tuple[int, ...]]:
        """node id -> shape for the array-making nodes with unknown dimensions
        (``ones(shape=(2, -1))``), as the bound arrays and the graph decide them."""
        nodes = [n for n in self._order if not n.is_variable and not n.inputs
                 and _infer.partial_shape_attr(n) is not None]
        if not nodes:
            return {}
        shapes = {n: a.shape for n, a in self._values.items() if a is not None}
        out_shape, _ = _infer.infer(self._symbol._outputs, shapes, {})
        fill = {}
        for n in nodes:
            shape = out_shape.get((id(n), 0))
            if shape is None or _infer.is_partial(shape):
                raise MXCoreError(f"bind: node {n.name!r} ({n.op}) has shape "
                                  f"{n.attrs.get('shape')} and the graph does not decide its "
                                  f"unknown dimensions")
            fill[id(n)] = shape
        return fill

    def _initial_outputs(self) -> List[Any]:
        """Zeros of the outputs' inferred shapes and dtypes: as in MXNet, ``outputs``
        exists from the bind on (``forward`` replaces it); empty when the bound
        arrays do not decide the shapes."""
        from mxcore.ops.creation import zeros
        values = {n: a for n, a in self._values.items() if a is not None}
        try:
            _, shapes, _ = self._symbol.infer_shape_partial(
                **{n: a.shape for n, a in values.items()})
            _, dtypes, _ = self._symbol.infer_type(**{n: a.dtype for n, a in values.items()})
        except MXCoreError:
            return []
        if shapes is None or dtypes is None or any(
                s is None or not all(d > 0 for d in s) or t is None
                for s, t in zip(shapes, dtypes)):
            return []
        return [zeros(s, ctx=self._ctx, dtype=t) for s, t in zip(shapes, dtypes)]

    # construction -----------------------------------------------------------------------------
    @classmethod
    def bind(cls, symbol, ctx, args, args_grad=None, grad_req="write", aux_states=None):
        arg_names = symbol.list_arguments()
        aux_names = symbol.list_auxiliary_states()
        args = _as_dict(arg_names, args, "arguments", True)
        grads = _as_dict(arg_names, args_grad, "gradients", False)
        aux = _as_dict(aux_names, aux_states, "auxiliary states", True)
        reqs = cls._reqs(arg_names, grad_req if args_grad is not None else "null")
        for name in arg_names:
            if reqs[name] != "null" and grads.get(name) is None:
                reqs[name] = "null"
        return cls(symbol, ctx, args, grads, reqs, aux)

    @classmethod
    def simple_bind(cls, symbol, ctx, grad_req="write", type_dict=None, shapes=None):
        """Allocate every argument, gradient and auxiliary state from the given input
        shapes (and dtypes); all start at zero."""
        from mxcore import ndarray as nd
        from mxcore.device import device
        ctx = device(ctx)
        shapes = shapes or {}
        arg_shapes, _, aux_shapes = symbol.infer_shape_partial(**shapes)
        arg_names = symbol.list_arguments()
        aux_names = symbol.list_auxiliary_states()
        unknown = [n for n, s in zip(arg_names + aux_names, arg_shapes + aux_shapes) if not s]
        if unknown:
            raise MXCoreError(f"simple_bind: the shapes of {unknown} cannot be inferred from "
                              f"the given shapes {shapes}; give them too")
        # hal's names: MXNet's numpy stand-in for bfloat16 is mxcore's bfloat16
        type_dict = {k: hal.dtype_name(v) if not isinstance(v, str) else v
                     for k, v in (type_dict or {}).items()}
        # dtypes: given, else a variable's own (``Variable(dtype=)``) or what the graph
        # implies, else float32
        arg_types, _, aux_types = symbol.infer_type_partial(**type_dict)
        arg_types = [t or np.float32 for t in arg_types]
        aux_types = [t or np.float32 for t in aux_types]
        reqs = cls._reqs(arg_names, grad_req)
        args = {n: nd.zeros(s, ctx=ctx, dtype=np.dtype(t).name)
                for n, s, t in zip(arg_names, arg_shapes, arg_types)}
        grads = {n: nd.zeros(s, ctx=ctx, dtype=np.dtype(t).name)
                 for n, s, t in zip(arg_names, arg_shapes, arg_types) if reqs[n] != "null"}
        aux = {n: nd.zeros(s, ctx=ctx, dtype=np.dtype(t).name)
               for n, s, t in zip(aux_names, aux_shapes, aux_types)}
        return cls(symbol, ctx, args, grads, reqs, aux)

    @staticmethod
    def _reqs(names: Sequence[str], grad_req: Union[str, Sequence[str], Dict[str, str]]):
        if isinstance(grad_req, str):
            reqs = {n: grad_req for n in names}
        elif isinstance(grad_req, dict):
            reqs = {n: grad_req.get(n, "null") for n in names}
        else:
            grad_req = list(grad_req)
            if len(grad_req) != len(names):
                raise MXCoreError(f"bind: {len(grad_req)} grad_req values for "
                                  f"{len(names)} arguments")
            reqs = dict(zip(names, grad_req))
        bad = {k: v for k, v in reqs.items() if v not in GRAD_REQS}
        if bad:
            raise MXCoreError(f"bind: grad_req must be one of {GRAD_REQS}, got {bad}")
        return reqs

    # views --------------------------------------------------------------------------------------
    @property
    def arg_arrays(self) -> List[Any]:
        return [self.arg_dict[n] for n in self._arg_names]

    @property
    def grad_arrays(self) -> List[Any]:
        return [self.grad_dict[n] for n in self._arg_names]

    @property
    def aux_arrays(self) -> List[Any]:
        return [self.aux_dict[n] for n in self._aux_names]

    @property
    def output_dict(self) -> Dict[str, Any]:
        return dict(zip(self._symbol.list_outputs(), self.outputs))

    def get_optimized_symbol(self):
        """The bound symbol after common subexpression elimination (unless
        ``MXNET_ELIMINATE_COMMON_EXPR=0`` at bind time), as MXNet's executor reports it."""
        from mxcore.graph.passes.symbol_cse import eliminate_common_subexpressions
        from mxcore.symbol.symbol import Symbol
        outputs = self._symbol._outputs
        return Symbol(eliminate_common_subexpressions(outputs) if self._cse else list(outputs))

    # running ------------------------------------------------------------------------------------
    def forward(self, is_train: bool = False, **kwargs) -> List[Any]:
        """Run the graph; ``kwargs`` first copy new values into bound arguments."""
        from mxcore import autograd
        for name, value in kwargs.items():
            if name not in self.arg_dict:
                raise MXCoreError(f"forward: {name!r} is not an argument of the symbol "
                                  f"(arguments: {self._arg_names})")
            dst = self.arg_dict[name]
            dst[:] = value
        # with gradient arrays bound, every forward is recorded (in the given mode), so
        # backward() may follow an inference forward, as in MXNet
        recording = bool(self._marked)
        self._segments = None
        if recording:
            scope = autograd.record(train_mode=bool(is_train))
        else:
            scope = autograd.pause(train_mode=bool(is_train))
        with scope:
            self._heads = self._run_compiled()
        # the outputs the user sees are plain arrays over the same memory (MXNet's
        # outputs can be written to); backward starts from the recorded ones
        self.outputs = [o.detach() if o._ag is not None else o for o in self._heads]
        self._recorded = recording
        return self.outputs

    def _run_compiled(self) -> List[Any]:
        """The graph as a compiled plan (``graph/plan.py``: traced once per training and
        recording mode, through the pass pipeline, one tape node per call whose
        gradients reach the bound gradient arrays); graphs that cannot be traced run
        node by node (``_run``)."""
        from mxcore import autograd
        if self._monitor is not None:
            return self._run_monitored()  # every node's arrays wanted: node by node
        if self._ctx.kind == "meta":
            return self._run()  # shapes only
        key = (autograd.STATE.training, autograd.STATE.recording)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._trace_plan()
        if plan is False:
            return self._run()
        names = self._arg_names + self._aux_names
        return list(plan.run([self._values[n] for n in names], self._ctx))

    def _trace_plan(self):
        import hal
        from mxcore import autograd
        from mxcore.graph import trace as _trace
        from mxcore.graph.plan import Plan
        names = self._arg_names + self._aux_names
        t = _trace.Trace(self._symbol.name or "symbol")
        marked = set(self._marked)
        real = self._values
        try:
            with t:
                meta = [t.input(real[n].shape, real[n].dtype, n in marked) for n in names]
                self._values = dict(zip(names, meta))
                try:  # arrays the graph makes (ones, zeros...) are traced steps too
                    outs = self._run(hal.Device("meta", 0))
                finally:
                    self._values = real
                slots = [t.slot_of.get(id(o._data)) for o in outs]
                if any(s is None for s in slots):
                    return False
                grad = _trace.trace_backward(t, meta, outs)
        except MXCoreError as exc:
            if "no values" in str(exc) or isinstance(exc, _trace.TraceError):
                return False  # a graph that reads values: node by node
            raise
        return Plan.build(t, slots, (list, (None,) * len(slots)), self._ctx,
                          training=autograd.STATE.training, **grad)

    def _run(self, ctx=None) -> List[Any]:
        values: Dict[int, List[Any]] = {}
        ctx = self._ctx if ctx is None else ctx
        for node in self._order:
            if node.is_variable:
                values[id(node)] = [self._values[node.name]]
                continue
            values[id(node)] = self._call(node, [values[id(src)][i] for src, i in node.inputs],
                                          ctx)
        return [values[id(n)][i] for n, i in self._symbol._outputs]

    def _call(self, node, inputs: List[Any], ctx=None) -> List[Any]:
        """Run op node ``node`` on ``inputs``: its outputs."""
        try:
            attrs = node.call_attrs()
            if id(node) in self._shape_fill:
                attrs["shape"] = self._shape_fill[id(node)]
            return functions.run(node.op, inputs, attrs, self._ctx if ctx is None else ctx)
        except MXCoreError as exc:
            raise type(exc)(f"node {node.name!r} ({node.op}): {exc}") \
                if type(exc) is MXCoreError else exc

    def _run_monitored(self) -> List[Any]:
        """The graph node by node, reporting to the monitor callback; while recording,
        each node is recorded on its own (``graph/exec_monitor.py``), for a backward
        that reports too."""
        from mxcore import autograd
        from mxcore.graph import exec_monitor
        outputs, self._segments = exec_monitor.run_forward(
            self, self._call, self._monitor[0], self._monitor[1],
            segmented=autograd.STATE.recording)
        return outputs

    def backward(self, out_grads=None, is_train: bool = True) -> None:
        """Gradients of the outputs of the last ``forward`` into
        ``grad_dict`` (``out_grads``: one per output; ones when omitted)."""
        from mxcore import autograd
        if not self._marked:
            return
        if not self._recorded:
            # no forward since the last backward (MXNet then differentiates the graph at
            # the bound values, which a forward recording them first gives here)
            self.forward(is_train=is_train)
        if out_grads is not None and not isinstance(out_grads, (list, tuple)):
            out_grads = [out_grads]
        if self._segments is not None:  # the forward was monitored: so is backward
            self._monitored_backward(out_grads, is_train)
            return
        # a head gradient takes its output's dtype, as MXNet copies it into the output's
        # gradient buffer (a float gradient of an int32 output becomes integers)
        heads = [(o, None if g is None else g if g.dtype == o.dtype else g.astype(o.dtype))
                 for o, g in zip(self._heads, out_grads or [None] * len(self._heads))
                 if o._ag is not None]
        self._recorded = False
        if not heads:  # no output depends on a variable (stop_gradient): zero gradients
            for name in self._marked:
                if self._reqs[name] == "write":
                    self.grad_dict[name][:] = 0
            return
        for name in self._marked:  # clear the flags: which gradients does backward write?
            self.arg_dict[name]._ag.fresh = False
        autograd.backward([h for h, _ in heads],
                          head_grads=None if out_grads is None else [g for _, g in heads],
                          train_mode=is_train)
        for name in self._marked:  # as in MXNet, 'write' gradients no path reaches are 0
            if self._reqs[name] == "write" and not self.arg_dict[name]._ag.fresh:
                self.grad_dict[name][:] = 0

    def _monitored_backward(self, out_grads, is_train: bool) -> None:
        """``backward`` after a monitored forward: node by node over its per-node
        records, reporting MXNet's backward arrays to the callback (if still set)."""
        from mxcore.graph import exec_monitor
        segments, self._segments = self._segments, None
        self._recorded = False
        given = list(out_grads or [])
        given += [None] * (len(self._heads) - len(given))
        grads = [None if g is None else g if g.dtype == o.dtype else g.astype(o.dtype)
                 for o, g in zip(self._heads, given)]
        exec_monitor.run_backward(self, segments, grads, is_train, self._monitor)

    def copy_params_from(self, arg_params: Dict[str, Any], aux_params: Optional[Dict] = None,
                         allow_extra_params: bool = False) -> None:
        for name, value in (arg_params or {}).items():
            if name in self.arg_dict:
                self.arg_dict[name][:] = value
            elif not allow_extra_params:
                raise MXCoreError(f"copy_params_from: {name!r} is not an argument")
        for name, value in (aux_params or {}).items():
            if name in self.aux_dict:
                self.aux_dict[name][:] = value
            elif not allow_extra_params:
                raise MXCoreError(f"copy_params_from: {name!r} is not an auxiliary state")

    def reshape(self, partial_shaping: bool = False, allow_up_sizing: bool = False,
                **kwargs) -> "Executor":
        """An executor for new input shapes sharing this one's parameters where their
        shapes are unchanged."""
        from mxcore import ndarray as nd
        arg_shapes, _, aux_shapes = self._symbol.infer_shape(**kwargs)
        if arg_shapes is None:
            raise MXCoreError(f"reshape: shapes {kwargs} do not decide every argument")
        args, grads, aux = {}, {}, {}
        for name, shape in zip(self._arg_names, arg_shapes):
            old = self.arg_dict[name]
            same = tuple(old.shape) == tuple(shape)
            args[name] = old if same else nd.zeros(shape, ctx=self._ctx, dtype=old.dtype)
            g = self.grad_dict.get(name)
            if g is not None:
                grads[name] = g if same else nd.zeros(shape, ctx=self._ctx, dtype=g.dtype)
        for name, shape in zip(self._aux_names, aux_shapes):
            old = self.aux_dict[name]
            aux[name] = old if tuple(old.shape) == tuple(shape) else \
                nd.zeros(shape, ctx=self._ctx, dtype=old.dtype)
        return Executor(self._symbol, self._ctx, args, grads, dict(self._reqs), aux)

    def debug_str(self) -> str:
        return self._symbol.debug_str()

    def set_monitor_callback(self, callback, monitor_all: bool = False) -> None:
        """Call ``callback(name, array)`` (the name as bytes, as MXNet passes it) for
        the arrays each forward and backward computes, named and ordered as MXNet
        1.9.1's executor reports them (``graph/exec_monitor.py``): every op output
        (``fc1_output``, BatchNorm's ``bn1_mean``/``bn1_var`` too) and, after a
        monitored forward, the backward's gradients (``fc1_backward_output1``...);
        with ``monitor_all`` the op inputs too (``data``, ``fc1_data``...).  Monitored
        executors run node by node; ``None`` removes the callback."""
        self._monitor = None if callback is None else (callback, bool(monitor_all))
