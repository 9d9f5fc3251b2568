"""Exact resume, determinism, atomic writes, and the checkpoint contents."""

import json
import random

import numpy as np
import pytest
import torch

from gankit import Config, train
from gankit.errors import GankitError
from gankit.rundir import atomic_write_bytes, checkpoint_steps, list_checkpoints
from gankit.training.checkpoint import latest_checkpoint, load_checkpoint, rng_state, set_rng_state

SMALL = dict(data="ring8", steps=40, batch_size=32, hidden=32, depth=2, z_dim=4, log_every=5,
             eval_every=0, checkpoint_every=10, eval_samples=200, lr_schedule="constant")


def _weights(run_dir):
    return load_checkpoint(latest_checkpoint(run_dir))


def _assert_same_state(a, b):
    for key in ("G", "D"):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name} differs"
    for key in ("opt_g", "opt_d"):
        for pid, st in a[key]["state"].items():
            for name, v in st.items():
                assert torch.equal(v, b[key]["state"][pid][name]), f"{key} state {name} differs"


@pytest.mark.parametrize("extra", [dict(k=2), dict(optimizer="sgd", noise="uniform", loss="minimax")])
def test_resume_is_bitwise_identical(tmp_path, extra):
    cfg = Config(**SMALL, **extra)
    train(cfg, out=tmp_path / "full", progress=False)
    train(cfg.replace(steps=20), out=tmp_path / "split", progress=False)
    result = train(cfg, out=tmp_path / "split", resume=True, progress=False)
    assert result.step == 40 and not result.interrupted
    full, split = _weights(tmp_path / "full"), _weights(tmp_path / "split")
    assert full["step"] == split["step"] == 40
    _assert_same_state(full, split)
    # The resumed run's log continues where the first half stopped, with no duplicate steps.
    steps = [json.loads(line)["step"] for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 40 and 20 in steps
    full_rows = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    split_rows = [json.loads(line) for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss_d"] for r in full_rows] == [r["loss_d"] for r in split_rows]


def test_same_seed_same_weights_and_samples(tmp_path):
    cfg = Config(**SMALL)
    train(cfg, out=tmp_path / "a", progress=False)
    train(cfg, out=tmp_path / "b", progress=False)
    _assert_same_state(_weights(tmp_path / "a"), _weights(tmp_path / "b"))
    train(cfg.replace(seed=1), out=tmp_path / "c", progress=False)
    assert not torch.equal(_weights(tmp_path / "a")["G"]["net.0.weight"], _weights(tmp_path / "c")["G"]["net.0.weight"])
    from gankit import sample
    sample(tmp_path / "a", 50, tmp_path / "a.npy", seed=3)
    sample(tmp_path / "b", 50, tmp_path / "b.npy", seed=3)
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))


def test_checkpoint_contents_and_retention(tmp_path):
    train(Config(**SMALL), out=tmp_path / "r", progress=False)
    names = [p.name for p in list_checkpoints(tmp_path / "r")]
    assert names == ["step_000020.pt", "step_000030.pt", "step_000040.pt"]  # newest 3 kept
    ck = load_checkpoint(latest_checkpoint(tmp_path / "r"))
    assert set(ck) >= {"G", "D", "opt_g", "opt_d", "step", "config", "rng", "data_state", "elapsed"}
    assert set(ck["rng"]) >= {"torch", "numpy", "python", "generators"}
    assert set(ck["rng"]["generators"]) == {"data", "noise"}
    assert Config.from_dict(ck["config"]) == Config(**SMALL)
    assert not list((tmp_path / "r" / "checkpoints").glob(".*tmp*"))  # no temporary left behind


def test_checkpoint_steps_sort_by_step_not_by_name(tmp_path):
    ckpts = tmp_path / "r" / "checkpoints"
    ckpts.mkdir(parents=True)
    for name in ("step_1000000.pt", "step_000500.pt", "step_999999.pt", "best.pt", "step_12.pt", "notes.txt"):
        (ckpts / name).write_bytes(b"")
    found = checkpoint_steps(tmp_path / "r")
    assert list(found) == [500, 999999, 1000000]  # numeric order; best.pt and odd names are not step checkpoints
    assert [p.name for p in found.values()] == ["step_000500.pt", "step_999999.pt", "step_1000000.pt"]
    assert list_checkpoints(tmp_path / "r") == list(found.values())
    assert checkpoint_steps(tmp_path / "none") == {}


def test_rng_state_round_trip():
    gens = {"a": torch.Generator().manual_seed(5)}
    st = rng_state(gens)
    first = (torch.rand(3), np.random.rand(3), random.random(), torch.rand(3, generator=gens["a"]))
    set_rng_state(st, gens)
    second = (torch.rand(3), np.random.rand(3), random.random(), torch.rand(3, generator=gens["a"]))
    assert torch.equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert first[2] == second[2] and torch.equal(first[3], second[3])


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "f.pt"
    path.write_bytes(b"old")
    import os

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(GankitError, match="No space left on device"):   # a user's error, naming the path
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.pt"]


def test_damaged_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "step_000001.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(GankitError, match="cannot be read"):
        load_checkpoint(bad)
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(GankitError, match="not a gankit checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_sigint_checkpoints_and_resume_is_exact(tmp_path):
    """SIGINT mid-run: the step finishes, a checkpoint is written, exit 130; resuming gives the
    weights of the uninterrupted run, bit for bit (linear learning-rate decay included)."""
    import signal
    import subprocess
    import sys
    import time

    args = ["--steps", "4000", "--batch-size", "16", "--hidden", "16", "--depth", "1", "--z-dim", "2",
            "--log-every", "50", "--eval-every", "0", "--checkpoint-every", "100000", "--lr-schedule", "linear"]
    out = tmp_path / "int"
    p = subprocess.Popen([sys.executable, "-m", "gankit", "train", "--out", str(out), *args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        m = out / "metrics.jsonl"
        if m.exists() and m.read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, stderr
    assert "checkpoint written" in stderr and "Traceback" not in stderr
    stopped = load_checkpoint(latest_checkpoint(out))["step"]
    assert 100 <= stopped < 4000
    from gankit.cli import main
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    assert main(["train", "--out", str(tmp_path / "whole"), *args, "--quiet"]) == 0
    _assert_same_state(_weights(out), _weights(tmp_path / "whole"))
