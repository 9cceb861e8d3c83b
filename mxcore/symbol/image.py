"""``mx.sym.image``: the ops of ``mx.nd.image`` on symbols."""
from mxcore.symbol._namespace import namespace_getattr


def __getattr__(name: str):
    return namespace_getattr("image", "_image_", name)
