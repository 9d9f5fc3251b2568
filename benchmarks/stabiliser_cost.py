"""What each stabiliser costs in training-step time, measured in one run (docs/results.md).

For a base configuration (the mnist-dcgan preset on MNIST at width 64 without its R1 and
EMA, or the defaults on grid25), builds one trainer per variant (EMA, lazy R1, spectral norm,
DiffAugment, …) in this one process, as ``gankit train`` assembles it, warms each up, then
runs them in turn in rounds of ``--round`` steps (16: every round holds exactly one of lazy
R1's every-16 steps), ``--rounds`` times. Each variant's round is compared with the base's
round of the same turn, so that a slow spell of the host (step times here drift by ±20 %
from minute to minute) hits both sides of each ratio alike. Reported per variant: the
median over rounds of its ms per step, and the median over rounds of its paired ratio to
the base, with the ratio's interquartile range.

    python benchmarks/stabiliser_cost.py --base mnist-dcgan
    python benchmarks/stabiliser_cost.py --base grid25
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from pathlib import Path
from unittest import mock

import torch
from torch.nn.utils.parametrizations import _SpectralNorm

from gankit.config import Config, load_preset
from gankit.training import regularizers
from gankit.training.distributed import Dist
from gankit.training.run import build_components

try:
    from _common import write_json
except ImportError:  # run as a module
    from benchmarks._common import write_json

# The bases are unregularised: the mnist-dcgan preset without its own R1 and EMA, at width
# 64 (the preset's width until 2026-12-06, which the costs in docs/results.md measure).
BASES = {"mnist-dcgan": {**load_preset("mnist-dcgan"), "r1": 0.0, "ema_kimg": 0.0, "width": 64},
         "grid25": {"data": "grid25"}}
VARIANTS = {
    "base": {},
    "ema": {"ema_kimg": 10.0},
    "r1 lazy (every 16)": {"r1": 0.1, "reg_every": 16},
    "r1 lazy (every 4)": {"r1": 0.1, "reg_every": 4},
    "spectral norm": {"spectral_norm": True},
    # torch's parametrization as it comes (F.normalize, autograd through σ): gankit's before 2026-12-07
    "spectral norm, torch's own calls": {"spectral_norm": True, "sn_calls": "torch"},
    # torch's behaviour in training mode: a power iteration in G's step too (gankit's before 2026-12-01)
    "spectral norm, iterating in G's step": {"spectral_norm": True, "trainer": {"sn_iterate_in_g_step": True}},
    "augment (translation, cutout)": {"augment": "translation,cutout"},
    # D judges the batch in packs of 2: half as many decisions, each on two samples
    "pack 2": {"pack": 2},
}


def build_trainer(options: dict):
    """The trainer ``gankit train`` builds for ``options`` (training/run.py), without a run
    directory; ``options["trainer"]`` sets attributes of the trainer that are not options."""
    attributes = options.pop("trainer", {})
    # "sn_calls": "torch" builds D with torch's own parametrization class
    torchs = options.pop("sn_calls", None) == "torch"
    with mock.patch.object(regularizers, "SpectralNorm", _SpectralNorm) if torchs else contextlib.nullcontext():
        trainer = build_components(Config.from_dict(options).validate(), torch.device("cpu"), Dist(), None).trainer
    for name, value in attributes.items():
        setattr(trainer, name, value)
    return trainer


def run_steps(trainer, n: int) -> float:
    """Seconds per step over ``n`` steps (ended by one synchronisation, as at a logging step)."""
    t = time.perf_counter()
    for _ in range(n):
        stats = trainer.step()
    stats.to_dict()
    return (time.perf_counter() - t) / n


def quartiles(v: list[float]) -> list[float]:
    q = statistics.quantiles(v, n=4)
    return [round(q[0], 3), round(q[2], 3)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="mnist-dcgan", choices=list(BASES))
    ap.add_argument("--round", type=int, default=16, help="steps per round")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    base = {**BASES[args.base], "lr_schedule": "constant", "eval_every": 0, "tensorboard": False}
    variants = {k: v for k, v in VARIANTS.items() if not (args.base == "grid25" and k.startswith("augment"))}
    trainers = {k: build_trainer({**base, **extra}) for k, extra in variants.items()}
    for tr in trainers.values():
        run_steps(tr, args.warmup)
    times: dict[str, list[float]] = {k: [] for k in variants}
    for r in range(args.rounds):
        for name, tr in trainers.items():
            times[name].append(run_steps(tr, args.round))
        print(f"round {r}: " + ", ".join(f"{k} {v[-1] * 1000:.1f}" for k, v in times.items()) + " ms/step", flush=True)
    table = {}
    for k, v in times.items():
        ratios = [a / b for a, b in zip(v, times["base"])]
        table[k] = {"ms_per_step_by_round": [round(t * 1000, 2) for t in v],
                    "median_ms": round(statistics.median(v) * 1000, 2),
                    "ratio_to_base": round(statistics.median(ratios), 3),
                    "ratio_quartiles": quartiles(ratios)}
        print(f"{k:32s} {table[k]['median_ms']:8.1f} ms/step  ×{table[k]['ratio_to_base']:.3f} "
              f"(quartiles {table[k]['ratio_quartiles'][0]:.3f}–{table[k]['ratio_quartiles'][1]:.3f})")
    write_json(args.out or Path(__file__).parent / "results" / f"stabiliser_cost_{args.base}.json",
               {"base": args.base, "round": args.round, "rounds": args.rounds, "warmup": args.warmup,
                "results": table})


if __name__ == "__main__":
    main()
