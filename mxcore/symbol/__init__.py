"""``mx.sym`` / ``mx.symbol``: every op of ``mx.nd`` by the same name, on symbols."""
from mxcore.symbol.symbol import (Group, Symbol, Variable, full, fromjson, load, load_json,  # noqa: F401
                                  maximum, minimum, ones, pow, power, var, zeros)
from mxcore.symbol import contrib, image, linalg, random  # noqa: E402,F401


def __getattr__(name: str):
    """``mx.sym.FullyConnected`` ...: the op functions of ``mx.nd``, recording nodes."""
    if name.startswith("__"):
        raise AttributeError(name)
    from mxcore.graph.functions import UnknownGraphOpError
    from mxcore.symbol.symbol import op_maker
    try:
        return op_maker(name)
    except UnknownGraphOpError:
        raise AttributeError(f"module 'mxcore.symbol' has no attribute {name!r}") from None
