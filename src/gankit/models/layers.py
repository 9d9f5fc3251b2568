"""DCGAN's convolutions, computed another way where oneDNN's kernels are slow for their shape.

DCGAN's first G layer is a transposed convolution of a 1×1 noise "image" to a k×k map, and
its last D layer a convolution whose kernel covers the whole k×k input. Both are plain
matrix products, but oneDNN (PyTorch's CPU convolution) runs them through its general
convolution kernels, which are slow for these shapes. Measured on 2 cores with bf16
autocast and channels_last, forward + backward of one layer, batch 64
(``python benchmarks/conv_kernels.py``):

    G's first layer, 100 -> 512×4×4 (dcgan64):   7.8 ms as a convolution, 1.6 ms as a product
    G's first layer, 100 -> 128×7×7 (MNIST):     4.2 ms                    1.1 ms
    D's last layer, 512×4×4 -> 1 (dcgan64):      2.4 ms                    0.44 ms

The stride-2 4×4 layers in between keep oneDNN's kernels except for a few directions and
shapes where im2col / col2im and one matrix product are faster (the table further down).

The modules below are ``nn.ConvTranspose2d`` / ``nn.Conv2d`` with the same parameters and
state-dict keys (checkpoints are unchanged); only ``forward`` differs, and it falls back to
torch's convolution for any input or setting they do not cover. The sums are the same, taken in
another order; autocast treats a matrix product like a convolution (both run in the lower
precision), so the precision of each layer is unchanged too.
"""

from __future__ import annotations

import torch
from torch import nn


def _nhwc(t: torch.Tensor) -> torch.Tensor:
    """A 4-D tensor's values in (n, h, w, c) order as [n, h*w*c]: no copy for channels_last."""
    return t.permute(0, 2, 3, 1).reshape(t.shape[0], -1)


class PointConvTranspose2d(nn.ConvTranspose2d):
    """A transposed convolution from a 1×1 input (stride 1, no padding): ``z @ W``.

    Output [n, c, k, k] is returned in channels_last layout (the format the rest of a
    convolutional G runs in).
    """

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if (x.ndim != 4 or x.shape[-2:] != (1, 1) or output_size is not None or self.stride != (1, 1)
                or self.padding != (0, 0) or self.output_padding != (0, 0) or self.dilation != (1, 1)
                or self.groups != 1):
            return super().forward(x, output_size)
        n, (c_in, c_out, kh, kw) = x.shape[0], self.weight.shape
        # weight [c_in, c_out, kh, kw] -> [c_in, kh*kw*c_out], so the product comes out NHWC.
        y = x.reshape(n, c_in) @ _nhwc(self.weight)
        y = y.view(n, kh, kw, c_out)
        if self.bias is not None:
            y = y + self.bias
        return y.permute(0, 3, 1, 2)


class FullConv2d(nn.Conv2d):
    """A convolution whose kernel covers its whole input (no padding): one dot product per
    example and output channel, ``x.flatten() @ W.flatten().T``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.ndim != 4 or x.shape[-2:] != self.kernel_size or self.padding != (0, 0)
                or self.dilation != (1, 1) or self.groups != 1 or self.padding_mode != "zeros"):
            return super().forward(x)
        n, c_out = x.shape[0], self.weight.shape[0]
        if x.is_contiguous():                      # NCHW: flatten in (c, h, w) order, no copy
            y = x.reshape(n, -1) @ self.weight.reshape(c_out, -1).t()
        else:                                      # channels_last: (h, w, c) order, no copy
            y = _nhwc(x) @ _nhwc(self.weight).t()
        if self.bias is not None:
            y = y + self.bias
        return y.view(n, c_out, 1, 1)


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
    cols = _nhwc(x).reshape(n * h * w, c_in) @ _nhwc(weight).reshape(c_in, 16 * c_out)
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


# Where oneDNN's bf16 kernels for the stride-2 4×4 layers are slow on a CPU, and what
# replaces them (2 cores, batch 64, ms per call; `python benchmarks/conv_kernels.py`):
#   - few channels on the 2h×2w side (G's output, D's input: 1 or 3 channels): the
#     transposed product (G's forward, D's input gradient), oneDNN 1.5-1.9 ms for MNIST
#     and 5.8 ms for dcgan64, as one product + col2im 0.5-0.6 and 4.9-5.5 ms;
#   - weight gradients of the deeper layers: oneDNN 11.5-24.6 ms for dcgan64's 128->256
#     and 256->512 layers (3.4-3.9 ms for MNIST's 64->128), as im2col + one product
#     8.3-9.0 ms (2.8-3.3 ms). Not for the widest layer (64->128 at 32×32, whose patch
#     matrix of 2^24 values no longer fits in cache: 2.3× slower) nor for the 1- and
#     3-channel layers (products with 16 or 48 columns are slow);
#   - the forward convolution where the patch matrix is long and small (dcgan64's
#     256->512 layer, 4096 columns, 2^22 values): oneDNN 9.2 ms, im2col + product 7.2 ms;
#     slower for every other layer of these models.
SMALL_CHANNELS = 4
PATCH_MIN_COLUMNS, PATCH_MAX_VALUES = 512, 2 ** 23
PATCH_FORWARD_MIN_COLUMNS, PATCH_FORWARD_MAX_VALUES = 4096, 2 ** 22


def _patch_weight_grad(channels: int, rows: int) -> bool:
    return 16 * channels >= PATCH_MIN_COLUMNS and rows * 16 * channels <= PATCH_MAX_VALUES


def _patch_forward(channels: int, rows: int) -> bool:
    return 16 * channels >= PATCH_FORWARD_MIN_COLUMNS and rows * 16 * channels <= PATCH_FORWARD_MAX_VALUES


def _conv_s2k4(x, w):
    """conv2d(x, w, stride 2, padding 1) by oneDNN, or by im2col + product (see above)."""
    n, c_in, hh, ww = x.shape
    if _patch_forward(c_in, n * (hh // 2) * (ww // 2)):
        # The product written straight into a channels_last result (not a view of it, so
        # autograd allows in-place operations on the output).
        y = torch.empty((n, w.shape[0], hh // 2, ww // 2), dtype=x.dtype, device=x.device,
                        memory_format=torch.channels_last)
        torch.mm(im2col_s2k4(x), _nhwc(w).t(), out=y.permute(0, 2, 3, 1).view(-1, w.shape[0]))
        return y
    return nn.functional.conv2d(x, w, None, 2, 1)


def _weight_grad_by_patches(small: torch.Tensor, big: torch.Tensor) -> torch.Tensor:
    """The 4×4 weight gradient linking ``small`` [n, a, h, w] and ``big`` [n, b, 2h, 2w] as
    one product, [a, b, 4, 4]: dW[a, (kh, kw, b)] = sum over the h×w pixels of
    small[., a] * (big's patch at that pixel)[(kh, kw, b)]. For D's convolution small is
    dL/dy and big the input; for G's transposed one, small is the input and big dL/dy."""
    a, b = small.shape[1], big.shape[1]
    return (_nhwc(small).reshape(-1, a).t() @ im2col_s2k4(big)).view(a, 4, 4, b).permute(0, 3, 1, 2)


def _onednn_backward(gy, x, w, transposed: bool, mask):
    return torch.ops.aten.convolution_backward(gy, x, w, None, [2, 2], [1, 1], [1, 1], transposed,
                                               [0, 0], 1, mask)[:2]


class _ConvS2K4(torch.autograd.Function):
    """y = conv2d(x, w, stride 2, padding 1), 4×4 kernel, no bias; x [n, c_in, 2h, 2w]."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return _conv_s2k4(x, w)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad
        c_in = w.shape[1]
        n, _, h, wd = gy.shape
        fast_x = need_x and c_in <= SMALL_CHANNELS
        fast_w = need_w and _patch_weight_grad(c_in, n * h * wd)
        slow_x, slow_w = need_x and not fast_x, need_w and not fast_w
        gx = gw = None
        if slow_x or slow_w:
            gx, gw = _onednn_backward(gy, x, w, False, [slow_x, slow_w, False])
        if fast_x:   # dL/dx = conv_transpose(dL/dy, w)
            gx = conv_transpose_s2k4(gy, w)
        if fast_w:
            gw = _weight_grad_by_patches(gy, x)
        return gx, gw


class _ConvTransposeS2K4(torch.autograd.Function):
    """y = conv_transpose2d(x, w, stride 2, padding 1), 4×4 kernel, no bias; y [n, c_out, 2h, 2w]."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        if w.shape[1] <= SMALL_CHANNELS:
            return conv_transpose_s2k4(x, w)
        return nn.functional.conv_transpose2d(x, w, None, 2, 1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad
        n, _, h, wd = x.shape
        fast_w = need_w and _patch_weight_grad(w.shape[1], n * h * wd)
        gx = gw = None
        if need_x:   # dL/dx = conv(dL/dy, w), the fast direction
            gx = _conv_s2k4(gy, w)
        if fast_w:
            gw = _weight_grad_by_patches(x, gy)
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
            return _ConvS2K4.apply(*args)


class StridedConvTranspose2d(nn.ConvTranspose2d):
    """G's stride-2 4×4 transposed convolution; on CPU in bf16, its slow kernels replaced
    (see the table above). Parameters and state-dict keys are those of ``nn.ConvTranspose2d``."""

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        args = _s2k4_inputs(self, x)
        if args is None or output_size is not None:
            return super().forward(x, output_size)
        with torch.autocast("cpu", enabled=False):
            return _ConvTransposeS2K4.apply(*args)


class Dropout(nn.Dropout):
    """``nn.Dropout`` (the same Bernoulli(1 - p) keep-mask, kept units scaled by 1/(1 - p)),
    with the mask drawn as ``rand >= p`` instead of by ``bernoulli_``, which is about 2.7×
    slower to draw on the CPU here (0.50 against 1.33 ms for 100 × 1200 values).

    The mask is built already scaled (0 or 1/(1 - p), in the input's dtype), so the forward
    and backward passes are one product each: ``x * m`` and ``grad * m``. That is bitwise
    the same as ``x * keep * scale`` (the product by 1 or 0 is exact), with two fewer
    elementwise passes and one fewer autograd node per call (measured with the paper's D:
    see the README's Speed section).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.inplace:
            raise ValueError("gankit's Dropout has no in-place form")
        # The draw is in float32 whatever x's dtype: the same random stream as before.
        m = torch.rand(x.shape, device=x.device).ge_(self.p).to(x.dtype).mul_(1.0 / (1.0 - self.p))
        return x * m


FAST_LAYERS = (PointConvTranspose2d, FullConv2d, StridedConv2d, StridedConvTranspose2d, Dropout)


def plain_torch_layers(module: nn.Module) -> nn.Module:
    """Turn the layers above back into the torch modules they extend, in place (they hold
    the same parameters, so nothing else changes): torch's own kernels, as a baseline."""
    for m in module.modules():
        if isinstance(m, FAST_LAYERS):
            m.__class__ = next(c for c in type(m).__mro__ if c.__module__.startswith("torch.nn"))
    return module
