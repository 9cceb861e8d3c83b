"""The core's import direction (docs/architecture.md, "Layers"): every module belongs
to one layer; a module-level import never reaches a higher layer and module-level
imports form no cycle; the few calls up (late imports inside functions) are listed
below, each with its reason, and the list is kept exact."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: lowest first; a module belongs to the layer of its longest matching prefix
LAYERS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("foundation", ("mxcore.base", "mxcore.op", "mxcore.ops.rules", "mxcore.ops.fused",
                    "mxcore.engine")),
    ("devices", ("mxcore.device", "mxcore.context", "mxcore.registry", "mxcore.plugins",
                 "mxcore.autotune", "mxcore.util")),
    ("array", ("mxcore.array", "mxcore.autograd")),
    ("dispatch", ("mxcore.dispatch", "mxcore.threaded_engine")),
    ("ops", ("mxcore.ops",)),
    ("compiler", ("mxcore.graph.trace", "mxcore.graph.program", "mxcore.graph.passes",
                  "mxcore.graph.plan")),
    ("front ends", ("mxcore.ndarray", "mxcore.symbol", "mxcore.graph", "mxcore.random",
                    "mxcore.serialization", "mxcore.mxnet_params", "mxcore.numpy",
                    "mxcore.name", "mxcore.attribute", "mxcore.graph.passes.symbol_cse")),
    ("libraries", ("mxcore",)),  # gluon, optimizer, module, io, onnx, cli, ...
)

#: (module, late-imported module): calls from a layer to a higher one, with the reason
UPWARD_CALLS: Dict[Tuple[str, str], str] = {
    ("mxcore.autograd", "mxcore.graph.tape_symbol"):
        "autograd.get_symbol (MXNet's API) returns the recorded graph as a Symbol",
    ("mxcore.autotune", "mxcore.serialization"):
        "the tuning cache is written atomically with serialization's atomic_path",
    ("mxcore.engine", "mxcore.threaded_engine"):
        "MXCORE_ENGINE=threaded / set_engine('threaded') load the threaded engine, which "
        "needs the registry (each kernel's operator) and dispatch's error messages",
}


def _modules() -> Dict[str, Path]:
    out = {}
    for path in sorted((ROOT / "mxcore").rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[name[:-len(".__init__")] if name.endswith(".__init__") else name] = path
    return out


MODULES = _modules()


def _layer(module: str) -> int:
    matches = [(len(p), i) for i, (_, prefixes) in enumerate(LAYERS) for p in prefixes
               if module == p or module.startswith(p + ".")]
    assert matches, f"{module} is in no layer"
    return max(matches)[1]


def _targets(module: str, node, is_package: bool):
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module
        names = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in MODULES else prefix
                 for a in node.names]
    return [n for n in names if n in MODULES]


def _imports() -> Dict[str, Tuple[Set[str], Set[str]]]:
    """module -> (module-level imports, late imports inside functions)."""
    out = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        top, late = set(), set()
        body = set()
        for stmt in tree.body:  # module level, also under if/try
            stack = [stmt]
            while stack:
                s = stack.pop()
                if isinstance(s, (ast.Import, ast.ImportFrom)):
                    body.add(id(s))
                elif isinstance(s, (ast.If, ast.Try)):
                    stack.extend(s.body + s.orelse + getattr(s, "finalbody", [])
                                 + [x for h in getattr(s, "handlers", []) for x in h.body])
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets = _targets(module, node, path.name == "__init__.py")
                (top if id(node) in body else late).update(t for t in targets if t != module)
        out[module] = (top, late)
    return out


IMPORTS = _imports()


def test_every_module_has_a_layer():
    for module in MODULES:
        _layer(module)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) < len(LAYERS) - 1))
def test_module_level_imports_point_down(module):
    """The root package (the facade that imports everything) is the top layer's."""
    up = sorted(t for t in IMPORTS[module][0] if _layer(t) > _layer(module))
    assert not up, f"{module} ({LAYERS[_layer(module)][0]}) imports higher layers: {up}"


def test_module_level_imports_form_no_cycle():
    """Among all mxcore modules, except imports of the root package ``mxcore`` itself
    (MXNet-style helpers such as test_utils take ``mx`` from it)."""
    graph = {m: {t for t in top if t != "mxcore"} for m, (top, _) in IMPORTS.items()}
    state: Dict[str, int] = {}

    def visit(m, path):
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(t):] + [t]))
            if t not in state:
                visit(t, path + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_calls_up_are_the_listed_ones():
    found = {(m, t) for m, (_, late) in IMPORTS.items() for t in late
             if _layer(m) < len(LAYERS) - 1 and _layer(t) > _layer(m)}
    assert found - set(UPWARD_CALLS) == set(), "unlisted late imports of a higher layer"
    assert set(UPWARD_CALLS) - found == set(), "listed calls up that no longer exist"


def test_the_checker_sees_a_cycle_and_an_upward_import(tmp_path):
    """The checks above can fail: a made-up import from dispatch to the ndarray front
    end is an upward import and closes a cycle."""
    saved = {m: (set(t), set(la)) for m, (t, la) in IMPORTS.items()}
    try:
        IMPORTS["mxcore.dispatch"][0].add("mxcore.ndarray.ndarray")
        with pytest.raises(AssertionError, match="imports higher layers"):
            test_module_level_imports_point_down("mxcore.dispatch")
        with pytest.raises(AssertionError, match="import cycle"):
            test_module_level_imports_form_no_cycle()
        IMPORTS["mxcore.dispatch"][1].add("mxcore.graph.plan")
        with pytest.raises(AssertionError, match="unlisted"):
            test_calls_up_are_the_listed_ones()
    finally:
        IMPORTS.clear()
        IMPORTS.update(saved)
