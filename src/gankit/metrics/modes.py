"""Mode coverage of a Gaussian mixture (the protocol of PacGAN, Lin et al. 2018; docs/metrics.md).

A generated sample is *high quality* when it lies within ``3 std`` (Euclidean distance) of
its nearest mixture mean; a mode is *captured* when at least one high-quality sample is
nearest to it; *reverse KL* is ``KL(p_hat || uniform)`` over the modes, where ``p_hat`` is
the share of high-quality samples at each mode.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import GankitError


def mode_stats(samples, means, std: float, threshold: float = 3.0) -> dict[str, float | int | None]:
    """Mode metrics of ``samples`` [n, d] against mixture ``means`` [K, d] of common ``std``.

    Returns ``modes`` (captured, out of ``num_modes``), ``high_quality`` (a fraction in
    [0, 1]) and ``reverse_kl`` (nats; ``None`` when no sample is high quality, since
    ``p_hat`` is then undefined).
    """
    x = np.asarray(samples, dtype=np.float64)
    mu = np.asarray(means, dtype=np.float64)
    if x.ndim == 1 and mu.ndim == 2 and mu.shape[1] == 1:
        x = x[:, None]
    if x.ndim != 2 or mu.ndim != 2 or x.shape[1] != mu.shape[1]:
        raise GankitError(f"mode metrics need samples [n, {mu.shape[-1]}], got shape {x.shape}")
    if x.shape[0] == 0:
        raise GankitError("mode metrics need at least one sample")
    if not np.isfinite(x).all():
        raise GankitError("mode metrics: the samples contain NaN or Inf")
    # Squared distances by expansion, in chunks, to keep memory bounded for large n.
    k = mu.shape[0]
    nearest = np.empty(x.shape[0], dtype=np.int64)
    dist = np.empty(x.shape[0])
    for s in range(0, x.shape[0], 65536):
        d2 = ((x[s:s + 65536, None, :] - mu[None, :, :]) ** 2).sum(-1)
        nearest[s:s + 65536] = d2.argmin(1)
        dist[s:s + 65536] = np.sqrt(d2[np.arange(d2.shape[0]), nearest[s:s + 65536]])
    hq = dist <= threshold * std
    counts = np.bincount(nearest[hq], minlength=k)
    n_hq = int(counts.sum())
    rkl = reverse_kl_uniform(counts) if n_hq else None
    return {
        "modes": int((counts > 0).sum()),
        "num_modes": int(k),
        "high_quality": n_hq / x.shape[0],
        "reverse_kl": rkl,
    }


def reverse_kl_uniform(counts) -> float:
    """``KL(p_hat || uniform)`` for per-mode counts (zero counts contribute nothing)."""
    c = np.asarray(counts, dtype=np.float64)
    if c.sum() <= 0:
        return math.nan
    p = c[c > 0] / c.sum()
    return float(np.sum(p * np.log(p * c.size)))
