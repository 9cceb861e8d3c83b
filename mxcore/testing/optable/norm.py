"""Op-table cases: instance/group/L2 normalisation, LRN and Embedding.  Imported by
mxcore.testing.optable, which collects every case into one table.

The references loop over the rows, groups, channels or indices of tiny inputs, in the
words of MXNet's definitions.  The fused backward ops are checked against vector-Jacobian
products of those forward references taken by complex-step differentiation (exact to
rounding: ``f(x + ih).imag / h``), so they share no formula with the kernels.
"""
from __future__ import annotations

import numpy as np

import mxcore as mx
from mxcore.testing.table import FLOATS, NUMERIC, In, collector

CASES: list = []
case = collector(CASES)


nd = mx.nd
#: (rtol, atol) for normalised outputs: 16-bit inputs compute in float32, rounded once
_NT = {"float16": (2e-2, 1e-2), "bfloat16": (5e-2, 3e-2), "float32": (1e-4, 1e-5)}
#: the backward ops sum products of several terms
_BT = {"float16": (3e-2, 3e-2), "bfloat16": (8e-2, 8e-2), "float32": (1e-4, 1e-4)}


def _normalise(v, eps):
    """One row: zero mean, unit biased variance plus eps (complex-step safe: no abs)."""
    m = v.sum() / v.size
    return (v - m) / np.sqrt(((v - m) ** 2).sum() / v.size + eps)


def _instance_ref(x, gamma, beta, eps=1e-3):
    out = np.empty(x.shape, np.result_type(x, gamma, beta))
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            out[i, c] = _normalise(x[i, c], eps) * gamma[c] + beta[c]
    return out


def _group_ref(x, gamma, beta, num_groups=1, eps=1e-5):
    out = np.empty(x.shape, np.result_type(x, gamma, beta))
    per = x.shape[1] // num_groups
    for i in range(x.shape[0]):
        for g in range(num_groups):
            group = slice(g * per, (g + 1) * per)
            out[i, group] = _normalise(x[i, group], eps) * gamma[g] + beta[g]
    return out


def _group_stats_ref(x, num_groups, eps=1e-5):
    """GroupNorm's extra outputs: per (sample, group) mean and sqrt(var + eps)."""
    rows = x.reshape(x.shape[0], num_groups, -1)
    mean = rows.mean(axis=2)
    return mean, np.sqrt(((rows - mean[..., None]) ** 2).mean(axis=2) + eps)


def _l2_ref(x, eps=1e-10, mode="instance"):
    out = np.empty_like(x)
    if mode == "channel":  # each (sample, spatial position) vector along axis 1
        for i in range(x.shape[0]):
            for pos in np.ndindex(x.shape[2:]):
                v = x[(i, slice(None)) + pos]
                out[(i, slice(None)) + pos] = v / np.sqrt((v * v).sum() + eps)
        return out
    lead = 1 if mode == "instance" else 2  # instance: per sample; spatial: per channel
    for idx in np.ndindex(x.shape[:lead]):
        out[idx] = x[idx] / np.sqrt((x[idx] * x[idx]).sum() + eps)
    return out


def _lrn_ref(x, nsize, alpha=1e-4, beta=0.75, knorm=2.0):
    out = np.empty_like(x)
    channels = x.shape[1]
    for c in range(channels):
        lo, hi = max(0, c - nsize // 2), min(channels, c + nsize // 2 + 1)
        s = (x[:, lo:hi] ** 2).sum(axis=1)
        out[:, c] = x[:, c] / (knorm + alpha / nsize * s) ** beta
    return out


def _embedding_ref(idx, weight, input_dim):
    # int() truncates toward zero, then the row is clipped into the table
    rows = [min(max(int(v), 0), input_dim - 1) for v in idx.ravel()]
    return weight[rows].reshape(idx.shape + weight.shape[1:])


def _vjp(f, args, dy, h=1e-30):
    """The vector-Jacobian products dy . df/d(arg) for every arg, by complex steps."""
    grads = []
    for i, a in enumerate(args):
        g = np.zeros(np.shape(a))
        for idx in np.ndindex(g.shape):
            pert = [np.array(v, np.complex128) for v in args]
            pert[i][idx] += 1j * h
            g[idx] = (f(*pert).imag / h * dy).sum()
        grads.append(g)
    return tuple(grads)


# --- InstanceNorm -----------------------------------------------------------------------
case("instance_norm", nd.InstanceNorm, _instance_ref, (In((2, 3, 4)), In((3,)), In((3,))),
     tol=_NT)
case("instance_norm_4d_eps", lambda x, g, b: nd.InstanceNorm(x, g, b, eps=0.5),
     lambda x, g, b: _instance_ref(x, g, b, 0.5), (In((2, 2, 3, 2)), In((2,)), In((2,))),
     tol=_NT)
case("instance_norm_backward", nd.instance_norm_backward,
     lambda dy, x, g: _vjp(_instance_ref, (x, g, np.zeros_like(g)), dy),
     (In((2, 3, 4)), In((2, 3, 4)), In((3,))), grad=False, tol=_BT)
case("instance_norm_backward_eps",
     lambda dy, x, g: nd.instance_norm_backward(dy, x, g, eps=0.2),
     lambda dy, x, g: _vjp(lambda *a: _instance_ref(*a, eps=0.2),
                           (x, g, np.zeros_like(g)), dy),
     (In((1, 2, 2, 3)), In((1, 2, 2, 3)), In((2,))), grad=False, tol=_BT)

# --- GroupNorm (one gamma/beta per group, as in MXNet 1.x) -----------------------------------
case("group_norm", lambda x, g, b: nd.GroupNorm(x, g, b, num_groups=2),
     lambda x, g, b: _group_ref(x, g, b, 2), (In((2, 4, 3)), In((2,)), In((2,))), tol=_NT)
case("group_norm_one_group_4d", nd.GroupNorm, _group_ref,
     (In((2, 3, 2, 2)), In((1,)), In((1,))), tol=_NT)
case("group_norm_per_channel_eps", lambda x, g, b: nd.GroupNorm(x, g, b, num_groups=3, eps=0.3),
     lambda x, g, b: _group_ref(x, g, b, 3, 0.3), (In((2, 3, 4)), In((3,)), In((3,))), tol=_NT)
case("group_norm_output_mean_var",
     lambda x, g, b: nd.GroupNorm(x, g, b, num_groups=2, output_mean_var=True),
     lambda x, g, b: (_group_ref(x, g, b, 2),) + _group_stats_ref(x, 2),
     (In((2, 4, 3)), In((2,)), In((2,))), tol=_NT)
case("group_norm_backward",
     lambda dy, x, g: nd.group_norm_backward(dy, x, g, num_groups=2),
     lambda dy, x, g: _vjp(lambda *a: _group_ref(*a, num_groups=2),
                           (x, g, np.zeros_like(g)), dy),
     (In((2, 4, 3)), In((2, 4, 3)), In((2,))), grad=False, tol=_BT)

# --- L2Normalization -------------------------------------------------------------------------
case("l2_normalization", nd.L2Normalization, _l2_ref, (In((2, 3, 4)),), tol=_NT)
for _mode, _shape in (("channel", (2, 3, 2, 2)), ("spatial", (2, 3, 4))):
    case(f"l2_normalization_{_mode}", lambda x, m=_mode: nd.L2Normalization(x, mode=m),
         lambda x, m=_mode: _l2_ref(x, mode=m), (In(_shape),), tol=_NT)
case("l2_normalization_eps_2d", lambda x: nd.L2Normalization(x, eps=0.5),
     lambda x: _l2_ref(x, 0.5), (In((3, 4)),), tol=_NT)
case("l2_normalization_1d", nd.L2Normalization, _l2_ref, (In((5,), "away0"),), tol=_NT)

# --- LRN ------------------------------------------------------------------------------------
_LRN_KW = {"alpha": 0.6, "beta": 0.75, "knorm": 1.5}
case("lrn", lambda x: nd.LRN(x, nsize=3, **_LRN_KW), lambda x: _lrn_ref(x, 3, **_LRN_KW),
     (In((2, 5, 2, 2)),), grad2=False, tol=_NT)
case("lrn_defaults", lambda x: nd.LRN(x, nsize=5), lambda x: _lrn_ref(x, 5),
     (In((1, 6, 2, 3)),), grad2=False, tol=_NT)
case("lrn_window_wider_than_channels_2d",
     lambda x: nd.LRN(x, alpha=2.0, beta=0.5, knorm=1.0, nsize=9),
     lambda x: _lrn_ref(x, 9, 2.0, 0.5, 1.0), (In((3, 4)),), grad2=False, tol=_NT)
case("lrn_backward", lambda dy, x: nd.lrn_backward(dy, x, nsize=3, **_LRN_KW),
     lambda dy, x: _vjp(lambda v: _lrn_ref(v, 3, **_LRN_KW), (x,), dy)[0],
     (In((2, 5, 2, 2)), In((2, 5, 2, 2))), grad=False, tol=_BT)

# --- Embedding --------------------------------------------------------------------------------
case("embedding", lambda i, w: nd.Embedding(i, w, input_dim=5, output_dim=3),
     lambda i, w: _embedding_ref(i, w, 5), (In((2, 4), "index", "float32", False, 5), In((5, 3))),
     NUMERIC)
case("embedding_int_indices_clipped", lambda i, w: nd.Embedding(i, w, 5, 2),
     lambda i, w: _embedding_ref(i, w, 5), (In((3, 4), "index", "int32", False, 8), In((5, 2))),
     NUMERIC)
# fractional and negative float indices: truncated, then clipped at both ends
case("embedding_fractional_indices", lambda i, w: nd.Embedding(i, w, 2, 3),
     lambda i, w: _embedding_ref(i, w, 2), (In((6,), "frac", "float32", False), In((2, 3))),
     FLOATS)
# many lookups of few rows: the weight's gradient accumulates repeated indices
case("embedding_repeated_indices", lambda i, w: nd.Embedding(i, w, 3, 2),
     lambda i, w: _embedding_ref(i, w, 3), (In((4, 5), "index", "int64", False, 3), In((3, 2))),
     FLOATS)
