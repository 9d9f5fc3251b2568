"""Parzen-window log-likelihood (the protocol of the GAN paper's Table 1; docs/metrics.md).

A Gaussian kernel of width σ on each generated sample gives a density; σ is chosen on a grid
by the mean log-likelihood of validation data, and the score is the mean log-likelihood of
the test data under that σ, ± its standard error. Batched: distances are computed in
float64 blocks, so 10k × 10k MNIST needs a few hundred MB at most.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import GankitError

SIGMAS = tuple(np.logspace(-1, 0, 10))


def _sq_distances(x: torch.Tensor, s: torch.Tensor, s_sq: torch.Tensor) -> torch.Tensor:
    return (x.square().sum(1, keepdim=True) + s_sq[None] - 2 * x @ s.T).clamp_min(0)


def parzen_log_likelihoods(samples, points, sigmas=SIGMAS, batch: int = 1000) -> np.ndarray:
    """Log-likelihood of each point under the Parzen window of each σ: [len(sigmas), m]."""
    s = torch.as_tensor(np.asarray(samples, np.float64).reshape(len(samples), -1))
    x = torch.as_tensor(np.asarray(points, np.float64).reshape(len(points), -1))
    if s.shape[1] != x.shape[1]:
        raise GankitError(f"samples have {s.shape[1]} dimensions, the data {x.shape[1]}")
    n, d = s.shape
    sig = torch.as_tensor(np.asarray(sigmas, np.float64))
    s_sq = s.square().sum(1)
    out = []
    for start in range(0, x.shape[0], batch):
        d2 = _sq_distances(x[start:start + batch], s, s_sq)               # [b, n]
        ll = torch.logsumexp(-d2[None] / (2 * sig[:, None, None] ** 2), dim=2)  # [S, b]
        out.append(ll - math.log(n) - d / 2 * torch.log(2 * math.pi * sig[:, None] ** 2))
    return torch.cat(out, dim=1).numpy()


def mean_and_se(ll: np.ndarray) -> dict:
    """The mean of per-point log-likelihoods and its standard error (Table 1's "± s.e.")."""
    return {"mean": float(ll.mean()), "se": float(ll.std(ddof=1) / math.sqrt(ll.size))}


def parzen_score(samples, test, validation, sigmas=SIGMAS, batch: int = 1000) -> dict:
    """Choose σ on ``validation``, score ``test``: mean log-likelihood ± standard error."""
    if len(samples) < 2 or len(test) < 2 or len(validation) < 1:
        raise GankitError("Parzen estimation needs at least 2 samples, 2 test points and 1 validation point")
    val = parzen_log_likelihoods(samples, validation, sigmas, batch).mean(1)
    best = int(np.argmax(val))
    ll = parzen_log_likelihoods(samples, test, [sigmas[best]], batch)[0]
    return {**mean_and_se(ll),
            "sigma": float(sigmas[best]), "validation_by_sigma": {f"{s:.4f}": float(v) for s, v in zip(sigmas, val)},
            "n_samples": len(samples), "n_test": len(test), "n_validation": len(validation)}
