"""mxcore-example-ops: an operator plugin for mxcore.

    import mxcore as mx
    import mxcore_example_ops as ex

    ex.squared_difference(a, b)          # or mx.nd.squared_difference(a, b)
    ex.logsumexp(x, axis=-1)             # or mx.nd.logsumexp(x, axis=-1)
    ex.huber(x, delta=1.0)               # or mx.nd.huber(x, delta=1.0)

mxcore registers the ops through the ``example_ops`` entry point; importing this
package only gives the functions.
"""
from mxcore_example_ops.ops import huber, logsumexp, squared_difference

__all__ = ["squared_difference", "logsumexp", "huber"]
__version__ = "0.1.0"
