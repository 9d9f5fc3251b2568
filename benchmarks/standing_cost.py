"""What standing BatchNorm statistics cost a training run: seconds per evaluation, and their
share of the training time between two evaluations (docs/results.md).

With ``bn_stats: standing`` (the fashion-dcgan preset's) every evaluation, and so every
picture and metric of it, samples from a copy of the EMA generator whose BatchNorm
statistics are recomputed from 10,000 of its own samples (``gankit.sampling.
standing_statistics``; once per evaluation step, cached by the trainer). This script builds
the preset's trainer as ``gankit train`` does (stabiliser_cost.py's
``build_trainer``), warms it up, then alternates ``--rounds`` times: ``--round`` training
steps, timed, and one recomputation, timed. Reported: the median recomputation time, the
median step time, and the median over rounds of the paired share
``recomputation / (eval_every × step time)`` (the preset's ``eval_every``), with quartiles.

    python benchmarks/standing_cost.py --preset fashion-dcgan
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from gankit.config import load_preset

try:
    from _common import write_json
    from stabiliser_cost import build_trainer, quartiles, run_steps
except ImportError:  # run as a module
    from benchmarks._common import write_json
    from benchmarks.stabiliser_cost import build_trainer, quartiles, run_steps


def recompute_seconds(trainer) -> float:
    """Seconds for the trainer to make its standing-statistics generator anew (what an
    evaluation step pays once: a copy of the EMA generator and 10,000 samples through it)."""
    trainer._standing = None
    t = time.perf_counter()
    _ = trainer.G_sample   # the property makes the copy and recomputes
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="fashion-dcgan")
    ap.add_argument("--round", type=int, default=50, help="training steps per round")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    options = {**load_preset(args.preset), "bn_stats": "standing", "lr_schedule": "constant", "tensorboard": False}
    eval_every = options["eval_every"]
    trainer = build_trainer({**options, "eval_every": 0})
    run_steps(trainer, args.warmup)
    recompute_seconds(trainer)
    steps, recomputes, shares = [], [], []
    for r in range(args.rounds):
        steps.append(run_steps(trainer, args.round))
        recomputes.append(recompute_seconds(trainer))
        shares.append(recomputes[-1] / (eval_every * steps[-1]))
        print(f"round {r}: {steps[-1] * 1000:.1f} ms/step, standing statistics {recomputes[-1]:.2f} s, "
              f"{shares[-1]:.2%} of {eval_every} steps", flush=True)
    result = {"preset": args.preset, "eval_every": eval_every, "round": args.round, "rounds": args.rounds,
              "warmup": args.warmup, "precision": trainer.precision,
              "median_ms_per_step": round(statistics.median(steps) * 1000, 2),
              "median_recompute_s": round(statistics.median(recomputes), 3),
              "median_share_of_eval_interval": round(statistics.median(shares), 5),
              "share_quartiles": quartiles(shares),
              "ms_per_step_by_round": [round(s * 1000, 2) for s in steps],
              "recompute_s_by_round": [round(s, 3) for s in recomputes]}
    print(f"{args.preset}: {result['median_ms_per_step']} ms/step; standing statistics "
          f"{result['median_recompute_s']} s per evaluation = {result['median_share_of_eval_interval']:.2%} "
          f"of the {eval_every} steps between evaluations")
    write_json(args.out or Path(__file__).parent / "results" / f"standing_cost_{args.preset}.json", result)


if __name__ == "__main__":
    main()
