"""Energy distance (Székely & Rizzo): ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` for
independent X, X' ~ P and Y, Y' ~ Q, with Euclidean norms. It is zero exactly when P = Q
and, unlike the Fréchet distance, sees more than two moments. Each subset's estimate is
the unbiased U-statistic (pairs of a point with itself left out); the spread is over
random subsets, as for KID."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import GankitError


def energy_distance_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """The U-statistic estimate of the energy distance between the samples ``x`` and ``y``."""
    a, b = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    m, n = len(a), len(b)
    xy = torch.cdist(a, b).mean()
    xx = torch.cdist(a, a).sum() / (m * (m - 1))   # the diagonal is zero
    yy = torch.cdist(b, b).sum() / (n * (n - 1))
    return float(2 * xy - xx - yy)


def energy_distance(real, fake, subsets: int = 50, subset_size: int = 1000, seed: int = 0) -> dict:
    """Mean and standard deviation of the estimate over ``subsets`` random subsets of
    ``subset_size`` real and generated points."""
    r, f = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    size = min(subset_size, len(r), len(f))
    if size < 2:
        raise GankitError(f"the energy distance needs at least 2 real and 2 generated samples, "
                          f"got {len(r)} and {len(f)}")
    rng = np.random.default_rng(seed)
    vals = [energy_distance_unbiased(r[rng.choice(len(r), size, replace=False)],
                                     f[rng.choice(len(f), size, replace=False)]) for _ in range(subsets)]
    return {"energy": float(np.mean(vals)), "energy_std": float(np.std(vals)), "subset_size": size,
            "subsets": subsets}
