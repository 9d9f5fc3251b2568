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

__version__ = "0.1.0"

from . import data, evaluate, models, objectives, registries  # noqa: E402, F401  (they register their names)
from .api import train  # noqa: E402
from .config import Config, load_config  # noqa: E402
from .errors import GankitError  # noqa: E402
from .runs import Run, info, sample  # noqa: E402
from .training.loop import Callback  # noqa: E402

__all__ = ["Config", "load_config", "GankitError", "Run", "Callback", "info", "sample", "train", "objectives",
           "registries"]
