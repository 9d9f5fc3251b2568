"""Several EMA half-lives from one training run: which average of G scores best.

An image preset is trained once (kept in ``--run``); beside the run's own EMA generator the
script keeps one more average of G's weights per ``--half-lives`` entry (gankit's
:class:`~gankit.training.regularizers.EMA`, updated after every step exactly as the run's
own, with its ramp-up; they consume no random numbers, so the run trains exactly as without
them). At the end each average is written as a copy of the last checkpoint whose
``G_ema`` is that average (``RUN/checkpoints/ema_KIMG_RAMPUP.pt``, outside the rotation),
and every generator is scored with the domain FID of 10,000 samples against the test set;
``--inception NAME …`` also scores the named ones (``run`` for the run's own average, or
``KIMG:RAMPUP``) with the standard FID (about 29 min each on an AVX2-only EPYC). Given an
existing run directory the script only scores the averages it was trained with.

    python benchmarks/ema_sweep.py fashion-dcgan --run runs/fashion-ema-sweep \
        --half-lives 30:0.05 100:0.05 300:0.25 --out benchmarks/results/fashion_dcgan_ema_sweep.json
    python benchmarks/ema_sweep.py fashion-dcgan --run runs/fashion-ema-sweep --half-lives 100:0.05 \
        --no-domain --inception 100:0.05 --out benchmarks/results/fashion_dcgan_ema_sweep_inception.json
    python benchmarks/ema_sweep.py fashion-dcgan --run runs/fashion-ema-sweep --half-lives 30:0.05 100:0.05 \
        300:0.25 --bn-stats standing --inception run --out benchmarks/results/fashion_dcgan_ema_sweep_standing.json

``--bn-stats standing`` scores every generator with its BatchNorm statistics recomputed from
itself (gankit's ``--bn-stats``) instead of the ones copied from G as trained.

Each half-life is ``KIMG`` or ``KIMG:RAMPUP`` (the ramp-up caps the half-life at RAMPUP
times the images seen; the preset's is 0.05). The extra averages live in memory only: a
run stopped before its end is not resumed by this script.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from gankit.config import BN_STATS
from gankit.rundir import checkpoint_dir
from gankit.runs import Run
from gankit.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from gankit.training.loop import Callback
from gankit.training.regularizers import EMA

try:
    from _common import parse_overrides, preset_config, score_fid, train_complete, write_json
except ImportError:  # run as a module
    from benchmarks._common import parse_overrides, preset_config, score_fid, train_complete, write_json


class ExtraEMAs(Callback):
    """Averages of G beside the run's own, updated after every step as the run's is."""

    def __init__(self, half_lives: list[tuple[float, float]]):
        self.half_lives = half_lives
        self.emas: dict[str, EMA] = {}

    def on_start(self, trainer) -> None:
        self.emas = {half_life_name(*hl): EMA(trainer.G, *hl) for hl in self.half_lives}

    def on_step_end(self, trainer, step, stats, row) -> None:
        for ema in self.emas.values():
            ema.update(trainer.batch_size)


def half_life_name(kimg: float, ramp: float) -> str:
    return f"{kimg:g}:{ramp:g}"


def parse_half_life(text: str) -> tuple[float, float]:
    kimg, _, ramp = text.partition(":")
    return float(kimg), float(ramp or 0.05)


def train_with_averages(a, run_dir: Path) -> tuple[dict, dict]:
    """Train the preset with the extra averages; write one checkpoint per average."""
    overrides = parse_overrides(a.set)
    cfg = preset_config(a.preset, overrides, {"seed": a.seed, "eval_every": 0})
    cfg = cfg.replace(checkpoint_every=cfg.steps)
    extra = ExtraEMAs(a.half_lives)
    t0 = time.perf_counter()
    train_complete(cfg, run_dir, progress=False, callbacks=[extra])
    result = {"overrides": overrides, "train_seconds": round(time.perf_counter() - t0, 1)}
    last = latest_checkpoint(run_dir)
    payload = load_checkpoint(last)
    ckpts = {"run": last}
    for name, ema in extra.emas.items():
        payload["G_ema"] = ema.state_dict()
        ckpts[name] = save_checkpoint(run_dir, payload, name=average_name(name))
    return result, ckpts


def average_name(name: str) -> str:
    return f"ema_{name.replace(':', '_')}.pt"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("preset")
    ap.add_argument("--run", required=True, help="the run directory: trained if new, else only scored")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    ap.add_argument("--half-lives", nargs="+", required=True, type=parse_half_life, metavar="KIMG[:RAMPUP]")
    ap.add_argument("--domain", action=argparse.BooleanOptionalAction, default=True,
                    help="score every generator with the domain FID")
    ap.add_argument("--inception", nargs="*", default=[], metavar="NAME",
                    help="generators also scored with the standard FID: 'run' or an average as KIMG:RAMPUP")
    ap.add_argument("--n", type=int, default=10_000, help="samples per score (10,000 by the protocol)")
    ap.add_argument("--bn-stats", default="running", choices=BN_STATS,
                    help="every generator's BatchNorm statistics: as saved (copied from G as trained) or "
                         "recomputed from the generator itself (gankit's --bn-stats)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    run_dir = Path(a.run)
    names = [half_life_name(*hl) for hl in a.half_lives]
    if (run_dir / "config.yaml").exists():  # trained earlier: score only
        result = {"train_seconds": None}
        ckpts = {"run": latest_checkpoint(run_dir),
                 **{nm: checkpoint_dir(run_dir) / average_name(nm) for nm in names}}
        missing = [str(p) for p in ckpts.values() if not p.is_file()]
        if missing:
            raise SystemExit(f"missing {', '.join(missing)}: only the half-lives a sweep was trained with can be "
                             "scored, and a sweep stopped before its end has none (they were kept in memory)")
    else:
        result, ckpts = train_with_averages(a, run_dir)
    cfg = Run.open(run_dir).config
    result.update(preset=a.preset, bn_stats=a.bn_stats, seed=cfg.seed, step=cfg.steps, config=cfg.to_dict(),
                  averages={"run": half_life_name(cfg.ema_kimg, cfg.ema_rampup), **{nm: nm for nm in names}})
    result["domain_fid"] = {}
    for name, ckpt in (ckpts.items() if a.domain else ()):
        result["domain_fid"][name] = r = score_fid(run_dir, ckpt, "ema", "classifier", a.n, a.bn_stats)
        print(f"{name}: domain FID {r['fid']:.3f}, class KL {r.get('class_kl', float('nan')):.4f}", flush=True)
    result["inception_fid"] = {}
    for name in a.inception:
        t1 = time.perf_counter()
        r = score_fid(run_dir, ckpts[name], "ema", "inception", a.n, a.bn_stats)
        result["inception_fid"][name] = {**r, "n": a.n, "seconds": round(time.perf_counter() - t1)}
        print(f"{name}: Inception FID {r['fid']:.3f}", flush=True)
    write_json(a.out, result)


if __name__ == "__main__":
    main()
