"""Figures of ``gankit theory``."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..theory.densities import optimal_discriminator  # noqa: E402


def _dens(dist, xs):
    out = dist.log_prob(xs[:, None])
    return np.exp(out.numpy() if hasattr(out, "numpy") else out)


def plot_optimal_d(path: Path, p_data, p_g, d_of, bounds, region) -> None:
    xs = np.linspace(*bounds[0], 1200)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(xs, _dens(p_data, xs), "k", label="p_data")
    ax.plot(xs, _dens(p_g, xs), "g", label="p_g")
    ax.plot(xs, optimal_discriminator(p_data, p_g, xs), "--", color="tab:purple", lw=2,
            label="D* = p_data/(p_data+p_g)")
    ax.plot(xs, d_of(xs[:, None]), color="tab:blue", label="trained D")
    ax.axvspan(region.min(), region.max(), color="grey", alpha=0.1, label="data region")
    ax.set_xlim(-3, 6)
    ax.legend(fontsize=8)
    ax.set_title("Proposition 1: the trained discriminator against D*")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_figure1(path: Path, p_data, snaps, bounds) -> None:
    """The paper's Figure 1: data (black), p_g (green), D (blue, dashed); below, z -> x."""
    xs = np.linspace(*bounds[0], 2001)
    fig, axes = plt.subplots(1, len(snaps), figsize=(4 * len(snaps), 3.6), sharey=True)
    zq = np.linspace(-2, 2, 11)
    for ax, snap, letter in zip(axes, snaps, "abcdefgh"):
        pd, pg = _dens(p_data, xs), _dens(snap["law"], xs)
        top = max(pd.max(), 1.0)
        ax.plot(xs, pd / top, "k:", lw=2, label="p_data")
        ax.plot(xs, pg / top, "g", label="p_g")
        ax.plot(xs, snap["d"], "b--", label="D")
        for z in zq:  # the mapping x = G(z): lines from z (bottom) to x (just above)
            x = snap["a"] * z + snap["b"]
            ax.plot([z, x], [-0.35, -0.12], color="grey", lw=0.7)
        ax.axhline(-0.35, color="k", lw=0.5)
        ax.axhline(-0.12, color="k", lw=0.5)
        ax.text(-2.9, -0.33, "z", fontsize=8)
        ax.text(-2.9, -0.10, "x", fontsize=8)
        ax.set_xlim(-3, 5)
        ax.set_ylim(-0.4, 1.05)
        ax.set_title(f"({letter}) step {snap['step']}")
    axes[0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(path: Path, curves: dict, xlabel: str, ylabel: str, log: bool = False) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, pts in curves.items():
        t, v = zip(*pts)
        ax.plot(t, np.maximum(v, 1e-12) if log else v, label=name)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_saturation(path: Path, dg, grads: dict) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    for kind, g in grads.items():
        ax.loglog(dg, g, label=f"{kind}: |∂L_G/∂f| per example")
    ax.set_xlabel("D(G(z))")
    ax.set_ylabel("gradient magnitude w.r.t. the logit")
    ax.set_title("saturation: the minimax gradient vanishes as D rejects G")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
