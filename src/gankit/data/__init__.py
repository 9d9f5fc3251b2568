"""Data: named data sets and the sources that feed minibatches to the training loop.

A *source* is what Algorithm 1 draws from: ``source.next(m, generator)`` returns a fresh
minibatch of ``m`` examples; ``state_dict``/``load_state_dict`` carry its position, so a
resumed run draws exactly the batches the uninterrupted run would have drawn.

Data specs (``--data``):

    ring8, grid25, spiral, moons, gaussian1d, mixture1d   toy densities (synthetic.py)
    mnist, fashion-mnist                                  named image sets (registry.py)
    idx:DIR  folder:DIR  npz:FILE  cifar10:DIR            image files (images.py)
    fake:C,H,W                                            random images, for speed work
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..errors import GankitError
from .images import load_array, load_cifar10, load_folder, load_idx_dir
from .registry import NAMED, resolve
from .synthetic import SYNTHETIC, GaussianMixture

DATASETS = {**{name: spec.doc for name, spec in SYNTHETIC.items()},
            **{name: spec.doc for name, spec in NAMED.items()}}
PREFIXES = {"idx": "a folder of MNIST-style IDX files", "folder": "a folder of PNG/JPEG/BMP images",
            "npz": "a .npy or .npz array of images", "cifar10": "a folder of CIFAR-10 python batches",
            "fake": "random images of shape C,H,W"}


def check_data_spec(spec: str) -> None:
    """Syntax of a data spec (files are checked when the data is loaded)."""
    if not isinstance(spec, str):
        raise GankitError(f"data must be a string, got {spec!r}")
    if spec in DATASETS:
        return
    prefix, sep, arg = spec.partition(":")
    if sep and prefix in PREFIXES and arg:
        if prefix == "fake":
            parse_fake(spec)
        return
    raise GankitError(f"unknown data set {spec!r}; choose one of: {', '.join(sorted(DATASETS))}, "
                      f"or {', '.join(p + ':…' for p in PREFIXES)}")


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


class ImageSource:
    """A finite image set held in memory as uint8 [N, C, H, W] (on the training device),
    drawn in epochs: a fresh random permutation per epoch, minibatches of consecutive
    indices, the incomplete last minibatch of an epoch dropped. Batches are converted to
    float in ``value_range`` (the generator's output range) as they are drawn."""

    def __init__(self, images: np.ndarray, device: torch.device, origin: str = ""):
        self.data = torch.from_numpy(np.ascontiguousarray(images)).to(device)
        self.shape = tuple(self.data.shape[1:])
        self.device, self.origin = device, origin
        self.value_range = (-1.0, 1.0)
        self.perm: torch.Tensor | None = None
        self.pos = 0
        self.epoch = 0

    def __len__(self) -> int:
        return self.data.shape[0]

    def to_range(self, u8: torch.Tensor) -> torch.Tensor:
        lo, hi = self.value_range
        return u8.float() * ((hi - lo) / 255.0) + lo

    def next(self, m: int, generator: torch.Generator) -> torch.Tensor:
        n = self.data.shape[0]
        if m > n:
            raise GankitError(f"batch size {m} is larger than the data set ({n} images); lower --batch-size")
        if self.perm is None or self.pos + m > n:
            self.perm = torch.randperm(n, generator=generator, device=generator.device).to(self.device)
            self.pos = 0
            self.epoch += 1
        idx = self.perm[self.pos:self.pos + m]
        self.pos += m
        return self.to_range(self.data[idx])

    def peek(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` random images (without touching the epoch order) for pictures and histograms."""
        idx = torch.randperm(self.data.shape[0], generator=generator, device=generator.device)[:n]
        return self.to_range(self.data[idx.to(self.device)])

    def state_dict(self) -> dict:
        return {"perm": self.perm.cpu() if self.perm is not None else None, "pos": self.pos, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.perm = state["perm"].to(self.device) if state.get("perm") is not None else None
        self.pos, self.epoch = int(state["pos"]), int(state["epoch"])


class FakeSource(_FreshDraws):
    """Random uniform images drawn fresh each minibatch (no data set), for speed work."""

    def __init__(self, shape: tuple[int, int, int], device: torch.device):
        self.shape, self.device = tuple(shape), device
        self.value_range = (-1.0, 1.0)

    def next(self, m: int, generator: torch.Generator) -> torch.Tensor:
        lo, hi = self.value_range
        x = torch.rand(m, *self.shape, generator=generator, device=generator.device)
        return (x * (hi - lo) + lo).to(self.device)


def get_distribution(name: str) -> GaussianMixture:
    """The closed-form distribution behind a named low-dimensional data set."""
    if name not in SYNTHETIC:
        raise GankitError(f"{name!r} is not a low-dimensional data set with a known density; "
                          f"choose one of: {', '.join(sorted(SYNTHETIC))}")
    return SYNTHETIC[name].build()


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

        from .images import _fit
        out = np.empty((images.shape[0], images.shape[1], size, size), dtype=np.uint8)
        for i, im in enumerate(images):
            pil = Image.fromarray(im[0] if im.shape[0] == 1 else im.transpose(1, 2, 0))
            a = np.asarray(_fit(pil, size, policy))
            out[i] = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
        images = out
    return images


def load_images(spec: str, split: str = "train", data_dir: str | None = None) -> tuple[np.ndarray, str]:
    """uint8 [N, C, H, W] images for an image data spec, and a description of their origin."""
    if spec in NAMED:
        return resolve(spec, split, data_dir)
    prefix, _, arg = spec.partition(":")
    arg = os.path.expanduser(arg)
    if prefix == "idx":
        return load_idx_dir(arg, split), arg
    if prefix == "npz":
        return load_array(arg), arg
    if prefix == "cifar10":
        return load_cifar10(arg, split), arg
    raise GankitError(f"{spec!r} is not an image data set")


def make_source(cfg_or_name, device: torch.device):
    """The training source for a config (or a bare data spec)."""
    if isinstance(cfg_or_name, str):
        from ..config import Config
        cfg = Config(data=cfg_or_name)
    else:
        cfg = cfg_or_name
    spec = cfg.data
    check_data_spec(spec)
    if spec in SYNTHETIC:
        return DistributionSource(get_distribution(spec), device)
    if spec.startswith("fake:"):
        c, h, w = parse_fake(spec)
        c = cfg.channels or c
        if cfg.image_size:
            h = w = cfg.image_size
        return FakeSource((c, h, w), device)
    if spec.startswith("folder:"):
        arg = os.path.expanduser(spec.partition(":")[2])
        images = load_folder(arg, cfg.image_size, cfg.resize, cfg.channels)
        origin = arg
    else:
        images, origin = load_images(spec, "train", cfg.data_dir or None)
    images = resize_images(images, cfg.image_size, cfg.resize, cfg.channels, origin)
    return ImageSource(images, device, origin)


__all__ = ["DATASETS", "GaussianMixture", "DistributionSource", "ImageSource", "FakeSource",
           "get_distribution", "make_source", "load_images", "check_data_spec"]
