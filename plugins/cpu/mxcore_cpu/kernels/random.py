"""Random kernels; the first argument of each sampler is the device's generator.

Only generator methods that numpy's ``Generator`` and CuPy's (through the CUDA
plugin's ``CupyGenerator``) both have are used: ``random``, ``standard_normal``,
``standard_exponential``, ``standard_gamma``, ``poisson``, ``integers`` and
``permutation``; distribution parameters reach them as arrays (CuPy takes no numpy
scalars).  Continuous samples are drawn in float32 (float64 for float64 outputs) and
rounded once to the output dtype; counts (Poisson and the negative binomials) are drawn
from float64 rates.

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
    return table
