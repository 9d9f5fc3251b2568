"""The runtime policy: thread count, precision choice (training/runtime.py)."""

import pytest
import torch

from gankit import Config
from gankit.cli import main
from gankit.training.checkpoint import load_checkpoint


def test_thread_count_yields_to_busy_cores(monkeypatch):
    """One of 2 cores busy with another process: 1 thread (2 threads collapse 3-5× there).
    Load from this process's own threads (torch's workers spinning after an earlier run in
    the same process) is not another process's."""
    from gankit.training import runtime as run_mod
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
            monkeypatch.setattr(run_mod, "cpu_times", lambda samples=samples: next(samples))
            threads, note = run_mod.choose_threads()
            assert threads == want, (busy_jiffies, own, threads)
            assert (note is None) == (want == 2)
            if note:
                assert "busy with other work" in note and "--threads" in note

        def broken():
            raise OSError("no /proc/stat")
        monkeypatch.setattr(run_mod, "cpu_times", broken)
        assert run_mod.choose_threads() == (2, None)           # keeps torch's choice
    finally:
        torch.set_num_threads(before)


def test_own_threads_are_not_other_work():
    """A thread of this process kept busy while the load is sampled (as torch's workers
    spin after an earlier run in the same process) leaves the thread count alone."""
    import os
    import threading

    from gankit.training import runtime as run_mod
    if not os.path.exists("/proc/self/stat"):
        pytest.skip("needs Linux /proc")
    busy, total, own = run_mod.cpu_times()
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
    from gankit.training import runtime as run_mod
    monkeypatch.setattr(run_mod, "choose_threads", lambda: (1, "1.0 of 2 cores busy"))
    before = torch.get_num_threads()
    assert main(["train", "--out", str(tmp_path / "r"), "--steps", "10", "--checkpoint-every", "5",
                 "--eval-every", "0", "--lr-schedule", "constant", "--quiet", "--share-cores",
                 "--device", "cpu"]) == 0
    assert load_checkpoint(tmp_path / "r/checkpoints/step_000010.pt")["threads"] == 1
    assert torch.get_num_threads() == before                   # restored after the run

    def must_not_choose():
        raise AssertionError("a resumed run must reuse its checkpoint's thread count")
    monkeypatch.setattr(run_mod, "choose_threads", must_not_choose)
    seen = []
    monkeypatch.setattr(run_mod.torch, "set_num_threads", lambda n: seen.append(n))
    assert main(["train", "--resume", str(tmp_path / "r"), "--steps", "15", "--quiet"]) == 0
    assert seen[0] == 1


def test_auto_precision_choices(monkeypatch):
    """``auto``: bf16 on GPUs that have it, else fp16 (fp32 for simultaneous updates, which
    have no loss scaling); on CPUs with bf16 units, bf16 for convolutions and large MLPs only."""
    from gankit.models import build_models
    from gankit.training import runtime as run
    dcgan = build_models(Config(model="dcgan", width=8), (1, 28, 28))[0]
    paper = build_models(Config(model="mnist-paper"), (1, 28, 28))[0]
    toy = build_models(Config(model="mlp"), (2,))[0]
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    auto = Config()
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert run.resolve_precision(auto, cuda, dcgan) == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert run.resolve_precision(auto, cuda, dcgan) == "fp16"
    assert run.resolve_precision(auto.replace(update="simultaneous"), cuda, paper) == "fp32"
    monkeypatch.setattr(run, "cpu_has_bf16", lambda: True)
    assert [run.resolve_precision(auto, cpu, g) for g in (dcgan, paper, toy)] == ["bf16", "bf16", "fp32"]
    monkeypatch.setattr(run, "cpu_has_bf16", lambda: False)
    assert [run.resolve_precision(auto, cpu, g) for g in (dcgan, paper, toy)] == ["fp32", "fp32", "fp32"]
    assert run.resolve_precision(Config(precision="fp16"), cpu, toy) == "fp16"   # an explicit choice stands
