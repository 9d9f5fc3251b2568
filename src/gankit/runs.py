"""Reading a finished (or running) run directory: `sample` and `info` start here and never
reach into the training loop."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import Config
from .errors import GankitError
from .models import build_models
from .rundir import METRICS, list_checkpoints, open_run_dir, read_config, read_rows
from .sampling import generate, interpolation_noise
from .training.checkpoint import load_latest_good


@dataclass
class Run:
    path: Path
    config: Config

    @classmethod
    def open(cls, path: str | Path) -> "Run":
        path = open_run_dir(path)
        return cls(path, read_config(path))

    def checkpoints(self) -> list[Path]:
        return list_checkpoints(self.path)

    def metrics(self) -> list[dict]:
        return read_rows(self.path / METRICS)

    def load_models(self, device: str | torch.device = "cpu"):
        """G and D from the newest checkpoint, in eval mode, with the checkpoint's step."""
        _, ckpt = load_latest_good(self.path, device, warn=lambda m: print(m, file=sys.stderr))
        cfg = Config.from_dict(ckpt["config"], source="checkpoint config")
        G, D = build_models(cfg, tuple(ckpt["data_shape"]))
        G.load_state_dict(ckpt["G"])
        D.load_state_dict(ckpt["D"])
        return G.to(device).eval(), D.to(device).eval(), int(ckpt["step"])


def sample(run_path: str | Path, n: int, out: str | Path, seed: int = 0, interpolate: bool = False) -> Path:
    """Write samples of a run's generator to ``out``.

    Images: ``.png`` a grid of ``n`` samples, ``.npy`` an array [n, C, H, W] of floats in
    [0, 1]; with ``interpolate``, a latent walk (8 rows of 10 steps between random points).
    1-D/2-D data: ``.npy`` [n, d] in data space, ``.png`` the samples over the data density.
    """
    if n <= 0:
        raise GankitError(f"--n must be a whole number > 0, got {n}")
    out = Path(out)
    if out.suffix not in (".npy", ".png"):
        raise GankitError(f"--out must end in .npy or .png, got {str(out)!r}")
    if not out.parent.exists():
        raise GankitError(f"the folder of --out, {str(out.parent)!r}, does not exist")
    run = Run.open(run_path)
    G, D, step = run.load_models()
    cfg = run.config
    image = len(G.out_shape) == 3
    if interpolate:
        rows, steps = 8, 10
        z = interpolation_noise(rows, steps, cfg.z_dim, cfg.noise, seed)
        x = generate(G, z.shape[0], cfg.z_dim, cfg.noise, seed, z=z)
        n = z.shape[0]
    else:
        x = generate(G, n, cfg.z_dim, cfg.noise, seed)
    if image:
        lo, hi = getattr(G, "output_range", (-1.0, 1.0))
        x01 = ((x - lo) / (hi - lo)).clamp(0, 1)
        if out.suffix == ".npy":
            np.save(out, x01.numpy())
        else:
            from .viz.grid import save_image
            save_image(x01, out, nrow=10 if interpolate else None)
        return out
    if interpolate:
        raise GankitError("--interpolate draws a latent walk of images; this run's data are not images")
    if out.suffix == ".npy":
        np.save(out, x.numpy())
        return out
    from .data import get_distribution
    from .viz.plots import plot_samples
    dist = get_distribution(cfg.data)
    flat = x.reshape(n, -1).numpy().astype(np.float64)
    plot_samples(out, flat[np.isfinite(flat).all(1)], lambda p: dist.log_prob(p).numpy(), dist.bounds,
                 title=f"{cfg.data}: {n} samples at step {step}")
    return out


def info(run_path: str | Path) -> dict:
    """What a run is: its configuration, steps done, checkpoints, and last metrics."""
    run = Run.open(run_path)
    ckpts = run.checkpoints()
    rows = run.metrics()
    last = rows[-1] if rows else {}
    last_eval = next((r for r in reversed(rows) if "modes" in r), None)
    return {
        "run": str(run.path),
        "config": run.config.to_dict(),
        "steps_done": int(ckpts[-1].stem.split("_")[1]) if ckpts else 0,
        "steps_planned": run.config.steps,
        "checkpoints": [p.name for p in ckpts],
        "last_metrics": last,
        "last_eval": last_eval,
    }
