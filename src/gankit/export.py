"""``gankit export``: a trained generator as a file that loads with torch alone.

The generator is exported with ``torch.export`` (batch size dynamic) and saved with
``torch.export.save``; the file carries, as ``gankit.json`` among its extra files, what a
user needs to draw from it: the noise dimension and prior, G's output range, the data
shape, and how to map G's outputs to the data's values. Loading it::

    import json, torch
    extra = {"gankit.json": ""}
    program = torch.export.load("G.pt2", extra_files=extra)
    meta = json.loads(extra["gankit.json"])
    G = program.module()
    z = torch.randn(16, meta["z_dim"], generator=torch.Generator().manual_seed(0))
    x = G(z)                                 # G's output range, meta["output_range"]
    lo, hi = meta["output_range"]
    images = ((x - lo) / (hi - lo)).clamp(0, 1)   # for images (meta["image"])

With ``noise: uniform`` draw ``torch.rand(n, z_dim) * 2 - 1`` instead, and with
``noise: uniform_unit`` that times ``3 ** 0.5``. Drawn this way
(one batch of up to 10,000, noise from a CPU generator seeded with ``seed``), the samples
are those of ``gankit sample RUN --seed SEED`` (``tests/test_export.py`` checks it in a
process where gankit cannot be imported).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .errors import GankitError
from .rundir import display
from .runs import Run
from .version import __version__


def export_generator(run_path: str | Path, out: str | Path, checkpoint: str = "latest",
                     weights: str = "auto", bn_stats: str = "auto") -> Path:
    """Export the generator of a run's checkpoint (its EMA generator when it has one, unless
    ``weights="raw"``; its BatchNorm statistics recomputed with ``bn_stats="standing"``) to
    ``out``; returns ``out``."""
    out = Path(out)
    if out.suffix != ".pt2":   # torch.export.load warns about any other name
        raise GankitError(f"--out must end in .pt2 (torch.export's archive), got {display(out)}")
    if not out.parent.exists():
        raise GankitError(f"the folder of --out, {display(out.parent)}, does not exist")
    if out.exists() and not out.is_file():
        raise GankitError(f"--out {display(out)} exists and is not a file")
    run = Run.open(run_path).load(checkpoint, weights=weights, bn_stats=bn_stats)
    G, cfg = run.G.float().eval(), run.trained_config
    meta = {
        "format": "gankit-generator", "gankit": __version__, "torch": torch.__version__,
        "run": str(run.path), "checkpoint": run.checkpoint_path.name, "step": run.step, "weights": run.weights,
        "bn_stats": run.bn_stats,
        "z_dim": cfg.z_dim, "noise": cfg.noise, "data": cfg.data, "data_shape": list(G.out_shape),
        "image": len(G.out_shape) == 3,
        "output_range": list(getattr(G, "output_range", (-1.0, 1.0))) if len(G.out_shape) == 3 else None,
    }
    z = torch.zeros(4, cfg.z_dim)
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    try:
        program = torch.export.export(G, (z,), dynamic_shapes={"z": {0: batch}})
    except Exception as exc:  # noqa: BLE001 - a user's model torch.export cannot trace
        raise GankitError(f"torch.export cannot export this generator ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:200]})") from None
    torch.export.save(program, out, extra_files={"gankit.json": json.dumps(meta)})
    return out
