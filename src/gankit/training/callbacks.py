"""Hooks on the training loop: statistics, evaluation and pictures, the metrics file,
progress, and checkpoints. Each is a small class; ``run.py`` assembles them in order.

Order matters: ``Stats`` and ``LowDimEvaluator`` fill the step's row, ``MetricsWriter``
writes it, ``Progress`` shows it, ``Checkpointer`` saves after everything else.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import DivergenceError
from ..metrics import mode_stats
from ..rundir import MetricsLog
from ..sampling import generate
from .checkpoint import save_checkpoint
from .loop import Callback, GANTrainer, StepStats


def _due(step: int, every: int, until: int) -> bool:
    return step == until or (every > 0 and step % every == 0)


class Stats(Callback):
    """Every ``log_every`` steps (and at the last): the losses, D's outputs, gradient norms,
    examples per second over the interval (m · steps / s), and the run's wall time."""

    def __init__(self, log_every: int, until: int, batch_size: int, elapsed_before: float = 0.0):
        self.log_every, self.until, self.batch_size = log_every, until, batch_size
        self.last_finite: dict = {}
        self.last_step = 0
        self.elapsed_before = elapsed_before
        self.t0 = self.t_last = time.perf_counter()
        self.step_last = 0

    def on_start(self, trainer: GANTrainer) -> None:
        self.t0 = self.t_last = time.perf_counter()
        self.step_last = trainer.step_count

    def wants_stats(self, step: int) -> bool:
        return _due(step, self.log_every, self.until)

    @property
    def wall_time(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.t0

    def on_step_end(self, trainer, step, stats: StepStats, row) -> None:
        if not self.wants_stats(step):
            return
        d = getattr(trainer, "dist", None)
        values = stats.to_dict(d.mean if d is not None and d.enabled else None)  # one synchronisation
        bad = [k for k, v in values.items() if not np.isfinite(v)]
        if bad:
            last = ", ".join(f"{k}={v:.4g}" for k, v in self.last_finite.items()) or "none logged yet"
            nets = sorted({"D" if k in ("loss_d", "value", "d_real", "d_fake", "grad_norm_d") else "G" for k in bad})
            raise DivergenceError(f"training diverged at step {step}: {', '.join(bad)} not finite "
                                  f"(network {' and '.join(nets)}); last finite values at step "
                                  f"{self.last_step}: {last}")
        self.last_finite, self.last_step = values, step
        now = time.perf_counter()
        rate = (step - self.step_last) * self.batch_size / max(now - self.t_last, 1e-9)
        self.t_last, self.step_last = now, step
        lrs = {"lr_d": trainer.opt_d.param_groups[0]["lr"], "lr_g": trainer.opt_g.param_groups[0]["lr"]}
        row.update(step=step, **values, **lrs, examples_per_s=rate, wall_time=self.wall_time)


class LowDimEvaluator(Callback):
    """Samples ``n`` points from G with a fixed noise batch every ``every`` steps, scores mode
    coverage where the data set is a mode benchmark, and draws the pictures."""

    def __init__(self, run_dir: Path, distribution, z_dim: int, noise: str, n: int, every: int,
                 until: int, seed: int, metrics_rows: Callable[[], list]):
        self.run_dir, self.dist = Path(run_dir), distribution
        self.z_dim, self.noise, self.n = z_dim, noise, n
        self.every, self.until, self.seed = every, until, seed
        self.metrics_rows = metrics_rows
        self.last_samples: np.ndarray | None = None
        self._snapshot = None  # the per-evaluation picture, its density background computed once

    def generate(self, G: torch.nn.Module) -> np.ndarray:
        """G's samples in the data's units (points of the user's own are learned standardised)."""
        x = generate(G, self.n, self.z_dim, self.noise, self.seed).reshape(self.n, -1).double()
        return to_data_units(self.dist, x).numpy()

    def evaluate(self, G) -> dict:
        x = self.generate(G)
        self.last_samples = x
        if not np.isfinite(x).all():
            return {"eval_nonfinite": int((~np.isfinite(x)).any(1).sum())}
        if not self.dist.mode_benchmark:
            return {}
        s = mode_stats(x, self.dist.means.numpy(), float(self.dist.stds.max()))
        return {"modes": s["modes"], "high_quality": s["high_quality"], "reverse_kl": s["reverse_kl"]}

    def on_step_end(self, trainer, step, stats, row) -> None:
        if _due(step, self.every, self.until):  # every = 0: only the last step
            row.setdefault("step", step)
            row.update(self.evaluate(trainer.G_sample))
            if np.isfinite(self.last_samples).all():
                if self._snapshot is None:
                    from ..viz.snapshot import SamplesSnapshot
                    self._snapshot = SamplesSnapshot(self._log_prob, self.dist.bounds)
                (self.run_dir / "plots").mkdir(exist_ok=True)
                self._snapshot.save(self.run_dir / "plots" / f"samples_step_{step:06d}.png", self.last_samples,
                                    title=f"{self.dist.name}, step {step}{drawn_by(trainer)}")

    def _log_prob(self, pts: np.ndarray) -> np.ndarray:
        return self.dist.log_prob(pts).numpy()

    def on_end(self, trainer, step) -> None:
        write_lowdim_pictures(self.run_dir, trainer.G_sample, trainer.D, self.dist,
                              self.last_samples if self.last_samples is not None else self.generate(trainer.G_sample),
                              self.metrics_rows(), step, drawn_by(trainer))


def drawn_by(trainer) -> str:
    """What a picture's title adds about the generator that drew it: training samples from
    its EMA generator when it has one."""
    return ", EMA generator" if trainer.stab.ema is not None else ""


def d_probability(D: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """D(x) for pictures and histograms; a conditional D judges x as the class it finds
    most real (the largest D(x, c) over the classes c)."""
    classes = getattr(D, "num_classes", 0)
    if not classes:
        return torch.sigmoid(D(x))
    logits = torch.stack([D(x, torch.full((x.shape[0],), c, dtype=torch.long, device=x.device))
                          for c in range(classes)])
    return torch.sigmoid(logits.max(0).values)


def to_data_units(dist, x: torch.Tensor) -> torch.Tensor:
    """G's output in the data's units: the map of a density that has one (points of the
    user's own), else the output itself (the toy densities)."""
    return dist.to_data_units(x) if hasattr(dist, "to_data_units") else x


def to_model_units(dist, x: torch.Tensor) -> torch.Tensor:
    return dist.to_model_units(x) if hasattr(dist, "to_model_units") else x


def write_lowdim_pictures(run_dir: Path, G, D, dist, samples: np.ndarray, rows: list, step: int,
                          drawn: str = "") -> None:
    """The three pictures of a 1-D/2-D run: samples.png, discriminator.png, losses.png;
    ``drawn`` ends the samples' title (", EMA generator")."""
    from ..viz.plots import plot_discriminator, plot_losses, plot_samples

    run_dir = Path(run_dir)
    log_prob = lambda p: dist.log_prob(p).numpy()  # noqa: E731
    device = next(D.parameters()).device

    def d_of(pts: np.ndarray) -> np.ndarray:
        """D(x) on points in the data's units; a D that judges packs of M examples (PacGAN)
        judges M copies of x."""
        was = D.training
        D.eval()
        x = to_model_units(dist, torch.as_tensor(pts, dtype=torch.float64)).to(device, torch.float32)
        copies = getattr(D, "in_shape", (x.shape[1],))[0] // x.shape[1]
        with torch.no_grad():
            out = d_probability(D, x.repeat(1, max(copies, 1))).float().cpu().numpy()
        D.train(was)
        return out

    finite = samples[np.isfinite(samples).all(1)]
    plot_samples(run_dir / "samples.png", finite, log_prob, dist.bounds, title=f"{dist.name}, step {step}{drawn}")
    plot_discriminator(run_dir / "discriminator.png", d_of, log_prob, dist.bounds, finite,
                       title=f"D(x) at step {step}" + (", the largest over classes" if getattr(D, "num_classes", 0)
                                                       else ""))
    plot_losses(run_dir / "losses.png", rows)


class MetricsWriter(Callback):
    """Appends each non-empty row to ``metrics.jsonl`` (one JSON object per line) and keeps
    the rows in memory (``rows``: those already in the file when the run (re)started, then
    each new one) for the pictures drawn from them."""

    def __init__(self, log: MetricsLog, rows: list[dict] | None = None):
        self.log = log
        self.rows: list[dict] = list(rows or [])

    def on_step_end(self, trainer, step, stats, row) -> None:
        if row:
            clean = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
            self.log.append(clean)
            self.rows.append(clean)


class Progress(Callback):
    """A live bar (tqdm) when both stdout and stderr are terminals; otherwise (``gankit train
    | tee log``, a notebook, a batch job) a plain line on stdout every ``log_every`` steps,
    with the elapsed time and the time left at the current pace."""

    def __init__(self, until: int, enabled: bool = True, stream=None):
        self.until, self.enabled = until, enabled
        self.stream = stream
        self.bar = None
        self.t0, self.step0 = time.perf_counter(), 0

    def on_start(self, trainer) -> None:
        self.t0, self.step0 = time.perf_counter(), trainer.step_count
        if self.enabled and self.stream is None and sys.stdout.isatty() and sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=self.until, initial=trainer.step_count, unit="step", dynamic_ncols=True)

    def on_step_end(self, trainer, step, stats, row) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)
        if "loss_d" in row:
            text = (f"V~ {row['value']:.4f}  D(x) {row['d_real']:.3f}  D(G(z)) {row['d_fake']:.3f}  "
                    f"{row['examples_per_s']:,.0f} ex/s")
            if "modes" in row:
                text += f"  modes {row['modes']}  hq {row['high_quality']:.1%}"
            if self.bar is not None:
                self.bar.set_postfix_str(text, refresh=False)
            else:
                elapsed = time.perf_counter() - self.t0
                left = elapsed / max(step - self.step0, 1) * (self.until - step)
                try:
                    print(f"step {step}/{self.until}  {text}  elapsed {_clock(elapsed)}  left {_clock(left)}",
                          file=self.stream or sys.stdout, flush=True)
                except BrokenPipeError:   # `gankit train | head`: the reader has gone
                    self.reader_gone()

    def reader_gone(self) -> None:
        """Stdout's reader has gone: print nothing more there and ask the run to stop as on
        SIGINT (this step finishes, a checkpoint is written), so that the pipeline ends
        instead of training on unseen, and the run can be resumed."""
        self.enabled, self.stop_requested = False, True
        if self.stream is None:
            quiet_stdout()
        print("\ngankit: the reader of stdout has gone; finishing this step and writing a checkpoint",
              file=sys.stderr, flush=True)

    def on_end(self, trainer, step) -> None:
        if self.bar is not None:
            self.bar.close()


def quiet_stdout() -> None:
    """Point stdout at /dev/null, so that later writes and the interpreter's last flush do
    not fail again on a closed pipe (Python's documented way to handle SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):   # stdout replaced by an object without a file
        pass
    finally:
        os.close(devnull)


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class MetricsEvaluator(Callback):
    """Scores G with ``evaluate.Scorer`` at every evaluation and adds the numbers to the row."""

    def __init__(self, scorer, every: int, until: int):
        self.scorer, self.every, self.until = scorer, every, until

    def on_step_end(self, trainer, step, stats, row) -> None:
        if _due(step, self.every, self.until):  # every = 0: only the last step
            row.setdefault("step", step)
            row.update({k: v for k, v in self.scorer.score(trainer.G_sample).items() if k != "num_modes"})


def check_finite_weights(states: dict, step: int) -> None:
    """Raise :class:`DivergenceError` if G's or D's state (``states["G"]``, ``states["D"]``)
    holds NaN or Inf."""
    for net in ("G", "D"):
        bad = [k for k, v in states[net].items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise DivergenceError(f"training diverged by step {step}: {net} has NaN/Inf in {bad[0]}; "
                                  "no checkpoint written, the earlier ones are intact")


class WeightGuard(Callback):
    """On the ranks that do not write (distributed runs): the same finite-weights check as
    the :class:`Checkpointer` of rank 0, at the same steps. The weights are the same on every
    rank, so all ranks stop together instead of the others waiting on rank 0 for ever."""

    def __init__(self, every: int, G, D):
        self.every, self.G, self.D = every, G, D

    def on_step_end(self, trainer, step, stats, row) -> None:
        if step % self.every == 0:
            check_finite_weights({"G": self.G.state_dict(), "D": self.D.state_dict()}, step)

    def on_end(self, trainer, step) -> None:
        check_finite_weights({"G": self.G.state_dict(), "D": self.D.state_dict()}, step)


class Checkpointer(Callback):
    """Saves every ``every`` steps and at the end (atomically; the newest ``keep`` are kept);
    with ``best_metric``, also ``checkpoints/best.pt`` whenever that metric improves."""

    def __init__(self, run_dir: Path, every: int, payload: Callable[[], dict], keep: int = 3,
                 best_metric: str = "", lower_is_better: bool = True, best_so_far: float | None = None):
        self.run_dir, self.every, self.payload, self.keep = Path(run_dir), every, payload, keep
        self.last_saved = -1
        self.best_metric, self.lower, self.best = best_metric, lower_is_better, best_so_far

    def _maybe_best(self, step: int, row: dict) -> None:
        v = row.get(self.best_metric) if self.best_metric else None
        if v is None or not np.isfinite(v):
            return
        if self.best is None or (v < self.best if self.lower else v > self.best):
            self.best = v
            save_checkpoint(self.run_dir, {**self.payload(), "best": {"metric": self.best_metric, "value": v}},
                            name="best.pt")

    def on_start(self, trainer) -> None:
        self.last_saved = trainer.step_count

    def on_step_end(self, trainer, step, stats, row) -> None:
        if step % self.every == 0:
            self.save(step)
        self._maybe_best(step, row)

    def save(self, step: int) -> None:
        payload = self.payload()
        check_finite_weights(payload, step)  # never replace a good checkpoint with bad weights
        save_checkpoint(self.run_dir, payload, keep=self.keep)
        self.last_saved = step

    def on_end(self, trainer, step) -> None:
        if step != self.last_saved:
            self.save(step)


class ImageSampler(Callback):
    """A grid from one fixed noise batch every ``every`` steps (``samples/step_NNNNNN.png``),
    and at the end ``samples.png`` and ``losses.png``."""

    def __init__(self, run_dir: Path, z_dim: int, noise: str, every: int, until: int, seed: int,
                 value_range, metrics_rows: Callable[[], list], n: int = 64):
        self.run_dir, self.z_dim, self.noise = Path(run_dir), z_dim, noise
        self.every, self.until, self.seed, self.n = every, until, seed, n
        self.value_range, self.metrics_rows = value_range, metrics_rows

    def grid(self, G, path: Path) -> None:
        from ..viz.grid import save_image
        save_image(generate(G, self.n, self.z_dim, self.noise, self.seed), path, value_range=self.value_range)

    def on_step_end(self, trainer, step, stats, row) -> None:
        if _due(step, self.every, self.until):  # every = 0: only the last step
            (self.run_dir / "samples").mkdir(exist_ok=True)
            self.grid(trainer.G_sample, self.run_dir / "samples" / f"step_{step:06d}.png")

    def on_end(self, trainer, step) -> None:
        from ..viz.plots import plot_losses
        self.grid(trainer.G_sample, self.run_dir / "samples.png")
        plot_losses(self.run_dir / "losses.png", self.metrics_rows())


def tensorboard_available() -> bool:
    import importlib.util
    return importlib.util.find_spec("tensorboard") is not None


class TensorBoardLogger(Callback):
    """TensorBoard event files in ``RUN/tensorboard``: every logged value under a grouped tag
    (``loss/D``, ``D/real``, ``lr/G``, ``eval/fid``, …), the configuration as text and as
    hyperparameters, and at each evaluation a sample grid (images) and histograms of D's
    outputs on real and generated data. Active when the ``tensorboard`` package is installed
    (``pip install gankit[tensorboard]``) and ``--tensorboard`` is on (the default)."""

    TAGS = {"value": "game/V", "loss_d": "loss/D", "loss_g": "loss/G", "d_real": "D/real", "d_fake": "D/fake",
            "grad_norm_d": "grad_norm/D", "grad_norm_g": "grad_norm/G", "lr_d": "lr/D", "lr_g": "lr/G",
            "examples_per_s": "speed/examples_per_s", "wall_time": "speed/wall_time", "loss_scale": "speed/loss_scale",
            "modes": "modes/captured", "high_quality": "modes/high_quality", "reverse_kl": "modes/reverse_kl",
            "class_loss_d": "loss/classifier_real", "class_loss_g": "loss/classifier_G"}

    @classmethod
    def create(cls, run_dir, cfg, seed, value_range):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return None
        writer = SummaryWriter(str(Path(run_dir) / "tensorboard"))
        config = cfg.to_dict()
        writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in config.items()), 0)
        writer.add_hparams({k: v for k, v in config.items() if isinstance(v, (int, float, str, bool))}, {},
                           run_name="hparams")
        return cls(writer, cfg.eval_every, cfg.steps, seed, cfg.z_dim, cfg.noise, value_range)

    def __init__(self, writer, every, until, seed, z_dim, noise, value_range):
        self.writer, self.every, self.until, self.seed = writer, every, until, seed
        self.z_dim, self.noise, self.value_range = z_dim, noise, value_range

    def on_step_end(self, trainer, step, stats, row) -> None:
        for k, v in row.items():
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool):
                self.writer.add_scalar(self.TAGS.get(k, f"eval/{k}"), v, step)
        if self.every and _due(step, self.every, self.until):
            with torch.no_grad():
                was = trainer.D.training
                trainer.D.eval()
                look = torch.Generator(trainer.data_generator.device).manual_seed(self.seed)
                x = trainer.data.peek(256 - 256 % trainer.stab.pack, look)
                fake = generate(trainer.G_sample, x.shape[0], self.z_dim, self.noise, self.seed)
                dev = next(trainer.D.parameters()).device
                judge = lambda t: d_probability(trainer.D, trainer.stab.d_view(t.to(dev))).float().cpu()  # noqa: E731
                self.writer.add_histogram("D(x)/real", judge(x), step)
                self.writer.add_histogram("D(x)/fake", judge(fake), step)
                trainer.D.train(was)
            if fake.ndim == 4:
                from ..viz.grid import make_grid
                self.writer.add_image("samples", make_grid(fake[:64], value_range=self.value_range), step,
                                      dataformats="HWC")
            self.writer.flush()

    def on_end(self, trainer, step) -> None:
        self.writer.close()
