"""mxcore-example-device: the ``hostsim`` device kind, a simulated accelerator on
host memory.

    import mxcore as mx
    dev = mx.device("hostsim")
    x = mx.nd.ones((2, 3), ctx=dev)
    y = (x + x).exp()          # add: a hostsim kernel; exp: the CPU's, borrowed

mxcore registers the device through the ``hostsim`` entry point.
"""
from mxcore_example_device.device import HostSimDevice

__all__ = ["HostSimDevice"]
__version__ = "0.1.0"
