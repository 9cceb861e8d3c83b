"""``mx.nd.CachedOp``: a Symbol made callable on NDArrays.

The graph is compiled once into a :class:`Program`: its nodes in topological order,
each with the op function that runs it (``mxcore.graph.functions``), the attributes
that function takes and the slots its inputs come from.  A call fills the variable
slots with the given arrays (in ``list_inputs()`` order, as MXNet's CachedOp takes
them) and runs the steps through the same op functions as eager code, so while
autograd records, the outputs are recorded as if written imperatively and
``backward`` reaches the inputs.  ``Program.run`` takes an optional per-node hook
(``mxcore.graph.op_hook`` reports each node's arrays through it).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from mxcore.base import MXCoreError
from mxcore.graph import functions
from mxcore.graph.ir import Node, topological

#: hook(node, input arrays, output arrays), called after each op node runs
NodeHook = Callable[[Node, List[Any], List[Any]], None]


class _Step:
    __slots__ = ("node", "fn", "attrs", "srcs", "ctx_arg")

    def __init__(self, node: Node, srcs: Tuple[Tuple[int, int], ...]):
        self.node = node
        self.fn = functions.op_function(node.op)
        attrs = node.call_attrs()
        names = functions.accepted_names(self.fn)
        if names is not None:  # hints and user attributes the function does not take
            attrs = {k: v for k, v in attrs.items() if k in names}
        self.attrs = attrs
        self.srcs = srcs  # (producing node's index in the program, output index)
        self.ctx_arg = not srcs and functions.takes_ctx(self.fn)


class Program:
    """A graph compiled to a list of steps over NDArrays."""

    def __init__(self, symbol):
        order = topological(symbol._outputs)
        index = {id(n): k for k, n in enumerate(order)}
        self.inputs: List[Node] = [n for n in order if n.is_variable]
        self.input_names: List[str] = [n.name for n in self.inputs]
        self._slot_of_input = [index[id(n)] for n in self.inputs]
        self._size = len(order)
        self.steps: List[Tuple[int, _Step]] = [
            (k, _Step(n, tuple((index[id(src)], i) for src, i in n.inputs)))
            for k, n in enumerate(order) if not n.is_variable]
        self.heads = [(index[id(n)], i) for n, i in symbol._outputs]

    def run(self, arrays: Sequence[Any], ctx=None, hook: Optional[NodeHook] = None) -> List[Any]:
        """The outputs for input ``arrays`` (one per input, in ``input_names`` order)."""
        if len(arrays) != len(self.inputs):
            raise MXCoreError(f"CachedOp: {len(arrays)} arrays given for the graph's "
                              f"{len(self.inputs)} inputs {self.input_names}")
        values: List[Optional[List[Any]]] = [None] * self._size
        for slot, arr in zip(self._slot_of_input, arrays):
            values[slot] = [arr]
        for k, step in self.steps:
            ins = [values[s][i] for s, i in step.srcs]
            attrs = dict(step.attrs, ctx=ctx) if step.ctx_arg else step.attrs
            try:
                out = step.fn(*ins, **attrs)
            except MXCoreError as exc:
                if type(exc) is not MXCoreError:
                    raise
                raise MXCoreError(f"node {step.node.name!r} ({step.node.op}): {exc}") from None
            outs = list(out) if isinstance(out, (list, tuple)) else [out]
            values[k] = outs
            if hook is not None:
                hook(step.node, ins, outs)
        return [values[s][i] for s, i in self.heads]


class CachedOp:
    """A Symbol compiled once and called on NDArrays (MXNet's ``mx.nd.CachedOp``):
    ``op(*inputs, out=None)`` with one array per ``sym.list_inputs()`` name; returns
    the output, or a list when the symbol has several."""

    def __init__(self, sym, flags: Sequence[Tuple[str, Any]] = (), thread_safe: bool = False):
        from mxcore.symbol.symbol import Symbol
        if not isinstance(sym, Symbol):
            raise TypeError(f"CachedOp expects a Symbol, got {type(sym).__name__}")
        self._symbol = sym
        self.flags: Dict[str, Any] = dict(flags)
        self._program = Program(sym)

    def __call__(self, *args, out=None, default_ctx=None, **kwargs):
        from mxcore.device import default_device
        from mxcore.array import NDArray
        if kwargs:
            raise TypeError("CachedOp.__call__ got unexpected keyword argument(s): "
                            + ", ".join(kwargs))
        bad = [type(a).__name__ for a in args if not isinstance(a, NDArray)]
        if bad:
            raise TypeError(f"CachedOp takes NDArrays (one per input "
                            f"{self._program.input_names}), got {bad}")
        ctx = args[0].context if args else (default_ctx or default_device())
        outputs = self._program.run(args, ctx)
        if out is not None:
            targets = [out] if isinstance(out, NDArray) else list(out)
            if len(targets) != len(outputs):
                raise MXCoreError(f"CachedOp: out= has {len(targets)} arrays for "
                                  f"{len(outputs)} outputs")
            for dst, src in zip(targets, outputs):
                dst[:] = src
            return out
        return outputs[0] if len(outputs) == 1 else outputs

    def __repr__(self) -> str:
        return f"<CachedOp {self._symbol!r}>"
