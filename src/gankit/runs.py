"""A run directory from the outside: its configuration, checkpoints, metrics and trained
models. ``sample``, ``eval``, ``report`` and ``info`` start here and never reach into the
training loop.

The configuration a checkpoint was trained with is the truth about its models: if
``config.yaml`` was edited after training, the checkpoint's configuration is used and the
disagreement is reported in one line.
"""

from __future__ import annotations

import logging
import math
import shutil
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from .config import Config
from .errors import GankitError, listing
from .evaluate import score_run
from .models import build_models
from .rundir import (
    METRICS,
    best_checkpoint,
    display,
    list_checkpoints,
    open_run_dir,
    read_config,
    read_rows,
    read_runtime,
)
from .sampling import check_sample_memory, generate, generate_chunks, interpolation_noise
from .training.checkpoint import load_checkpoint, load_latest_good

log = logging.getLogger("gankit")

# Options that may differ between config.yaml and a checkpoint without saying anything:
# the ones a resumed run may change.
_MAY_DIFFER = ("steps", "log_every", "eval_every", "checkpoint_every", "device")


@dataclass
class Run:
    """A run directory. ``config`` is its ``config.yaml``; :meth:`load` reads a checkpoint
    and sets ``G``, ``D`` (in eval mode), ``step`` and ``trained_config``."""

    path: Path
    config: Config
    G: torch.nn.Module | None = field(default=None, repr=False)
    D: torch.nn.Module | None = field(default=None, repr=False)
    step: int = 0
    trained_config: Config | None = None
    checkpoint_path: Path | None = None
    models: tuple | None = field(default=None, repr=False)   # the caller's own (G, D) modules, if any
    data_state: dict = field(default_factory=dict, repr=False)
    interrupted: bool = False                                  # set by gankit.train: a signal stopped it
    weights: str = "raw"                                       # the loaded G: "ema" or "raw"

    @classmethod
    def open(cls, path: str | Path, generator: torch.nn.Module | None = None,
             discriminator: torch.nn.Module | None = None) -> "Run":
        """A run directory. Runs trained on your own modules need them again to be loaded:
        pass ``generator`` and ``discriminator`` (their weights come from the checkpoint)."""
        path = open_run_dir(path)
        models = (generator, discriminator) if generator is not None or discriminator is not None else None
        if models is not None and None in models:
            raise GankitError("pass both generator and discriminator, or neither")
        return cls(path, read_config(path), models=models)

    @property
    def run_dir(self) -> Path:
        return self.path

    @property
    def last_row(self) -> dict:
        """The last row of ``metrics.jsonl`` (empty if none)."""
        rows = self.metrics()
        return rows[-1] if rows else {}

    def checkpoints(self) -> list[Path]:
        return list_checkpoints(self.path)

    def metrics(self) -> list[dict]:
        return read_rows(self.path / METRICS)

    def runtime(self) -> dict:
        return read_runtime(self.path)

    def checkpoint(self, which: str | Path = "latest", device: str | torch.device = "cpu") -> tuple[Path, dict]:
        """``latest`` (the newest intact one), ``best`` (``checkpoints/best.pt``) or a path."""
        if which == "latest":
            return load_latest_good(self.path, device, warn=log.warning)
        if which == "best":
            best = best_checkpoint(self.path)
            if best is None:
                raise GankitError(f"{display(self.path)} has no checkpoints/best.pt (train with --best-metric "
                                  "METRIC to keep one)")
            return best, load_checkpoint(best, device)
        return Path(which), load_checkpoint(Path(which), device)

    def load(self, which: str | Path = "latest", device: str | torch.device = "cpu", weights: str = "auto") -> "Run":
        """Build G and D from a checkpoint, with the configuration they were trained with.
        ``weights``: ``ema`` (the EMA generator), ``raw`` (G as trained), or ``auto``: the EMA
        generator when the run has one."""
        if weights not in ("auto", "ema", "raw"):
            raise GankitError(f"weights must be auto, ema or raw, got {weights!r}")
        path, ckpt = self.checkpoint(which, device)
        cfg = Config.from_dict(ckpt["config"], source=f"the configuration inside {display(path)}")
        differ = [f.name for f in fields(Config)
                  if f.name not in _MAY_DIFFER and getattr(cfg, f.name) != getattr(self.config, f.name)]
        if differ:
            log.warning(f"config.yaml of {display(self.path)} differs from its checkpoint in {listing(differ)}; "
                        "using the checkpoint's configuration")
        G, D = self.models or build_models(cfg, tuple(ckpt["data_shape"]))
        G.load_state_dict(ckpt["G"])
        D.load_state_dict(ckpt["D"])
        if weights == "ema" and "G_ema" not in ckpt:
            raise GankitError(f"{display(path)} has no EMA generator (train with --ema-kimg to keep one); "
                              "use --weights raw")
        self.weights = "ema" if "G_ema" in ckpt and weights != "raw" else "raw"
        if self.weights == "ema":
            G.load_state_dict(ckpt["G_ema"]["model"])
            log.info(f"using the EMA generator of {path.name} (--weights raw for G as trained)")
        self.G, self.D = G.to(device).eval(), D.to(device).eval()
        self.step, self.trained_config, self.checkpoint_path = int(ckpt["step"]), cfg, path
        self.data_state = ckpt.get("data_state") or {}
        return self

    def load_models(self, device: str | torch.device = "cpu"):
        """G and D from the newest checkpoint, in eval mode, with the checkpoint's step."""
        self.load("latest", device)
        return self.G, self.D, self.step

    @property
    def is_image(self) -> bool:
        return len(self._loaded().G.out_shape) == 3

    def _loaded(self) -> "Run":
        return self if self.G is not None else self.load()

    def to_data_space(self, x: torch.Tensor) -> torch.Tensor:
        """G's outputs as the data's values: images in [0, 1]; points of your own in their
        units (G learns them standardised); the toy densities as they are."""
        if self.is_image:
            lo, hi = getattr(self.G, "output_range", (-1.0, 1.0))
            return ((x - lo) / (hi - lo)).clamp(0, 1)
        if "mean" in self.data_state:
            return x * self.data_state["std"].to(x) + self.data_state["mean"].to(x)
        return x

    def sample(self, n: int, seed: int = 0, z: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` samples (or one per row of ``z``) as a float32 CPU tensor in the data's space:
        images [n, C, H, W] in [0, 1], other data [n, d]. The same samples as
        ``gankit sample RUN --seed SEED``."""
        self._loaded()
        cfg = self.trained_config
        if z is None and (not isinstance(n, int) or n <= 0):
            raise GankitError(f"n must be a whole number > 0, got {n!r}")
        if z is None:
            check_sample_memory(n, tuple(self.G.out_shape), "drawing")
        return self.to_data_space(generate(self.G, n, cfg.z_dim, cfg.noise, seed, z=z))

    def evaluate(self, metrics=None, n: int | None = None, extractor: str | None = None, seed: int = 0,
                 write: bool = False) -> dict:
        """Score the loaded checkpoint (the newest by default): see :func:`gankit.evaluate.score_run`."""
        return score_run(self._loaded(), metrics, n, extractor, seed, write=write)


def sample(run_path: str | Path, n: int, out: str | Path, seed: int = 0, interpolate: bool = False,
           checkpoint: str = "latest", weights: str = "auto") -> Path:
    """Write samples of a run's generator to ``out``.

    Images: ``.png`` a grid of ``n`` samples, ``.npy`` an array [n, C, H, W] of floats in
    [0, 1]; with ``interpolate``, a latent walk (8 rows of 10 steps between random points).
    1-D/2-D data: ``.npy`` [n, d] in data space, ``.png`` the samples over the data density.
    A ``.npy`` is written as the samples are drawn (any ``n`` the disk can hold); a picture
    is drawn in memory and takes at most :data:`MAX_PICTURE` samples.
    """
    if not isinstance(n, int) or n <= 0:
        raise GankitError(f"--n must be a whole number > 0, got {n}")
    out = Path(out)
    if out.suffix not in (".npy", ".png"):
        raise GankitError(f"--out must end in .npy or .png, got {display(out)}")
    if not out.parent.exists():
        raise GankitError(f"the folder of --out, {display(out.parent)}, does not exist")
    run = Run.open(run_path).load(checkpoint, weights=weights)
    cfg, G = run.trained_config, run.G
    if interpolate:
        if not run.is_image:
            raise GankitError("--interpolate draws a latent walk of images; this run's data are not images")
        z = interpolation_noise(8, 10, cfg.z_dim, cfg.noise, seed)
        return _save_picture(run, run.to_data_space(generate(G, z.shape[0], cfg.z_dim, cfg.noise, seed, z=z)),
                             out, nrow=10)
    if out.suffix == ".npy":
        _write_npy(run, n, seed, out)
        return out
    limit = MAX_PICTURE["image" if run.is_image else "points"]
    if n > limit:
        raise GankitError(f"a picture of {n:,} samples is more than gankit draws (at most {limit:,}); "
                          "ask for fewer, or write them to a .npy file")
    return _save_picture(run, run.to_data_space(generate(G, n, cfg.z_dim, cfg.noise, seed)), out)


MAX_PICTURE = {"image": 10_000, "points": 1_000_000}


def _write_npy(run: Run, n: int, seed: int, out: Path) -> None:
    """Samples streamed into a .npy file, after checking that the disk can hold it."""
    shape = tuple(run.G.out_shape)
    nbytes = n * math.prod(shape) * 4
    free = shutil.disk_usage(out.parent.absolute()).free
    if nbytes + (1 << 20) > free:
        raise GankitError(f"{n:,} samples need {nbytes / 2**30:,.1f} GiB at {display(out)}, and "
                          f"{free / 2**30:,.1f} GiB are free; ask for fewer samples (--n)")
    cfg = run.trained_config
    try:
        arr = np.lib.format.open_memmap(out, mode="w+", dtype=np.float32, shape=(n, *shape))
        pos = 0
        for chunk in generate_chunks(run.G, n, cfg.z_dim, cfg.noise, seed):
            arr[pos:pos + len(chunk)] = run.to_data_space(chunk).numpy()
            pos += len(chunk)
        arr.flush()
        del arr
    except OSError as exc:
        raise GankitError(f"cannot write {display(out)}: {exc.strerror or exc}") from None


def _save_picture(run: Run, x: torch.Tensor, out: Path, nrow: int | None = None) -> Path:
    if run.is_image:
        from .viz.grid import save_image
        save_image(x, out, nrow=nrow)
        return out
    from .data import get_distribution
    from .viz.plots import plot_samples
    cfg = run.trained_config
    dist = get_distribution(cfg.data)
    flat = x.reshape(x.shape[0], -1).numpy().astype(np.float64)
    plot_samples(out, flat[np.isfinite(flat).all(1)], lambda p: dist.log_prob(p).numpy(), dist.bounds,
                 title=f"{cfg.data}: {x.shape[0]} samples at step {run.step}")
    return out


def evaluate_run(run_path, metrics=None, n: int | None = None, extractor: str | None = None, seed: int = 0,
                 write: bool = True, precision: str = "fp32", checkpoint: str = "latest",
                 weights: str = "auto") -> dict:
    """Score a checkpoint of a run (the newest by default; its EMA generator when it has one)
    with :func:`gankit.evaluate.score_run`; write ``RUN/eval.json``; return the results."""
    return score_run(Run.open(run_path).load(checkpoint, weights=weights), metrics, n, extractor, seed, write,
                     precision)


def info(run_path: str | Path) -> dict:
    """What a run is: its configuration, steps done, checkpoints, and last metrics."""
    run = Run.open(run_path)
    ckpts = run.checkpoints()
    rows = run.metrics()
    last = rows[-1] if rows else {}
    last_eval = next((r for r in reversed(rows) if "modes" in r), None)
    best = best_checkpoint(run.path)
    return {
        "run": str(run.path),
        "config": run.config.to_dict(),
        "runtime": run.runtime(),
        "steps_done": int(ckpts[-1].stem.split("_")[1]) if ckpts else 0,
        "steps_planned": run.config.steps,
        "checkpoints": [p.name for p in ckpts] + ([best.name] if best else []),
        "last_metrics": last,
        "last_eval": last_eval,
    }
