"""The streamlined Inception-v3 against the model as shipped: time per image, features, FID.

Both extractors (`InceptionExtractor()` and `InceptionExtractor(as_shipped=True)`) compute
the features of the first ``--n`` MNIST training images and the first ``--n`` test images,
alternating batch by batch so that both see the same machine load. Recorded: the median
seconds per 100 images of each, the largest feature difference relative to the largest
feature, and the Fréchet distance train against test (2048-d: ``--n`` must exceed 2,048)
by each.

    python benchmarks/inception_streamline.py --n 2100
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_json  # noqa: E402


def main(argv=None) -> int:
    import numpy as np
    import torch

    from gankit.data import load_images
    from gankit.metrics import feature_statistics, frechet_distance
    from gankit.metrics.features import InceptionExtractor
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2100)
    p.add_argument("--out", default="benchmarks/results/inception_streamline.json")
    a = p.parse_args(argv)
    models = {"streamlined": InceptionExtractor(), "as_shipped": InceptionExtractor(as_shipped=True)}
    sets = {split: torch.from_numpy(np.array(load_images("mnist", split)[0][:a.n])).float() / 255
            for split in ("train", "test")}
    feats = {m: {s: [] for s in sets} for m in models}
    times = {m: [] for m in models}
    batch = InceptionExtractor.batch
    for split, x in sets.items():
        for i in range(0, len(x), batch):
            for name, model in models.items():
                t = time.perf_counter()
                feats[name][split].append(model(x[i:i + batch]))
                times[name].append((time.perf_counter() - t) / len(x[i:i + batch]) * 100)
            print(f"{split} {i + batch}/{len(x)}", flush=True)
    f = {m: {s: np.concatenate(v) for s, v in d.items()} for m, d in feats.items()}
    rows = {}
    for name in models:
        fid = frechet_distance(*feature_statistics(f[name]["train"]), *feature_statistics(f[name]["test"]))
        rows[name] = {"seconds_per_100_images_median": statistics.median(times[name][1:]),
                      "seconds_per_100_images": [round(t, 2) for t in times[name]], "fid_train_vs_test": fid}
    ref = np.concatenate([f["as_shipped"]["train"], f["as_shipped"]["test"]])
    new = np.concatenate([f["streamlined"]["train"], f["streamlined"]["test"]])
    diff = float(np.abs(new - ref).max() / np.abs(ref).max())
    payload = {"n": a.n, "models": rows, "max_feature_difference_relative": diff,
               "fid_relative_difference": abs(rows["streamlined"]["fid_train_vs_test"]
                                              - rows["as_shipped"]["fid_train_vs_test"])
               / rows["as_shipped"]["fid_train_vs_test"]}
    write_json(a.out, payload)
    for name, r in rows.items():
        print(f"{name}: {r['seconds_per_100_images_median']:.2f} s per 100 images, "
              f"FID train vs test {r['fid_train_vs_test']:.6f}")
    print(f"features differ by at most {diff:.2e} of the largest; FIDs by {payload['fid_relative_difference']:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
