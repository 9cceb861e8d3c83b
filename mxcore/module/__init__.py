"""``mx.mod``: MXNet 1.x's Module API (symbolic training over the executor)."""
from mxcore.module.module import BaseModule, Module  # noqa: F401
