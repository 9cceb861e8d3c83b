"""``mx.sym.linalg``: the ops of ``mx.nd.linalg`` on symbols."""
from mxcore.symbol._namespace import namespace_getattr


def __getattr__(name: str):
    return namespace_getattr("linalg", "_linalg_", name)
