"""Data: named data sets and the sources that feed minibatches to the training loop.

A *source* is what Algorithm 1 draws from: ``source.next(m, generator)`` returns a fresh
minibatch of ``m`` examples; ``state_dict``/``load_state_dict`` carry any position it has,
so a resumed run draws exactly the batches the uninterrupted run would have drawn.
"""

from __future__ import annotations

import torch

from ..errors import GankitError
from .synthetic import SYNTHETIC, GaussianMixture

DATASETS = {name: spec.doc for name, spec in SYNTHETIC.items()}


class DistributionSource:
    """Infinite data: every minibatch is a set of fresh exact draws from a distribution."""

    def __init__(self, distribution, device: torch.device):
        self.distribution = distribution
        self.shape = tuple(distribution.shape)
        self.device = device

    def next(self, m: int, generator: torch.Generator) -> torch.Tensor:
        return self.distribution.sample(m, generator).to(self.device, non_blocking=True)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def get_distribution(name: str) -> GaussianMixture:
    """The closed-form distribution behind a named low-dimensional data set."""
    if name not in SYNTHETIC:
        raise GankitError(f"unknown data set {name!r}; choose one of: {', '.join(sorted(DATASETS))}")
    return SYNTHETIC[name].build()


def make_source(name: str, device: torch.device):
    """The training source for data set ``name``."""
    return DistributionSource(get_distribution(name), device)


__all__ = ["DATASETS", "GaussianMixture", "DistributionSource", "get_distribution", "make_source"]
