"""What each stabiliser costs in training-step time, measured in one run (docs/results.md).

For a base configuration (the mnist-dcgan preset on MNIST, or the defaults on grid25),
trains each variant (EMA, lazy R1, spectral norm, DiffAugment, …) for ``--steps`` steps,
``--reps`` times in turn (base, variant 1, variant 2, …, base, …: interleaved, so that a
slow spell of the machine hits every variant alike), and reports each variant's mean
seconds per step over the steps after the first ``--warmup`` (the mean, so that lazy
regularisation's occasional dearer steps count), the median of that over the repetitions,
and its ratio to the base.

    python benchmarks/stabiliser_cost.py --base mnist-dcgan
    python benchmarks/stabiliser_cost.py --base grid25
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from gankit import Callback, Config, train
from gankit.config import load_preset

try:
    from _common import write_json
except ImportError:  # run as a module
    from benchmarks._common import write_json

BASES = {"mnist-dcgan": dict(load_preset("mnist-dcgan")), "grid25": {"data": "grid25"}}
VARIANTS = {
    "base": {},
    "ema": {"ema_kimg": 10.0},
    "r1 lazy (every 16)": {"r1": 0.1, "reg_every": 16},
    "r1 lazy (every 4)": {"r1": 0.1, "reg_every": 4},
    "spectral norm": {"spectral_norm": True},
    "augment (translation, cutout)": {"augment": "translation,cutout"},
}


class StepClock(Callback):
    """Wall time of each step after the first ``warmup``."""

    def __init__(self, warmup: int):
        self.warmup, self.times, self.last = warmup, [], None

    def on_step_end(self, trainer, step, stats, row) -> None:
        now = time.perf_counter()
        if self.last is not None and step > self.warmup:
            self.times.append(now - self.last)
        self.last = now


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="mnist-dcgan", choices=list(BASES))
    ap.add_argument("--steps", type=int, default=160)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    base = {**BASES[args.base], "steps": args.steps, "log_every": args.steps, "eval_every": 0,
            "checkpoint_every": args.steps, "tensorboard": False, "lr_schedule": "constant"}
    variants = {k: v for k, v in VARIANTS.items() if not (args.base == "grid25" and k.startswith("augment"))}
    times: dict[str, list[float]] = {k: [] for k in variants}
    tmp = Path(tempfile.mkdtemp(prefix="gankit-cost-"))
    try:
        for rep in range(args.reps):
            for name, extra in variants.items():
                clock = StepClock(args.warmup)
                train(Config.from_dict({**base, **extra}).validate(), out=tmp / "run", overwrite=True,
                      progress=False, callbacks=[clock])
                times[name].append(statistics.fmean(clock.times))   # the mean: lazy R1's steps count
                print(f"rep {rep} {name}: {times[name][-1] * 1000:.1f} ms/step", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ref = statistics.median(times["base"])
    table = {k: {"ms_per_step_by_rep": [round(t * 1000, 2) for t in v],
                 "median_ms": round(statistics.median(v) * 1000, 2),
                 "ratio_to_base": round(statistics.median(v) / ref, 3)} for k, v in times.items()}
    for k, v in table.items():
        print(f"{k:32s} {v['median_ms']:8.1f} ms/step  ×{v['ratio_to_base']:.3f}")
    write_json(args.out or Path(__file__).parent / "results" / f"stabiliser_cost_{args.base}.json",
               {"base": args.base, "steps": args.steps, "warmup": args.warmup, "results": table})


if __name__ == "__main__":
    main()
