"""Assemble a training run from a :class:`~gankit.config.Config` and a run directory.

Data flows one way: config -> data source + models + optimizers -> Algorithm 1 (loop.py)
-> callbacks -> run directory. The run directory holds::

    config.yaml        the fully resolved configuration (feed it back with --config)
    metrics.jsonl      one JSON object per logged step
    checkpoints/       step_NNNNNN.pt, the newest few
    samples.png, discriminator.png, losses.png, plots/   pictures (1-D and 2-D data)
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import Config
from ..data import DistributionSource, make_source
from ..errors import DivergenceError, GankitError
from ..models import build_models
from ..evaluate import LOWER_IS_BETTER, Scorer, check_metrics, parse_metrics
from .callbacks import (Checkpointer, ImageSampler, LowDimEvaluator, MetricsEvaluator, MetricsWriter, Progress,
                        Stats, TensorBoardLogger, WeightGuard)
from .checkpoint import load_checkpoint, load_latest_good, rng_state, set_rng_state
from .distributed import Dist, init_from_env, shutdown, wrap
from .loop import GANTrainer, run_loop

def make_schedule(cfg: Config):
    """Hyperparameters at a step (0-based: the step about to be taken), or None if constant.

    ``linear``: learning rates fall linearly to 0 at ``steps``. ``exponential``: divided by
    ``lr_decay`` each step, floored at ``lr_min`` (the paper's MNIST schedule). SGD momentum
    rises linearly from ``momentum`` to ``momentum_final`` over ``momentum_ramp`` steps.
    """
    parts = []
    if cfg.lr_schedule == "linear":
        parts.append(lambda t: {"lr_factor": max(0.0, 1.0 - t / cfg.steps)})
    elif cfg.lr_schedule == "exponential":
        parts.append(lambda t: {"lr_factor": cfg.lr_decay ** (-t), "lr_min": cfg.lr_min})
    if cfg.optimizer == "sgd" and cfg.momentum_ramp > 0:
        parts.append(lambda t: {"momentum": cfg.momentum + (cfg.momentum_final - cfg.momentum)
                                * min(1.0, t / cfg.momentum_ramp)})
    if not parts:
        return None
    return lambda t: {k: v for p in parts for k, v in p(t).items()}


RESUMABLE_CHANGES = ("steps", "log_every", "eval_every", "checkpoint_every", "device")


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    interrupted: bool
    last_row: dict


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GankitError(f"device {name!r} asked for, but this torch has no CUDA device; use --device cpu")
    return torch.device(name)


def _cpu_times() -> tuple[int, int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat, and the ticks this
    process has used (user + system, all its threads), from /proc/self/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    # /proc/self/stat: "pid (comm) state ..."; utime and stime are fields 14 and 15.
    own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return sum(fields[:8]) - idle, sum(fields[:8]), int(own[11]) + int(own[12])


def choose_threads(sample_s: float = 0.2) -> tuple[int, str | None]:
    """The thread count for a CPU run: torch's default (the cores it may use, or
    OMP_NUM_THREADS) less the cores that other processes keep busy now (this one's own
    threads excluded), at least 1; and a note when that is fewer than the default.

    Why: two busy processes on the same cores each running one thread per core slow each
    other 3-5× (the threads wait on each other at every parallel region): mnist-dcgan
    took 104-155 ms a step on 2 threads with one core busy, 58 ms on 1 thread, 32-37 ms
    on 2 threads alone. The count is chosen once per run and kept by its checkpoints,
    because it changes how convolutions sum (1e-3 apart after 10 steps on mnist-dcgan), so
    a run and its resumption stay bitwise reproducible; ``--threads N`` fixes it."""
    default = torch.get_num_threads()
    cpus = os.cpu_count() or default
    try:
        b0, t0, own0 = _cpu_times()
        time.sleep(sample_s)
        b1, t1, own1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return default, None  # no /proc/stat (not Linux): keep torch's choice
    # This process's own threads do not count: after a previous run or evaluation in the
    # same process, torch's idle worker threads spin for a while and would look like load.
    busy = cpus * max(0, (b1 - b0) - (own1 - own0)) / max(t1 - t0, 1)
    threads = max(1, min(default, int(cpus - busy + 0.5)))
    if threads < default:
        return threads, (f"{busy:.1f} of {cpus} cores busy with other work; training on {threads} "
                         f"thread{'s' if threads > 1 else ''} instead of {default} (--threads N to choose)")
    return threads, None


def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (AMX or AVX512-BF16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_precision(cfg: Config, device: torch.device, G: torch.nn.Module) -> str:
    """``auto``: bf16 on GPUs that have it (else fp16), and on CPUs with bf16 units for
    convolutional models and MLPs with a layer of 2^18 weights or more (measured faster
    there: DCGAN 1.2-1.4x, the paper's MNIST MLP 1.5x); small MLPs gain nothing and stay fp32."""
    if cfg.precision != "auto":
        if cfg.precision == "fp16" and device.type == "cpu" and not hasattr(torch.amp, "GradScaler"):
            raise GankitError("fp16 on the CPU needs a newer torch; use --precision bf16 or fp32")
        return cfg.precision
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16"
        return "fp32" if cfg.update == "simultaneous" else "fp16"  # simultaneous updates have no loss scaling
    heavy = any(isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) or
                (isinstance(m, torch.nn.Linear) and m.weight.numel() >= 2**18) for m in G.modules())
    return "bf16" if heavy and cpu_has_bf16() else "fp32"


def derive_seeds(seed: int) -> dict[str, int]:
    """Independent seeds for each random stream of a run, derived from the one seed."""
    s = np.random.SeedSequence(seed).generate_state(4, dtype=np.uint64)
    return {"init": int(s[0] >> 1), "data": int(s[1] >> 1), "noise": int(s[2] >> 1), "eval": int(s[3] >> 1)}


def make_optimizer(name: str, params, lr: float, cfg: Config, fused: bool = False) -> torch.optim.Optimizer:
    """Adam or SGD with momentum. ``fused``: one kernel over all parameters (used for the
    convolutional models and on GPUs, where it is faster); otherwise Adam uses the
    multi-tensor ``foreach`` implementation, which the small models' defaults were tuned
    with (fused Adam rounds differently, and a GAN's trajectory depends on such rounding).
    SGD is always fused where torch has it: its fused step gives bitwise the same
    parameters as ``foreach`` (tests/training/test_loop.py) and took 1.45 ms instead of
    1.86 ms per step for the paper's MNIST model here."""
    params = list(params)
    fused = fused or name == "sgd"
    cls, kw = (torch.optim.Adam, dict(betas=(cfg.beta1, cfg.beta2))) if name == "adam" else \
        (torch.optim.SGD, dict(momentum=cfg.momentum))
    if fused:
        try:
            return cls(params, lr=lr, fused=True, **kw)
        except (RuntimeError, TypeError, ValueError):
            pass
    return cls(params, lr=lr, foreach=True, **kw)


def check_output_location(run_dir: Path, n_params: int, keep: int) -> None:
    """Before training: the run directory can be written, and its disk has room for the
    checkpoints (weights and two optimizer moments in float32, ``keep`` + 2 of them, plus
    64 MiB for pictures and logs)."""
    probe = Path(run_dir).absolute()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise GankitError(f"cannot write under {str(probe)!r} (permission denied or not a folder); "
                          "choose another --out")
    need = n_params * 4 * 3 * (keep + 2) + 64 * 2**20
    free = shutil.disk_usage(probe).free
    if free < need:
        raise GankitError(f"not enough disk space at {str(probe)!r}: a run needs about {need / 2**20:.0f} MiB "
                          f"for its checkpoints, {free / 2**20:.0f} MiB are free; free some space or choose "
                          "another --out")


def is_run_dir(path: Path) -> bool:
    return (Path(path) / "config.yaml").is_file()


def next_run_dir(root: Path, cfg: Config) -> Path:
    """``root/NNNNN-data-model``, numbered after the highest existing run."""
    root.mkdir(parents=True, exist_ok=True)
    nums = [int(p.name.split("-")[0]) for p in root.iterdir() if p.name.split("-")[0].isdigit()]
    return root / f"{(max(nums) + 1) if nums else 0:05d}-{cfg.data.replace(':', '_').replace('/', '_')}-{cfg.model}"


def check_resume_changes(saved: Config, wanted: dict) -> Config:
    """On resume only the run length, logging intervals and device may change."""
    for key, value in wanted.items():
        if key not in RESUMABLE_CHANGES and getattr(saved, key) != value:
            raise GankitError(
                f"cannot change {key} when resuming (the run has {getattr(saved, key)!r}); "
                f"only {', '.join(RESUMABLE_CHANGES)} may change; start a new run with another --out"
            )
    if saved.lr_schedule == "linear" and wanted.get("steps", saved.steps) != saved.steps:
        raise GankitError(f"cannot change steps when resuming a run whose learning rates decay to 0 at "
                          f"step {saved.steps} (lr_schedule: linear); start a new run for a longer one")
    return saved.replace(**{k: v for k, v in wanted.items() if k in RESUMABLE_CHANGES}).validate()


@contextmanager
def _stop_on_signals():
    """SIGINT/SIGTERM set a flag: the loop finishes its step, checkpoints, and returns."""
    flag = {"stop": False}

    def handler(signum, frame):
        if flag["stop"]:  # a second signal: stop at once
            raise KeyboardInterrupt
        flag["stop"] = True
        print(f"\ngankit: received {signal.Signals(signum).name}; finishing this step and "
              "writing a checkpoint (send it again to stop at once)", file=sys.stderr, flush=True)

    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            old[sig] = signal.signal(sig, handler)
        except ValueError:  # not in the main thread: leave signals alone
            pass
    try:
        yield lambda: flag["stop"]
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def _best_so_far(run_dir: Path) -> float | None:
    p = Path(run_dir) / "checkpoints" / "best.pt"
    if not p.is_file():
        return None
    return float(load_checkpoint(p)["best"]["value"])


def _read_rows(path: Path, upto: int | None = None) -> list[dict]:
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
            if isinstance(row, dict) and (upto is None or row.get("step", 0) <= upto):
                rows.append(row)
    return rows


def train(cfg: Config, out: str | Path | None = None, resume: bool = False,
          progress: bool = True, runs_root: str | Path = "runs") -> TrainResult:
    """Train a GAN as configured, into run directory ``out`` (a new numbered one if None).

    With ``resume=True``, ``out`` must be a run with a checkpoint; ``cfg`` must then be that
    run's configuration (see :func:`check_resume_changes`). Returns where it wrote, the last
    step done, whether a signal stopped it, and the last metrics row.
    """
    cfg.validate()
    device = resolve_device(cfg.device)
    dd = init_from_env(device)
    threads_before = torch.get_num_threads()
    try:
        return _train(cfg, out, resume, progress, runs_root, device, dd)
    finally:
        torch.set_num_threads(threads_before)  # a run's thread count ends with it
        if dd.enabled:
            shutdown()


def _train(cfg, out, resume, progress, runs_root, device, dd: Dist) -> TrainResult:
    if cfg.batch_size % dd.world:
        raise GankitError(f"batch_size {cfg.batch_size} is the global batch and must divide evenly over "
                          f"{dd.world} processes")
    if resume:
        if out is None:
            raise GankitError("--resume needs the run directory to continue (--out RUN or --resume RUN)")
        run_dir = Path(out)
        _, ckpt = load_latest_good(run_dir, device, warn=lambda m: print(m, file=sys.stderr))
    else:
        if out is None and dd.enabled:
            raise GankitError("a distributed run needs --out DIR (on storage every process can reach)")
        run_dir = next_run_dir(Path(runs_root), cfg) if out is None else Path(out)
        if run_dir.exists() and dd.is_main:
            if is_run_dir(run_dir) or (run_dir / "checkpoints").exists():
                raise GankitError(f"{str(run_dir)!r} already holds a run; pass --resume to continue it, "
                                  "or choose another --out")
            if not run_dir.is_dir():
                raise GankitError(f"--out {str(run_dir)!r} exists and is not a directory")
            if any(run_dir.iterdir()):
                raise GankitError(f"--out {str(run_dir)!r} is a non-empty directory; choose a new or empty one")
        ckpt = None
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    elif device.type == "cpu":
        threads = int(ckpt.get("threads", 0)) if ckpt is not None else 0
        if not threads:
            threads, note = choose_threads()
            if note:
                print(f"gankit: {note}", file=sys.stderr)
        torch.set_num_threads(threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    seeds = derive_seeds(cfg.seed)
    torch.manual_seed(seeds["init"])
    random.seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    source = make_source(cfg, device)
    G, D = build_models(cfg, source.shape)
    if len(source.shape) == 3:
        source.value_range = getattr(G, "output_range", (-1.0, 1.0))
        if hasattr(G, "init_from_data") and hasattr(source, "data") and ckpt is None:
            G.init_from_data(source.data.float().mean(0) / 255)
    precision = resolve_precision(cfg, device, G)
    convolutional = any(isinstance(m, torch.nn.Conv2d) for m in D.modules())
    memory_format = torch.channels_last if convolutional else torch.contiguous_format
    G.to(device, memory_format=memory_format)
    D.to(device, memory_format=memory_format)
    extra = [m for m in parse_metrics(cfg.metrics)
             if not (m == "modes" and isinstance(source, DistributionSource) and source.distribution.mode_benchmark)]
    if cfg.best_metric:
        produced = set(extra) | ({"precision", "recall"} if "pr" in extra else set())
        if isinstance(source, DistributionSource) and source.distribution.mode_benchmark:
            produced |= {"modes", "high_quality", "reverse_kl"}
        if cfg.best_metric not in produced:
            raise GankitError(f"best_metric {cfg.best_metric} is not computed by this run; add it to --metrics")
    # Only rank 0 evaluates: the others check that the metrics apply (so every rank refuses
    # the same mistakes) but load no feature extractor, which may train and cache a classifier.
    check_metrics(cfg, source.shape, extra)
    scorer, failure = None, None
    if extra and dd.is_main:
        try:
            scorer = Scorer(cfg, source.shape, extra, cfg.eval_samples, seed=seeds["eval"])
        except GankitError as exc:
            failure = exc
    if dd.any(failure is not None):  # all ranks stop together rather than wait for rank 0
        raise failure or GankitError("rank 0 could not set up the evaluation; see its message")
    if ckpt is None and dd.is_main:
        check_output_location(run_dir, sum(p.numel() for m in (G, D) for p in m.parameters()),
                              cfg.keep_checkpoints)
    try:  # only now, with data and models in hand, does the run directory appear
        if dd.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GankitError(f"cannot create run directory {str(run_dir)!r}: {exc.strerror}") from None
    fused = convolutional or device.type == "cuda"
    opt_g = make_optimizer(cfg.optimizer, G.parameters(), cfg.lr_g, cfg, fused)
    opt_d = make_optimizer(cfg.optimizer, D.parameters(), cfg.lr_d, cfg, fused)
    gens = {
        "data": torch.Generator(device).manual_seed(seeds["data"]),
        "noise": torch.Generator(device).manual_seed(seeds["noise"]),
    }
    trainer = GANTrainer(G, D, opt_g, opt_d, source, cfg.loss, cfg.k, cfg.batch_size, cfg.z_dim,
                         cfg.noise, gens["data"], gens["noise"], schedule=make_schedule(cfg), precision=precision,
                         channels_last=convolutional, reuse_fake=cfg.reuse_fake, update=cfg.update, dist=dd,
                         G_train=wrap(G, dd, device), D_train=wrap(D, dd, device))
    def restore(ck: dict) -> list[dict]:
        """Put the run back in the state of checkpoint ``ck``; returns the log rows up to it."""
        G.load_state_dict(ck["G"])
        D.load_state_dict(ck["D"])
        opt_g.load_state_dict(ck["opt_g"])
        opt_d.load_state_dict(ck["opt_d"])
        if trainer.scaler is not None and ck.get("scaler"):
            trainer.scaler.load_state_dict(ck["scaler"])
        source.load_state_dict(ck["data_state"])
        set_rng_state(ck["rng"], gens)
        trainer.step_count = int(ck["step"])
        # Rows logged after this checkpoint belong to steps that will be redone.
        kept = _read_rows(metrics_path, upto=trainer.step_count)
        if dd.is_main:
            metrics_path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        return kept

    elapsed_before = 0.0
    metrics_path = run_dir / "metrics.jsonl"
    rows = []
    if ckpt is not None:
        rows = restore(ckpt)
        elapsed_before = float(ckpt["elapsed"])
        if ckpt.get("lr_scale", 1.0) != 1.0:
            trainer.scale_learning_rates(float(ckpt["lr_scale"]))
    if dd.is_main:
        cfg.to_yaml(run_dir / "config.yaml")
    dd.barrier()

    stats = Stats(cfg.log_every, cfg.steps, cfg.batch_size, elapsed_before)
    writer = MetricsWriter(metrics_path)
    writer.rows = rows

    def payload() -> dict:
        return {
            "step": trainer.step_count,
            "config": cfg.to_dict(),
            "G": G.state_dict(), "D": D.state_dict(),
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
            "data_state": source.state_dict(),
            "rng": rng_state(gens),
            "elapsed": stats.wall_time,
            "data_shape": list(source.shape),
            "precision": precision,
            "lr_scale": trainer.lr_scale,
            "threads": torch.get_num_threads(),
            "scaler": trainer.scaler.state_dict() if trainer.scaler is not None else {},
        }

    if dd.is_main:  # rank 0 alone draws, evaluates and writes
        callbacks = [stats]
        if isinstance(source, DistributionSource) and source.shape[0] <= 2:
            callbacks.append(LowDimEvaluator(run_dir, source.distribution, cfg.z_dim, cfg.noise,
                                             cfg.eval_samples, cfg.eval_every, cfg.steps, seeds["eval"],
                                             lambda: writer.rows))
        elif len(source.shape) == 3:
            callbacks.append(ImageSampler(run_dir, cfg.z_dim, cfg.noise, cfg.eval_every, cfg.steps, seeds["eval"],
                                          source.value_range, lambda: writer.rows))
        if scorer is not None:
            callbacks.append(MetricsEvaluator(scorer, cfg.eval_every, cfg.steps))
        tb = TensorBoardLogger.create(run_dir, cfg.eval_every, cfg.steps, seeds["eval"], cfg.z_dim, cfg.noise,
                                      getattr(source, "value_range", None))
        if tb is not None:
            callbacks.append(tb)
        callbacks += [writer, Progress(cfg.steps, enabled=progress),
                      Checkpointer(run_dir, cfg.checkpoint_every, payload, keep=cfg.keep_checkpoints,
                                   best_metric=cfg.best_metric,
                                   lower_is_better=LOWER_IS_BETTER.get(cfg.best_metric, True),
                                   best_so_far=_best_so_far(run_dir))]
    else:  # the other processes train, keep statistics and check the weights at rank 0's checkpoint steps
        callbacks = [stats, WeightGuard(cfg.checkpoint_every, G, D)]
    rollbacks = 0
    with _stop_on_signals() as local_stop:
        should_stop = (lambda: dd.any(local_stop())) if dd.enabled else local_stop
        while True:
            try:
                step = run_loop(trainer, cfg.steps, callbacks, should_stop=should_stop)
                break
            except DivergenceError as exc:
                if cfg.on_divergence != "rollback" or rollbacks >= 3:
                    raise
                rollbacks += 1
                try:
                    path, good = load_latest_good(run_dir, device)
                except GankitError:
                    raise exc from None
                writer.rows = restore(good)
                trainer.scale_learning_rates(0.1 * float(good.get("lr_scale", 1.0)))
                print(f"gankit: {exc}; rolled back to {path.name} with learning rates x{trainer.lr_scale:g} "
                      f"(rollback {rollbacks} of 3)", file=sys.stderr, flush=True)
        interrupted = should_stop()  # a collective when distributed: every process asks
    dd.barrier()
    return TrainResult(run_dir, step, interrupted, writer.rows[-1] if writer.rows else {})
