"""Sub-namespaces of ``mx.sym`` (random, contrib, linalg) that mirror ``mx.nd``'s."""
from __future__ import annotations

from typing import Callable


def namespace_getattr(module_name: str, prefix: str, attr: str) -> Callable:
    """``mx.sym.<module>.<attr>``: records a node of the op MXNet names ``<prefix><attr>``
    (``_random_uniform``, ``_contrib_isfinite``, ``_linalg_gemm2``)."""
    from mxcore.graph.functions import UnknownGraphOpError
    from mxcore.symbol.symbol import op_maker
    if attr.startswith("__"):
        raise AttributeError(attr)
    try:
        return op_maker(prefix + attr)
    except UnknownGraphOpError:
        raise AttributeError(f"module 'mxcore.symbol.{module_name}' has no attribute "
                             f"{attr!r}") from None
