"""Data: named data sets and the sources that feed minibatches to the training loop.

A *source* is what Algorithm 1 draws from: ``source.next(m, generator)`` returns a fresh
minibatch of ``m`` examples; ``state_dict``/``load_state_dict`` carry its position, so a
resumed run draws exactly the batches the uninterrupted run would have drawn.

Data specs (``--data``):

    ring8, grid25, spiral, moons, gaussian1d, mixture1d   toy densities (synthetic.py)
    mnist, fashion-mnist                                  named image sets (registry.py)
    idx:DIR  folder:DIR  npz:FILE  cifar10:DIR            image files (images.py)
    points:FILE                                           your own N×d points (points.py)
    fake:C,H,W                                            random images, for speed work
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ..errors import GankitError
from ..registries import DATA
from .images import fit_image, load_array, load_cifar10, load_folder, load_idx_dir
from .labels import CIFAR10_CLASSES, FASHION_CLASSES, check_labels, cifar10_labels, folder_classes, npz_labels
from .points import PointsDensity, load_points, standardisation
from .registry import NAMED, resolve, resolve_labels
from .synthetic import SYNTHETIC, GaussianMixture


def parse_fake(spec: str) -> tuple[int, int, int]:
    try:
        c, h, w = (int(v) for v in spec.partition(":")[2].split(","))
    except ValueError:
        raise GankitError(f"fake data needs a shape fake:C,H,W (e.g. fake:3,64,64), got {spec!r}") from None
    if c not in (1, 3) or h <= 0 or w <= 0:
        raise GankitError(f"fake data shape must have 1 or 3 channels and positive sizes, got {spec!r}")
    return c, h, w


class _FreshDraws:
    """A source whose every minibatch is a fresh draw: no position to save, and a look at
    the data (``peek``) is just another draw from the caller's generator."""

    def peek(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Examples for a look (pictures, histograms) that leave the training stream alone."""
        return self.next(n, generator)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class DistributionSource(_FreshDraws):
    """Infinite data: every minibatch is a set of fresh exact draws from a distribution."""

    value_range = None

    def __init__(self, distribution, device: torch.device):
        self.distribution = distribution
        self.shape = tuple(distribution.shape)
        self.device = device

    def next(self, m: int, generator: torch.Generator) -> torch.Tensor:
        return self.distribution.sample(m, generator).to(self.device, non_blocking=True)

    def density(self):
        """What the pictures draw the samples over (here the closed-form density)."""
        return self.distribution

    def next_labeled(self, m: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Fresh draws and the mixture component of each (its class)."""
        x, y = self.distribution.sample(m, generator, with_components=True)
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


class EpochSource:
    """A finite data set held in memory (on the training device), drawn in epochs: a fresh
    random permutation per epoch, minibatches of consecutive indices, the incomplete last
    minibatch of an epoch dropped. Subclasses say how stored examples become a batch
    (:meth:`convert`)."""

    kind = "examples"

    def __init__(self, data: torch.Tensor, device: torch.device, origin: str = ""):
        self.data = data.to(device)
        self.shape = tuple(self.data.shape[1:])
        self.device, self.origin = device, origin
        self.perm: torch.Tensor | None = None
        self.pos = 0
        self.epoch = 0
        self.labels: torch.Tensor | None = None   # int64 [N] when the run is conditional

    def __len__(self) -> int:
        return self.data.shape[0]

    def convert(self, stored: torch.Tensor) -> torch.Tensor:
        return stored

    def _indices(self, m: int, generator: torch.Generator) -> torch.Tensor:
        n = self.data.shape[0]
        if m > n:
            raise GankitError(f"batch size {m} is larger than the data set ({n} {self.kind}); lower --batch-size")
        if self.perm is None or self.pos + m > n:
            self.perm = torch.randperm(n, generator=generator, device=generator.device).to(self.device)
            self.pos = 0
            self.epoch += 1
        idx = self.perm[self.pos:self.pos + m]
        self.pos += m
        return idx

    def next(self, m: int, generator: torch.Generator) -> torch.Tensor:
        return self.training_batch(self.data[self._indices(m, generator)], generator)

    def next_labeled(self, m: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The next minibatch (the same one :meth:`next` would give) and its labels."""
        idx = self._indices(m, generator)
        return self.training_batch(self.data[idx], generator), self.labels[idx]

    def training_batch(self, stored: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Stored examples -> what the models train on (``generator`` for any randomness)."""
        return self.convert(stored)

    def peek(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` random examples (without touching the epoch order) for pictures and histograms."""
        idx = torch.randperm(self.data.shape[0], generator=generator, device=generator.device)[:n]
        return self.convert(self.data[idx.to(self.device)])

    def state_dict(self) -> dict:
        return {"perm": self.perm.cpu() if self.perm is not None else None, "pos": self.pos, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.perm = state["perm"].to(self.device) if state.get("perm") is not None else None
        self.pos, self.epoch = int(state["pos"]), int(state["epoch"])


class ImageSource(EpochSource):
    """Images held as uint8 [N, C, H, W], converted per batch to floats in ``value_range``
    (the generator's output range)."""

    kind = "images"

    def __init__(self, images: np.ndarray, device: torch.device, origin: str = ""):
        # writable and contiguous (arrays read from IDX buffers are read-only; torch warns)
        super().__init__(torch.from_numpy(np.require(images, requirements=["C", "W"])), device, origin)
        self.value_range = (-1.0, 1.0)
        self.dequantize = False

    def to_range(self, u8: torch.Tensor) -> torch.Tensor:
        lo, hi = self.value_range
        return u8.float() * ((hi - lo) / 255.0) + lo

    convert = to_range

    def mean01(self) -> torch.Tensor:
        """The mean training image in [0, 1] units: k̄/255, or (k̄ + ½)/256 dequantised."""
        mean = self.data.float().mean(0)
        return (mean + 0.5) / 256 if self.dequantize else mean / 255

    def training_batch(self, stored: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """With ``dequantize``, level k becomes (k + u)/256 of the range, u ~ U[0, 1) drawn
        from the data stream: a continuous density whose 8-bit rounding is the data, so D
        cannot tell real pixels by their lying on the 256 levels."""
        if not self.dequantize:
            return self.to_range(stored)
        lo, hi = self.value_range
        u = torch.rand(stored.shape, generator=generator, device=generator.device).to(self.device)
        return (stored.float() + u) * ((hi - lo) / 256.0) + lo


class PointsSource(EpochSource):
    """Points [N, d] of the user's own, standardised for training (each coordinate to mean 0
    and standard deviation 1; ``mean`` and ``std``, saved in checkpoints, map G's outputs
    back to the data's units)."""

    kind = "points"
    value_range = None

    def __init__(self, points: np.ndarray, device: torch.device, origin: str = ""):
        self.points = np.asarray(points, dtype=np.float64)
        self.mean, self.std = standardisation(self.points)
        x = torch.as_tensor(self.points)
        super().__init__(((x - self.mean) / self.std).float(), device, origin)

    def density(self) -> PointsDensity:
        """What the pictures draw the samples over: a kernel density estimate of the data."""
        return PointsDensity(self.points, os.path.basename(self.origin) or "points")

    def state_dict(self) -> dict:
        return {**super().state_dict(), "mean": self.mean, "std": self.std}


class FakeSource(_FreshDraws):
    """Random uniform images drawn fresh each minibatch (no data set), for speed work."""

    def __init__(self, shape: tuple[int, int, int], device: torch.device):
        self.shape, self.device = tuple(shape), device
        self.value_range = (-1.0, 1.0)

    def next(self, m: int, generator: torch.Generator) -> torch.Tensor:
        lo, hi = self.value_range
        x = torch.rand(m, *self.shape, generator=generator, device=generator.device)
        return (x * (hi - lo) + lo).to(self.device)


def toy_names() -> list[str]:
    """The registered low-dimensional data sets with a closed-form density."""
    return [n for n in DATA.names() if DATA.entry(n).meta.get("distribution")]


def get_distribution(name: str) -> GaussianMixture:
    """The closed-form distribution behind a registered low-dimensional data set, or for
    ``points:FILE`` the data's :class:`PointsDensity`."""
    if name not in DATA and ":" in name and DATA.lookup(name).meta.get("density"):
        return DATA.lookup(name).meta["density"](name)
    factory = DATA.entry(name).meta.get("distribution") if name in DATA else None
    if factory is None:
        raise GankitError(f"{name!r} is not a low-dimensional data set with a known density; "
                          f"choose one of: {', '.join(sorted(toy_names()))}")
    return factory()


def is_mode_benchmark(name: str) -> bool:
    """Whether the mode-coverage metrics apply to a data set (a well-separated mixture)."""
    return name in toy_names() and get_distribution(name).mode_benchmark


def register_toy(name: str, distribution, doc: str = "", defaults: dict | None = None) -> None:
    """Register a low-dimensional data set given by a factory of its distribution (an
    object with ``sample``, ``log_prob``, ``shape``, ``bounds``, ``means``, ``stds``,
    ``mode_benchmark`` and ``name``, as :class:`GaussianMixture` has). ``defaults``: options
    that a run on it starts from where the user sets none (like a model's own defaults)."""
    DATA.register(name, _toy_source, doc=doc, kind="toy", distribution=distribution, defaults=dict(defaults or {}))


def resize_images(images: np.ndarray, size: int, policy: str, channels: int, origin: str) -> np.ndarray:
    """Bring uint8 [N, C, H, W] images to ``size`` by ``policy`` and to ``channels``."""
    if channels and images.shape[1] != channels:
        if channels == 3:
            images = np.repeat(images, 3, axis=1)
        else:  # ITU-R 601 luma, as Pillow's convert("L")
            w = np.array([0.299, 0.587, 0.114])[None, :, None, None]
            images = np.rint((images * w).sum(1, keepdims=True)).astype(np.uint8)
    if size and images.shape[2:] != (size, size):
        if policy == "none":
            raise GankitError(f"{origin}: images are {images.shape[3]}×{images.shape[2]}, not {size}×{size}; "
                              "choose a resize policy (--resize resize or --resize center-crop)")
        from PIL import Image

        out = np.empty((images.shape[0], images.shape[1], size, size), dtype=np.uint8)
        for i, im in enumerate(images):
            pil = Image.fromarray(im[0] if im.shape[0] == 1 else im.transpose(1, 2, 0))
            a = np.asarray(fit_image(pil, size, policy))
            out[i] = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
        images = out
    return images


def load_images(spec: str, split: str = "train", data_dir: str | None = None) -> tuple[np.ndarray, str]:
    """uint8 [N, C, H, W] images for an image data spec, and a description of their origin."""
    e = DATA.lookup(spec)
    if e.meta.get("images") is None:
        raise GankitError(f"{spec!r} is not an image data set")
    return e.meta["images"](spec, split, data_dir)


def make_source(cfg_or_name, device: torch.device):
    """The training source for a config (or a bare data spec), built by its registered builder."""
    if isinstance(cfg_or_name, str):
        from ..config import Config
        cfg = Config(data=cfg_or_name)
    else:
        cfg = cfg_or_name
    DATA.check(cfg.data)
    source = DATA.lookup(cfg.data).obj(cfg, device)
    if getattr(cfg, "conditional", False):
        attach_labels(source, cfg)
    return source


def apply_data_options(source, cfg) -> None:
    """The config's options on a built training source: ``subset`` (examples START:STOP,
    labels with them) and ``dequantize``."""
    if getattr(cfg, "subset", ""):
        if not isinstance(source, ImageSource):
            raise GankitError(f"--subset applies to image data sets, not to {cfg.data}")
        start, stop = (int(v) for v in cfg.subset.split(":"))
        if stop > len(source):
            raise GankitError(f"--subset {cfg.subset} reaches past the {len(source)} images of {cfg.data}")
        source.data = source.data[start:stop].clone()
        source.origin = f"{source.origin}, examples {start}:{stop}"
        if source.labels is not None:
            source.labels = source.labels[start:stop].clone()
            source.class_counts = torch.bincount(source.labels.cpu(), minlength=len(source.classes)).double()
            if (source.class_counts == 0).any():
                missing = source.classes[int(torch.nonzero(source.class_counts == 0)[0])]
                raise GankitError(f"--subset {cfg.subset} holds no example of class {missing!r}")
    if getattr(cfg, "dequantize", False):
        if not isinstance(source, ImageSource):
            raise GankitError(f"--dequantize applies to 8-bit images, not to {cfg.data}")
        source.dequantize = True


def attach_labels(source, cfg) -> None:
    """Give a source its class labels (``source.labels``, ``source.classes``) for a
    conditional run, or refuse data that have none."""
    if isinstance(source, DistributionSource):
        k = len(source.distribution.means)
        if k < 2:
            raise GankitError(f"{cfg.data} is one Gaussian: it has no classes for --conditional")
        source.classes = [f"mode {i}" for i in range(k)]
        source.class_counts = source.distribution.weights.double()
        return
    reader = DATA.lookup(cfg.data).meta.get("labels")
    if reader is None or not hasattr(source, "data"):
        raise GankitError(f"{cfg.data} has no class labels; --conditional takes mnist, fashion-mnist, cifar10:DIR, "
                          "folder:DIR (a subfolder per class), npz:FILE (with a y array) or a toy mixture")
    y, names = reader(cfg.data, "train", cfg.data_dir or None)
    y = check_labels(y, len(source), f"{cfg.data} labels")
    source.labels = torch.from_numpy(y).to(source.device)
    source.classes = list(names) if names else [str(i) for i in range(int(y.max()) + 1)]
    if len(source.classes) != int(y.max()) + 1:
        raise GankitError(f"{cfg.data}: {len(source.classes)} class names for {int(y.max()) + 1} classes")
    source.class_counts = torch.bincount(source.labels.cpu()).double()


# ---------------------------------------------------------------------- the registered data sets
def _toy_source(cfg, device):
    return DistributionSource(get_distribution(cfg.data), device)


def _fake_source(cfg, device):
    c, h, w = parse_fake(cfg.data)
    c = cfg.channels or c
    if cfg.image_size:
        h = w = cfg.image_size
    return FakeSource((c, h, w), device)


def _file_source(cfg, device):
    """Images from files (a named set, idx:, npz:, cifar10:), resized as configured."""
    images, origin = load_images(cfg.data, "train", cfg.data_dir or None)
    return ImageSource(resize_images(images, cfg.image_size, cfg.resize, cfg.channels, origin), device, origin)


def _folder_source(cfg, device):
    arg = os.path.expanduser(cfg.data.partition(":")[2])
    images = load_folder(arg, cfg.image_size, cfg.resize, cfg.channels)
    return ImageSource(resize_images(images, cfg.image_size, cfg.resize, cfg.channels, arg), device, arg)


def _points_source(cfg, device):
    return PointsSource(load_points(_path(cfg.data)), device, _path(cfg.data))


def _path(spec: str) -> str:
    return os.path.expanduser(spec.partition(":")[2])


for _name, _spec in SYNTHETIC.items():
    register_toy(_name, _spec.build, _spec.doc, _spec.defaults)
def _named_labels(spec, split, data_dir):
    return resolve_labels(spec, split, data_dir), (FASHION_CLASSES if spec == "fashion-mnist" else None)


for _name, _spec in NAMED.items():
    DATA.register(_name, _file_source, doc=_spec.doc, kind="images",
                  images=lambda spec, split, data_dir: resolve(spec, split, data_dir), labels=_named_labels)
DATA.register("idx", _file_source, prefix=True, kind="images", doc="a folder of MNIST-style IDX files",
              images=lambda spec, split, data_dir: (load_idx_dir(_path(spec), split), _path(spec)))
DATA.register("folder", _folder_source, prefix=True, kind="images", doc="a folder of PNG/JPEG/BMP images",
              labels=lambda spec, split, data_dir: folder_classes(_path(spec)))
DATA.register("npz", _file_source, prefix=True, kind="images", doc="a .npy or .npz array of images",
              images=lambda spec, split, data_dir: (load_array(_path(spec)), _path(spec)),
              labels=lambda spec, split, data_dir: (npz_labels(_path(spec)), None))
DATA.register("cifar10", _file_source, prefix=True, kind="images", doc="a folder of CIFAR-10 python batches",
              images=lambda spec, split, data_dir: (load_cifar10(_path(spec), split), _path(spec)),
              labels=lambda spec, split, data_dir: (cifar10_labels(_path(spec), split), CIFAR10_CLASSES))
DATA.register("points", _points_source, prefix=True, kind="points",
              doc="your own N×d points (.npy, .npz, .csv), for the MLP GAN",
              density=lambda spec: PointsDensity(load_points(_path(spec)), os.path.basename(_path(spec))))
DATA.register("fake", _fake_source, prefix=True, kind="images", doc="random images of shape C,H,W (speed work)",
              check=parse_fake)


__all__ = ["GaussianMixture", "DistributionSource", "ImageSource", "PointsSource", "PointsDensity", "FakeSource",
           "get_distribution", "load_points",
           "register_toy", "is_mode_benchmark", "toy_names",
           "make_source", "load_images", "resize_images"]
