"""Pictures of a low-dimensional GAN: samples over the data density, D, and the losses.

matplotlib with the Agg backend (no display needed). Every function writes one PNG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _grid2d(bounds: np.ndarray, n: int = 200):
    xs = np.linspace(bounds[0, 0], bounds[0, 1], n)
    ys = np.linspace(bounds[1, 0], bounds[1, 1], n)
    gx, gy = np.meshgrid(xs, ys)
    return gx, gy, np.stack([gx.ravel(), gy.ravel()], 1)


def _equal_if_comparable(ax, bounds: np.ndarray) -> None:
    """Equal scales on both axes where their spans are within 3× (a user's points may
    have coordinates in very different units)."""
    spans = bounds[:, 1] - bounds[:, 0]
    if spans.max() <= 3 * spans.min():
        ax.set_aspect("equal")


def plot_samples(path: Path, samples: np.ndarray, log_prob: Callable[[np.ndarray], np.ndarray],
                 bounds: np.ndarray, title: str = "") -> None:
    """Generated samples over the data density (2-D: log-density image; 1-D: histogram)."""
    fig, ax = plt.subplots(figsize=(5.5, 5) if samples.shape[1] == 2 else (7, 4))
    if samples.shape[1] == 2:
        gx, gy, pts = _grid2d(bounds)
        lp = log_prob(pts).reshape(gx.shape)
        ax.imshow(np.exp(lp), origin="lower", extent=bounds.ravel(), cmap="Blues", aspect="auto",
                  vmax=np.exp(lp).max() * 0.5 + 1e-300)
        inside = ((samples >= bounds[:, 0]) & (samples <= bounds[:, 1])).all(1)
        ax.scatter(samples[inside, 0], samples[inside, 1], s=2, c="tab:red", alpha=0.5,
                   label=f"G(z), {inside.sum()} of {len(samples)} in view")
        ax.set_xlim(bounds[0])
        ax.set_ylim(bounds[1])
        _equal_if_comparable(ax, bounds)
    else:
        xs = np.linspace(bounds[0, 0], bounds[0, 1], 600)
        ax.plot(xs, np.exp(log_prob(xs[:, None])), color="k", label="p_data")
        ax.hist(samples[:, 0], bins=120, range=tuple(bounds[0]), density=True, alpha=0.5,
                color="tab:green", label="G(z) (histogram)")
        ax.set_xlim(bounds[0])
        ax.set_xlabel("x")
        ax.set_ylabel("density")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title or "samples over the data density")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_discriminator(path: Path, d_of: Callable[[np.ndarray], np.ndarray],
                       log_prob: Callable[[np.ndarray], np.ndarray], bounds: np.ndarray,
                       samples: np.ndarray | None = None, title: str = "") -> None:
    """D(x) over the data region: a heat map in 2-D; in 1-D a curve beside D* = p_d/(p_d+p_g).

    In 1-D, ``p_g`` is a Gaussian kernel density estimate from ``samples`` (G has no explicit
    density), so the D* curve shown is an estimate and is labelled as one.
    """
    if bounds.shape[0] == 2:
        gx, gy, pts = _grid2d(bounds)
        d = d_of(pts).reshape(gx.shape)
        fig, ax = plt.subplots(figsize=(6, 5))
        im = ax.imshow(d, origin="lower", extent=bounds.ravel(), cmap="RdBu_r", vmin=0, vmax=1, aspect="auto")
        _equal_if_comparable(ax, bounds)
        lp = log_prob(pts).reshape(gx.shape)
        ax.contour(gx, gy, lp, levels=[np.log(np.exp(lp).max()) - 4.5], colors="k", linewidths=0.6)
        fig.colorbar(im, ax=ax, label="D(x)")
        ax.set_title(title or "discriminator D(x); black: data modes")
    else:
        from scipy.stats import gaussian_kde

        xs = np.linspace(bounds[0, 0], bounds[0, 1], 600)
        p_data = np.exp(log_prob(xs[:, None]))
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(xs, d_of(xs[:, None]), color="tab:blue", label="D(x)")
        if samples is not None and len(samples) > 1 and np.std(samples) > 0:
            p_g = gaussian_kde(samples[:, 0])(xs)
            ax.plot(xs, p_data / (p_data + p_g + 1e-300), "--", color="tab:purple",
                    label="D* = p_data/(p_data+p_g), p_g by KDE")
            ax.plot(xs, p_g / p_g.max(), ":", color="tab:green", label="p_g (KDE, scaled)")
        ax.plot(xs, p_data / p_data.max(), color="k", lw=0.8, label="p_data (scaled)")
        ax.axhline(0.5, color="grey", lw=0.5)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlim(bounds[0])
        ax.set_xlabel("x")
        ax.legend(fontsize=8, loc="upper right")
        ax.set_title(title or "discriminator")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_losses(path: Path, rows: Sequence[dict]) -> None:
    """Losses, V~ and D's mean outputs against the step, from metrics.jsonl rows."""
    rows = [r for r in rows if "loss_d" in r]
    if not rows:
        return
    step = np.array([r["step"] for r in rows])
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.plot(step, [r["loss_d"] for r in rows], label="L_D = -V~")
    a.plot(step, [r["loss_g"] for r in rows], label="L_G")
    a.axhline(np.log(4), color="grey", lw=0.6, ls="--", label="log 4 (L_D at the optimum)")
    a.set_xlabel("step")
    a.set_title("losses")
    a.legend(fontsize=8)
    b.plot(step, [r["d_real"] for r in rows], label="mean D(x)")
    b.plot(step, [r["d_fake"] for r in rows], label="mean D(G(z))")
    b.axhline(0.5, color="grey", lw=0.6, ls="--")
    b.set_ylim(-0.02, 1.02)
    b.set_xlabel("step")
    b.set_title("discriminator outputs")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
