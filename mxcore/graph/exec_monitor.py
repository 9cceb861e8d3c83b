"""The arrays an executor reports to its monitor callback
(``Executor.set_monitor_callback``), named and ordered as MXNet 1.9.1's graph executor
reports them.  Only monitored executors come here: an executor without a callback runs
its compiled plan and never imports this module.

Forward, per op node in topological order:

* with ``monitor_all``, each input: first the variable's own name when the input is a
  variable (``data``), then ``<node>_<input name>`` (``fc1_data``, ``relu1_input0``,
  ``concat_arg0``: ``graph/op_names.py``) -- so ``fc1_weight`` is reported twice;
* each output under its ``list_outputs`` name (``fc1_output``), then the outputs
  MXNet's op computes without showing them (BatchNorm's ``bn1_mean``, the batch mean
  while training and the moving mean otherwise, and ``bn1_var``, 1/sqrt(var + eps);
  LayerNorm's and GroupNorm's ``mean``/``std``, InstanceNorm's ``mean``/``var``,
  L2Normalization's ``norm``, LRN's ``tmp_norm``).

Backward: MXNet runs a gradient graph whose nodes it reports like forward ones.  This
module builds the same graph from the bound symbol (as MXNet's gradient pass does:
forward nodes in reverse topological order, the gradients that meet at an array
summed) and reports its nodes in the order MXNet's executor runs them (depth first
from the gradients of the arguments, in ``list_arguments`` order):

* ``_head_grad_<i>_id_output``: the head gradient of output ``i`` (not for loss
  outputs such as SoftmaxOutput, whose backward ignores it);
* ``<node>_backward_output<j>``: the gradient of op node ``<node>``'s input ``j``
  (``<node>_backward_output`` for one input; auxiliary states have none; MXNet's
  legacy operators name them after the input instead: ``sp_backward_data``).  An
  ``elemwise_add`` passes its gradient through and has none; a node that is not
  differentiable (BlockGrad) has ``<node>_backward`` (or ``<node>_in<j>_backward``)
  zeros instead;
* ``sum_grad_output``: where several gradients meet (fewer than
  ``MXNET_EXEC_INPLACE_GRAD_SUM_CAP``, default 8; from that many on, each
  contribution is reported as the running sum, then ``sum_grad_final_output``), and
  ``zeros_without_dtype_output`` for an output nothing consumed;
* with ``monitor_all``, the inputs of the head, sum and zero nodes (``_head_grad_0``,
  ``_head_grad_0_id_lhs``, ``_head_grad_0_id_rhs``, ``sum_grad_arg0``...).  The inputs
  of ``<node>_backward`` nodes are each MXNet backward operator's own choice of
  forward arrays; they are not reported.

To compute the gradient of every node's inputs, a monitored forward that records for
backward records each op node separately, on its own copies of its inputs: the
backward then runs node by node in the order above, through the ops' usual gradient
rules, and writes the arguments' gradients as ``grad_req`` says.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from mxcore import autograd
from mxcore.graph import functions, opinfo
from mxcore.graph.ir import Node
from mxcore.graph.op_names import (hidden_output_names, input_names, list_output_name,
                                   op_name)

Callback = Callable[[bytes, Any], None]

#: ops whose gradient ignores the head gradient (MXNet's loss layers)
LOSS_OPS = frozenset({"SoftmaxOutput", "Softmax", "LinearRegressionOutput",
                      "LogisticRegressionOutput", "MAERegressionOutput", "SVMOutput",
                      "MakeLoss", "make_loss"})
#: MXNet's legacy operators: their backward op names its outputs after the inputs
LEGACY_OPS = frozenset({"BatchNorm_v1", "BilinearSampler", "Correlation", "Crop",
                        "GridGenerator", "IdentityAttachKLSparseReg", "InstanceNorm",
                        "L2Normalization", "MakeLoss", "Pad", "ROIPooling", "SVMOutput",
                        "SequenceLast", "SequenceMask", "SequenceReverse", "SliceChannel",
                        "SpatialTransformer", "SwapAxis"})
#: ops whose gradient passes the output's gradient to every input (CloneGradient)
PASS_THROUGH = frozenset({"elemwise_add"})
#: ops whose gradient is an unnamed identity of the output's gradient per input
SPREAD = frozenset({"add_n"})


def _report(callback: Callback, name: str, array) -> None:
    # a detached view: statistics the callback computes are not recorded for backward
    callback(name.encode(), array.detach())


def _report_input(callback: Callback, node_name: str, input_name: str, src: Node,
                  array) -> None:
    if src.is_variable:
        _report(callback, src.name, array)
    _report(callback, f"{node_name}_{input_name}", array)


# forward ----------------------------------------------------------------------------------
def _hidden_outputs(node: Node, inputs: Sequence[Any], attrs: Dict[str, Any], ctx):
    """The statistics MXNet's op computes besides its output (see the module
    docstring), in the forward's training mode."""
    from mxcore import ndarray as nd
    op = op_name(node)
    with autograd.pause(train_mode=autograd.is_training()):
        if op in ("BatchNorm", "GroupNorm"):
            return functions.run(node.op, inputs, dict(attrs, output_mean_var=True), ctx)[1:]
        x = inputs[0]
        if op == "LayerNorm":
            axis, eps = int(attrs.get("axis", -1)), float(attrs.get("eps", 1e-5))
            mean = nd.mean(x, axis=axis, keepdims=True)
            var = nd.mean(nd.square(x - mean), axis=axis, keepdims=True)
            return [mean, nd.sqrt(var + eps)]
        if op == "InstanceNorm":
            axes = tuple(range(2, x.ndim))
            mean = nd.mean(x, axis=axes, keepdims=True)
            var = nd.mean(nd.square(x - mean), axis=axes)
            return [mean.reshape(var.shape), var]
        if op == "LRN":  # knorm + alpha / nsize * the window's sum of squares
            n = int(attrs["nsize"])
            sq = nd.square(x)
            if n // 2:
                pad = nd.zeros((x.shape[0], n // 2) + tuple(x.shape[2:]), ctx=x.context,
                               dtype=x.dtype)
                sq = nd.concat(pad, sq, pad, dim=1)
            total = nd.slice_axis(sq, axis=1, begin=0, end=x.shape[1])
            for k in range(1, n):
                total = total + nd.slice_axis(sq, axis=1, begin=k, end=k + x.shape[1])
            return [total * (float(attrs.get("alpha", 1e-4)) / n)
                    + float(attrs.get("knorm", 2.0))]
        if op == "L2Normalization":
            mode, eps = str(attrs.get("mode", "instance")), float(attrs.get("eps", 1e-10))
            axes = {"channel": (1,), "spatial": tuple(range(2, x.ndim))}.get(
                mode, tuple(range(1, x.ndim)))
            return [nd.sqrt(nd.sum(nd.square(x), axis=axes, keepdims=mode == "channel")
                            + eps)]
    return []


def _leaf(x):
    """A copy of ``x`` (the same memory) that autograd differentiates with respect to."""
    v = x.detach()
    v._ag = autograd.Leaf(None, "null")
    return v


def run_forward(exe, call, callback: Callback, monitor_all: bool, segmented: bool):
    """Run ``exe``'s graph node by node (``call(node, inputs)`` runs one), reporting to
    ``callback``.  ``segmented``: record each node on its own inputs (for
    :func:`run_backward`).  Returns (the outputs, the segments: node id -> (node,
    input copies, outputs), or None)."""
    values: Dict[int, List[Any]] = {}
    segments: Optional[Dict[int, Tuple[Node, List[Any], List[Any]]]] = \
        {} if segmented else None
    for node in exe._order:
        if node.is_variable:
            values[id(node)] = [exe._values[node.name]]
            continue
        inputs = [values[id(src)][i] for src, i in node.inputs]
        if monitor_all:
            for (src, _), name, x in zip(node.inputs, input_names(node), inputs):
                _report_input(callback, node.name, name, src, x)
        if segmented:
            inputs = [_leaf(x) for x in inputs]
        outs = values[id(node)] = call(node, inputs)
        if segmented:
            segments[id(node)] = (node, inputs, outs)
        for i, out in enumerate(outs):
            _report(callback, list_output_name(node, i), out)
        hidden = hidden_output_names(node)
        if hidden:
            attrs = node.call_attrs()
            for name, arr in zip(hidden, _hidden_outputs(node, inputs, attrs, exe._ctx)):
                _report(callback, f"{node.name}_{name}", arr)
    outputs = [values[id(n)][i] for n, i in exe._symbol._outputs]
    return outputs, segments


# the gradient graph -----------------------------------------------------------------------
class _GNode:
    """A node of the gradient graph: ``kind`` is head (a head gradient), op (an op
    node's backward), zero (zeros for an input of a node without gradient), zeros (an
    output no one consumed), sum, chain (a running sum: the in-place sum of many
    gradients) or copy (one gradient for two arguments)."""

    __slots__ = ("kind", "name", "deps", "control", "node", "index", "nout", "values")

    def __init__(self, kind: str, name: str, deps=(), node: Optional[Node] = None,
                 index: int = 0, nout: int = 1):
        self.kind, self.name, self.node, self.index, self.nout = kind, name, node, index, nout
        self.deps: List[Tuple["_GNode", int]] = list(deps)  # gradient entries it reads
        self.control: List["_GNode"] = []  # nodes that must run first
        self.values: Optional[List[Any]] = None


Entry = Tuple[_GNode, int]


def _sum_cap() -> int:
    try:
        return int(os.environ.get("MXNET_EXEC_INPLACE_GRAD_SUM_CAP", "8"))
    except ValueError:
        return 8


def _aggregate(grads: List[Entry], like: Tuple[Node, int], cap: int,
               chains: Dict[Tuple[int, int], Tuple[_GNode, int]]) -> Entry:
    """One gradient from the ones that meet at forward output ``like`` (MXNet's
    AggregateGradient): zeros dropped when others exist; one kept as is; fewer than
    ``cap`` summed; more summed in place, in order (``chains``)."""
    if not grads:
        return _GNode("zeros", "zeros_without_dtype", node=like[0], index=like[1]), 0
    kept = [g for g in grads if g[0].kind != "zero"] or grads[:1]
    if len(kept) == 1:
        return kept[0]
    if len(kept) < cap:
        return _GNode("sum", "sum_grad", deps=kept), 0
    chain = _GNode("chain", "sum_grad_final", deps=kept)
    for prev, g in zip(kept, kept[1:]):
        if prev[0] is not g[0]:
            g[0].control.append(prev[0])  # each waits for the sum so far
    for k, g in enumerate(kept):
        chains[(id(g[0]), g[1])] = (chain, k)
    return chain, 0


def _aux_positions(node: Node) -> set:
    row = opinfo.info(node.op, node.attrs)
    if row is None or not row.aux:
        return set()
    names = input_names(node)
    return {i for i, n in enumerate(names) if n in row.aux}


class _Graph:
    """The gradient graph of a segmented forward, in MXNet's order."""

    def __init__(self, exe, segments, xs: Sequence[str]):
        cap = _sum_cap()
        self.chains: Dict[Tuple[int, int], Tuple[_GNode, int]] = {}
        self.ograds: Dict[int, List[Entry]] = {}  # node id -> its outputs' gradients
        self.grad_inputs: Dict[int, List[int]] = {}  # node id -> inputs it differentiates
        grads: Dict[Tuple[int, int], List[Entry]] = {}
        for i, (n, k) in enumerate(exe._symbol._outputs):
            grads[(id(n), k)] = [(_GNode("head", f"_head_grad_{i}_id", node=n, index=i), 0)]
        variables: Dict[str, Node] = {}
        for n in reversed(exe._order):
            if n.is_variable:
                variables[n.name] = n
                continue
            ograds = [_aggregate(grads.get((id(n), k), []), (n, k), cap, self.chains)
                      for k in range(n.nout)]
            self.ograds[id(n)] = ograds
            op = op_name(n)
            _, _, outs = segments[id(n)]
            if op in PASS_THROUGH:
                contrib: List[Optional[Entry]] = [ograds[0]] * len(n.inputs)
            elif op in SPREAD:  # one copy of the output's gradient per input
                contrib = [(_GNode("copy", "", deps=[ograds[0]]), 0) for _ in n.inputs]
            elif all(o._ag is None for o in outs):  # not differentiable
                contrib = [(_GNode("zero", f"{n.name}_backward" if len(n.inputs) == 1
                                   else f"{n.name}_in{j}_backward", node=n, index=j), 0)
                           for j in range(len(n.inputs))]
            else:
                aux = _aux_positions(n)
                which = [j for j in range(len(n.inputs)) if j not in aux]
                self.grad_inputs[id(n)] = which
                g = _GNode("op", f"{n.name}_backward", node=n, nout=len(which),
                           deps=() if op in LOSS_OPS else ograds)
                contrib = [None] * len(n.inputs)
                for slot, j in enumerate(which):
                    contrib[j] = (g, slot)
            for (src, k), c in zip(n.inputs, contrib):
                if c is not None:
                    grads.setdefault((id(src), k), []).append(c)
        # the arguments' gradients; one gradient given to two arguments is copied
        self.xs: List[Entry] = []
        uses: Dict[Tuple[int, int], int] = {}
        for name in xs:
            var = variables[name]
            e = _aggregate(grads.get((id(var), 0), []), (var, 0), cap, self.chains)
            key = (id(e[0]), e[1])
            if key in uses:
                e = _GNode("copy", f"{e[0].name}_{uses[key]}_copy", deps=[e]), 0
                uses[key] += 1
            else:
                uses[key] = 1
            self.xs.append(e)
        self.order = self._order()

    def _order(self) -> List[_GNode]:
        """The nodes the arguments' gradients need, depth first (inputs, then the
        nodes that must run first), as MXNet's executor runs them."""
        order: List[_GNode] = []
        seen = set()
        for root, _ in self.xs:
            if id(root) in seen:
                continue
            seen.add(id(root))
            stack = [(root, 0)]
            while stack:
                g, i = stack.pop()
                children = [d for d, _ in g.deps] + g.control
                if i < len(children):
                    stack.append((g, i + 1))
                    child = children[i]
                    if id(child) not in seen:
                        seen.add(id(child))
                        stack.append((child, 0))
                else:
                    order.append(g)
        return order


def _value(e: Entry):
    return e[0].values[e[1]]


def _zeros_like(x):
    from mxcore.ops.creation import zeros_like
    return zeros_like(x.detach())


def run_backward(exe, segments, out_grads: Sequence[Any], is_train: bool,
                 monitor: Optional[Tuple[Callback, bool]]) -> None:
    """The backward of a segmented forward: the gradient graph's nodes in MXNet's
    order, reported to ``monitor`` (``(callback, monitor_all)``, or None), then the
    arguments' gradients into ``exe.grad_dict``.  ``out_grads``: per output, its head
    gradient or None (ones)."""
    callback, monitor_all = monitor if monitor is not None else (None, False)
    xs = list(exe._marked)
    graph = _Graph(exe, segments, xs)
    heads = exe._heads
    running: Dict[int, Any] = {}  # chain node id -> the sum so far
    for g in graph.order:
        if g.kind == "head":
            out, hg = heads[g.index], out_grads[g.index]
            hg = out.detach().ones_like() if hg is None else hg
            if callback is not None and monitor_all:
                _report(callback, f"_head_grad_{g.index}", hg)
                _report(callback, f"{g.name}_lhs", hg)
                if g.node.is_variable:
                    _report(callback, g.node.name, out)
                _report(callback, f"{g.name}_rhs", out)
            g.values = [hg]
        elif g.kind == "op":
            g.values = _op_backward(g, graph, segments, is_train)
        elif g.kind == "zero":
            node, inputs, _ = segments[id(g.node)]
            if callback is not None and monitor_all:
                _report_input(callback, g.name, "input0", node.inputs[g.index][0],
                              inputs[g.index])
            g.values = [_zeros_like(inputs[g.index])]
        elif g.kind == "zeros":
            like = exe._values[g.node.name] if g.node.is_variable else \
                segments[id(g.node)][2][g.index]
            g.values = [_zeros_like(like)]
        else:  # sum, chain, copy
            ins = [_value(d) for d in g.deps]
            if callback is not None and monitor_all:
                if g.kind == "sum":
                    for j, x in enumerate(ins):
                        _report(callback, f"{g.name}_arg{j}", x)
            if g.kind == "sum":
                total = ins[0]
                for x in ins[1:]:
                    total = total + x
                g.values = [total]
            elif g.kind == "chain":
                g.values = [running.pop(id(g))]
            else:
                g.values = [ins[0].copy()]
            if callback is not None and monitor_all and g.kind != "sum":
                _report(callback, f"{g.name}_input0", g.values[0] if g.kind == "chain"
                        else ins[0])
        # the outputs, as MXNet names them; a gradient summed in place is reported as
        # the sum so far
        for j, v in enumerate(g.values):
            chain = graph.chains.get((id(g), j))
            if chain is not None:
                so_far = running.get(id(chain[0]))
                v = v if so_far is None else so_far + v
                running[id(chain[0])] = v
            if callback is not None:
                _report(callback, _output_name(g, j), v)
    for name, e in zip(xs, graph.xs):
        value, dst = _value(e), exe.grad_dict[name]
        if exe._reqs[name] == "add":
            dst[:] = dst + value
        else:
            dst[:] = value
        exe.arg_dict[name]._ag.fresh = True


def _op_backward(g: _GNode, graph: _Graph, segments, is_train: bool) -> List[Any]:
    """The gradients of op node ``g.node``'s inputs: its recorded segment
    differentiated from its outputs' gradients."""
    node, inputs, outs = segments[id(g.node)]
    which = graph.grad_inputs[id(node)]
    ograds = graph.ograds[id(node)]
    heads, head_grads = [], []
    for k, out in enumerate(outs):
        if out._ag is not None:  # recorded, or one of the inputs itself
            heads.append(out)
            head_grads.append(_value(ograds[k]) if g.deps else None)
    if all(h is None for h in head_grads):
        head_grads = None
    return autograd.grad(heads, [inputs[j] for j in which], head_grads=head_grads,
                         retain_graph=False, train_mode=is_train)


def _output_name(g: _GNode, j: int) -> str:
    if g.kind == "op":
        op = op_name(g.node)
        if op in LEGACY_OPS:
            return f"{g.name}_{input_names(g.node)[_input_of(g, j)]}"
        return f"{g.name}_output" if g.nout == 1 else f"{g.name}_output{j}"
    return f"{g.name}_output" if g.name else "output"


def _input_of(g: _GNode, j: int) -> int:
    """The input of ``g.node`` whose gradient is ``g``'s output ``j``."""
    aux = _aux_positions(g.node)
    return [i for i in range(len(g.node.inputs)) if i not in aux][j]
