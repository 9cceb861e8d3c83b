"""mxcore-arm: kernels for ARM CPUs (the ``cpu`` device kind, guarded on the host) and
the ``onnxruntime`` graph backend of ``HybridBlock.optimize_for``.

The plugin module (``mxcore_arm.plugin``) imports onnxruntime; this package does not, so
``mxcore_arm.host`` can be used to ask what the host offers without it."""
