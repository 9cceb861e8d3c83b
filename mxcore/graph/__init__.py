"""The graph protocol: the IR (``ir``), op metadata graphs need (``opinfo``), shape and
dtype inference (``infer``), and the executor (``executor``).  ``mx.sym`` builds graphs;
``docs/architecture.md`` describes the layers."""
from mxcore.graph.ir import GraphFormatError, Node, from_json, to_json, topological  # noqa: F401
