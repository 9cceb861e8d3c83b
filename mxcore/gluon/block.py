"""Blocks: the building unit of Gluon models (MXNet Gluon 1.x semantics).

Naming follows MXNet 1.x: each block gets a prefix (``dense0_``) from the
enclosing ``name_scope`` or, at top level, from a per-class counter; its
parameters are ``prefix + name``.  Files written by ``save_parameters`` use
structural names (``0.weight``) so they do not depend on those counters.
"""
from __future__ import annotations

import re
import threading
import warnings
from collections import OrderedDict
from typing import Any, Callable, Dict, Optional

import numpy as np

from mxcore import autograd as _autograd
from mxcore import ndarray as _F  # the op namespace handed to hybrid_forward
from mxcore.base import MXCoreError
from mxcore.graph import trace as _trace
from mxcore.name import Prefix
from mxcore.symbol.symbol import Symbol as _Symbol
from mxcore.gluon.parameter import (DeferredInitializationError, Parameter, ParameterDict,
                                    assign_loaded)


class _NameCounter:
    """MXNet's NameManager: top-level block names dense0, dense1, ..."""

    def __init__(self):
        self.counts: Dict[str, int] = {}
        self.lock = threading.Lock()

    def get(self, hint: str) -> str:
        with self.lock:
            n = self.counts.get(hint, 0)
            self.counts[hint] = n + 1
        return f"{hint}{n}"


_NAMES = _NameCounter()


class _BlockScope:
    """The ``with block.name_scope():`` context: children created inside get
    prefixes relative to the block."""

    _current = threading.local()

    def __init__(self, block: "Block"):
        self._block = block
        self._counter: Dict[str, int] = {}
        self._old = None

    @staticmethod
    def create(prefix, params, hint):
        current = getattr(_BlockScope._current, "value", None)
        if current is None:
            if prefix is None:
                prefix = _NAMES.get(hint) + "_"
            params = ParameterDict(prefix) if params is None else ParameterDict(params.prefix,
                                                                                params)
            return prefix, params
        if prefix is None:
            count = current._counter.get(hint, 0)
            prefix = f"{hint}{count}_"
            current._counter[hint] = count + 1
        if params is None:
            parent = current._block.params
            params = ParameterDict(parent.prefix + prefix, parent._shared)
        else:
            params = ParameterDict(params.prefix, params)
        return current._block.prefix + prefix, params

    def __enter__(self):
        if self._block._empty_prefix:
            return self
        self._old = getattr(_BlockScope._current, "value", None)
        _BlockScope._current.value = self
        return self

    def __exit__(self, *exc):
        if not self._block._empty_prefix:
            _BlockScope._current.value = self._old
        return False


class Block:
    """Base class of all layers and models; override ``forward``."""

    def __init__(self, prefix: Optional[str] = None, params: Optional[ParameterDict] = None):
        self._empty_prefix = prefix == ""
        self._prefix, self._params = _BlockScope.create(prefix, params, self._alias())
        self._name = self._prefix[:-1] if self._prefix.endswith("_") else self._prefix
        self._scope = _BlockScope(self)
        self._children: Dict[str, Block] = OrderedDict()
        self._reg_params: Dict[str, Parameter] = OrderedDict()
        self._forward_hooks: Dict[int, Callable] = OrderedDict()
        self._forward_pre_hooks: Dict[int, Callable] = OrderedDict()

    def _alias(self) -> str:
        return self.__class__.__name__.lower()

    def __repr__(self) -> str:
        if not self._children:
            return f"{self.__class__.__name__}()"
        lines = [f"{self.__class__.__name__}("]
        for key, child in self._children.items():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({key}): {body}")
        lines.append(")")
        return "\n".join(lines)

    def __setattr__(self, name: str, value) -> None:
        if hasattr(self, "_children"):
            existing = self.__dict__.get(name)
            if isinstance(existing, (Block, Parameter)) and value is not None and not isinstance(
                    value, type(existing)):
                raise TypeError(f"changing attribute {name!r} of {self.name} from "
                                f"{type(existing).__name__} to {type(value).__name__} "
                                "is not allowed")
            if isinstance(value, Block):
                self.register_child(value, name)
            elif isinstance(value, Parameter):
                self._reg_params[name] = value
            elif value is None and isinstance(existing, Block):
                self._children.pop(name, None)
            elif value is None and isinstance(existing, Parameter):
                self._reg_params.pop(name, None)
        super().__setattr__(name, value)

    # naming and structure ------------------------------------------------------------------
    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def name(self) -> str:
        return self._name

    @property
    def params(self) -> ParameterDict:
        """This block's own parameters (children's are in ``collect_params``)."""
        return self._params

    def name_scope(self) -> _BlockScope:
        return self._scope

    def register_child(self, block: "Block", name: Optional[str] = None) -> None:
        self._children[name if name is not None else str(len(self._children))] = block

    def register_forward_pre_hook(self, hook: Callable) -> "_HookHandle":
        return _HookHandle(self._forward_pre_hooks, hook)

    def register_forward_hook(self, hook: Callable) -> "_HookHandle":
        return _HookHandle(self._forward_hooks, hook)

    def apply(self, fn: Callable[["Block"], Any]) -> "Block":
        for child in self._children.values():
            child.apply(fn)
        fn(self)
        return self

    def collect_params(self, select: Optional[str] = None) -> ParameterDict:
        """Parameters of this block and its children, optionally those whose
        names match the regular expression ``select``."""
        self._check_container_with_block()
        out = ParameterDict(self._params.prefix)
        regex = re.compile(select) if select else None
        for name, value in self._params.items():
            if regex is None or regex.match(name):
                out._params[name] = value
        for name, value in self._reg_params.items():
            if value.name not in out and (regex is None or regex.match(value.name)):
                out._params[value.name] = value
        for child in self._children.values():
            for name, value in child.collect_params(select).items():
                out._params.setdefault(name, value)
        return out

    def _check_container_with_block(self) -> None:
        """Warn about Blocks kept in plain lists, tuples or dicts: they are not children,
        so their parameters are not collected (as MXNet warns).  This block only: each
        child checks itself when collect_params reaches it."""
        def holds_block(value) -> bool:
            if isinstance(value, Block):
                return True
            if isinstance(value, (list, tuple)):
                return any(holds_block(v) for v in value)
            if isinstance(value, dict):
                return any(holds_block(v) for v in value.values())
            return False

        for key, value in self.__dict__.items():
            if key == "_children" or key.startswith("__") or \
                    not isinstance(value, (list, tuple, dict)):
                continue
            if holds_block(value):
                warnings.warn(f'"{self.name}.{key}" is an unregistered container with Blocks. '
                              "Note that Blocks inside the list, tuple or dict will not be "
                              "registered automatically. Make sure to register them using "
                              "register_child() or switching to nn.Sequential/"
                              "nn.HybridSequential instead.", stacklevel=3)

    def _collect_params_with_prefix(self, prefix: str = "") -> Dict[str, Parameter]:
        out = OrderedDict((prefix + name, p) for name, p in self._reg_params.items())
        for name, child in self._children.items():
            out.update(child._collect_params_with_prefix(f"{prefix}{name}."))
        return out

    # parameters --------------------------------------------------------------------------------
    def initialize(self, init=None, ctx=None, verbose: bool = False,
                   force_reinit: bool = False) -> None:
        """Initialise every parameter (``init`` is the default initializer;
        parameters with their own ``init`` keep it)."""
        self.collect_params().initialize(init, ctx, verbose, force_reinit)

    def zero_grad(self) -> None:
        self.collect_params().zero_grad()

    def reset_ctx(self, ctx) -> None:
        self.collect_params().reset_ctx(ctx)

    def cast(self, dtype) -> None:
        for child in self._children.values():
            child.cast(dtype)
        for param in self._reg_params.values():
            param.cast(dtype)

    def save_parameters(self, filename: str, deduplicate: bool = False) -> None:
        """Write every parameter to a safetensors file (atomically)."""
        from mxcore.serialization import save_arrays
        params = self._collect_params_with_prefix()
        arrays, seen = {}, {}
        for name, param in params.items():
            if deduplicate and id(param) in seen:
                continue
            seen[id(param)] = name
            arrays[name] = param._reduce().asnumpy()
        save_arrays(filename, arrays, {"format": "mxcore-parameters", "version": "1"})

    def load_parameters(self, filename: str, ctx=None, allow_missing: bool = False,
                        ignore_extra: bool = False, cast_dtype: bool = False,
                        dtype_source: str = "current") -> None:
        """Load what ``save_parameters`` wrote.  Every array is checked (names,
        shapes, dtypes) before any parameter changes."""
        from mxcore.serialization import load_parameter_arrays
        arrays = load_parameter_arrays(filename)
        params = self._collect_params_with_prefix()
        if arrays and not any("." in k for k in arrays) and any("." in k for k in params):
            # a file keyed by full parameter names (ParameterDict.save)
            params = {p.name: p for p in self.collect_params().values()}
        if any(name not in arrays for name in params):
            # a parameter shared under several names is in the file once
            # (save_parameters(deduplicate=True)): any of its names loads it
            names_of: Dict[int, list] = {}
            for name, param in params.items():
                names_of.setdefault(id(param), []).append(name)
            params = {next((n for n in names if n in arrays), names[0]):
                      params[names[0]] for names in names_of.values()}
        if cast_dtype and dtype_source == "saved":
            for name, param in params.items():
                if name in arrays:
                    param.cast(arrays[name].dtype)
        assign_loaded(params, arrays, filename, ctx, allow_missing, ignore_extra, cast_dtype)

    # legacy MXNet names
    def save_params(self, filename: str) -> None:
        """MXNet's deprecated form: parameters keyed by their full names (less this
        block's prefix), as ``collect_params().save`` writes them."""
        self.collect_params().save(filename, strip_prefix=self.prefix)

    def load_params(self, filename: str, ctx=None, allow_missing: bool = False,
                    ignore_extra: bool = False) -> None:
        """Load what ``save_params`` (full names) or ``save_parameters`` (structural
        names) wrote."""
        from mxcore.serialization import load_parameter_arrays
        arrays = load_parameter_arrays(filename)
        full = {self.prefix + k for k in arrays}
        if full & set(self.collect_params().keys()):
            self.collect_params().load(filename, ctx, allow_missing, ignore_extra,
                                       restore_prefix=self.prefix)
        else:
            self.load_parameters(filename, ctx, allow_missing, ignore_extra)

    # running ---------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if self._forward_pre_hooks:
            for hook in list(self._forward_pre_hooks.values()):
                hook(self, args)
        out = self.forward(*args, **kwargs)
        if self._forward_hooks:
            for hook in list(self._forward_hooks.values()):
                hook(self, args, out)
        return out

    def forward(self, *args):
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def hybridize(self, active: bool = True, **kwargs) -> None:
        for child in self._children.values():
            child.hybridize(active, **kwargs)

    def summary(self, *inputs) -> None:
        """Print each layer's output shape and parameter count for ``inputs``."""
        hybridized = []
        self.apply(lambda b: hybridized.append(b.name) if getattr(b, "_active", False) else None)
        if hybridized:
            raise AssertionError(f"summary() runs blocks imperatively; {hybridized[-1]!r} is "
                                 "hybridized: call hybridize(False) first")
        from mxcore import autograd
        rows, handles, open_rows = [], [], {}

        def pre_hook(block, args):
            # rows are numbered in call order (parents before their children)
            open_rows.setdefault(id(block), []).append(len(rows))
            rows.append(None)

        def hook(block, args, out):
            outs = out if isinstance(out, (list, tuple)) else [out]
            shapes = [tuple(o.shape) for o in outs if hasattr(o, "shape")]
            n = sum(int(np.prod(p.shape)) for p in block._reg_params.values()
                    if p.shape is not None)
            i = open_rows[id(block)].pop()
            rows[i] = (f"{type(block).__name__}-{i + 1}",
                       shapes[0] if len(shapes) == 1 else shapes, n)

        def add_hooks(block):
            if block is not self:
                handles.append(block.register_forward_pre_hook(pre_hook))
                handles.append(block.register_forward_hook(hook))

        self.apply(add_hooks)
        try:
            with autograd.pause():
                self(*inputs)
        finally:
            for h in handles:
                h.detach()
        width = 80
        print("-" * width)
        print(f"{'Layer (type)':>30}{'Output Shape':>35}{'Param #':>15}")
        print("=" * width)
        for x in inputs:  # an input may be a list of arrays (e.g. RNN states)
            for a in (x if isinstance(x, (list, tuple)) else [x]):
                print(f"{'Input':>30}{str(tuple(a.shape)):>35}{0:>15}")
        for name, shape, n in rows:
            print(f"{name:>30}{str(shape):>35}{n:>15}")
        print("=" * width)
        params = self.collect_params().values()
        total = sum(int(np.prod(p.shape)) for p in params if p.shape is not None)
        trainable = sum(int(np.prod(p.shape)) for p in params
                        if p.shape is not None and p.grad_req != "null")
        print(f"Total params: {total}")
        print(f"Trainable params: {trainable}")
        print(f"Non-trainable params: {total - trainable}")
        print("-" * width)


class _HookHandle:
    _next = 0

    def __init__(self, hooks: Dict[int, Callable], hook: Callable):
        _HookHandle._next += 1
        self._id = _HookHandle._next
        self._hooks = hooks
        hooks[self._id] = hook

    def detach(self) -> None:
        self._hooks.pop(self._id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.detach()


_NDARRAY_ONLY = {_F.NDArray}


def is_symbolic(x) -> bool:
    """Whether a hybrid_forward runs on symbols (building a graph: shapes unknown, so
    layers skip the input checks the graph's shape inference makes later)."""
    return isinstance(x, _Symbol)
class _BlockNames(Prefix):
    """Node names inside a block's graph: ``prefix`` + ``fwd`` for the first unnamed op
    of a layer that names it so (MXNet's layers), else ``prefix`` + op + counter."""

    def __init__(self, prefix: str, fwd: bool):
        super().__init__(prefix)
        self._fwd = fwd

    def get(self, name, hint: str) -> str:
        if not name and self._fwd:
            self._fwd = False
            name = "fwd"
        return super().get(name, hint)


class HybridBlock(Block):
    """A block written as ``hybrid_forward(F, x, *args, **params)`` with ``F`` the op
    namespace (``mx.nd`` on arrays, ``mx.sym`` on symbols).

    ``hybridize()`` makes calls replay a plan traced once per input signature (shapes,
    dtypes, nesting, device, training and recording modes; ``mxcore.graph.trace``):
    the same ops and gradients as the imperative forward, without the layers' Python.
    Called on symbols, the block builds a graph (``export`` writes it)."""

    def __init__(self, prefix=None, params=None):
        super().__init__(prefix, params)
        self._active = False
        self._flags: Dict[str, Any] = {}
        self._plans: Dict[Any, Any] = {}
        self._last_inputs = None  # nesting of the last traced call's inputs, for export
        self._none_pattern = None  # which arguments are arrays (MXNet fixes it per hybridize)
        self._last_plan = None
        self._op_hook = None

    def hybridize(self, active: bool = True, static_alloc: bool = False,
                  static_shape: bool = False, backend: Optional[str] = None,
                  **kwargs) -> None:
        """Replay traced plans (``active``) or run imperatively.  Plans go through the
        graph pass pipeline (``mxcore.graph.passes``) for the device they run on, plus
        the passes of ``backend`` if given (see ``optimize_for``); ``static_alloc``
        keeps fused chains' temporary buffers across calls; with ``static_shape`` too,
        calls outside ``autograd.record()`` replay a captured device graph where the
        device can capture one (CUDA graphs; ``mxcore.graph.plan``)."""
        if backend is not None:
            from mxcore.graph import passes as _passes
            if backend not in _passes.backends():
                raise ValueError(f"{self.name}: unknown backend {backend!r}; the installed "
                                 f"backends are {_passes.backends()}")
        self._active = active
        self._flags = {"static_alloc": static_alloc, "static_shape": static_shape,
                       "backend": backend, **kwargs}
        self._plans.clear()
        self._none_pattern = None
        super().hybridize(active, static_alloc=static_alloc, static_shape=static_shape,
                          **kwargs)

    def optimize_for(self, x, *args, backend: Optional[str] = None, backend_opts=None,
                     clear: bool = True, static_alloc: bool = False,
                     static_shape: bool = False, **kwargs):
        """Hybridize with the passes of ``backend`` (graph passes a plugin registered
        for it through ``register_passes``; mxcore's own: ``fold_bn``, which folds
        inference BatchNorm into the preceding convolution or dense layer), build the
        plan for these inputs and return the outputs (MXNet's ``optimize_for``).  The
        plan's programs are then in ``self.last_plan()``."""
        if backend_opts:
            raise ValueError(f"{self.name}: optimize_for: backend_opts are not supported by "
                             f"mxcore's backends, got {backend_opts!r}")
        if clear:
            self._plans.clear()
        self.hybridize(True, static_alloc=static_alloc, static_shape=static_shape,
                       backend=backend, **kwargs)
        return self(x, *args)

    def register_op_hook(self, callback, monitor_all: bool = False) -> None:
        """Call ``callback(node_name, op_name, array)`` (names as bytes, as MXNet's) for the
        used outputs of every op -- and its inputs with ``monitor_all`` -- while this block
        runs hybridized (``mxcore.graph.op_hook``); installed on the children too."""
        self._op_hook = (callback, monitor_all)
        for child in self._children.values():
            if isinstance(child, HybridBlock):
                child.register_op_hook(callback, monitor_all)

    def last_plan(self):
        """The plan the last hybridized call ran (``mxcore.graph.plan.Plan``), or None."""
        return self._last_plan

    def __call__(self, *args, **kwargs):
        if args and (type(args[0]) is _Symbol or (args[0] is None and any(
                type(a) is _Symbol for a in args))):
            # a graph: nodes are named under the block's prefix, as MXNet names them
            if self._empty_prefix:
                return super().__call__(*args, **kwargs)
            with _BlockNames(self.prefix, self._fwd_name):
                return super().__call__(*args, **kwargs)
        t = _trace.current()
        if t is not None:  # a child of a block being traced: its steps carry its name
            with t.scope(self.name):
                return super().__call__(*args, **kwargs)
        if not self._active or kwargs:
            return super().__call__(*args, **kwargs)
        return self._call_hybridized(args)

    def _call_hybridized(self, args):
        NDArray, Symbol = _F.NDArray, _Symbol
        leaves, structure = _trace.flatten(args)
        kinds = {type(x) for x in leaves if x is not None}
        if kinds != _NDARRAY_ONLY:
            if kinds != {Symbol} and Symbol in kinds:
                raise ValueError(f"{self.name}: hybridized blocks take either NDArrays or "
                                 "Symbols, not a mix of both")
            if Symbol in kinds:
                return super().__call__(*args)
        if kinds - {NDArray} or not kinds:
            bad = sorted(t.__name__ for t in kinds - {NDArray}) or ["no array"]
            raise ValueError(f"{self.name}: a hybridized block takes NDArrays (or None) as "
                             f"inputs, got {bad}; pass numbers as attributes of the block")
        pattern = [x is not None for x in leaves]
        while pattern and not pattern[-1]:  # trailing Nones are defaults left out
            pattern.pop()
        if self._none_pattern is None:
            self._none_pattern = pattern
        elif pattern != self._none_pattern:
            raise ValueError(f"{self.name}: a hybridized block must be called with None in "
                             "the same argument positions every time (first call: "
                             f"{self._none_pattern}, now: {pattern}); call hybridize() "
                             "again to change them")
        arrays = [x for x in leaves if x is not None]
        ctx = arrays[0]._device
        for x in arrays[1:]:
            if x._device != ctx and {x._device.kind, ctx.kind} != {"cpu", "cpu_pinned"}:
                raise ValueError(f"{self.name}: inputs are on different devices ({ctx!r} and "
                                 f"{x._device!r}); a hybridized block runs on one device")
        state = _autograd.STATE
        key = (structure, tuple([None if x is None else
                                 (x._data.shape, x._data.dtype, x._ag is not None)
                                 for x in leaves]), ctx, state.training, state.recording)
        if self._op_hook is not None:  # the graph op by op, reporting each op's arrays
            from mxcore.graph.op_hook import run_with_hook
            for hook in list(self._forward_pre_hooks.values()):
                hook(self, args)
            out = run_with_hook(self, args, *self._op_hook)
            for hook in list(self._forward_hooks.values()):
                hook(self, args, out)
            return out
        plan = self._plans.get(key)
        if plan is None:
            self._last_inputs = structure, len(leaves)
            if any(p._data is None for p in self.collect_params().values()):
                # parameters are created by the first imperative call (deferred shapes)
                return super().__call__(*args)
            plan = self._plans[key] = self._trace_plan(args, leaves, structure, ctx)
        if self._last_plan is not plan:  # (Block.__setattr__ costs microseconds per call)
            self._last_plan = plan
        if self._forward_pre_hooks:
            for hook in list(self._forward_pre_hooks.values()):
                hook(self, args)
        out = plan.run(arrays, ctx)
        if self._forward_hooks:
            for hook in list(self._forward_hooks.values()):
                hook(self, args, out)
        return out

    def _trace_plan(self, args, leaves, structure, ctx):
        NDArray = _F.NDArray
        trace = _trace.Trace(self.name)
        with trace:
            meta = [None if x is None else trace.input(x.shape, x.dtype, x._ag is not None)
                    for x in leaves]
            try:
                out = Block.__call__(self, *_trace.unflatten(meta, structure))
            except _trace.TraceError as exc:
                raise _trace.TraceError(f"hybridize: {type(self).__name__} {self.name!r}: "
                                        f"{exc}") from None
            except MXCoreError as exc:
                if "no values" not in str(exc):
                    raise
                raise _trace.TraceError(
                    f"hybridize: {type(self).__name__} {self.name!r} reads array values in "
                    "its forward (asnumpy, asscalar, item, bool or a comparison used as a "
                    "Python condition); a hybridized forward may depend on shapes, not on "
                    "values: compute with operators (F.where...) or do not hybridize this "
                    "block") from None
            out_leaves, out_structure = _trace.flatten(out)
            slots = []
            for o in out_leaves:
                if o is None:
                    slots.append(None)
                    continue
                if not isinstance(o, NDArray) or id(o._data) not in trace.slot_of:
                    raise _trace.TraceError(f"hybridize: {type(self).__name__} {self.name!r} "
                                            f"returns {type(o).__name__} that its forward did "
                                            "not compute from its inputs and parameters")
                slots.append(trace.slot_of[id(o._data)])
            grad = _trace.trace_backward(trace, [m for m in meta if m is not None],
                                         out_leaves)
        from mxcore.graph.plan import Plan
        plan = Plan.build(trace, slots, out_structure, ctx,
                          training=_autograd.STATE.training,
                          static_alloc=bool(self._flags.get("static_alloc")),
                          static_shape=bool(self._flags.get("static_shape")),
                          backend=self._flags.get("backend"), **grad)
        if "inline_limit" in self._flags:
            plan.inline_limit = int(self._flags["inline_limit"])
        return plan

    def export(self, path: str, epoch: int = 0, remove_amp_cast: bool = True,
               format: str = "safetensors"):
        """Write ``path-symbol.json`` (MXNet 1.x symbol JSON, inputs ``data`` or
        ``data0``, ``data1``...) and ``path-NNNN.params`` (``arg:``/``aux:`` names;
        safetensors, or MXNet's binary format with ``format='mxnet'``), atomically.
        The block must have run hybridized once (the inputs' nesting comes from it)."""
        from mxcore import symbol as _sym
        from mxcore.mxnet_params import save as save_mxnet
        from mxcore.serialization import save_arrays
        if self._last_inputs is None:
            raise RuntimeError("Please first call block.hybridize() and then run forward with "
                               "this block at least once before calling export.")
        if format not in ("safetensors", "mxnet"):
            raise ValueError(f"export: format must be 'safetensors' or 'mxnet', got {format!r}")
        structure, n = self._last_inputs
        names = ["data"] if n == 1 else [f"data{i}" for i in range(n)]
        out = self(*_trace.unflatten([_sym.var(name) for name in names], structure))
        leaves, _ = _trace.flatten(out)
        graph = leaves[0] if len(leaves) == 1 else _sym.Group(leaves)
        params = {p.name: p for p in self.collect_params().values()}
        arrays = {}
        for kind, names_ in (("arg", graph.list_arguments()), ("aux",
                                                              graph.list_auxiliary_states())):
            for name in names_:
                if name in params:
                    arrays[f"{kind}:{name}"] = params[name]._reduce().asnumpy()
        sym_file, param_file = f"{path}-symbol.json", f"{path}-{epoch:04d}.params"
        graph.save(sym_file, remove_amp_cast=remove_amp_cast)
        if format == "mxnet":
            save_mxnet(param_file, arrays)
        else:
            save_arrays(param_file, arrays, {"format": "mxcore-checkpoint", "version": "1"})
        return sym_file, param_file

    def infer_shape(self, *args) -> None:
        """Fill in unknown parameter shapes from the inputs (layers override)."""
        unknown = [p.name for p in self._reg_params.values() if p._data is None]
        raise DeferredInitializationError(
            f"{type(self).__name__} cannot infer the shapes of {unknown}: give the shapes "
            "explicitly (e.g. in_units) or implement infer_shape()")

    def _deferred_init(self, *args) -> None:
        self.infer_shape(*args)
        for p in self._reg_params.values():
            if p._data is None:
                p._finish_deferred_init()

    #: MXNet's layers name their main op ``<prefix>fwd`` in graphs (``dense0_fwd``)
    _fwd_name = False

    def forward(self, x, *args):
        if isinstance(x, _Symbol) or (x is None and any(isinstance(a, _Symbol) for a in args)):
            # building a graph: F is mx.sym, parameters are variables, nodes are named
            # under the block's prefix as MXNet names them
            from mxcore import symbol as _sym
            if any(isinstance(a, _F.NDArray) for a in args):
                raise ValueError(f"{type(self).__name__} {self.name!r}: inputs mix Symbols "
                                 "and NDArrays; give all of one kind")
            params = {name: p.var() for name, p in self._reg_params.items()}
            return self.hybrid_forward(_sym, x, *args, **params)
        if any(isinstance(a, _Symbol) for a in args):
            raise ValueError(f"{type(self).__name__} {self.name!r}: inputs mix NDArrays and "
                             "Symbols; give all of one kind")
        if x is None and all(a is None for a in args):
            raise ValueError(f"{type(self).__name__} {self.name!r}: a HybridBlock needs at "
                             "least one NDArray or Symbol input, got only None")
        F = _F
        ctx = getattr(x, "_device", None)
        if ctx is not None and ctx.kind == "meta":  # tracing: parameters are plan inputs
            t = _trace.current()
            if t is not None:
                params = {name: t.param(p) for name, p in self._reg_params.items()}
                return self.hybrid_forward(F, x, *args, **params)
        try:
            params = {name: p.data(ctx) for name, p in self._reg_params.items()}
        except DeferredInitializationError:
            self._deferred_init(x, *args)
            params = {name: p.data(ctx) for name, p in self._reg_params.items()}
        return self.hybrid_forward(F, x, *args, **params)

    def hybrid_forward(self, F, x, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement hybrid_forward()")
