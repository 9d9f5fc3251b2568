"""Mode coverage on the PacGAN mixtures, with gankit's defaults (docs/metrics.md).

Trains as ``gankit train --data DATA`` does (the defaults, with the data set's own: ring8's
and grid25's 2-d noise and light R1; ``--set z_dim=8 r1=0 reg_every=1`` for the library
defaults alone) on each data set and seed, scores
2,500 samples of the final generator (modes captured, high-quality share, reverse KL) and
writes the table to ``benchmarks/results/toy_modes.json``.

    python benchmarks/toy_modes.py                       # ring8 and grid25, seeds 0 1 2
    python benchmarks/toy_modes.py --data ring8 --seeds 0 1 2 3 4 5 6 7 8 9
    python benchmarks/toy_modes.py --preset grid25 --data grid25 --seeds 0 1 2 3 4 5 6 7 8 9
    python benchmarks/toy_modes.py --data grid25 --set pack=4 r1=0.1  # any options on top
    python benchmarks/toy_modes.py --preset grid25 --data grid25 --raw  # also G as trained (EMA ablation)

With ``--raw`` each row also holds ``raw``: the same three figures for G as trained (its
raw weights, not the EMA average), on the same 2,500 noise draws as the run's final
evaluation, so the EMA generator's effect is measured on the same runs and samples.
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from gankit import Config
from gankit.config import load_preset, with_own_defaults
from gankit.data import get_distribution
from gankit.runs import evaluate_run
from gankit.training.state import derive_seeds

try:
    from _common import parse_overrides, train_complete, write_json
except ImportError:  # run as a module
    from benchmarks._common import parse_overrides, train_complete, write_json

PUBLISHED = {  # PacGAN Table 1 (Lin et al. 2018): modes, high quality, reverse KL
    "ring8": {"GAN": (6.3, 0.982, 0.45), "PacGAN2": (7.9, 0.956, 0.07)},
    "grid25": {"GAN": (17.3, 0.948, 0.70), "PacGAN4": (24.8, 0.936, 0.04)},
}


def mean_se(values):
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if v.size == 0:
        return None, None
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", default=["ring8", "grid25"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--preset", default=None, help="start from a shipped preset")
    ap.add_argument("--raw", action="store_true", help="also score G's raw weights (runs with an EMA generator)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="options on top (YAML values)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "toy_modes.json"))
    args = ap.parse_args()
    options = dict(load_preset(args.preset)) if args.preset else {}
    options.update(parse_overrides(args.set))

    results = {}
    for data in args.data:
        rows = []
        for seed in args.seeds:
            tmp = Path(tempfile.mkdtemp(prefix="gankit-bench-"))
            t0 = time.perf_counter()
            cfg = Config.from_dict(with_own_defaults({**options, "data": data, "seed": seed, "eval_every": 0})[0])
            r = train_complete(cfg, tmp / "run", progress=False)
            secs = time.perf_counter() - t0
            row = {"seed": seed, "modes": r.last_row["modes"],
                   "num_modes": get_distribution(data).num_components, "high_quality": r.last_row["high_quality"],
                   "reverse_kl": r.last_row["reverse_kl"], "seconds": round(secs, 1)}
            if args.raw:
                row["raw"] = score_raw(tmp / "run", seed)
            rows.append(row)
            print(f"{data} seed {seed}: modes {row['modes']}, high quality {row['high_quality']:.1%}, "
                  f"reverse KL {row['reverse_kl']}, {secs:.0f} s" + (f"; raw G: {row['raw']}" if args.raw else ""),
                  flush=True)
            shutil.rmtree(tmp)
            summary = {k: mean_se([r[k] for r in rows]) for k in ("modes", "high_quality", "reverse_kl", "seconds")}
            if args.raw:
                summary["raw"] = {k: mean_se([r["raw"][k] for r in rows]) for k in ("modes", "high_quality",
                                                                                    "reverse_kl")}
            results[data] = {"runs": rows, "mean_se": summary, "published": PUBLISHED.get(data)}
            save(args, options, results)  # after every seed: a stopped benchmark keeps its finished runs
        m, hq, kl = summary["modes"], summary["high_quality"], summary["reverse_kl"]
        print(f"{data}: modes {m[0]:.2f} ± {m[1]:.2f}, high quality {hq[0]:.1%} ± {hq[1]:.1%}, "
              f"reverse KL {kl[0]:.3f} ± {kl[1]:.3f}  (mean ± s.e. over {len(rows)} seeds)", flush=True)
    print(f"wrote {args.out}")


def score_raw(run_dir: Path, seed: int) -> dict:
    """G as trained, scored on the noise of the run's own final evaluation (its eval seed)."""
    ev = evaluate_run(run_dir, ["modes"], n=2500, seed=derive_seeds(seed)["eval"], write=False, weights="raw")
    return {k: ev[k] for k in ("modes", "high_quality", "reverse_kl")}


def save(args, options: dict, results: dict) -> None:
    first = with_own_defaults({**options, "data": args.data[0]})[0]
    write_json(args.out, {"config": Config.from_dict(first).to_dict(),
                          "preset": args.preset, "set": args.set, "results": results})


if __name__ == "__main__":
    main()
