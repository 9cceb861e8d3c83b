"""The ``onnxruntime`` graph backend: ``net.optimize_for(x, backend='onnxruntime')`` or
``net.hybridize(backend='onnxruntime')``.

Its pass (stage ``inference``, after mxcore's cleanup, simplification and dropout
removal) hands a hybridized block's forward program to onnxruntime:

* **Partitioning.**  Steps are taken in program order; every maximal run of steps that
  the ONNX exporter translates becomes one step of a new op whose kernel runs a cached
  ``InferenceSession`` of that run.  A step it cannot translate (an op without an ONNX
  form, a custom op, a random op, bfloat16 values) stays an mxcore step between two
  runs, as MXNet's subgraph API leaves unsupported nodes to MXNet.  ``program.notes``
  (and ``MXCORE_GRAPH_DEBUG``'s messages) say what went where and why.
* **Conversion.**  A run becomes a Symbol (``mxcore.graph.from_core``: core ops back to
  MXNet's) and the Symbol an ONNX model (``mx.onnx``'s exporter, opset 17).
* **Parameters are session inputs**, read from the parameters on every call, so a
  parameter changed after ``optimize_for`` (a ``set_data``, a trainer step, a loaded
  file) is always honoured and nothing is rebuilt.  The program's constants (host data
  the forward made) never change: they are initializers.
* **Inference only.**  A training call (``autograd.train_mode``/``record()``) or a call
  while recording is traced into a plan of its own (plans are per mode), which the pass
  leaves to mxcore: training under this backend works and runs mxcore's kernels, with
  gradients as usual; only inference calls run in onnxruntime.
"""
from __future__ import annotations

import re
import weakref
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mxcore_arm.sessions import OPSET, session

if TYPE_CHECKING:  # mxcore is imported when the pass runs, not when the plugin loads
    import hal
    from mxcore.graph.program import Program, Step

NAME = "onnxruntime"

#: dtypes onnxruntime's CPU provider computes for the ops mxcore exports (no bfloat16)
DTYPES = frozenset({"float16", "float32", "float64", "int8", "uint8", "int32", "int64",
                    "bool"})


class Unsupported(Exception):
    """A step this backend leaves to mxcore, and why."""


# which steps can go -----------------------------------------------------------------------
def _why_not(program, step) -> Optional[str]:
    """None if ``step`` may go to onnxruntime, else the reason it stays."""
    import hal
    from mxcore.graph import from_core
    from mxcore.onnx.export_ops import TABLE as ONNX_TABLE
    op = step.op
    if op.python_kernel is not None:
        return "Python code (a custom operator)"
    if op.needs_rng or "seed" in op.volatile_attrs:
        return "random"
    if step.mutating:
        return "writes its input in place"
    rule = from_core.TABLE.get(op.name)
    if rule is None:
        return "no MXNet graph equivalent"
    if not getattr(rule, "several", False) and rule.target not in ONNX_TABLE:
        return f"the ONNX exporter has no translation of {rule.target}"
    for s in step.ins + step.outs:
        name = hal.dtype_name(program.dtypes[s])
        if name not in DTYPES:
            return f"{name} values"
    return None


# one run of steps as an ONNX model --------------------------------------------------------
class Segment:
    """A run of steps: the slots it reads from outside (inputs: graph inputs,
    parameters, earlier steps' outputs), the constants it bakes, the slots it writes
    that are read later."""

    def __init__(self, program, steps: Sequence[Any], outputs: Sequence[int]):
        self.program = program
        self.steps = list(steps)
        constants = dict(program.constants)
        made = {s for st in self.steps for s in st.outs}
        reads = list(dict.fromkeys(s for st in self.steps for s in st.ins if s not in made))
        self.constants = [(s, constants[s]) for s in reads if s in constants]
        self.inputs = [s for s in reads if s not in constants]
        self.outputs = list(outputs)

    def model(self):
        """The ONNX model, and the slot each of its inputs and outputs is."""
        import hal
        from mxcore.graph import from_core
        from mxcore.graph.ir import Node, topological
        from mxcore.onnx.export import build_model
        from mxcore.symbol.symbol import Symbol
        p = self.program
        var: Dict[int, Any] = {}
        for s in self.inputs:
            var[s] = (Node(None, f"in{s}"), 0)
        for s, _ in self.constants:
            var[s] = (Node(None, f"const{s}"), 0)
        for k, st in enumerate(self.steps):
            builder = from_core.Builder(prefix=f"step{k}_")
            try:
                outs = from_core.convert(builder, st.op.name, st.attrs, [var[s] for s in st.ins],
                                         [tuple(p.shapes[s]) for s in st.ins], len(st.outs))
            except Exception as exc:  # noqa: BLE001 - the step stays in mxcore
                raise Unsupported(k, f"{type(exc).__name__}: {exc}") from None
            var.update(zip(st.outs, outs))
        heads = list(dict.fromkeys(var[s] for s in self.outputs))
        head_of = {s: heads.index(var[s]) for s in self.outputs}
        order = topological(heads)
        free = list(dict.fromkeys(n.name for n in order if n.is_variable
                                  and not n.name.startswith("const")))
        slot_of = {f"in{s}": s for s in self.inputs}
        params = {f"const{s}": np.asarray(v) for s, v in self.constants}
        try:
            model = build_model(Symbol(heads), params,
                                [p.shapes[slot_of[n]] for n in free],
                                [hal.dtype_name(p.dtypes[slot_of[n]]) for n in free],
                                opset_version=OPSET)
        except Exception as exc:  # noqa: BLE001 - narrowed to a step below
            node = _node_in(str(exc))
            raise Unsupported(node, f"{type(exc).__name__}: {exc}") from None
        graph_inputs = [slot_of[i.name] for i in model.graph.input]
        return model, graph_inputs, [o.name for o in model.graph.output], head_of


def _node_in(message: str) -> Optional[int]:
    """The step index named in an exporter error (nodes are named ``step<k>_<n>``)."""
    m = re.search(r"'step(\d+)_", message)
    return int(m.group(1)) if m else None


class Runner:
    """The kernel of one segment's step: feeds the session, returns its outputs."""

    def __init__(self, name: str, sess, input_names: Sequence[str], output_names: Sequence[str],
                 order: Sequence[int]):
        self.name = name
        self.sess = sess
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        self.order = list(order)        # for each step output, the session output index
        self.calls = 0

    def __call__(self, *arrays) -> Tuple[np.ndarray, ...]:
        feeds = {n: np.ascontiguousarray(a) for n, a in zip(self.input_names, arrays)}
        results = self.sess.run(self.output_names, feeds)
        self.calls += 1
        seen = set()
        outs = []
        for k in self.order:  # a value written to two slots: each slot its own array
            outs.append(results[k] if k not in seen else results[k].copy())
            seen.add(k)
        return tuple(outs)


def _segment_step(program, seg: Segment, index: int):
    """The Step running ``seg`` in onnxruntime."""
    from mxcore.graph.program import Step
    from mxcore.op import Op
    model, graph_inputs, out_names, head_of = seg.model()
    try:
        sess = session(model.SerializeToString())
    except Exception as exc:  # noqa: BLE001 - a kernel onnxruntime lacks: run stays in mxcore
        raise Unsupported(None, f"onnxruntime cannot run it: {type(exc).__name__}: "
                                f"{str(exc).splitlines()[0][:300]}") from None
    name = f"{program.name}:onnxruntime#{index}"
    ins = list(graph_inputs)
    if not ins:
        raise Unsupported(None, "the run reads no input")
    runner = Runner(name, sess, [i.name for i in model.graph.input], out_names,
                    [head_of[s] for s in seg.outputs])
    op = Op(f"onnxruntime[{program.name}#{index}]", len(ins), len(seg.outputs),
            doc=f"{len(seg.steps)} steps of {program.name!r} in one onnxruntime session")
    op.python_kernel = lambda ctx, _run=runner: _run
    _RUNNERS[op] = runner
    return Step(op, ins, {}, seg.outputs, name=name)


#: op -> Runner of the steps this backend made (tests and tools look their calls up);
#: weak, so a dropped plan takes its session with it
_RUNNERS: "weakref.WeakKeyDictionary[Any, Runner]" = weakref.WeakKeyDictionary()


def runner_of(step: "Step") -> Optional[Runner]:
    """The onnxruntime runner behind a step this backend made, else None."""
    return _RUNNERS.get(step.op)


# the pass ---------------------------------------------------------------------------------
def to_onnxruntime(program: "Program", ctx: "hal.Device") -> "Program":
    """The graph pass of the ``onnxruntime`` backend (see the module's docstring)."""
    from mxcore import autograd
    if ctx.kind != "cpu" or program.training or autograd.STATE.recording:
        kept = program.replace()
        kept.notes.append(f"{NAME}: left to mxcore (training, recording or not on cpu)")
        return kept
    excluded: Dict[int, str] = {}
    for i, st in enumerate(program.steps):
        reason = _why_not(program, st)
        if reason is not None:
            excluded[i] = reason
    while True:
        try:
            new = _partition(program, excluded)
            break
        except _Excluded as exc:  # the exporter refused a step: leave it and try again
            excluded[exc.step] = exc.reason
    new.notes = list(program.notes) + [
        f"{NAME}: step {program.steps[i].name} stays in mxcore: {why}"
        for i, why in sorted(excluded.items())]
    return new


class _Excluded(Exception):
    def __init__(self, step: int, reason: str):
        super().__init__(reason)
        self.step, self.reason = step, reason


def _partition(program, excluded: Dict[int, str]):
    steps = program.steps
    runs: List[List[int]] = []
    for i in range(len(steps)):
        if i in excluded:
            continue
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    readers = program.readers()
    wanted = {s for s in program.outputs if s is not None}
    replaced: Dict[int, Any] = {}
    for k, run in enumerate(runs):
        members = set(run)
        outs = [s for i in run for s in steps[i].outs
                if s in wanted or any(r not in members for r in readers.get(s, ()))]
        if not outs:
            continue  # nothing read afterwards: dead code, left for DCE
        seg = Segment(program, [steps[i] for i in run], outs)
        if not seg.inputs:
            continue  # computes from constants only: nothing to feed, left to mxcore
        try:
            replaced[run[0]] = (run, _segment_step(program, seg, k))
        except Unsupported as exc:
            where, reason = exc.args
            if where is None:  # not narrowed to one step: the whole run stays
                for i in run:
                    excluded.setdefault(i, reason)
                continue
            raise _Excluded(run[where], reason) from None
    out_steps = []
    skip = set()
    for i, st in enumerate(steps):
        if i in skip:
            continue
        if i in replaced:
            run, step = replaced[i]
            skip.update(run)
            out_steps.append(step)
        else:
            out_steps.append(st)
    return program.replace(steps=out_steps)
