"""pluggy hook specifications for mxcore plugins.

Every hook takes a ``register`` callback (the simonw/llm pattern), so a plugin
never imports the registry it feeds:

* ``register_devices(register)``: ``register(device_type: DeviceType)``
* ``register_kernels(register)``: ``register(kernel: Kernel)``
* ``register_ops(register)``:     ``register(op)`` with an ``mxcore.op.Op``
* ``register_passes(register)``:  ``register(pass_)`` with a ``hal.GraphPass``

A plugin module sets ``MXCORE_PLUGIN_API = PLUGIN_API_VERSION`` (the version it
was written against); mxcore refuses plugins for another major version.
"""
import pluggy

PROJECT_NAME = "mxcore"
#: Bumped when a hook signature or a hal type changes incompatibly.
PLUGIN_API_VERSION = 1

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_devices(register):
    """Register device types: call ``register(DeviceType)`` once per kind."""


@hookspec
def register_kernels(register):
    """Register kernels: call ``register(Kernel)`` once per kernel."""


@hookspec
def register_ops(register):
    """Register operators: call ``register(op)`` once per ``mxcore.op.Op``."""


@hookspec
def register_passes(register):
    """Register graph passes: call ``register(GraphPass)`` once per pass."""
