"""The command line: a run end to end, and every user error as one line with exit status 2."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from gankit.cli import main

TINY = ["--steps", "30", "--batch-size", "32", "--hidden", "32", "--depth", "2", "--z-dim", "4",
        "--log-every", "10", "--eval-every", "15", "--checkpoint-every", "10", "--eval-samples", "300", "--quiet",
        "--lr-schedule", "constant"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "r"
    assert main(["train", "--out", str(out), *TINY]) == 0
    return out


def _snapshot(path):
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_run_directory_contents(run):
    for name in ("config.yaml", "metrics.jsonl", "samples.png", "discriminator.png", "losses.png",
                 "plots/samples_step_000015.png", "plots/samples_step_000030.png",
                 "checkpoints/step_000030.pt"):
        assert (run / name).is_file(), name
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 15, 20, 30]
    logged = [r for r in rows if "loss_d" in r]
    for r in logged:
        assert set(r) >= {"step", "value", "d_real", "d_fake", "loss_d", "loss_g", "grad_norm_d",
                          "grad_norm_g", "examples_per_s", "wall_time"}
        assert r["value"] == pytest.approx(-r["loss_d"], rel=1e-6)
    assert {"modes", "high_quality", "reverse_kl"} <= set(rows[-1])
    assert 0 <= rows[-1]["modes"] <= 8


def test_config_round_trip(run, tmp_path):
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["steps"] == 30 and cfg["data"] == "ring8" and cfg["loss"] == "nonsaturating"
    out = tmp_path / "again"
    assert main(["train", "--config", str(run / "config.yaml"), "--out", str(out), "--quiet"]) == 0
    assert yaml.safe_load((out / "config.yaml").read_text()) == cfg
    # Same config and seed: same weights.
    import torch

    from gankit.training.checkpoint import load_checkpoint
    a = load_checkpoint(run / "checkpoints/step_000030.pt")
    b = load_checkpoint(out / "checkpoints/step_000030.pt")
    assert all(torch.equal(a["G"][k], b["G"][k]) for k in a["G"])


def test_sample_npy_and_png(run, tmp_path, capsys):
    assert main(["sample", str(run), "--n", "123", "--out", str(tmp_path / "s.npy")]) == 0
    x = np.load(tmp_path / "s.npy")
    assert x.shape == (123, 2) and x.dtype == np.float32 and np.isfinite(x).all()
    assert main(["sample", str(run), "--n", "500", "--seed", "2", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_info(run, capsys):
    assert main(["info", str(run)]) == 0
    out = capsys.readouterr().out
    assert "30 of 30 done" in out and "data=ring8" in out
    assert main(["info", str(run), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["steps_done"] == 30 and d["last_metrics"]["step"] == 30


def test_resume_extends_a_run(run, tmp_path, capsys):
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    assert main(["train", "--resume", str(copy), "--steps", "40", "--quiet"]) == 0
    assert (copy / "checkpoints/step_000040.pt").is_file()
    assert "step 40/40" in capsys.readouterr().out


def test_resume_may_keep_more_checkpoints(run, tmp_path, caplog):
    import logging
    import shutil

    from gankit.runs import Run
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    assert main(["train", "--resume", str(copy), "--steps", "50", "--keep-checkpoints", "4", "--quiet"]) == 0
    kept = sorted(p.name for p in (copy / "checkpoints").glob("step_*.pt"))
    assert kept == ["step_000020.pt", "step_000030.pt", "step_000040.pt", "step_000050.pt"]
    assert "keep_checkpoints: 4" in (copy / "config.yaml").read_text()
    with caplog.at_level(logging.WARNING, logger="gankit"):   # step 30 was written keeping 3
        Run.open(copy).load(copy / "checkpoints/step_000030.pt")
    assert "differs from its checkpoint" not in caplog.text


def _error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, (argv, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("gankit: error: ") and "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("argv, expect", [
    (["train", "--data", "nope"], "unknown data set 'nope'"),
    (["train", "--model", "resnet9000"], "model must be one of mlp, dcgan, mnist-paper; got 'resnet9000'"),
    (["train", "--k", "0"], "k must be a whole number > 0"),
    (["train", "--k", "-2"], "k must be a whole number > 0"),
    (["train", "--batch-size", "0"], "batch_size must be a whole number > 0"),
    (["train", "--lr-d", "-0.001"], "lr_d must be a positive number"),
    (["train", "--lr-g", "nan"], "lr_g must be a positive number"),
    (["train", "--loss", "hinge"], "loss must be one of"),
    (["train", "--noise", "cauchy"], "noise must be one of"),
    (["train", "--beta1", "1.5"], "beta1 must be a number in [0, 1)"),
    (["train", "--k", "two"], "invalid int value"),
    (["train", "--update", "sequential"], "update must be one of"),
    (["train", "--update", "simultaneous", "--k", "2"], "k must be 1"),
    (["train", "--config", "/no/such/file.yaml"], "does not exist"),
    (["train", "--resume"], "--resume needs a run directory"),
    (["sample", "/no/such/run", "--out", "x.npy"], "does not exist"),
    (["info", "/no/such/run"], "does not exist"),
    (["bogus"], "invalid choice"),
    (["bench", "--device", "gpu"], "--device must be cpu, cuda, cuda:N or auto"),
    (["bench", "--cases", "nope"], "unknown bench case 'nope'"),
    (["train", "--seed", "-1"], "seed must be a whole number >= 0, got -1"),
    (["theory", "--seed", "-1"], "--seed must be a whole number from 0 to 2**62, got -1"),
])
def test_bad_input(capsys, tmp_path, monkeypatch, argv, expect):
    monkeypatch.chdir(tmp_path)
    assert expect in _error(capsys, argv)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("text, expect", [
    ("data: [ring8\n", "not valid YAML"),
    ("- 1\n- 2\n", "must hold a mapping"),
    ("stepz: 10\n", "unknown option(s) stepz (stepz: did you mean steps?)"),
    ("qqq: 1\n", "unknown option(s) qqq; see"),                 # nothing near: no suggestion
    ("steps: ten\n", "option steps must be a whole number, got 'ten'"),
    ("lr_g: [1]\n", "option lr_g must be a number, got [1]"),
    ("k: 0\n", "k must be a whole number > 0"),
])
def test_bad_config_file(capsys, tmp_path, text, expect):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    assert expect in _error(capsys, ["train", "--config", str(f), "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv", [
    ["sample", "--n", "4", "--seed", str(10**23), "--out", "s.npy"],     # past torch's 64-bit seeds
    ["sample", "--n", "4", "--seed", "-5", "--out", "s.npy"],
    ["sample", "--interpolate", "--seed", str(2**62 + 1), "--out", "s.png"],
    ["eval", "--metrics", "modes", "--seed", str(10**23)],
])
def test_seeds_out_of_range_are_one_line(run, tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    before = _snapshot(run)
    line = _error(capsys, [argv[0], str(run), *argv[1:]])
    assert "seed must be a whole number from 0 to 2**62, got " in line
    assert not any(tmp_path.iterdir()) and _snapshot(run) == before


def test_a_run_with_a_seed_past_torchs_range_trains_and_is_read(tmp_path, capsys):
    """A run's own seed reaches torch only through SeedSequence, so any whole number >= 0
    trains, and the run opens for sampling like any other."""
    out = tmp_path / "big"
    assert main(["train", "--out", str(out), *TINY, "--steps", "10", "--seed", str(2**70)]) == 0
    assert main(["sample", str(out), "--n", "5", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (5, 2)


def test_existing_run_is_never_overwritten(run, capsys):
    before = _snapshot(run)
    assert "already holds a run" in _error(capsys, ["train", "--out", str(run), *TINY])
    assert _snapshot(run) == before


def test_resume_refuses_to_change_the_game(run, capsys):
    before = _snapshot(run)
    assert "cannot change lr_g when resuming" in _error(capsys, ["train", "--resume", str(run), "--lr-g", "0.5"])
    assert _snapshot(run) == before


def test_resume_refuses_a_checkpoint_without_optimiser_states(run, tmp_path, capsys):
    """A checkpoint whose optimiser states were emptied (benchmarks/gpu_check.sh's SLIM
    copies) is scored, and refused with one line when resumed, its file left as it was."""
    import shutil

    from gankit.training.checkpoint import drop_optimizer_states, load_checkpoint
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    path = copy / "checkpoints/step_000030.pt"
    drop_optimizer_states(path)
    ckpt = load_checkpoint(path)
    assert ckpt["opt_g"] == {} and ckpt["opt_d"] == {} and ckpt["step"] == 30
    body = path.read_bytes()
    assert main(["eval", str(copy), "--n", "100", "--metrics", "modes"]) == 0
    capsys.readouterr()
    assert _error(capsys, ["train", "--resume", str(copy), "--steps", "40"]) == (
        "gankit: error: this checkpoint holds no optimiser states (a copy kept for sampling and scoring): "
        "it cannot be resumed")
    assert path.read_bytes() == body and not (copy / "checkpoints/step_000040.pt").exists()


def test_resume_without_checkpoint(tmp_path, capsys):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.yaml").write_text("steps: 10\n")
    assert "no checkpoint" in _error(capsys, ["train", "--resume", str(tmp_path / "r")])
    assert "is not a gankit run directory" in _error(capsys, ["train", "--resume", str(tmp_path)])


def test_non_run_directories(tmp_path, capsys):
    (tmp_path / "junk.txt").write_text("x")
    assert "not a gankit run directory" in _error(capsys, ["sample", str(tmp_path), "--out", str(tmp_path / "s.npy")])
    assert "not a gankit run directory" in _error(capsys, ["info", str(tmp_path)])
    assert "non-empty directory" in _error(capsys, ["train", "--out", str(tmp_path), *TINY])
    assert (tmp_path / "junk.txt").read_text() == "x"


def test_sample_bad_options(run, tmp_path, capsys):
    assert "--n must be" in _error(capsys, ["sample", str(run), "--n", "0", "--out", str(tmp_path / "s.npy")])
    assert "must end in .npy or .png" in _error(capsys, ["sample", str(run), "--out", str(tmp_path / "s.txt")])
    assert "does not exist" in _error(capsys, ["sample", str(run), "--out", str(tmp_path / "no" / "s.npy")])


def test_entry_point_subprocess(tmp_path):
    """The installed module, in a fresh process: exit 2, one line, no traceback."""
    p = subprocess.run([sys.executable, "-m", "gankit", "train", "--k", "0"], capture_output=True,
                       text=True, cwd=tmp_path, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert p.returncode == 2
    assert p.stderr.strip() == "gankit: error: k must be a whole number > 0, got 0"


def test_resume_cannot_stretch_a_decaying_schedule(tmp_path, capsys):
    out = tmp_path / "lin"
    args = [a for a in TINY if a not in ("--lr-schedule", "constant")]
    assert main(["train", "--out", str(out), *args, "--lr-schedule", "linear"]) == 0
    before = _snapshot(out)
    assert "decay to 0 at step 30" in _error(capsys, ["train", "--resume", str(out), "--steps", "60"])
    assert _snapshot(out) == before


def test_data_sets_own_defaults(tmp_path, caplog):
    """ring8 and grid25 start from their own defaults (2-d noise, a light lazy R1) where the
    user set none of those options; options given, a preset's included, win; other data
    sets get none; the Python API applies them too."""
    import logging

    import gankit

    small = ["--steps", "2", "--batch-size", "16", "--hidden", "8", "--depth", "1", "--eval-every", "0",
             "--eval-samples", "100"]

    def config(*argv):
        out = tmp_path / f"r{len(list(tmp_path.iterdir()))}"
        assert main(["train", "--out", str(out), *small, *argv]) == 0
        cfg = yaml.safe_load((out / "config.yaml").read_text())
        return cfg["z_dim"], cfg["r1"], cfg["reg_every"]

    with caplog.at_level(logging.INFO, logger="gankit"):
        assert config() == (2, 0.01, 16)
    assert "data ring8: its own defaults z_dim 2, r1 0.01, reg_every 16" in caplog.text
    assert config("--data", "grid25") == (2, 0.3, 16)
    assert config("--z-dim", "8", "--r1", "0") == (8, 0.0, 16)
    assert config("--preset", "ring8") == (1, 0.03, 4)     # the preset's over the data's own
    np.savetxt(tmp_path / "p.csv", np.random.default_rng(0).normal(size=(64, 3)), delimiter=",")
    assert config("--data", f"points:{tmp_path / 'p.csv'}") == (8, 0.0, 1)    # the library's defaults
    run = gankit.train(data="grid25", steps=2, batch_size=16, hidden=8, depth=1, eval_every=0, out=tmp_path / "api",
                       progress=False)
    assert (run.config.z_dim, run.config.r1, run.config.reg_every) == (2, 0.3, 16)


def test_command_line_is_recorded_as_typed():
    """runtime.json and bench JSON record the command: the console script by its name,
    ``python -m gankit`` as such (not as ``__main__.py``), any other script by its name."""
    from gankit.version import command_line
    assert command_line(["/venv/bin/gankit", "train", "--steps", "5"]) == "gankit train --steps 5"
    assert command_line(["/x/site-packages/gankit/__main__.py", "train"]) == "python -m gankit train"
    assert command_line(["/x/other/__main__.py", "go"]) == "__main__.py go"
    assert command_line(["benchmarks/preset_run.py", "mnist-dcgan"]) == "preset_run.py mnist-dcgan"
    assert command_line([""]) == "python"


@pytest.mark.parametrize("argv, says", [
    (["--width", "32"], "width 32 is an option of --model dcgan; mlp does not use it"),
    (["--d-norm", "none"], "d_norm none is an option of --model dcgan; mlp does not use it"),
    (["--data", "fake:1,28,28", "--model", "dcgan", "--depth", "5"], "depth 5 is an option of --model mlp; dcgan"),
    (["--preset", "mnist-dcgan", "--model", "mnist-paper"], "width 96 is an option of --model dcgan; mnist-paper"),
])
def test_an_option_of_another_model_is_refused(tmp_path, capsys, argv, says):
    """--hidden, --depth (mlp), --width and --d-norm (dcgan) set for a model that does not use them
    are refused in one line, not ignored; no run directory is left."""
    assert main(["train", "--out", str(tmp_path / "r"), "--steps", "1", "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_a_run_saved_with_an_ignored_option_still_loads_and_resumes(tmp_path):
    """Runs made before these refusals may hold an option they ignored: their configuration
    still loads, samples and resumes (only a new run is refused)."""
    run = tmp_path / "old"
    assert main(["train", "--out", str(run), "--steps", "2", "--eval-every", "0", "--checkpoint-every", "2",
                 "--lr-schedule", "constant", "--quiet"]) == 0
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg.update(width=32, class_input="deep")
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["sample", str(run), "--n", "4", "--out", str(tmp_path / "s.npy")]) == 0
    assert main(["train", "--resume", str(run), "--steps", "4", "--quiet"]) == 0


def test_a_closed_pipe_on_stdout_ends_quietly(run):
    """`gankit info RUN | head`: when the reader has gone, gankit stops as a shell tool does,
    with no error message and no traceback (the pipe's read end is closed before gankit
    writes, so the write fails every time)."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([sys.executable, "-m", "gankit", "info", str(run)], stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert proc.returncode == 1 and proc.stderr == "", proc.stderr


def test_closed_standard_streams_are_not_a_crash(tmp_path):
    """`gankit train >&- 2>&-`: started with stdout and stderr closed, gankit trains and
    checkpoints as usual (before, Progress's isatty check on a None sys.stdout raised), and
    the descriptors 1 and 2 are held by /dev/null, so no file gankit opens can take them;
    an error still exits 2, and with stderr closed its message is not printed on stdout
    instead (Python's print(file=None) falls back to stdout, which may carry --json)."""
    def closed(*fds):
        return lambda: [os.close(fd) for fd in fds]

    out = tmp_path / "r"
    args = [a for a in TINY if a != "--quiet"]
    p = subprocess.run([sys.executable, "-m", "gankit", "train", "--out", str(out), *args],
                       preexec_fn=closed(1, 2), timeout=300)
    assert p.returncode == 0
    assert sorted(f.name for f in (out / "checkpoints").glob("*.pt"))[-1] == "step_000030.pt"
    p = subprocess.run([sys.executable, "-m", "gankit", "train", "--k", "0"], stdout=subprocess.PIPE,
                       preexec_fn=closed(2), timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert p.returncode == 2 and b"error" not in p.stdout
    probe = tmp_path / "fd.txt"
    code = ("import os, sys; from gankit.cli import _fill_closed_std_streams; _fill_closed_std_streams(); "
            f"f = open({str(probe)!r}, 'w'); f.write(str(f.fileno()) + ' ' + str(sys.stdout is not None)); f.close()")
    assert subprocess.run([sys.executable, "-c", code], preexec_fn=closed(1, 2), timeout=120).returncode == 0
    fd, has_stdout = probe.read_text().split()
    assert int(fd) > 2 and has_stdout == "True"
