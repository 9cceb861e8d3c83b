"""``gluon.SymbolBlock``: a graph (a Symbol, or files written by ``export`` here or by
MXNet 1.x) run as a Gluon block, its free variables turned into Parameters."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Union

import hal

from mxcore.base import MXCoreError
from mxcore.gluon.block import HybridBlock
from mxcore.gluon.parameter import DeferredInitializationError, ParameterDict, assign_loaded
from mxcore.graph import functions, infer as _infer, trace as _trace
from mxcore.graph.ir import topological
from mxcore.symbol.symbol import Group, Symbol, load, var


class SymbolBlock(HybridBlock):
    """Runs ``outputs`` (a Symbol or list of them) with ``inputs`` (variables) fed by the
    call's arguments; every other argument or auxiliary state of the graph is a
    Parameter of the block named as its variable."""

    def __init__(self, outputs: Union[Symbol, Sequence[Symbol]],
                 inputs: Union[Symbol, Sequence[Symbol]], params=None):
        super().__init__(prefix="", params=None)
        if params is not None:  # share those Parameters: variables are looked up by name
            self._params = ParameterDict("", params)
        if isinstance(outputs, (list, tuple)):
            outputs = outputs[0] if len(outputs) == 1 else Group(list(outputs))
        inputs = [inputs] if isinstance(inputs, Symbol) else list(inputs)
        for s in inputs:
            if not isinstance(s, Symbol) or len(s) != 1 or s.get_children() is not None:
                raise MXCoreError("SymbolBlock: inputs must be variables (mx.sym.var)")
        self._graph = outputs
        self._input_names = [s.name for s in inputs]
        args = outputs.list_arguments()
        missing = [n for n in self._input_names if n not in outputs.list_inputs()]
        if missing:
            raise MXCoreError(f"SymbolBlock: inputs {missing} are not variables of the graph "
                              f"(its variables: {outputs.list_inputs()})")
        self._order = topological(outputs._outputs)
        aux = set(outputs.list_auxiliary_states())
        # variables declared integer (``__dtype__``: a quantized graph's int8 weights) hold
        # that dtype and take no gradient; the others are float32 Parameters
        declared = {n.name: hal.to_dtype(_infer._MXNET_DTYPES.get(n.attrs["__dtype__"],
                                                                  n.attrs["__dtype__"]))
                    for n in self._order if n.is_variable and "__dtype__" in n.attrs}
        integer = {k: v for k, v in declared.items() if not hal.is_float(v)}
        self._var_params = {}  # graph variable name -> Parameter
        for name in outputs.list_inputs():
            if name in self._input_names:
                continue
            trained = name in args and name not in aux and name not in integer
            self._var_params[name] = self.params.get(
                name, grad_req="write" if trained else "null",
                dtype=integer.get(name, "float32"), allow_deferred_init=True)
        # structural names (save_parameters) drop the variables' common prefix, as MXNet's
        # SymbolBlock does, so they do not depend on the prefix counters of the builder
        cut = len(os.path.commonprefix(list(self._var_params)))
        if any(len(name) == cut for name in self._var_params):
            cut = 0
        for name, param in self._var_params.items():
            self._reg_params[name[cut:]] = param

    @staticmethod
    def imports(symbol_file: str, input_names: Union[str, Sequence[str]],
                param_file: Optional[str] = None, ctx=None, allow_missing: bool = False,
                ignore_extra: bool = False) -> "SymbolBlock":
        """A SymbolBlock from ``export``'s files (or MXNet 1.x's: the ``.params`` side
        is read by mxcore's MXNet-format reader, never unpickled)."""
        from mxcore.serialization import load_parameter_arrays
        names = [input_names] if isinstance(input_names, str) else list(input_names)
        block = SymbolBlock(load(symbol_file), [var(n) for n in names])
        if param_file is not None:
            arrays = load_parameter_arrays(param_file)
            params = dict(block._var_params)
            assign_loaded(params, arrays, param_file, ctx, allow_missing, ignore_extra)
        elif ctx is not None:
            block.collect_params().initialize(ctx=ctx)
        return block

    def infer_shape(self, *args) -> None:
        shapes = {n: tuple(a.shape) for n, a in zip(self._input_names, args)}
        arg_shapes, _, aux_shapes = self._graph.infer_shape_partial(**shapes)
        names = self._graph.list_arguments() + self._graph.list_auxiliary_states()
        for name, shape in zip(names, arg_shapes + aux_shapes):
            if name in self._var_params and shape:
                self._var_params[name].shape = shape

    def forward(self, x, *args):
        inputs = [x, *args]
        if len(inputs) != len(self._input_names):
            raise MXCoreError(f"SymbolBlock takes {len(self._input_names)} input(s) "
                              f"{self._input_names}, got {len(inputs)}")
        if isinstance(x, Symbol):
            out = Symbol(self._graph._outputs)
            out._compose(**dict(zip(self._input_names, inputs)))
            return out
        ctx = x._device
        t = _trace.current() if ctx.kind == "meta" else None
        if t is not None:
            params = {n: t.param(p) for n, p in self._var_params.items()}
        else:
            try:
                params = {n: p.data(ctx) for n, p in self._var_params.items()}
            except DeferredInitializationError:
                self._deferred_init(*inputs)
                params = {n: p.data(ctx) for n, p in self._var_params.items()}
        values: Dict[str, Any] = dict(zip(self._input_names, inputs))
        values.update(params)
        outs = _run(self._order, self._graph._outputs, values, ctx)
        return outs[0] if len(outs) == 1 else outs


def _run(order, heads, values: Dict[str, Any], ctx) -> List[Any]:
    """Evaluate a graph's nodes on NDArrays; under ``autograd.record()`` the ops are
    recorded like any eager call."""
    results: Dict[int, List[Any]] = {}
    for node in order:
        if node.is_variable:
            results[id(node)] = [values[node.name]]
            continue
        inputs = [results[id(src)][i] for src, i in node.inputs]
        results[id(node)] = functions.run(node.op, inputs, node.call_attrs(), ctx)
    return [results[id(n)][i] for n, i in heads]
