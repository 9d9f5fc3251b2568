"""The MNIST model of Goodfellow et al. (2014), from its published pylearn2 configuration.

G: noise -> 1200 ReLU -> 1200 ReLU -> 784 sigmoid (pixels in [0, 1]); weights U(-0.05, 0.05),
the output bias set from the data's mean image (see ``init_from_data``).
D: 784 -> maxout(240 units × 5 pieces) -> maxout(240 × 5) -> 1 logit, with dropout (input
units kept with probability 0.8, hidden units 0.5); weights U(-0.005, 0.005).
(The published configuration is ``mnist.yaml`` of github.com/goodfeli/adversarial.)
Dropout rescales kept units by 1/p during training (PyTorch's convention), which gives
the same expected activations as pylearn2's scaling at test time.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Maxout(nn.Module):
    """``max_k (W_k x + b_k)`` over ``pieces`` linear maps: ``units`` outputs."""

    def __init__(self, in_features: int, units: int, pieces: int):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_features, units * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # max(dim).values, not amax: the same forward, and a backward that routes each
        # gradient to the winning piece by index; amax's backward builds an equality mask
        # and splits the gradient among ties, 1.7x (fp32) to 2.9x (bf16) slower here for
        # [100, 240 x 5]. The two differ only at exact ties, where both are subgradients.
        return self.linear(x).view(x.shape[0], self.units, self.pieces).max(dim=2).values


class Dropout(nn.Dropout):
    """``nn.Dropout`` (the same Bernoulli(1 - p) keep-mask, kept units scaled by 1/(1 - p)),
    with the mask drawn as ``rand >= p`` instead of by ``bernoulli_``, which is about 2.7×
    slower to draw on the CPU here (0.50 against 1.33 ms for 100 × 1200 values).

    The mask is built already scaled (0 or 1/(1 - p), in the input's dtype), so the forward
    and backward passes are one product each: ``x * m`` and ``grad * m``. That is bitwise
    the same as ``x * keep * scale`` (the product by 1 or 0 is exact), with two fewer
    elementwise passes and one fewer autograd node per call (measured with the paper's D:
    docs/performance.md).
    """

    # (rank, processes): under torchrun ``x`` is this process's slice of the global batch; the
    # masks are drawn for the whole batch and the slice's kept, so N processes drop what one
    # process drops (each process drawing for its own slice from the same seed repeated one
    # slice's masks in every slice).
    batch_part = (0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.inplace:
            raise ValueError("gankit's Dropout has no in-place form")
        # The draw is in float32 whatever x's dtype: the same random stream as before.
        rank, processes = self.batch_part
        n = x.shape[0]
        u = torch.rand((n * processes, *x.shape[1:]), device=x.device)[rank * n:(rank + 1) * n]
        return x * u.ge_(self.p).to(x.dtype).mul_(1.0 / (1.0 - self.p))


def _uniform_init(module: nn.Module, r: float) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.uniform_(m.weight, -r, r)
            nn.init.zeros_(m.bias)


class PaperMNISTGenerator(nn.Module):
    output_range = (0.0, 1.0)

    def __init__(self, z_dim: int = 100, out_shape=(1, 28, 28), hidden: int = 1200):
        super().__init__()
        self.z_dim, self.out_shape = z_dim, tuple(out_shape)
        self.net = nn.Sequential(
            nn.Linear(z_dim, hidden), nn.ReLU(True),
            nn.Linear(hidden, hidden), nn.ReLU(True),
            nn.Linear(hidden, math.prod(self.out_shape)), nn.Sigmoid(),
        )
        _uniform_init(self, 0.05)

    def init_from_data(self, mean_image: torch.Tensor) -> None:
        """The published model starts its sigmoid output at the data's marginals (pylearn2's
        ``init_sigmoid_bias_from_marginals``): bias = logit(mean pixel), clipped to (1e-6, 1 - 1e-6)."""
        p = mean_image.reshape(-1).double().clamp(1e-6, 1 - 1e-6)
        with torch.no_grad():
            self.net[-2].bias.copy_(torch.log(p) - torch.log1p(-p))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        assert z.ndim == 2 and z.shape[1] == self.z_dim, f"G expects [n, {self.z_dim}] noise, got {tuple(z.shape)}"
        return self.net(z).view(z.shape[0], *self.out_shape)


class PaperMNISTDiscriminator(nn.Module):
    def __init__(self, in_shape=(1, 28, 28), units: int = 240, pieces: int = 5,
                 input_keep: float = 0.8, hidden_keep: float = 0.5):
        super().__init__()
        self.in_shape = tuple(in_shape)
        self.net = nn.Sequential(
            Dropout(1 - input_keep), Maxout(math.prod(self.in_shape), units, pieces),
            Dropout(1 - hidden_keep), Maxout(units, units, pieces),
            Dropout(1 - hidden_keep), nn.Linear(units, 1),
        )
        _uniform_init(self, 0.005)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert tuple(x.shape[1:]) == self.in_shape, f"D expects [n, {self.in_shape}], got {tuple(x.shape)}"
        return self.net(x.reshape(x.shape[0], -1)).squeeze(1)
