"""DCGAN's first G layer and last D layer are the matrix products they are (nn.Linear),
computing what the transposed convolution and the full convolution compute, and loading
the weights of checkpoints written when they were convolutions."""

import pytest
import torch
from torch import nn

from gankit.models.dcgan import DCGANDiscriminator, DCGANGenerator, LogitHead, NoiseProjection

F64 = torch.float64


def _close(a, b, rel=1e-12):
    scale = b.abs().max().item()
    assert (a - b).abs().max().item() <= rel * scale, ((a - b).abs().max().item(), scale)


def test_noise_projection_is_a_transposed_convolution_float64():
    torch.manual_seed(0)
    conv = nn.ConvTranspose2d(7, 5, 4, 1, 0, bias=False).double()
    lin = NoiseProjection(7, 5, 4).double()
    lin.load_state_dict(conv.state_dict())           # a 4-D weight, reshaped on load
    assert lin.weight.shape == (80, 7)
    z = torch.randn(6, 7, dtype=F64, requires_grad=True)
    y, y_ref = lin(z), conv(z[:, :, None, None])
    assert y.shape == y_ref.shape == (6, 5, 4, 4) and y.is_contiguous(memory_format=torch.channels_last)
    _close(y, y_ref)
    g = torch.randn_like(y_ref)
    gz, gw = torch.autograd.grad(y, (z, lin.weight), g)
    gz_ref, gw_ref = torch.autograd.grad(y_ref, (z, conv.weight), g)
    _close(gz, gz_ref)
    _close(lin.to_conv(gw), gw_ref)
    assert torch.equal(lin.to_conv(lin.weight), conv.weight)


def test_logit_head_is_a_full_convolution_float64():
    torch.manual_seed(1)
    conv = nn.Conv2d(5, 1, 4, 1, 0, bias=False).double()
    lin = LogitHead(5, 4).double()
    lin.load_state_dict(conv.state_dict())
    for fmt in (torch.contiguous_format, torch.channels_last):
        x = torch.randn(6, 5, 4, 4, dtype=F64).contiguous(memory_format=fmt).requires_grad_()
        y, y_ref = lin(x), conv(x).flatten(1)
        _close(y, y_ref)
        gx, gw = torch.autograd.grad(y.sum(), (x, lin.weight))
        gx_ref, gw_ref = torch.autograd.grad(y_ref.sum(), (x, conv.weight))
        _close(gx, gx_ref)
        _close(lin.to_conv(gw), gw_ref)


def test_initialisation_draws_the_convolutions_numbers():
    """The product layers are initialised N(0, 0.02) in the convolution's shape and order:
    the same initial function as when they were convolutions. Golden values: the weights
    of the convolutional form (gankit before this form), seed 3, to float32 precision."""
    torch.manual_seed(3)
    w = DCGANGenerator(16, 1, 28, 8).net[0]
    w = w.to_conv(w.weight)
    assert w[0, 0, 0, :4].tolist() == pytest.approx([0.0029915806, -0.0167544298, 0.0036539345, 0.0028832653],
                                                    rel=1e-6)
    assert w[15, 15, 6, 3:].tolist() == pytest.approx([-0.0101986248, -0.0050966470, 0.0408440195, 0.0078713465],
                                                      rel=1e-6)
    torch.manual_seed(3)
    head = DCGANDiscriminator(1, 28, 8).net[-1]
    assert head.to_conv(head.weight)[0, :2, 0, 0].tolist() == pytest.approx([0.0054365234, -0.0050216177], rel=1e-6)


def test_old_checkpoint_weights_load():
    """A state dict whose first G / last D weights are 4-D (written before) loads, and the
    models compute the same function as the convolutional form."""
    torch.manual_seed(4)
    G, D = DCGANGenerator(16, 1, 28, 8), DCGANDiscriminator(1, 28, 8)
    old_g = {k: (G.net[0].to_conv(v) if k == "net.0.weight" else v) for k, v in G.state_dict().items()}
    last = f"net.{len(D.net) - 1}.weight"
    old_d = {k: (D.net[-1].to_conv(v) if k == last else v) for k, v in D.state_dict().items()}
    assert old_g["net.0.weight"].ndim == 4 and old_d[last].ndim == 4
    G2, D2 = DCGANGenerator(16, 1, 28, 8), DCGANDiscriminator(1, 28, 8)
    G2.load_state_dict(old_g)
    D2.load_state_dict(old_d)
    G.eval(), G2.eval(), D.eval(), D2.eval()
    z = torch.randn(3, 16)
    assert torch.equal(D2(G2(z)), D(G(z)))


@pytest.mark.parametrize("size", [28, 32, 64])
def test_d_without_normalisation_judges_each_example_alone(size):
    """--d-norm none: no BatchNorm in D and a bias on each convolution that had one, so in
    training mode D's logit for an example does not depend on the rest of the batch (with
    BatchNorm it does); the convolutions are the same layers, drawn N(0, 0.02)."""
    torch.manual_seed(0)
    plain = DCGANDiscriminator(1, size, 8, norm="none").double().train()
    torch.manual_seed(0)
    batch = DCGANDiscriminator(1, size, 8).double().train()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    convs = [m for m in plain.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].bias is None and all(c.bias is not None and not c.bias.any() for c in convs[1:])
    assert sum(isinstance(m, nn.BatchNorm2d) for m in batch.modules()) == len(convs) - 1
    assert [c.weight.shape for c in convs] == [m.weight.shape for m in batch.modules() if isinstance(m, nn.Conv2d)]
    assert all(abs(c.weight.std().item() - 0.02) < 0.004 for c in convs[1:])   # ± 20 %: 1,024+ draws each
    x = torch.randn(5, 1, size, size, dtype=F64)
    together = plain(x)
    alone = torch.cat([plain(x[i:i + 1]) for i in range(5)])
    torch.testing.assert_close(together, alone, rtol=1e-12, atol=1e-15)
    assert (batch(x)[:2] - batch(x[:2])).abs().max() > 1e-3     # BatchNorm's D: the batch moves each logit
    with pytest.raises(ValueError, match="normalisation"):
        DCGANDiscriminator(1, size, 8, norm="layer")
