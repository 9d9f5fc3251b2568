"""Same mathematics, faster: the fast path's results against fp32 (issue: speed, item 5).

Trains the same configurations and seeds in fp32 and in bf16 and compares what they learn:
- toy mixtures (gankit's defaults): modes, high-quality share and reverse KL per seed;
- mnist-dcgan (shortened with --mnist-steps): the domain FID of 10,000 samples (features of
  gankit's MNIST classifier) against the test set.

    python benchmarks/precision_parity.py --seeds 0 1 2 --mnist-steps 1500

Writes benchmarks/results/precision_parity.json.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from gankit import Config, train
from gankit.config import load_preset
from gankit.evaluate import evaluate_run

try:
    from _common import write_json
except ImportError:
    from benchmarks._common import write_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", default=["ring8"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--mnist-steps", type=int, default=1500, help="0 to skip the MNIST comparison")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "precision_parity.json"))
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gankit-parity-"))
    toy = []
    for data in a.data:
        for seed in a.seeds:
            row = {"data": data, "seed": seed}
            for prec in ("fp32", "bf16"):
                t0 = time.perf_counter()
                r = train(Config(data=data, seed=seed, eval_every=0, precision=prec), out=tmp / f"{data}-{seed}-{prec}",
                          progress=False)
                row[prec] = {k: r.last_row[k] for k in ("modes", "high_quality", "reverse_kl")}
                row[prec]["seconds"] = round(time.perf_counter() - t0, 1)
            toy.append(row)
            print(data, seed, "fp32", row["fp32"], "bf16", row["bf16"], flush=True)
    mnist = {}
    if a.mnist_steps:
        for prec in ("fp32", "bf16"):
            cfg = Config.from_dict({**load_preset("mnist-dcgan"), "steps": a.mnist_steps, "precision": prec,
                                    "eval_every": 0})
            t0 = time.perf_counter()
            train(cfg, out=tmp / f"mnist-{prec}", progress=False)
            secs = time.perf_counter() - t0
            ev = evaluate_run(tmp / f"mnist-{prec}", ["fid"], n=10_000, extractor="classifier", write=False)
            mnist[prec] = {"domain_fid": ev["fid"], "train_seconds": round(secs, 1), "extractor": ev["extractor"]}
            print("mnist-dcgan", prec, mnist[prec], flush=True)
        mnist["relative_difference"] = abs(mnist["bf16"]["domain_fid"] - mnist["fp32"]["domain_fid"]) / \
            mnist["fp32"]["domain_fid"]
        print(f"domain FID bf16 vs fp32: {mnist['relative_difference']:.1%} apart", flush=True)
    write_json(a.out, {"toy": toy, "mnist_dcgan": mnist, "mnist_steps": a.mnist_steps})
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
