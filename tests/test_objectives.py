"""The objective against its closed forms, in float64, with two-sided tolerances."""

import math

import pytest
import torch

from gankit import objectives


def sig(x):
    return 1 / (1 + math.exp(-x))


@pytest.fixture
def logits():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(64, generator=g, dtype=torch.float64) * 3
    fake = torch.randn(64, generator=g, dtype=torch.float64) * 3 - 1
    return real, fake


def test_value_matches_closed_form(logits):
    real, fake = logits
    expected = sum(math.log(sig(r)) for r in real.tolist()) / 64 + sum(
        math.log(1 - sig(f)) for f in fake.tolist()) / 64
    assert objectives.value(real, fake).item() == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_discriminator_loss_is_minus_value(logits):
    real, fake = logits
    assert objectives.discriminator_loss(real, fake).item() == pytest.approx(
        -objectives.value(real, fake).item(), rel=1e-12, abs=1e-12)


def test_generator_losses_match_closed_form(logits):
    _, fake = logits
    minimax = sum(math.log(1 - sig(f)) for f in fake.tolist()) / 64
    nonsat = -sum(math.log(sig(f)) for f in fake.tolist()) / 64
    assert objectives.generator_loss(fake, "minimax").item() == pytest.approx(minimax, rel=1e-12, abs=1e-12)
    assert objectives.generator_loss(fake, "nonsaturating").item() == pytest.approx(nonsat, rel=1e-12, abs=1e-12)


def test_optimum_value_is_minus_log4():
    # D = 1/2 everywhere (logit 0): V = 2 log(1/2) = -log 4.
    z = torch.zeros(10, dtype=torch.float64)
    assert objectives.value(z, z).item() == pytest.approx(-math.log(4), rel=1e-14, abs=1e-14)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_for_extreme_logits(dtype):
    big = torch.tensor([1e4, -1e4, 0.0], dtype=dtype, requires_grad=True)
    for out in (objectives.value(big, big), objectives.discriminator_loss(big, big),
                objectives.generator_loss(big, "minimax"), objectives.generator_loss(big, "nonsaturating")):
        assert torch.isfinite(out)
        (g,) = torch.autograd.grad(out, big)
        assert torch.isfinite(g).all()
    # log D at logit -1e4 is -1e4 exactly (softplus is linear there), not -inf.
    assert objectives.log_d(torch.tensor([-1e4], dtype=dtype)).item() == pytest.approx(-1e4, rel=1e-6)
    assert objectives.log_one_minus_d(torch.tensor([1e4], dtype=dtype)).item() == pytest.approx(-1e4, rel=1e-6)


def test_saturation_gradients_at_minus_10():
    """At f = -10 (D confidently rejects the fake) the minimax gradient almost vanishes."""
    m = 4
    f = torch.full((m,), -10.0, dtype=torch.float64, requires_grad=True)
    (g_mm,) = torch.autograd.grad(objectives.generator_loss(f, "minimax"), f)
    (g_ns,) = torch.autograd.grad(objectives.generator_loss(f, "nonsaturating"), f)
    s = sig(-10.0)  # 4.54e-5
    assert g_mm.tolist() == pytest.approx([-s / m] * m, rel=1e-9)
    assert g_ns.tolist() == pytest.approx([-(1 - s) / m] * m, rel=1e-9)
    assert abs(g_ns[0] / g_mm[0]) == pytest.approx((1 - s) / s, rel=1e-9)  # ~22,000x larger


def test_discriminator_loss_gradients():
    """dL_D/df_real = -(1 - D(x))/m, dL_D/df_fake = D(G(z))/m."""
    real = torch.tensor([0.3, -2.0], dtype=torch.float64, requires_grad=True)
    fake = torch.tensor([1.5, -0.7], dtype=torch.float64, requires_grad=True)
    gr, gf = torch.autograd.grad(objectives.discriminator_loss(real, fake), (real, fake))
    assert gr.tolist() == pytest.approx([-(1 - sig(0.3)) / 2, -(1 - sig(-2.0)) / 2], rel=1e-12)
    assert gf.tolist() == pytest.approx([sig(1.5) / 2, sig(-0.7) / 2], rel=1e-12)


def test_unknown_generator_loss():
    with pytest.raises(ValueError, match="minimax"):
        objectives.generator_loss(torch.zeros(2), "wasserstein")
