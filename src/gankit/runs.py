"""Reading a finished (or running) run directory: `sample` and `info` start here and never
reach into the training loop."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import Config
from .errors import GankitError
from .training.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint
from .training.loop import sample_noise


@dataclass
class Run:
    path: Path
    config: Config

    @classmethod
    def open(cls, path: str | Path) -> "Run":
        path = Path(path)
        if not path.exists():
            raise GankitError(f"run directory {str(path)!r} does not exist")
        if not path.is_dir() or not (path / "config.yaml").is_file():
            raise GankitError(f"{str(path)!r} is not a gankit run directory (it has no config.yaml)")
        from .config import load_config
        return cls(path, load_config(path / "config.yaml"))

    def checkpoints(self) -> list[Path]:
        return list_checkpoints(self.path)

    def metrics(self) -> list[dict]:
        from .training.run import _read_rows
        return _read_rows(self.path / "metrics.jsonl")

    def load_models(self, device: str | torch.device = "cpu"):
        """G and D from the newest checkpoint, in eval mode, with the checkpoint's step."""
        from .models import build_models
        ckpt = load_checkpoint(latest_checkpoint(self.path), map_location=device)
        cfg = Config.from_dict(ckpt["config"], source="checkpoint config")
        G, D = build_models(cfg, tuple(ckpt["data_shape"]))
        G.load_state_dict(ckpt["G"])
        D.load_state_dict(ckpt["D"])
        return G.to(device).eval(), D.to(device).eval(), int(ckpt["step"])


def generate(G: torch.nn.Module, n: int, z_dim: int, noise: str, seed: int,
             batch: int = 10_000) -> torch.Tensor:
    """``n`` samples from G (eval mode, no gradient) with noise from ``seed``, on the CPU."""
    device = next(G.parameters()).device
    gen = torch.Generator(device).manual_seed(seed)
    out = []
    with torch.no_grad():
        for s in range(0, n, batch):
            out.append(G(sample_noise(min(batch, n - s), z_dim, noise, gen)).float().cpu())
    return torch.cat(out)


def sample(run_path: str | Path, n: int, out: str | Path, seed: int = 0) -> Path:
    """Write ``n`` samples of a run's generator to ``out``: ``.npy`` (n × data shape, data
    space) or ``.png`` (1-D/2-D: the samples over the data density)."""
    if n <= 0:
        raise GankitError(f"--n must be a whole number > 0, got {n}")
    out = Path(out)
    if out.suffix not in (".npy", ".png"):
        raise GankitError(f"--out must end in .npy or .png, got {str(out)!r}")
    if not out.parent.exists():
        raise GankitError(f"the folder of --out, {str(out.parent)!r}, does not exist")
    run = Run.open(run_path)
    G, D, step = run.load_models()
    x = generate(G, n, run.config.z_dim, run.config.noise, seed)
    if out.suffix == ".npy":
        np.save(out, x.numpy())
        return out
    from .data import get_distribution
    from .viz.plots import plot_samples
    dist = get_distribution(run.config.data)
    flat = x.reshape(n, -1).numpy().astype(np.float64)
    plot_samples(out, flat[np.isfinite(flat).all(1)], lambda p: dist.log_prob(p).numpy(), dist.bounds,
                 title=f"{run.config.data}: {n} samples at step {step}")
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
