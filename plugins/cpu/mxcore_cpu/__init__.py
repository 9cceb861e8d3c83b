"""mxcore-cpu: the CPU device and its numpy kernels.

Kernel tables are built by functions of the array module (``build(xp)``) so a
device whose array module follows numpy's API (CuPy) can reuse them.
"""
__version__ = "0.1.0"
