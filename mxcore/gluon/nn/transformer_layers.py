"""Transformer layers: ``RMSNorm`` and ``MultiHeadAttention``.

Their operators (``rms_norm``, ``scaled_dot_product_attention``) come from the
mxcore-contrib-ops plugin, reached by name through ``F.contrib``: the core does not
import the plugin, and without it these layers fail at their first call with an error
saying which operator is missing.
"""
from __future__ import annotations

from mxcore.gluon.block import HybridBlock
from mxcore.gluon.nn.basic_layers import Dense

__all__ = ["RMSNorm", "MultiHeadAttention"]


class RMSNorm(HybridBlock):
    """Root-mean-square normalisation (Zhang & Sennrich, 2019): ``x / sqrt(mean(x**2,
    axis) + epsilon) * gamma``, without LayerNorm's centring and bias.  ``in_channels=0``
    defers gamma's shape to the first input."""

    def __init__(self, axis: int = -1, epsilon: float = 1e-6, gamma_initializer="ones",
                 in_channels: int = 0, **kwargs):
        super().__init__(**kwargs)
        self._axis, self._epsilon = int(axis), float(epsilon)
        with self.name_scope():
            self.gamma = self.params.get("gamma", shape=(in_channels,),
                                         init=gamma_initializer, allow_deferred_init=True)

    def infer_shape(self, x, *args) -> None:
        self.gamma.shape = (x.shape[self._axis],)

    def hybrid_forward(self, F, x, gamma):
        return F.contrib.rms_norm(x, gamma, axis=self._axis, eps=self._epsilon)

    def __repr__(self) -> str:
        width = self.gamma.shape[0] if self.gamma.shape else None
        return (f"{type(self).__name__}({width or 'deferred'}, axis={self._axis}, "
                f"eps={self._epsilon})")


class MultiHeadAttention(HybridBlock):
    """Multi-head attention (Vaswani et al., 2017) over (batch, length, channels) inputs:
    ``query``, ``key`` and ``value`` are projected to ``units`` channels, split into
    ``num_heads`` heads, combined by scaled dot-product attention and projected back to
    ``units``.  ``key``/``value`` default to ``query`` (self-attention); ``mask``
    (boolean, True = attend, or additive) broadcasts to (batch, heads, query length, key
    length); ``causal`` lets position i see keys up to i; ``dropout`` applies to the
    attention weights while training."""

    def __init__(self, units: int, num_heads: int, use_bias: bool = True,
                 dropout: float = 0.0, causal: bool = False, in_units: int = 0,
                 weight_initializer=None, bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        if units % num_heads:
            raise ValueError(f"MultiHeadAttention: units ({units}) must be a multiple of "
                             f"num_heads ({num_heads})")
        self._units, self._heads = int(units), int(num_heads)
        self._dropout, self._causal = float(dropout), bool(causal)
        with self.name_scope():
            def proj(prefix: str, width: int) -> Dense:
                return Dense(units, flatten=False, use_bias=use_bias, in_units=width,
                             weight_initializer=weight_initializer,
                             bias_initializer=bias_initializer, prefix=prefix)
            self.query_proj = proj("query_", in_units)
            self.key_proj = proj("key_", in_units)
            self.value_proj = proj("value_", in_units)
            self.out_proj = proj("out_", units)

    def _heads_first(self, F, x):
        # (B, L, units) -> (B, heads, L, units / heads)
        return F.transpose(F.reshape(x, shape=(0, 0, self._heads, -1)), axes=(0, 2, 1, 3))

    def hybrid_forward(self, F, query, key=None, value=None, mask=None):
        key = query if key is None else key
        value = key if value is None else value
        q = self._heads_first(F, self.query_proj(query))
        k = self._heads_first(F, self.key_proj(key))
        v = self._heads_first(F, self.value_proj(value))
        out = F.contrib.scaled_dot_product_attention(q, k, v, mask=mask, causal=self._causal,
                                                     dropout=self._dropout)
        out = F.reshape(F.transpose(out, axes=(0, 2, 1, 3)), shape=(0, 0, -1))
        return self.out_proj(out)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(units={self._units}, heads={self._heads}, "
                f"dropout={self._dropout}, causal={self._causal})")
