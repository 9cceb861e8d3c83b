"""``mx.sym.random``: random ops on symbols.  Scalar parameters give MXNet's
``_random_<dist>`` node, symbol parameters its ``_sample_<dist>`` node, as
``mx.nd.random`` picks ``random_*`` or ``sample_*`` by the parameters' type."""
from mxcore.symbol.symbol import Symbol, op_maker

_DISTS = ("uniform", "normal", "gamma", "exponential", "poisson", "negative_binomial",
          "generalized_negative_binomial", "randint", "multinomial", "shuffle")


def _make(dist: str):
    def build(*args, **kwargs):
        symbolic = any(isinstance(a, Symbol) for a in list(args) + list(kwargs.values()))
        if dist in ("multinomial", "shuffle"):
            return op_maker(f"_sample_{dist}" if dist == "multinomial" else "_shuffle")(
                *args, **kwargs)
        return op_maker(("_sample_" if symbolic else "_random_") + dist)(*args, **kwargs)
    build.__name__ = dist
    return build


for _d in _DISTS:
    globals()[_d] = _make(_d)
del _d


def __getattr__(name: str):
    from mxcore.symbol._namespace import namespace_getattr
    return namespace_getattr("random", "_random_", name)
