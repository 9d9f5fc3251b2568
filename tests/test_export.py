"""gankit export: the generator loads with torch alone (gankit not importable) and draws
the samples gankit sample draws."""

import json
import subprocess
import sys

import numpy as np
import pytest

from gankit.cli import main

LOADER = r"""
import sys
sys.modules["gankit"] = None          # gankit cannot be imported in this process
try:
    import gankit  # noqa: F401
    raise SystemExit("gankit was importable")
except ImportError:
    pass
import json, numpy as np, torch
path, n, seed, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
extra = {"gankit.json": ""}
G = torch.export.load(path, extra_files=extra).module()
meta = json.loads(extra["gankit.json"])
gen = torch.Generator().manual_seed(seed)
z = torch.randn(n, meta["z_dim"], generator=gen) if meta["noise"] == "normal" else \
    torch.rand(n, meta["z_dim"], generator=gen) * 2 - 1
x = G(z)
if meta["image"]:
    lo, hi = meta["output_range"]
    x = ((x - lo) / (hi - lo)).clamp(0, 1)
assert list(x.shape[1:]) == meta["data_shape"]
np.save(out, x.detach().numpy())
print(json.dumps(meta))
"""


@pytest.mark.parametrize("flags", [[], ["--model", "dcgan", "--data", "fake:1,28,28", "--width", "8",
                                        "--z-dim", "16", "--batch-size", "8", "--noise", "uniform"]])
def test_exported_generator_loads_without_gankit(tmp_path, flags):
    run = tmp_path / "r"
    assert main(["train", "--out", str(run), "--steps", "6", "--eval-every", "0", "--quiet", *flags]) == 0
    assert main(["export", str(run), "--out", str(tmp_path / "G.pt2")]) == 0
    assert main(["sample", str(run), "--n", "37", "--seed", "5", "--out", str(tmp_path / "ours.npy")]) == 0
    p = subprocess.run([sys.executable, "-c", LOADER, str(tmp_path / "G.pt2"), "37", "5", str(tmp_path / "it.npy")],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "Unable to load package" not in p.stderr    # torch's warning for names without .pt2
    meta = json.loads(p.stdout.strip().splitlines()[-1])
    assert meta["z_dim"] == (16 if flags else 2) and meta["noise"] == ("uniform" if flags else "normal")  # ring8: z 2
    ours, theirs = np.load(tmp_path / "ours.npy"), np.load(tmp_path / "it.npy")
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-5)


def test_export_errors_are_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope"), "--out", str(tmp_path / "G.pt2")]) == 2
    assert "does not exist" in capsys.readouterr().err
    # torch.export.load warns about a name without .pt2: refused before any work
    assert main(["export", str(tmp_path / "nope"), "--out", str(tmp_path / "G.pt")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"gankit: error: --out must end in .pt2 (torch.export's archive), got '{tmp_path / 'G.pt'}'"
