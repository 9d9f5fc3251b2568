"""Each stabiliser on and off on MNIST: the mnist-dcgan preset over several seeds, domain FID.

For every seed (outer loop) and every variant (inner loop) the script trains the mnist-dcgan
preset with the variant's options over it, on a shorter budget than the preset's by default
(``--steps 5000``: the search budget of docs/results.md, 320,000 images), and scores the
last checkpoint's generators with the domain FID of 10,000 samples against the 10,000 test
images (features of gankit's MNIST classifier) and the class shares of those samples:

- ``raw``: G as trained (the same G as a run without ``--ema-kimg``: the average draws no
  random numbers, so it does not change training);
- ``ema``: the EMA generator with the BatchNorm statistics copied from G as trained;
- ``ema_standing``: the EMA generator with standing statistics (``--bn-stats standing``).

Variants: ``preset`` (R1 γ 1 every 16 D steps, EMA half-life 10 kimg), ``no_r1`` (``r1 0``),
``spectral_norm`` (the preset plus spectral normalisation of D). EMA off is ``raw``. The
base is the mnist-dcgan preset of 2026-12-02 (``BASE``), which the results in
docs/results.md measure, not the preset of today (γ 0.1, half-life 100 kimg, standing
statistics since 2026-12-03; Adam 4e-4 since 2026-12-04; width 96 since 2026-12-06); the
JSON records it, and a file with another base is refused.

The JSON is rewritten after every run and read back at the start: the (seed, variant) pairs
it holds are not trained again, so an ablation stopped between runs continues where it
stopped (with the same ``--steps`` and ``--precision``; anything else is refused).

    python benchmarks/mnist_ablation.py --seeds 0 1 2 --out benchmarks/results/mnist_ablation.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from pathlib import Path

try:
    from _common import preset_config, train_and_score, write_json
except ImportError:  # run as a module
    from benchmarks._common import preset_config, train_and_score, write_json

# The preset's stabiliser settings on 2026-12-02, pinned so that resuming an ablation or
# adding a seed trains what the existing JSON measured.
BASE = {"r1": 1.0, "ema_kimg": 10, "bn_stats": "running", "lr_g": 2e-4, "lr_d": 2e-4, "width": 64}
VARIANTS = {"preset": {}, "no_r1": {"r1": 0.0}, "spectral_norm": {"spectral_norm": True}}
SCORES = {"raw": ("raw", "running"), "ema": ("ema", "running"), "ema_standing": ("ema", "standing")}


def summary(runs: list[dict]) -> dict:
    """Per variant and generator: the domain FID's mean, standard deviation and values over seeds."""
    out = {}
    for variant in VARIANTS:
        rows = sorted((r for r in runs if r["variant"] == variant), key=lambda r: r["seed"])
        if not rows:
            continue
        out[variant] = {}
        for name in SCORES:
            fids = [r[name]["domain_fid"] for r in rows]
            out[variant][name] = {"seeds": [r["seed"] for r in rows], "domain_fid": fids,
                                  "mean": statistics.fmean(fids),
                                  "std": statistics.stdev(fids) if len(fids) > 1 else None}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--steps", type=int, default=5000, help="steps of batch 64 per run (the preset's: 39000)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "mnist_ablation.json"))
    a = ap.parse_args()
    out = Path(a.out)
    runs = []
    if out.is_file():
        done = json.loads(out.read_text())
        if (done.get("steps"), done.get("precision")) != (a.steps, a.precision):
            raise SystemExit(f"{out} holds runs of {done.get('steps')} steps in {done.get('precision')}; "
                             "give another --out")
        # files written before the base was recorded used BASE, and those written before its
        # learning rates (2026-12-04) and width (2026-12-06) were recorded used BASE's 2e-4
        # and 64: what a file leaves out is BASE's
        if {**BASE, **done.get("base", {})} != BASE:
            raise SystemExit(f"{out} holds runs over another base ({done['base']}); give another --out")
        runs = done["runs"]
    tmp = Path(tempfile.mkdtemp(prefix="gankit-ablation-"))
    try:
        for seed in a.seeds:
            for variant in a.variants:
                if any(r["seed"] == seed and r["variant"] == variant for r in runs):
                    continue
                cfg = preset_config("mnist-dcgan", BASE, VARIANTS[variant],
                                    {"steps": a.steps, "precision": a.precision, "seed": seed, "eval_every": 0,
                                     "checkpoint_every": a.steps})
                row = {"seed": seed, "variant": variant, "overrides": VARIANTS[variant],
                       **train_and_score(cfg, tmp / f"{variant}-{seed}", SCORES)}
                runs.append(row)
                print(seed, variant, {k: round(row[k]["domain_fid"], 2) for k in SCORES},
                      f"{row['train_seconds']} s", flush=True)
                write_json(out, {"preset": "mnist-dcgan", "base": BASE, "steps": a.steps, "precision": a.precision,
                                 "runs": runs, "summary": summary(runs)})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
