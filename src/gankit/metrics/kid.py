"""Kernel Inception Distance: the unbiased MMD² with the cubic polynomial kernel
``k(x, y) = (xᵀy / d + 1)³`` (Bińkowski et al. 2018), averaged over random subsets."""

from __future__ import annotations

import numpy as np

from ..errors import GankitError


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    m, n = x.shape[0], y.shape[0]
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def kid(real, fake, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> dict:
    """KID mean and standard deviation over ``subsets`` random subsets of ``subset_size``."""
    r, f = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    size = min(subset_size, r.shape[0], f.shape[0])
    if size < 2:
        raise GankitError(f"KID needs at least 2 real and 2 generated samples, got {r.shape[0]} and {f.shape[0]}")
    rng = np.random.default_rng(seed)
    vals = [mmd2_unbiased(r[rng.choice(r.shape[0], size, replace=False)],
                          f[rng.choice(f.shape[0], size, replace=False)]) for _ in range(subsets)]
    return {"kid": float(np.mean(vals)), "kid_std": float(np.std(vals)), "subset_size": size, "subsets": subsets}
