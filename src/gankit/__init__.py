"""gankit: train, sample, evaluate and explain generative adversarial networks.

The public API, kept short::

    from gankit import Config, train, objectives
    result = train(Config(data="ring8", steps=2000), out="runs/demo")
"""

from . import objectives
from .config import Config, load_config
from .errors import GankitError
from .runs import Run, info, sample
from .training import train

__version__ = "0.1.0"
__all__ = ["Config", "load_config", "GankitError", "Run", "info", "sample", "train", "objectives"]
