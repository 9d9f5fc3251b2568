"""benchmarks/mnist_ablation.py pins its base and refuses to resume a file over another one."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import mnist_ablation  # noqa: E402


def test_base_is_the_preset_the_results_measured():
    from _common import preset_config
    cfg = preset_config("mnist-dcgan", mnist_ablation.BASE, mnist_ablation.VARIANTS["preset"], {})
    assert (cfg.r1, cfg.ema_kimg, cfg.bn_stats, cfg.lr_g, cfg.lr_d, cfg.width) == (1.0, 10, "running", 2e-4, 2e-4, 64)
    cfg = preset_config("mnist-dcgan", mnist_ablation.BASE, mnist_ablation.VARIANTS["no_r1"], {})
    assert (cfg.r1, cfg.ema_kimg) == (0.0, 10)


def test_resume_over_another_base_is_refused(tmp_path, monkeypatch):
    out = tmp_path / "ablation.json"
    out.write_text(json.dumps({"steps": 5000, "precision": "fp32", "runs": [],
                               "base": {"r1": 0.1, "ema_kimg": 100, "bn_stats": "standing"}}))
    monkeypatch.setattr(sys, "argv", ["mnist_ablation.py", "--out", str(out)])
    with pytest.raises(SystemExit, match="another base"):
        mnist_ablation.main()
    assert json.loads(out.read_text())["base"]["r1"] == 0.1  # the file is left as it was
