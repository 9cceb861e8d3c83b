"""Blocks: the building unit of Gluon models (MXNet Gluon 1.x semantics).

Naming follows MXNet 1.x: each block gets a prefix (``dense0_``) from the
enclosing ``name_scope`` or, at top level, from a per-class counter; its
parameters are ``prefix + name``.  Files written by ``save_parameters`` use
structural names (``0.weight``) so they do not depend on those counters.
"""
from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Any, Callable, Dict, Optional

import numpy as np

from mxcore import ndarray as _F  # the op namespace handed to hybrid_forward
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
        if cast_dtype and dtype_source == "saved":
            for name, param in params.items():
                if name in arrays:
                    param.cast(arrays[name].dtype)
        assign_loaded(params, arrays, filename, ctx, allow_missing, ignore_extra, cast_dtype)

    # legacy MXNet names
    save_params = save_parameters
    load_params = load_parameters

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


class HybridBlock(Block):
    """A block written as ``hybrid_forward(F, x, *args, **params)`` with ``F``
    the op namespace.  ``hybridize()`` is accepted and recorded; until graph
    compilation lands, hybrid blocks always run imperatively through ``mx.nd``.
    """

    def __init__(self, prefix=None, params=None):
        super().__init__(prefix, params)
        self._active = False

    def hybridize(self, active: bool = True, **kwargs) -> None:
        self._active = active
        super().hybridize(active, **kwargs)

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

    def forward(self, x, *args):
        F = _F
        ctx = getattr(x, "_device", None)
        try:
            params = {name: p.data(ctx) for name, p in self._reg_params.items()}
        except DeferredInitializationError:
            self._deferred_init(x, *args)
            params = {name: p.data(ctx) for name, p in self._reg_params.items()}
        return self.hybrid_forward(F, x, *args, **params)

    def hybrid_forward(self, F, x, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement hybrid_forward()")
