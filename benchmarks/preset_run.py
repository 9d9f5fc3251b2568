"""Train an image preset once into a kept run directory and score it along its checkpoints.

The figures of docs/results.md's *DCGAN on MNIST* sections: the domain FID (gankit's
classifier features) and the class shares of 10,000 samples against the 10,000 test
images at chosen steps, for the EMA and/or the raw generator, and at the last step,
optionally, the standard FID (Inception-v3, the reference protocol, fp32 features; about
22 min here per generator once the test set's features are cached, 45 min before).

    python benchmarks/preset_run.py mnist-dcgan --run runs/mnist-dcgan-r1-long --inception ema \
        --out benchmarks/results/mnist_dcgan_r1_long.json
    python benchmarks/preset_run.py mnist-dcgan --set lr_schedule=linear --run runs/mnist-dcgan-linear \
        --weights ema raw --out benchmarks/results/mnist_dcgan_linear.json

A run directory whose training has finished is scored without training again (the figures
of an existing run: ``--inception raw`` on a run trained earlier); an unfinished one is
resumed, and a finished one with a constant learning rate is extended by a larger
``--set steps=N`` (the same as training N steps from the start). ``--inception-step S``
scores the standard FID at a kept earlier step; ``--weights`` with no value skips the
domain FID.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from gankit.rundir import checkpoint_dir, checkpoint_name
from gankit.runs import Run

try:
    from _common import parse_overrides, preset_config, score_fid, train_complete, write_json
except ImportError:  # run as a module
    from benchmarks._common import parse_overrides, preset_config, score_fid, train_complete, write_json


def kept_steps(run_dir: Path) -> list[int]:
    """The steps of the run's kept checkpoints, oldest first (none for a run not started)."""
    return list(Run.open(run_dir).checkpoint_steps()) if (run_dir / "config.yaml").exists() else []


def score(run_dir: Path, step: int, weights: str, extractor: str) -> dict:
    return score_fid(run_dir, checkpoint_dir(run_dir) / checkpoint_name(step), weights, extractor)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("preset")
    ap.add_argument("--run", required=True, help="the run directory (kept; resumed or only scored if it exists)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config values over the preset's")
    ap.add_argument("--every", type=int, default=5000, help="checkpoint and score every N steps (and the last)")
    ap.add_argument("--weights", nargs="*", default=["ema"], choices=("ema", "raw"),
                    help="generators scored with the domain FID at every scored step (none: no domain FID)")
    ap.add_argument("--inception", nargs="*", default=[], choices=("ema", "raw"),
                    help="generators scored with the standard FID at the last step (or --inception-step)")
    ap.add_argument("--inception-step", type=int, default=None,
                    help="score the standard FID at this kept step instead of the last")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    run_dir = Path(a.run)
    overrides = parse_overrides(a.set)
    cfg = preset_config(a.preset, overrides, {"seed": a.seed, "checkpoint_every": a.every, "eval_every": 0})
    cfg = cfg.replace(keep_checkpoints=cfg.steps // a.every + 1)
    result = {"preset": a.preset, "overrides": overrides}
    done = max(kept_steps(run_dir), default=0)
    if done < cfg.steps:
        t0 = time.perf_counter()
        train_complete(cfg, run_dir, resume=done > 0, progress=False)
        result["train_seconds"] = round(time.perf_counter() - t0, 1)
        result["trained_from_step"] = done
    else:
        result["train_seconds"] = None  # trained earlier; only scored here
    result["config"] = Run.open(run_dir).config.to_dict()  # what was trained, which an existing run decides
    kept = kept_steps(run_dir)
    last = kept[-1]
    at = last if a.inception_step is None else a.inception_step
    if a.inception and at not in kept:
        raise SystemExit(f"no checkpoint at step {at} in {run_dir}; kept: {', '.join(map(str, kept))}")
    steps = [s for s in kept if s % a.every == 0 or s == last]
    result["domain_fid"] = {w: {} for w in a.weights}
    for w in a.weights:
        for s in steps:
            result["domain_fid"][w][str(s)] = r = score(run_dir, s, w, "classifier")
            print(f"step {s} {w}: domain FID {r['fid']:.3f}, class KL {r.get('class_kl', float('nan')):.4f}",
                  flush=True)
    result["inception_fid"] = {}
    for w in a.inception:
        t0 = time.perf_counter()
        r = score(run_dir, at, w, "inception")
        result["inception_fid"][w] = {**r, "step": at, "n": 10_000, "seconds": round(time.perf_counter() - t0)}
        print(f"step {at} {w}: Inception FID {r['fid']:.3f}", flush=True)
    write_json(a.out, result)


if __name__ == "__main__":
    main()
