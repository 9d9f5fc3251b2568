"""Same mathematics, faster: the fast path's results against fp32 (issue: speed, item 5).

Trains the same configurations and seeds in fp32 and in bf16 and compares what they learn:
- toy mixtures (gankit's defaults): modes, high-quality share and reverse KL per seed;
- MNIST presets (``--mnist-presets``, default mnist-dcgan; each trained for its preset's
  steps unless --mnist-steps says otherwise), per seed: the domain FID of 10,000 samples
  (features of gankit's MNIST classifier) against the test set; the means over seeds are
  compared.

    python benchmarks/precision_parity.py --data ring8 grid25 --seeds 0 1 2 --mnist-seeds 0 1 2
    python benchmarks/precision_parity.py --data --mnist-presets mnist-paper \
        --out benchmarks/results/precision_parity_paper.json

Writes benchmarks/results/precision_parity.json unless --out says otherwise.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from gankit import Config
from gankit.config import load_preset

try:
    from _common import parse_overrides, preset_config, train_and_score, train_complete, write_json
except ImportError:
    from benchmarks._common import parse_overrides, preset_config, train_and_score, train_complete, write_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="*", default=["ring8"], help="toy mixtures (none: skip them)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--mnist-presets", nargs="*", default=["mnist-dcgan"], help="none: skip MNIST")
    ap.add_argument("--mnist-steps", type=int, default=None, help="steps per MNIST run (default: the preset's; "
                                                                  "0 skips MNIST)")
    ap.add_argument("--mnist-seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"],
                    help="MNIST: the precisions to train (both for a comparison)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="MNIST: config values over the preset's, e.g. dequantize=true")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "precision_parity.json"))
    a = ap.parse_args()
    overrides = parse_overrides(a.set)
    tmp = Path(tempfile.mkdtemp(prefix="gankit-parity-"))
    toy = []
    for data in a.data:
        for seed in a.seeds:
            row = {"data": data, "seed": seed}
            for prec in ("fp32", "bf16"):
                t0 = time.perf_counter()
                r = train_complete(Config(data=data, seed=seed, eval_every=0, precision=prec),
                                   tmp / f"{data}-{seed}-{prec}", progress=False)
                row[prec] = {k: r.last_row[k] for k in ("modes", "high_quality", "reverse_kl")}
                row[prec]["seconds"] = round(time.perf_counter() - t0, 1)
            toy.append(row)
            print(data, seed, "fp32", row["fp32"], "bf16", row["bf16"], flush=True)
    mnist = {}
    for preset in a.mnist_presets if a.mnist_steps != 0 else []:
        steps = a.mnist_steps or load_preset(preset)["steps"]
        runs, res = [], {"steps": steps, "overrides": overrides}
        for seed in a.mnist_seeds:
            row = {"seed": seed}
            for prec in a.precisions:
                cfg = preset_config(preset, overrides, {"steps": steps, "precision": prec, "eval_every": 0,
                                                        "seed": seed})
                row[prec] = train_and_score(cfg, tmp / f"{preset}-{seed}-{prec}")
                print(preset, "seed", seed, prec, row[prec], flush=True)
            runs.append(row)
        res["runs"] = runs
        for prec in a.precisions:
            fids = [r[prec]["domain_fid"] for r in runs]
            res[prec] = {"mean_domain_fid": statistics.fmean(fids),
                         "std_domain_fid": statistics.stdev(fids) if len(fids) > 1 else None}
        mnist[preset.replace("-", "_")] = res
        if len(a.precisions) < 2:
            continue
        m32, m16 = res["fp32"]["mean_domain_fid"], res["bf16"]["mean_domain_fid"]
        res["relative_difference_of_means"] = abs(m16 - m32) / m32
        print(f"{preset} domain FID over seeds {a.mnist_seeds}: fp32 {m32:.1f}, bf16 {m16:.1f} "
              f"({res['relative_difference_of_means']:.1%} apart)", flush=True)
    write_json(a.out, {"toy": toy, **mnist})
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
