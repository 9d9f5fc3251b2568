"""What DiffAugment buys on a small data set (issue: 1,000 Fashion-MNIST images as PNGs).

Writes the first 1,000 Fashion-MNIST training images as a folder of PNG files, trains the
fashion-dcgan preset on that folder (``--data folder:DIR``, the way a user brings their
own images; on the 5,000-step budget without R1 or EMA of ``BASE``) with and without
``--augment``, over seeds, and scores each run's 10,000 samples against the 10,000 *test*
images with gankit's Fashion-MNIST classifier features (domain FID): the training folder
holds 1,000 images, so a FID against it would reward memorising them.

    python benchmarks/small_data.py                                   # 3 seeds, ~40 min here
    python benchmarks/small_data.py --seeds 0 --policy translation,cutout
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from gankit.data import load_images
from gankit.evaluate import Scorer
from gankit.runs import Run

try:
    from _common import parse_overrides, preset_config, train_complete, write_json
except ImportError:  # run as a module
    from benchmarks._common import parse_overrides, preset_config, train_complete, write_json


# What docs/results.md measured: the fashion-dcgan preset as it was before it gained R1, an EMA
# generator and 2.5 M images (5,000 steps, 320 passes over 1,000 images); --set changes it.
BASE = {"steps": 5000, "r1": 0.0, "ema_kimg": 0, "eval_every": 500, "checkpoint_every": 500}


def write_folder(n: int, folder: Path) -> None:
    """The first ``n`` Fashion-MNIST training images as 8-bit grayscale PNGs."""
    images, _ = load_images("fashion-mnist", "train")
    folder.mkdir(parents=True)
    for i, img in enumerate(images[:n]):
        Image.fromarray(np.ascontiguousarray(img[0]), mode="L").save(folder / f"{i:05d}.png")


def score_against_test(run_dir: Path) -> dict:
    """Domain FID of 10,000 samples against the Fashion-MNIST test split."""
    run = Run.open(run_dir).load("latest")
    cfg = run.trained_config.replace(data="fashion-mnist")
    scorer = Scorer(cfg, run.G.out_shape, ["fid"], 10_000, "classifier")
    out = scorer.score(run.G)
    keep = {k: out[k] for k in ("fid", "class_shares", "class_kl") if k in out}
    return {**keep, "reference": scorer.info["reference"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--policy", default="color,translation,cutout", help="the --augment policy compared with none")
    ap.add_argument("--preset", default="fashion-dcgan")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config values over the preset's")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "small_data.json"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gankit-small-"))
    rows = []
    try:
        write_folder(args.images, tmp / "images")
        base = {**BASE, **parse_overrides(args.set), "data": f"folder:{tmp / 'images'}"}
        for seed in args.seeds:
            for policy in ("", args.policy):
                cfg = preset_config(args.preset, base, {"seed": seed, "augment": policy})
                run_dir = tmp / f"run-{seed}-{policy or 'none'}"
                t0 = time.perf_counter()
                train_complete(cfg, run_dir, progress=False)
                row = {"seed": seed, "augment": policy or "none", "train_seconds": round(time.perf_counter() - t0, 1),
                       **score_against_test(run_dir)}
                shutil.rmtree(run_dir)
                rows.append(row)
                print(row, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary = {}
    for policy in ("none", args.policy):
        fids = [r["fid"] for r in rows if r["augment"] == policy]
        summary[policy] = {"fid_mean": float(np.mean(fids)), "fid_sd": float(np.std(fids, ddof=1)) if len(fids) > 1
                           else None, "fids": fids}
    write_json(args.out, {"images": args.images, "preset": args.preset, "runs": rows, "summary": summary})


if __name__ == "__main__":
    main()
