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


def test_trainer_samples_with_standing_statistics_and_trains_as_before():
    """With ``bn_stats: standing`` the trainer's samples come from a copy of the EMA generator
    whose statistics are recomputed (once per step); the networks that train, the EMA's own
    buffers and the training trajectory are those of a run without it."""
    from gankit.data import make_source
    from gankit.training.loop import GANTrainer
    from gankit.training.regularizers import EMA, Stabilizers

    def trainer(bn_stats):
        torch.manual_seed(0)
        G, D = build_models(Config(model="dcgan", width=8, z_dim=6), (1, 28, 28))
        opt = lambda p: torch.optim.Adam(p, lr=2e-4, betas=(0.5, 0.999))   # noqa: E731
        return GANTrainer(G, D, opt(G.parameters()), opt(D.parameters()),
                          make_source("fake:1,28,28", torch.device("cpu")), "nonsaturating", 1, 16, 6, "normal",
                          torch.Generator().manual_seed(1), torch.Generator().manual_seed(2),
                          stab=Stabilizers(ema=EMA(G, 0.05), bn_stats=bn_stats))

    plain, standing = trainer("running"), trainer("standing")
    for _ in range(3):
        a, b = plain.step(), standing.step()
        assert float(a.loss_g) == float(b.loss_g) and float(a.loss_d) == float(b.loss_d)
        sample = standing.G_sample
        assert sample is standing.G_sample                     # one copy per step
        assert sample is not standing.stab.ema.ema and plain.G_sample is plain.stab.ema.ema
        reference = copy.deepcopy(standing.stab.ema.ema)
        standing_statistics(reference, 6, "normal", batch=16)
        for m, r, e, g in zip(_norms(sample), _norms(reference), _norms(standing.stab.ema.ema), _norms(standing.G)):
            assert torch.equal(m.running_mean, r.running_mean) and torch.equal(m.running_var, r.running_var)
            assert torch.equal(e.running_mean, g.running_mean)   # the EMA still carries G's statistics
            assert not torch.equal(m.running_mean, e.running_mean)
    for p, q in zip(plain.G.parameters(), standing.G.parameters()):
        assert torch.equal(p, q)
    standing.step()
    assert standing.G_sample is not sample                      # recomputed after a further step


def test_run_trained_with_standing_statistics_is_loaded_with_them(tmp_path, capsys):
    """A run trained with ``--bn-stats standing`` is sampled and scored with standing
    statistics unless told otherwise (``--bn-stats auto``, the default, reads the run's
    setting); a generator without BatchNorm refuses the setting before training."""
    data, _ = write_squares(tmp_path, 64)
    out = tmp_path / "run"
    assert main(["train", "--data", f"npz:{data}", "--out", str(out), "--model", "dcgan", "--width", "8",
                 "--z-dim", "8", "--batch-size", "16", "--steps", "8", "--ema-kimg", "0.05", "--eval-every", "0",
                 "--checkpoint-every", "8", "--bn-stats", "standing", "--quiet"]) == 0
    kid = {}
    for flag in ("auto", "standing", "running"):
        assert main(["eval", str(out), "--metrics", "kid", "--extractor", "raw", "--n", "64", "--bn-stats", flag]) == 0
        r = json.loads((out / "eval.json").read_text())
        assert r["bn_stats"] == ("standing" if flag == "auto" else flag)
        kid[flag] = r["kid"]
    assert kid["auto"] == kid["standing"] != kid["running"]
    toy = tmp_path / "toy"
    capsys.readouterr()
    assert main(["train", "--data", "ring8", "--steps", "4", "--batch-size", "8", "--eval-every", "0",
                 "--bn-stats", "standing", "--out", str(toy), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no BatchNorm layers" in err[0]
    assert not (toy / "checkpoints").exists() or not any((toy / "checkpoints").iterdir())
