"""Class labels for conditional GANs (``--conditional``): read beside the images, checked,
and named.

- ``mnist``, ``fashion-mnist``: their label files;
- ``cifar10:DIR``: the batches' ``labels``;
- ``folder:DIR``: one subfolder per class (the class names are the subfolders' names);
- ``npz:FILE``: a ``y`` or ``labels`` array in the same ``.npz``;
- the toy mixtures: each Gaussian a class (drawn with its point).

Labels are integers 0 … C−1, each class with at least one example, at least two classes.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import GankitError
from .images import IMAGE_SUFFIXES, cifar10_batches, read_array_file

MAX_CLASSES = 10_000
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]


def check_labels(y, n: int, source: str) -> np.ndarray:
    """int64 labels [n], after checking what a user's file can get wrong."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise GankitError(f"{source}: labels must be one integer per example, got an array of shape {y.shape}")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or (y != np.round(y)).any():
            bad = int(np.argmax(~np.isfinite(y) | (y != np.round(y))))
            raise GankitError(f"{source}: label {bad} is {float(y[bad])!r}, not a whole number")
    elif y.dtype.kind not in "iub":
        raise GankitError(f"{source}: labels are {y.dtype} values, not integers")
    if len(y) != n:
        raise GankitError(f"{source}: {len(y):,} labels for {n:,} examples; there must be one per example")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise GankitError(f"{source}: label {int(y.min())} is out of range; classes are numbered from 0")
    num = int(y.max()) + 1
    if num > MAX_CLASSES:
        raise GankitError(f"{source}: label {num - 1:,} is out of range; gankit takes at most {MAX_CLASSES:,} classes")
    counts = np.bincount(y, minlength=num)
    if (counts == 0).any():
        raise GankitError(f"{source}: class {int(np.argmax(counts == 0))} has no examples (labels 0 … {num - 1} "
                          "must each be used)")
    if num < 2:
        raise GankitError(f"{source}: every example is of one class; a conditional GAN needs at least two")
    return y


def folder_classes(directory: str | Path) -> tuple[np.ndarray, list[str]]:
    """One label per image of ``load_folder`` (files sorted by path): the index of its
    top-level subfolder among the sorted subfolders."""
    d = Path(directory)
    files = sorted(p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    loose = [p for p in files if p.parent == d]
    if loose:
        raise GankitError(f"{d}: --conditional takes one subfolder per class, and {loose[0].name} lies at the top")
    names = sorted({p.relative_to(d).parts[0] for p in files})
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[p.relative_to(d).parts[0]] for p in files], dtype=np.int64), names


def npz_labels(path: str | Path) -> np.ndarray:
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            keys = {n[:-4] for n in z.namelist() if n.endswith(".npy")}
    except (zipfile.BadZipFile, OSError):
        raise GankitError(f"{path}: --conditional needs an .npz holding the images and a y (or labels) "
                          "array") from None
    key = next((k for k in ("y", "labels") if k in keys), None)
    if key is None:
        raise GankitError(f"{path}: no y or labels array beside the images (it holds {', '.join(sorted(keys))})")
    return read_array_file(path, (key,))


def cifar10_labels(directory: str | Path, split: str = "train") -> np.ndarray:
    """The labels of the batches :func:`load_cifar10` reads, in the same order."""
    out = []
    for f, batch in cifar10_batches(directory, split)[1]:
        labels = batch.get(b"labels") if isinstance(batch, dict) else None
        if not isinstance(labels, list):
            raise GankitError(f"{f}: no labels in this CIFAR-10 batch")
        out.append(np.asarray(labels))
    return np.concatenate(out)


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
