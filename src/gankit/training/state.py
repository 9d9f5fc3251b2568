"""The training state: everything a checkpoint holds, with ``state_dict`` / ``load_state_dict``.

Exact resume means that N steps in one go and N/2 steps + resume + N/2 steps give bitwise
identical weights (on CPU). For that a checkpoint carries both models, both optimizers,
the gradient scaler (fp16), the data source's position in its epoch, every random state
(global torch, CUDA, numpy, Python, and the run's own data and noise generators), the
step, the learning-rate scale left by rollbacks, and what the run computed with
(precision, threads, CPU kernels).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..config import Config
from ..errors import GankitError
from .checkpoint import rng_state, set_rng_state
from .loop import GANTrainer


def derive_seeds(seed: int) -> dict[str, int]:
    """Independent seeds for each random stream of a run, derived from the one seed."""
    s = np.random.SeedSequence(seed).generate_state(5, dtype=np.uint64)   # a prefix of the same stream for 4
    return {"init": int(s[0] >> 1), "data": int(s[1] >> 1), "noise": int(s[2] >> 1), "eval": int(s[3] >> 1),
            "augment": int(s[4] >> 1)}


def seed_globals(seed: int, init_seed: int) -> None:
    """The global streams: torch's (model initialisation, dropout), Python's and numpy's."""
    torch.manual_seed(init_seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


@dataclass
class TrainingState:
    """The state of a run, around the trainer that updates it.

    ``runtime`` is what the run computes with (``precision``, ``threads``, ``cpu_kernels``);
    ``elapsed`` returns the run's wall time so far (set by the statistics callback), and
    ``elapsed_before`` is the wall time a restored checkpoint had recorded.
    """

    cfg: Config
    trainer: GANTrainer
    data_shape: tuple
    runtime: dict
    elapsed: Callable[[], float] = field(default=lambda: 0.0)
    elapsed_before: float = 0.0

    @property
    def step(self) -> int:
        return self.trainer.step_count

    def generators(self) -> dict[str, torch.Generator]:
        gens = {"data": self.trainer.data_generator, "noise": self.trainer.noise_generator}
        if self.trainer.stab.augment_generator is not None:
            gens["augment"] = self.trainer.stab.augment_generator
        return gens

    def state_dict(self) -> dict:
        t = self.trainer
        return {
            "step": t.step_count,
            "config": self.cfg.to_dict(),
            "G": t.G.state_dict(), "D": t.D.state_dict(),
            "opt_g": t.opt_g.state_dict(), "opt_d": t.opt_d.state_dict(),
            "data_state": t.data.state_dict(),
            "rng": rng_state(self.generators()),
            "elapsed": self.elapsed(),
            "data_shape": list(self.data_shape),
            "precision": self.runtime["precision"],
            "threads": self.runtime["threads"],
            "cpu_kernels": bool(self.runtime.get("cpu_kernels", False)),
            "lr_scale": t.lr_scale,
            "scaler": t.scaler.state_dict() if t.scaler is not None else {},
            **({"G_ema": t.stab.ema.state_dict()} if t.stab.ema is not None else {}),
            **({"classes": list(t.data.classes)} if t.class_probs is not None else {}),
        }

    def load_state_dict(self, ck: dict) -> None:
        """Put the run back in the state of checkpoint ``ck`` (models, optimizers, scaler,
        data position, random streams, step, learning-rate scale)."""
        t = self.trainer
        if not ck["opt_g"] or not ck["opt_d"]:
            raise GankitError("this checkpoint holds no optimiser states (a copy kept for sampling and "
                              "scoring): it cannot be resumed")
        t.G.load_state_dict(ck["G"])
        t.D.load_state_dict(ck["D"])
        t.opt_g.load_state_dict(ck["opt_g"])
        t.opt_d.load_state_dict(ck["opt_d"])
        if t.scaler is not None and ck.get("scaler"):
            t.scaler.load_state_dict(ck["scaler"])
        if t.stab.ema is not None:
            t.stab.ema.load_state_dict(ck["G_ema"])
        t.data.load_state_dict(ck["data_state"])
        set_rng_state(ck["rng"], self.generators())
        t.step_count = int(ck["step"])
        self.elapsed_before = float(ck.get("elapsed", 0.0))
        t.scale_learning_rates(float(ck.get("lr_scale", 1.0)))
