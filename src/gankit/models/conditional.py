"""Conditional models p(x | c), the 2014 paper's first extension (§7): the class is an input
of both G and D.

- G(z, y) = G₀([z, e(y)]): a learned class embedding joined to the noise (for the MLP and
  the DCGAN generator alike; the DCGAN's first layer is a linear map of its input).
- D(x, y) for the MLP: D₀([x, e(y)]), the embedding joined to the input.
- D(x, y) for the DCGAN: a projection discriminator (Miyato & Koyama 2018),
  ``ψ(φ(x)) + e(y)·φ(x)``, where φ is D₀ up to its logit layer and ψ that layer.

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
    """D(x, y) = ψ(φ(x)) + e(y)·φ(x), with φ = ``base.net[:-1]`` (flattened) and ψ =
    ``base.net[-1]``, a linear logit layer."""

    def __init__(self, base: nn.Module, num_classes: int):
        super().__init__()
        self.base = base
        head = base.net[-1]
        if not isinstance(head, nn.Linear) or head.out_features != 1:
            raise TypeError("a projection discriminator needs a base whose last layer is nn.Linear(features, 1)")
        self.embed = nn.Embedding(num_classes, head.in_features)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)   # the scale of DCGAN's initial weights
        self.in_shape, self.num_classes = base.in_shape, num_classes

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.base.net[:-1](x)
        return self.base.net[-1](h).flatten() + (self.embed(y).to(h.dtype) * h.flatten(1)).sum(1)
