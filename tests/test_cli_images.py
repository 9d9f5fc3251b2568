"""Images end to end through the command line: presets, grids, sampling, walks, resume."""

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from gankit.cli import main
from gankit.config import Config, load_preset, preset_names
from gankit.training.checkpoint import latest_checkpoint, load_checkpoint

from .squares import write_squares


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_squares(tmp_path_factory.mktemp("img"), 96)[0]


def _args(data, out, *extra):
    return ["train", "--data", f"npz:{data}", "--out", str(out), "--model", "dcgan", "--width", "8",
            "--z-dim", "8", "--batch-size", "16", "--steps", "12", "--log-every", "4", "--eval-every", "6",
            "--checkpoint-every", "6", "--lr-schedule", "constant", "--quiet", *extra]


def test_presets_are_valid_and_flags_override_them(digits, tmp_path):
    assert preset_names() == ["dcgan64", "fashion-cdcgan", "fashion-dcgan", "grid25", "mnist-cdcgan", "mnist-dcgan",
                              "mnist-paper", "mnist-paper-full", "ring8"]
    for name in preset_names():
        Config.from_dict(load_preset(name)).validate()
    paper = Config.from_dict(load_preset("mnist-paper"))
    assert (paper.model, paper.optimizer, paper.noise, paper.batch_size, paper.lr_g) == \
           ("mnist-paper", "sgd", "normal", 100, 0.1)
    assert paper.lr_d == 0.05  # the published D objective is halved
    assert (paper.momentum, paper.momentum_final) == (0.5, 0.7)
    full = Config.from_dict(load_preset("mnist-paper-full"))   # Table 1: train[:50000], the whole schedule
    assert (full.subset, full.steps, full.momentum_ramp) == ("0:50000", 125_000, 125_000)
    assert full.noise == "uniform_unit"                        # the published file's U(-√3, √3)
    assert full.replace(subset="", noise="normal", steps=paper.steps, log_every=paper.log_every,
                        eval_every=paper.eval_every, checkpoint_every=paper.checkpoint_every) == paper
    out = tmp_path / "p"
    assert main(["train", "--preset", "mnist-dcgan", "--data", f"npz:{digits}", "--width", "8", "--steps", "3",
                 "--batch-size", "8", "--out", str(out), "--quiet"]) == 0
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["model"] == "dcgan" and cfg["z_dim"] == 100 and cfg["steps"] == 3 and cfg["width"] == 8


def test_image_run_grids_sampling_and_walk(digits, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(_args(digits, out)) == 0
    for name in ("samples/step_000006.png", "samples/step_000012.png", "samples.png", "losses.png"):
        assert (out / name).is_file(), name
    grid = np.asarray(Image.open(out / "samples.png"))
    assert grid.shape == (8 * 30 + 2, 8 * 30 + 2)       # 64 grayscale 28-px images, padding 2
    assert main(["sample", str(out), "--n", "10", "--out", str(tmp_path / "s.npy")]) == 0
    x = np.load(tmp_path / "s.npy")
    assert x.shape == (10, 1, 28, 28) and x.min() >= 0 and x.max() <= 1
    assert main(["sample", str(out), "--n", "16", "--out", str(tmp_path / "g.png")]) == 0
    assert np.asarray(Image.open(tmp_path / "g.png")).shape == (4 * 30 + 2, 4 * 30 + 2)
    assert main(["sample", str(out), "--interpolate", "--out", str(tmp_path / "walk.png")]) == 0
    assert np.asarray(Image.open(tmp_path / "walk.png")).shape == (8 * 30 + 2, 10 * 30 + 2)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [4, 8, 12]


def test_image_resume_is_bitwise_identical(digits, tmp_path):
    """BatchNorm statistics, Adam moments and the epoch order all come back exactly."""
    assert main(_args(digits, tmp_path / "full")) == 0
    half = _args(digits, tmp_path / "split")
    half[half.index("--steps") + 1] = "6"
    assert main(half) == 0
    assert main(["train", "--resume", str(tmp_path / "split"), "--steps", "12", "--quiet"]) == 0
    a = load_checkpoint(latest_checkpoint(tmp_path / "full"))
    b = load_checkpoint(latest_checkpoint(tmp_path / "split"))
    for net in ("G", "D"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)
    assert torch.equal(a["data_state"]["perm"], b["data_state"]["perm"])


def test_interpolate_refused_for_toy_data(tmp_path, capsys):
    out = tmp_path / "toy"
    assert main(["train", "--out", str(out), "--steps", "2", "--hidden", "8", "--quiet"]) == 0
    assert main(["sample", str(out), "--interpolate", "--out", str(tmp_path / "w.png")]) == 2
    assert "latent walk of images" in capsys.readouterr().err


@pytest.mark.parametrize("argv, expect", [
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["--data", "fake:2,8,8"], "1 or 3 channels"),
    (["--data", "fake:abc"], "fake:C,H,W"),
    (["--data", "idx:/no/such/dir", "--model", "dcgan"], "does not exist"),
    (["--resize", "stretch"], "resize must be one of"),
    (["--resize", "resize"], "needs an image_size"),
    (["--channels", "2"], "channels must be one of 0, 1, 3"),
    (["--model", "dcgan"], "needs image data"),
])
def test_bad_image_options(tmp_path, capsys, argv, expect):
    code = main(["train", "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and expect in err, err
    assert not (tmp_path / "o").exists()
