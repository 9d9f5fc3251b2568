"""How far can the `gankit bench` ratio go? The share of each loop's step spent in dense kernels.

For each case, both loops of `gankit bench` (gankit's trainer and the plain reference) run
``--steps`` steps under ``torch.profiler``; the self time of the convolution and matrix
product operators is summed. The bound printed is the ratio gankit would reach if all its
other work (data, element-wise ops, casts, optimizer) took no time at all:

    bound = reference step time / gankit's dense-kernel time per step

A target ratio above the bound cannot be reached without faster convolution/matmul kernels
or less arithmetic, i.e. without changing the mathematics. Times are taken under the
profiler (a few per cent of overhead on both loops).

    python benchmarks/kernel_bound.py --cases dcgan64 mnist-dcgan mnist-paper
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_json  # noqa: E402

DENSE = ("aten::convolution_backward", "aten::mkldnn_convolution", "aten::_convolution", "aten::mm",
         "aten::addmm", "aten::bmm", "aten::_mkldnn_convolution", "aten::mkldnn_convolution_transpose")


def profile_loop(loop, steps: int) -> tuple[float, float]:
    """(wall seconds per step, dense-kernel self seconds per step) of ``loop.run``."""
    import time

    from torch.profiler import ProfilerActivity, profile
    loop.run(3)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t = time.perf_counter()
        loop.run(steps)
        wall = time.perf_counter() - t
    dense = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key in DENSE) / 1e6
    return wall / steps, dense / steps


def main(argv=None) -> int:
    from gankit.bench import GankitLoop, ReferenceLoop, make_case
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", default=["dcgan64", "mnist-dcgan", "mnist-paper"])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--out", default="benchmarks/results/kernel_bound.json")
    a = p.parse_args(argv)
    rows = []
    for name in a.cases:
        case = make_case(name)
        ours = GankitLoop(case)
        ref = ReferenceLoop(case, 0)
        ref_step, ref_dense = profile_loop(ref, a.steps)
        our_step, our_dense = profile_loop(ours, a.steps)
        row = {"case": name, "precision": ours.precision, "steps": a.steps,
               "reference_ms_per_step": ref_step * 1e3, "reference_dense_ms": ref_dense * 1e3,
               "gankit_ms_per_step": our_step * 1e3, "gankit_dense_ms": our_dense * 1e3,
               "gankit_dense_share": our_dense / our_step, "ratio_under_profiler": ref_step / our_step,
               "ratio_bound": ref_step / our_dense}
        rows.append(row)
        print(f"{name:12s} reference {ref_step * 1e3:7.1f} ms/step ({ref_dense / ref_step:.0%} dense)   "
              f"gankit {our_step * 1e3:7.1f} ms/step ({ours.precision}, {our_dense / our_step:.0%} dense)   "
              f"ratio {ref_step / our_step:.2f}x, bound {ref_step / our_dense:.2f}x", flush=True)
    write_json(a.out, {"results": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
