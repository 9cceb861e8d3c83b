"""``mx.sym.contrib``: the ops of ``mx.nd.contrib`` on symbols."""
from mxcore.symbol._namespace import namespace_getattr


def __getattr__(name: str):
    return namespace_getattr("contrib", "_contrib_", name)
