"""Assemble a training run from a :class:`~gankit.config.Config` and a run directory.

Data flows one way: config -> data source + models + optimizers -> Algorithm 1 (loop.py)
-> callbacks -> run directory (rundir.py). :func:`train` reads as the list of its stages:

1. :func:`prepare_run_dir`: where the run goes, and the checkpoint it resumes from;
2. :func:`build_components`: threads and seeds, data source, G and D, precision, the CPU
   kernels (``gankit.ops``), optimizers, the trainer and the evaluation;
3. :func:`open_run`: the run directory created (only now, with everything checked), the
   training state restored from the checkpoint, ``config.yaml`` and ``runtime.json`` written;
4. :func:`make_callbacks`: statistics, pictures, metrics, progress, checkpoints;
5. :func:`run_with_rollback`: Algorithm 1 until the last step, a signal, or divergence
   (which, with ``on_divergence: rollback``, restarts from the last good checkpoint).
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import ops
from ..config import RESUMABLE_CHANGES, Config
from ..data import DistributionSource, apply_data_options, make_source
from ..errors import DivergenceError, GankitError
from ..evaluate import Scorer, check_metrics, lower_is_better
from ..models import build_models
from ..registries import METRICS, parse_metric_list
from ..rundir import (
    MetricsLog,
    RunLock,
    best_checkpoint,
    check_new_run_dir,
    check_output_location,
    create_run_dir,
    next_run_dir,
    write_config,
    write_runtime,
)
from ..sampling import batchnorm_layers
from .callbacks import (
    Checkpointer,
    ImageSampler,
    LowDimEvaluator,
    MetricsEvaluator,
    MetricsWriter,
    Progress,
    Stats,
    TensorBoardLogger,
    WeightGuard,
)
from .checkpoint import load_checkpoint, load_latest_good
from .distributed import Dist, init_from_env, shutdown, wrap
from .loop import GANTrainer, run_loop
from .optim import make_optimizer, make_schedule
from .regularizers import EMA, Stabilizers
from .runtime import (
    apply_threads,
    check_training_memory,
    is_convolutional,
    memory_format,
    resolve_device,
    resolve_precision,
)
from .state import TrainingState, derive_seeds, seed_globals


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    interrupted: bool
    last_row: dict


@dataclass
class Components:
    """What :func:`build_components` assembles for a run."""

    source: object
    trainer: GANTrainer
    runtime: dict                       # device, precision, threads, cpu_kernels: what the run computes with
    seeds: dict
    scorer: Scorer | None = None
    metrics: list = field(default_factory=list)


logger = logging.getLogger("gankit")


@dataclass
class UserParts:
    """What a Python caller may bring instead of the configuration's own: G and D modules,
    a data source (or a builder ``(cfg, device) -> source``), and extra callbacks."""

    models: tuple | None = None
    source: object = None
    callbacks: list = field(default_factory=list)


def train(cfg: Config, out: str | Path | None = None, resume: bool = False,
          progress: bool = True, runs_root: str | Path = "runs", user: UserParts | None = None) -> TrainResult:
    """Train a GAN as configured, into run directory ``out`` (a new numbered one if None).

    With ``resume=True``, ``out`` must be a run with a checkpoint; ``cfg`` must then be that
    run's configuration (see :func:`check_resume_changes`). ``user`` brings the caller's own
    models, data or callbacks (``gankit.train`` fills it). Returns where it wrote, the last
    step done, whether a signal stopped it, and the last metrics row.
    """
    user = user or UserParts()
    cfg.validate()
    device = resolve_device(cfg.device)
    dd = init_from_env(device)
    threads_before = torch.get_num_threads()
    lock = None
    try:
        run_dir, ckpt = prepare_run_dir(cfg, out, resume, runs_root, dd, device)
        parts = build_components(cfg, device, dd, ckpt, user)
        lock = RunLock(run_dir) if dd.is_main else None
        state, log = open_run(cfg, run_dir, parts, ckpt, dd, lock)
        callbacks = make_callbacks(cfg, run_dir, parts, state, log, dd, progress, user.callbacks)
        if progress and dd.is_main:
            print(describe_run(run_dir, cfg, parts.runtime), flush=True)
        return run_with_rollback(cfg, run_dir, state, log, callbacks, dd)
    finally:
        if lock is not None:
            lock.release()
        torch.set_num_threads(threads_before)  # a run's thread count ends with it
        if dd.enabled:
            shutdown()


# ---------------------------------------------------------------------- 1. the run directory
def prepare_run_dir(cfg: Config, out, resume: bool, runs_root, dd: Dist,
                    device: torch.device) -> tuple[Path, dict | None]:
    """Where the run goes (nothing is created yet), and the checkpoint it resumes from."""
    if cfg.batch_size % dd.world:
        raise GankitError(f"batch_size {cfg.batch_size} is the global batch and must divide evenly over "
                          f"{dd.world} processes")
    if resume:
        if out is None:
            raise GankitError("--resume needs the run directory to continue (--out RUN or --resume RUN)")
        run_dir = Path(out)
        _, ckpt = load_latest_good(run_dir, device, warn=logger.warning)
        if cfg.steps < int(ckpt["step"]):
            raise GankitError(f"cannot resume to {cfg.steps} steps: the run has done {ckpt['step']} already")
        return run_dir, ckpt
    if out is None and dd.enabled:
        raise GankitError("a distributed run needs --out DIR (on storage every process can reach)")
    run_dir = next_run_dir(Path(runs_root), cfg) if out is None else Path(out)
    if dd.is_main:
        check_new_run_dir(run_dir)
    return run_dir, None


def check_resume_changes(saved: Config, wanted: dict, done: int = 0) -> Config:
    """On resume only the run length, logging intervals, how many checkpoints are kept and
    the device may change, and the run length not below the ``done`` steps of the checkpoint
    resumed from."""
    for key, value in wanted.items():
        if key not in RESUMABLE_CHANGES and getattr(saved, key) != value:
            raise GankitError(
                f"cannot change {key} when resuming (the run has {getattr(saved, key)!r}); "
                f"only {', '.join(RESUMABLE_CHANGES)} may change; start a new run with another --out"
            )
    if wanted.get("steps", saved.steps) < done:
        raise GankitError(f"cannot resume to {wanted['steps']} steps: the run has done {done} already; "
                          f"pass --steps {done} or more")
    if saved.lr_schedule == "linear" and wanted.get("steps", saved.steps) != saved.steps:
        raise GankitError(f"cannot change steps when resuming a run whose learning rates decay to 0 at "
                          f"step {saved.steps} (lr_schedule: linear); start a new run for a longer one")
    return saved.replace(**{k: v for k, v in wanted.items() if k in RESUMABLE_CHANGES}).validate()


# ---------------------------------------------------------------------- 2. the components
def build_components(cfg: Config, device: torch.device, dd: Dist, ckpt: dict | None,
                     user: UserParts | None = None) -> Components:
    """Threads and seeds, data, models, precision, kernels, optimizers, trainer, evaluation."""
    user = user or UserParts()
    threads = apply_threads(cfg, device, ckpt.get("threads", 0) if ckpt else 0)
    seeds = derive_seeds(cfg.seed)
    seed_globals(cfg.seed, seeds["init"])
    if ckpt is None:                    # a new run: nothing it would ignore (older runs still resume)
        cfg.refuse_inapplicable()
    source = user.source(cfg, device) if callable(user.source) else (user.source or make_source(cfg, device))
    apply_data_options(source, cfg)
    if ckpt is None:
        if cfg.augment and len(source.shape) != 3:
            raise GankitError(f"--augment transforms images; the examples of {cfg.data} are not images "
                              f"(shape {tuple(source.shape)})")
    if hasattr(source, "__len__") and len(source) < cfg.batch_size:
        raise GankitError(f"the data set holds {len(source)} examples, fewer than one batch of {cfg.batch_size}; "
                          "lower --batch-size")
    if user.models is None:
        check_training_memory(build_models, cfg, tuple(source.shape), device)
    classes = list(getattr(source, "classes", None) or []) if cfg.conditional else []
    G, D = user.models or build_models(cfg, source.shape, num_classes=len(classes))
    if cfg.bn_stats == "standing" and not batchnorm_layers(G):
        raise GankitError("bn_stats standing: the generator has no BatchNorm layers whose statistics to recompute")
    if len(source.shape) == 3:
        source.value_range = getattr(G, "output_range", (-1.0, 1.0))
        if hasattr(G, "init_from_data") and hasattr(source, "mean01") and ckpt is None:
            G.init_from_data(source.mean01())
    precision = resolve_precision(cfg, device, G)
    kernels = ops.wanted(cfg.cpu_kernels, device.type, precision)
    if kernels:
        ops.apply(G), ops.apply(D)
    fmt = memory_format(D)
    G.to(device, memory_format=fmt)
    D.to(device, memory_format=fmt)
    scorer, metrics = make_scorer(cfg, source, seeds, dd)
    fused = is_convolutional(D) or device.type == "cuda"
    gens = {name: torch.Generator(device).manual_seed(seeds[name]) for name in ("data", "noise")}
    trainer = GANTrainer(G, D, make_optimizer(cfg.optimizer, G.parameters(), cfg.lr_g, cfg, fused),
                         make_optimizer(cfg.optimizer, D.parameters(), cfg.lr_d, cfg, fused), source, cfg.loss,
                         cfg.k, cfg.batch_size, cfg.z_dim, cfg.noise, gens["data"], gens["noise"],
                         schedule=make_schedule(cfg), precision=precision, channels_last=is_convolutional(D),
                         reuse_fake=cfg.reuse_fake, update=cfg.update, dist=dd,
                         G_train=wrap(G, dd, device), D_train=wrap(D, dd, device),
                         class_probs=fake_label_probs(cfg, source, device) if classes else None,
                         aux_weight=cfg.aux_classifier if classes else 0.0,
                         stab=make_stabilizers(cfg, G, device, seeds, dd))
    runtime = {"device": str(device), "precision": precision, "threads": threads, "cpu_kernels": kernels,
               "processes": dd.world, **provenance()}
    return Components(source, trainer, runtime, seeds, scorer, metrics)


def provenance() -> dict:
    """When, with what and by which command a run (or its resumption) was started."""
    from ..version import __version__, command_line
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "gankit": __version__, "torch": torch.__version__,
            "command": command_line()}


def make_stabilizers(cfg: Config, G: torch.nn.Module, device: torch.device, seeds: dict,
                     dd: Dist | None = None) -> Stabilizers:
    """EMA, packing, augmentation and gradient penalties as configured (all off by default);
    augmentation draws from its own stream (saved in checkpoints), for the global batch, of
    which each of ``dd``'s processes applies its own slice's."""
    policy = tuple(p.strip() for p in cfg.augment.split(",") if p.strip())
    return Stabilizers(pack=cfg.pack, augment=policy, r1=cfg.r1, r2=cfg.r2, reg_every=cfg.reg_every,
                       augment_generator=torch.Generator(device).manual_seed(seeds["augment"]) if policy else None,
                       ema=EMA(G, cfg.ema_kimg, cfg.ema_rampup) if cfg.ema_kimg > 0 else None,
                       bn_stats=cfg.bn_stats, batch_part=(dd.rank, dd.world) if dd is not None else (0, 1))


def fake_label_probs(cfg: Config, source, device: torch.device) -> torch.Tensor:
    """The class probabilities of G's labels: the data's class frequencies, or uniform."""
    counts = source.class_counts.float()
    probs = counts / counts.sum() if cfg.fake_labels == "data" else torch.ones_like(counts) / len(counts)
    return probs.to(device)


def make_scorer(cfg: Config, source, seeds: dict, dd: Dist) -> tuple[Scorer | None, list]:
    """The evaluation of ``--metrics`` during training (rank 0 only), after checking that
    the metrics apply and that ``best_metric`` is among what the run computes."""
    mixture = isinstance(source, DistributionSource) and source.distribution.mode_benchmark
    extra = [m for m in parse_metric_list(cfg.metrics) if not (m == "modes" and mixture)]
    if cfg.best_metric:
        produced = {k for m in extra for k in METRICS.entry(m).meta.get("produces", {m: True})}
        if mixture:  # the low-dimensional evaluator scores modes itself
            produced |= set(METRICS.entry("modes").meta["produces"])
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
    return scorer, extra


# ---------------------------------------------------------------------- 3. the training state
def open_run(cfg: Config, run_dir: Path, parts: Components, ckpt: dict | None,
             dd: Dist, lock: RunLock | None) -> tuple[TrainingState, MetricsLog]:
    """Create the run directory (everything checkable has been checked) and lock it,
    restore the checkpoint's state, and write the configuration and what the run computes
    with."""
    t = parts.trainer
    if ckpt is None and dd.is_main:
        check_output_location(run_dir, sum(p.numel() for m in (t.G, t.D) for p in m.parameters()),
                              cfg.keep_checkpoints)
    if dd.is_main:
        create_run_dir(run_dir)
        lock.acquire()
        if ckpt is None:   # under the lock: another process may have started a run here meanwhile
            check_new_run_dir(run_dir, locked=True)
    state = TrainingState(cfg, t, tuple(parts.source.shape), parts.runtime)
    log = MetricsLog(run_dir)
    if ckpt is not None:
        state.load_state_dict(ckpt)
        if dd.is_main:  # rows logged after the checkpoint belong to steps that will be redone
            log.truncate(state.step)
    if dd.is_main:
        write_config(run_dir, cfg)
        write_runtime(run_dir, parts.runtime)
    dd.barrier()
    return state, log


# ---------------------------------------------------------------------- 4. the callbacks
def make_callbacks(cfg: Config, run_dir: Path, parts: Components, state: TrainingState, log: MetricsLog,
                   dd: Dist, progress: bool, extra: list = ()) -> list:
    """Rank 0 draws, evaluates and writes; the other processes keep statistics and check
    the weights at rank 0's checkpoint steps. Order matters (see callbacks.py)."""
    source, seeds = parts.source, parts.seeds
    stats = Stats(cfg.log_every, cfg.steps, cfg.batch_size, state.elapsed_before)
    state.elapsed = lambda: stats.wall_time
    if not dd.is_main:
        return [stats, WeightGuard(cfg.checkpoint_every, state.trainer.G, state.trainer.D)]
    writer = MetricsWriter(log, log.rows())
    callbacks = [stats]
    if len(source.shape) == 1 and source.shape[0] <= 2 and hasattr(source, "density"):
        callbacks.append(LowDimEvaluator(run_dir, source.density(), cfg.z_dim, cfg.noise, cfg.eval_samples,
                                         cfg.eval_every, cfg.steps, seeds["eval"], lambda: writer.rows))
    elif len(source.shape) == 3:
        callbacks.append(ImageSampler(run_dir, cfg.z_dim, cfg.noise, cfg.eval_every, cfg.steps, seeds["eval"],
                                      source.value_range, lambda: writer.rows))
    if parts.scorer is not None:
        callbacks.append(MetricsEvaluator(parts.scorer, cfg.eval_every, cfg.steps))
    tb = TensorBoardLogger.create(run_dir, cfg, seeds["eval"], getattr(source, "value_range", None)) \
        if cfg.tensorboard else None
    if tb is not None:
        callbacks.append(tb)
    callbacks += list(extra)   # the caller's: they see the row before it is written
    best = best_checkpoint(run_dir)
    callbacks += [writer, Progress(cfg.steps, enabled=progress),
                  Checkpointer(run_dir, cfg.checkpoint_every, state.state_dict, keep=cfg.keep_checkpoints,
                               best_metric=cfg.best_metric, lower_is_better=lower_is_better(cfg.best_metric),
                               best_so_far=float(load_checkpoint(best)["best"]["value"]) if best else None)]
    return callbacks


def describe_run(run_dir: Path, cfg: Config, runtime: dict) -> str:
    """The first line of a run's output: where it writes and what it computes with."""
    chosen = " (chosen by auto)" if cfg.precision == "auto" else ""
    kernels = ", CPU kernels on" if runtime.get("cpu_kernels") else ""
    threads = f", {runtime['threads']} threads" if runtime["device"] == "cpu" else ""
    return (f"run {run_dir}: device {runtime['device']}, precision {runtime['precision']}{chosen}{threads}"
            f"{kernels}; TensorBoard: {tensorboard_note(run_dir, cfg)}")


def tensorboard_note(run_dir: Path, cfg: Config) -> str:
    from .callbacks import tensorboard_available
    if not cfg.tensorboard:
        return "off (--no-tensorboard)"
    return f"{run_dir / 'tensorboard'}" if tensorboard_available() else "off (pip install gankit[tensorboard])"


# ---------------------------------------------------------------------- 5. the loop
def run_with_rollback(cfg: Config, run_dir: Path, state: TrainingState, log: MetricsLog, callbacks: list,
                      dd: Dist) -> TrainResult:
    """Algorithm 1 until ``cfg.steps``, a signal (checkpoint, then stop) or divergence; with
    ``on_divergence: rollback``, up to 3 restarts from the last good checkpoint at 1/10
    the learning rates."""
    writer = next((c for c in callbacks if isinstance(c, MetricsWriter)), None)
    trainer, rollbacks = state.trainer, 0
    with _stop_on_signals() as signalled:
        def local_stop() -> bool:   # a signal, or a callback that asks (Progress, when stdout's reader has gone)
            return signalled() or any(getattr(cb, "stop_requested", False) for cb in callbacks)
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
                    path, good = load_latest_good(run_dir, trainer.noise_generator.device)
                except GankitError:
                    raise exc from None
                state.load_state_dict(good)
                if writer is not None:
                    writer.rows = log.truncate(state.step)
                trainer.scale_learning_rates(0.1 * float(good.get("lr_scale", 1.0)))
                logger.warning(f"{exc}; rolled back to {path.name} with learning rates x{trainer.lr_scale:g} "
                     f"(rollback {rollbacks} of 3)")
        interrupted = should_stop()  # a collective when distributed: every process asks
    dd.barrier()
    last = writer.rows[-1] if writer is not None and writer.rows else {}
    return TrainResult(run_dir, step, interrupted, last)


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
