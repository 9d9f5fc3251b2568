"""Conditional against unconditional DCGANs on the same budget (docs/results.md).

For each data set, trains the conditional preset and the same configuration without
``conditional``, with the same seed, and scores 10,000 samples of each against the test
set with gankit's classifier features (domain FID), and the classes of the samples by
gankit's judge of classes (metrics/judge.py): for the conditional run, the conditional
accuracy (samples generated for class c that the judge calls c); for both, the class shares.

    python benchmarks/conditional.py                        # mnist and fashion-mnist, seed 0
    python benchmarks/conditional.py --data mnist --seeds 0 1 2
    python benchmarks/conditional.py --set ema_kimg=10 --out benchmarks/results/conditional_ema.json
    python benchmarks/conditional.py --conditional-only --set class_input=deep   # the conditional runs alone
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from gankit import Config
from gankit.runs import evaluate_run

try:
    from _common import parse_overrides, preset_config, train_complete, write_json
except ImportError:  # run as a module
    from benchmarks._common import parse_overrides, preset_config, train_complete, write_json

PRESETS = {"mnist": "mnist-cdcgan", "fashion-mnist": "fashion-cdcgan"}


def run_one(cfg: Config, run_dir: Path) -> dict:
    t0 = time.perf_counter()
    train_complete(cfg, run_dir, progress=False)
    secs = time.perf_counter() - t0
    metrics = ["fid", "cacc"] if cfg.conditional else ["fid"]
    ev = evaluate_run(run_dir, metrics, n=10_000, extractor="classifier", write=False)
    keep = ("fid", "class_accuracy", "class_accuracy_per_class", "classes_present", "class_shares", "class_kl",
            "class_judge")
    return {"train_seconds": round(secs, 1), **{k: ev[k] for k in keep if k in ev}, "extractor": ev["extractor"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="config values over the presets' (both runs), e.g. ema_kimg=10")
    ap.add_argument("--conditional-only", action="store_true",
                    help="skip the unconditional runs (options that only concern conditional models)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "conditional.json"))
    args = ap.parse_args()
    overrides = parse_overrides(args.set)
    results = {}
    tmp = Path(tempfile.mkdtemp(prefix="gankit-cond-"))
    try:
        for data in args.data:
            preset = PRESETS[data]
            rows = []
            for seed in args.seeds:
                cond = preset_config(preset, overrides, {"seed": seed})
                row = {"seed": seed}
                pairs = [("conditional", cond), ("unconditional", cond.replace(conditional=False))]
                for name, cfg in pairs[:1] if args.conditional_only else pairs:
                    row[name] = run_one(cfg, tmp / f"{data}-{name}-{seed}")
                    shutil.rmtree(tmp / f"{data}-{name}-{seed}")
                    print(f"{data} seed {seed} {name}: {row[name]}", flush=True)
                rows.append(row)
            results[data] = {"preset": preset, "overrides": overrides, "runs": rows}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_json(args.out, {"results": results})


if __name__ == "__main__":
    main()
