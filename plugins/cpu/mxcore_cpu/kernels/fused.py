"""The elementwise fuser: ``fused_elemwise`` chains as ufunc calls with ``out=``.

Each entry of a chain calls the same ufunc the op's own kernel calls (so the results
are bit for bit the unfused ones) but writes into a buffer chosen here: a temporary
that an earlier entry left and that nothing reads any more, the input memory
planning marked ``inplace``, or, with a ``scratch`` dict (``static_alloc``), buffers
kept across calls.  A chain of n ops thus allocates at most one output buffer and one
temporary instead of n arrays.  Only float32 and float64: 16-bit floats compute some
ops in float32 in their own kernels, which a chain of ufuncs would not repeat."""
from __future__ import annotations

from mxcore_cpu.kernels.logistic import sigmoid


def kernels(xp, special):
    def relu(x, out):
        return xp.maximum(x, 0, out=out)

    unary = {name: getattr(xp, name) for name in (
        "negative", "abs", "sign", "exp", "log", "log1p", "expm1", "sqrt", "square", "sin",
        "cos", "tanh")}
    unary["sigmoid"] = lambda x, out=None: sigmoid(xp, x, out=out)
    binary = {"add": xp.add, "subtract": xp.subtract, "multiply": xp.multiply,
              "divide": xp.true_divide, "maximum": xp.maximum, "minimum": xp.minimum,
              "power": xp.power}
    # scalar op -> (ufunc, scalar first)
    scalars = {"add_scalar": (xp.add, False), "sub_scalar": (xp.subtract, False),
               "rsub_scalar": (xp.subtract, True), "mul_scalar": (xp.multiply, False),
               "div_scalar": (xp.true_divide, False), "rdiv_scalar": (xp.true_divide, True),
               "pow_scalar": (xp.power, False), "rpow_scalar": (xp.power, True),
               "maximum_scalar": (xp.maximum, False), "minimum_scalar": (xp.minimum, False)}

    def apply(name, vals, scalar, out):
        if name == "relu":
            return relu(vals[0], out)
        fn = unary.get(name)
        if fn is not None:
            return fn(vals[0], out=out)
        fn = binary.get(name)
        if fn is not None:
            return fn(vals[0], vals[1], out=out)
        fn, first = scalars[name]
        s = out.dtype.type(scalar)  # the scalar takes the array's dtype, as unfused
        return fn(s, vals[0], out=out) if first else fn(vals[0], s, out=out)

    def owned(a) -> bool:
        # CuPy's flags have no ``writeable``: its arrays always are
        return getattr(a, "base", 0) is None and getattr(a.flags, "writeable", True)

    def fused_elemwise(*inputs, chain, inplace=-1, scratch=None):
        shape, dtype = inputs[0].shape, inputs[0].dtype
        last = len(chain) - 1
        results, free = [], []  # free: temporaries no later entry reads

        def temporary(j):
            if free:
                return free.pop()
            if scratch is None:
                return xp.empty(shape, dtype)
            buf = scratch.get(j)
            if buf is None:
                buf = scratch[j] = xp.empty(shape, dtype)
            return buf

        for j, (name, args, scalar) in enumerate(chain):
            vals = [inputs[a] if a >= 0 else results[-a - 1] for a in args]
            temps = [results[-a - 1] for a in args if a < 0]
            if j == last:
                if 0 <= inplace < len(inputs) and owned(inputs[inplace]):
                    buf = inputs[inplace]
                elif temps and scratch is None:
                    buf = temps[0]  # fresh memory nothing else holds
                else:
                    buf = xp.empty(shape, dtype)
            else:
                # a temporary an argument leaves (each is read once: by this entry)
                free.extend(temps)
                buf = temporary(j)  # may be one this entry reads: same index, safe
            results.append(apply(name, vals, scalar, buf))
        return results[-1]

    fused_elemwise.fusable = frozenset(["relu", *unary, *binary, *scalars])
    return {"fused_elemwise": (fused_elemwise, ("float32", "float64"))}
