"""``import mxnet`` (and every ``mxnet.x.y``) resolves to mxcore's modules.

A meta-path finder placed first on ``sys.meta_path``: ``mxnet.x.y`` is answered with the
module object of ``mxcore.x.y`` itself, so ``sys.modules['mxnet.x.y'] is
sys.modules['mxcore.x.y']``. Nothing else is patched. A name mxcore lacks fails as an
ordinary ``ModuleNotFoundError`` naming ``mxnet.x.y``, the error MXNet's users would see.

MXNet exposes a few modules only as attributes (``mx.nd``, ``mx.sym``); when mxcore has no
submodule of that name but its parent package has a module-valued attribute of it, the
alias resolves to that module, so ``import mxnet.nd`` works when ``mx.nd`` does.

With ``MXNET_ALIAS_STUB_MISSING=1`` (tools/mxnet_compat.py ``--stub-missing``, a diagnostic)
names and modules that mxcore lacks no longer stop a test file at import: where the code
running at module level (imports, decorators, base classes) asks for one, it gets a
placeholder that raises ``MissingInMxcore`` when a test uses it. Everything a test looks up
while it runs fails as usual. In that mode ``mxnet.x`` is a thin proxy of ``mxcore.x``
(attribute reads and writes go through), no longer the same object.

Used by tools/mxnet_compat.py through ``sitecustomize`` (which puts it in place in every
interpreter started with this folder on PYTHONPATH, spawned workers included); it can also
be loaded as a pytest plugin (``-p mxnet_alias``).
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import types

ALIAS = "mxnet"
TARGET = "mxcore"


def _target_name(fullname: str) -> str | None:
    if fullname == ALIAS:
        return TARGET
    if fullname.startswith(ALIAS + "."):
        return TARGET + fullname[len(ALIAS):]
    return None


class MxnetAliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finder and loader in one: the "loading" hands back an already-imported module."""

    def __init__(self, stub_missing: bool = False):
        self.stub_missing = stub_missing

    def find_spec(self, fullname, path=None, target=None):
        target_name = _target_name(fullname)
        if target_name is None:
            return None
        if self.stub_missing:
            return self._lenient_spec(fullname, target_name)
        module = self._resolve(target_name)
        is_package = hasattr(module, "__path__")
        spec = importlib.machinery.ModuleSpec(fullname, self, is_package=is_package)
        if is_package:
            spec.submodule_search_locations = list(module.__path__)
        # The import system overwrites the ``__spec__`` of the module it is handed; the
        # original is kept here so that exec_module can put it back.
        spec.loader_state = (module, getattr(module, "__spec__", None))
        return spec

    @staticmethod
    def _resolve(target_name: str) -> types.ModuleType:
        try:
            return importlib.import_module(target_name)
        except ModuleNotFoundError as exc:
            # Only a miss of the aliased name itself (or of one of its parents) becomes an
            # mxnet-named error; a dependency mxcore itself lacks propagates unchanged.
            missing = exc.name or ""
            if not (target_name == missing or target_name.startswith(missing + ".")):
                raise
            if not (missing == TARGET or missing.startswith(TARGET + ".")):
                raise
            parent_name, _, child = target_name.rpartition(".")
            if missing == target_name:
                parent = sys.modules.get(parent_name)
                attr = getattr(parent, child, None) if parent is not None else None
                if isinstance(attr, types.ModuleType):
                    return attr
            alias_missing = ALIAS + missing[len(TARGET):]
            raise ModuleNotFoundError(f"No module named {alias_missing!r}",
                                      name=alias_missing) from None

    def _lenient_spec(self, fullname, target_name):
        try:
            module = _proxy(self._resolve(target_name), fullname)
        except ModuleNotFoundError as exc:
            if not _at_module_level(3):
                raise
            module = _StubModule(fullname, str(exc))
        spec = importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        spec.submodule_search_locations = []
        spec.loader_state = (module, module.__spec__)
        return spec

    def create_module(self, spec):
        return spec.loader_state[0]

    def exec_module(self, module):
        # mxcore's modules keep their own spec (reloads, pickling by module name).
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self and spec.loader_state[1] is not None:
            module.__spec__ = spec.loader_state[1]


# --------------------------------------------------------------- --stub-missing only

class MissingInMxcore(Exception):
    """A test used a name that mxcore lacks (found only with MXNET_ALIAS_STUB_MISSING=1)."""


def _at_module_level(depth: int) -> bool:
    """Whether the code asking runs at module level (an import, a decorator, a base class)
    rather than inside a function, i.e. while pytest collects rather than runs a test."""
    frame = sys._getframe(depth)

    # the import system's own frames sit between an import statement and the finder
    while frame is not None and frame.f_code.co_filename.startswith("<frozen importlib"):
        frame = frame.f_back
    return frame is not None and frame.f_code.co_name == "<module>"


class _MissingMeta(type):
    def __getattr__(cls, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _placeholder(f"{cls._missing_name}.{name}", cls._missing_root)

    def __call__(cls, *args, **kwargs):
        if cls.__dict__.get("_is_placeholder") and _at_module_level(2):
            if len(args) == 1 and not kwargs and callable(args[0]):
                return _disabled(args[0], cls._missing_root)  # used as a decorator
            return _placeholder(f"{cls._missing_name}(...)", cls._missing_root)
        raise MissingInMxcore(f"{cls._missing_root} is missing in mxcore\n"
                              f"(used as {cls._missing_name})")


def _placeholder(name: str, root: str | None = None):
    return _MissingMeta(name.rsplit(".", 1)[-1], (), {
        "_missing_name": name, "_missing_root": root or name, "_is_placeholder": True,
        "__module__": name.rsplit(".", 1)[0]})


def _disabled(obj, root: str):
    """What a placeholder decorator turns a test function into: a test failing with
    MissingInMxcore (a decorated class keeps working; its tests fail when they use it)."""
    if isinstance(obj, type):
        return obj

    def disabled(*args, **kwargs):
        raise MissingInMxcore(f"{root} is missing in mxcore\n(decorates {obj.__name__})")
    for attr in ("__name__", "__qualname__", "__module__", "__doc__"):
        setattr(disabled, attr, getattr(obj, attr, None))
    return disabled


_PROXIES: dict[str, types.ModuleType] = {}


class _ProxyModule(types.ModuleType):
    """``mxnet.x`` standing for ``mxcore.x``: reads and writes go to mxcore's module;
    a name it lacks, asked for at module level, is a placeholder."""

    def __init__(self, real: types.ModuleType, alias_name: str):
        super().__init__(alias_name, getattr(real, "__doc__", None))
        object.__setattr__(self, "_mxnet_alias_real", real)

    def __getattr__(self, name):
        real = object.__getattribute__(self, "_mxnet_alias_real")
        try:
            value = getattr(real, name)
        except AttributeError:
            if name == "__all__":
                return [n for n in dir(real) if not n.startswith("_")]
            if name.startswith("__") and name.endswith("__") or not _at_module_level(2):
                raise
            return _placeholder(f"{self.__name__}.{name}")
        if isinstance(value, types.ModuleType) and value.__name__.startswith(TARGET + "."):
            return _proxy(value, ALIAS + value.__name__[len(TARGET):])
        return value

    def __setattr__(self, name, value):
        if isinstance(value, (_ProxyModule, _StubModule)) or name.startswith("__"):
            object.__setattr__(self, name, value)  # never written into mxcore's modules
        else:
            setattr(object.__getattribute__(self, "_mxnet_alias_real"), name, value)

    def __dir__(self):
        return dir(object.__getattribute__(self, "_mxnet_alias_real"))


class _StubModule(types.ModuleType):
    """A module mxcore lacks, imported at module level: every name in it is a placeholder."""

    def __init__(self, alias_name: str, reason: str):
        super().__init__(alias_name, reason)
        self.__path__ = []

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        if not _at_module_level(2):
            raise MissingInMxcore(f"{self.__name__} is missing in mxcore\n"
                                  f"(used as {self.__name__}.{name})")
        return _placeholder(f"{self.__name__}.{name}", self.__name__)


def _proxy(real: types.ModuleType, alias_name: str) -> types.ModuleType:
    proxy = _PROXIES.get(alias_name)
    if proxy is None:
        proxy = _PROXIES[alias_name] = _ProxyModule(real, alias_name)
    return proxy


# --------------------------------------------------------------------------- install

_FINDER: MxnetAliasFinder | None = None


def install(stub_missing: bool | None = None) -> MxnetAliasFinder:
    """Puts the finder first on ``sys.meta_path`` (idempotent)."""
    global _FINDER
    if stub_missing is None:
        stub_missing = os.environ.get("MXNET_ALIAS_STUB_MISSING") == "1"
    for finder in sys.meta_path:
        if isinstance(finder, MxnetAliasFinder) or type(finder).__name__ == "MxnetAliasFinder":
            return finder
    _FINDER = MxnetAliasFinder(stub_missing)
    sys.meta_path.insert(0, _FINDER)
    return _FINDER


def uninstall() -> None:
    """Removes the finder and every ``mxnet``/``mxnet.*`` entry of ``sys.modules``."""
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "MxnetAliasFinder"]
    for name in [n for n in sys.modules if n == ALIAS or n.startswith(ALIAS + ".")]:
        del sys.modules[name]
    _PROXIES.clear()


# Loaded as a pytest plugin (``-p mxnet_alias``) the import itself installs it.
install()
