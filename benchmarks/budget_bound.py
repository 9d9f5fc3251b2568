"""How long must a preset's image budget take on this machine? Its step's arithmetic against
the dense-product ceiling measured on the spot.

For each width and precision, the preset's trainer (training/run.py's `build_components`,
with every stabiliser it sets: lazy R1, EMA, …) runs on this machine. Measured:

- FLOPs per step: torch's ``FlopCounterMode`` over the ``reg_every - 1`` steps between two
  lazy penalties, divided by their number. The counter cannot follow the penalty's double
  backward (``autograd.grad`` with a graph), so the penalty's arithmetic is left out: the
  FLOPs, and the least time below, are lower bounds;
- the step time: ``--blocks`` blocks of ``reg_every`` steps each, after a warm-up, the
  median block's time per step (every block in the JSON);
- the ceiling: the best GFLOP/s of dense products in that precision (`gankit bench`'s
  ``matmul_ceiling``: n×n matrix products and oneDNN convolutions).

Printed: the minutes the preset's ``steps`` take at the measured step time, and the least
they could take if every FLOP ran at the ceiling and nothing else took time. A budget whose
least time exceeds a target cannot meet it on this machine without less arithmetic.

    python benchmarks/budget_bound.py --preset mnist-dcgan --widths 64 96 --precisions fp32
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import preset_config, write_json  # noqa: E402

DTYPES = {"fp32": "float32", "bf16": "bfloat16"}


def measure(preset: str, width: int, precision: str, blocks: int) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from gankit.training.distributed import Dist
    from gankit.training.run import build_components
    cfg = preset_config(preset, {"width": width, "precision": precision})
    parts = build_components(cfg, torch.device("cpu"), Dist(), None)
    trainer, block = parts.trainer, max(2, cfg.reg_every)
    if parts.runtime["precision"] != precision:
        raise SystemExit(f"{precision} was asked and {parts.runtime['precision']} resolved")
    for _ in range(block):                      # warm-up: allocation, kernel choice, the EMA's ramp
        trainer.step()
    trainer.step()                              # the step that carries the lazy penalty (if any)
    with FlopCounterMode(display=False) as fc:
        for _ in range(block - 1):
            trainer.step()
    flops = fc.get_total_flops() / (block - 1)
    times = []
    for _ in range(blocks):
        t = time.perf_counter()
        for _ in range(block):
            stats = trainer.step()
        stats.to_dict()                         # one synchronisation, as at a logging step
        times.append((time.perf_counter() - t) / block)
    step_s = statistics.median(times)
    return {"width": width, "precision": precision, "steps": cfg.steps, "batch_size": cfg.batch_size,
            "gflop_per_step": flops / 1e9, "ms_per_step": step_s * 1e3,
            "ms_per_step_blocks": [round(t * 1e3, 2) for t in times], "gflops_achieved": flops / step_s / 1e9,
            "budget_minutes": cfg.steps * step_s / 60, "threads": parts.runtime["threads"]}


def main(argv=None) -> int:
    import torch

    from gankit.bench import matmul_ceiling
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="mnist-dcgan")
    p.add_argument("--widths", nargs="+", type=int, default=[64, 96])
    p.add_argument("--precisions", nargs="+", choices=sorted(DTYPES), default=["fp32"])
    p.add_argument("--blocks", type=int, default=5)
    p.add_argument("--out", default="benchmarks/results/budget_bound.json")
    a = p.parse_args(argv)
    rows, ceilings = [], {}
    for precision in a.precisions:
        ceilings[precision] = matmul_ceiling(getattr(torch, DTYPES[precision]))
        for width in a.widths:
            row = measure(a.preset, width, precision, a.blocks)
            ceiling = ceilings[precision]["gflops"]
            row["ceiling_gflops"] = ceiling
            row["share_of_ceiling"] = row["gflops_achieved"] / ceiling
            row["least_budget_minutes"] = row["steps"] * row["gflop_per_step"] / ceiling / 60
            rows.append(row)
            print(f"{a.preset} width {width} {precision}: {row['gflop_per_step']:.2f} GFLOP/step, "
                  f"{row['ms_per_step']:.1f} ms/step ({row['gflops_achieved']:.0f} GFLOP/s, "
                  f"{row['share_of_ceiling']:.0%} of {ceiling:.0f}); {row['steps']} steps: "
                  f"{row['budget_minutes']:.0f} min, at the ceiling {row['least_budget_minutes']:.0f} min", flush=True)
    write_json(a.out, {"preset": a.preset, "ceilings": ceilings, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
