"""Random kernels; the first argument of each sampler is the device's generator.

Only generator methods that numpy's ``Generator`` and CuPy's (through the CUDA
plugin's ``CupyGenerator``) both have are used: ``random``, ``standard_normal``,
``standard_exponential``, ``standard_gamma``, ``poisson``, ``integers`` and
``permutation``; distribution parameters reach them as arrays (CuPy takes no numpy
scalars).  Continuous samples are drawn in float32 (float64 for float64 outputs) and
rounded once to the output dtype; counts (Poisson and the negative binomials) are drawn
from float64 rates.

The densities (``random_pdf_*`` and their fused backward ops) use no generator: each
distribution is its log-density, the derivatives of the log-density with respect to the
sample and each parameter, and, where MXNet 1.9.1 computes the density by another
formula than exp(log-density), that formula (the uniform, normal and exponential keep
the sign of a negative width, scale or rate).  They compute 16-bit floats in float32
and round once.

Parameters outside a distribution's domain never raise here (numpy would, CuPy would
not): where MXNet 1.9.1's samplers hang or return garbage the sample is NaN (gamma with
alpha < 0, negative binomial with k < 0 or p <= 0, generalized negative binomial with
alpha < 0); where MXNet returns values the formula's result is kept (a negative Poisson
rate gives 0, a negative normal scale mirrors the samples).
"""
from __future__ import annotations

import math

from mxcore_cpu.kernels._dtypes import ALL, FLOAT, INT, NUM, as_float32

#: rates beyond which a Poisson draw is taken as its (rounded) rate: the relative spread
#: 1/sqrt(rate), under 3e-8, is below float32's resolution, and numpy refuses rates
#: near 2**63 (float64 outputs lose that spread)
_POISSON_MAX = 1e15
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_SQRT_2PI = math.sqrt(2 * math.pi)


def kernels(xp, special):
    nan = float("nan")

    def work_dtype(dtype):
        return xp.float64 if dtype == "float64" else xp.float32

    def scalars(dtype, *values):
        wd = work_dtype(dtype)
        return wd, [xp.asarray(v, dtype=wd) for v in values]

    # samplers: (rng, size, work dtype, parameters broadcastable to size) -> floats --------
    def uniform_draw(rng, size, wd, low, high):
        return rng.random(size, dtype=wd) * (high - low) + low

    def normal_draw(rng, size, wd, loc, scale):
        return rng.standard_normal(size, dtype=wd) * scale + loc

    def standard_gamma(rng, size, wd, alpha):
        """Gamma(alpha, 1); 0 for alpha = 0, NaN for alpha < 0 (and NaN alpha)."""
        ok = alpha > 0
        g = rng.standard_gamma(xp.where(ok, alpha, 1).astype(wd), size=size, dtype=wd)
        return xp.where(ok, g, xp.where(alpha == 0, 0, nan).astype(wd))

    def gamma_draw(rng, size, wd, alpha, beta):
        return standard_gamma(rng, size, wd, alpha) * beta

    def exponential_draw(rng, size, wd, lam):
        with xp.errstate(divide="ignore", invalid="ignore"):
            return rng.standard_exponential(size, dtype=wd) / lam

    def poisson_counts(rng, size, lam):
        lam = xp.broadcast_to(lam.astype(xp.float64), size)
        drawable = (lam > 0) & (lam < _POISSON_MAX)
        k = rng.poisson(xp.where(drawable, lam, 0), size=size).astype(xp.float64)
        k = xp.where(lam >= _POISSON_MAX, xp.floor(lam + 0.5), k)
        return xp.where(xp.isnan(lam), nan, k)

    def poisson_draw(rng, size, wd, lam):
        return poisson_counts(rng, size, lam)

    def negative_binomial_draw(rng, size, wd, k, p):
        # failures before the k-th success: Poisson counts of a Gamma(k, (1 - p) / p) rate
        with xp.errstate(divide="ignore", invalid="ignore"):
            rate = standard_gamma(rng, size, wd, xp.maximum(k, 0)).astype(xp.float64) \
                * ((1 - p) / p)
            counts = poisson_counts(rng, size, xp.where(k > 0, rate, 0))
        return xp.where((k < 0) | (p <= 0), nan, counts)

    def generalized_negative_binomial_draw(rng, size, wd, mu, alpha):
        # mean mu, variance mu + alpha mu^2: Poisson counts of a Gamma(1/alpha, alpha mu)
        # rate; alpha = 0 is Poisson(mu)
        spread = alpha > 0
        a = xp.where(spread, alpha, 1)
        rate = standard_gamma(rng, size, wd, 1 / a).astype(xp.float64) * (a * mu)
        counts = poisson_counts(rng, size, xp.where(spread, rate, mu))
        return xp.where(alpha < 0, nan, counts)

    # random_*: scalar parameters as attributes --------------------------------------------
    def finish(x, dtype):
        return x.astype(dtype, copy=False)

    def round_down(x, dtype):
        """float32 ``x`` rounded toward -inf to a 16-bit float dtype, so that uniform
        samples stay below ``high`` and each value v of the coarse grid gets the
        probability of [v, next(v)) (rounding to nearest would move half a spacing of
        mass across every grid point).  The next lower value is one step of the 16-bit
        pattern: down for positives, up in magnitude for negatives, -tiny below 0."""
        y = x.astype(dtype)
        y32 = y.astype(x.dtype)
        bits = y.view(xp.int16)  # the selection runs on bit patterns: no 16-bit float math
        lower = xp.where(y32 > 0, bits - 1, xp.where(y32 < 0, bits + 1, -32767))
        return xp.where(y32 > x, lower, bits).astype(xp.int16).view(y.dtype)

    def finish_uniform(x, dtype):
        return round_down(x, dtype) if xp.dtype(dtype).itemsize == 2 else finish(x, dtype)

    def uniform(rng, low, high, shape, dtype):
        wd, (lo, hi) = scalars(dtype, low, high)
        return finish_uniform(uniform_draw(rng, tuple(shape), wd, lo, hi), dtype)

    def normal(rng, loc, scale, shape, dtype):
        wd, (mu, sigma) = scalars(dtype, loc, scale)
        return finish(normal_draw(rng, tuple(shape), wd, mu, sigma), dtype)

    def gamma(rng, alpha, beta, shape, dtype):
        wd, (a, b) = scalars(dtype, alpha, beta)
        return finish(gamma_draw(rng, tuple(shape), wd, a, b), dtype)

    def exponential(rng, lam, shape, dtype):
        wd, (rate,) = scalars(dtype, lam)
        return finish(exponential_draw(rng, tuple(shape), wd, rate), dtype)

    def poisson(rng, lam, shape, dtype):
        return finish(poisson_counts(rng, tuple(shape), xp.asarray(lam, xp.float64)), dtype)

    def negative_binomial(rng, k, p, shape, dtype):
        wd, (kk, pp) = scalars(dtype, k, p)
        return finish(negative_binomial_draw(rng, tuple(shape), wd, kk, pp), dtype)

    def generalized_negative_binomial(rng, mu, alpha, shape, dtype):
        wd, (m, a) = scalars(dtype, mu, alpha)
        return finish(generalized_negative_binomial_draw(rng, tuple(shape), wd, m, a), dtype)

    def randint(rng, low, high, shape, dtype):
        return rng.integers(low, high, size=tuple(shape), dtype=dtype)

    # sample_*: one set of draws per element of the parameter arrays -------------------------
    def sampler(draw, name, rounding=finish):
        def kernel(rng, *params, shape, dtype):
            wd = work_dtype(dtype)
            tail = (1,) * len(shape)
            args = [p.astype(wd).reshape(p.shape + tail) for p in params]
            return rounding(draw(rng, params[0].shape + tuple(shape), wd, *args), dtype)
        kernel.__name__ = kernel.__qualname__ = name
        return kernel

    # multinomial ----------------------------------------------------------------------------
    def categorical(rng, rows, n):
        """``n`` category indices per row of ``rows`` (b, k): the first j whose running
        sum exceeds a uniform draw (k when the row sums to less than the draw), as
        MXNet; negative entries count as 0.  One sorted search serves every row: row
        i's running sums are shifted past row i-1's largest."""
        b, k = rows.shape
        cdf = xp.cumsum(xp.maximum(rows.astype(xp.float64), 0), axis=1)
        u = rng.random((b, n), dtype=xp.float64)
        if b == 0 or n == 0:
            return xp.zeros((b, n), dtype=xp.int64)
        shift = xp.arange(b, dtype=xp.float64)[:, None] * (cdf[:, -1].max() + 1)
        pos = xp.searchsorted((cdf + shift).ravel(), (u + shift).ravel(), side="right")
        return pos.reshape(b, n) - xp.arange(b, dtype=pos.dtype)[:, None] * k

    def sample_multinomial(rng, data, shape, get_prob, dtype):
        k = data.shape[-1]
        rows = data.reshape(-1, k)
        n = math.prod(shape)
        idx = categorical(rng, rows, n)
        out_shape = data.shape[:-1] + tuple(shape) or (1,)  # as the op's rule
        sample = idx.reshape(out_shape).astype(dtype)
        if not get_prob:
            return (sample,)
        picked = xp.take_along_axis(as_float32(xp, rows), xp.minimum(idx, k - 1), axis=1)
        with xp.errstate(divide="ignore", invalid="ignore"):
            logp = xp.log(picked)
        return sample, logp.reshape(out_shape).astype(data.dtype)

    def sample_multinomial_backward(out_grad, data, sample):
        """d log(data[sample]) / d data: ``out_grad / data[sample]`` added up per
        category (one weighted count over every row's categories)."""
        k = data.shape[-1]
        rows = data.reshape(-1, k).astype(xp.float64)
        b = rows.shape[0]
        n = out_grad.size // b if b else 0
        idx = xp.minimum(sample.reshape(b, n).astype(xp.int64), k - 1)
        with xp.errstate(divide="ignore", invalid="ignore"):
            w = out_grad.reshape(b, n).astype(xp.float64) / xp.take_along_axis(rows, idx, 1)
        flat = (idx + xp.arange(b, dtype=xp.int64)[:, None] * k).ravel()
        grad = xp.bincount(flat, weights=w.ravel(), minlength=b * k)
        return grad.reshape(data.shape).astype(data.dtype)

    def sample_unique_zipfian(rng, range_max, shape):
        """Per row, distinct classes of [0, range_max) in the order first drawn from
        P(c) = log((c + 2) / (c + 1)) / log(range_max + 1), then the number of draws
        that took (one extra column).  Draws come in growing chunks until a row has
        enough distinct classes (rows loop: each stops after its own number of draws)."""
        rows, n = shape
        log_max = math.log(range_max + 1)
        out = xp.zeros((rows, n + 1), dtype=xp.int64)
        classes, trials = out[:, :n], out[:, n]
        for r in range(rows):
            drawn = xp.zeros((0,), dtype=xp.int64)
            chunk = max(2 * n, 64)
            while n:
                u = rng.random((chunk,), dtype=xp.float64)
                v = (xp.exp(u * log_max) - 1).astype(xp.int64) % range_max
                drawn = xp.concatenate([drawn, v])
                _, first = xp.unique(drawn, return_index=True)
                if first.size >= n:
                    kept = xp.sort(first)[:n]  # the first n distinct classes, in draw order
                    classes[r] = drawn[kept]
                    trials[r] = kept[-1] + 1
                    break
                chunk *= 2
        return out

    def shuffle(rng, x):
        return x[rng.permutation(x.shape[0])] if x.ndim else x.copy()

    table = {
        "random_uniform": (uniform, FLOAT), "random_normal": (normal, FLOAT),
        "random_gamma": (gamma, FLOAT), "random_exponential": (exponential, FLOAT),
        "random_poisson": (poisson, FLOAT),
        "random_negative_binomial": (negative_binomial, FLOAT),
        "random_generalized_negative_binomial": (generalized_negative_binomial, FLOAT),
        "random_randint": (randint, INT),
        "sample_multinomial": (sample_multinomial, FLOAT),
        "sample_multinomial_backward": (sample_multinomial_backward, FLOAT),
        "sample_unique_zipfian": (sample_unique_zipfian, ("int64",)),
        "shuffle": (shuffle, ALL),
    }
    for dist, draw in [("uniform", uniform_draw), ("normal", normal_draw),
                       ("gamma", gamma_draw), ("exponential", exponential_draw),
                       ("poisson", poisson_draw), ("negative_binomial", negative_binomial_draw),
                       ("generalized_negative_binomial", generalized_negative_binomial_draw)]:
        rounding = finish_uniform if dist == "uniform" else finish
        table[f"sample_{dist}"] = (sampler(draw, f"sample_{dist}", rounding), NUM)
    table.update(_density_kernels(xp, special))
    return table


def _density_table(xp, special):
    """dist -> (log-density, density or None for exp(log-density), derivatives of the
    log-density with respect to (sample, *params) (None: zero), trailing sample axes one
    density covers).  Arguments: the sample and the parameters reshaped to broadcast
    against it.  Out-of-domain values give what the formulas give (NaN, inf), as MXNet."""
    log, exp, log1p = xp.log, xp.exp, xp.log1p
    lgamma, digamma = special.gammaln, special.digamma

    def uniform_log(x, low, high):
        return -log(high - low)

    def uniform_pdf(x, low, high):
        return 1 / (high - low)

    def uniform_grads(x, low, high):
        r = 1 / (high - low)
        return None, r, -r

    def normal_log(x, mu, sigma):
        z = (x - mu) / sigma
        return -0.5 * z * z - log(sigma) - _HALF_LOG_2PI

    def normal_pdf(x, mu, sigma):
        z = (x - mu) / sigma
        return exp(-0.5 * z * z) / (sigma * _SQRT_2PI)

    def normal_grads(x, mu, sigma):
        z = (x - mu) / sigma
        dmu = z / sigma
        return -dmu, dmu, (z * z - 1) / sigma

    def gamma_log(x, alpha, beta):  # beta is a rate
        return alpha * log(beta) + (alpha - 1) * log(x) - beta * x - lgamma(alpha)

    def gamma_grads(x, alpha, beta):
        return (alpha - 1) / x - beta, log(beta) + log(x) - digamma(alpha), alpha / beta - x

    def exponential_log(x, lam):
        return log(lam) - lam * x

    def exponential_pdf(x, lam):
        return lam * exp(-lam * x)

    def exponential_grads(x, lam):
        return -lam, 1 / lam - x

    def poisson_log(x, lam):
        return x * log(lam) - lam - lgamma(x + 1)

    def poisson_grads(x, lam):
        return None, x / lam - 1

    def negative_binomial_log(x, k, p):
        return lgamma(x + k) - lgamma(k) - lgamma(x + 1) + k * log(p) + x * log1p(-p)

    def negative_binomial_grads(x, k, p):
        return None, digamma(x + k) - digamma(k) + log(p), k / p - x / (1 - p)

    def gnb_log(x, mu, alpha):
        # the negative binomial with k = 1 / alpha and p = 1 / (1 + r), r = mu * alpha
        k, r = 1 / alpha, mu * alpha
        return (lgamma(x + k) - lgamma(k) - lgamma(x + 1) - k * log1p(r)
                + x * (log(r) - log1p(r)))

    def gnb_grads(x, mu, alpha):
        k, r = 1 / alpha, mu * alpha
        dmu = x / mu - (x + k) / (mu + k)  # in k, so that alpha = 0 gives NaN, as MXNet
        dalpha = (x - mu) / (alpha * (1 + r)) - (digamma(x + k) - digamma(k) - log1p(r)) * k * k
        return None, dmu, dalpha

    def dirichlet_log(x, alpha):  # categories on the last axis
        norm = lgamma(alpha.sum(-1)) - lgamma(alpha).sum(-1)
        return ((alpha - 1) * log(x)).sum(-1) + norm

    def dirichlet_grads(x, alpha):
        return (alpha - 1) / x, digamma(alpha.sum(-1, keepdims=True)) - digamma(alpha) + log(x)

    return {
        "uniform": (uniform_log, uniform_pdf, uniform_grads, 0),
        "normal": (normal_log, normal_pdf, normal_grads, 0),
        "gamma": (gamma_log, None, gamma_grads, 0),
        "exponential": (exponential_log, exponential_pdf, exponential_grads, 0),
        "poisson": (poisson_log, None, poisson_grads, 0),
        "negative_binomial": (negative_binomial_log, None, negative_binomial_grads, 0),
        "generalized_negative_binomial": (gnb_log, None, gnb_grads, 0),
        "dirichlet": (dirichlet_log, None, dirichlet_grads, 1),
    }


def _density_kernels(xp, special):
    """random_pdf_<dist> and random_pdf_<dist>_backward for every distribution of
    ``_density_table``.  Parameters of shape S (+ the event axes) are viewed as
    S + (1,) * len(T) (+ event axes) against samples of shape S + T (+ event axes)."""

    def operands(sample, params, event):
        """The sample and parameters in working precision (float32 for 16-bit floats),
        the parameters reshaped to broadcast; and len(S)."""
        wd = xp.float64 if sample.dtype == xp.float64 else xp.float32
        x = sample.astype(wd, copy=False)
        batch = params[0].ndim - event
        tail = (1,) * (x.ndim - params[0].ndim)
        ps = [p.astype(wd, copy=False).reshape(p.shape[:batch] + tail + p.shape[batch:])
              for p in params]
        return x, ps, batch

    def value(log_fn, pdf_fn, x, ps, is_log):
        if is_log:
            return log_fn(x, *ps)
        return pdf_fn(x, *ps) if pdf_fn is not None else xp.exp(log_fn(x, *ps))

    def forward(dist, log_fn, pdf_fn, event):
        def kernel(sample, *params, is_log):
            x, ps, _ = operands(sample, params, event)
            with xp.errstate(all="ignore"):
                v = value(log_fn, pdf_fn, x, ps, is_log)
            full = x.shape[:x.ndim - event]
            out = xp.broadcast_to(v, full).astype(sample.dtype)
            # one Dirichlet sample gives shape (1,), as the op's rule
            return out.reshape(full or (1,)) if event else out
        kernel.__name__ = kernel.__qualname__ = f"random_pdf_{dist}"
        return kernel

    def backward(dist, log_fn, pdf_fn, grads_fn, event):
        def kernel(out_grad, sample, *params, is_log, grads):
            """out_grad * d log p (times p unless is_log) per input; the parameters'
            summed over their samples."""
            x, ps, batch = operands(sample, params, event)
            keep = x.shape[:x.ndim - event] + (1,) * event  # out_grad against x
            w = out_grad.astype(x.dtype, copy=False).reshape(keep)
            with xp.errstate(all="ignore"):
                if not is_log:  # d p = p * d log p
                    p = value(log_fn, pdf_fn, x, ps, False)
                    w = w * (p[..., None] if event else p)
                derivs = grads_fn(x, *ps)
                sample_axes = tuple(range(batch, x.ndim - event))
                out = []
                for i, (want, d, a) in enumerate(zip(grads, derivs, (sample, *params))):
                    if not want:
                        continue
                    if d is None:
                        out.append(xp.zeros_like(a))
                        continue
                    g = w * d
                    if i and sample_axes:
                        g = g.sum(axis=sample_axes)
                    elif not i:
                        g = xp.broadcast_to(g, x.shape)
                    out.append(g.astype(a.dtype).reshape(a.shape))
            return tuple(out)
        kernel.__name__ = kernel.__qualname__ = f"random_pdf_{dist}_backward"
        return kernel

    table = {}
    for dist, (log_fn, pdf_fn, grads_fn, event) in _density_table(xp, special).items():
        table[f"random_pdf_{dist}"] = (forward(dist, log_fn, pdf_fn, event), FLOAT)
        table[f"random_pdf_{dist}_backward"] = (backward(dist, log_fn, pdf_fn, grads_fn,
                                                         event), FLOAT)
    return table
