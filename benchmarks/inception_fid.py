"""The standard (Inception-v3) FID of a trained image run, and how far bf16 features move it.

    python benchmarks/inception_fid.py RUN                          # 10k samples vs the MNIST test set
    python benchmarks/inception_fid.py RUN --parity-n 2500 --n 10000

1. Parity (skipped with ``--parity-n 0``): FID of ``--parity-n`` samples against as many test images, with the features
   computed in fp32 and in bf16 (autocast); the relative change and the time of each.
2. The FID of ``--n`` samples against the first ``--n`` test images, in the precision
   chosen by ``--precision`` (auto: bf16 when the parity step moved the FID by < 0.5 %).

Writes benchmarks/results/inception_fid.json. Inception on 2 CPU cores is slow (about 0.1 s
per image in fp32): the default protocol takes roughly half an hour here.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from gankit.evaluate import Scorer
from gankit.metrics.frechet import fid_from_features
from gankit.runs import Run

try:
    from _common import write_json
except ImportError:
    from benchmarks._common import write_json


def features(cfg, G, n: int, precision: str, seed: int):
    s = Scorer(cfg, G.out_shape, ["fid"], n, extractor="inception", seed=seed, precision=precision)
    t0 = time.perf_counter()
    fake = s.extractor(s.samples01(G))
    t1 = time.perf_counter()
    real = s.real_features()
    t2 = time.perf_counter()
    return fake, real, {"fake_seconds": round(t1 - t0, 1), "real_seconds": round(t2 - t1, 1), **s.info}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--parity-n", type=int, default=2_500)  # FID needs n > 2048 features
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "inception_fid.json"))
    a = ap.parse_args()
    run = Run.open(a.run)
    G, _, step = run.load_models()
    cfg = run.config
    result = {"run": str(run.path), "step": step, "config": cfg.to_dict()}

    parity = {}
    for prec in ("fp32", "bf16") if a.parity_n else ():
        fake, real, info = features(cfg, G, a.parity_n, prec, a.seed)
        parity[prec] = {"fid": fid_from_features(real, fake), **info}
        print(prec, json.dumps(parity[prec]), flush=True)
    rel = None
    if parity:
        rel = abs(parity["bf16"]["fid"] - parity["fp32"]["fid"]) / parity["fp32"]["fid"]
        parity["relative_change"] = rel
        parity["n"] = a.parity_n
        result["parity"] = parity
        print(f"parity on {a.parity_n}: FID fp32 {parity['fp32']['fid']:.3f}, bf16 {parity['bf16']['fid']:.3f} "
              f"({rel:.3%})", flush=True)
    if a.precision == "auto" and rel is None:
        raise SystemExit("--precision auto needs the parity step (--parity-n > 0)")
    prec = a.precision if a.precision != "auto" else ("bf16" if rel < 0.005 else "fp32")
    if a.n:
        fake, real, info = features(cfg, G, a.n, prec, a.seed)
        result["fid"] = {"n": a.n, "precision": prec, "fid": fid_from_features(real, fake), **info}
        print(f"FID ({a.n} samples vs {len(real)} test images, {prec}): {result['fid']['fid']:.3f}", flush=True)
    write_json(a.out, result)


if __name__ == "__main__":
    main()
