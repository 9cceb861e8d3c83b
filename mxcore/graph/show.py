"""Text and Graphviz renderings of a graph (``mxcore graph show``), with inferred
shapes and dtypes when input shapes are given."""
from __future__ import annotations

from typing import Dict, List, Tuple

from mxcore.graph import infer as _infer
from mxcore.graph.ir import attr_to_str, topological


def _infer_or_nothing(sym, shapes):
    if not shapes:
        return {}, {}
    return _infer.infer(sym._outputs, shapes, {})


def _out_desc(node, i, out_shape, out_dtype) -> str:
    s = out_shape.get((id(node), i))
    if s is None:
        return ""
    return f" {tuple(s)} {out_dtype.get((id(node), i)) or ''}".rstrip()


def to_text(sym, shapes: Dict[str, Tuple[int, ...]]) -> str:
    """One line per node: index, op, name, attributes, inputs, output shapes."""
    out_shape, out_dtype = _infer_or_nothing(sym, shapes)
    order = topological(sym._outputs)
    index = {id(n): k for k, n in enumerate(order)}
    lines: List[str] = []
    for k, node in enumerate(order):
        outs = "".join(_out_desc(node, i, out_shape, out_dtype) for i in range(node.nout))
        if node.is_variable:
            lines.append(f"{k:4d}  var  {node.name}{outs}")
            continue
        attrs = ", ".join(f"{a}={attr_to_str(v)}" for a, v in node.call_attrs().items())
        ins = ", ".join(f"#{index[id(src)]}" + (f"[{i}]" if src.nout > 1 else "")
                        for src, i in node.inputs)
        lines.append(f"{k:4d}  {node.op}  {node.name}({ins})"
                     + (f"  {{{attrs}}}" if attrs else "") + (f"  ->{outs}" if outs else ""))
    heads = ", ".join(f"#{index[id(n)]}" + (f"[{i}]" if n.nout > 1 else "")
                      for n, i in sym._outputs)
    lines.append(f"outputs: {heads}")
    return "\n".join(lines)


def _quote(text: str) -> str:
    """A dot string literal (newlines become dot's line breaks)."""
    body = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + body + '"'


def to_dot(sym, shapes: Dict[str, Tuple[int, ...]]) -> str:
    """A Graphviz digraph: variables as ellipses, ops as boxes, edges with shapes."""
    out_shape, out_dtype = _infer_or_nothing(sym, shapes)
    order = topological(sym._outputs)
    lines = ["digraph mxcore {", "  node [fontname=Helvetica];"]
    for k, node in enumerate(order):
        if node.is_variable:
            lines.append(f"  n{k} [shape=ellipse, label={_quote(node.name)}];")
        else:
            lines.append(f"  n{k} [shape=box, label={_quote(node.op + chr(10) + node.name)}];")
    index = {id(n): k for k, n in enumerate(order)}
    for k, node in enumerate(order):
        for src, i in node.inputs:
            desc = _out_desc(src, i, out_shape, out_dtype).strip()
            label = f" [label={_quote(desc)}]" if desc else ""
            lines.append(f"  n{index[id(src)]} -> n{k}{label};")
    lines.append("}")
    return "\n".join(lines)
