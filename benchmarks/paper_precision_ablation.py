"""Which half of the paper's MNIST model makes bf16 and fp32 training differ.

    python benchmarks/paper_precision_ablation.py --variants d-bf16 g-bf16 g-out-bf16 --seeds 0

The mnist-paper preset trains better in bf16 than in fp32 on every seed tried, and in fp32
did not learn at all on seed 0 (README, "The paper's MNIST model"). Each variant trains
the preset in fp32 with one part moved to bf16, then scores the domain FID of 10,000
samples:

- ``d-bf16``: D's forward under bf16 autocast, G in fp32;
- ``g-bf16``: G's forward under bf16 autocast, D in fp32;
- ``g-out-bf16``: everything fp32, G's output pixels rounded to bf16 (as bf16 autocast
  leaves them); the cast rounds the gradient flowing back into G to bf16 as well;
- ``g-out-fwd-bf16``: only the pixels rounded, G's gradient exact (straight through);
- ``g-out-grad-bf16``: only the gradient reaching G's pixels rounded to bf16, the pixels exact.

About 7 minutes per run on 2 cores. Writes benchmarks/results/paper_precision_ablation.json.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from gankit.config import load_preset
from gankit.models import paper_mnist as P

try:
    from _common import preset_config, train_and_score, write_json
except ImportError:
    from benchmarks._common import preset_config, train_and_score, write_json

VARIANTS = ("d-bf16", "g-bf16", "g-out-bf16", "g-out-fwd-bf16", "g-out-grad-bf16")


def _bf16(x: torch.Tensor) -> torch.Tensor:
    return x.detach().bfloat16().float()


class _RoundGrad(torch.autograd.Function):
    """Identity forward; the incoming gradient rounded to bf16 on the way back."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return _bf16(g)


def _under_bf16(forward):
    def wrapped(self, x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return forward(self, x).float()
    return wrapped


def patch(variant: str) -> None:
    if variant == "d-bf16":
        P.PaperMNISTDiscriminator.forward = _under_bf16(P.PaperMNISTDiscriminator.forward)
    elif variant == "g-bf16":
        P.PaperMNISTGenerator.forward = _under_bf16(P.PaperMNISTGenerator.forward)
    elif variant == "g-out-bf16":
        forward = P.PaperMNISTGenerator.forward
        P.PaperMNISTGenerator.forward = lambda self, z: forward(self, z).bfloat16().float()
    elif variant == "g-out-fwd-bf16":
        forward = P.PaperMNISTGenerator.forward

        def rounded_forward(self, z):
            x = forward(self, z)
            return x + (_bf16(x) - x).detach()
        P.PaperMNISTGenerator.forward = rounded_forward
    elif variant == "g-out-grad-bf16":
        forward = P.PaperMNISTGenerator.forward
        P.PaperMNISTGenerator.forward = lambda self, z: _RoundGrad.apply(forward(self, z))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--steps", type=int, default=None, help="default: the preset's 15,000")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "paper_precision_ablation.json"))
    a = ap.parse_args()
    original = (P.PaperMNISTGenerator.forward, P.PaperMNISTDiscriminator.forward)
    rows = []
    for variant in a.variants:
        for seed in a.seeds:
            P.PaperMNISTGenerator.forward, P.PaperMNISTDiscriminator.forward = original
            patch(variant)
            cfg = preset_config("mnist-paper", {"precision": "fp32", "eval_every": 0, "seed": seed},
                                {"steps": a.steps} if a.steps else {})
            score = train_and_score(cfg, Path(tempfile.mkdtemp(prefix="gankit-ablation-")))  # an empty run directory
            rows.append({"variant": variant, "seed": seed, "domain_fid": score["domain_fid"],
                         "train_seconds": score["train_seconds"]})
            print(rows[-1], flush=True)
    write_json(a.out, {"steps": a.steps or load_preset("mnist-paper")["steps"], "runs": rows})


if __name__ == "__main__":
    main()
