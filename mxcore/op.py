"""Operators: a name with rules registered on it (JAX-primitive style).

An ``Op`` knows nothing about devices.  It carries

* an attribute schema (name -> default, ``REQUIRED`` for mandatory ones),
* a shape/dtype inference rule ``infer(shapes, dtypes, attrs) -> (shapes, dtypes)``,
* a gradient rule ``grad(ctx, *out_grads) -> input grads``, written in mxcore ops
  so it runs on every device and can itself be differentiated.

Kernels (registered by device plugins) implement ops; ``mxcore.dispatch`` picks
one through the registry.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from mxcore.base import MXCoreError

REQUIRED = object()


class GradContext:
    """What a gradient rule sees: the op's inputs, outputs (when the op saves
    them) and attributes.  ``needs_grad(i)`` is False for inputs that take no
    part in differentiation: a rule may return None for them and skip the
    work (e.g. the gradient of a layer's input data)."""

    __slots__ = ("inputs", "outputs", "attrs")

    def __init__(self, inputs, outputs, attrs):
        self.inputs = inputs
        self.outputs = outputs
        self.attrs = attrs

    def needs_grad(self, i: int) -> bool:
        return self.inputs[i]._ag is not None


class Op:
    __slots__ = ("name", "nin", "nout", "attrs", "infer", "grad", "dtype_arg",
                 "saves_output", "needs_rng", "nullary", "doc", "cache", "aliases",
                 "provider", "mutates", "volatile_attrs", "checked", "python_kernel",
                 "views", "overwrites", "state_attrs", "frontend", "__weakref__")

    def __init__(self, name: str, nin: int = 1, nout: int = 1,
                 attrs: Optional[Dict[str, Any]] = None, *, dtype_arg: int = 0,
                 saves_output: bool = False, needs_rng: bool = False, doc: str = "",
                 aliases: Sequence[str] = (), mutates: Sequence[int] = (),
                 volatile_attrs: Sequence[str] = (), views: bool = False,
                 overwrites: Optional[Callable[[Dict[str, Any]], Sequence[int]]] = None,
                 state_attrs: Sequence[str] = ()):
        self.name = name
        self.nin = nin            # -1: variadic (concat, stack)
        self.nout = nout          # -1: decided by attributes (split)
        self.attrs = dict(attrs or {})
        self.infer: Optional[Callable] = None
        self.grad: Optional[Callable] = None
        self.dtype_arg = dtype_arg  # which input's dtype selects the kernel
        self.saves_output = saves_output
        self.needs_rng = needs_rng
        self.nullary = nin == 0
        self.doc = doc
        self.aliases = tuple(aliases)
        self.provider = ""
        # indices of inputs the kernel writes in place (told to the engine);
        # a callable(attrs) for ops whose arity depends on attributes
        self.mutates = mutates if callable(mutates) else tuple(mutates)
        # attributes that change from call to call (learning rates, seeds, scalars):
        # the per-signature kernel choice of guarded kernels ignores them, so kernel
        # guards must not read them (a new learning rate is not a new signature)
        self.volatile_attrs = frozenset(volatile_attrs)
        # what the threaded engine must know to order kernels by the memory they touch:
        # ``views``: outputs may share memory with inputs (reshape, transpose, indexing;
        # the conformance suite holds every other op's kernels to fresh outputs);
        # ``overwrites(attrs)``: inputs whose buffers the kernel may reuse for its output
        # (a compiled plan's dead buffers); ``state_attrs``: attributes holding state the
        # kernel writes (scratch buffers kept across calls)
        self.views = views
        self.overwrites = overwrites
        self.state_attrs = tuple(state_attrs)
        # the user-facing function of a plugin's op (optional inputs, keyword defaults):
        # what ``mx.nd.<name>`` and ``mx.nd.contrib.<name>`` give for it; None: a generic
        # call by name (``mx.nd.invoke``)
        self.frontend: Optional[Callable] = None
        # (device kind, dtype) -> kernel fn, or a resolver for guarded kernels.
        # Filled by the registry; cleared whenever registrations change.
        self.cache: Dict[Tuple, Any] = {}
        # call signature -> the rule's (shapes, dtypes), for calls by name
        # (``mx.nd.invoke``): each signature is held to the rule once
        self.checked: Dict[Tuple, Any] = {}
        # device -> kernel, for ops implemented in Python over NDArrays (custom ops)
        # rather than by device kernels: compiled plans bind it instead of resolving a
        # kernel, and graph passes treat the op as having side effects
        self.python_kernel: Optional[Callable[[Any], Callable]] = None

    # rule registration (decorators) ------------------------------------------
    def def_infer(self, fn: Callable) -> Callable:
        self.infer = fn
        return fn

    def def_grad(self, fn: Callable) -> Callable:
        self.grad = fn
        return fn

    @property
    def differentiable(self) -> bool:
        return self.grad is not None

    def check_attrs(self, attrs: Dict[str, Any]) -> Dict[str, Any]:
        """Fill defaults and reject unknown or missing attributes."""
        unknown = set(attrs) - set(self.attrs)
        if unknown:
            raise MXCoreError(
                f"operator {self.name!r}: unknown attribute(s) {sorted(unknown)}; "
                f"it takes {sorted(self.attrs) or 'no attributes'}")
        full = {}
        for key, default in self.attrs.items():
            if key in attrs:
                full[key] = attrs[key]
            elif default is REQUIRED:
                raise MXCoreError(f"operator {self.name!r}: missing required attribute {key!r}")
            else:
                full[key] = default
        return full

    def infer_shape_dtype(self, shapes, dtypes, attrs):
        if self.infer is None:
            raise MXCoreError(f"operator {self.name!r} has no shape inference rule")
        return self.infer(tuple(tuple(s) for s in shapes), tuple(dtypes), attrs)

    def __repr__(self) -> str:
        return f"<Op {self.name}>"
