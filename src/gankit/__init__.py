"""gankit: train, sample, evaluate and explain generative adversarial networks.

The public API, kept short::

    import gankit
    run = gankit.train(data="ring8", steps=2000, out="runs/demo", overwrite=True)
    samples = run.sample(1000, seed=0)          # a tensor in the data's space
    scores = run.evaluate(["modes"])
    run = gankit.Run.open("runs/demo")          # G, D, config, metrics of a run directory

Importing the package imports every subsystem, so that the data sets, models, generator
losses and metrics have registered their names (:mod:`gankit.registries`) before any
configuration is validated.
"""

from . import data, evaluate, models, objectives, registries  # noqa: F401  (they register their names)
from .api import train
from .config import Config, load_config
from .errors import GankitError
from .runs import Run, info, sample
from .training.loop import Callback
from .version import __version__

__all__ = ["__version__", "Config", "load_config", "GankitError", "Run", "Callback", "info", "sample", "train",
           "objectives", "registries"]
