"""``gankit bench``: gankit's trainer against a plain reference loop, in one process.

The reference is written the way the common PyTorch DCGAN example is written: fp32, a
Sigmoid on D and ``BCELoss``, data through a ``DataLoader`` whose dataset converts each
image on access (as torchvision's datasets do: uint8 -> PIL -> tensor -> normalise), the
D step's fake batch reused for the G step, ``.item()`` on the losses every step, and
torch's own layers in the example's form: G's first and D's last layer as convolutions
(gankit writes them as the matrix products they are), ``nn.Conv2d`` /
``nn.ConvTranspose2d`` without gankit's CPU kernels (``gankit.ops``), and ``nn.Dropout``
(gankit's paper model draws its masks faster). The reference lives in ``reference.py``,
apart from the library.
Both loops train the same architecture with the same batch, optimizer and update rule (the
``mnist-paper`` preset's simultaneous updates are written plainly in the reference too);
they alternate in rounds (at least ``steps`` steps and about 3 s of the reference each),
and the median round of each is reported.

Cases: ``dcgan64`` (64×64×3, batch 64), ``mnist-dcgan`` (at width 64, ``FIXED``), ``mnist-paper``, ``mlp2d`` (ring8).
Reported per case: examples/s of each, their ratio, achieved GFLOP/s (FLOPs of one step
counted by ``torch.utils.flop_counter``) and its share of a matrix-multiply ceiling
measured on the spot in the same precision; for MNIST, the time of one epoch of 60,000
images, data handling included (the loader's start-up counted once per epoch).
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import ops
from ..config import Config, load_preset
from ..errors import GankitError
from ..version import command_line
from .reference import ReferenceLoop, build_case_models

CASES = ("dcgan64", "mnist-dcgan", "mnist-paper", "mlp2d")


@dataclass
class Case:
    name: str
    cfg: Config
    images: np.ndarray | None   # uint8 [N, C, H, W] for image cases
    epoch_images: int = 0       # > 0: report the time of one epoch of this many images


# A case's workload stays what it was when its figures were first taken, so that ratios
# compare across sessions: the mnist-dcgan preset became width 96 on 2026-12-06, and its
# case keeps width 64 (docs/performance.md).
FIXED = {"mnist-dcgan": {"width": 64}}


def make_case(name: str, n_fake: int = 2048) -> Case:
    if name == "mlp2d":
        return Case(name, Config(data="ring8", lr_schedule="constant"), None)
    if name == "dcgan64":
        cfg = Config.from_dict({**load_preset("dcgan64"), "lr_schedule": "constant"})
        rng = np.random.default_rng(0)
        return Case(name, cfg, rng.integers(0, 256, (n_fake, 3, 64, 64), dtype=np.uint8))
    cfg = Config.from_dict({**load_preset(name), "lr_schedule": "constant", **FIXED.get(name, {})})
    from ..data import load_images
    images, _ = load_images("mnist", "train", cfg.data_dir or None)
    return Case(name, cfg, images, epoch_images=len(images))


class GankitLoop:
    """gankit's trainer (training/run.py's assembly, without files), as a user gets it."""

    def __init__(self, case: Case, precision: str = "auto", device: torch.device | str = "cpu"):
        from ..data import DistributionSource, ImageSource, get_distribution
        from ..training.loop import GANTrainer
        from ..training.optim import make_optimizer
        from ..training.runtime import resolve_precision
        cfg = case.cfg
        dev = self.device = torch.device(device)
        if case.images is None:
            src = DistributionSource(get_distribution(cfg.data), dev)
        else:
            src = ImageSource(case.images, dev)
        G, D = build_case_models(cfg, src.shape)
        if case.images is not None:
            src.value_range = getattr(G, "output_range", (-1.0, 1.0))
        self.precision = resolve_precision(cfg.replace(precision=precision), dev, G)
        if ops.wanted(cfg.cpu_kernels, dev.type, self.precision):  # as training/run.py applies them
            ops.apply(G), ops.apply(D)
        conv = any(isinstance(m, nn.Conv2d) for m in D.modules())
        fmt = torch.channels_last if conv else torch.contiguous_format
        G.to(dev, memory_format=fmt)
        D.to(dev, memory_format=fmt)
        fused = conv or dev.type == "cuda"  # as training/run.py chooses
        self.trainer = GANTrainer(G, D, make_optimizer(cfg.optimizer, G.parameters(), cfg.lr_g, cfg, fused),
                                  make_optimizer(cfg.optimizer, D.parameters(), cfg.lr_d, cfg, fused), src, cfg.loss,
                                  cfg.k, cfg.batch_size, cfg.z_dim, cfg.noise, torch.Generator(dev).manual_seed(1),
                                  torch.Generator(dev).manual_seed(2), precision=self.precision,
                                  channels_last=conv, reuse_fake=cfg.reuse_fake, update=cfg.update)

    def run(self, steps: int) -> None:
        for _ in range(steps):
            stats = self.trainer.step()
        stats.to_dict()  # one synchronisation, as at a logging step


def count_flops(case: Case, loop=None) -> float:
    """FLOPs of one training iteration (D step + G step) of a loop (gankit's by default)."""
    from torch.utils.flop_counter import FlopCounterMode
    loop = loop or GankitLoop(case, precision="fp32")
    loop.run(1)
    with FlopCounterMode(display=False) as fc:
        loop.run(1)
    return float(fc.get_total_flops())


def _sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously; times need an end)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_gflops(fn, flops: float, reps: int, device: torch.device | None = None, inner: int = 1) -> float:
    device = device or torch.device("cpu")
    fn()  # first call: allocation, kernel selection
    best = float("inf")
    for _ in range(reps):
        _sync(device)
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        _sync(device)
        best = min(best, (time.perf_counter() - t) / inner)
    return flops / best / 1e9


def matmul_ceiling(dtype: torch.dtype, reps: int = 5, device: torch.device | str = "cpu") -> dict:
    """The dense-product ceiling of this run in ``dtype``, measured on the spot: the best
    GFLOP/s over n×n matrix products (n = 1024, 2048) run both by ``torch.matmul`` and as
    oneDNN convolutions (a 1×1 convolution is the same product; a 3×3 one, 256 channels on
    16×16, is the implicit GEMM that DCGAN's layers run), best of ``reps`` each.
    The convolutions are included because on some CPUs oneDNN's kernels run well above
    the BLAS matmul in fp32 (measured here: 3×3 conv 455, matmul 116-172 GFLOP/s), and a
    ceiling below what a model achieves would not be a ceiling."""
    from torch.nn import functional as F
    cl, dev = torch.channels_last, torch.device(device)
    # A GPU finishes these sizes in microseconds: larger products, each timed over 10 calls.
    sizes, inner = ((1024, 2048), 1) if dev.type == "cpu" else ((4096, 8192), 10)
    parts = {}
    for n in sizes:
        a, b = torch.randn(n, n, dtype=dtype, device=dev), torch.randn(n, n, dtype=dtype, device=dev)
        parts[f"matmul_{n}"] = _best_gflops(lambda a=a, b=b: a @ b, 2 * n ** 3, reps, dev, inner)
        x = torch.randn(1, n, n // 32, 32, dtype=dtype, device=dev).contiguous(memory_format=cl)
        w = torch.randn(n, n, 1, 1, dtype=dtype, device=dev).contiguous(memory_format=cl)
        parts[f"conv1x1_{n}"] = _best_gflops(lambda x=x, w=w: F.conv2d(x, w), 2 * n ** 3, reps, dev, inner)
    x = torch.randn(64, 256, 16, 16, dtype=dtype, device=dev).contiguous(memory_format=cl)
    w = torch.randn(256, 256, 3, 3, dtype=dtype, device=dev).contiguous(memory_format=cl)
    parts["conv3x3_256"] = _best_gflops(lambda: F.conv2d(x, w, padding=1), 2 * 64 * 256 * 256 * 9 * 16 * 16,
                                        reps, dev, inner)
    return {"gflops": max(parts.values()), "parts": parts}


def _time(fn, steps: int, device: torch.device | None = None) -> float:
    device = device or torch.device("cpu")
    _sync(device)
    t = time.perf_counter()
    fn(steps)
    _sync(device)
    return (time.perf_counter() - t) / steps


def bench_case(name: str, steps: int = 20, rounds: int = 5, workers: int = 0, precision: str = "auto",
               log=print, min_round_s: float = 3.0, device: torch.device | str = "cpu") -> dict:
    """``steps`` per round at least, more where the reference would finish a round in under
    ``min_round_s`` seconds: short rounds are at the mercy of a shared host's noise.
    On ``cuda`` both loops run on the GPU (the PyTorch example moves each batch there) with
    cuDNN autotuning on, as that example sets it; rounds end with a device synchronisation."""
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    case = make_case(name)
    m = case.cfg.batch_size
    ref = ReferenceLoop(case, workers, dev)
    ours = GankitLoop(case, precision, dev)
    ours.run(5)  # warm-up (allocations, first-call kernels, oneDNN primitives / cuDNN autotuning)
    ref.run(2)
    steps = max(steps, math.ceil(min_round_s / _time(ref.run, 3, dev)))
    t_ref, t_ours = [], []
    for _ in range(rounds):
        t_ref.append(_time(ref.run, steps, dev))
        t_ours.append(_time(ours.run, steps, dev))
    tr, to = statistics.median(t_ref), statistics.median(t_ours)
    flops = count_flops(case)
    flops_ref = count_flops(case, ReferenceLoop(case, 0))
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(ours.precision, torch.float32)
    ceil = matmul_ceiling(dtype, device=dev)
    ceil32 = ceil if dtype == torch.float32 else matmul_ceiling(torch.float32, device=dev)
    ceiling, ceiling32 = ceil["gflops"], ceil32["gflops"]
    out = {
        "case": name, "device": str(dev), "batch": m, "precision": ours.precision, "reference_workers": workers,
        "steps_per_round": steps, "rounds": rounds,
        "reference_s_per_step_by_round": t_ref, "gankit_s_per_step_by_round": t_ours,
        "reference_examples_per_s": m / tr, "gankit_examples_per_s": m / to, "ratio": tr / to,
        "flops_per_step": flops, "reference_flops_per_step": flops_ref,
        "gankit_gflops": flops / to / 1e9, "reference_gflops": flops_ref / tr / 1e9,
        "matmul_ceiling_gflops": ceiling, "gankit_share_of_ceiling": flops / to / 1e9 / ceiling,
        "fp32_matmul_ceiling_gflops": ceiling32, "reference_share_of_fp32_ceiling": flops_ref / tr / 1e9 / ceiling32,
        "ceiling_parts_gflops": {str(dtype).removeprefix("torch."): ceil["parts"],
                                 **({} if ceil32 is ceil else {"float32": ceil32["parts"]})},
    }
    if case.epoch_images:
        steps_per_epoch = case.epoch_images // m
        t0 = time.perf_counter()
        it = iter(ref.loader())
        next(it)
        startup = time.perf_counter() - t0
        del it
        out["epoch_seconds_reference"] = startup + steps_per_epoch * tr
        out["epoch_seconds_gankit"] = steps_per_epoch * to
        out["epoch_ratio"] = out["epoch_seconds_reference"] / out["epoch_seconds_gankit"]
    log(f"{name:12s} ref {m / tr:8.0f} ex/s   gankit {m / to:8.0f} ex/s ({ours.precision})   ratio {tr / to:5.2f}x   "
        f"{flops / to / 1e9:6.1f} GFLOP/s = {out['gankit_share_of_ceiling']:.0%} of {ceiling:.0f}"
        + (f"   epoch {out['epoch_seconds_gankit']:.0f} s vs {out['epoch_seconds_reference']:.0f} s "
           f"({out['epoch_ratio']:.2f}x, {workers} workers)" if case.epoch_images else ""))
    return out


def environment(device: torch.device | None = None) -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": command_line(),
            "machine": {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                        **({"gpu": torch.cuda.get_device_name(device)} if device is not None and device.type == "cuda"
                           else {})},
            "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}}


def run_bench(cases=CASES, steps: int = 20, rounds: int = 5, workers=(0,), precision: str = "auto",
              out: str | Path | None = None, log=print, min_round_s: float = 3.0, device: str = "cpu") -> dict:
    bad = [c for c in cases if c not in CASES]
    if bad:
        raise GankitError(f"unknown bench case {bad[0]!r}; choose from: {', '.join(CASES)}")
    from ..training.runtime import resolve_device
    dev = resolve_device(device)
    results = []
    for name in cases:
        for w in (workers if name.startswith("mnist") else (0,)):
            results.append(bench_case(name, steps, rounds, w, precision, log, min_round_s, dev))
    payload = {**environment(dev), "results": results}
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(payload, indent=2) + "\n")
    return payload
