"""Mode coverage on the PacGAN mixtures, with gankit's defaults (docs/metrics.md).

Trains ``gankit train`` with its default configuration on each data set and seed, scores
2,500 samples of the final generator (modes captured, high-quality share, reverse KL) and
writes the table to ``benchmarks/results/toy_modes.json``.

    python benchmarks/toy_modes.py                       # ring8 and grid25, seeds 0 1 2
    python benchmarks/toy_modes.py --data ring8 --seeds 0 1 2 3 4 5 6 7 8 9
    python benchmarks/toy_modes.py --preset grid25 --data grid25 --seeds 0 1 2 3 4 5 6 7 8 9
    python benchmarks/toy_modes.py --data grid25 --set pack=4 r1=0.1  # any options on top
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
from gankit.config import load_preset
from gankit.data import get_distribution

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
            cfg = Config.from_dict({**options, "data": data, "seed": seed, "eval_every": 0})
            r = train_complete(cfg, tmp / "run", progress=False)
            secs = time.perf_counter() - t0
            row = {"seed": seed, "modes": r.last_row["modes"],
                   "num_modes": get_distribution(data).num_components, "high_quality": r.last_row["high_quality"],
                   "reverse_kl": r.last_row["reverse_kl"], "seconds": round(secs, 1)}
            rows.append(row)
            print(f"{data} seed {seed}: modes {row['modes']}, high quality {row['high_quality']:.1%}, "
                  f"reverse KL {row['reverse_kl']}, {secs:.0f} s", flush=True)
            shutil.rmtree(tmp)
            summary = {k: mean_se([r[k] for r in rows]) for k in ("modes", "high_quality", "reverse_kl", "seconds")}
            results[data] = {"runs": rows, "mean_se": summary, "published": PUBLISHED.get(data)}
            save(args, options, results)  # after every seed: a stopped benchmark keeps its finished runs
        m, hq, kl = summary["modes"], summary["high_quality"], summary["reverse_kl"]
        print(f"{data}: modes {m[0]:.2f} ± {m[1]:.2f}, high quality {hq[0]:.1%} ± {hq[1]:.1%}, "
              f"reverse KL {kl[0]:.3f} ± {kl[1]:.3f}  (mean ± s.e. over {len(rows)} seeds)", flush=True)
    print(f"wrote {args.out}")


def save(args, options: dict, results: dict) -> None:
    write_json(args.out, {"config": Config.from_dict({**options, "data": args.data[0]}).to_dict(),
                          "preset": args.preset, "set": args.set, "results": results})


if __name__ == "__main__":
    main()
