"""Runs at interpreter start-up when this folder is on PYTHONPATH (tools/mxnet_compat.py
puts it there for the mxcore side): ``import mxnet`` then resolves to mxcore, in pytest and
in any worker process it spawns."""
import importlib.machinery
import importlib.util
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:
    sys.path.append(_here)

import mxnet_alias  # noqa: E402

mxnet_alias.install()

# This file shadows any sitecustomize of the interpreter itself: run that one too.
_others = [p for p in sys.path if os.path.abspath(p or ".") != _here]
_spec = importlib.machinery.PathFinder.find_spec("sitecustomize", _others)
if _spec is not None and _spec.loader is not None:
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
