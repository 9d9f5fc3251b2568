"""Loss scaling (fp16) and reduced precision on the CPU: the code path a GPU run takes for
fp16 (torch's GradScaler works the same on the CPU), checked where no GPU is present."""

import json

import numpy as np
import pytest
import torch

from gankit import Config, train
from gankit.training.checkpoint import latest_checkpoint, load_checkpoint


def _cfg(tmp_path, precision, **kw):
    path = tmp_path / "x.npy"
    if not path.exists():
        np.save(path, np.random.default_rng(0).integers(0, 256, (64, 28, 28), dtype=np.uint8))
    base = dict(data=f"npz:{path}", model="dcgan", width=8, z_dim=8, batch_size=16, steps=8, precision=precision,
                eval_every=0, log_every=1, checkpoint_every=4, lr_schedule="constant", reuse_fake=True)
    return Config(**{**base, **kw})


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_fp16_logs_unscaled_gradient_norms_and_skips_overflow_without_divergence(tmp_path):
    """The logged gradient norms are the true ones (within fp16 rounding of fp32's at the
    first step, not 65536× them). A step whose scaled gradients overflow is skipped by the
    scaler, which halves the scale: that is not divergence, so its norm is left out and
    the run goes on (it used to stop with "grad_norm_d not finite")."""
    train(_cfg(tmp_path, "fp32"), out=tmp_path / "fp32", progress=False)
    train(_cfg(tmp_path, "fp16"), out=tmp_path / "fp16", progress=False)
    r32, r16 = _rows(tmp_path / "fp32"), _rows(tmp_path / "fp16")
    assert [r["step"] for r in r16] == list(range(1, 9))
    assert r16[0]["loss_scale"] == 65536.0                   # GradScaler's initial scale
    for key in ("grad_norm_d", "grad_norm_g"):
        assert r16[0][key] == pytest.approx(r32[0][key], rel=1e-2)
    # In this run D's scaled gradients overflow at least once (seen: step 3): the scale
    # drops by the backoff factor exactly then, and that norm is absent, not inf.
    skipped = [r["step"] for r in r16 if "grad_norm_d" not in r or "grad_norm_g" not in r]
    assert skipped, "no overflow happened, so the skip path was not exercised"
    scales = [r["loss_scale"] for r in r16]
    for r, before, after in zip(r16[1:], scales, scales[1:]):
        assert after == (before / 2 if r["step"] in skipped else before)
    assert all(np.isfinite(v) for r in r16 for k, v in r.items() if isinstance(v, float))
    assert "loss_scale" not in r32[0]


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_reduced_precision_resume_is_bitwise_identical(tmp_path, precision):
    """A run split at a checkpoint and resumed ends with the same weights as one run,
    with the gradient scaler's state restored for fp16."""
    cfg = _cfg(tmp_path, precision)
    train(cfg, out=tmp_path / "full", progress=False)
    train(cfg.replace(steps=4), out=tmp_path / "split", progress=False)
    train(cfg, out=tmp_path / "split", resume=True, progress=False)
    a, b = (load_checkpoint(latest_checkpoint(tmp_path / n)) for n in ("full", "split"))
    assert a["step"] == b["step"] == 8 and a["precision"] == precision
    for net in ("G", "D"):
        for name in a[net]:
            assert torch.equal(a[net][name], b[net][name]), f"{net}.{name} differs"
    assert a["scaler"] == b["scaler"] and bool(a["scaler"]) == (precision == "fp16")


