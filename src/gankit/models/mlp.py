"""Small fully connected networks for 1-D and 2-D data (and flattened images)."""

from __future__ import annotations

import math

import torch
from torch import nn


class MLPGenerator(nn.Module):
    """``G(z)``: ``depth`` hidden ReLU layers of ``hidden`` units, then a linear output.

    The output is reshaped to ``out_shape``; it is unbounded, as suits data with no range.
    """

    def __init__(self, z_dim: int, out_shape: tuple[int, ...], hidden: int = 256, depth: int = 3):
        super().__init__()
        self.z_dim = z_dim
        self.out_shape = tuple(out_shape)
        layers: list[nn.Module] = []
        width = z_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, math.prod(self.out_shape)))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        assert z.ndim == 2 and z.shape[1] == self.z_dim, f"G expects [n, {self.z_dim}] noise, got {tuple(z.shape)}"
        return self.net(z).view(z.shape[0], *self.out_shape)


class MLPDiscriminator(nn.Module):
    """``f(x)``: ``depth`` hidden LeakyReLU(0.2) layers, then one logit per example (shape [n])."""

    def __init__(self, in_shape: tuple[int, ...], hidden: int = 256, depth: int = 3):
        super().__init__()
        self.in_shape = tuple(in_shape)
        layers: list[nn.Module] = []
        width = math.prod(self.in_shape)
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert tuple(x.shape[1:]) == self.in_shape, f"D expects [n, {self.in_shape}], got {tuple(x.shape)}"
        return self.net(x.reshape(x.shape[0], -1)).squeeze(1)
