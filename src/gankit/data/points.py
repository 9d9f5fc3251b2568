"""Points of your own (``--data points:FILE``): N×d numbers from ``.npy``, ``.npz`` or a
text table (``.csv``, ``.tsv``, ``.txt``), d ≥ 1.

G learns them standardised (each coordinate to mean 0 and standard deviation 1, the
statistics kept in checkpoints); samples, pictures and metrics are in the data's own units.
For pictures of 1-D and 2-D data the density behind the samples is a Gaussian kernel
density estimate of the data with one bandwidth per coordinate (Scott's rule). It is
written here rather than taken from scipy because ``scipy.stats.gaussian_kde`` shapes its
kernel by the data's full covariance, which smears well-separated clusters along the
direction that joins them.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import GankitError, shorten
from .images import check_fits_in_memory, read_array_file

MAX_DIM = 256          # points: is for low-dimensional data; images have their own specs
KDE_POINTS = 5_000     # the density picture estimates from at most this many points
TEXT_SUFFIXES = (".csv", ".tsv", ".txt")


def load_points(path: str | Path) -> np.ndarray:
    """float64 [N, d] points from a file, checked: numbers only, rows of one length, all
    finite, at least 2 points, 1 ≤ d ≤ :data:`MAX_DIM`."""
    path = Path(os.path.expanduser(str(path)))
    if not path.exists():
        raise GankitError(f"points file {shorten(str(path))} does not exist")
    if not path.is_file():
        raise GankitError(f"points file {shorten(str(path))} is not a regular file")
    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz"):
        a = read_array_file(path, ("points", "x", "arr_0"))
    elif suffix in TEXT_SUFFIXES:
        a = read_text_table(path)
    else:
        raise GankitError(f"points file {shorten(str(path))}: give a .npy, .npz, .csv, .tsv or .txt file")
    return check_points(np.asarray(a), str(path))


def check_points(a: np.ndarray, source: str) -> np.ndarray:
    if a.dtype.kind not in "biuf":
        raise GankitError(f"{source}: holds {a.dtype} values, not numbers")
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise GankitError(f"{source}: points are an N×d array, this one has shape {tuple(a.shape)}")
    n, d = a.shape
    if n < 2:
        raise GankitError(f"{source}: {n} point{'s' if n != 1 else ''}; a GAN needs at least 2")
    if d < 1:
        raise GankitError(f"{source}: points with no coordinates (shape {n}×0)")
    if d > MAX_DIM:
        raise GankitError(f"{source}: {d:,} coordinates per point; points: takes at most {MAX_DIM} "
                          "(images go in --data npz:FILE or folder:DIR)")
    bad = ~np.isfinite(a).all(1) if a.dtype.kind == "f" else np.zeros(n, bool)
    if bad.any():
        raise GankitError(f"{source}: row {int(np.argmax(bad)) + 1} holds NaN or Inf "
                          f"({int(bad.sum()):,} of {n:,} rows do); remove or fill them")
    return a.astype(np.float64)


def read_text_table(path: Path) -> np.ndarray:
    """A table of numbers: comma, semicolon, tab or blank separated, an optional header
    line, ``#`` comments. numpy's reader parses it; a table it refuses is scanned again
    to name the first bad line."""
    check_fits_in_memory(path.stat().st_size * 4, str(path))
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except UnicodeDecodeError:
        raise GankitError(f"{path}: not a text table (it is not UTF-8 text)") from None
    except OSError as exc:
        raise GankitError(f"cannot read {path}: {exc.strerror or exc}") from None
    rows = [(i + 1, ln) for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")]
    if not rows:
        raise GankitError(f"{path}: no numbers in the file")
    sep = next((s for s in (",", ";", "\t") if s in rows[0][1]), None)
    if not _numbers(rows[0][1], sep):   # a header line
        rows = rows[1:]
    try:
        return np.loadtxt([ln for _, ln in rows], delimiter=sep, ndmin=2, dtype=np.float64)
    except ValueError:
        raise GankitError(_first_bad_line(path, rows, sep)) from None


def _numbers(line: str, sep: str | None) -> list[float] | None:
    try:
        return [float(v) for v in line.split(sep)]
    except ValueError:
        return None


def _first_bad_line(path: Path, rows: list[tuple[int, str]], sep: str | None) -> str:
    width = None
    for lineno, line in rows:
        values = _numbers(line, sep)
        if values is None:
            return f"{path}: line {lineno} is not a row of numbers: {shorten(line)}"
        if width is None:
            width = len(values)
        elif len(values) != width:
            return (f"{path}: line {lineno} has {len(values)} value{'s' if len(values) != 1 else ''} where the first "
                    f"row has {width}")
    return f"{path}: not a table of numbers"


def standardisation(points: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and standard deviation (unbiased; 1 for a constant coordinate) that map the
    points to the units G learns in."""
    x = torch.as_tensor(points, dtype=torch.float64)
    std = x.std(0)
    return x.mean(0), torch.where(std > 0, std, torch.ones_like(std))


class PointsDensity:
    """The data of a ``points:`` run as the training pictures and the metrics need them:
    reference draws (rows of the data), a density for the pictures (a kernel estimate of
    the data), a box that holds them, and the map between G's units and the data's."""

    mode_benchmark = False

    def __init__(self, points: np.ndarray, name: str):
        self.points = np.asarray(points, dtype=np.float64)
        self.name = name
        self.shape = (self.points.shape[1],)
        self.mean, self.std = standardisation(self.points)
        self._kde = None

    def to_data_units(self, y):
        return y * self.std.to(y) + self.mean.to(y)

    def to_model_units(self, x):
        return (x - self.mean.to(x)) / self.std.to(x)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` rows of the data: without replacement when there are enough, else with."""
        N = len(self.points)
        idx = (torch.randperm(N, generator=generator)[:n] if n <= N
               else torch.randint(N, (n,), generator=generator))
        return torch.from_numpy(self.points[idx.numpy()])

    def log_prob(self, x) -> torch.Tensor:
        """log of the kernel density estimate at the points ``x`` [n, d] (data units)."""
        if self._kde is None:
            rng = np.random.default_rng(0)
            pts = self.points if len(self.points) <= KDE_POINTS else \
                self.points[rng.choice(len(self.points), KDE_POINTS, replace=False)]
            h = self.std * len(pts) ** (-1.0 / (pts.shape[1] + 4))   # Scott's rule, per coordinate
            self._kde = (torch.from_numpy(pts), h)
        centres, h = self._kde
        q = torch.as_tensor(np.asarray(x, dtype=np.float64)).reshape(-1, centres.shape[1])
        norm = math.log(len(centres)) + torch.log(h).sum() + 0.5 * centres.shape[1] * math.log(2 * math.pi)
        out = [torch.logsumexp(-0.5 * (((c[:, None, :] - centres[None]) / h) ** 2).sum(-1), dim=1) - norm
               for c in q.split(2048)]
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)

    @property
    def bounds(self) -> np.ndarray:
        """A [d, 2] box holding the data with a margin."""
        lo, hi = np.percentile(self.points, [0.1, 99.9], axis=0)
        margin = 0.15 * (hi - lo) + 1e-9
        return np.stack([lo - margin, hi + margin], axis=1)
