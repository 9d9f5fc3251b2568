"""The kernel-replacing layers compute what the torch layers they extend compute.

In float64 the replacements must agree with torch's convolutions to rounding (1e-12
relative); in bf16 autocast, within bf16 rounding of the inputs (2^-8 relative, stated
per test), with the same output dtype and layout.
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gankit.models import layers as L
from gankit.models.dcgan import DCGANDiscriminator, DCGANGenerator

F64 = torch.float64


def _close(a, b, rel):
    scale = b.abs().max().item()
    assert (a - b).abs().max().item() <= rel * scale, ((a - b).abs().max().item(), scale)


def _grads(fn, x, w, g):
    return torch.autograd.grad(fn(x, w), (x, w), g)


# (n, c_in, size, c_out) for D's conv; chosen to reach every backward branch:
CONV_CASES = [
    (3, 1, 8, 16),     # 1 input channel: input gradient by product + col2im
    (2, 3, 10, 5),     # 3 input channels: the same; weight gradient by oneDNN
    (2, 64, 8, 40),    # weight gradient by im2col + product
    (2, 40, 6, 64),    # 40 channels: 640 patch columns, im2col path; input gradient by oneDNN
    (2, 16, 8, 8),     # 16 channels: 256 patch columns, oneDNN for both
    (2, 256, 4, 8),    # 4096 patch columns: the forward by im2col + product too
]


@pytest.mark.parametrize("n,c_in,size,c_out", CONV_CASES)
def test_strided_conv_function_equals_conv2d_float64(n, c_in, size, c_out):
    torch.manual_seed(0)
    x = torch.randn(n, c_in, size, size, dtype=F64).contiguous(memory_format=torch.channels_last).requires_grad_()
    w = torch.randn(c_out, c_in, 4, 4, dtype=F64, requires_grad=True)
    ref = F.conv2d(x, w, None, 2, 1)
    out = L._ConvS2K4.apply(x, w)
    _close(out, ref, 1e-12)
    g = torch.randn_like(ref)
    for a, b in zip(_grads(L._ConvS2K4.apply, x, w, g), _grads(lambda x, w: F.conv2d(x, w, None, 2, 1), x, w, g)):
        _close(a, b, 1e-12)


@pytest.mark.parametrize("n,c_out,size,c_in", CONV_CASES)
def test_strided_conv_transpose_function_equals_torch_float64(n, c_out, size, c_in):
    """G's mirror image of each case: c_in -> c_out channels, size/2 -> size pixels."""
    torch.manual_seed(1)
    x = torch.randn(n, c_in, size // 2, size // 2, dtype=F64).contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    w = torch.randn(c_in, c_out, 4, 4, dtype=F64, requires_grad=True)
    ref = F.conv_transpose2d(x, w, None, 2, 1)
    out = L._ConvTransposeS2K4.apply(x, w)
    assert out.shape == ref.shape
    _close(out, ref, 1e-12)
    g = torch.randn_like(ref)
    ours = _grads(L._ConvTransposeS2K4.apply, x, w, g)
    theirs = _grads(lambda x, w: F.conv_transpose2d(x, w, None, 2, 1), x, w, g)
    for a, b in zip(ours, theirs):
        _close(a, b, 1e-12)


@pytest.mark.parametrize("n,c_in,size,c_out", CONV_CASES)
def test_outputs_take_in_place_activations(n, c_in, size, c_out):
    """Both Functions return a fresh tensor, not a view, on every path, so an
    in-place activation on it (as DCGAN's LeakyReLU(inplace=True)) is allowed and gives
    the gradients of the out-of-place one."""
    torch.manual_seed(3)
    cases = [(L._ConvS2K4.apply, torch.randn(n, c_in, size, size, dtype=F64), torch.randn(c_out, c_in, 4, 4, dtype=F64)),
             (L._ConvTransposeS2K4.apply, torch.randn(n, c_out, size // 2, size // 2, dtype=F64),
              torch.randn(c_out, c_in, 4, 4, dtype=F64))]
    for fn, x, w in cases:
        x = x.contiguous(memory_format=torch.channels_last).requires_grad_()
        w.requires_grad_()
        y = fn(x, w)
        assert y._base is None
        g = torch.randn_like(y)
        ours = torch.autograd.grad(F.leaky_relu_(fn(x, w), 0.2), (x, w), g)
        theirs = torch.autograd.grad(F.leaky_relu(fn(x, w), 0.2), (x, w), g)
        for a, b in zip(ours, theirs):
            assert torch.equal(a, b)


def test_cases_reach_every_branch():
    """The parametrised cases above are not all on one path."""
    small = [c for _, c, _, _ in CONV_CASES if c <= L.SMALL_CHANNELS]
    patch = [(n, c, s) for n, c, s, _ in CONV_CASES if L._patch_weight_grad(c, n * (s // 2) ** 2)]
    onednn = [(n, c, s) for n, c, s, _ in CONV_CASES if not L._patch_weight_grad(c, n * (s // 2) ** 2)]
    forward = [(n, c, s) for n, c, s, _ in CONV_CASES if L._patch_forward(c, n * (s // 2) ** 2)]
    assert small and patch and onednn and forward


def test_point_and_full_layers_equal_torch_float64():
    torch.manual_seed(2)
    up, down = L.PointConvTranspose2d(7, 5, 4, 1, 0).double(), L.FullConv2d(5, 3, 4, 1, 0).double()
    plain_up = nn.ConvTranspose2d(7, 5, 4, 1, 0).double()
    plain_down = nn.Conv2d(5, 3, 4, 1, 0).double()
    plain_up.load_state_dict(up.state_dict())
    plain_down.load_state_dict(down.state_dict())
    z = torch.randn(6, 7, 1, 1, dtype=F64, requires_grad=True)
    for fmt in (torch.contiguous_format, torch.channels_last):
        y, y_ref = up(z), plain_up(z)
        _close(y, y_ref, 1e-12)
        h = y_ref.detach().contiguous(memory_format=fmt).requires_grad_()
        _close(down(h), plain_down(h), 1e-12)
        g_ours = torch.autograd.grad(down(up(z)).sum(), [z, *up.parameters(), *down.parameters()])
        g_ref = torch.autograd.grad(plain_down(plain_up(z)).sum(), [z, *plain_up.parameters(), *plain_down.parameters()])
        for a, b in zip(g_ours, g_ref):
            _close(a, b, 1e-12)
    # Inputs the product does not cover run torch's convolution: bitwise the same.
    big = torch.randn(2, 5, 6, 6, dtype=F64)
    assert torch.equal(down(big), plain_down(big))
    wide = torch.randn(2, 7, 2, 2, dtype=F64)
    assert torch.equal(up(wide), plain_up(wide))


@pytest.mark.parametrize("channels,size", [(1, 28), (3, 64)])
def test_dcgan_in_bf16_as_accurate_as_torch_layers(channels, size):
    """A DCGAN forward and backward in bf16 autocast, against the same model in float64:
    the mean relative error of the output, logits and every parameter gradient is at most
    1.5 times that of torch's own layers in bf16, and at least 1e-3 (bf16 really ran; fp32
    would be ~1e-6). Gradients through BatchNorm on 8 examples lose most of bf16's
    precision for both (torch's own reach 5-47 % on single tensors), so only the comparison
    is meaningful. In fp32 the model agrees with torch's layers to 1e-4 relative."""
    torch.manual_seed(3)
    G, D = DCGANGenerator(100, channels, size, 16), DCGANDiscriminator(channels, size, 16)
    G0, D0 = copy.deepcopy(G), copy.deepcopy(D)
    L.plain_torch_layers(G0)
    L.plain_torch_layers(D0)
    G64, D64 = copy.deepcopy(G0).double(), copy.deepcopy(D0).double()
    for m in (G, D, G0, D0):
        m.to(memory_format=torch.channels_last)
    z = torch.randn(8, 100)

    def run(G, D, bf16, z):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            x = G(z)
            logits = D(x)
        grads = torch.autograd.grad(logits.double().square().sum(), [*G.parameters(), *D.parameters()])
        return [x, logits, *grads]

    exact = run(G64, D64, False, z.double())
    ours, theirs = run(G, D, True, z), run(G0, D0, True, z)
    assert ours[0].dtype == theirs[0].dtype == torch.bfloat16
    assert ours[0].is_contiguous(memory_format=torch.channels_last)

    def err(ts):
        return sum(((t.double() - e).abs().max() / e.abs().max()).item() for t, e in zip(ts, exact)) / len(exact)

    assert 1e-3 <= err(ours) <= 1.5 * err(theirs), (err(ours), err(theirs))
    # fp32: strided layers fall back to torch's kernels (bitwise); the point/full layers
    # are products summing in another order.
    ours32, theirs32 = run(G, D, False, z), run(G0, D0, False, z)
    for a, b in zip(ours32, theirs32):
        _close(a, b, 1e-4)


def test_state_dict_and_plain_layers():
    G, D = DCGANGenerator(16, 1, 28, 8), DCGANDiscriminator(1, 28, 8)
    keys = (list(G.state_dict()), list(D.state_dict()))
    assert any(isinstance(m, L.FAST_LAYERS) for m in G.modules())
    L.plain_torch_layers(G)
    L.plain_torch_layers(D)
    assert not any(isinstance(m, L.FAST_LAYERS) for m in [*G.modules(), *D.modules()])
    assert {type(m) for m in G.modules()} >= {nn.ConvTranspose2d}
    assert {type(m) for m in D.modules()} >= {nn.Conv2d}
    assert (list(G.state_dict()), list(D.state_dict())) == keys


def test_strided_layers_refuse_mixed_dtypes_like_torch():
    """Without autocast, a bf16 input to an fp32 layer is torch's error, not a silent cast;
    a bf16 model without autocast runs the replacement and matches torch's layer."""
    torch.manual_seed(4)
    conv, up = L.StridedConv2d(8, 4, 4, 2, 1, bias=False), L.StridedConvTranspose2d(4, 2, 4, 2, 1, bias=False)
    x = torch.randn(2, 8, 8, 8).to(torch.bfloat16)
    with pytest.raises(RuntimeError):
        conv(x)
    conv, up = conv.bfloat16(), up.bfloat16()
    plain_conv, plain_up = copy.deepcopy(conv), copy.deepcopy(up)
    L.plain_torch_layers(plain_conv)
    L.plain_torch_layers(plain_up)
    y, y0 = up(conv(x)), plain_up(plain_conv(x))
    assert y.dtype == torch.bfloat16
    _close(y.float(), y0.float(), 0.02)   # bf16 rounding (2^-8) through two layers
