"""DCGAN's stride-2 4×4 convolutions, computed another way where oneDNN's bf16 kernels are
slow for their shape on a CPU: im2col / col2im and one matrix product.

This is an optional op, in the manner of stylegan2-ada's ``conv2d_gradfix``: models are
built from torch's own ``nn.Conv2d`` / ``nn.ConvTranspose2d``, and :func:`gankit.ops.apply`
turns the eligible layers of a built model into :class:`StridedConv2d` /
:class:`StridedConvTranspose2d` (same parameters, same state-dict keys) when the run
assembly decides they pay: on a CPU, in bf16, with ``--cpu-kernels auto``. Each call still
checks its input and runs torch's kernel for anything it does not cover (not CPU, not bf16,
odd sizes, a bias, another geometry). The sums are the same, taken in another order.

Double backward: the replacement backward passes are not themselves differentiable, so
when a gradient of a gradient is being built (``create_graph=True``, as gradient penalties
such as R1 need) they step aside and compute the gradient with torch's own
``convolution_backward``, which is differentiable.

Where oneDNN's bf16 kernels for these layers are slow, and what replaces them (2 cores,
batch 64, ms per call; ``python benchmarks/conv_kernels.py``):

- few channels on the 2h×2w side (G's output, D's input: 1 or 3 channels): the transposed
  product (G's forward, D's input gradient), oneDNN 1.5-1.9 ms for MNIST and 5.8 ms for
  dcgan64, as one product + col2im 0.5-0.6 and 4.9-5.5 ms;
- weight gradients of the deeper layers: oneDNN 11.5-24.6 ms for dcgan64's 128->256 and
  256->512 layers (3.4-3.9 ms for MNIST's 64->128), as im2col + one product 8.3-9.0 ms
  (2.8-3.3 ms). Not for the widest layer (64->128 at 32×32, whose patch matrix of 2^24
  values no longer fits in cache: 2.3× slower) nor for the 1- and 3-channel layers
  (products with 16 or 48 columns are slow);
- the forward convolution where the patch matrix is long and small (dcgan64's 256->512
  layer, 4096 columns, 2^22 values): oneDNN 9.2 ms, im2col + product 7.2 ms; slower for
  every other layer of these models.

(Measured on an AMD EPYC with AVX512-BF16; ``docs/performance.md`` has the history.)
"""

from __future__ import annotations

import torch
from torch import nn


def nhwc(t: torch.Tensor) -> torch.Tensor:
    """A 4-D tensor's values in (n, h, w, c) order as [n, h*w*c]: no copy for channels_last."""
    return t.permute(0, 2, 3, 1).reshape(t.shape[0], -1)


def conv_transpose_s2k4(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``conv_transpose2d(x, weight, stride=2, padding=1)`` for a 4×4 kernel, as one matrix
    product and four shifted additions (col2im written out for this geometry).

    x [n, c_in, h, w], weight [c_in, c_out, 4, 4] -> [n, c_out, 2h, 2w] in channels_last
    layout. In bf16 each (input pixel, tap) term leaves the product rounded to bf16 (torch
    has no CPU product with an fp32 result), and the 4 terms reaching an output pixel are
    summed in fp32 and rounded once more: one rounding more than oneDNN's kernel, within
    the same bf16 error (tests/models/test_layers.py compares both against float64).
    """
    n, c_in, h, w = x.shape
    c_out = weight.shape[1]
    # [n*h*w, c_in] @ [c_in, (kh, kw, c_out)]: every (input pixel, tap) contribution.
    cols = nhwc(x).reshape(n * h * w, c_in) @ nhwc(weight).reshape(c_in, 16 * c_out)
    dtype = cols.dtype
    # Tap kh = 2a + r lands on padded output row 2(i + a) + r (kw = 2b + s likewise).
    cols = cols.to(torch.promote_types(dtype, torch.float32)).view(n, h, w, 2, 2, 2, 2, c_out)
    out = cols.new_zeros(n, h + 1, 2, w + 1, 2, c_out)
    for a in (0, 1):
        for b in (0, 1):
            out[:, a:a + h, :, b:b + w] += cols[:, :, :, a, :, b].permute(0, 1, 3, 2, 4, 5)
    # Written into a fresh channels_last tensor (a copy either way): the result is not a
    # view, so in-place operations on it (an in-place activation) are allowed by autograd.
    y = torch.empty((n, c_out, 2 * h, 2 * w), dtype=dtype, device=x.device, memory_format=torch.channels_last)
    y.permute(0, 2, 3, 1).copy_(out.view(n, 2 * h + 2, 2 * w + 2, c_out)[:, 1:-1, 1:-1])
    return y


def im2col_s2k4(t: torch.Tensor) -> torch.Tensor:
    """The 4×4, stride-2, padding-1 patches of t [n, c, 2h, 2w]: [n*h*w, 16*c], each row one
    output pixel's patch in (kh, kw, c) order (one strided copy of the padded NHWC tensor)."""
    n, c, hh, ww = t.shape
    h, w = hh // 2, ww // 2
    p = nn.functional.pad(t.permute(0, 2, 3, 1), (0, 0, 1, 1, 1, 1)).contiguous()   # [n, 2h+2, 2w+2, c]
    sn, sh, sw, sc = p.stride()
    return p.as_strided((n, h, w, 4, 4, c), (sn, 2 * sh, 2 * sw, sh, sw, sc)).reshape(n * h * w, 16 * c)


# The thresholds of the table in the module docstring.
SMALL_CHANNELS = 4
PATCH_MIN_COLUMNS, PATCH_MAX_VALUES = 512, 2 ** 23
PATCH_FORWARD_MIN_COLUMNS, PATCH_FORWARD_MAX_VALUES = 4096, 2 ** 22


def patch_weight_grad(channels: int, rows: int) -> bool:
    return 16 * channels >= PATCH_MIN_COLUMNS and rows * 16 * channels <= PATCH_MAX_VALUES


def patch_forward(channels: int, rows: int) -> bool:
    return 16 * channels >= PATCH_FORWARD_MIN_COLUMNS and rows * 16 * channels <= PATCH_FORWARD_MAX_VALUES


def _conv_s2k4(x, w):
    """conv2d(x, w, stride 2, padding 1) by oneDNN, or by im2col + product (see above)."""
    n, c_in, hh, ww = x.shape
    if patch_forward(c_in, n * (hh // 2) * (ww // 2)):
        # The product written straight into a channels_last result (not a view of it, so
        # autograd allows in-place operations on the output).
        y = torch.empty((n, w.shape[0], hh // 2, ww // 2), dtype=x.dtype, device=x.device,
                        memory_format=torch.channels_last)
        torch.mm(im2col_s2k4(x), nhwc(w).t(), out=y.permute(0, 2, 3, 1).view(-1, w.shape[0]))
        return y
    return nn.functional.conv2d(x, w, None, 2, 1)


def weight_grad_by_patches(small: torch.Tensor, big: torch.Tensor) -> torch.Tensor:
    """The 4×4 weight gradient linking ``small`` [n, a, h, w] and ``big`` [n, b, 2h, 2w] as
    one product, [a, b, 4, 4]: dW[a, (kh, kw, b)] = sum over the h×w pixels of
    small[., a] * (big's patch at that pixel)[(kh, kw, b)]. For D's convolution small is
    dL/dy and big the input; for G's transposed one, small is the input and big dL/dy."""
    a, b = small.shape[1], big.shape[1]
    return (nhwc(small).reshape(-1, a).t() @ im2col_s2k4(big)).view(a, 4, 4, b).permute(0, 3, 1, 2)


def _onednn_backward(gy, x, w, transposed: bool, mask):
    return torch.ops.aten.convolution_backward(gy, x, w, None, [2, 2], [1, 1], [1, 1], transposed,
                                               [0, 0], 1, mask)[:2]


def _differentiable_backward(gy, x, w, transposed: bool, mask):
    """The gradients by torch's ``convolution_backward``, recorded by autograd (it has a
    derivative), for a backward pass that builds a graph: a gradient penalty's."""
    gx, gw = _onednn_backward(gy, x, w, transposed, mask)
    return (gx if mask[0] else None), (gw if mask[1] else None)


class ConvS2K4(torch.autograd.Function):
    """y = conv2d(x, w, stride 2, padding 1), 4×4 kernel, no bias; x [n, c_in, 2h, 2w]."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return _conv_s2k4(x, w)

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad
        if torch.is_grad_enabled():   # building a graph of the gradient (create_graph): torch's differentiable path
            return _differentiable_backward(gy, x, w, False, [need_x, need_w, False])
        c_in = w.shape[1]
        n, _, h, wd = gy.shape
        fast_x = need_x and c_in <= SMALL_CHANNELS
        fast_w = need_w and patch_weight_grad(c_in, n * h * wd)
        slow_x, slow_w = need_x and not fast_x, need_w and not fast_w
        gx = gw = None
        if slow_x or slow_w:
            gx, gw = _onednn_backward(gy, x, w, False, [slow_x, slow_w, False])
        if fast_x:   # dL/dx = conv_transpose(dL/dy, w)
            gx = conv_transpose_s2k4(gy, w)
        if fast_w:
            gw = weight_grad_by_patches(gy, x)
        return gx, gw


class ConvTransposeS2K4(torch.autograd.Function):
    """y = conv_transpose2d(x, w, stride 2, padding 1), 4×4 kernel, no bias; y [n, c_out, 2h, 2w]."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        if w.shape[1] <= SMALL_CHANNELS:
            return conv_transpose_s2k4(x, w)
        return nn.functional.conv_transpose2d(x, w, None, 2, 1)

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad
        if torch.is_grad_enabled():   # building a graph of the gradient (create_graph): torch's differentiable path
            return _differentiable_backward(gy, x, w, True, [need_x, need_w, False])
        n, _, h, wd = x.shape
        fast_w = need_w and patch_weight_grad(w.shape[1], n * h * wd)
        gx = gw = None
        if need_x:   # dL/dx = conv(dL/dy, w), the fast direction
            gx = _conv_s2k4(gy, w)
        if fast_w:
            gw = weight_grad_by_patches(x, gy)
        elif need_w:
            gw = _onednn_backward(gy, x, w, True, [False, True, False])[1]
        return gx, gw


def _s2k4_inputs(module, x):
    """(x, weight) cast as autocast would cast them for a convolution, or None where the
    module should run torch's own kernels (not on CPU, not bf16, other geometry, a bias)."""
    if (x.device.type != "cpu" or x.ndim != 4 or module.bias is not None or module.kernel_size != (4, 4)
            or module.stride != (2, 2) or module.padding != (1, 1) or module.dilation != (1, 1)
            or module.groups != 1 or getattr(module, "padding_mode", "zeros") != "zeros"
            or getattr(module, "output_padding", (0, 0)) != (0, 0)):
        return None
    if torch.is_autocast_enabled("cpu"):
        dtype = torch.get_autocast_dtype("cpu")
    elif x.dtype == module.weight.dtype:   # a bf16 model run without autocast
        dtype = x.dtype
    else:                                  # mixed dtypes: let torch's layer refuse them
        return None
    if dtype != torch.bfloat16:
        return None
    return x.to(dtype), module.weight.to(dtype)


class StridedConv2d(nn.Conv2d):
    """D's stride-2 4×4 convolution; on CPU in bf16, its slow kernels replaced (see the
    table above). Parameters and state-dict keys are those of ``nn.Conv2d``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        args = None if x.shape[-1] % 2 or x.shape[-2] % 2 else _s2k4_inputs(self, x)
        if args is None:
            return super().forward(x)
        with torch.autocast("cpu", enabled=False):
            return ConvS2K4.apply(*args)


class StridedConvTranspose2d(nn.ConvTranspose2d):
    """G's stride-2 4×4 transposed convolution; on CPU in bf16, its slow kernels replaced
    (see the table above). Parameters and state-dict keys are those of ``nn.ConvTranspose2d``."""

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        args = _s2k4_inputs(self, x)
        if args is None or output_size is not None:
            return super().forward(x, output_size)
        with torch.autocast("cpu", enabled=False):
            return ConvTransposeS2K4.apply(*args)


