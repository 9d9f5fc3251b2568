"""Conditional models p(x | c), the 2014 paper's first extension (§7): the class is an input
of both G and D.

- G(z, y) = G₀([z, e(y)]): a learned class embedding joined to the noise (for the MLP and
  the DCGAN generator alike; the DCGAN's first layer is a linear map of its input). With
  ``--g-class-input batchnorm`` (DCGAN) every BatchNorm of G is also class-conditional
  (de Vries et al. 2017; Miyato & Koyama 2018): its scale and shift are rows of per-class
  tables, so the class acts at every layer and not only through the first.
- D(x, y) for the MLP: D₀([x, e(y)]), the embedding joined to the input.
- D(x, y) for the DCGAN: the class as K one-hot input maps joined to the image's channels
  (``--class-input concat``, the default), or a projection discriminator (Miyato & Koyama
  2018, ``--class-input projection``), ``ψ(h(x)) + e(y)·φ(x)``. The projection collapsed
  within each class on MNIST (every sample of a class alike after 1,000 steps, with or
  without spectral normalisation; docs/results.md), so it is not the default. ``--class-input
  deep`` joins the one-hot maps to the input of every convolution of D, at each resolution.

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
        self.class_norms = any(isinstance(m, ClassBatchNorm2d) for m in base.modules())
        self.out_shape = base.out_shape
        if hasattr(base, "output_range"):
            self.output_range = base.output_range

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is None:
            y = balanced_labels(z.shape[0], self.num_classes, z.device)
        h = torch.cat([z, self.embed(y).to(z.dtype)], dim=1)
        if not self.class_norms:
            return self.base(h)
        for m in self.base.net:
            h = m(h, y) if isinstance(m, ClassBatchNorm2d) else m(h)
        return h


class ClassBatchNorm2d(nn.Module):
    """Class-conditional BatchNorm: ``γ[y] · BN(x) + β[y]``, the normalisation of
    ``nn.BatchNorm2d`` (its running statistics included, in ``.norm``) without its own affine
    map, and a scale and shift per class (tables initialised as DCGAN initialises BatchNorm:
    scales N(1, 0.02), shifts 0)."""

    def __init__(self, num_features: int, num_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(num_features, affine=False)
        self.scale = nn.Embedding(num_classes, num_features)
        self.shift = nn.Embedding(num_classes, num_features)
        nn.init.normal_(self.scale.weight, 1.0, 0.02)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        return h * self.scale(y).to(h.dtype)[:, :, None, None] + self.shift(y).to(h.dtype)[:, :, None, None]


def class_batchnorm(G: nn.Module, num_classes: int) -> nn.Module:
    """Replace every ``nn.BatchNorm2d`` of ``G.net`` by a :class:`ClassBatchNorm2d` of the same
    width (in place; returns G)."""
    for i, m in enumerate(G.net):
        if isinstance(m, nn.BatchNorm2d):
            G.net[i] = ClassBatchNorm2d(m.num_features, num_classes)
    return G


class ConcatDiscriminator(nn.Module):
    """D(x, y) = D₀([x, e(y)]) on flat inputs (the MLP)."""

    def __init__(self, base: nn.Module, in_shape: tuple[int, ...], num_classes: int, embed_dim: int):
        super().__init__()
        self.base = base
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.in_shape, self.num_classes = tuple(in_shape), num_classes

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.base(torch.cat([x.reshape(x.shape[0], -1), self.embed(y).to(x.dtype)], dim=1))


def _logit_layer(base: nn.Module, user: str) -> nn.Linear:
    """``base.net[-1]``, checked to be a single-logit ``nn.Linear`` (DCGAN's ``LogitHead`` is
    one), which ``user`` builds on."""
    head = base.net[-1]
    if not isinstance(head, nn.Linear) or head.out_features != 1:
        raise TypeError(f"{user} needs a base whose last layer is nn.Linear(features, 1)")
    return head


class ProjectionDiscriminator(nn.Module):
    """D(x, y) = ψ(h(x)) + e(y)·φ(x): h = ``base.net[:-1]`` (the last feature map), ψ =
    ``base.net[-1]`` (D's linear logit layer), φ(x) = h summed over its positions (Miyato &
    Koyama's global sum pooling: the class term weighs channels, not a per-class template
    of the whole map)."""

    def __init__(self, base: nn.Module, num_classes: int, channels: int):
        super().__init__()
        self.base = base
        _logit_layer(base, "a projection discriminator")
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


class DeepConcatDiscriminator(ChannelConcatDiscriminator):
    """D(x, y) with the class as K one-hot maps joined to the input of *every* convolution
    (at each resolution), not only to the image: ``base`` is a DCGAN discriminator built for
    the extra channels (``models.dcgan.DCGANDiscriminator(class_maps=K)``)."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        onehot = nn.functional.one_hot(y, self.num_classes).to(x.dtype)[:, :, None, None]
        h = x
        for m in self.base.net:
            if isinstance(m, nn.Conv2d):
                h = torch.cat([h, onehot.expand(-1, -1, *h.shape[2:])], dim=1)
            h = m(h)
        return h.flatten()


class AuxClassifierDiscriminator(nn.Module):
    """D(x, y) with an auxiliary classifier C(x) beside it (``--aux-classifier λ``; after the
    auxiliary classifier of AC-GAN, Odena et al. 2017): ``forward(x, y)`` is D's logit, as for
    every discriminator; ``forward(x, y, classes=True)`` also returns C's K class logits, in
    one call, so that a DistributedDataParallel wrapper sees (and synchronises) both.

    C is a separate network of D's architecture with K outputs and no class input: a D that
    takes the class as input maps (the default) would read the answer off its input if C
    shared its layers. The loop trains C with D, on the labels of the real examples only,
    and adds λ·CE(C(G(z, y)), y) to G's loss (``training/loop.py``)."""

    def __init__(self, D: nn.Module, classifier: nn.Module):
        super().__init__()
        self.D, self.classifier = D, classifier
        self.in_shape, self.num_classes = D.in_shape, D.num_classes

    def forward(self, x: torch.Tensor, y: torch.Tensor, classes: bool = False):
        logits = self.D(x, y)
        return (logits, self.classifier(x)) if classes else logits


class AuxClassifier(nn.Module):
    """C(x): K class logits from an unconditional discriminator's architecture, ``base``
    (an MLP or DCGAN D, freshly built), with its last layer, a single-logit ``nn.Linear``
    (DCGAN's ``LogitHead`` is one over the (h, w, c)-flattened map), widened to K outputs."""

    def __init__(self, base: nn.Module, num_classes: int):
        super().__init__()
        head = _logit_layer(base, "an auxiliary classifier")
        self.body = base.net[:-1]
        self.flat_input = isinstance(base.net[0], nn.Linear)     # an MLP takes flattened examples
        self.head = nn.Linear(head.in_features, num_classes)
        nn.init.normal_(self.head.weight, 0.0, 0.02)
        nn.init.zeros_(self.head.bias)
        self.in_shape, self.num_classes = base.in_shape, num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x.reshape(x.shape[0], -1) if self.flat_input else x)
        if h.ndim == 4:
            h = h.permute(0, 2, 3, 1)     # (h, w, c) order, as LogitHead: no copy for channels_last
        return self.head(h.reshape(h.shape[0], -1))
