"""Compiled plans: a traced block as flat lists of kernel calls, and its replay.

``Plan.build`` turns a trace (``mxcore.graph.trace``) into a forward ``Program`` and,
when the trace recorded for autograd, a backward ``Program`` (the gradient rules'
ops, traced on meta arrays); each goes through the pass pipeline
(``mxcore.graph.passes``) and is compiled once into a list of
``(kernel, input slots, attributes, output slots, slots to free)``, the kernels
resolved from the registry for the signature the plan was traced for.

A call fills the slots with the inputs', parameters' and constants' device arrays and
runs the list: per step one engine push of a known kernel, no NDArray wrappers, no
attribute checks, no tape bookkeeping.  While recording, the call leaves *one* tape
node for the whole plan, whose gradient rule runs the backward list on the values the
forward kept (the slots the backward program reads), so gradients come from the same
rules and kernels as imperative code.  Dropout seeds are drawn afresh per call, the
same for a step's forward and backward.

``MXCORE_GRAPH_DEBUG=1`` runs every call twice: the unoptimised program op by op
through eager dispatch, and the compiled one without freeing buffers; the first step
whose outputs differ is reported with its name (block path and op).
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mxcore import autograd, dispatch, engine
from mxcore.base import MXCoreError
from mxcore.dispatch import wrap
from mxcore.graph import passes as _passes
from mxcore.graph.program import Program, Step
from mxcore.graph.trace import unflatten


class GraphDivergence(MXCoreError):
    """MXCORE_GRAPH_DEBUG found a step whose optimised result differs from eager."""


def _debug() -> bool:
    return os.environ.get("MXCORE_GRAPH_DEBUG", "") not in ("", "0")


class Compiled:
    """A program bound to a device: its kernels resolved, ready to replay."""

    def __init__(self, program: Program, ctx, static_alloc: bool = False,
                 free: bool = True):
        from mxcore.dispatch import _for_device
        from mxcore.plugins import registry
        import hal
        self.program = program
        self.ctx = ctx
        self.nslots = program.nslots
        reg = registry()
        kind = ctx.kind
        self.calls = []
        plan = program.free_after if free else None
        if not free:  # debugging reads every slot: the steps run one by one
            self._as_task = False
        for i, st in enumerate(program.steps):
            shapes = tuple(program.shapes[s] for s in st.ins)
            dtypes = tuple(hal.dtype_name(program.dtypes[s]) for s in st.ins)
            if st.ins:
                dtype = dtypes[st.op.dtype_arg]
            else:
                dtype = hal.dtype_name(st.dtype if st.dtype is not None
                                       else st.attrs.get("dtype", "float32"))
            if st.op.python_kernel is not None:  # Python over NDArrays (custom ops)
                fn = st.op.python_kernel(ctx)
            else:
                try:
                    kernel = reg.resolve(st.op.name, kind, dtype, shapes, dtypes, st.attrs)
                except MXCoreError as exc:
                    raise MXCoreError(f"plan {program.name!r}: step {st.name}: {exc}") \
                        from None
                fn = _for_device(kernel, reg, kind)
            attrs = st.attrs
            if not free and attrs.get("inplace", -1) >= 0:
                attrs = dict(attrs, inplace=-1)  # debugging compares every value
            if static_alloc and "scratch" in attrs:
                attrs = dict(attrs, scratch={})  # temporaries kept across calls
            self.calls.append((fn, st.ins, attrs, st.outs, st.op.needs_rng,
                               "seed" in st.op.volatile_attrs, st.mutating,
                               plan[i] if plan else (), st))

    def run(self, vals: List[Any], seeds: Optional[Dict[int, int]] = None) -> None:
        """Run the steps on ``vals`` (slot -> device array), in place."""
        eng = engine.current()  # the engine of the moment (profiler, threaded...)
        if getattr(eng, "asynchronous", False) and self._as_task is not False \
                and self._run_as_task(eng, vals, seeds):
            return
        self._run_steps(eng, vals, seeds)

    def _run_steps(self, eng, vals: List[Any], seeds: Optional[Dict[int, int]],
                   calls=None) -> None:
        """One engine push per step (of ``calls``, default the program's)."""
        push = eng.push
        # the naive engine's push is the call itself: make it here (a call less per step)
        direct = type(eng) is engine.NaiveEngine or eng is _DIRECT
        ctx = self.ctx
        gen = None
        for fn, ins, attrs, outs, rng, reseed, mutates, free, st in calls or self.calls:
            if reseed:
                attrs = dict(attrs, seed=_fresh_seed(seeds, attrs["seed"], self.ctx))
            args = [vals[i] for i in ins]
            if rng:
                if gen is None:
                    gen = dispatch._generator(self.ctx)
                args.insert(0, gen)
            try:
                r = fn(*args, **attrs) if direct else push(fn, args, attrs, mutates, ctx)
            except Exception as exc:
                raise _step_error(self.program, st, exc, args, self.ctx) from exc
            if len(outs) == 1:
                vals[outs[0]] = r[0] if type(r) is tuple else r
            else:
                for s, o in zip(outs, r):
                    vals[s] = o
            for s in free:
                vals[s] = None

    # an asynchronous engine: the whole program as one task ----------------------------
    #: the task's operator, the slots it reads and returns; None: not made yet, False:
    #: this program runs step by step (Python kernels would push from a worker)
    _as_task: Any = None

    def _task_op(self):
        """The operator the engine sees for the whole program: its results' shapes and
        dtypes, the sources it writes in place, views when a result may be a source's
        memory (a source itself, or a view op's output)."""
        from mxcore.op import Op
        program = self.program
        if any(st.op.python_kernel is not None for st in program.steps):
            self._as_task = False
            return False
        sources = [s for s in sorted(program.sources()) if s < program.nslots]
        results = list(dict.fromkeys(s for s in program.outputs if s is not None))
        position = {slot: i for i, slot in enumerate(sources)}
        mutated = tuple(sorted({position[call[1][i]] for call in self.calls
                                for i in call[6] if call[1][i] in position}))
        # outputs of view ops and of in-place writes may be a source's memory
        shared = {o for call in self.calls if call[8].op.views or call[6] for o in call[3]}
        views = any(r in position or r in shared for r in results)
        shapes = [tuple(program.shapes[r]) for r in results]
        dtypes = [program.dtypes[r] for r in results]
        op = Op(f"hybridized[{program.name}]", len(sources), len(results), views=views,
                mutates=mutated)
        op.def_infer(lambda s, d, a: (shapes, dtypes))
        self._as_task = (op, sources, results)
        return self._as_task

    def _run_as_task(self, eng, vals: List[Any], seeds) -> bool:
        """One engine task runs every step on the worker: the caller pushes once per
        call, not once per step.  Fresh seeds are drawn here, in the caller's order.
        False: this call goes step by step."""
        spec = self._as_task if self._as_task is not None else self._task_op()
        if spec is False:
            return False
        op, sources, results = spec
        if any(vals[s] is None for s in sources):  # an unused input left empty
            return False
        calls = []
        rng_used = False
        for fn, ins, attrs, outs, rng, reseed, mutates, free, st in self.calls:
            if reseed:  # seeds drawn here, in the caller's order
                attrs = dict(attrs, seed=_fresh_seed(seeds, attrs["seed"], self.ctx))
            rng_used = rng_used or rng
            calls.append((fn, ins, attrs, outs, rng, False, mutates, free, st))
        n, nslots = len(sources), self.nslots

        def task(*datas):
            local: List[Any] = [None] * nslots
            for slot, d in zip(sources, datas[:n]):
                local[slot] = d
            self._run_steps(_DIRECT, local, None, calls)
            return tuple(local[r] for r in results)
        task.mxcore_op = op  # the engine's operator for a kernel outside the registry
        args = [vals[s] for s in sources]
        if rng_used:  # the generator's state is written: the engine orders its users
            args.append(dispatch._generator(self.ctx))
        out = eng.push(task, args, {}, op.mutates, self.ctx)
        if len(results) == 1:
            out = (out,)
        for slot, o in zip(results, out):
            vals[slot] = o
        return True


class _Direct:
    """Runs each kernel where it is called: a plan's steps inside its one engine task."""

    @staticmethod
    def push(fn, args, attrs, mutates=(), device=None):
        return fn(*args, **attrs)


_DIRECT = _Direct()


def _fresh_seed(seeds, traced: int, ctx) -> int:
    if seeds is None:
        seeds = {}
    seed = seeds.get(traced)
    if seed is None:
        from mxcore.device import device_type
        seed = seeds[traced] = device_type(ctx).host_seed(ctx.index)
    return seed


def _step_error(program, st: Step, exc, args, ctx) -> MXCoreError:
    from mxcore.dispatch import _error
    err = _error(st.op, exc, [a for a in args if hasattr(a, "shape")], ctx, st.attrs)
    return MXCoreError(f"hybridized {program.name!r}, step {st.name}: {err}")


class Plan:
    """A traced block's forward (and backward) programs, compiled for one device."""

    def __init__(self, name: str, forward: Program, n_outputs: int, out_structure,
                 backward: Optional[Program], head_slots: Sequence[Optional[int]],
                 saved: Sequence[int], variables: Sequence[Tuple[str, Any]], ctx,
                 static_alloc: bool, raw_forward: Program, static_shape: bool = False):
        self.name = name
        self.forward = forward
        self.backward = backward
        self.raw_forward = raw_forward
        self.n_outputs = n_outputs
        self.out_structure = out_structure
        self.head_slots = list(head_slots)
        self.saved = list(saved)
        self.variables = list(variables)   # ("input", k) or ("param", Parameter)
        self.ctx = ctx
        self.backend = None
        self.static_alloc = static_alloc
        # MXCORE_GRAPH_DEBUG is read when the plan is built (once per traced signature)
        self._debugging = debug = _debug()
        self._fwd = Compiled(forward, ctx, static_alloc, free=not debug)
        self._bwd = Compiled(backward, ctx, static_alloc) if backward is not None else None
        self._consts: Optional[List[Tuple[int, Any]]] = None
        self._bwd_consts: Optional[List[Tuple[int, Any]]] = None
        self._whole: Optional[Program] = None      # forward + backward (Plan.build)
        self._whole_consts: Optional[List[Tuple[int, Any]]] = None
        self._step: Optional[_WholeStep] = None
        sources = forward.sources()
        self._copy = _copied(forward.outputs[:n_outputs], sources)
        self._op = self._tape_op() if backward is not None else None
        # tape inputs in variable order: ("input", k) -> inputs[k], ("param", p) ->
        # the k-th of the forward's parameters
        position = {id(p): k for k, (_, p) in enumerate(forward.params)}
        self._tape_map = [(kind == "input", k if kind == "input" else position[id(k)])
                          for kind, k in self.variables]
        # device-graph replay (static_alloc and static_shape, calls without a tape):
        # None = not tried yet, False = not possible here, else a _Captured
        self._graph: Any = None if static_alloc and static_shape and not any(
            "seed" in st.op.volatile_attrs for st in forward.steps) else False
        self._uncaptured_calls = 0

    #: MXNet's inline_limit: ``autograd.get_symbol`` shows a call of a plan with at most
    #: this many (unoptimised) steps, traced without static_alloc, as its ops rather than
    #: one _CachedOp node (the block sets it from ``hybridize(inline_limit=)``)
    inline_limit = 2

    def __len__(self) -> int:
        return len(self.forward.steps)

    # building ---------------------------------------------------------------------------
    @classmethod
    def build(cls, trace, out_slots: Sequence[Optional[int]], out_structure, ctx, *,
              training: bool, backward_from: Optional[int] = None,
              backward_slot: Optional[int] = None,
              head_slots: Sequence[Optional[int]] = (), grad_slots: Sequence[int] = (),
              variables: Sequence[Tuple[str, Any]] = (), static_alloc: bool = False,
              static_shape: bool = False, backend: Optional[str] = None) -> "Plan":
        """``backward_from``: the index of the first backward step in the trace (None
        when nothing is differentiated), ``backward_slot`` the first slot the backward
        made; ``head_slots``: the head-gradient slot of each non-None output (None for
        outputs that are not differentiable); ``grad_slots``: the gradient of each of
        ``variables``."""
        steps = [Step(op, ins, attrs, outs, dtype, name) for (op, ins, attrs, outs, dtype), name
                 in zip(trace.steps, trace.names)]
        nf = len(steps) if backward_from is None else backward_from
        first_bwd_slot = trace.nslots if backward_slot is None else backward_slot
        saved: List[int] = []
        if backward_from is not None:
            reads = [s for st in steps[nf:] for s in st.ins] + list(grad_slots)
            saved = list(dict.fromkeys(s for s in reads if s < first_bwd_slot))
        fconsts = [(s, v) for s, v in trace.constants if s < first_bwd_slot]
        bconsts = [(s, v) for s, v in trace.constants if s >= first_bwd_slot]
        raw = Program(trace.block_name, trace.nslots, list(trace.shapes), list(trace.dtypes),
                      trace.inputs, trace.params, fconsts, steps[:nf],
                      list(out_slots) + saved, training)
        chosen = _passes.pipeline(ctx.kind, training, backend)
        fwd = _passes.run(raw, ctx, chosen)
        bwd = None
        if backward_from is not None:
            moved = dict(zip(saved, fwd.outputs[len(out_slots):]))
            saved = list(dict.fromkeys(moved[s] for s in saved))
            braw = Program(trace.block_name + ".backward", trace.nslots, list(trace.shapes),
                           list(trace.dtypes), [s for s in head_slots if s is not None] + saved,
                           [], bconsts, steps[nf:], list(grad_slots), True)
            braw = braw.renamed({a: b for a, b in moved.items() if a != b})
            bwd = _passes.run(braw, ctx, _passes.pipeline(ctx.kind, True, backend))
        plan = cls(trace.block_name, fwd, len(out_slots), out_structure, bwd, head_slots,
                   saved, variables, ctx, static_alloc, raw, static_shape)
        plan.backend = backend
        if backward_from is not None:
            # forward and backward as one program, made when first asked for (a training
            # step traced as a whole: ``forward_backward``)
            plan._whole = Program(
                trace.block_name + ".step", trace.nslots, list(trace.shapes),
                list(trace.dtypes), list(trace.inputs) + [s for s in head_slots if s is not None],
                trace.params, list(trace.constants), steps, list(out_slots) + list(grad_slots),
                training)
        return plan

    # running ----------------------------------------------------------------------------
    def _constants(self, program: Program, which: str):
        cached = getattr(self, which)
        if cached is None:
            from mxcore.device import device_type
            dt = device_type(self.ctx)
            cached = [(slot, dt.from_host(self.ctx.index, np.ascontiguousarray(host))
                       if not dt.host_memory else np.array(host, copy=True))
                      for slot, host in program.constants]
            setattr(self, which, cached)
        return cached

    def run(self, inputs: Sequence[Any], ctx):
        """Outputs of the block for NDArray ``inputs`` (the non-None ones, in order)."""
        fwd = self.forward
        vals: List[Any] = [None] * fwd.nslots
        for slot, x in zip(fwd.inputs, inputs):
            vals[slot] = x._data
        params = [p.data(ctx) for _, p in fwd.params]
        for (slot, _), p in zip(fwd.params, params):
            vals[slot] = p._data
        consts = self._consts
        if consts is None:
            consts = self._constants(fwd, "_consts")
        for slot, arr in consts:
            vals[slot] = arr
        recording = self._op is not None and autograd.STATE.recording
        if self._graph is not False and not recording and not self._debugging:
            datas = self._replay(inputs, params)
            if datas is not None:
                return unflatten([None if d is None else wrap(d, ctx) for d in datas],
                                 self.out_structure)
        seeds: Dict[int, int] = {}
        if self._debugging:
            self._check(inputs, params, vals, seeds)
        else:
            self._fwd.run(vals, seeds)
        outs = []
        for k, s in enumerate(fwd.outputs[:self.n_outputs]):
            if s is None:
                outs.append(None)
                continue
            data = vals[s]
            if self._copy[k]:
                data = data.copy()
            outs.append(wrap(data, ctx))
        if recording:
            self._record(inputs, params, outs, vals, seeds)
        return unflatten(outs, self.out_structure)

    def forward_backward(self, inputs: Sequence[Any], head_grads: Sequence[Any], ctx):
        """What a call under ``record()`` and ``backward`` on its outputs do, in one call
        and without a tape: the outputs' device arrays (the non-None outputs, flat) and
        each of ``variables``' gradient (a device array, or None), for NDArray ``inputs``
        and device-array ``head_grads`` (one per differentiable output), and the ids of
        the arrays a gradient may be but must not be taken over as (the inputs, head
        gradients, parameters, constants and outputs: anything else is fresh).  The
        forward and backward steps run as one program (``_WholeStep``), with the same
        kernels and seeds as ``run`` and the tape node's rule (``mxcore.gluon.TrainStep``
        calls it each step)."""
        step = self._step
        if step is None:
            step = self._step = _WholeStep(self)
        vals, held = step.slots([x._data for x in inputs], head_grads,
                                [p.data(ctx)._data for _, p in step.params])
        step.compiled.run(vals, {})
        outs = []
        for s, copy in step.outputs:
            outs.append(vals[s].copy() if copy else vals[s])
            held.add(id(outs[-1]))
        return outs, [None if s is None else vals[s] for s in step.grads], held

    # device graphs ----------------------------------------------------------------------
    def _replay(self, inputs, params) -> Optional[List[Any]]:
        """The outputs' device arrays from a captured device graph (``static_alloc`` and
        ``static_shape``): the inputs are copied into the graph's input buffers, the graph
        replays, the outputs are copied out.  The first call runs normally (kernels are
        compiled outside the capture), the second captures; a parameter whose array was
        replaced (``set_data``) makes a new capture.  None: run the plan instead."""
        from mxcore.device import device_type
        datas = [p._data for p in params]
        g = self._graph
        if g is None or any(a is not b for a, b in zip(g.params, datas)):
            self._uncaptured_calls += 1
            if self._uncaptured_calls < 2:
                return None
            fwd = self.forward
            vals: List[Any] = [None] * fwd.nslots
            buffers = [x._data.copy() for x in inputs]
            for slot, buf in zip(fwd.inputs, buffers):
                vals[slot] = buf
            for (slot, _), d in zip(fwd.params, datas):
                vals[slot] = d
            for slot, arr in self._constants(fwd, "_consts"):
                vals[slot] = arr
            compiled = Compiled(fwd, self.ctx, static_alloc=True, free=False)
            replay = device_type(self.ctx).capture(self.ctx.index,
                                                   lambda: compiled.run(vals, None))
            if replay is None:
                self._graph = False
                return None
            self._graph = g = _Captured(replay, vals, buffers, datas)
            g.replay()  # the capture recorded the work; this runs it
        else:
            for buf, x in zip(g.inputs, inputs):
                buf[...] = x._data
            g.replay()
        return [None if s is None else g.vals[s].copy()
                for s in self.forward.outputs[:self.n_outputs]]

    # autograd ---------------------------------------------------------------------------
    def _record(self, inputs, params, outs, vals, seeds) -> None:
        tape_inputs = [inputs[k] if is_input else params[k] for is_input, k in self._tape_map]
        for x in tape_inputs:
            if x._ag is not None:
                break
        else:
            return
        live = [o for o in outs if o is not None]
        autograd.record_op(self._op, tape_inputs, live,
                           {"saved": [vals[s] for s in self.saved], "seeds": seeds,
                            # the outputs' shapes and dtypes, not the outputs: they point
                            # back at the tape node, and a cycle through ndarrays keeps
                            # the saved activations of every step until a full collection
                            "outs": [(o.shape, o._data.dtype) for o in live],
                            # for autograd.get_symbol: the call's arrays and the plan
                            "inputs": inputs, "params": params, "plan": self})

    def _tape_op(self):
        from mxcore.op import Op
        plan = self
        n_live = sum(1 for s in self.forward.outputs[:self.n_outputs] if s is not None)
        op = Op(f"hybridized[{self.name}]", len(self.variables), n_live)

        def rule(ctx, *grads):
            return plan._gradients(ctx.attrs, grads)
        op.def_grad(rule)
        return op

    def _gradients(self, attrs, grads):
        if autograd.STATE.recording:
            raise MXCoreError(
                f"hybridized block {self.name!r}: higher-order gradients (create_graph=True) "
                "through a hybridized block are not supported; call hybridize(False) on it")
        bwd = self.backward
        vals: List[Any] = [None] * bwd.nslots
        for slot, v in zip(self.saved, attrs["saved"]):
            vals[slot] = v
        for slot, g, (shape, dtype) in zip(self.head_slots, grads, attrs["outs"]):
            if slot is None:
                continue
            if g is None:
                from mxcore.device import device_type
                g = wrap(device_type(self.ctx).xp.zeros(shape, dtype), self.ctx)
            vals[slot] = g._data
        consts = self._bwd_consts
        if consts is None:
            consts = self._constants(bwd, "_bwd_consts")
        for slot, arr in consts:
            vals[slot] = arr
        self._bwd.run(vals, attrs["seeds"])
        return [None if s is None or vals[s] is None else wrap(vals[s], self.ctx)
                for s in bwd.outputs]

    # MXCORE_GRAPH_DEBUG -------------------------------------------------------------------
    def _check(self, inputs, params, vals, seeds) -> None:
        """Run the raw program op by op through eager dispatch and the compiled one; name
        the first step whose outputs differ."""
        from mxcore import autograd
        from mxcore.dispatch import invoke, invoke_nullary, wrap
        raw = self.raw_forward
        ref: List[Any] = [None] * raw.nslots
        for slot in raw.sources():
            if slot < len(vals):
                ref[slot] = vals[slot]
        self._fwd.run(vals, seeds)
        with autograd.pause(train_mode=autograd.STATE.training):
            for st in raw.steps:
                attrs = st.attrs
                if "seed" in st.op.volatile_attrs:
                    attrs = dict(attrs, seed=seeds.get(attrs["seed"], attrs["seed"]))
                if st.ins:
                    r = invoke(st.op, [wrap(ref[s], self.ctx) for s in st.ins], attrs)
                else:
                    r = invoke_nullary(st.op, self.ctx, attrs, st.dtype)
                rs = r if isinstance(r, tuple) else (r,)
                for s, o in zip(st.outs, rs):
                    ref[s] = o._data
        exact = not any(p.backend for p in _passes.pipeline(self.ctx.kind, raw.training,
                                                            self.backend))
        for st in self.forward.steps:
            for s in st.outs:
                if s >= len(ref) or ref[s] is None or vals[s] is None:
                    continue
                a = _host(vals[s], self.ctx)
                b = _host(ref[s], self.ctx)
                same = (a.shape == b.shape and (np.array_equal(a, b, equal_nan=True) if exact
                        else np.allclose(a, b, rtol=1e-4, atol=1e-5, equal_nan=True)))
                if not same:
                    diff = (float(np.nanmax(np.abs(a.astype(np.float64) - b.astype(np.float64))))
                            if a.shape == b.shape and a.size else float("nan"))
                    raise GraphDivergence(
                        f"MXCORE_GRAPH_DEBUG: hybridized {self.name!r}: step {st.name} "
                        f"(slot {s}, shape {a.shape}) differs from the eager result "
                        f"(max abs difference {diff:g}); passes run: "
                        f"{'; '.join(self.forward.notes) or 'none changed the program'}")


def _copied(outs, sources) -> List[bool]:
    """Which of the output slots ``outs`` must be copied: a source (input, parameter,
    constant) or a slot returned twice would otherwise share memory the caller may
    write."""
    return [s is not None and (s in sources or outs.index(s) != k)
            for k, s in enumerate(outs)]


class _WholeStep:
    """A plan's forward and backward as one program (``Plan.forward_backward``): traced
    together, they go through the passes together -- common subexpressions, fusion
    (a loss with its gradient) and memory planning see the whole step -- and run as
    one list of kernel calls.  Seeds are drawn once per call, the same for the
    forward's and the backward's dropout, as for a recorded call."""

    def __init__(self, plan: "Plan"):
        raw = plan._whole
        n_in = len(plan.forward.inputs)
        self.program = prog = _passes.run(raw, plan.ctx,
                                          _passes.pipeline(plan.ctx.kind, True, plan.backend))
        self.head_inputs = prog.inputs[n_in:]
        self.compiled = Compiled(prog, plan.ctx, plan.static_alloc)
        self.inputs = prog.inputs[:n_in]
        self.params = prog.params
        constants = plan._constants(prog, "_whole_consts")
        self.template: List[Any] = [None] * prog.nslots
        for slot, arr in constants:
            self.template[slot] = arr
        self.constant_ids = [id(arr) for _, arr in constants]
        outs = [s for s in prog.outputs[:plan.n_outputs] if s is not None]
        self.outputs = list(zip(outs, _copied(outs, prog.sources())))
        self.grads = prog.outputs[plan.n_outputs:]

    def slots(self, inputs, head_grads, params) -> Tuple[List[Any], set]:
        """The program's slots before it runs -- constants, the device arrays
        ``inputs`` and ``params`` (one per program parameter), ``head_grads`` -- and the
        ids of those arrays (a gradient must not be taken over as one)."""
        vals = list(self.template)  # constants filled in, every other slot empty
        held = set(self.constant_ids)
        for slots, arrays in ((self.inputs, inputs), (self.head_inputs, head_grads),
                              ([s for s, _ in self.params], params)):
            for slot, d in zip(slots, arrays):
                vals[slot] = d
                held.add(id(d))
        return vals, held


class _Captured:
    """A captured forward: its replay, its slots (the memory it reads and writes), its
    input buffers and the parameter arrays it was captured with."""

    __slots__ = ("replay", "vals", "inputs", "params")

    def __init__(self, replay, vals, inputs, params):
        self.replay, self.vals, self.inputs, self.params = replay, vals, inputs, params


def _host(data, ctx) -> np.ndarray:
    from mxcore.device import device_type
    dt = device_type(ctx)
    return np.asarray(data) if dt.host_memory else dt.to_host(ctx.index, data)
