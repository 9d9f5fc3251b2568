"""Training: Algorithm 1 (loop.py), checkpoints, callbacks, and the run assembly (run.py)."""

from .loop import GANTrainer, StepStats, run_loop, sample_noise
from .run import TrainResult, train

__all__ = ["GANTrainer", "StepStats", "run_loop", "sample_noise", "train", "TrainResult"]
