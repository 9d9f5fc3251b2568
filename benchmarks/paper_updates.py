"""Algorithm 1 against the published code on the paper's MNIST model (docs/results.md).

The mnist-paper preset trains with simultaneous updates (both gradients from the same D,
as goodfeli/adversarial does); with Algorithm 1's alternating updates its D wins. This
script trains the preset's model for ``--steps`` steps per variant and seed:

- ``simultaneous``: the preset;
- ``alternating``: Algorithm 1 (k = 1, fresh noise for the G step), all else the preset's;
- ``alternating, lr_d /2`` and ``/4``: D's learning rate lowered;
- ``alternating, lr_g x2``: G's raised;
- ``alternating, reuse``: the G step on the D step's samples (``reuse_fake``).

For each it records D(x) and D(G(z)) over training (the logged means), the step at which
D(G(z)) first falls below 0.01 (D has won), and the domain FID of 10,000 samples against
the MNIST test set.

    python benchmarks/paper_updates.py --seeds 0 1 2 --steps 5000
    python benchmarks/paper_updates.py --plot benchmarks/results/paper_updates.json --figure docs/paper-updates.png

The second command trains nothing: it draws each variant's D(x) and D(G(z)) traces, one
panel per variant and one line per seed, from a results file.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from gankit import Config
from gankit.runs import evaluate_run

try:
    from _common import preset_config, train_complete, write_json
except ImportError:  # run as a module
    from benchmarks._common import preset_config, train_complete, write_json

BASE = {"update": "alternating"}
VARIANTS = {
    "simultaneous": {},
    "alternating": BASE,
    "alternating, lr_d /2": {**BASE, "lr_d": 0.025},
    "alternating, lr_d /4": {**BASE, "lr_d": 0.0125},
    "alternating, lr_g x2": {**BASE, "lr_g": 0.2},
    "alternating, reuse": {**BASE, "reuse_fake": True},
}


def run_one(cfg: Config, run_dir: Path) -> dict:
    t0 = time.perf_counter()
    run = train_complete(cfg, run_dir, progress=False)
    secs = time.perf_counter() - t0
    rows = [r for r in run.metrics() if "d_fake" in r]
    won = next((r["step"] for r in rows if r["d_fake"] < 0.01), None)
    ev = evaluate_run(run_dir, ["fid"], n=10_000, extractor="classifier", write=False)
    shutil.rmtree(run_dir)
    return {"train_seconds": round(secs, 1), "domain_fid": ev["fid"], "d_won_at_step": won,
            "final_d_real": rows[-1]["d_real"], "final_d_fake": rows[-1]["d_fake"],
            "trace": [(r["step"], round(r["d_real"], 4), round(r["d_fake"], 4)) for r in rows]}


def plot(results: dict, figure: Path) -> None:
    """One panel per variant: D(x) (solid) and D(G(z)) (dashed) against the step, per seed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    variants = results["variants"]
    cols = 3
    rows = -(-len(variants) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), sharex=True, sharey=True, squeeze=False)
    for ax, (name, v) in zip(axes.flat, variants.items()):
        for i, run in enumerate(v["runs"]):
            steps, d_real, d_fake = zip(*run["trace"])
            colour = f"C{i}"
            ax.plot(steps, d_real, color=colour, lw=1, label=f"seed {run['seed']} D(x)")
            ax.plot(steps, d_fake, color=colour, lw=1, ls="--", label=f"seed {run['seed']} D(G(z))")
        fids = ", ".join(f"{r['domain_fid']:.0f}" for r in v["runs"])
        ax.set_title(f"{name}\ndomain FID {fids}", fontsize=9)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(variants):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("step")
    for ax in axes[:, 0]:
        ax.set_ylabel("mean D output")
    axes.flat[0].legend(fontsize=7, loc="center right")
    fig.tight_layout()
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "paper_updates.json"))
    ap.add_argument("--plot", metavar="RESULTS", help="train nothing: draw the traces of this results file")
    ap.add_argument("--figure", default=str(Path(__file__).parents[1] / "docs" / "paper-updates.png"))
    a = ap.parse_args()
    if a.plot:
        plot(json.loads(Path(a.plot).read_text()), Path(a.figure))
        return
    tmp = Path(tempfile.mkdtemp(prefix="gankit-updates-"))
    results = {}
    try:
        for name in a.variants:
            rows = []
            for seed in a.seeds:
                cfg = preset_config("mnist-paper", VARIANTS[name], {"steps": a.steps, "seed": seed, "eval_every": 0,
                                                                   "log_every": 100})
                rows.append({"seed": seed, **run_one(cfg, tmp / f"{seed}")})
                print(name, seed, {k: v for k, v in rows[-1].items() if k != "trace"}, flush=True)
            fids = [r["domain_fid"] for r in rows]
            results[name] = {"overrides": VARIANTS[name], "runs": rows, "mean_domain_fid": statistics.fmean(fids),
                             "d_won_on_seeds": sum(r["d_won_at_step"] is not None for r in rows)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_json(a.out, {"steps": a.steps, "seeds": a.seeds, "variants": results})


if __name__ == "__main__":
    main()
