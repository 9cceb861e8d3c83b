"""Fused recurrent layers (the ``rnn`` op) and their backward (``rnn_backward``).

Each (layer, direction) runs as one product for all time steps' input projections, then
a loop over time doing one product with the recurrent weights and a few vectorised
elementwise ops per step.  The reverse direction runs the same loop over the sequences
reversed (within their valid lengths), so both directions share one code path.

The forward writes what the backward needs into a workspace (L*D, T*N*S): per (layer,
direction) contiguous (T, N, width) blocks, in order: gate activations (LSTM, GRU), the
state h (r for a projected LSTM), the cell state c (LSTM), the unprojected h (projected
LSTM), the recurrent n-gate term W_hn h + b_hn (GRU); each step reads and writes
contiguous rows.  The backward walks the steps in reverse and forms each weight gradient
with one product over all steps after its loop.  16-bit floats compute in float32 and
round once; the workspace stays float32.
"""
from __future__ import annotations

from mxcore_cpu.device import product_threads
from mxcore_cpu.kernels._dtypes import FLOAT, as_float32

GATES = {"rnn_relu": 1, "rnn_tanh": 1, "lstm": 4, "gru": 3}


class _Geometry:
    """Sizes of one call and the widths of the workspace blocks (module docstring)."""

    def __init__(self, x_shape, a):
        self.T, self.N, self.I = x_shape
        self.mode = a["mode"]
        self.H = h = a["state_size"]
        self.L, self.D = a["num_layers"], 2 if a["bidirectional"] else 1
        self.P = a["projection_size"]
        self.R = r = self.P or h
        self.G = GATES[self.mode]
        lstm, gru = self.mode == "lstm", self.mode == "gru"
        self.widths = (("gates", self.G * h if lstm or gru else 0), ("h", r),
                       ("c", h if lstm else 0), ("hp", h if self.P else 0),
                       ("hn", h if gru else 0))
        self.S = sum(w for _, w in self.widths)
        lo, hi = a["lstm_state_clip_min"], a["lstm_state_clip_max"]
        self.clip = None if lo is None else (lo, hi, a["lstm_state_clip_nan"])

    def in_size(self, layer):
        return self.I if layer == 0 else self.R * self.D

    def blocks(self, ws_k):
        """The (T, N, width) views of one (layer, direction)'s workspace row."""
        out, off, tn = {}, 0, self.T * self.N
        for name, width in self.widths:
            if width:
                out[name] = ws_k[off:off + tn * width].reshape(self.T, self.N, width)
            off += tn * width
        return out


def _unpack(params, g: _Geometry):
    """Views of the packed vector per (layer, direction): wi, wh[, wr], bi, bh."""
    out = [dict() for _ in range(g.L * g.D)]
    pos = 0

    def take(shape):
        nonlocal pos
        size = shape[0] * (shape[1] if len(shape) > 1 else 1)
        view = params[pos:pos + size].reshape(shape)
        pos += size
        return view

    gh = g.G * g.H
    for layer in range(g.L):
        for d in range(g.D):
            w = out[layer * g.D + d]
            w["wi"] = take((gh, g.in_size(layer)))
            w["wh"] = take((gh, g.R))
            if g.P:
                w["wr"] = take((g.P, g.H))
    for w in out:
        w["bi"] = take((gh,))
        w["bh"] = take((gh,))
    return out


def kernels(xp, special):
    threads = product_threads(xp)  # one BLAS thread for small products (device.py)

    # Gate activations go through tanh only (numpy's tanh is vectorised, scipy's expit
    # ~10x slower per element, and tanh never overflows): sigmoid(x) = tanh(x/2)/2 + 1/2.
    # Per gate block, t = tanh(scale * z) and activation = scale * t + shift.
    def activation_rows(mode, h, dtype):
        half, one, zero = xp.full(h, 0.5, dtype), xp.ones(h, dtype), xp.zeros(h, dtype)
        if mode == "lstm":  # i, f, o sigmoid; g tanh
            return (xp.concatenate([half, half, one, half]),
                    xp.concatenate([half, half, zero, half]))
        return xp.concatenate([half, half, one]), xp.concatenate([half, half, zero])  # gru

    def activate(z, scale, shift, out):
        z *= scale
        xp.tanh(z, out=out)
        out *= scale
        out += shift
        return out

    # --- sequence order and lengths ----------------------------------------------------
    def order(lengths, g):
        """(reversal index (T, N) or None, validity mask (T, N, 1) or None)."""
        if lengths is None:
            return None, None
        n = lengths.astype(xp.int64).reshape(1, -1)
        if g.N and (int(n.min()) < 0 or int(n.max()) > g.T):
            raise ValueError(f"sequence_length values must be in [0, {g.T}] (the sequence "
                             f"length of data), got {lengths.tolist()}")
        t = xp.arange(g.T).reshape(-1, 1)
        valid = t < n
        return xp.where(valid, n - 1 - t, t), valid[:, :, None]

    def to_steps(a, d, rev):
        """``a`` (T, N, ...) in the order direction ``d`` runs its steps; applied twice it
        gives the original order back."""
        if d == 0:
            return a
        if rev is None:
            return a[::-1]
        return a[rev, xp.arange(a.shape[1])[None, :]]

    def dropout_keeps(seed, p, g, dtype):
        """Scaled keep masks for the outputs of layers 0..L-2 (regenerated by backward)."""
        if p <= 0 or g.L == 1:
            return [None] * g.L
        rng = xp.random.default_rng(seed)
        shape = (g.T, g.N, g.D * g.R)
        scale = dtype.type(1.0 / (1.0 - p))
        return [(rng.random(shape, dtype=xp.float32) >= p).astype(dtype) * scale
                for _ in range(g.L - 1)] + [None]

    def clip_state(c, clip):
        lo, hi, nan = clip
        if nan:  # fmax/fmin pick the number over NaN
            return xp.fmin(xp.fmax(c, lo), hi)
        return xp.clip(c, lo, hi)

    # --- forward ------------------------------------------------------------------------
    def project(x, w, g):
        """All steps' input projections in one product: (T, N, G*H).  The h2h bias is
        folded in too, except for GRU (its n-gate's h2h bias sits inside r * (...))."""
        t, n, k = x.shape
        threads(t * n * k * w["wi"].shape[0])
        out = x.reshape(t * n, k) @ w["wi"].T
        out += w["bi"] if g.mode == "gru" else w["bi"] + w["bh"]
        return out.reshape(t, n, -1)

    # one step each: ``xz`` is the step's input projection (read only), ``hh`` the fresh
    # recurrent product h @ W_hh.T (worked on in place), ``b`` the workspace blocks, ``t``
    # the step; returns the new (h, c) before the sequence-length mask
    def step_rnn(xz, hh, h, c, b, t, w, g, act):
        hh += xz
        return (xp.maximum(hh, 0, out=hh) if g.mode == "rnn_relu" else xp.tanh(hh, out=hh)), None

    def step_lstm(xz, hh, h, c, b, t, w, g, act):
        hs = g.H
        hh += xz
        gates = activate(hh, *act, out=b["gates"][t])
        c_new = gates[:, hs:2 * hs] * c
        c_new += gates[:, :hs] * gates[:, 2 * hs:3 * hs]
        if g.clip is not None:
            c_new = clip_state(c_new, g.clip)
        hp = xp.tanh(c_new)
        hp *= gates[:, 3 * hs:]
        if g.P:
            b["hp"][t] = hp
            hp = hp @ w["wr"].T
        return hp, c_new

    def step_gru(xz, hh, h, c, b, t, w, g, act):
        hs = g.H
        hh += w["bh"]
        b["hn"][t] = hh[:, 2 * hs:]
        gates = activate(hh + xz, *act, out=b["gates"][t])  # r, z (the n block follows)
        n = gates[:, 2 * hs:]
        xp.multiply(gates[:, :hs], hh[:, 2 * hs:], out=n)  # r * (W_hn h + b_hn)
        n += xz[:, 2 * hs:]
        xp.tanh(n, out=n)
        h_new = h - n
        h_new *= gates[:, hs:2 * hs]
        h_new += n  # (1 - z) n + z h
        return h_new, None

    steps = {"rnn_relu": step_rnn, "rnn_tanh": step_rnn, "lstm": step_lstm, "gru": step_gru}

    def run_direction(xproj, w, h, c, mask, b, g):
        """The time loop of one (layer, direction), ``xproj`` in step order; fills the
        workspace blocks ``b``."""
        step = steps[g.mode]
        act = activation_rows(g.mode, g.H, xproj.dtype) if g.mode in ("lstm", "gru") else None
        wh_t = w["wh"].T
        threads(g.N * g.R * wh_t.shape[1])
        for t in range(g.T):
            h_new, c_new = step(xproj[t], h @ wh_t, h, c, b, t, w, g, act)
            if mask is not None:
                h_new = xp.where(mask[t], h_new, h)
                if c_new is not None:
                    c_new = xp.where(mask[t], c_new, c)
            b["h"][t] = h_new
            h = b["h"][t]
            if c_new is not None:
                b["c"][t] = c_new
                c = b["c"][t]

    def layer_output(blocks, layer, rev, mask, g):
        """Layer ``layer``'s output (T, N, D*R), rebuilt from the workspace."""
        y = xp.empty((g.T, g.N, g.D * g.R), dtype=blocks[0]["h"].dtype)
        for d in range(g.D):
            y[:, :, d * g.R:(d + 1) * g.R] = to_steps(blocks[layer * g.D + d]["h"], d, rev)
        if mask is not None:
            y *= mask
        return y

    def split_inputs(arrays, a):
        """(data, parameters, state, state_cell or None, lengths or None)."""
        x, params, h0 = arrays[:3]
        rest = list(arrays[3:])
        c0 = rest.pop(0) if a["mode"] == "lstm" else None
        lengths = rest.pop(0) if a["use_sequence_length"] else None
        return x, params, h0, c0, lengths

    def rnn(data, parameters, state, *rest, **a):
        """(data, parameters, state[, state_cell][, sequence_length]) -> (out, hy[, cy],
        workspace)."""
        x, params, h0, c0, lengths = split_inputs((data, parameters, state) + rest, a)
        dt = x.dtype
        g = _Geometry(x.shape, a)
        x, h0 = as_float32(xp, x), as_float32(xp, h0)
        c0 = None if c0 is None else as_float32(xp, c0)
        w = _unpack(as_float32(xp, params), g)
        rev, mask = order(lengths, g)
        keeps = dropout_keeps(a["seed"], a["p"], g, x.dtype)
        ws = xp.empty((g.L * g.D, g.T * g.N * g.S), dtype=x.dtype)
        blocks = [g.blocks(ws[k]) for k in range(g.L * g.D)]
        inp = x
        for layer in range(g.L):
            for d in range(g.D):
                k = layer * g.D + d
                xproj = to_steps(project(inp, w[k], g), d, rev)
                run_direction(xproj, w[k], h0[k], None if c0 is None else c0[k], mask,
                              blocks[k], g)
            inp = layer_output(blocks, layer, rev, mask, g)
            if keeps[layer] is not None:
                inp *= keeps[layer]
        outs = [inp, xp.stack([b["h"][-1] for b in blocks])]
        if g.mode == "lstm":
            outs.append(xp.stack([b["c"][-1] for b in blocks]))
        outs = [o.astype(dt, copy=False) for o in outs]  # fresh arrays, never views of ws
        outs.append(ws if a["keep_workspace"] else xp.empty((0,), dtype=ws.dtype))
        return tuple(outs)

    # --- backward -------------------------------------------------------------------------
    # one step back each: ``dh``/``dc`` the gradients of the step's new state (masked),
    # ``prev`` the state it started from; fills row t of dz (gradient of the input
    # projection) and dhh (of the recurrent product, or d r for a projected LSTM) and
    # returns the gradients of the previous state
    def back_rnn(dh, dc, t, prev, b, w, g, dz, dhh):
        h = b["h"][t]
        d = dz[t]
        if g.mode == "rnn_relu":
            xp.multiply(dh, h > 0, out=d)
        else:
            xp.multiply(dh, 1 - h * h, out=d)
        return d @ w["wh"], None

    def back_lstm(dh, dc, t, prev, b, w, g, dz, dhh):
        hs = g.H
        gates, c = b["gates"][t], b["c"][t]
        if g.P:
            dhh[t] = dh  # d r, for the h2r weight's gradient
            dh = dh @ w["wr"]
        tc = xp.tanh(c)
        dct = dh * gates[:, 3 * hs:]
        dct *= 1 - tc * tc
        dct += dc
        if g.clip is not None:
            dct *= (c > g.clip[0]) & (c < g.clip[1])
        d = dz[t]
        xp.multiply(dct, gates[:, 2 * hs:3 * hs], out=d[:, :hs])
        xp.multiply(dct, prev[1], out=d[:, hs:2 * hs])
        xp.multiply(dct, gates[:, :hs], out=d[:, 2 * hs:3 * hs])
        xp.multiply(dh, tc, out=d[:, 3 * hs:])
        slope = 1 - gates
        slope *= gates  # sigmoid' for i, f, o
        gg = gates[:, 2 * hs:3 * hs]
        slope[:, 2 * hs:3 * hs] = 1 - gg * gg  # tanh' for g
        d *= slope
        dct *= gates[:, hs:2 * hs]
        return d @ w["wh"], dct

    def back_gru(dh, dc, t, prev, b, w, g, dz, dhh):
        hs = g.H
        gates, hn = b["gates"][t], b["hn"][t]
        r, z, n = gates[:, :hs], gates[:, hs:2 * hs], gates[:, 2 * hs:]
        d, e = dz[t], dhh[t]
        dan = d[:, 2 * hs:]
        xp.multiply(dh, 1 - z, out=dan)
        dan *= 1 - n * n
        xp.multiply(dan, r, out=e[:, 2 * hs:])
        xp.multiply(dan, hn, out=d[:, :hs])
        d[:, :hs] *= r * (1 - r)
        xp.multiply(dh, prev[0] - n, out=d[:, hs:2 * hs])
        d[:, hs:2 * hs] *= z * (1 - z)
        e[:, :2 * hs] = d[:, :2 * hs]
        dh_prev = e @ w["wh"]
        dh_prev += dh * z
        return dh_prev, None

    backs = {"rnn_relu": back_rnn, "rnn_tanh": back_rnn, "lstm": back_lstm, "gru": back_gru}

    def back_direction(dy, dh, dc, b, w, h0, c0, mask, g):
        """BPTT through one (layer, direction), ``dy`` in step order.  Returns (d of the
        step-order input projections, d of the recurrent products (GRU) or of r
        (projected LSTM) or None, d h0, d c0)."""
        back = backs[g.mode]
        gh = g.G * g.H
        dz = xp.empty((g.T, g.N, gh), dtype=b["h"].dtype)
        dhh = xp.empty((g.T, g.N, g.R if g.P else gh), dtype=dz.dtype) \
            if g.mode == "gru" or g.P else None
        threads(g.N * g.R * gh)
        for t in range(g.T - 1, -1, -1):
            dh = dh + dy[t]
            if mask is not None:
                cell = dh * mask[t]
                dh_pass, dh = dh - cell, cell
                if dc is not None:
                    cell = dc * mask[t]
                    dc_pass, dc = dc - cell, cell
            prev = (b["h"][t - 1], b["c"][t - 1] if c0 is not None else None) if t \
                else (h0, c0)
            dh, dc = back(dh, dc, t, prev, b, w, g, dz, dhh)
            if mask is not None:
                dh += dh_pass
                if dc is not None:
                    dc += dc_pass
        return dz, dhh, dh, dc

    def weight_grads(dw, dz_steps, dz_in, dhh, inp, b, h0, g):
        """Every weight and bias gradient of one (layer, direction): one product each."""
        tn, gh = g.T * g.N, g.G * g.H
        threads(tn * gh * max(inp.shape[-1], g.R))
        dw["wi"][...] = dz_in.reshape(tn, gh).T @ inp.reshape(tn, -1)
        dw["bi"][...] = dz_steps.sum(axis=(0, 1))
        rec = dhh if g.mode == "gru" else dz_steps  # gradient of the h2h products
        prev = xp.concatenate([h0[None], b["h"][:-1]])
        dw["wh"][...] = rec.reshape(tn, gh).T @ prev.reshape(tn, g.R)
        dw["bh"][...] = rec.sum(axis=(0, 1))
        if g.P:
            dw["wr"][...] = dhh.reshape(tn, g.R).T @ b["hp"].reshape(tn, g.H)

    def rnn_backward(out_grad, hy_grad, *rest, grads, **a):
        """(d out, d hy[, d cy], data, parameters, state[, state_cell][, sequence_length],
        workspace) -> the gradients ``grads`` asks for."""
        arrays = (out_grad, hy_grad) + rest
        lstm = a["mode"] == "lstm"
        n_heads = 3 if lstm else 2
        heads, ws = arrays[:n_heads], arrays[-1]
        x, params, h0, c0, lengths = split_inputs(arrays[n_heads:-1], a)
        dt = x.dtype
        g = _Geometry(x.shape, a)
        dy, dhy = as_float32(xp, heads[0]), as_float32(xp, heads[1])
        dcy = as_float32(xp, heads[2]) if lstm else None
        x, h0 = as_float32(xp, x), as_float32(xp, h0)
        c0 = as_float32(xp, c0) if lstm else None
        w = _unpack(as_float32(xp, params), g)
        dparams = xp.zeros(params.shape, dtype=ws.dtype)
        dw = _unpack(dparams, g)
        dh0 = xp.empty(h0.shape, ws.dtype)
        dc0 = xp.empty(c0.shape, ws.dtype) if lstm else None
        blocks = [g.blocks(ws[k]) for k in range(g.L * g.D)]
        rev, mask = order(lengths, g)
        keeps = dropout_keeps(a["seed"], a["p"], g, ws.dtype)
        dx = None
        for layer in range(g.L - 1, -1, -1):
            inp = x if layer == 0 else layer_output(blocks, layer - 1, rev, mask, g)
            if layer and keeps[layer - 1] is not None:
                inp *= keeps[layer - 1]
            if mask is not None:
                dy = dy * mask
            dx = xp.zeros(inp.shape, dtype=ws.dtype) if layer or grads[0] else None
            for d in range(g.D):
                k = layer * g.D + d
                dyd = to_steps(dy[:, :, d * g.R:(d + 1) * g.R], d, rev)
                dz, dhh, dh0[k], dck = back_direction(
                    dyd, dhy[k], None if dcy is None else dcy[k], blocks[k], w[k], h0[k],
                    None if c0 is None else c0[k], mask, g)
                if lstm:
                    dc0[k] = dck
                dz_in = to_steps(dz, d, rev)  # back to time order
                if grads[1]:
                    weight_grads(dw[k], dz, dz_in, dhh, inp, blocks[k], h0[k], g)
                if dx is not None:
                    threads(dz.size * inp.shape[-1])
                    dx += (dz_in.reshape(-1, dz.shape[-1]) @ w[k]["wi"]).reshape(dx.shape)
            if layer:
                dy = dx if keeps[layer - 1] is None else dx * keeps[layer - 1]
        outs = (dx, dparams, dh0, dc0)
        return tuple(outs[i].astype(dt, copy=False) for i in range(4) if grads[i])

    return {"rnn": (rnn, FLOAT), "rnn_backward": (rnn_backward, FLOAT)}
