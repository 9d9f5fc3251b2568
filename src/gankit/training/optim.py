"""The optimisers and the hyperparameter schedule of a run.

The schedule is a pure function of the step, so a resumed run needs no scheduler state.
"""

from __future__ import annotations

import torch

from ..config import Config


def make_schedule(cfg: Config):
    """Hyperparameters at a step (0-based: the step about to be taken), or None if constant.

    ``linear``: learning rates fall linearly to 0 at ``steps``. ``exponential``: divided by
    ``lr_decay`` each step, floored at ``lr_min`` (the paper's MNIST schedule). SGD momentum
    rises linearly from ``momentum`` to ``momentum_final`` over ``momentum_ramp`` steps.
    """
    parts = []
    if cfg.lr_schedule == "linear":
        parts.append(lambda t: {"lr_factor": max(0.0, 1.0 - t / cfg.steps)})
    elif cfg.lr_schedule == "exponential":
        parts.append(lambda t: {"lr_factor": cfg.lr_decay ** (-t), "lr_min": cfg.lr_min})
    if cfg.optimizer == "sgd" and cfg.momentum_ramp > 0:
        parts.append(lambda t: {"momentum": cfg.momentum + (cfg.momentum_final - cfg.momentum)
                                * min(1.0, t / cfg.momentum_ramp)})
    if not parts:
        return None
    return lambda t: {k: v for p in parts for k, v in p(t).items()}


def make_optimizer(name: str, params, lr: float, cfg: Config, fused: bool = False) -> torch.optim.Optimizer:
    """Adam or SGD with momentum. ``fused``: one kernel over all parameters (used for the
    convolutional models and on GPUs, where it is faster); otherwise Adam uses the
    multi-tensor ``foreach`` implementation, which the small models' defaults were tuned
    with (fused Adam rounds differently, and a GAN's trajectory depends on such rounding).
    SGD is always fused where torch has it: its fused step gives bitwise the same
    parameters as ``foreach`` (tests/training/test_loop.py) and took 1.45 ms instead of
    1.86 ms per step for the paper's MNIST model here."""
    params = list(params)
    fused = fused or name == "sgd"
    cls, kw = (torch.optim.Adam, dict(betas=(cfg.beta1, cfg.beta2))) if name == "adam" else \
        (torch.optim.SGD, dict(momentum=cfg.momentum))
    if fused:
        try:
            return cls(params, lr=lr, fused=True, **kw)
        except (RuntimeError, TypeError, ValueError):
            pass
    return cls(params, lr=lr, foreach=True, **kw)
