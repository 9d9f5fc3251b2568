"""Closed-form pieces of the paper's theory (docs/theory.md) for 1-D and 2-D densities.

Densities are given as log-density callables ``log_p(x) -> [n]`` on points ``x`` of shape
[n, d]; :class:`~gankit.data.synthetic.GaussianMixture` and :class:`AffineGaussian` provide
them. Integrals are computed by composite Gauss–Legendre quadrature on a box.

- Proposition 1: ``D*_G(x) = p_data(x) / (p_data(x) + p_g(x))``.
- Theorem 1: ``C(G) = max_D V(D, G) = -log 4 + 2 JSD(p_data || p_g)``.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import nn

LogDensity = Callable[[np.ndarray], np.ndarray]
LOG4 = math.log(4.0)


class AffineGaussian:
    """The law of ``x = A z + b`` for ``z ~ N(0, I_k)``: ``N(b, A Aᵀ)`` (A of full row rank)."""

    def __init__(self, A, b):
        self.A = np.atleast_2d(np.asarray(A, dtype=np.float64))
        self.b = np.atleast_1d(np.asarray(b, dtype=np.float64))
        self.dim = self.b.size
        self.cov = self.A @ self.A.T
        self._chol = np.linalg.cholesky(self.cov)
        self._logdet = 2 * np.log(np.diag(self._chol)).sum()

    def log_prob(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).reshape(-1, self.dim)
        sol = np.linalg.solve(self._chol, (x - self.b).T)
        return -0.5 * (sol ** 2).sum(0) - 0.5 * self.dim * math.log(2 * math.pi) - 0.5 * self._logdet


class AffineGenerator(nn.Module):
    """``G(z) = A z + b``: a generator whose p_g is known in closed form (with normal noise)."""

    def __init__(self, z_dim: int = 1, out_dim: int = 1, scale: float = 1.0, shift: float = 0.0):
        super().__init__()
        self.z_dim, self.out_shape = z_dim, (out_dim,)
        self.A = nn.Parameter(torch.eye(out_dim, z_dim) * scale)
        self.b = nn.Parameter(torch.full((out_dim,), float(shift)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.A.T + self.b

    def law(self) -> AffineGaussian:
        return AffineGaussian(self.A.detach().double().cpu().numpy(), self.b.detach().double().cpu().numpy())


def _as_log(f) -> LogDensity:
    """Accept a GaussianMixture / AffineGaussian or a callable; return numpy log-density."""
    if hasattr(f, "log_prob"):
        def lp(x):
            out = f.log_prob(x)
            return out.numpy() if torch.is_tensor(out) else np.asarray(out)
        return lp
    return f


def optimal_discriminator(log_p_data, log_p_g, x) -> np.ndarray:
    """``D*(x) = p_data / (p_data + p_g)``, computed as ``sigmoid(log p_data - log p_g)``."""
    x = np.asarray(x, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    d = _as_log(log_p_data)(x) - _as_log(log_p_g)(x)
    return 1.0 / (1.0 + np.exp(-np.clip(d, -745, 745)))


def gauss_legendre_grid(bounds, n: int = 64, panels: int = 64):
    """Nodes [N, d] and weights [N] of a composite Gauss–Legendre rule on a box [d, 2]."""
    bounds = np.asarray(bounds, dtype=np.float64).reshape(-1, 2)
    t, w = np.polynomial.legendre.leggauss(n)
    axes, weights = [], []
    for lo, hi in bounds:
        edges = np.linspace(lo, hi, panels + 1)
        half = (edges[1:] - edges[:-1])[:, None] / 2
        mid = (edges[1:] + edges[:-1])[:, None] / 2
        axes.append((mid + half * t[None]).ravel())
        weights.append((half * w[None]).ravel())
    if len(axes) == 1:
        return axes[0][:, None], weights[0]
    gx, gy = np.meshgrid(axes[0], axes[1], indexing="ij")
    wx, wy = np.meshgrid(weights[0], weights[1], indexing="ij")
    return np.stack([gx.ravel(), gy.ravel()], 1), (wx * wy).ravel()


def default_quadrature(bounds) -> tuple[int, int]:
    """(nodes per panel, panels per axis): dense in 1-D, moderate in 2-D (memory)."""
    return (32, 256) if np.asarray(bounds).reshape(-1, 2).shape[0] == 1 else (16, 48)


def jsd(p, q, bounds, n: int | None = None, panels: int | None = None) -> float:
    """Jensen–Shannon divergence (nats) by quadrature on ``bounds`` ([d, 2], d = 1 or 2).

    ``JSD = ½ KL(p‖m) + ½ KL(q‖m)``, ``m = (p+q)/2``, integrated in log space; mass outside
    the box is ignored, so choose a box that holds both densities.
    """
    dn, dp = default_quadrature(bounds)
    x, w = gauss_legendre_grid(bounds, n or dn, panels or dp)
    lp, lq = _as_log(p)(x), _as_log(q)(x)
    lm = np.logaddexp(lp, lq) - math.log(2)
    integrand = 0.5 * np.exp(lp) * (lp - lm) + 0.5 * np.exp(lq) * (lq - lm)
    return float(max(0.0, np.dot(w, integrand)))


def virtual_criterion(p_data, p_g, bounds, **kw) -> float:
    """``C(G) = -log 4 + 2 · JSD(p_data ‖ p_g)`` (Theorem 1)."""
    return -LOG4 + 2 * jsd(p_data, p_g, bounds, **kw)


def value_by_quadrature(d_of: Callable[[np.ndarray], np.ndarray], p_data, p_g, bounds, **kw) -> float:
    """``V(D, G) = ∫ p_data log D + p_g log(1 - D)`` for a given discriminator ``d_of``."""
    dn, dp = default_quadrature(bounds)
    x, w = gauss_legendre_grid(bounds, kw.get("n") or dn, kw.get("panels") or dp)
    d = np.clip(d_of(x), 1e-300, 1 - 1e-16)
    return float(np.dot(w, np.exp(_as_log(p_data)(x)) * np.log(d) + np.exp(_as_log(p_g)(x)) * np.log1p(-d)))
