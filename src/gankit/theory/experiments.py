"""The paper's claims, run: ``gankit theory`` (docs/theory.md).

All experiments use 1-D data ``p_data = N(2, 0.5²)`` (the ``gaussian1d`` data set) and an
affine generator ``G(z) = a z + b`` with ``z ~ N(0, 1)``, so that ``p_g = N(b, a²)`` is known
in closed form and D*, JSD and C(G) can be computed to quadrature precision. D is a small
MLP trained by the same Algorithm 1 code (``training/loop.py``) as every other run.

The *data region* over which D is compared with D* or with 1/2 is where
``p_data(x) + p_g(x)`` is at least 5 % of its maximum: outside it neither density has
samples to teach D anything.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import objectives
from ..config import check_seed
from ..data import DistributionSource, get_distribution
from ..models.mlp import MLPDiscriminator
from ..training.loop import GANTrainer
from .densities import LOG4, AffineGenerator, jsd, optimal_discriminator, value_by_quadrature

BOUNDS = np.array([[-8.0, 10.0]])
EXPERIMENTS = ("optimal-d", "figure1", "saturation", "k")


@dataclass
class Setup:
    G: AffineGenerator
    D: MLPDiscriminator
    trainer: GANTrainer
    p_data: object


def _setup(seed: int, scale: float, shift: float, loss: str = "nonsaturating", k: int = 1,
           lr_d: float = 1e-3, lr_g: float = 1e-3, batch: int = 512, hidden: int = 64,
           g_optimizer: str = "adam") -> Setup:
    torch.manual_seed(seed)
    p_data = get_distribution("gaussian1d")
    G = AffineGenerator(1, 1, scale, shift)
    D = MLPDiscriminator((1,), hidden=hidden, depth=2)
    opt_g = (torch.optim.Adam(G.parameters(), lr=lr_g, betas=(0.5, 0.999)) if g_optimizer == "adam"
             else torch.optim.SGD(G.parameters(), lr=lr_g, momentum=0.5))
    trainer = GANTrainer(
        G, D, opt_g,
        torch.optim.Adam(D.parameters(), lr=lr_d, betas=(0.5, 0.999)),
        DistributionSource(p_data, torch.device("cpu")), loss, k, batch, 1, "normal",
        torch.Generator().manual_seed(seed + 1), torch.Generator().manual_seed(seed + 2))
    return Setup(G, D, trainer, p_data)


def _d_of(D):
    def f(x: np.ndarray) -> np.ndarray:
        was = D.training
        D.eval()
        with torch.no_grad():
            out = torch.sigmoid(D(torch.as_tensor(x, dtype=torch.float32).reshape(-1, 1))).double().numpy()
        D.train(was)
        return out
    return f


def _region(p_data, p_g, n: int = 4001) -> np.ndarray:
    xs = np.linspace(*BOUNDS[0], n)[:, None]
    s = np.exp(p_data.log_prob(xs).numpy()) + np.exp(p_g.log_prob(xs))
    return xs[s >= 0.05 * s.max()]


def _jsd(setup: Setup) -> float:
    return jsd(setup.p_data, setup.G.law(), BOUNDS)


def _set_lr(opt, lr):
    for g in opt.param_groups:
        g["lr"] = lr


def train_discriminator(setup: Setup, steps: int, lr: float = 1e-3) -> None:
    """D steps only (G fixed), the learning rate decaying linearly to 0."""
    for t in range(steps):
        _set_lr(setup.trainer.opt_d, lr * (1 - t / steps))
        setup.trainer.discriminator_step()


# ---------------------------------------------------------------------------- experiments
def exp_optimal_d(out: Path, seed: int = 0, steps: int = 4000) -> dict:
    """Proposition 1 and Theorem 1: with G fixed, a trained D approaches D* and Ṽ → C(G)."""
    s = _setup(seed, scale=1.0, shift=1.0, batch=1024)
    p_g = s.G.law()
    train_discriminator(s, steps)
    region = _region(s.p_data, p_g)
    d, d_star = _d_of(s.D)(region), optimal_discriminator(s.p_data, p_g, region)
    gen = torch.Generator().manual_seed(seed + 99)
    with torch.no_grad():
        n = 400_000
        real = s.p_data.sample(n, gen)
        fake = s.G(torch.randn(n, 1, generator=gen))
        s.D.eval()
        v_mc = objectives.value(s.D(real).double(), s.D(fake).double()).item()
    c_g = -LOG4 + 2 * jsd(s.p_data, p_g, BOUNDS)
    v_quad = value_by_quadrature(_d_of(s.D), s.p_data, p_g, BOUNDS)
    v_star = value_by_quadrature(lambda x: optimal_discriminator(s.p_data, p_g, x), s.p_data, p_g, BOUNDS)
    from ..viz.theory import plot_optimal_d
    plot_optimal_d(out / "optimal_d.png", s.p_data, p_g, _d_of(s.D), BOUNDS, region)
    return {
        "p_data": "N(2, 0.5^2)", "p_g": "N(1, 1)", "d_steps": steps,
        "max_abs_d_minus_dstar": float(np.abs(d - d_star).max()),
        "region": [float(region.min()), float(region.max())],
        "value_monte_carlo": v_mc, "value_quadrature": v_quad, "value_at_dstar": v_star,
        "C_of_G": c_g, "abs_value_minus_C": abs(v_mc - c_g),
        "pass": bool(np.abs(d - d_star).max() <= 0.02 and abs(v_mc - c_g) <= 0.01),
    }


def _train_together(s: Setup, steps: int, lr: float, every: int = 50, marks=(),
                    lr_g: float | None = None) -> tuple[list, list]:
    """Algorithm 1 with both learning rates decaying linearly to 0; the JSD every ``every``
    steps and snapshots (p_g, D, G's parameters) at the steps in ``marks``."""
    snaps, curve = [], []
    for t in range(steps + 1):
        if t in marks:
            snaps.append({"step": t, "law": s.G.law(), "d": _d_of(s.D)(np.linspace(*BOUNDS[0], 2001)),
                          "a": float(s.G.A.item()), "b": float(s.G.b.item())})
        if t % every == 0 or t == steps:
            curve.append((t, _jsd(s)))
        if t == steps:
            break
        f = 1 - t / steps
        _set_lr(s.trainer.opt_d, lr * f)
        _set_lr(s.trainer.opt_g, (lr if lr_g is None else lr_g) * f)
        s.trainer.step()
    return snaps, curve


def exp_figure1(out: Path, seed: int = 0, steps: int = 4000, lr: float = 5e-3) -> dict:
    """Theorem 1's global optimum, reached: G and D trained together until p_g = p_data
    and D = 1/2; the paper's Figure 1 (a)–(d) redrawn from snapshots of the run."""
    s = _setup(seed, scale=1.5, shift=-1.0, lr_g=lr, lr_d=lr)
    train_discriminator(s, 300, lr=lr)
    snaps, curve = _train_together(s, steps, lr, marks={0, steps // 8, steps // 3, steps})
    p_g = s.G.law()
    region = _region(s.p_data, p_g)
    d = _d_of(s.D)(region)
    final_jsd = _jsd(s)
    from ..viz.theory import plot_curves, plot_figure1
    plot_figure1(out / "figure1.png", s.p_data, snaps, BOUNDS)
    plot_curves(out / "figure1_jsd.png", {"JSD(p_data ‖ p_g)": curve}, "generator step", "JSD (nats)", log=True)
    return {
        "steps": steps, "final_jsd": final_jsd, "final_G": {"a": float(s.G.A.item()), "b": float(s.G.b.item())},
        "max_abs_d_minus_half": float(np.abs(d - 0.5).max()),
        "C_of_G": -LOG4 + 2 * final_jsd,
        "pass": bool(final_jsd <= 0.01 and np.abs(d - 0.5).max() <= 0.02),
    }


def exp_saturation(out: Path, seed: int = 0, steps: int = 2000, lr: float = 5e-3, lr_g: float = 0.05) -> dict:
    """Why the non-saturating loss exists: the minimax gradient vanishes when D rejects G.

    G takes plain gradient steps (SGD with momentum 0.5, as in the paper): with Adam, whose
    steps do not depend on the gradient's scale, a vanishing gradient is rescaled back up and
    the stall this experiment shows does not appear in the same way.
    """
    dg = np.logspace(-5, math.log10(1 - 1e-5), 400)
    f = torch.tensor(np.log(dg) - np.log1p(-dg), requires_grad=True)
    grads = {}
    for kind in ("minimax", "nonsaturating"):
        (g,) = torch.autograd.grad(objectives.generator_loss(f, kind) * f.numel(), f)
        grads[kind] = g.abs().numpy()
    curves, summary = {}, {}
    for kind in ("minimax", "nonsaturating"):
        s = _setup(seed, scale=0.5, shift=-4.0, loss=kind, lr_g=lr_g, lr_d=lr, g_optimizer="sgd")
        train_discriminator(s, 500, lr=lr)   # D first learns to reject G confidently
        with torch.no_grad():
            d_fake0 = float(torch.sigmoid(s.D(s.G(torch.randn(4096, 1)))).mean())
        _, curve = _train_together(s, steps, lr, every=25, lr_g=lr_g)
        first_below = next((t for t, j in curve if j < 0.05), None)
        curves[kind] = curve
        summary[kind] = {"initial_mean_D_of_G": d_fake0, "final_jsd": curve[-1][1],
                         "first_step_jsd_below_0.05": first_below}
    from ..viz.theory import plot_curves, plot_saturation
    plot_saturation(out / "saturation_gradients.png", dg, grads)
    plot_curves(out / "saturation_runs.png", {f"{k} G loss": v for k, v in curves.items()},
                "generator step", "JSD(p_data ‖ p_g) (nats)", log=True)
    at = {}
    for kind in ("minimax", "nonsaturating"):
        f0 = torch.tensor([math.log(1e-3) - math.log1p(-1e-3)], dtype=torch.float64, requires_grad=True)
        (g0,) = torch.autograd.grad(objectives.generator_loss(f0, kind), f0)
        at[kind] = float(g0.abs())
    return {"grad_at_D_of_G_1e-3": at, "runs": summary, "steps": steps,
            "g_optimizer": f"SGD lr {lr_g}, momentum 0.5", "d_optimizer": f"Adam lr {lr}",
            "pass": bool(summary["nonsaturating"]["final_jsd"] < summary["minimax"]["final_jsd"])}


def exp_k(out: Path, seed: int = 0, steps: int = 3000, lr: float = 5e-3) -> dict:
    """The effect of k (discriminator steps per generator step) on the same problem."""
    curves, summary = {}, {}
    for k in (1, 2, 5):
        s = _setup(seed, scale=1.5, shift=-1.0, k=k, lr_g=lr, lr_d=lr)
        t0 = time.perf_counter()
        _, curve = _train_together(s, steps, lr, every=25)
        curves[f"k = {k}"] = curve
        below = next((t for t, j in curve if j < 0.01), None)
        summary[str(k)] = {"final_jsd": curve[-1][1], "first_step_jsd_below_0.01": below,
                           "seconds": time.perf_counter() - t0}
    from ..viz.theory import plot_curves
    plot_curves(out / "k_effect.png", curves, "generator step", "JSD(p_data ‖ p_g) (nats)", log=True)
    return {"steps": steps, "by_k": summary}


RUNNERS = {"optimal-d": exp_optimal_d, "figure1": exp_figure1, "saturation": exp_saturation, "k": exp_k}


def run_theory(out: str | Path, experiments=EXPERIMENTS, seed: int = 0) -> dict:
    """Run the named experiments, writing figures and ``theory.json`` into ``out``."""
    seed = check_seed(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in experiments:
        t0 = time.perf_counter()
        results[name] = RUNNERS[name](out, seed=seed)
        results[name]["seconds"] = round(time.perf_counter() - t0, 2)
    (out / "theory.json").write_text(json.dumps(results, indent=2) + "\n")
    return results
