"""The GAN objective of Goodfellow et al. (2014), computed from discriminator logits.

The discriminator is ``D(x) = sigmoid(f(x))`` where ``f`` returns one logit per example.
Everything here takes logits, never probabilities, and uses the identities

    log D(x)     = log sigmoid(f)     = -softplus(-f)
    log(1 - D(x)) = log sigmoid(-f)   = -softplus(f)

which are finite for any finite logit (a sigmoid followed by a log underflows to -inf for
|f| of a few tens in float32 and is the usual source of NaN losses).

Value function (docs/theory.md), minibatch estimate::

    V~ = 1/m sum_i log D(x_i) + 1/m sum_i log(1 - D(G(z_i)))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .registries import LOSSES


def log_d(logits: torch.Tensor) -> torch.Tensor:
    """``log D(x) = log sigmoid(f)``, elementwise."""
    return -F.softplus(-logits)


def log_one_minus_d(logits: torch.Tensor) -> torch.Tensor:
    """``log(1 - D(x)) = log sigmoid(-f)``, elementwise."""
    return -F.softplus(logits)


def value(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Minibatch estimate Ṽ of V(D, G) from D's logits on data and on generated samples."""
    return log_d(real_logits).mean() + log_one_minus_d(fake_logits).mean()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``L_D = -Ṽ``: minimising it is gradient ascent on the value function."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor, kind: str = "nonsaturating") -> torch.Tensor:
    """Generator loss on D's logits for generated samples.

    ``"minimax"``: ``1/m sum log(1 - D(G(z)))`` — the game as written; its gradient with
    respect to the logit is ``-sigmoid(f)/m``, which vanishes when D rejects fakes.

    ``"nonsaturating"``: ``-1/m sum log D(G(z))`` — the paper's practical variant; its
    gradient is ``-(1 - sigmoid(f))/m``, close to ``-1/m`` exactly where the other vanishes.
    """
    if kind not in LOSSES:
        raise ValueError(f"generator loss kind must be one of {LOSSES.names()}, got {kind!r}")
    return LOSSES.get(kind)(fake_logits)


@LOSSES.register("nonsaturating", doc="-1/m sum log D(G(z)): the paper's practical generator loss (the default)")
def nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake_logits).mean()


@LOSSES.register("minimax", doc="1/m sum log(1 - D(G(z))): the game as written; saturates early in training")
def minimax_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return -F.softplus(fake_logits).mean()
