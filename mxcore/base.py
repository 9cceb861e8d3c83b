"""mxcore's error types, and the few helpers of MXNet's ``mxnet.base`` that user code
imports (``py_str``, ``data_dir``, ``integer_types``, ``numeric_types``,
``string_types``, ``_as_list``)."""
from __future__ import annotations

import os

import numpy as np

integer_types = (int, np.integer)
numeric_types = (float, int, np.generic)
string_types = (str,)


class MXCoreError(Exception):
    """Base class of mxcore errors (MXNet's ``MXNetError``)."""


MXNetError = MXCoreError


class OperatorError(MXCoreError, ValueError):
    """An operator could not run on the given inputs.  The message names the
    operator, the input shapes, dtypes and the device."""

    def __init__(self, op: str, message: str, shapes=(), dtypes=(), device=None):
        self.op = op
        self.shapes = tuple(shapes)
        self.dtypes = tuple(dtypes)
        self.device = device
        where = ""
        if shapes or dtypes:
            ins = ", ".join(f"{tuple(s)} {d}" for s, d in zip(shapes, dtypes))
            where = f" [inputs: {ins}]"
        if device is not None:
            where += f" on {device!r}"
        super().__init__(f"operator {op!r}: {message}{where}")


class IndexOutOfRange(OperatorError, IndexError):
    """An index outside its axis: an OperatorError that is also the IndexError MXNet
    raises."""


class UnknownOperatorError(MXCoreError, AttributeError, KeyError):
    def __str__(self):  # KeyError would repr() the message
        return str(self.args[0])


class NoKernelError(MXCoreError, NotImplementedError):
    """No registered kernel accepts the call."""


class PluginError(MXCoreError):
    """A plugin broke the plugin contract (e.g. equal kernel priorities)."""


def py_str(x: bytes) -> str:
    """bytes from a C string to str (MXNet's ``base.py_str``)."""
    return x.decode("utf-8")


def data_dir() -> str:
    """Where mxcore keeps downloaded data: ``$MXCORE_HOME`` (``$MXNET_HOME`` is honoured
    too), else ``~/.mxcore`` (MXNet's ``base.data_dir``)."""
    home = os.environ.get("MXCORE_HOME") or os.environ.get("MXNET_HOME")
    return home or os.path.join(os.path.expanduser("~"), ".mxcore")


class NotImplementedForSymbol(MXCoreError):
    """An NDArray-only operation was called on a Symbol."""

    def __init__(self, function, alias=None, *args):
        self.function = getattr(function, "__name__", str(function))
        self.alias = alias
        self.args = tuple(str(type(a)) for a in args)
        super().__init__(f"Function {self.function}"
                         + (f" (namely operator \"{alias}\")" if alias else "")
                         + " is not implemented for Symbol and only available in NDArray.")


def _as_list(obj) -> list:
    """``obj`` itself when it is a list or tuple (as a list), else ``[obj]``."""
    return list(obj) if isinstance(obj, (list, tuple)) else [obj]
