"""Run the ONNX backend node tests through mxcore's ONNX importer.

The cases come from the generators shipped in the onnx wheel
(``onnx.backend.test.case.node.collect_testcases``): each is a one-node model (or the
node's function expanded into a graph, ``*_expanded``) with inputs and expected
outputs.  Each model is written to a file, imported with ``mx.onnx.import_model``,
run by mxcore on the CPU and compared with the expected outputs as the ONNX backend
compares them (``np.testing.assert_allclose`` with the case's rtol/atol, by default
1e-3 / 1e-7, and equal dtypes).

    python tools/onnx_node_tests.py                      # every case, a summary table
    python tools/onnx_node_tests.py -k relu -k conv -v   # cases whose name has a word
    python tools/onnx_node_tests.py --names test_abs,test_add --json out.json
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import sys
import tempfile
import time
import warnings
from typing import Any, Dict, List, Optional, Sequence

import numpy as np


def collect(names: Optional[Sequence[str]] = None, words: Sequence[str] = ()) -> List[Any]:
    """The node test cases (with a model), filtered by exact names or name words."""
    from onnx.backend.test.case import node as node_cases
    with warnings.catch_warnings():  # the generators overflow casts on purpose
        warnings.simplefilter("ignore")
        cases = [c for c in node_cases.collect_testcases(None) if c.model is not None]
    if names:
        wanted = set(names)
        cases = [c for c in cases if c.name in wanted]
    if words:
        cases = [c for c in cases if any(w in c.name for w in words)]
    return cases


def _op_type(case) -> str:
    nodes = case.model.graph.node
    if "_expanded" in case.name or len(nodes) != 1:
        return (nodes[-1].op_type if len(nodes) == 1 else _base_op(case)) + " (expanded)"
    return nodes[0].op_type


def _base_op(case) -> str:
    """The op an expanded case tests: its name without 'test_' and '_expanded...'."""
    return case.name[len("test_"):].split("_expanded")[0]


def _array(value):
    """numpy scalars (0-d cases) as arrays; other values (TensorProto of types numpy
    lacks, sequences, optionals) as they are."""
    return np.asarray(value) if isinstance(value, np.generic) else value


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def freeze_const_inputs(model, inputs: Sequence[np.ndarray]):
    """A copy of ``model`` whose graph inputs that feed an input the importer reads as
    a constant (``import_ops.CONST_INPUTS``: axes, shapes, pads, starts, k...), or an
    int64 input past a node's first, are initializers holding the case's values.

    mxcore's importer builds static graphs: such inputs must be constants, as they are
    in exported models.  A node whose every input would become constant is left
    alone (it would be folded at import rather than run by mxcore)."""
    from onnx import numpy_helper
    from mxcore.onnx.import_ops import CONST_INPUTS
    inits = {t.name for t in model.graph.initializer}
    names = [vi.name for vi in model.graph.input if vi.name not in inits]
    values = dict(zip(names, inputs))
    wanted = set()
    for node in model.graph.node:
        slots = CONST_INPUTS.get(node.op_type, ())
        # the slots read as constants, and int64 tensors past the data (shapes, axes
        # that expanded functions compute with)
        picks = {n for k, n in enumerate(node.input) if n in values
                 and isinstance(values[n], np.ndarray)
                 and (k in slots or (k >= 1 and values[n].dtype == np.int64))}
        if picks and any(n and n not in picks and n not in inits for n in node.input):
            wanted |= picks
    if not wanted:
        return model, inputs
    frozen = type(model)()
    frozen.CopyFrom(model)
    kept = [vi for vi in frozen.graph.input if vi.name not in wanted]
    del frozen.graph.input[:]
    frozen.graph.input.extend(kept)
    frozen.graph.initializer.extend(numpy_helper.from_array(values[n], n) for n in wanted)
    return frozen, [v for n, v in zip(names, inputs) if n not in wanted]


def run_case(case, workdir: str, timeout: int = 30, freeze: bool = True) -> Dict[str, Any]:
    """Import and run one case; ``{'name', 'op', 'status', 'detail'}`` where status is
    passed, import (not imported), run (import worked, running failed), mismatch."""
    import mxcore as mx
    from mxcore.onnx import importer
    result = {"name": case.name, "op": _op_type(case), "status": "passed", "detail": ""}
    path = os.path.join(workdir, f"{case.name}.onnx")
    model = case.model
    data_sets = [([_array(v) for v in ins], [_array(v) for v in outs])
                 for ins, outs in case.data_sets]
    if freeze and len(data_sets) == 1:
        model, frozen_inputs = freeze_const_inputs(model, data_sets[0][0])
        data_sets = [(frozen_inputs, data_sets[0][1])]
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    old = signal.signal(signal.SIGALRM, _alarm) if hasattr(signal, "SIGALRM") else None
    if old is not None:
        signal.alarm(timeout)
    stage = "import"
    try:
        sym, arg_params, aux_params = mx.onnx.import_model(path)
        stage = "run"
        inits = {t.name for t in model.graph.initializer}
        in_names = [vi.name for vi in model.graph.input if vi.name not in inits]
        for inputs, expected in data_sets:
            if any(not isinstance(v, np.ndarray) for v in list(inputs) + list(expected)):
                raise TypeError("inputs or outputs that are not tensors (sequences, "
                                "optionals)")
            feeds = dict(zip(in_names, inputs))
            used = set(sym.list_inputs())
            feeds = {k: v for k, v in feeds.items() if k in used}
            outs = importer.run(sym, arg_params, aux_params, feeds, mx.cpu())
            stage = "mismatch"
            if len(outs) != len(expected):
                raise AssertionError(f"{len(outs)} outputs, expected {len(expected)}")
            for k, (got, want) in enumerate(zip(outs, expected)):
                got = got.asnumpy()
                if got.dtype != want.dtype:
                    raise AssertionError(f"output {k}: dtype {got.dtype}, expected "
                                         f"{want.dtype}")
                np.testing.assert_allclose(got, want, rtol=case.rtol, atol=case.atol)
            stage = "run"
    except _Timeout:
        result.update(status=stage, detail=f"timed out after {timeout} s")
    except Exception as exc:  # noqa: BLE001 - every failure is a row of the table
        text = str(exc).replace(f"{path}: ", "").strip()
        result.update(status=stage, detail=f"{type(exc).__name__}: "
                                           f"{text.splitlines()[0][:300]}"
                      if text else type(exc).__name__)
    finally:
        if old is not None:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
        os.unlink(path)
    return result


def run_cases(cases, timeout: int = 30, verbose: bool = False,
              freeze: bool = True) -> List[Dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="mxcore-onnx-") as workdir:
        for case in cases:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")  # cases feed inf/nan on purpose
                r = run_case(case, workdir, timeout, freeze)
            results.append(r)
            if verbose:
                print(f"{r['status']:8s} {r['name']}  {r['detail']}", flush=True)
    return results


def summary(results: List[Dict[str, Any]]) -> Dict[str, Any]:
    total = len(results)
    imported = sum(r["status"] != "import" for r in results)
    passed = sum(r["status"] == "passed" for r in results)
    by_op: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in results:
        if r["status"] != "passed":
            by_op[r["op"]][r["status"]] += 1
    return {"total": total, "imported": imported, "passed": passed,
            "failures_by_op": {op: dict(c) for op, c in sorted(by_op.items())}}


def print_table(s: Dict[str, Any]) -> None:
    print(f"cases: {s['total']}   imported: {s['imported']}   passed: {s['passed']}")
    rows = s["failures_by_op"]
    if not rows:
        return
    print(f"\n{'failing op':38s} {'import':>7s} {'run':>5s} {'mismatch':>9s}")
    for op, c in sorted(rows.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])):
        print(f"{op:38s} {c.get('import', 0):7d} {c.get('run', 0):5d} "
              f"{c.get('mismatch', 0):9d}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-k", action="append", default=[], metavar="WORD",
                   help="only cases whose name contains WORD (repeatable)")
    p.add_argument("--names", help="comma-separated exact case names")
    p.add_argument("--json", metavar="FILE", help="write the summary and every result")
    p.add_argument("--timeout", type=int, default=30, help="seconds per case")
    p.add_argument("-v", "--verbose", action="store_true", help="one line per case")
    p.add_argument("--no-freeze", action="store_true",
                   help="keep inputs such as axes, shapes and pads as graph inputs (the "
                        "importer then rejects them: it reads them as constants)")
    args = p.parse_args(argv)
    os.environ.setdefault("MXCORE_DEVICE", "cpu")
    names = [n for n in (args.names or "").split(",") if n]
    start = time.time()
    results = run_cases(collect(names, args.k), args.timeout, args.verbose,
                        not args.no_freeze)
    s = summary(results)
    s["frozen_const_inputs"] = not args.no_freeze
    print_table(s)
    print(f"\n({time.time() - start:.0f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": s, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
