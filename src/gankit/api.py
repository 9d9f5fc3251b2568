"""The Python API: ``gankit.train(...) -> Run``.

    import gankit
    run = gankit.train(data="ring8", steps=2000, out="runs/demo", overwrite=True)
    x = run.sample(1000, seed=0)            # a tensor in the data's space
    scores = run.evaluate(["modes"])

Your own modules, data and callbacks::

    run = gankit.train(generator=G, discriminator=D, data=images_or_points, callbacks=[cb], steps=500)

``data`` may be a tensor or array of images [N, C, H, W] (uint8, or floats in [0, 1]) or of
points [N, d], or a ``torch.utils.data.Dataset`` of them (items ``x`` or ``(x, label)``);
points are standardised for training and samples come back in their units. Messages go
through :mod:`logging` (the logger ``gankit``), so ``logging.getLogger("gankit").setLevel``
silences them; ``progress=False`` turns the progress lines off.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import torch

from .config import Config, describe_defaults, with_own_defaults
from .data import ImageSource, PointsSource
from .data.images import to_nchw_uint8
from .errors import GankitError
from .registries import DATA, MODELS
from .rundir import display, is_run_dir, list_checkpoints
from .runs import Run
from .training.run import UserParts, check_resume_changes
from .training.run import train as train_run

IN_MEMORY = "python"   # the data spec of a run trained on data given in Python
CUSTOM = "custom"      # the model name of a run trained on modules given in Python


def train(config: Config | dict | None = None, *, out: str | Path | None = None, resume: bool = False,
          overwrite: bool = False, progress: bool = True, generator: torch.nn.Module | None = None,
          discriminator: torch.nn.Module | None = None, data=None, callbacks=(), runs_root: str | Path = "runs",
          **options) -> Run:
    """Train a GAN and return its :class:`~gankit.runs.Run`, with the trained ``G`` and ``D``.

    ``config`` is a :class:`~gankit.config.Config` or a mapping of options; ``options`` are
    more options (``steps=2000``) and win over it. ``out`` is the run directory (a new
    numbered one under ``runs_root`` if None). An existing run is never overwritten unless
    ``overwrite=True`` says so (it must be a gankit run directory or empty; re-running a
    notebook cell), and ``resume=True`` continues it instead."""
    if (generator is None) != (discriminator is None):
        raise GankitError("pass both generator and discriminator, or neither")
    given = dict(config.to_dict() if isinstance(config, Config) else (config or {}))
    given.update(options)
    if data is not None and not isinstance(data, str):
        given["data"] = IN_MEMORY
    elif isinstance(data, str):
        given["data"] = data
    if generator is not None:
        given["model"] = CUSTOM
    user = UserParts(models=(generator, discriminator) if generator is not None else None,
                     source=_source_of(data) if data is not None and not isinstance(data, str) else None,
                     callbacks=list(callbacks))
    if resume:
        if out is None:
            raise GankitError("resume=True needs out=, the run to continue")
        _, ckpt = Run.open(out).checkpoint("latest")
        saved = Config.from_dict(ckpt["config"], source=f"the checkpoint of {display(out)}")
        wanted = {k: v for k, v in given.items() if k in options or config is not None}
        cfg = check_resume_changes(saved, wanted, done=int(ckpt["step"]))
    else:
        given, applied = with_own_defaults(given)
        if applied:
            logging.getLogger("gankit").info(describe_defaults(applied))
        cfg = Config.from_dict(given, source="options").validate()
        if overwrite and out is not None:
            _clear(Path(out))
    result = train_run(cfg, out=out, resume=resume, progress=progress, runs_root=runs_root, user=user)
    run = Run.open(result.run_dir, *(user.models or (None, None))).load("latest")
    run.interrupted = result.interrupted
    return run


def _clear(out: Path) -> None:
    """Remove a previous run at ``out`` (``overwrite=True``), refusing anything else."""
    if not out.exists():
        return
    if out.is_dir() and not any(out.iterdir()):
        return
    if not (is_run_dir(out) or list_checkpoints(out)):
        raise GankitError(f"overwrite=True removes a gankit run directory, and {display(out)} is not one; "
                          "choose another out")
    shutil.rmtree(out)


def _source_of(data):
    """A data-source builder for a tensor, an array or a Dataset of images or points."""
    x = _as_array(data)
    if x.ndim == 4 or (x.ndim == 3 and x.shape[1] not in (1, 2, 3) and x.dtype == np.uint8):
        images = to_nchw_uint8(x, "data")
        return lambda cfg, device: ImageSource(images, device, "data given in Python")
    if x.ndim == 2 or x.ndim == 1:
        pts = x.reshape(len(x), -1).astype(np.float64)
        if len(pts) < 2 or not np.isfinite(pts).all():
            raise GankitError("data: points must be at least 2 rows of finite numbers")
        return lambda cfg, device: PointsSource(pts, device, "points given in Python")
    raise GankitError(f"data must be images [N, C, H, W] or points [N, d], got shape {tuple(x.shape)}")


def _as_array(data) -> np.ndarray:
    if isinstance(data, torch.Tensor):
        return data.detach().cpu().numpy()
    if isinstance(data, np.ndarray):
        return data
    if isinstance(data, torch.utils.data.Dataset):
        items = [data[i] for i in range(len(data))]
        items = [it[0] if isinstance(it, (tuple, list)) else it for it in items]
        return np.stack([it.detach().cpu().numpy() if isinstance(it, torch.Tensor) else np.asarray(it)
                         for it in items])
    raise GankitError(f"data must be a data set's name, a tensor, an array or a torch Dataset, "
                      f"got {type(data).__name__}")


def _given_in_python(kind: str):
    def refuse(*args, **kwargs):
        raise GankitError(f"this run's {kind} were given in Python; open it with gankit.Run.open(path"
                          + (", generator=G, discriminator=D)" if kind == "models" else ") and gankit.train(data=…)"))
    return refuse


DATA.register(IN_MEMORY, _given_in_python("data"), doc="data given to gankit.train in Python", kind="python",
              hidden=True)
MODELS.register(CUSTOM, _given_in_python("models"), doc="generator and discriminator given to gankit.train",
                hidden=True)
