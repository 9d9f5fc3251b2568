"""The CPU kernel op (gankit.ops) computes what the torch layers it replaces compute,
single and double backward.

In float64 the replacements must agree with torch's convolutions to rounding (1e-12
relative); in bf16 autocast, within bf16 rounding of the inputs (2^-8 relative, stated
per test), with the same output dtype and layout.
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gankit import ops
from gankit.bench.reference import example_layers
from gankit.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gankit.ops import conv_s2k4 as L

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
    out = L.ConvS2K4.apply(x, w)
    _close(out, ref, 1e-12)
    g = torch.randn_like(ref)
    for a, b in zip(_grads(L.ConvS2K4.apply, x, w, g), _grads(lambda x, w: F.conv2d(x, w, None, 2, 1), x, w, g)):
        _close(a, b, 1e-12)


@pytest.mark.parametrize("n,c_out,size,c_in", CONV_CASES)
def test_strided_conv_transpose_function_equals_torch_float64(n, c_out, size, c_in):
    """G's mirror image of each case: c_in -> c_out channels, size/2 -> size pixels."""
    torch.manual_seed(1)
    x = torch.randn(n, c_in, size // 2, size // 2, dtype=F64).contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    w = torch.randn(c_in, c_out, 4, 4, dtype=F64, requires_grad=True)
    ref = F.conv_transpose2d(x, w, None, 2, 1)
    out = L.ConvTransposeS2K4.apply(x, w)
    assert out.shape == ref.shape
    _close(out, ref, 1e-12)
    g = torch.randn_like(ref)
    ours = _grads(L.ConvTransposeS2K4.apply, x, w, g)
    theirs = _grads(lambda x, w: F.conv_transpose2d(x, w, None, 2, 1), x, w, g)
    for a, b in zip(ours, theirs):
        _close(a, b, 1e-12)


@pytest.mark.parametrize("n,c_in,size,c_out", CONV_CASES)
def test_outputs_take_in_place_activations(n, c_in, size, c_out):
    """Both Functions return a fresh tensor, not a view, on every path, so an
    in-place activation on it (as DCGAN's LeakyReLU(inplace=True)) is allowed and gives
    the gradients of the out-of-place one."""
    torch.manual_seed(3)
    cases = [(L.ConvS2K4.apply, torch.randn(n, c_in, size, size, dtype=F64), torch.randn(c_out, c_in, 4, 4, dtype=F64)),
             (L.ConvTransposeS2K4.apply, torch.randn(n, c_out, size // 2, size // 2, dtype=F64),
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
    patch = [(n, c, s) for n, c, s, _ in CONV_CASES if L.patch_weight_grad(c, n * (s // 2) ** 2)]
    onednn = [(n, c, s) for n, c, s, _ in CONV_CASES if not L.patch_weight_grad(c, n * (s // 2) ** 2)]
    forward = [(n, c, s) for n, c, s, _ in CONV_CASES if L.patch_forward(c, n * (s // 2) ** 2)]
    assert small and patch and onednn and forward


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
    G0, D0 = copy.deepcopy(G), copy.deepcopy(D)   # torch's own kernels
    stages = {28: 2, 64: 4}[size]
    assert ops.apply(G) == stages and ops.apply(D) == stages
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
    # fp32: the strided layers fall back to torch's kernels: bitwise the same.
    ours32, theirs32 = run(G, D, False, z), run(G0, D0, False, z)
    for a, b in zip(ours32, theirs32):
        assert torch.equal(a, b)
    # The example's form (G's first and D's last layer as convolutions) computes the same
    # function in another summation order: 1e-4 relative in fp32.
    Ge, De = example_layers(copy.deepcopy(G0)), example_layers(copy.deepcopy(D0))
    with torch.no_grad():
        _close(De(Ge(z)), D0(G0(z)), 1e-4)


def test_apply_and_remove_keep_parameters_and_keys():
    """ops.apply gives the covered layers their faster form and ops.remove takes it back;
    parameters, state-dict keys and the uncovered layers are untouched."""
    G, D = DCGANGenerator(16, 1, 28, 8), DCGANDiscriminator(1, 28, 8)
    keys = (list(G.state_dict()), list(D.state_dict()))
    params = [p for m in (G, D) for p in m.parameters()]
    assert ops.apply(G) == 2 and ops.apply(D) == 2
    fast = (ops.StridedConv2d, ops.StridedConvTranspose2d)
    assert sum(isinstance(m, fast) for m in [*G.modules(), *D.modules()]) == 4
    assert (list(G.state_dict()), list(D.state_dict())) == keys
    assert [p for m in (G, D) for p in m.parameters()] == params
    ops.remove(G), ops.remove(D)
    assert not any(isinstance(m, (ops.StridedConv2d, ops.StridedConvTranspose2d)) for m in [*G.modules(), *D.modules()])
    assert {type(m) for m in G.modules()} >= {nn.ConvTranspose2d}
    # layers with a bias, another kernel or stride are not covered
    assert not ops.covers(nn.Conv2d(3, 4, 4, 2, 1)) and not ops.covers(nn.Conv2d(3, 4, 3, 2, 1, bias=False))
    assert ops.covers(nn.Conv2d(3, 4, 4, 2, 1, bias=False))


def test_wanted_only_on_cpu_in_bf16_with_auto():
    assert ops.wanted("auto", "cpu", "bf16")
    assert not ops.wanted("off", "cpu", "bf16")
    assert not ops.wanted("auto", "cpu", "fp32") and not ops.wanted("auto", "cuda", "bf16")


def test_strided_layers_refuse_mixed_dtypes_like_torch():
    """Without autocast, a bf16 input to an fp32 layer is torch's error, not a silent cast;
    a bf16 model without autocast runs the replacement and matches torch's layer."""
    torch.manual_seed(4)
    conv, up = nn.Conv2d(8, 4, 4, 2, 1, bias=False), nn.ConvTranspose2d(4, 2, 4, 2, 1, bias=False)
    ops.apply(conv), ops.apply(up)
    x = torch.randn(2, 8, 8, 8).to(torch.bfloat16)
    with pytest.raises(RuntimeError):
        conv(x)
    conv, up = conv.bfloat16(), up.bfloat16()
    plain_conv, plain_up = ops.remove(copy.deepcopy(conv)), ops.remove(copy.deepcopy(up))
    y, y0 = up(conv(x)), plain_up(plain_conv(x))
    assert y.dtype == torch.bfloat16
    _close(y.float(), y0.float(), 0.02)   # bf16 rounding (2^-8) through two layers


def _r1_gradients(D, x, bf16: bool):
    """R1 = 1/2 E ||grad_x f(x)||^2 and its gradient with respect to D's parameters: a
    gradient of a gradient (create_graph), as a gradient penalty takes it."""
    x = x.detach().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = D(x)
    (gx,) = torch.autograd.grad(logits.float().sum(), x, create_graph=True)
    r1 = 0.5 * gx.double().square().flatten(1).sum(1).mean()
    return [r1, *torch.autograd.grad(r1, list(D.parameters()))]


@pytest.mark.parametrize("channels,size", [(1, 28), (3, 64)])
def test_r1_penalty_double_backward_with_ops_on_and_off(channels, size):
    """The gradient of an R1 penalty through a DCGAN discriminator in bf16, with the CPU
    kernels on and off, against the float64 discriminator of plain torch layers: both
    within bf16's error (mean over tensors of max error / max value <= 0.15: BatchNorm on
    4 examples amplifies bf16's 2^-8, measured 0.08-0.10), the kernels' at most 1.5× torch's
    own. dcgan64's D at width 64 has a 256->512 layer whose forward the op computes by
    im2col, so the two runs differ; their backward passes step aside to torch's
    differentiable kernels (the op's own are not differentiable)."""
    torch.manual_seed(5)
    D = DCGANDiscriminator(channels, size, 16 if size == 28 else 64).to(memory_format=torch.channels_last)
    D_off = copy.deepcopy(D)
    assert ops.apply(D) > 0
    D64 = ops.remove(copy.deepcopy(D)).double()
    x = torch.randn(4, channels, size, size).contiguous(memory_format=torch.channels_last)
    exact = _r1_gradients(D64, x.double(), False)
    on, off = _r1_gradients(D, x, True), _r1_gradients(D_off, x, True)

    # BatchNorm shifts get no gradient from R1 (f's input gradient does not depend on them).
    moving = [i for i, e in enumerate(exact) if e.abs().max() > 0]
    assert len(moving) >= len(exact) - 3
    for ts in (on, off):
        assert all(ts[i].abs().max() == 0 for i in range(len(exact)) if i not in moving)

    def err(ts):
        rel = [((ts[i].double() - exact[i]).abs().max() / exact[i].abs().max()).item() for i in moving]
        return sum(rel) / len(rel)

    assert 1e-4 <= err(off) <= 0.15 and err(on) <= max(1.5 * err(off), 1e-3), (err(on), err(off))
    # fp32: the op is not used at all (bf16 only); the same numbers to rounding
    on32, exact32 = _r1_gradients(D, x, False), exact
    for a, b in zip(on32, exact32):
        _close(a.double(), b, 1e-4)


def test_spectrally_normalised_layers_get_the_kernels(monkeypatch):
    """A spectrally normalised D (torch's parametrization) gets the faster forms too, and
    they run, reading the normalised weight: the same logits and parameter gradients as
    torch's layers (bf16 rounding through 3 layers, 2^-6 relative), the same state-dict keys,
    the same power-iteration state after one cached pass; a deep copy taken before stays on
    torch's layers, and ops.remove takes the forms back."""
    from torch.nn.utils import parametrize

    from gankit.training.regularizers import spectral_normalize

    def layer_types(m):
        return [parametrize.type_before_parametrizations(c) for c in m.modules() if parametrize.is_parametrized(c)]

    torch.manual_seed(6)
    D = spectral_normalize(DCGANDiscriminator(3, 32, 16)).to(memory_format=torch.channels_last)
    D_off, keys = copy.deepcopy(D), list(D.state_dict())
    assert ops.apply(D) == 3
    assert layer_types(D)[:3] == [ops.StridedConv2d] * 3 and layer_types(D_off)[:3] == [nn.Conv2d] * 3
    assert list(D.state_dict()) == keys
    ran = []
    apply = L.ConvS2K4.apply
    monkeypatch.setattr(L.ConvS2K4, "apply", lambda *a: ran.append(1) or apply(*a))
    x = torch.randn(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    out = []
    for m in (D, D_off):
        with torch.autocast("cpu", dtype=torch.bfloat16), parametrize.cached():
            y = m(x)
        out.append((y.float(), *torch.autograd.grad(y.float().sum(), list(m.parameters()))))
    assert len(ran) == 3                       # D's three layers, not D_off's
    for a, b in zip(*out):
        _close(a, b, 2 ** -6)
    for (k, a), b in zip(D.state_dict().items(), D_off.state_dict().values()):
        assert torch.equal(a, b), k
    ops.remove(D)
    assert layer_types(D)[:3] == [nn.Conv2d] * 3
