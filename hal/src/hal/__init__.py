"""mxcore-hal: the contract between mxcore and its plugins.

A device plugin needs only this package (numpy + pluggy): the device protocol
(`DeviceType`, `Device`, `Stream`, `Event`), the kernel record (`Kernel`), the
graph-pass record (`GraphPass`), the
dtype table and the pluggy hook specifications with their `hookimpl` marker.
"""
from hal.device import (Device, DeviceType, DeviceUnavailableError, Event, Stream, parse_device,
                        scoped_device)
from hal.dtypes import (ALL_DTYPES, BFLOAT16_DTYPES, DTYPES, FLOAT_DTYPES, INT_DTYPES, dtype_name,
                        is_float, to_dtype)
from hal.hookspecs import PLUGIN_API_VERSION, hookimpl, hookspec, PROJECT_NAME
from hal.graph_pass import PASS_STAGES, GraphPass
from hal.kernel import Kernel

__all__ = [
    "Device", "DeviceType", "DeviceUnavailableError", "Event", "Stream", "parse_device",
    "scoped_device",
    "DTYPES", "FLOAT_DTYPES", "INT_DTYPES", "ALL_DTYPES", "BFLOAT16_DTYPES", "dtype_name",
    "is_float", "to_dtype",
    "PLUGIN_API_VERSION", "PROJECT_NAME", "hookimpl", "hookspec", "Kernel", "GraphPass",
    "PASS_STAGES",
]
