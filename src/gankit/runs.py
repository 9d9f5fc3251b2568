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

from .config import BN_STATS, RESUMABLE_CHANGES, Config, check_seed
from .errors import GankitError, listing
from .evaluate import score_run
from .models import build_models
from .models.conditional import balanced_labels
from .rundir import (
    METRICS,
    best_checkpoint,
    checkpoint_steps,
    display,
    list_checkpoints,
    open_run_dir,
    read_config,
    read_rows,
    read_runtime,
)
from .sampling import (
    INTERPOLATION_PATHS,
    as_noise,
    check_sample_memory,
    generate,
    generate_chunks,
    interpolation_noise,
    standing_statistics,
)
from .training.checkpoint import load_checkpoint, load_latest_good

log = logging.getLogger("gankit")


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
    bn_stats: str = "running"                                  # its BatchNorm statistics: "running" or "standing"
    classes: list = field(default_factory=list)                # a conditional run's class names

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

    def checkpoint_steps(self) -> dict[int, Path]:
        """The kept step checkpoints by their step, oldest first."""
        return checkpoint_steps(self.path)

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

    def load(self, which: str | Path = "latest", device: str | torch.device = "cpu", weights: str = "auto",
             bn_stats: str = "auto") -> "Run":
        """Build G and D from a checkpoint, with the configuration they were trained with.
        ``weights``: ``ema`` (the EMA generator), ``raw`` (G as trained), or ``auto``: the EMA
        generator when the run has one. ``bn_stats``: ``running``, G's BatchNorm statistics as
        the checkpoint holds them (an EMA generator's are copied from G as trained),
        ``standing``, recomputed from the loaded G itself (:func:`~gankit.sampling.standing_statistics`),
        or ``auto``: the run's own ``bn_stats`` setting."""
        if weights not in ("auto", "ema", "raw"):
            raise GankitError(f"weights must be auto, ema or raw, got {weights!r}")
        if bn_stats not in ("auto", *BN_STATS):
            raise GankitError(f"bn_stats must be auto, {' or '.join(BN_STATS)}, got {bn_stats!r}")
        path, ckpt = self.checkpoint(which, device)
        cfg = Config.from_dict(ckpt["config"], source=f"the configuration inside {display(path)}")
        differ = [f.name for f in fields(Config)
                  if f.name not in RESUMABLE_CHANGES and getattr(cfg, f.name) != getattr(self.config, f.name)]
        if differ:
            log.warning(f"config.yaml of {display(self.path)} differs from its checkpoint in {listing(differ)}; "
                        "using the checkpoint's configuration")
        self.classes = list(ckpt.get("classes") or [])
        G, D = self.models or build_models(cfg, tuple(ckpt["data_shape"]), num_classes=len(self.classes))
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
        bn_stats = cfg.bn_stats if bn_stats == "auto" else bn_stats
        if bn_stats == "standing":
            if not standing_statistics(self.G, cfg.z_dim, cfg.noise, cfg.batch_size):
                raise GankitError(f"the generator of {display(path)} has no BatchNorm layers: --bn-stats standing "
                                  "has no statistics to recompute")
            log.info(f"BatchNorm statistics recomputed from the loaded generator ({cfg.batch_size}-sample batches)")
        self.bn_stats = bn_stats
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

    def sample(self, n: int, seed: int = 0, z: torch.Tensor | None = None, label=None) -> torch.Tensor:
        """``n`` samples (or one per row of ``z``) as a float32 CPU tensor in the data's space:
        images [n, C, H, W] in [0, 1], other data [n, d]. The same samples as
        ``gankit sample RUN --seed SEED``. A conditional run takes ``label``: a class (its
        name or index) for all, or a tensor of class indices, one per sample; by default
        the classes in turn."""
        self._loaded()
        cfg = self.trained_config
        if z is None and (not isinstance(n, int) or n <= 0):
            raise GankitError(f"n must be a whole number > 0, got {n!r}")
        if z is None:
            seed = check_seed(seed)
            check_sample_memory(n, tuple(self.G.out_shape), "drawing")
        else:
            z = as_noise(z, cfg.z_dim)
        labels = self.labels_for(label, n if z is None else z.shape[0])
        return self.to_data_space(generate(self.G, n, cfg.z_dim, cfg.noise, seed, z=z, labels=labels))

    def _require_classes(self) -> None:
        if not self.classes:
            raise GankitError(f"{display(self.path)} is not a conditional run; it has no classes to ask for")

    def class_index(self, label) -> int:
        """The index of a class given by name or index; a one-line error otherwise."""
        self._require_classes()
        if isinstance(label, str) and label in self.classes:
            return self.classes.index(label)
        try:
            i = int(label)
        except (TypeError, ValueError):
            i = -1
        if 0 <= i < len(self.classes) and not isinstance(label, bool):
            return i
        raise GankitError(f"unknown class {label!r}; this run's classes are "
                          f"{listing([f'{j} ({c})' if c != str(j) else c for j, c in enumerate(self.classes)])}")

    def labels_for(self, label, n: int) -> torch.Tensor | None:
        """Class indices for ``n`` samples: ``label`` for all, a given tensor, or None
        (the classes in turn, for a conditional run)."""
        if label is None:
            return None
        if isinstance(label, torch.Tensor) and label.ndim == 1:
            self._require_classes()
            if len(label) != n or label.dtype.is_floating_point or (label < 0).any() or \
                    (label >= len(self.classes)).any():
                raise GankitError(f"label must hold {n} class indices from 0 to {len(self.classes) - 1}")
            return label.long()
        return torch.full((n,), self.class_index(label), dtype=torch.long)

    def evaluate(self, metrics=None, n: int | None = None, extractor: str | None = None, seed: int = 0,
                 write: bool = False, device: str = "cpu") -> dict:
        """Score the loaded checkpoint (the newest by default): see :func:`gankit.evaluate.score_run`."""
        return score_run(self._loaded(), metrics, n, extractor, seed, write=write, device=device)


def sample(run_path: str | Path, n: int, out: str | Path, seed: int = 0, interpolate: bool | str = False,
           checkpoint: str = "latest", weights: str = "auto", label=None, per_class: int = 0,
           bn_stats: str = "auto") -> Path:
    """Write samples of a run's generator to ``out``.

    Images: ``.png`` a grid of ``n`` samples, ``.npy`` an array [n, C, H, W] of floats in
    [0, 1]; with ``interpolate`` (True, ``"linear"`` or ``"spherical"``), a latent walk
    (:func:`interpolation_figure`, 8 rows of 10). 1-D/2-D data: ``.npy`` [n, d] in data
    space, ``.png`` the samples over the data density. A ``.npy`` is written as the samples
    are drawn (any ``n`` the disk can hold); a picture is drawn in memory and takes at most
    :data:`MAX_PICTURE` samples. A conditional run takes ``label`` (one class, by name or
    index) or ``per_class`` (that many of each class: a grid with a row per class), and
    writes the labels of a ``.npy`` beside it (``NAME.labels.npy``).
    """
    if not isinstance(n, int) or n <= 0:
        raise GankitError(f"--n must be a whole number > 0, got {n}")
    seed = check_seed(seed)
    out = check_out_path(out, (".npy", ".png"))
    run = Run.open(run_path).load(checkpoint, weights=weights, bn_stats=bn_stats)
    if interpolate:
        return interpolation_figure(run, out, seed=seed, path="auto" if interpolate is True else interpolate,
                                    label=label)
    labels, nrow = _sample_labels(run, n, label, per_class)
    n = n if labels is None else len(labels)
    cfg, G = run.trained_config, run.G
    if out.suffix == ".npy":
        _write_npy(run, n, seed, out, labels)
        return out
    if not run.is_image and run.G.out_shape[0] > 2:
        raise GankitError(f"a picture shows 1-D or 2-D samples, and this run's have {run.G.out_shape[0]} "
                          "coordinates; write them to a .npy file")
    limit = MAX_PICTURE["image" if run.is_image else "points"]
    if n > limit:
        raise GankitError(f"a picture of {n:,} samples is more than gankit draws (at most {limit:,}); "
                          "ask for fewer, or write them to a .npy file")
    return _save_picture(run, run.to_data_space(generate(G, n, cfg.z_dim, cfg.noise, seed, labels=labels)), out,
                         nrow=nrow)


def _sample_labels(run: Run, n: int, label, per_class: int) -> tuple[torch.Tensor | None, int | None]:
    """The labels of a conditional run's samples (None: the classes in turn), and the
    grid's row length."""
    if per_class:
        if label is not None:
            raise GankitError("choose one of --class and --per-class")
        if not isinstance(per_class, int) or per_class < 0:
            raise GankitError(f"--per-class must be a whole number > 0, got {per_class}")
        run._require_classes()
        return torch.arange(len(run.classes)).repeat_interleave(per_class), per_class
    if label is not None:
        return run.labels_for(label, n), None
    if run.classes:
        return balanced_labels(n, len(run.classes)), None
    return None, None


def check_out_path(out: str | Path, suffixes: tuple[str, ...]) -> Path:
    out = Path(out)
    if out.suffix not in suffixes:
        raise GankitError(f"--out must end in {' or '.join(suffixes)}, got {display(out)}")
    if not out.parent.exists():
        raise GankitError(f"the folder of --out, {display(out.parent)}, does not exist")
    return out


def _check_layout(rows: int, cols: int, least_cols: int) -> None:
    for name, v, least in (("rows", rows, 1), ("cols", cols, least_cols)):
        if not isinstance(v, int) or v < least:
            raise GankitError(f"--{name} must be a whole number of at least {least}, got {v}")
    if rows * cols > MAX_PICTURE["image"]:
        raise GankitError(f"a picture of {rows}×{cols} images is more than gankit draws "
                          f"(at most {MAX_PICTURE['image']:,}); ask for fewer rows or columns")


def interpolation_figure(run: Run, out: Path, rows: int = 8, cols: int = 10, seed: int = 0,
                         path: str = "auto", label=None) -> Path:
    """Rows of generated images along paths between pairs of random noise vectors: the
    2014 paper's Figure 3 with ``path="linear"`` (straight lines in z); ``"spherical"``
    follows great circles, which keeps a normal prior's typical norm; ``"auto"`` is
    spherical for a normal prior, linear for a uniform one. ``.png`` a grid with a row per
    pair, ``.npy`` the images [rows × cols, C, H, W] in [0, 1]. A conditional run walks
    within the class ``label`` (by default row r within class r mod C)."""
    if not run.is_image:
        raise GankitError("--interpolate draws a latent walk of images; this run's data are not images")
    if path not in INTERPOLATION_PATHS:
        raise GankitError(f"--interpolate takes {', '.join(INTERPOLATION_PATHS)}, got {path!r}")
    _check_layout(rows, cols, 2)
    seed = check_seed(seed)
    cfg = run.trained_config
    spherical = path == "spherical" or (path == "auto" and cfg.noise == "normal")
    z = interpolation_noise(rows, cols, cfg.z_dim, cfg.noise, seed, spherical=spherical)
    labels = run.labels_for(label, z.shape[0]) if label is not None else \
        (torch.arange(rows).repeat_interleave(cols) % len(run.classes) if run.classes else None)
    x = run.to_data_space(generate(run.G, z.shape[0], cfg.z_dim, cfg.noise, seed, z=z, labels=labels))
    if out.suffix == ".npy":
        np.save(out, x.numpy())
        return out
    return _save_picture(run, x, out, nrow=cols)


def nearest_figure(run_path: str | Path, out: str | Path, rows: int = 6, cols: int = 5, seed: int = 0,
                   checkpoint: str = "latest", weights: str = "auto",
                   bn_stats: str = "auto") -> tuple[Path, torch.Tensor]:
    """The 2014 paper's Figure 2: ``rows`` rows of ``cols`` samples and, in a last column
    set apart, the training image nearest (in pixel distance) to each row's last sample,
    to show that G has not memorised its data. Returns the picture's path and the
    distances (pixels in [0, 1]; one per row)."""
    from .data import make_source
    from .metrics import nearest_examples
    from .viz.grid import make_grid, save_image

    seed = check_seed(seed)
    out = check_out_path(out, (".png",))
    _check_layout(rows, cols, 1)
    run = Run.open(run_path).load(checkpoint, weights=weights, bn_stats=bn_stats)
    if not run.is_image:
        raise GankitError("--nearest shows the nearest training image of samples; this run's data are not images")
    cfg = run.trained_config
    source = make_source(cfg, torch.device("cpu"))
    if not hasattr(source, "data"):
        raise GankitError(f"{cfg.data} has no training images to compare with")
    if tuple(source.shape) != tuple(run.G.out_shape):
        raise GankitError(f"the training images are {'×'.join(map(str, source.shape))} and the generator's "
                          f"{'×'.join(map(str, run.G.out_shape))}; the run's data have changed since it trained")
    x = run.to_data_space(generate(run.G, rows * cols, cfg.z_dim, cfg.noise, seed))
    last = x[cols - 1::cols]
    idx, dist = nearest_examples(last, source.data)
    samples, nearest = make_grid(x, nrow=cols), make_grid(source.data[idx].float() / 255, nrow=1)
    gap = np.full((samples.shape[0], 8, samples.shape[2]), 255, np.uint8)
    save_image(np.concatenate([samples, gap, nearest], axis=1), out)
    return out, dist


MAX_PICTURE = {"image": 10_000, "points": 1_000_000}


def _write_npy(run: Run, n: int, seed: int, out: Path, labels: torch.Tensor | None = None) -> None:
    """Samples streamed into a .npy file, after checking that the disk can hold it; their
    labels (a conditional run) in ``NAME.labels.npy`` beside it."""
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
        for chunk in generate_chunks(run.G, n, cfg.z_dim, cfg.noise, seed, labels=labels):
            arr[pos:pos + len(chunk)] = run.to_data_space(chunk).numpy()
            pos += len(chunk)
        arr.flush()
        del arr
        if labels is not None:
            np.save(out.with_suffix(".labels.npy"), labels.numpy())
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
                 weights: str = "auto", bn_stats: str = "auto", device: str = "cpu") -> dict:
    """Score a checkpoint of a run (the newest by default; its EMA generator when it has one)
    with :func:`gankit.evaluate.score_run`; write ``RUN/eval.json``; return the results."""
    run = Run.open(run_path).load(checkpoint, weights=weights, bn_stats=bn_stats)
    return score_run(run, metrics, n, extractor, seed, write, precision, device)


def info(run_path: str | Path) -> dict:
    """What a run is: its configuration, steps done, checkpoints, and last metrics."""
    run = Run.open(run_path)
    ckpts = run.checkpoint_steps()
    rows = run.metrics()
    last = rows[-1] if rows else {}
    last_eval = next((r for r in reversed(rows) if "modes" in r), None)
    best = best_checkpoint(run.path)
    return {
        "run": str(run.path),
        "config": run.config.to_dict(),
        "runtime": run.runtime(),
        "steps_done": max(ckpts, default=0),
        "steps_planned": run.config.steps,
        "checkpoints": [p.name for p in ckpts.values()] + ([best.name] if best else []),
        "last_metrics": last,
        "last_eval": last_eval,
    }
