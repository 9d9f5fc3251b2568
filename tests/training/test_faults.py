"""Divergence, damaged checkpoints and checksums."""

import pytest
import torch

from gankit import Config, train
from gankit.cli import main
from gankit.errors import DivergenceError, GankitError
from gankit.rundir import list_checkpoints
from gankit.training.checkpoint import load_checkpoint, load_latest_good
from gankit.training.loop import GANTrainer

SMALL = dict(steps=40, batch_size=32, hidden=16, depth=1, z_dim=2, log_every=5, eval_every=0,
             checkpoint_every=10, lr_schedule="constant")


@pytest.fixture
def poison_once(monkeypatch):
    """Make G's weights NaN right after step 25, once."""
    original = GANTrainer.step
    state = {"done": False}

    def step(self, with_grad_norms=False):
        out = original(self, with_grad_norms)
        if self.step_count == 25 and not state["done"]:
            state["done"] = True
            with torch.no_grad():
                next(self.G.parameters()).fill_(float("nan"))
        return out

    monkeypatch.setattr(GANTrainer, "step", step)
    return state


def test_divergence_stops_and_keeps_good_checkpoints(tmp_path, poison_once):
    with pytest.raises(DivergenceError, match=r"diverged at step 30: .*last finite values at step 25"):
        train(Config(**SMALL), out=tmp_path / "r", progress=False)
    assert [p.name for p in list_checkpoints(tmp_path / "r")] == ["step_000010.pt", "step_000020.pt"]
    good = load_checkpoint(tmp_path / "r" / "checkpoints" / "step_000020.pt")
    assert all(torch.isfinite(v).all() for v in good["G"].values())


def test_rollback_lowers_the_learning_rate_and_finishes(tmp_path, poison_once, caplog):
    r = train(Config(**SMALL, on_divergence="rollback"), out=tmp_path / "r", progress=False)
    assert r.step == 40 and poison_once["done"]
    assert "rolled back to step_000020.pt with learning rates x0.1" in caplog.text   # through logging
    last = load_checkpoint(list_checkpoints(tmp_path / "r")[-1])
    assert last["lr_scale"] == pytest.approx(0.1) and last["opt_g"]["param_groups"][0]["lr"] == pytest.approx(2e-4)
    assert all(torch.isfinite(v).all() for v in last["G"].values())
    rows = (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()
    assert "NaN" not in "".join(rows) and len(rows) == 8   # steps 5..40, the redone ones once


def test_corrupt_latest_checkpoint_falls_back(tmp_path, capsys):
    run = tmp_path / "r"
    train(Config(**SMALL), out=run, progress=False)
    latest = list_checkpoints(run)[-1]
    raw = latest.read_bytes()
    latest.write_bytes(raw[: len(raw) // 2])                       # truncated
    path, ck = load_latest_good(run)
    assert path.name == "step_000030.pt" and ck["step"] == 30
    flipped = bytearray(list_checkpoints(run)[-2].read_bytes())
    flipped[-100] ^= 0xFF                                          # one flipped byte
    list_checkpoints(run)[-2].write_bytes(bytes(flipped))
    with pytest.raises(GankitError, match="checksum mismatch"):
        load_checkpoint(list_checkpoints(run)[-2])
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "step_000040.pt' is damaged" in err and "step_000030.pt' is damaged" in err
    assert load_checkpoint(list_checkpoints(run)[-1])["step"] == 40   # redone from step 20


def test_unwritable_and_full_output_locations(tmp_path, monkeypatch, capsys):
    import os
    import shutil
    from collections import namedtuple

    locked = tmp_path / "locked"
    locked.mkdir()
    monkeypatch.setattr(os, "access", lambda p, mode: not str(p).startswith(str(locked)))
    assert main(["train", "--out", str(locked / "run"), "--quiet"]) == 2
    assert "cannot write under" in capsys.readouterr().err and not (locked / "run").exists()
    monkeypatch.undo()
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    assert main(["train", "--out", str(tmp_path / "full"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "not enough disk space" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "full").exists()


def test_data_larger_than_memory_is_refused_before_loading(tmp_path, monkeypatch, capsys):
    import numpy as np

    from gankit.data import images
    np.save(tmp_path / "big.npy", np.zeros((10, 8, 8), np.uint8))
    monkeypatch.setattr(images, "available_memory", lambda: 100)
    assert main(["train", "--data", f"npz:{tmp_path / 'big.npy'}", "--model", "dcgan",
                 "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "needs about" in capsys.readouterr().err


def test_weight_guard_stops_non_writing_ranks_on_the_same_steps():
    """Ranks other than 0 do not checkpoint, but check the weights at the same steps, so a
    NaN stops every rank together (rank 0's Checkpointer raises at that step too)."""
    import pytest as _pytest
    import torch as _torch

    from gankit.errors import DivergenceError
    from gankit.training.callbacks import WeightGuard

    G, D = _torch.nn.Linear(2, 2), _torch.nn.Linear(2, 1)
    guard = WeightGuard(10, G, D)
    guard.on_step_end(None, 10, None, {})  # finite: passes
    with _torch.no_grad():
        D.weight[0, 1] = float("nan")
    guard.on_step_end(None, 11, None, {})  # not a checkpoint step: not checked
    with _pytest.raises(DivergenceError, match="by step 20: D has NaN/Inf in weight"):
        guard.on_step_end(None, 20, None, {})
    with _pytest.raises(DivergenceError):
        guard.on_end(None, 23)


