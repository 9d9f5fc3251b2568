"""DCGAN (Radford et al. 2016) for 28, 32 and 64 pixel images with any number of channels.

G: a transposed convolution from the noise to a 4×4 (7×7 for 28 px) map, then stride-2
transposed convolutions halving the width each time, BatchNorm + ReLU between, tanh out.
D: stride-2 convolutions doubling the width, LeakyReLU(0.2), BatchNorm on all but the first,
no pooling, no fully connected hidden layer, one logit out. Weights N(0, 0.02); BatchNorm
scales N(1, 0.02), shifts 0 (the DCGAN paper's initialisation).
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import FullConv2d, PointConvTranspose2d, StridedConv2d, StridedConvTranspose2d

SIZES = (28, 32, 64)


def _plan(size: int) -> tuple[int, int]:
    """(first spatial size, number of stride-2 stages) for an image size."""
    return {28: (7, 2), 32: (4, 3), 64: (4, 4)}[size]


def dcgan_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    output_range = (-1.0, 1.0)

    def __init__(self, z_dim: int = 100, channels: int = 3, size: int = 64, width: int = 64):
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"DCGAN supports image sizes {SIZES}, got {size}")
        self.z_dim, self.out_shape = z_dim, (channels, size, size)
        first, stages = _plan(size)
        w = width * 2 ** (stages - 1)
        layers: list[nn.Module] = [PointConvTranspose2d(z_dim, w, first, 1, 0, bias=False), nn.BatchNorm2d(w), nn.ReLU(True)]
        for _ in range(stages - 1):
            layers += [StridedConvTranspose2d(w, w // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(w // 2), nn.ReLU(True)]
            w //= 2
        layers += [StridedConvTranspose2d(w, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        assert z.ndim == 2 and z.shape[1] == self.z_dim, f"G expects [n, {self.z_dim}] noise, got {tuple(z.shape)}"
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    def __init__(self, channels: int = 3, size: int = 64, width: int = 64):
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"DCGAN supports image sizes {SIZES}, got {size}")
        self.in_shape = (channels, size, size)
        first, stages = _plan(size)
        layers: list[nn.Module] = [StridedConv2d(channels, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        w = width
        for _ in range(stages - 1):
            layers += [StridedConv2d(w, w * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(w * 2), nn.LeakyReLU(0.2, True)]
            w *= 2
        layers += [FullConv2d(w, 1, first, 1, 0, bias=False)]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert tuple(x.shape[1:]) == self.in_shape, f"D expects [n, {self.in_shape}], got {tuple(x.shape)}"
        return self.net(x).flatten()
