"""Divergence, damaged checkpoints and checksums."""

import pytest
import torch

from gankit import Config, train
from gankit.cli import main
from gankit.errors import DivergenceError, GankitError
from gankit.training.checkpoint import list_checkpoints, load_checkpoint, load_latest_good
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


def test_rollback_lowers_the_learning_rate_and_finishes(tmp_path, poison_once, capsys):
    r = train(Config(**SMALL, on_divergence="rollback"), out=tmp_path / "r", progress=False)
    assert r.step == 40 and poison_once["done"]
    assert "rolled back to step_000020.pt with learning rates x0.1" in capsys.readouterr().err
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


def test_thread_count_yields_to_busy_cores(monkeypatch):
    """One of 2 cores busy with another process: 1 thread (2 threads collapse 3-5× there).
    Load from this process's own threads (torch's workers spinning after an earlier run in
    the same process) is not another process's."""
    from gankit.training import run as run_mod
    cpus = 2
    monkeypatch.setattr(run_mod.os, "cpu_count", lambda: cpus)
    monkeypatch.setattr(run_mod.time, "sleep", lambda s: None)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        # (busy jiffies of 20 (2 cpus × 10), of which this process's own) -> threads
        for busy_jiffies, own, want in ((0, 0, 2), (4, 0, 2), (10, 0, 1), (20, 0, 1), (20, 20, 2), (20, 10, 1),
                                        (14, 10, 2), (10, 12, 2)):
            samples = iter([(1000, 5000, 300), (1000 + busy_jiffies, 5020, 300 + own)])
            monkeypatch.setattr(run_mod, "_cpu_times", lambda: next(samples))
            threads, note = run_mod.choose_threads()
            assert threads == want, (busy_jiffies, own, threads)
            assert (note is None) == (want == 2)
            if note:
                assert "busy with other work" in note and "--threads" in note

        def broken():
            raise OSError("no /proc/stat")
        monkeypatch.setattr(run_mod, "_cpu_times", broken)
        assert run_mod.choose_threads() == (2, None)           # keeps torch's choice
    finally:
        torch.set_num_threads(before)


def test_own_threads_are_not_other_work():
    """A thread of this process kept busy while the load is sampled (as torch's workers
    spin after an earlier run in the same process) leaves the thread count alone."""
    import os
    import threading

    from gankit.training import run as run_mod
    if not os.path.exists("/proc/self/stat"):
        pytest.skip("needs Linux /proc")
    busy, total, own = run_mod._cpu_times()
    assert 0 <= own and 0 < busy <= total
    if run_mod.choose_threads(0.3)[1] is not None:
        pytest.skip("another process keeps this machine busy")
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            pass
    t = threading.Thread(target=spin)
    t.start()
    try:
        threads, note = run_mod.choose_threads(0.3)
    finally:
        stop.set()
        t.join()
    assert note is None and threads == torch.get_num_threads()


def test_run_keeps_its_thread_count_on_resume(tmp_path, monkeypatch):
    from gankit.training import run as run_mod
    monkeypatch.setattr(run_mod, "choose_threads", lambda: (1, "1.0 of 2 cores busy"))
    before = torch.get_num_threads()
    assert main(["train", "--out", str(tmp_path / "r"), "--steps", "10", "--checkpoint-every", "5",
                 "--eval-every", "0", "--lr-schedule", "constant", "--quiet"]) == 0
    assert load_checkpoint(tmp_path / "r/checkpoints/step_000010.pt")["threads"] == 1
    assert torch.get_num_threads() == before                   # restored after the run

    def must_not_choose():
        raise AssertionError("a resumed run must reuse its checkpoint's thread count")
    monkeypatch.setattr(run_mod, "choose_threads", must_not_choose)
    seen = []
    monkeypatch.setattr(run_mod.torch, "set_num_threads", lambda n: seen.append(n))
    assert main(["train", "--resume", str(tmp_path / "r"), "--steps", "15", "--quiet"]) == 0
    assert seen[0] == 1
