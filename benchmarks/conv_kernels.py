"""Per-layer times of torch's (oneDNN's) convolution kernels against the replacements in
``gankit/ops/conv_s2k4.py`` and the product form of G's first and D's last layer
(``gankit/models/dcgan.py``), for every convolution of the dcgan64 and mnist-dcgan models,
batch 64, bf16, channels_last. Each kernel is timed alone (the median of 7 runs of at least
0.2 s); ``used`` names what gankit's layers run for that shape.

    python benchmarks/conv_kernels.py --out benchmarks/results/conv_kernels.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_json  # noqa: E402
from gankit.models.dcgan import LogitHead, NoiseProjection  # noqa: E402
from gankit.ops import conv_s2k4 as L  # noqa: E402

BF16, CL = torch.bfloat16, torch.channels_last


def ms(fn) -> float:
    fn()
    runs = []
    for _ in range(7):
        k, t = 0, time.perf_counter()
        while time.perf_counter() - t < 0.2:
            fn()
            k += 1
        runs.append((time.perf_counter() - t) / k * 1e3)
    return statistics.median(runs)


def t(*shape, scale=1.0):
    return (torch.randn(*shape) * scale).to(BF16).contiguous(memory_format=CL)


def strided_rows(n, c_in, size, c_out):
    """D's conv c_in -> c_out at size -> size/2, and G's mirror image (c_out -> c_in)."""
    x, w, gy = t(n, c_in, size, size), t(c_out, c_in, 4, 4, scale=0.02), t(n, c_out, size // 2, size // 2)
    rows_ = n * (size // 2) ** 2

    def bwd(mask, transposed=False, a=gy, b=x):
        return lambda: torch.ops.aten.convolution_backward(a, b, w, None, [2, 2], [1, 1], [1, 1], transposed,
                                                           [0, 0], 1, mask)

    def patch_dw():   # the same product for D's layer and for G's (input gy-shaped, output x-shaped)
        return L.weight_grad_by_patches(gy, x)

    fwd_patch = L.patch_forward(c_in, rows_)
    name = f"{c_in}->{c_out} @{size}"
    return [
        (f"D {name} forward", ms(lambda: F.conv2d(x, w, None, 2, 1)),
         ms(lambda: L.im2col_s2k4(x) @ L.nhwc(w).t()), "replacement" if fwd_patch else "torch"),
        (f"D {name} input gradient", ms(bwd([True, False, False])), ms(lambda: L.conv_transpose_s2k4(gy, w)),
         "replacement" if c_in <= L.SMALL_CHANNELS else "torch"),
        (f"D {name} weight gradient", ms(bwd([False, True, False])), ms(patch_dw),
         "replacement" if L.patch_weight_grad(c_in, rows_) else "torch"),
        (f"G {c_out}->{c_in} @{size // 2} forward", ms(lambda: F.conv_transpose2d(gy, w, None, 2, 1)),
         ms(lambda: L.conv_transpose_s2k4(gy, w)), "replacement" if c_in <= L.SMALL_CHANNELS else "torch"),
        (f"G {c_out}->{c_in} @{size // 2} weight gradient", ms(bwd([False, True, False], True, x, gy)),
         ms(patch_dw), "replacement" if L.patch_weight_grad(c_in, rows_) else "torch"),
    ]


def dense_rows(n, z_dim, c, k):
    """G's first layer (1×1 -> k×k) and D's last (k×k -> 1), forward + backward."""
    up, up0 = NoiseProjection(z_dim, c, k), torch.nn.ConvTranspose2d(z_dim, c, k, 1, 0, bias=False)
    down, down0 = LogitHead(c, k), torch.nn.Conv2d(c, 1, k, 1, 0, bias=False)
    for m in (up, up0, down, down0):
        m.to(memory_format=CL)
    z = torch.randn(n, z_dim)
    h = t(n, c, k, k).requires_grad_()

    def step(m, x):
        def run():
            with torch.autocast("cpu", dtype=BF16):
                y = m(x)
            y.float().sum().backward()
        return run
    return [(f"G {z_dim}->{c}×{k}×{k} forward+backward", ms(step(up0, z[:, :, None, None])), ms(step(up, z)),
             "replacement"),
            (f"D {c}×{k}×{k}->1 forward+backward", ms(step(down0, h)), ms(step(down, h)), "replacement")]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/results/conv_kernels.json")
    a = p.parse_args(argv)
    models = {"dcgan64": ([(64, 3, 64, 64), (64, 64, 32, 128), (64, 128, 16, 256), (64, 256, 8, 512)],
                          (64, 100, 512, 4)),
              "mnist-dcgan": ([(64, 1, 28, 64), (64, 64, 14, 128)], (64, 100, 128, 7))}
    out = []
    for model, (strided, dense) in models.items():
        print(f"{model}: ms per call, torch's kernel vs gankit's replacement (batch 64, bf16, channels_last)")
        for name, torch_ms, ours_ms, used in [*dense_rows(*dense), *(r for s in strided for r in strided_rows(*s))]:
            print(f"  {name:36s} torch {torch_ms:7.2f}   replacement {ours_ms:7.2f}   used: {used}", flush=True)
            out.append({"model": model, "kernel": name, "torch_ms": torch_ms, "replacement_ms": ours_ms, "used": used})
    write_json(a.out, {"threads": torch.get_num_threads(), "rows": out})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
