"""Training: Algorithm 1 (loop.py), its state (state.py), checkpoints, callbacks, the
runtime policy (runtime.py) and the run assembly (run.py)."""

from .loop import GANTrainer, StepStats, run_loop
from .run import TrainResult, train

__all__ = ["GANTrainer", "StepStats", "run_loop", "train", "TrainResult"]
