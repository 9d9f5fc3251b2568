"""Where a toy run's low-quality samples lie: bridges between modes, or too wide a spread.

Trains one configuration on a PacGAN mixture per seed into a kept run directory, then
draws 20,000 samples from the final generator (EMA and raw where the run has both) and
splits the samples that are not high quality (farther than 3 std from every mode) into
those 3-6 std away (tails) and those farther (bridges between modes). ``spread`` is the
in-mode spread of the samples within 6 std of a mode, as a multiple of the mixture's std
(estimated from the median distance to the mode: for a 2-d Gaussian of std s the median
distance is s·sqrt(2 ln 2)); below 1, G's modes are narrower than the data's. The
protocol's own figures (2,500 samples, docs/metrics.md) come with each row.
Each row is appended to ``--out`` as one JSON line, so a stopped search keeps its rows.

    python benchmarks/toy_search.py --tag ring8-preset --data ring8 --preset ring8 --seeds 0
    python benchmarks/toy_search.py --tag ring8-z2 --data ring8 --preset ring8 --seeds 0 1 --set z_dim=2
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from gankit import Config
from gankit.config import load_preset, with_own_defaults
from gankit.data import get_distribution
from gankit.metrics.modes import mode_stats
from gankit.runs import Run

try:
    from _common import environment, parse_overrides, train_complete
except ImportError:  # run as a module
    from benchmarks._common import environment, parse_overrides, train_complete


def diagnose(run_dir: Path, data: str, weights: str, n: int = 20_000) -> dict:
    """Quality, tails, bridges and in-mode spread of ``n`` samples of the run's last G."""
    dist = get_distribution(data)
    mu, std = dist.means.numpy(), float(dist.stds[0])
    x = Run.open(run_dir).load(weights=weights).sample(n, seed=123).double().numpy()
    r = np.sqrt(((x[:, None, :] - mu[None]) ** 2).sum(-1).min(1)) / std  # distance to the nearest mode, in std
    near = r[r < 6]
    stats = mode_stats(x, mu, std)
    return {"high_quality": stats["high_quality"], "modes": stats["modes"],
            "tails_3_6": float(((r > 3) & (r < 6)).mean()), "bridges_6": float((r >= 6).mean()),
            "spread": float(np.median(near) / math.sqrt(2 * math.log(2)))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tag", required=True, help="a name for the configuration (the run directories' prefix)")
    ap.add_argument("--data", required=True)
    ap.add_argument("--preset", default=None)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="options on top (YAML values)")
    ap.add_argument("--runs", default="runs/toy-search", help="where the run directories are kept")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "toy_search.jsonl"))
    a = ap.parse_args()
    options = dict(load_preset(a.preset)) if a.preset else {}
    options.update(parse_overrides(a.set))
    for seed in a.seeds:
        run_dir = Path(a.runs) / f"{a.tag}-s{seed}"
        t0 = time.perf_counter()
        # the data set's and model's own defaults, as `gankit train` applies them
        given = with_own_defaults({**options, "data": a.data, "seed": seed, "eval_every": 0})[0]
        run = train_complete(Config.from_dict(given), run_dir, progress=False)
        row = {"tag": a.tag, "data": a.data, "preset": a.preset, "set": a.set, "seed": seed,
               "seconds": round(time.perf_counter() - t0, 1), "modes": run.last_row["modes"],
               "high_quality": run.last_row["high_quality"], "reverse_kl": run.last_row["reverse_kl"]}
        for w in (["ema", "raw"] if given.get("ema_kimg") else ["raw"]):
            row[f"{w}_20k"] = diagnose(run_dir, a.data, w)
        print(json.dumps(row), flush=True)
        with open(a.out, "a") as f:
            f.write(json.dumps({**row, **environment()}) + "\n")


if __name__ == "__main__":
    main()
