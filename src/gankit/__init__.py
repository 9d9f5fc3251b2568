"""gankit: train, sample, evaluate and explain generative adversarial networks.

The public API, kept short::

    from gankit import Config, train, objectives
    result = train(Config(data="ring8", steps=2000), out="runs/demo")

Importing the package imports every subsystem, so that the data sets, models, generator
losses and metrics have registered their names (:mod:`gankit.registries`) before any
configuration is validated.
"""

from . import data, evaluate, models, objectives, registries  # noqa: F401  (they register their names)
from .config import Config, load_config
from .errors import GankitError
from .runs import Run, info, sample
from .training import train

__version__ = "0.1.0"
__all__ = ["Config", "load_config", "GankitError", "Run", "info", "sample", "train", "objectives", "registries"]
