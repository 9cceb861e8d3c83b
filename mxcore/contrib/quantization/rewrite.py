"""The quantization pass on MXNet-name graphs (``mxcore.graph.ir``), as MXNet 1.x's
``QuantizeGraph`` and ``SetCalibTableToQuantizedGraph`` rewrite them.

Each quantizable node (:data:`QUANTIZABLE`) not excluded becomes ``quantized_<name>``
(a ``_contrib_quantized_*`` op taking its inputs' integer data, then a min and max per
input).  A float input is quantized by a ``_contrib_quantize_v2`` node named
``<input node><_output name>_quantize`` (``data_quantize``, ``pool0_output_quantize``),
shared by every user; an input that is a model parameter is quantized offline instead:
the variables ``<param>_quantize``, ``<param>_quantize_min`` and ``<param>_quantize_max``
(:func:`quantize_params` fills them).  A layer whose product is int32 (FullyConnected,
Convolution) is followed by ``requantize_<name>``, so chains of quantized layers pass
int8; a float consumer, and each graph output, reads ``<name>_dequantize``.

Calibration ranges are keyed by the float graph's output names (``data``,
``fc1_output``): a ``quantize_v2`` node takes its input's, a ``requantize`` node the
output of the layer it follows.  ``smart`` mode keeps only the support ops (pooling,
flatten, relu) that lie between two quantized layers of must-quantize ops.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from mxcore.graph import op_names
from mxcore.graph.ir import Node, Output, topological

QUANTIZED_DTYPES = ("int8", "uint8", "auto")
QUANTIZE_MODES = ("full", "smart")


class Rule(NamedTuple):
    """How a float op is quantized."""
    op: str                        #: the quantized op
    requantize: bool               #: its output is int32 (a requantize follows)
    must: bool                     #: MXNet's kMust (else kSupport: 'smart' may skip it)
    inputs: int                    #: how many leading inputs are quantized (-1: all)
    applies: Callable[[Dict[str, Any]], bool]  #: which attributes it can take


def _channel_first(a) -> bool:
    layout = a.get("layout")
    return layout in (None, "None", "NCW", "NCHW", "NCDHW")


def _pool_ok(a) -> bool:
    return str(a.get("pool_type", "max")) in ("max", "avg") and _channel_first(a) and \
        str(a.get("pooling_convention", "valid")) in ("valid", "full")


#: float op -> its quantization rule
QUANTIZABLE: Dict[str, Rule] = {
    "FullyConnected": Rule("_contrib_quantized_fully_connected", True, True, -1,
                           lambda a: a.get("act_type") in (None, "None")),
    "Convolution": Rule("_contrib_quantized_conv", True, True, -1, _channel_first),
    "Pooling": Rule("_contrib_quantized_pooling", False, False, 1, _pool_ok),
    "Flatten": Rule("_contrib_quantized_flatten", False, False, 1, lambda a: True),
    "flatten": Rule("_contrib_quantized_flatten", False, False, 1, lambda a: True),
    "Activation": Rule("_contrib_quantized_act", False, False, 1,
                       lambda a: str(a.get("act_type")) == "relu"),
}


def output_name(node: Node, index: int) -> str:
    """The name of a node's output as MXNet lists it (``data``, ``fc1_output``)."""
    return node.name if node.is_variable else op_names.list_output_name(node, index)


def _marked(order: List[Node], excluded_names: set, excluded_ops: set,
            mode: str) -> Dict[int, Rule]:
    """The nodes to quantize (by id), MXNet's MarkQuantizedNodes."""
    rules: Dict[int, Rule] = {}
    for node in order:
        rule = None if node.is_variable else QUANTIZABLE.get(node.op)
        if rule is None or not rule.applies(node.attrs):
            continue
        if node.name in excluded_names or node.op in excluded_ops:
            continue
        rules[id(node)] = rule
    if mode == "full":
        return rules
    # smart: a support op stays quantized only when a must-quantize op reaches it from
    # both sides (it then sits inside an int8 chain)
    users: Dict[int, List[Node]] = {}
    for node in order:
        for src, _ in node.inputs:
            users.setdefault(id(src), []).append(node)
    flags = {i: 0 for i, r in rules.items() if not r.must}
    for bit, step in ((1, lambda n: [s for s, _ in n.inputs]),
                      (2, lambda n: users.get(id(n), []))):
        queue = deque(n for n in order if id(n) in rules and rules[id(n)].must)
        while queue:
            for nxt in step(queue.popleft()):
                if id(nxt) in flags and not flags[id(nxt)] & bit:
                    flags[id(nxt)] |= bit
                    queue.append(nxt)
    for i, f in flags.items():
        if f != 3:
            del rules[i]
    return rules


def quantize_symbol(heads: Sequence[Output], excluded_sym_names: Iterable[str] = (),
                    excluded_op_names: Iterable[str] = (),
                    offline_params: Iterable[str] = (), quantized_dtype: str = "int8",
                    quantize_mode: str = "smart",
                    quantize_granularity: str = "tensor-wise"
                    ) -> Tuple[List[Output], List[str]]:
    """The quantized graph of ``heads`` and the output names it wants calibrated."""
    if quantized_dtype not in QUANTIZED_DTYPES:
        raise ValueError(f"unknown quantized_dtype {quantized_dtype!r}, expected "
                         "'int8', 'uint8' or 'auto'")
    if quantize_granularity != "tensor-wise":
        raise ValueError(f"quantize_granularity {quantize_granularity!r}: only "
                         "'tensor-wise' is provided")
    if quantize_mode not in QUANTIZE_MODES:
        raise ValueError(f"unknown quantize_mode {quantize_mode!r}, expected 'full' or "
                         "'smart'")
    order = topological(heads)
    rules = _marked(order, set(excluded_sym_names), set(excluded_op_names), quantize_mode)
    offline = set(offline_params)
    mirror: Dict[int, Node] = {}
    quantized: Dict[Tuple[int, int], Tuple[Output, Output, Output]] = {}
    dequantized: Dict[int, Node] = {}
    calib: List[str] = []

    def triple(node: Node) -> Tuple[Output, Output, Output]:
        m = mirror[id(node)]
        return (m, 0), (m, 1), (m, 2)

    def quantize_input(src: Node, i: int):
        key = (id(src), i)
        if key in quantized:
            return quantized[key]
        if src.is_variable:
            name = f"{src.name}_quantize"
        else:
            name = f"{output_name(src, i)}_quantize"
        if src.is_variable and src.name in offline:
            # int8 values and float32 ranges, declared so loaders give them those dtypes
            entry = tuple((Node(None, n, {"__dtype__": dt}), 0) for n, dt in (
                (name, "int8"), (f"{name}_min", "float32"), (f"{name}_max", "float32")))
        else:
            q = Node("_contrib_quantize_v2", name, {"out_type": quantized_dtype},
                     [(mirror[id(src)], i)], 3)
            entry = ((q, 0), (q, 1), (q, 2))
            calib.append(output_name(src, i))
        quantized[key] = entry
        return entry

    def dequantize(src: Node) -> Node:
        if id(src) not in dequantized:
            dequantized[id(src)] = Node("_contrib_dequantize", f"{src.name}_dequantize", {},
                                        triple(src), 1)
        return dequantized[id(src)]

    for node in order:
        if node.is_variable:
            mirror[id(node)] = Node(None, node.name, node.attrs)
            continue
        rule = rules.get(id(node))
        if rule is None:
            inputs = [(dequantize(src), 0) if id(src) in rules else (mirror[id(src)], i)
                      for src, i in node.inputs]
            mirror[id(node)] = Node(node.op, node.name, node.attrs, inputs, node.nout)
            continue
        count = len(node.inputs) if rule.inputs < 0 else rule.inputs
        entries = [triple(src) if id(src) in rules else quantize_input(src, i)
                   for src, i in node.inputs[:count]]
        inputs = [e[0] for e in entries] + [r for e in entries for r in e[1:]]
        qnode = Node(rule.op, f"quantized_{node.name}", node.attrs, inputs, 3)
        if rule.requantize:
            qnode = Node("_contrib_requantize", f"requantize_{node.name}",
                         {"out_type": quantized_dtype}, [(qnode, 0), (qnode, 1), (qnode, 2)], 3)
            calib.append(output_name(node, 0))
        mirror[id(node)] = qnode
    out = [(dequantize(n), 0) if id(n) in rules else (mirror[id(n)], i) for n, i in heads]
    return out, list(dict.fromkeys(calib))


def calib_key(node: Node) -> Optional[str]:
    """The float output whose range calibrates ``node`` (a quantize_v2 or requantize
    node), as MXNet's SetCalibTableToQuantizedGraph finds it."""
    if node.op == "_contrib_quantize_v2":
        src, i = node.inputs[0]
        return output_name(src, i)
    if node.op == "_contrib_requantize":
        src, i = node.inputs[0]
        name = output_name(src, i)
        return name[len("quantized_"):] if name.startswith("quantized_") else name
    return None


def set_calib_table(heads: Sequence[Output],
                    th_dict: Dict[str, Tuple[float, float]]) -> List[Output]:
    """A copy of the graph whose quantize_v2/requantize nodes carry their calibrated
    ranges (``min_calib_range``/``max_calib_range``)."""
    def attrs(node: Node) -> Dict[str, Any]:
        key = calib_key(node)
        if key is None or key not in th_dict:
            return node.attrs
        lo, hi = th_dict[key]
        return {**node.attrs, "min_calib_range": float(lo), "max_calib_range": float(hi)}
    return rebuild(heads, attrs)


def rebuild(heads: Sequence[Output], attrs_of: Callable[[Node], Dict[str, Any]]) -> List[Output]:
    """A copy of the graph with each op node's attributes given by ``attrs_of``."""
    copies: Dict[int, Node] = {}
    for node in topological(heads):
        if node.is_variable:
            copies[id(node)] = Node(None, node.name, node.attrs)
        else:
            copies[id(node)] = Node(node.op, node.name, attrs_of(node),
                                    [(copies[id(s)], i) for s, i in node.inputs], node.nout)
    return [(copies[id(n)], i) for n, i in heads]


def quantize_params(heads: Sequence[Output], params: Dict[str, Any]) -> Dict[str, Any]:
    """The parameters of the quantized graph: ``<p>_quantize`` (int8, symmetric over
    the parameter's own min and max, as MXNet's ``_quantize_params``) with its
    ``_min``/``_max``, and every other parameter the graph still reads, as given."""
    from mxcore import ndarray as nd
    names = [n.name for n in topological(heads) if n.is_variable]
    out: Dict[str, Any] = {}
    for name in names:
        if name.endswith("_quantize") and name[:-len("_quantize")] in params:
            value = params[name[:-len("_quantize")]]
            q, lo, hi = nd.contrib.quantize(value, nd.min(value).reshape((1,)),
                                            nd.max(value).reshape((1,)), out_type="int8")
            out[name], out[f"{name}_min"], out[f"{name}_max"] = q, lo, hi
        elif name in params:
            out[name] = params[name]
    return out


__all__ = ["QUANTIZABLE", "quantize_symbol", "set_calib_table", "quantize_params",
           "calib_key", "output_name", "rebuild"]
