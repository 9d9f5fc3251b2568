"""Conditional models p(x | c), the 2014 paper's first extension (§7): the class is an input
of both G and D.

- G(z, y) = G₀([z, e(y)]): a learned class embedding joined to the noise (for the MLP and
  the DCGAN generator alike; the DCGAN's first layer is a linear map of its input).
- D(x, y) for the MLP: D₀([x, e(y)]), the embedding joined to the input.
- D(x, y) for the DCGAN: the class as K one-hot input maps joined to the image's channels
  (``--class-input concat``, the default), or a projection discriminator (Miyato & Koyama
  2018, ``--class-input projection``), ``ψ(h(x)) + e(y)·φ(x)``. The projection collapsed
  within each class on MNIST (every sample of a class alike after 1,000 steps, with or
  without spectral normalisation; docs/results.md), so it is not the default.

A conditional G called without labels, ``G(z)``, generates the classes in turn
(0, 1, …, C−1, 0, …), so every consumer of unconditional samples (pictures, FID, export)
gets a class-balanced draw.
"""

from __future__ import annotations

import torch
from torch import nn


def balanced_labels(n: int, num_classes: int, device=None) -> torch.Tensor:
    """The classes in turn: 0, 1, …, C−1, 0, 1, … (n of them)."""
    return torch.arange(n, device=device) % num_classes


class ConditionalGenerator(nn.Module):
    def __init__(self, base: nn.Module, num_classes: int, embed_dim: int):
        super().__init__()
        self.base = base
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.num_classes, self.embed_dim = num_classes, embed_dim
        self.z_dim = base.z_dim - embed_dim
        self.out_shape = base.out_shape
        if hasattr(base, "output_range"):
            self.output_range = base.output_range

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is None:
            y = balanced_labels(z.shape[0], self.num_classes, z.device)
        return self.base(torch.cat([z, self.embed(y).to(z.dtype)], dim=1))


class ConcatDiscriminator(nn.Module):
    """D(x, y) = D₀([x, e(y)]) on flat inputs (the MLP)."""

    def __init__(self, base: nn.Module, in_shape: tuple[int, ...], num_classes: int, embed_dim: int):
        super().__init__()
        self.base = base
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.in_shape, self.num_classes = tuple(in_shape), num_classes

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.base(torch.cat([x.reshape(x.shape[0], -1), self.embed(y).to(x.dtype)], dim=1))


class ProjectionDiscriminator(nn.Module):
    """D(x, y) = ψ(h(x)) + e(y)·φ(x): h = ``base.net[:-1]`` (the last feature map), ψ =
    ``base.net[-1]`` (D's linear logit layer), φ(x) = h summed over its positions (Miyato &
    Koyama's global sum pooling: the class term weighs channels, not a per-class template
    of the whole map)."""

    def __init__(self, base: nn.Module, num_classes: int, channels: int):
        super().__init__()
        self.base = base
        head = base.net[-1]
        if not isinstance(head, nn.Linear) or head.out_features != 1:
            raise TypeError("a projection discriminator needs a base whose last layer is nn.Linear(features, 1)")
        self.embed = nn.Embedding(num_classes, channels)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)   # the scale of DCGAN's initial weights
        self.in_shape, self.num_classes = base.in_shape, num_classes

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.base.net[:-1](x)
        phi = h.sum(dim=(2, 3))
        return self.base.net[-1](h).flatten() + (self.embed(y).to(phi.dtype) * phi).sum(1)


class ChannelConcatDiscriminator(nn.Module):
    """D(x, y) = D₀([x, onehot(y)]) on images: the class as K constant input maps (the
    conditional DCGAN of Mirza & Osindero's construction applied to convolutions)."""

    def __init__(self, base: nn.Module, in_shape: tuple[int, ...], num_classes: int):
        super().__init__()
        self.base = base
        self.in_shape, self.num_classes = tuple(in_shape), num_classes

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        maps = nn.functional.one_hot(y, self.num_classes).to(x.dtype)[:, :, None, None]
        return self.base(torch.cat([x, maps.expand(-1, -1, *x.shape[2:])], dim=1))
