"""Standing BatchNorm statistics (``--bn-stats standing``): what they compute, and the
commands that use them."""

import copy
import json

import numpy as np
import pytest
import torch

from gankit.cli import main
from gankit.config import Config
from gankit.models import build_models
from gankit.sampling import sample_noise, standing_statistics

from .squares import write_squares


def _dcgan(num_classes: int = 0, **extra):
    torch.manual_seed(0)
    cfg = Config(model="dcgan", width=8, z_dim=6, **extra)
    return build_models(cfg, (1, 28, 28), num_classes=num_classes)[0]


def _norms(G):
    return [m for m in G.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def test_standing_statistics_are_the_mean_of_the_batch_statistics():
    """Each layer's running mean (variance) is the plain mean over the batches of the batch
    mean (unbiased variance) of its input in a training-mode pass: checked in float64."""
    G = _dcgan()
    for m in _norms(G):   # statistics that are plainly not G's own
        m.running_mean.fill_(5.0)
        m.running_var.fill_(100.0)
    reference = copy.deepcopy(G).double().train()
    seen = {id(m): [] for m in _norms(reference)}
    for m in _norms(reference):
        m.register_forward_pre_hook(lambda mod, inp: seen[id(mod)].append(inp[0].detach()))
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for _ in range(4):
            reference(sample_noise(32, 6, "normal", gen).double())
    rng = torch.get_rng_state()
    assert standing_statistics(G, 6, "normal", batch=32, n=130, seed=7) == 2   # 4 whole batches
    assert torch.equal(torch.get_rng_state(), rng)          # no training random stream drawn from
    assert not G.training and not any(m.training for m in G.modules())
    for m, r in zip(_norms(G), _norms(reference)):
        acts = seen[id(r)]
        assert len(acts) == 4 and int(m.num_batches_tracked) == 4 and m.momentum == 0.1
        dims = [0, 2, 3]
        mean = torch.stack([a.mean(dims) for a in acts]).mean(0)
        var = torch.stack([a.var(dims, unbiased=True) for a in acts]).mean(0)
        torch.testing.assert_close(m.running_mean.double(), mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(m.running_var.double(), var, rtol=1e-5, atol=1e-6)


def test_standing_statistics_make_eval_mode_match_a_large_training_batch():
    """With statistics from 4,096 samples, G in eval mode draws what a training-mode pass over
    one batch of 2,048 other noise vectors draws from the same noise (to within 0.02 per pixel
    of tanh's [-1, 1]); with statistics left wrong it does not (more than 0.5 somewhere)."""
    G = _dcgan()
    for m in _norms(G):
        m.running_mean.fill_(0.5)
        m.running_var.fill_(4.0)
    z = sample_noise(2048, 6, "normal", torch.Generator().manual_seed(1))
    with torch.no_grad():
        train_out = copy.deepcopy(G).train()(z)
        assert (G.eval()(z) - train_out).abs().max() > 0.5
        standing_statistics(G, 6, "normal", batch=64, n=4096)
        gap = (G(z) - train_out).abs().max()
    assert 0 <= gap < 0.02


def test_conditional_generator_and_generator_without_batchnorm():
    G = _dcgan(num_classes=3, g_class_input="batchnorm")
    assert standing_statistics(G, 6, "normal", batch=12, n=24) >= 2
    assert all(int(m.num_batches_tracked) == 2 for m in _norms(G))
    torch.manual_seed(0)
    mlp = build_models(Config(data="ring8"), (2,))[0]
    assert not _norms(mlp) and standing_statistics(mlp, 2, "normal", batch=8) == 0


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("bn")
    data, _ = write_squares(d, 64)
    out = d / "run"
    assert main(["train", "--data", f"npz:{data}", "--out", str(out), "--model", "dcgan", "--width", "8",
                 "--z-dim", "8", "--batch-size", "16", "--steps", "8", "--ema-kimg", "0.05", "--eval-every", "0",
                 "--checkpoint-every", "8", "--quiet"]) == 0
    return out


def test_commands_take_bn_stats(run, tmp_path):
    scores = {}
    for stats in ("running", "standing"):
        assert main(["eval", str(run), "--metrics", "kid", "--extractor", "raw", "--n", "64", "--bn-stats", stats]) == 0
        r = json.loads((run / "eval.json").read_text())
        assert (r["weights"], r["bn_stats"]) == ("ema", stats)
        scores[stats] = r["kid"]
        assert main(["sample", str(run), "--n", "4", "--bn-stats", stats, "--out", str(tmp_path / f"{stats}.npy")]) == 0
    assert scores["running"] != scores["standing"]
    a, b = np.load(tmp_path / "running.npy"), np.load(tmp_path / "standing.npy")
    assert a.shape == b.shape == (4, 1, 28, 28) and not np.array_equal(a, b)
    assert main(["sample", str(run), "--nearest", "--rows", "2", "--cols", "2", "--bn-stats", "standing",
                 "--out", str(tmp_path / "near.png")]) == 0


def test_bn_stats_errors_are_one_line(run, tmp_path, capsys):
    assert main(["sample", str(run), "--n", "4", "--bn-stats", "mean", "--out", str(tmp_path / "x.npy")]) != 0
    toy = tmp_path / "toy"
    assert main(["train", "--data", "ring8", "--steps", "4", "--batch-size", "8", "--eval-every", "0",
                 "--out", str(toy), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["eval", str(toy), "--bn-stats", "standing"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no BatchNorm layers" in err[0] and "Traceback" not in err[0]
