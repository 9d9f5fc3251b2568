"""DCGAN (Radford et al. 2016) for 28, 32 and 64 pixel images with any number of channels.

G: a transposed convolution from the noise to a 4×4 (7×7 for 28 px) map, then stride-2
transposed convolutions halving the width each time, BatchNorm + ReLU between, tanh out.
D: stride-2 convolutions doubling the width, LeakyReLU(0.2), BatchNorm on all but the first
(``norm="none"``: none, a bias instead, as stylegan2's D, which R1 regularises),
no pooling, no fully connected hidden layer, one logit out. Weights N(0, 0.02); BatchNorm
scales N(1, 0.02), shifts 0 (the DCGAN paper's initialisation).

G's first layer (a transposed convolution of a 1×1 noise "image" to a k×k map) and D's
last (a convolution whose kernel covers its whole k×k input) are the matrix products they
are: ``nn.Linear`` layers on the flattened input, as other DCGAN implementations write
them. oneDNN runs those convolutions through its general kernels, 4-5× slower than the
product for these shapes on a CPU. Checkpoints written when they were convolutions load
(their weights are reshaped on load), and the initialisation draws the same numbers.
"""

from __future__ import annotations

import torch
from torch import nn

SIZES = (28, 32, 64)
D_NORMS = ("batch", "none")   # D's normalisation after each convolution but the first


def _plan(size: int) -> tuple[int, int]:
    """(first spatial size, number of stride-2 stages) for an image size."""
    return {28: (7, 2), 32: (4, 3), 64: (4, 4)}[size]


class ConvFormLoading:
    """Loads a checkpoint written when the layer was a convolution: a 4-D weight is
    reshaped by the layer's ``from_conv`` before the usual loading."""

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        w = state_dict.get(prefix + "weight")
        if w is not None and w.ndim == 4:
            state_dict[prefix + "weight"] = self.from_conv(w)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class NoiseProjection(ConvFormLoading, nn.Linear):
    """G's first layer: ``z [n, z_dim] -> [n, channels, size, size]``, a product with a weight
    of shape [size·size·channels, z_dim] whose rows run in (h, w, c) order, so that the
    result is a channels_last map without a copy. It is the transposed convolution
    ``ConvTranspose2d(z_dim, channels, size)`` of a 1×1 input, written as what it computes."""

    def __init__(self, z_dim: int, channels: int, size: int):
        super().__init__(z_dim, size * size * channels, bias=False)
        self.channels, self.size = channels, size

    def conv_shape(self) -> tuple[int, ...]:
        return (self.in_features, self.channels, self.size, self.size)

    def from_conv(self, w: torch.Tensor) -> torch.Tensor:
        """A ConvTranspose2d weight [z, c, k, k] as this layer's [k·k·c, z]."""
        return w.permute(2, 3, 1, 0).reshape(self.out_features, self.in_features)

    def to_conv(self, w: torch.Tensor) -> torch.Tensor:
        return w.reshape(self.size, self.size, self.channels, self.in_features).permute(3, 2, 0, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        y = super().forward(z)
        return y.view(z.shape[0], self.size, self.size, self.channels).permute(0, 3, 1, 2)


class LogitHead(ConvFormLoading, nn.Linear):
    """D's last layer: ``[n, channels, size, size] -> [n, 1]``, a product with the input
    flattened in (h, w, c) order (no copy for channels_last). It is the convolution
    ``Conv2d(channels, 1, size)`` over a size×size input, written as what it computes."""

    def __init__(self, channels: int, size: int):
        super().__init__(size * size * channels, 1, bias=False)
        self.channels, self.size = channels, size

    def conv_shape(self) -> tuple[int, ...]:
        return (1, self.channels, self.size, self.size)

    def from_conv(self, w: torch.Tensor) -> torch.Tensor:
        """A Conv2d weight [1, c, k, k] as this layer's [1, k·k·c]."""
        return w.permute(0, 2, 3, 1).reshape(1, self.in_features)

    def to_conv(self, w: torch.Tensor) -> torch.Tensor:
        return w.reshape(1, self.size, self.size, self.channels).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1).reshape(x.shape[0], -1))


def dcgan_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (NoiseProjection, LogitHead)):
            # Drawn in the convolution's shape and order: the same initial function as the
            # convolutional form of these layers (and as gankit's runs before this form).
            with torch.no_grad():
                m.weight.copy_(m.from_conv(torch.empty(m.conv_shape()).normal_(0.0, 0.02)))
        elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
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
        layers: list[nn.Module] = [NoiseProjection(z_dim, w, first), nn.BatchNorm2d(w), nn.ReLU(True)]
        for _ in range(stages - 1):
            layers += [nn.ConvTranspose2d(w, w // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(w // 2), nn.ReLU(True)]
            w //= 2
        layers += [nn.ConvTranspose2d(w, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        assert z.ndim == 2 and z.shape[1] == self.z_dim, f"G expects [n, {self.z_dim}] noise, got {tuple(z.shape)}"
        return self.net(z)


class DCGANDiscriminator(nn.Module):
    """``class_maps`` K > 0 widens every convolution's input by K channels, for a conditional
    D that joins the class's one-hot maps to each (``models.conditional.DeepConcatDiscriminator``,
    which runs it); ``in_shape`` stays the image's."""

    def __init__(self, channels: int = 3, size: int = 64, width: int = 64, class_maps: int = 0,
                 norm: str = "batch"):
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"DCGAN supports image sizes {SIZES}, got {size}")
        if norm not in D_NORMS:
            raise ValueError(f"D's normalisation is one of {D_NORMS}, got {norm!r}")
        self.in_shape = (channels, size, size)
        first, stages = _plan(size)
        k = class_maps
        layers: list[nn.Module] = [nn.Conv2d(channels + k, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        w = width
        for _ in range(stages - 1):
            if norm == "batch":
                layers += [nn.Conv2d(w + k, w * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(w * 2)]
            else:   # no normalisation: each example judged on its own, a bias where BatchNorm's shift was
                layers += [nn.Conv2d(w + k, w * 2, 4, 2, 1, bias=True)]
            layers += [nn.LeakyReLU(0.2, True)]
            w *= 2
        layers += [LogitHead(w, first)]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert tuple(x.shape[1:]) == self.in_shape, f"D expects [n, {self.in_shape}], got {tuple(x.shape)}"
        return self.net(x).flatten()
