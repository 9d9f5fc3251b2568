
import pytest
import torch
from torch import nn

from gankit.config import Config
from gankit.errors import GankitError
from gankit.models import build_models
from gankit.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gankit.models.paper_mnist import Dropout, Maxout, PaperMNISTDiscriminator, PaperMNISTGenerator


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_shapes(size, channels):
    torch.manual_seed(0)
    G, D = DCGANGenerator(16, channels, size, width=8), DCGANDiscriminator(channels, size, width=8)
    x = G(torch.randn(5, 16))
    assert x.shape == (5, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1
    assert D(x).shape == (5,)


def test_dcgan_structure_and_init():
    torch.manual_seed(0)
    G, D = DCGANGenerator(100, 3, 64, 64), DCGANDiscriminator(3, 64, 64)
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    # No BatchNorm right after D's first convolution; BatchNorm after every other hidden one.
    layers = list(D.net)
    assert isinstance(layers[1], nn.LeakyReLU) and layers[1].negative_slope == 0.2
    assert sum(isinstance(m, nn.BatchNorm2d) for m in D.modules()) == len(convs) - 1
    # No pooling, no fully connected hidden layer: the one Linear is the logit (a full convolution).
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) for m in D.modules())
    assert [m for m in D.modules() if isinstance(m, nn.Linear)] == [layers[-1]] and layers[-1].out_features == 1
    big = [m.weight for m in list(G.modules()) + list(D.modules())
           if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and m.weight.numel() > 100_000]
    for w in big:
        assert w.mean().item() == pytest.approx(0.0, abs=0.002)
        assert w.std().item() == pytest.approx(0.02, rel=0.02)
    assert isinstance(list(G.net)[-1], nn.Tanh)


def test_paper_mnist_model():
    torch.manual_seed(0)
    G, D = PaperMNISTGenerator(100), PaperMNISTDiscriminator()
    x = G(torch.rand(4, 100) * 2 - 1)
    assert x.shape == (4, 1, 28, 28) and x.min() >= 0 and x.max() <= 1
    maxouts = [m for m in D.modules() if isinstance(m, Maxout)]
    assert [(m.units, m.pieces) for m in maxouts] == [(240, 5), (240, 5)]
    drops = [m.p for m in D.modules() if isinstance(m, Dropout)]
    assert drops == pytest.approx([0.2, 0.5, 0.5], abs=1e-12)
    assert D(x).shape == (4,)
    D.eval()
    assert torch.equal(D(x), D(x))   # no dropout in eval mode
    hidden = [m for m in G.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in hidden] == [1200, 1200, 784]
    assert hidden[0].weight.abs().max().item() <= 0.05


def test_maxout_is_a_max_over_pieces():
    m = Maxout(3, 2, 4)
    x = torch.randn(5, 3)
    full = m.linear(x).view(5, 2, 4)
    assert torch.equal(m(x), full.max(2).values)


def test_model_data_mismatch_is_a_user_error():
    with pytest.raises(GankitError, match="needs image data"):
        build_models(Config(model="dcgan"), (2,))
    with pytest.raises(GankitError, match="square images of 28, 32, 64"):
        build_models(Config(model="dcgan"), (3, 48, 48))


def test_dropout_keeps_the_stated_share_and_scales():
    torch.manual_seed(0)
    d = Dropout(0.2).train()
    y = d(torch.ones(1000, 1000))
    kept = (y > 0).float().mean().item()
    assert kept == pytest.approx(0.8, abs=0.002)             # SE 0.0004
    assert set(torch.unique(y).tolist()) == {0.0, 1.25}
    assert y.mean().item() == pytest.approx(1.0, abs=0.003)  # unbiased
    x = torch.randn(5, 3, requires_grad=True)
    d.eval()
    assert torch.equal(d(x), x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dropout_mask_is_rand_ge_p_bitwise(dtype):
    """The mask is ``rand >= p`` from the global stream, scaled by 1/(1 - p): bitwise the
    forward and backward of ``x * keep * scale`` (so seeded runs are unchanged by the form)."""
    d = Dropout(0.5).train()
    x = torch.randn(64, 240, dtype=dtype, requires_grad=True)
    g = torch.randn(64, 240, dtype=dtype)
    torch.manual_seed(3)
    y = d(x)
    y.backward(g)
    torch.manual_seed(3)
    keep = (torch.rand(64, 240) >= 0.5).to(dtype)
    assert torch.equal(y, x.detach() * keep * 2.0)
    assert torch.equal(x.grad, g * 2.0 * keep)
    assert 0.4 < keep.float().mean().item() < 0.6   # the mask is not all kept or all dropped
    with pytest.raises(ValueError, match="in-place"):
        Dropout(0.5, inplace=True).train()(x.detach())
