"""A traced graph of core-op calls: what hybridize optimises and replays.

A :class:`Program` is a graph in static single-assignment form: every value is a
numbered *slot* (a graph input, a parameter, a constant or an op output) that is
written once, and every :class:`Step` calls one core op (an ``mxcore.op.Op``, with the
attributes its rules take) on slots and writes new slots.  The steps are in an order
that computes every slot before it is read.  Each slot knows its shape and dtype (the
trace ran the ops' rules), which is all passes and the executor need.

Passes (``mxcore.graph.passes``) are functions Program -> Program; they never change
a Program, they make a new one.  ``outputs`` lists the slots the caller receives;
anything not reachable from them and free of side effects is dead.

A Program is versioned (``VERSION``) so passes written against another layout can
refuse it rather than misread it.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

#: layout version of Program and Step (passes may check it)
VERSION = 1


class Step:
    """One op call: ``outs = op(*ins, **attrs)``; ``dtype`` is the output dtype of an
    op without array inputs (creation, random); ``name`` says where it comes from
    (``block path:op``), for error messages and ``MXCORE_GRAPH_DEBUG``."""

    __slots__ = ("op", "ins", "attrs", "outs", "dtype", "name")

    def __init__(self, op, ins: Sequence[int], attrs: Dict[str, Any], outs: Sequence[int],
                 dtype=None, name: str = ""):
        self.op = op
        self.ins = tuple(ins)
        self.attrs = attrs
        self.outs = tuple(outs)
        self.dtype = dtype
        self.name = name or op.name

    def replace(self, **changes) -> "Step":
        kw = {k: getattr(self, k) for k in self.__slots__}
        kw.update(changes)
        return Step(**kw)

    @property
    def mutating(self) -> Tuple[int, ...]:
        """Indices of inputs the op writes in place."""
        m = self.op.mutates
        return tuple(m(self.attrs) if callable(m) else m)

    @property
    def pure(self) -> bool:
        """Same inputs and attributes give the same outputs, and nothing else changes
        (never assumed of Python code: custom ops)."""
        op = self.op
        return not (op.needs_rng or self.mutating or "seed" in op.volatile_attrs
                    or op.python_kernel is not None)

    def __repr__(self) -> str:
        return f"<Step {self.op.name} {list(self.ins)} -> {list(self.outs)}>"


class Program:
    """Slots, the steps between them, and which slots go in and come out."""

    def __init__(self, name: str, nslots: int, shapes: List[Tuple[int, ...]], dtypes: List[Any],
                 inputs: Sequence[int], params: Sequence[Tuple[int, Any]],
                 constants: Sequence[Tuple[int, Any]], steps: Sequence[Step],
                 outputs: Sequence[Optional[int]], training: bool = False):
        self.name = name
        self.nslots = nslots
        self.shapes = shapes
        self.dtypes = dtypes
        self.inputs = list(inputs)
        self.params = list(params)          # (slot, Parameter)
        self.constants = list(constants)    # (slot, host numpy array)
        self.steps = list(steps)
        self.outputs = list(outputs)        # None: an output the caller gets as None
        self.training = training            # traced in training mode (dropout, BatchNorm)
        self.version = VERSION
        self.free_after: Optional[List[Tuple[int, ...]]] = None  # memory plan, per step
        self.notes: List[str] = []          # what each pass did, for MXCORE_GRAPH_DEBUG

    def replace(self, **changes) -> "Program":
        """A copy with some fields changed (the memory plan is dropped unless given)."""
        new = Program(self.name, self.nslots, self.shapes, self.dtypes, self.inputs,
                      self.params, self.constants, self.steps, self.outputs, self.training)
        new.notes = list(self.notes)
        for k, v in changes.items():
            setattr(new, k, v)
        return new

    # slots -------------------------------------------------------------------------------
    def new_slot(self, shape, dtype) -> int:
        """A fresh slot (passes that add values call this on the Program they build)."""
        self.shapes = list(self.shapes) + [tuple(shape)]
        self.dtypes = list(self.dtypes) + [dtype]
        self.nslots += 1
        return self.nslots - 1

    def sources(self) -> set:
        """Slots that hold values before the first step: inputs, parameters, constants."""
        return (set(self.inputs) | {s for s, _ in self.params}
                | {s for s, _ in self.constants})

    def producers(self) -> Dict[int, Tuple[int, int]]:
        """slot -> (step index, output index)."""
        return {s: (i, k) for i, st in enumerate(self.steps) for k, s in enumerate(st.outs)}

    def readers(self) -> Dict[int, List[int]]:
        """slot -> indices of the steps that read it."""
        out: Dict[int, List[int]] = {}
        for i, st in enumerate(self.steps):
            for s in st.ins:
                out.setdefault(s, []).append(i)
        return out

    def nbytes(self, slot: int) -> int:
        import numpy as np
        return int(np.prod(self.shapes[slot], dtype=np.int64)) * np.dtype(self.dtypes[slot]).itemsize

    def renamed(self, alias: Dict[int, int]) -> "Program":
        """Every read of slot ``a`` made a read of ``alias[a]`` (chains followed)."""
        if not alias:
            return self

        def find(s):
            while s in alias:
                s = alias[s]
            return s
        steps = [st.replace(ins=tuple(find(s) for s in st.ins)) if any(s in alias for s in st.ins)
                 else st for st in self.steps]
        outputs = [None if s is None else find(s) for s in self.outputs]
        return self.replace(steps=steps, outputs=outputs)

    def text(self) -> str:
        """The program, one line per step (for debugging and error messages)."""
        lines = [f"program {self.name}: inputs {self.inputs}, "
                 f"params {[(s, getattr(p, 'name', p)) for s, p in self.params]}, "
                 f"constants {[s for s, _ in self.constants]}"]
        for i, st in enumerate(self.steps):
            attrs = {k: v for k, v in st.attrs.items() if k != "chain"}
            lines.append(f"  {i:3d}: {list(st.outs)} = {st.op.name}{list(st.ins)} {attrs}"
                         f"  # {st.name}")
        lines.append(f"  outputs {self.outputs}")
        return "\n".join(lines)

    def __len__(self) -> int:
        return len(self.steps)


def live_steps(program: Program, roots: Iterable[int]) -> List[bool]:
    """Which steps contribute to ``roots`` or have side effects (write in place)."""
    producers = program.producers()
    keep = [bool(st.mutating) for st in program.steps]
    stack = [s for s in roots if s is not None]
    stack += [s for i, st in enumerate(program.steps) if keep[i] for s in st.ins]
    seen = set()
    while stack:
        s = stack.pop()
        if s in seen:
            continue
        seen.add(s)
        p = producers.get(s)
        if p is None:
            continue
        i = p[0]
        if not keep[i]:
            keep[i] = True
        stack.extend(program.steps[i].ins)
    return keep
