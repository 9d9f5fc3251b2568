"""Table 1 of the 2014 paper (MNIST Parzen-window log-likelihood) along a run's checkpoints.

For each checkpoint of RUN (a run of ``--preset mnist-paper-full``, trained with
``--keep-checkpoints`` high enough to keep them), draws 10,000 samples (noise seed 0) and
scores the 10,000 MNIST test images under their Parzen window, σ chosen over the paper's
grid ``logspace(-1, 0, 10)`` on the validation images train[50000:60000]: on all 10,000
(gankit's protocol) and on the first 1,000 (the published ``parzen_ll.py``'s
``--limit_size`` default). Two references put the figures on a scale: the same protocol
with 10,000 *training* images (train[:10000]) in place of the samples — a model that had
memorised its data — and with 10,000 uniform-noise images.

    python benchmarks/table1.py runs/paper-full --steps 15000 50000 100000 125000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from gankit.data import load_images
from gankit.evaluate import Scorer
from gankit.metrics.parzen import SIGMAS, mean_and_se, parzen_log_likelihoods
from gankit.runs import Run

try:
    from _common import write_json
except ImportError:  # run as a module
    from benchmarks._common import write_json

N = 10_000


def score(samples01: np.ndarray, test: np.ndarray, train: np.ndarray) -> dict:
    """Parzen log-likelihood of the test images, σ chosen on 10,000 and on 1,000 validation
    images (as ``parzen_score`` chooses it; the validation log-likelihoods are computed once,
    the 1,000 being the first of the 10,000, and the test set's once per σ chosen)."""
    val = parzen_log_likelihoods(samples01, train[50_000:60_000])   # [sigma, image]
    test_ll: dict[int, np.ndarray] = {}
    out = {}
    for n_val in (10_000, 1_000):
        best = int(np.argmax(val[:, :n_val].mean(1)))
        if best not in test_ll:
            test_ll[best] = parzen_log_likelihoods(samples01, test, [SIGMAS[best]])[0]
        out[f"val{n_val}"] = {**mean_and_se(test_ll[best]), "sigma": float(SIGMAS[best])}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--steps", nargs="*", type=int, default=None, help="checkpoint steps (default: all kept)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "table1.json"))
    args = ap.parse_args()
    train = load_images("mnist", "train")[0].reshape(-1, 784) / 255.0
    test = load_images("mnist", "test")[0].reshape(-1, 784)[:N] / 255.0
    run = Run.open(args.run)
    ckpts = run.checkpoint_steps()
    steps = sorted(ckpts) if args.steps is None else args.steps
    missing = [s for s in steps if s not in ckpts]
    if missing:
        raise SystemExit(f"no checkpoint at steps {missing}; kept: {sorted(ckpts)}")
    rows = []
    for step in steps:
        t0 = time.perf_counter()
        loaded = run.load(ckpts[step])
        scorer = Scorer(loaded.trained_config, loaded.G.out_shape, [], N)
        x = scorer.samples01(loaded.G).reshape(N, -1).double().numpy()
        rows.append({"step": step, **score(x, test, train), "seconds": round(time.perf_counter() - t0, 1)})
        print(rows[-1], flush=True)
    g = np.random.default_rng(0)
    refs = {"training images train[:10000]": score(train[:N], test, train),
            "uniform noise": score(g.random((N, 784)), test, train)}
    print(refs, flush=True)
    write_json(args.out, {"run": str(args.run), "config": run.config.to_dict(), "n_samples": N,
                          "checkpoints": rows, "references": refs, "torch_threads": torch.get_num_threads()})


if __name__ == "__main__":
    main()
