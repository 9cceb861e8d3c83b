"""``mx.operator``: custom operators written in Python, with MXNet 1.x's API.

Subclass ``CustomOp`` (``forward``/``backward``, writing results through
``self.assign(dst, req, src)``) and ``CustomOpProp`` (inputs, outputs, auxiliary
states, shape/dtype rules, ``create_operator``), register the prop under a name, and
call it as ``mx.nd.Custom(*inputs, op_type=name, **params)`` or
``mx.sym.Custom(..., op_type=name)``::

    class Square(mx.operator.CustomOp):
        def forward(self, is_train, req, in_data, out_data, aux):
            self.assign(out_data[0], req[0], in_data[0] * in_data[0])

        def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
            self.assign(in_grad[0], req[0], 2 * in_data[0] * out_grad[0])

    @mx.operator.register("square")
    class SquareProp(mx.operator.CustomOpProp):
        def create_operator(self, ctx, shapes, dtypes):
            return Square()

Params reach the prop's ``__init__`` as strings, as in MXNet.  The operator runs on
the inputs' device (its code uses ``mx.nd``), records in autograd, and stays one node
in Symbol graphs and hybridized blocks (``mxcore/ops/custom.py``).
"""
from __future__ import annotations

from typing import Callable, List, Type

from mxcore.base import MXCoreError
from mxcore.ops.custom import PROPS, CustomOp, CustomOpProp, register_prop


def register(reg_name: str) -> Callable[[Type[CustomOpProp]], Type[CustomOpProp]]:
    """Class decorator: register a ``CustomOpProp`` subclass as ``reg_name``
    (registering a name again replaces the earlier prop, as in MXNet)."""
    def do_register(prop_cls: Type[CustomOpProp]) -> Type[CustomOpProp]:
        register_prop(reg_name, prop_cls)
        return prop_cls
    return do_register


def get_all_registered_operators() -> List[str]:
    """The names of every operator mxcore knows: the core's and the plugins' (with their
    MXNet aliases: ``Activation``, ``FullyConnected``...), MXNet's internal names that
    graphs use (``_plus_scalar``...) and the registered custom operators."""
    from mxcore.graph.functions import INTERNAL
    from mxcore.plugins import registry
    names = set(PROPS) | set(INTERNAL)
    for op in registry().ops.values():
        names.add(op.name)
        names.update(op.aliases)
    import mxcore.ndarray as nd  # the mx.nd functions named as MXNet's operators
    names.update(n for n in dir(nd) if n[:1].isupper() and callable(getattr(nd, n))
                 and not isinstance(getattr(nd, n), type))
    return sorted(names)


class _Retired:
    """MXNet's pre-1.0 Python operators (NumpyOp, NDArrayOp, PythonOp), retired in
    favour of CustomOp: using one says so."""

    def __init__(self, *args, **kwargs):
        raise MXCoreError(f"mx.operator.{type(self).__name__} was MXNet's pre-1.0 Python "
                          "operator API; write a mx.operator.CustomOp with a CustomOpProp "
                          "(registered with @mx.operator.register) instead")


class NumpyOp(_Retired):
    pass


class NDArrayOp(_Retired):
    pass


class PythonOp(_Retired):
    pass


__all__ = ["CustomOp", "CustomOpProp", "register", "get_all_registered_operators",
           "NumpyOp", "NDArrayOp", "PythonOp"]
