"""mxcore's contributed operators, an operator plugin (entry point ``contrib_ops``).

Each module holds a family of ops: their ``Op`` definitions (attributes, shape/dtype
rule, gradient rule written in mxcore ops), their user-facing functions (set as each
op's ``frontend``: ``mx.nd.contrib.<name>`` and ``mx.nd.<name>`` return them) and their
kernels per device kind.  ``plugin.py`` registers them all.
"""
