"""Model families: each name builds a (generator, discriminator) pair for a data shape.

The discriminator always returns one logit per example, shape [n]; ``D(x) = sigmoid``
of it. Register a new family by adding a builder ``(config, data_shape) -> (G, D)``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..errors import GankitError
from .mlp import MLPDiscriminator, MLPGenerator


def _build_mlp(cfg, data_shape):
    g = MLPGenerator(cfg.z_dim, data_shape, hidden=cfg.hidden, depth=cfg.depth)
    d = MLPDiscriminator(data_shape, hidden=cfg.hidden, depth=cfg.depth)
    return g, d


MODELS: dict[str, Callable] = {
    "mlp": _build_mlp,
}


def build_models(cfg, data_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    """Build G and D for ``cfg.model``, initialised from the current global torch RNG."""
    if cfg.model not in MODELS:
        raise GankitError(f"unknown model {cfg.model!r}; choose one of: {', '.join(sorted(MODELS))}")
    return MODELS[cfg.model](cfg, tuple(data_shape))


__all__ = ["MODELS", "build_models", "MLPGenerator", "MLPDiscriminator"]
