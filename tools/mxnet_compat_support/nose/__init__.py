"""A minimal stand-in for the ``nose`` package, which MXNet 1.9.1's test files import
(``nose.tools``; ``nose.runmodule`` only under ``__main__``). nose itself is unmaintained
and does not import on current Pythons; tools/mxnet_compat.py puts this folder on
PYTHONPATH for both the MXNet and the mxcore runs, so both see the same helpers."""
import unittest

from . import tools  # noqa: F401

SkipTest = unittest.SkipTest
__version__ = "1.3.7+mxnet-compat"


def runmodule(*args, **kwargs):
    raise RuntimeError("run MXNet's test files with pytest (tools/mxnet_compat.py)")
