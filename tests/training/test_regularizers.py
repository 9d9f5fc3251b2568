"""The stabilisers compute what they claim (against closed forms, finite differences and
float64), are saved in checkpoints and resume bitwise (CPU), and run in bf16."""

import math

import pytest
import torch
from torch import nn

from gankit.cli import main
from gankit.models.mlp import MLPDiscriminator
from gankit.rundir import list_checkpoints
from gankit.training.checkpoint import load_checkpoint
from gankit.training.regularizers import (
    EMA,
    SpectralNorm,
    diff_augment,
    gradient_penalty,
    pack,
    packed_shape,
    spectral_normalize,
)


# ---------------------------------------------------------------------- EMA
def test_ema_is_the_stated_average_with_its_ramp_up():
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).double()
    ema = EMA(G, kimg=10.0, rampup=0.05)
    # ramp-up: the half-life is min(10,000, 0.05 * images seen)
    ema.images = 1000
    assert ema.beta(100) == pytest.approx(0.5 ** (100 / 50), rel=1e-12)
    ema.images = 10**7
    assert ema.beta(100) == pytest.approx(0.5 ** (100 / 10_000), rel=1e-12)
    before = [p.detach().clone() for p in ema.ema.parameters()]
    with torch.no_grad():
        for p in G.parameters():
            p.add_(1.0)
        G[1].running_mean.fill_(3.0)
    b = ema.beta(64)
    ema.update(64)
    for e, old, g in zip(ema.ema.parameters(), before, G.parameters()):
        torch.testing.assert_close(e, b * old + (1 - b) * g, rtol=1e-12, atol=1e-12)
    assert torch.equal(ema.ema[1].running_mean, G[1].running_mean)        # buffers copied, not averaged
    assert ema.images == 10**7 + 64


# ---------------------------------------------------------------------- spectral norm
def test_spectral_norm_makes_every_weight_1_lipschitz():
    torch.manual_seed(1)
    D = nn.Sequential(nn.Conv2d(3, 8, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(8 * 4 * 4, 1))
    with torch.no_grad():
        for p in D.parameters():
            p.mul_(7.0)                                   # far from 1-Lipschitz
    spectral_normalize(D)
    x = torch.randn(16, 3, 8, 8)
    for _ in range(30):                                   # power iterations, one per forward pass
        D(x)
    D.eval()
    for m in (D[0], D[3]):
        w = m.weight.reshape(m.weight.shape[0], -1)      # what the parametrization normalises
        assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("autocast", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_spectral_norm_is_torchs_parametrization_bitwise(dtype, autocast):
    """gankit's SpectralNorm takes fewer calls than torch's own parametrization and computes
    the same: initial u, v, normalised weights, gradients and advanced u, v are bitwise
    torch's, for linear, convolutional and transposed-convolutional layers, in training mode
    with a graph (D's step), without one (G's step) and in eval mode; its state dict has
    torch's keys, so checkpoints of either load into the other."""
    def net():
        return nn.Sequential(nn.Conv2d(3, 8, 4, 2, 1), nn.LeakyReLU(0.2), nn.ConvTranspose2d(8, 6, 4, 2, 1),
                             nn.Flatten(), nn.Linear(6 * 8 * 8, 1)).to(dtype)

    torch.manual_seed(0)
    ref = net()
    for m in ref:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.utils.parametrizations.spectral_norm(m)
    torch.manual_seed(0)
    ours = spectral_normalize(net())
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert sum(isinstance(m, SpectralNorm) for m in ours.modules()) == 3
    x = torch.randn(5, 3, 8, 8, dtype=dtype)

    def same_state():
        return all(torch.equal(a, b) for a, b in zip(ref.state_dict().values(), ours.state_dict().values()))

    for _ in range(3):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            losses = [d(x).float().square().sum() for d in (ref, ours)]
        for loss in losses:
            loss.backward()
        assert torch.equal(*losses) and same_state()
        assert all(torch.equal(a.grad, b.grad) for a, b in zip(ref.parameters(), ours.parameters()))
        with torch.no_grad():                             # training mode without a graph: iterates
            assert torch.equal(ref(x), ours(x)) and same_state()
            for a, b in zip(ref.parameters(), ours.parameters()):
                a -= 0.1 * a.grad
                b -= 0.1 * b.grad
                a.grad = b.grad = None
    for d in (ref, ours):
        d.eval().requires_grad_(False)                    # as in G's step: no iteration, no graph
    assert torch.equal(ref(x), ours(x)) and same_state()
    ref.load_state_dict(ours.state_dict())
    ours.load_state_dict(ref.state_dict())


# ---------------------------------------------------------------------- gradient penalties
def test_gradient_penalty_of_a_linear_d_is_half_the_squared_weight_norm():
    D = nn.Linear(5, 1).double()
    x = torch.randn(7, 5, dtype=torch.float64)
    gp = gradient_penalty(lambda t: D(t).squeeze(1), x)
    assert gp.item() == pytest.approx(0.5 * D.weight.square().sum().item(), rel=1e-12)


def test_gradient_penalty_and_its_gradient_against_finite_differences():
    """R1 = 1/2 E||∇_x f(x)||² for a small nonlinear D, and d R1 / d θ, against central
    differences in float64 (relative error below 1e-6)."""
    torch.manual_seed(2)
    D = MLPDiscriminator((3,), hidden=6, depth=2).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    params = list(D.parameters())
    gp = gradient_penalty(D, x)
    grads = [torch.zeros_like(p) if g is None else g
             for p, g in zip(params, torch.autograd.grad(gp, params, allow_unused=True))]   # D's last bias: unused

    def r1_of(x_):                                         # closed form through autograd, row by row
        rows = []
        for xi in x_:
            xi = xi.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(D(xi[None]).sum(), xi)
            rows.append(0.5 * g.square().sum())
        return torch.stack(rows).mean()
    assert gp.item() == pytest.approx(r1_of(x).item(), rel=1e-10)
    eps = 1e-6
    for p, g in zip(params, grads):
        flat = p.data.view(-1)
        for i in range(min(flat.numel(), 4)):
            old = flat[i].item()
            flat[i] = old + eps
            up = gradient_penalty(D, x).item()
            flat[i] = old - eps
            down = gradient_penalty(D, x).item()
            flat[i] = old
            fd = (up - down) / (2 * eps)
            assert g.view(-1)[i].item() == pytest.approx(fd, rel=1e-6, abs=1e-9)


# ---------------------------------------------------------------------- packing
def test_pack_concatenates_consecutive_examples():
    x = torch.arange(4 * 2, dtype=torch.float32).view(4, 2)
    assert pack(x, 2).tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    img = torch.arange(4 * 1 * 2 * 2, dtype=torch.float32).view(4, 1, 2, 2)
    p = pack(img, 2)
    assert p.shape == (2, 2, 2, 2) and torch.equal(p[1, 1], img[3, 0])
    assert packed_shape((1, 28, 28), 3) == (3, 28, 28) and packed_shape((2,), 4) == (8,)
    assert pack(x, 1) is x


# ---------------------------------------------------------------------- DiffAugment
def test_diff_augment_transforms_and_is_differentiable():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 16, 16, requires_grad=True)
    y = diff_augment(x, ["translation"], g)
    # a translation moves pixels: every output pixel is an input pixel of its image or zero
    for i in range(6):
        vals = set(x[i].detach().flatten().tolist()) | {0.0}
        assert set(y[i].detach().flatten().tolist()) <= vals
    y = diff_augment(x, ["cutout"], torch.Generator().manual_seed(1))
    zeros = (y.detach() == 0).all(dim=1).flatten(1).sum(1)
    # an 8×8 square centred anywhere in the image: 16 (a quarter, at a corner) to 64 pixels
    assert ((zeros >= 16) & (zeros <= 64)).all() and (zeros == 64).any()
    y = diff_augment(x, ["color", "translation", "cutout"], torch.Generator().manual_seed(2))
    (gx,) = torch.autograd.grad(y.sum(), x)
    assert gx.abs().sum() > 0                              # gradients reach G's images through it
    a = diff_augment(x, ["color", "translation", "cutout"], torch.Generator().manual_seed(2))
    assert torch.equal(a, y)                               # reproducible from its stream


def test_diff_augment_of_a_slice_is_that_slice_of_the_whole_batch():
    """Under torchrun each process holds a slice of the global batch: the transforms are
    drawn for the whole batch, so the processes' augmented slices, put together, are the
    batch one process augments, and every process's stream advances alike."""
    x = torch.rand(8, 3, 16, 16)
    policy = ["color", "translation", "cutout"]
    whole = diff_augment(x, policy, torch.Generator().manual_seed(3))
    gens = [torch.Generator().manual_seed(3) for _ in range(2)]
    parts = [diff_augment(x[r * 4:(r + 1) * 4], policy, gens[r], (r, 2)) for r in range(2)]
    assert torch.equal(torch.cat(parts), whole)
    assert torch.equal(gens[0].get_state(), gens[1].get_state())
    assert not torch.equal(parts[0], diff_augment(x[:4], policy, torch.Generator().manual_seed(3)))


# ---------------------------------------------------------------------- in training
STAB = ["--ema-kimg", "0.5", "--spectral-norm", "--r1", "1.0", "--r2", "0.5", "--reg-every", "2", "--pack", "2"]
IMAGES = ["--model", "dcgan", "--data", "fake:1,28,28", "--width", "8", "--z-dim", "16", "--batch-size", "8",
          "--augment", "color,translation,cutout"]


@pytest.mark.parametrize("extra", [[], IMAGES, [*IMAGES, "--precision", "bf16"]])
def test_stabilisers_resume_bitwise(tmp_path, extra):
    common = [*STAB, *extra, "--eval-every", "0", "--lr-schedule", "constant", "--checkpoint-every", "5",
              "--quiet"]
    assert main(["train", "--out", str(tmp_path / "full"), "--steps", "10", *common]) == 0
    assert main(["train", "--out", str(tmp_path / "split"), "--steps", "5", *common]) == 0
    assert main(["train", "--resume", str(tmp_path / "split"), "--steps", "10", "--quiet"]) == 0
    a = load_checkpoint(list_checkpoints(tmp_path / "full")[-1])
    b = load_checkpoint(list_checkpoints(tmp_path / "split")[-1])
    assert a["step"] == b["step"] == 10 and "G_ema" in a and a["G_ema"]["images"] == 10 * (8 if extra else 256)
    for net in ("G", "D"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)
            assert torch.isfinite(a[net][k].float()).all()
    for k in a["G_ema"]["model"]:
        assert torch.equal(a["G_ema"]["model"][k], b["G_ema"]["model"][k]), k
    assert any("parametrizations" in k for k in a["D"])     # spectral norm is in D's state
    # the EMA generator is what gankit samples from, unless asked otherwise
    assert main(["sample", str(tmp_path / "full"), "--n", "4", "--out", str(tmp_path / "e.npy")]) == 0
    assert main(["sample", str(tmp_path / "full"), "--n", "4", "--out", str(tmp_path / "r.npy"),
                 "--weights", "raw"]) == 0
    import numpy as np
    assert not np.array_equal(np.load(tmp_path / "e.npy"), np.load(tmp_path / "r.npy"))
    assert math.isfinite(float(np.load(tmp_path / "e.npy").sum()))


def test_stabiliser_options_are_checked(tmp_path, capsys):
    for argv, msg in ((["--augment", "rotate"], "augment takes"), (["--pack", "3"], "multiple of pack"),
                      (["--r1", "1", "--update", "simultaneous"], "alternating"),
                      (["--r1", "0", "--r2", "0.5", "--update", "simultaneous"], "r1 0, r2 0.5 (--update alternating"),
                      (["--augment", "translation"], "the examples of ring8 are not images")):
        assert main(["train", "--out", str(tmp_path / "x"), *argv]) == 2
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1
    assert main(["train", "--out", str(tmp_path / "plain"), "--steps", "2", "--eval-every", "0", "--quiet"]) == 0
    assert main(["sample", str(tmp_path / "plain"), "--n", "1", "--out", str(tmp_path / "s.npy"),
                 "--weights", "ema"]) == 2
    assert "has no EMA generator" in capsys.readouterr().err


@pytest.mark.parametrize("r1, in_g_step", [(0.0, False), (1.0, False), (0.0, True)])
def test_spectral_norm_power_iteration_once_per_d_step(r1, in_g_step, monkeypatch):
    """D runs on real and generated data (and, with R1, once more for the penalty) on the
    same weights: the spectral-norm parametrization runs once per layer per D step, with one
    power iteration; G's step normalises by σ = uᵀWv with those u, v and does not iterate
    (unless ``sn_iterate_in_g_step``, torch's own behaviour); the weights stay σ ≈ 1."""
    from gankit.data import make_source
    from gankit.models.mlp import MLPDiscriminator, MLPGenerator
    from gankit.training.loop import GANTrainer
    from gankit.training.regularizers import SpectralNorm, Stabilizers, spectral_normalize

    torch.manual_seed(0)
    G, D = MLPGenerator(4, (2,), hidden=16, depth=2), spectral_normalize(MLPDiscriminator((2,), hidden=16, depth=2))
    sn = [m for m in D.modules() if isinstance(m, SpectralNorm)]
    t = GANTrainer(G, D, torch.optim.SGD(G.parameters(), lr=0.01), torch.optim.SGD(D.parameters(), lr=0.01),
                   make_source("ring8", torch.device("cpu")), "nonsaturating", 1, 8, 4, "normal",
                   torch.Generator().manual_seed(1), torch.Generator().manual_seed(2), stab=Stabilizers(r1=r1),
                   sn_iterate_in_g_step=in_g_step)
    calls, iterations = [], []
    forward, power = SpectralNorm.forward, SpectralNorm._power_method
    monkeypatch.setattr(SpectralNorm, "forward", lambda self, w: calls.append(1) or forward(self, w))
    monkeypatch.setattr(SpectralNorm, "_power_method", lambda self, w, n: iterations.append(n) or power(self, w, n))
    t.discriminator_step()
    assert len(calls) == len(iterations) == len(sn) >= 2 and set(iterations) == {1}
    uv = [(m._u.clone(), m._v.clone()) for m in sn]
    seen = []
    monkeypatch.setattr(SpectralNorm, "forward", lambda self, w: seen.append((self, w.detach().clone(), forward(
        self, w).detach())) or seen[-1][2])
    t.generator_step()
    assert len(seen) == len(sn) and len(iterations) == len(sn) * (2 if in_g_step else 1)
    assert all(m.training for m in sn)                  # the parametrizations' mode is restored
    if not in_g_step:                                   # u, v unchanged; W / (uᵀWv) with them
        for (m, w, w_sn), (u, v) in zip(seen, uv):
            assert torch.equal(m._u, u) and torch.equal(m._v, v)
            torch.testing.assert_close(w_sn, w / torch.vdot(u, torch.mv(w.flatten(1), v)), rtol=1e-6, atol=0)
    monkeypatch.setattr(SpectralNorm, "forward", forward)
    for m in D.modules():
        if isinstance(m, torch.nn.Linear) and hasattr(m, "parametrizations"):
            sigma = torch.linalg.matrix_norm(m.weight.detach().double(), ord=2)
            assert float(sigma) == pytest.approx(1.0, abs=0.05)   # power iteration: a few steps in
