"""Fréchet distance between Gaussians fitted to features (FID when the features are
Inception-v3 pool features), in float64 (docs/metrics.md)."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from ..errors import GankitError


def check_enough(n: int, d: int, which: str = "samples",
                 hint: str = "use at least {need} (10,000 is standard)") -> None:
    """Refuse a Fréchet distance from ``n`` ``which`` of ``d`` features each (the covariance
    would be singular); ``hint`` (with ``{need}``) says what to do instead."""
    if n <= d:
        raise GankitError(f"Fréchet distance needs more {which} than feature dimensions: got {n} {which} "
                          f"of {d} features; " + hint.format(need=d + 1))


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of [n, d] features, in float64.

    Refuses ``n <= d``: the covariance would be singular and the distance meaningless.
    """
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise GankitError(f"features must be [n, d], got shape {f.shape}")
    n, d = f.shape
    check_enough(n, d)
    if not np.isfinite(f).all():
        raise GankitError("features contain NaN or Inf")
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """``‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^{1/2})``.

    ``Tr (Σ1 Σ2)^{1/2}`` is computed as the sum of square roots of the eigenvalues of the
    symmetric positive semi-definite ``Σ1^{1/2} Σ2 Σ1^{1/2}`` (same spectrum as Σ1 Σ2), which
    avoids the complex round-off of a general matrix square root.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise GankitError(f"statistics do not match: means {mu1.shape} / {mu2.shape}, "
                          f"covariances {s1.shape} / {s2.shape}")
    w1, v1 = scipy.linalg.eigh(s1)
    root1 = (v1 * np.sqrt(np.clip(w1, 0, None))) @ v1.T
    m = root1 @ s2 @ root1
    eig = scipy.linalg.eigvalsh((m + m.T) / 2)
    tr_covmean = np.sqrt(np.clip(eig, 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def fid_from_features(real, fake) -> float:
    return frechet_distance(*feature_statistics(real), *feature_statistics(fake))
