"""The CTC loss (``ctc_loss``): the alpha recursion in log space, vectorised over the
batch and the extended label positions, one loop over time; while recording, the beta
recursion too and the gradient (kept as the op's workspace output).

The extended label of a row is blank, l1, blank, l2, ..., lL, blank (S = 2L + 1
positions).  A path moves from position s to s, s + 1, or s + 2 when the label at s + 2
is not the blank and differs from the label at s.  log(0) is a large negative finite
number, so max-shifted log-sum-exps never meet inf - inf.  16-bit floats compute in
float32 and round once.
"""
from __future__ import annotations

from mxcore_cpu.kernels._dtypes import FLOAT, as_float32

#: stands for log(0): finite, so exp(NEG - m) is 0 and never inf - inf
NEG = -1e30
#: the value that pads label rows, per blank_label
PADDING = {"first": 0, "last": -1}


def kernels(xp, special):

    def log_softmax(x):
        s = x - x.max(axis=2, keepdims=True)
        return s - xp.log(xp.exp(s).sum(axis=2, keepdims=True))

    def lse3(a, b, c):
        m = xp.maximum(xp.maximum(a, b), c)
        return m + xp.log(xp.exp(a - m) + xp.exp(b - m) + xp.exp(c - m))

    def logsumexp_rows(a):
        m = a.max(axis=1, keepdims=True)
        return (m + xp.log(xp.exp(a - m).sum(axis=1, keepdims=True)))[:, 0]

    def shifted(a, k):
        """``a`` moved k positions along the last axis (right for k > 0, left for
        k < 0), the vacated positions log(0)."""
        out = xp.full_like(a, NEG)
        if k > 0:
            out[:, k:] = a[:, :-k]
        else:
            out[:, :k] = a[:, -k:]
        return out

    def check_range(values, lo, hi, what):
        if values.size and bool(xp.any((values < lo) | (values > hi))):
            raise ValueError(f"{what} must be in [{lo}, {hi}], got {values.tolist()}")

    def lengths(label, rest, a, t, c):
        """(integer labels with padding replaced by the blank, label lengths,
        sequence lengths, blank class)."""
        n, width = label.shape
        blank = 0 if a["blank_label"] == "first" else c - 1
        lab = label.astype(xp.int64)  # truncated, as MXNet casts
        rest = list(rest)
        tl = (rest.pop(0).astype(xp.int64) if a["use_data_lengths"]
              else xp.full(n, t, xp.int64))
        check_range(tl, 0, t, "data_lengths")
        if a["use_label_lengths"]:
            ll = rest.pop(0).astype(xp.int64)
            check_range(ll, 0, width, "label_lengths")
        elif width == 0:
            ll = xp.zeros(n, xp.int64)
        else:  # up to the first padding value
            pad = lab == PADDING[a["blank_label"]]
            ll = xp.where(pad.any(axis=1), pad.argmax(axis=1), width)
        inside = xp.arange(width)[None, :] < ll[:, None]
        bad = inside & ((lab < 0) | (lab >= c))
        if bool(xp.any(bad)):
            raise ValueError(f"label values must be class indices in [0, {c - 1}] (data has "
                             f"{c} classes); got {lab[bad].tolist()}")
        return xp.where(inside, lab, blank), ll, tl, blank

    def extended(lab, ll, blank):
        """(extended labels (N, S), may-skip flags (N, S), end-position mask (N, S))."""
        n, width = lab.shape
        ext = xp.full((n, 2 * width + 1), blank, xp.int64)
        ext[:, 1::2] = lab
        skip = xp.zeros(ext.shape, bool)
        skip[:, 3::2] = (lab[:, 1:] != lab[:, :-1]) & (lab[:, 1:] != blank)
        s = xp.arange(ext.shape[1])[None, :]
        end = (s == 2 * ll[:, None]) | ((s == 2 * ll[:, None] - 1) & (ll[:, None] > 0))
        return ext, skip, end

    def feasible(lab, ll, tl):
        """MXNet 1.9.1 costs a row 0 when its labels plus repeated neighbours
        outnumber its steps."""
        width = lab.shape[1]
        inside = xp.arange(1, width)[None, :] < ll[:, None]
        repeats = ((lab[:, 1:] == lab[:, :-1]) & inside).sum(axis=1)
        return (ll + repeats <= tl) & (tl > 0)

    def forward_alpha(lpx, skip, tl, keep):
        """The last alpha of each row (frozen after its length) and, with ``keep``,
        every step's alpha (T, N, S)."""
        t_max = lpx.shape[0]
        alpha = xp.full(lpx.shape[1:], NEG, lpx.dtype)
        alpha[:, :2] = lpx[0, :, :2]
        alpha = xp.where((tl > 0)[:, None], alpha, NEG)
        alphas = xp.empty_like(lpx) if keep else None
        if keep:
            alphas[0] = alpha
        for t in range(1, t_max):
            step = lse3(alpha, shifted(alpha, 1), xp.where(skip, shifted(alpha, 2), NEG))
            step += lpx[t]
            if keep:
                alphas[t] = step
            alpha = xp.where((t < tl)[:, None], step, alpha)
        return alpha, alphas

    def occupancy(lpx, alphas, skip, end, tl, loglik):
        """Posterior probability of each (step, row, extended position), 0 past a row's
        length: exp(alpha + beta - emission - log p), beta from the backward pass."""
        t_max = lpx.shape[0]
        skip_next = xp.zeros_like(skip)  # may a path at s jump to s + 2
        skip_next[:, :-2] = skip[:, 2:]
        beta = xp.full(lpx.shape[1:], NEG, lpx.dtype)
        post = xp.empty_like(lpx)
        for t in range(t_max - 1, -1, -1):
            step = lse3(beta, shifted(beta, -1), xp.where(skip_next, shifted(beta, -2), NEG))
            step += lpx[t]
            first = xp.where(end, lpx[t], NEG)  # a row's last step starts its beta
            beta = xp.where((t == tl - 1)[:, None], first,
                            xp.where((t < tl - 1)[:, None], step, NEG))
            post[t] = alphas[t] + beta - lpx[t]
        post -= loglik[None, :, None]
        return xp.exp(post, out=post)

    def class_occupancy(post, ext, c):
        """Sum the positions' posteriors into their classes: (T, N, C)."""
        t_max, n, s = post.shape
        base = (xp.arange(t_max * n, dtype=xp.int64) * c).reshape(t_max, n, 1)
        index = (base + ext[None, :, :]).ravel()
        occ = xp.bincount(index, weights=post.ravel(), minlength=t_max * n * c)
        return occ.reshape(t_max, n, c).astype(post.dtype, copy=False)

    def ctc_loss(data, label, *rest, use_data_lengths, use_label_lengths, blank_label,
                 keep_workspace):
        a = {"use_data_lengths": use_data_lengths, "use_label_lengths": use_label_lengths,
             "blank_label": blank_label}
        t_max, n, c = data.shape
        lab, ll, tl, blank = lengths(label, rest, a, t_max, c)
        if t_max == 0 or n == 0:
            return xp.zeros(n, data.dtype), xp.zeros(data.shape if keep_workspace else (0,),
                                                     data.dtype)
        logp = log_softmax(as_float32(xp, data))
        ext, skip, end = extended(lab, ll, blank)
        lpx = logp[:, xp.arange(n)[:, None], ext]  # (T, N, S) emissions along the labels
        alpha, alphas = forward_alpha(lpx, skip, tl, keep_workspace)
        loglik = logsumexp_rows(xp.where(end, alpha, NEG))
        ok = feasible(lab, ll, tl)
        loss = xp.where(ok, -loglik, 0).astype(data.dtype)
        if not keep_workspace:
            return loss, xp.zeros((0,), data.dtype)
        loglik = xp.where(ok, loglik, 0)  # no overflow in the rows about to be zeroed
        post = occupancy(lpx, alphas, skip, end, tl, loglik)
        grad = xp.exp(logp) - class_occupancy(post, ext, c)
        valid = (xp.arange(t_max)[:, None] < tl[None, :]) & ok[None, :]
        return loss, xp.where(valid[:, :, None], grad, 0).astype(data.dtype)

    return {"ctc_loss": (ctc_loss, FLOAT)}
