"""Plugin discovery: pluggy over the entry-point group ``mxcore.plugins``.

Built-in plugins (the core op set, the CPU device...) are found through the
same entry points as third-party ones.  Loading is lazy: the first call that
needs a kernel, device or op loads every plugin once.  A plugin that fails to
import, targets another plugin API version or breaks the registration contract
is skipped; its error is kept for ``mxcore plugins``.

Environment switches:

* ``MXCORE_PLUGINS=a,b``     load only these plugins (entry-point names)
* ``MXCORE_NO_THIRD_PARTY=1`` load only the plugins shipped in this repository
* ``MXCORE_TRACE_PLUGINS=1``  print every hook call to stderr (pluggy tracing)

A plugin is built-in when its entry point comes from the distribution that ships it
(``BUILTIN_MODULES``), not merely when it has a built-in's name: anyone can name an
entry point ``cpu``.  Such an impostor is refused with a recorded error.
"""
from __future__ import annotations

import os
import re
import sys
import threading
import traceback
from dataclasses import asdict, dataclass, field
from importlib.metadata import entry_points
from typing import Any, Dict, List, Optional

import pluggy

import hal
from hal import hookspecs
from mxcore.base import PluginError
from mxcore.registry import Registry

ENTRY_POINT_GROUP = "mxcore.plugins"
HOOKS = ("register_devices", "register_ops", "register_kernels", "register_passes")
#: Entry-point names of the plugins that live in this repository.
BUILTIN_PLUGINS = ("core", "cpu", "cuda", "arm", "contrib_ops")
#: Where those plugins live, for a source checkout used without installation
#: (PYTHONPATH): entry point name -> (module, distribution name).
BUILTIN_MODULES = {"core": ("mxcore.ops", "mxcore"), "cpu": ("mxcore_cpu.plugin", "mxcore-cpu"),
                   "cuda": ("mxcore_cuda.plugin", "mxcore-cuda"),
                   "arm": ("mxcore_arm.plugin", "mxcore-arm"),
                   "contrib_ops": ("mxcore_contrib_ops.plugin", "mxcore-contrib-ops")}
#: entry-point name -> the distribution that owns it
BUILTIN_DISTRIBUTIONS = {name: dist for name, (_, dist) in BUILTIN_MODULES.items()}


def _normalize(dist: str) -> str:
    """PEP 503 name normalisation (``mxcore_cpu`` and ``mxcore-cpu`` are one name)."""
    return re.sub(r"[-_.]+", "-", dist).lower()


def is_builtin(name: str, distribution: str) -> bool:
    """Whether an entry point is one of this repository's plugins: its name and the
    distribution it comes from both match."""
    owner = BUILTIN_DISTRIBUTIONS.get(name)
    return owner is not None and _normalize(distribution) == owner


@dataclass
class PluginInfo:
    name: str
    distribution: str = ""
    version: str = ""
    module: str = ""
    builtin: bool = False
    hooks: List[str] = field(default_factory=list)
    devices: List[str] = field(default_factory=list)
    ops: int = 0
    kernels: int = 0
    error: Optional[str] = None
    skipped: Optional[str] = None

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


class _Staging:
    """Collects one plugin's registrations so a failure leaves no trace."""

    def __init__(self, registry: Registry, provider: str):
        self.registry, self.provider = registry, provider
        self.devices, self.ops, self.kernels, self.passes = [], [], [], []

    def device(self, device_type):
        self.devices.append(device_type)

    def op(self, op):
        self.ops.append(op)

    def kernel(self, kernel):
        if not isinstance(kernel, hal.Kernel):
            raise TypeError(f"register_kernels expects hal.Kernel, got {kernel!r}")
        kernel = hal.Kernel(**{**kernel.__dict__, "provider": self.provider})
        self.registry.check_kernel(kernel, self.kernels)
        self.kernels.append(kernel)

    def graph_pass(self, pass_):
        if not isinstance(pass_, hal.GraphPass):
            raise TypeError(f"register_passes expects hal.GraphPass, got {pass_!r}")
        self.passes.append(hal.GraphPass(**{**pass_.__dict__, "provider": self.provider}))

    def commit(self) -> None:
        reg = self.registry
        with reg._lock:
            # Validate everything before changing anything.
            for d in self.devices:
                if d.kind in reg.devices:
                    reg.add_device(d, self.provider)  # raises the duplicate error
            for op in self.ops:
                for name in (op.name,) + op.aliases:
                    if name in reg.ops and reg.ops[name] is not op:
                        reg.add_op(op, self.provider)  # raises the duplicate error
            for d in self.devices:
                reg.add_device(d, self.provider)
            for op in self.ops:
                reg.add_op(op, self.provider)
            for k in self.kernels:
                reg.kernels.setdefault((k.op, k.device), []).append(k)
            reg.invalidate()


class PluginSystem:
    """The registry plus the plugins that fed it."""

    def __init__(self):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.plugins: Dict[str, PluginInfo] = {}
        self.passes: List[hal.GraphPass] = []  # graph passes of every plugin
        if os.environ.get("MXCORE_TRACE_PLUGINS"):
            self.pm.trace.root.setwriter(sys.stderr.write)
            self.pm.enable_tracing()

    def _wanted(self, name: str, builtin: bool) -> Optional[str]:
        only = os.environ.get("MXCORE_PLUGINS")
        if only is not None:
            names = {n.strip() for n in only.split(",") if n.strip()}
            if name not in names:
                return "not listed in MXCORE_PLUGINS"
        if os.environ.get("MXCORE_NO_THIRD_PARTY") and not builtin:
            return "third-party plugins disabled by MXCORE_NO_THIRD_PARTY"
        return None

    def load_entry_points(self) -> None:
        found = []
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            dist_name = getattr(dist, "name", "") or ""
            found.append((ep, dist_name, is_builtin(ep.name, dist_name)))
        # built-ins first, so a third-party plugin never shadows one
        found.sort(key=lambda f: (not f[2], f[0].name, f[1]))
        for ep, dist_name, builtin in found:
            dist = getattr(ep, "dist", None)
            info = PluginInfo(name=ep.name, module=ep.value, builtin=builtin,
                              distribution=dist_name,
                              version=getattr(dist, "version", "") or "")
            if ep.name in self.plugins or ep.name in BUILTIN_DISTRIBUTIONS and not builtin:
                # a name already taken, or a built-in's name claimed by another distribution:
                # refused and reported under a key of its own
                owner = BUILTIN_DISTRIBUTIONS.get(ep.name) or self.plugins[ep.name].distribution
                info.error = (f"entry point {ep.name!r} of distribution {dist_name or '?'!r} is "
                              f"refused: the name belongs to {owner!r}; rename the entry point")
                self.plugins[f"{ep.name} ({dist_name or ep.value})"] = info
                continue
            self.plugins[ep.name] = info
            info.skipped = self._wanted(ep.name, builtin)
            if info.skipped:
                continue
            try:
                module = ep.load()
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - any import failure is reported,
                # sys.exit() in a plugin's import included: it must not end the user's program
                info.error = _describe(exc, f"import of {ep.value} failed")
                continue
            self._register(module, info)
        self._load_uninstalled_builtins()

    def _load_uninstalled_builtins(self) -> None:
        """Built-in plugins importable from the path but not installed (no entry
        point): a source checkout on PYTHONPATH works like an installed one."""
        import importlib
        for name, (module_name, dist) in BUILTIN_MODULES.items():
            if name in self.plugins:
                continue
            info = PluginInfo(name=name, module=module_name, builtin=True, distribution=dist,
                              version="(not installed)")
            skipped = self._wanted(name, True)
            try:
                module = importlib.import_module(module_name) if not skipped else None
            except ModuleNotFoundError as exc:
                if exc.name and module_name.startswith(exc.name):
                    continue  # not on the path at all: nothing to report
                self.plugins[name] = info
                info.error = _describe(exc, f"import of {module_name} failed")
                continue
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - reported, never fatal
                self.plugins[name] = info
                info.error = _describe(exc, f"import of {module_name} failed")
                continue
            self.plugins[name] = info
            if skipped:
                info.skipped = skipped
                continue
            self._register(module, info)

    def register_plugin(self, plugin: Any, name: str, version: str = "",
                        builtin: bool = False) -> PluginInfo:
        """Register an already imported plugin object (a module or any object
        with hookimpls).  Used for plugins created at run time and by tests."""
        if name in self.plugins:
            raise PluginError(f"a plugin named {name!r} is already registered")
        info = PluginInfo(name=name, version=version, builtin=builtin,
                          module=getattr(plugin, "__name__", type(plugin).__name__))
        self.plugins[name] = info
        self._register(plugin, info)
        return info

    def unregister_plugin(self, name: str) -> None:
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        self.registry.remove_provider(self._provider(name))
        self.passes = [p for p in self.passes if p.provider != self._provider(name)]
        self.plugins.pop(name, None)

    def _provider(self, name: str) -> str:
        info = self.plugins.get(name)
        return info.distribution if info and info.distribution else name

    def _register(self, plugin: Any, info: PluginInfo) -> None:
        api = getattr(plugin, "MXCORE_PLUGIN_API", None)
        if api != hal.PLUGIN_API_VERSION:
            info.error = (f"plugin targets plugin API {api!r}; this mxcore speaks "
                          f"{hal.PLUGIN_API_VERSION} (set MXCORE_PLUGIN_API in the plugin module)")
            return
        try:
            self.pm.register(plugin, name=info.name)
        except Exception as exc:
            info.error = _describe(exc, "pluggy rejected the plugin")
            return
        info.hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or ())
        staging = _Staging(self.registry, self._provider(info.name))
        others = [p for p in self.pm.get_plugins() if p is not plugin]
        try:
            for hook in HOOKS:
                caller = self.pm.subset_hook_caller(hook, remove_plugins=others)
                register = {"register_devices": staging.device, "register_ops": staging.op,
                            "register_kernels": staging.kernel,
                            "register_passes": staging.graph_pass}[hook]
                caller(register=register)
            staging.commit()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - sys.exit() in a hook included
            info.error = _describe(exc, "registration failed")
            info.hooks = []
            self.pm.unregister(plugin)
            return
        self.passes.extend(staging.passes)
        info.devices = sorted(d.kind for d in staging.devices)
        info.ops = len(staging.ops)
        info.kernels = len(staging.kernels)


def _describe(exc: BaseException, what: str) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
    if isinstance(exc, SystemExit):
        return f"{what}: the plugin called sys.exit({exc.code!r}){where}"
    return f"{what}: {type(exc).__name__}: {exc}{where}"


_SYSTEM: Optional[PluginSystem] = None
_LOCK = threading.Lock()


def system() -> PluginSystem:
    """The process's plugin system, loading every plugin on first use."""
    global _SYSTEM
    if _SYSTEM is None:
        with _LOCK:
            if _SYSTEM is None:
                s = PluginSystem()
                _SYSTEM = s
                try:
                    s.load_entry_points()
                except BaseException:
                    _SYSTEM = None
                    raise
    return _SYSTEM


def registry() -> Registry:
    return system().registry


def reload() -> PluginSystem:
    """Forget every plugin and load them again (after installing one, or
    changing MXCORE_PLUGINS / MXCORE_REGISTRY)."""
    global _SYSTEM
    old = _SYSTEM
    _SYSTEM = None
    if old is not None:
        old.registry.invalidate()
    return system()
