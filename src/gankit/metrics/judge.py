"""gankit's judge of classes: a classifier of a labelled named data set (mnist,
fashion-mnist) that says which class each generated image shows.

It is kept apart from the domain-FID network of :mod:`.features` on purpose: that network
is small and fixed so that domain FIDs stay comparable across versions, while a verdict on
classes (conditional accuracy, class balance) is only as good as the classifier that gives
it, so the judge is as accurate as a CNN trained here in a few minutes gets: two
conv-conv-pool stages with BatchNorm, dropout, ±2-pixel shifts (and, for clothing,
horizontal flips) of the training images, AdamW with a one-cycle schedule. Its test
accuracy is measured on the test split and reported beside every verdict.

Trained once per data set and machine (about 5 minutes on 2 cores with bf16 units), then cached.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import GankitError

log = logging.getLogger("gankit")

VERSION = 1          # bump when the network or its training changes: names the cache file
EPOCHS = 6
BATCH = 128
SHIFT = 2            # pixels of random translation, each way
FLIP = {"fashion-mnist"}   # data sets whose classes survive a horizontal flip


def _block(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class JudgeNet(nn.Module):
    """(conv-BN-ReLU)×2 - maxpool - (conv-BN-ReLU)×2 - maxpool - fc(256) - fc(classes)."""

    def __init__(self, channels: int, size: int, classes: int = 10, width: int = 32):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            *_block(channels, w), *_block(w, w), nn.MaxPool2d(2),
            *_block(w, 2 * w), *_block(2 * w, 2 * w), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.3), nn.Linear(2 * w * (size // 4) ** 2, 256, bias=False),
            nn.BatchNorm1d(256), nn.ReLU(), nn.Dropout(0.3), nn.Linear(256, classes))

    def forward(self, x):
        return self.net(x)


class Judge:
    """``predict(images)`` -> class indices, for images [N, C, H, W] in [0, 1]."""

    def __init__(self, model: JudgeNet, dataset: str, accuracy: float):
        self.model, self.dataset, self.accuracy = model.eval(), dataset, accuracy
        self.num_classes = model.net[-1].out_features

    @property
    def description(self) -> str:
        return f"gankit's {self.dataset} judge ({self.accuracy:.2%} test accuracy)"

    def predict(self, images: torch.Tensor, batch: int = 1000) -> torch.Tensor:
        with torch.no_grad():   # fp32: verdicts do not depend on the CPU's bf16 kernels
            return torch.cat([self.model(images[s:s + batch].float()).argmax(1)
                              for s in range(0, images.shape[0], batch)])


def _augment(x: torch.Tensor, g: torch.Generator, flip: bool) -> torch.Tensor:
    """Each image shifted by up to ±SHIFT pixels (zero fill) and, when ``flip``, mirrored
    with probability 1/2."""
    n, _, h, w = x.shape
    p = F.pad(x, (SHIFT,) * 4)
    dy = torch.randint(0, 2 * SHIFT + 1, (n,), generator=g)
    dx = torch.randint(0, 2 * SHIFT + 1, (n,), generator=g)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None].expand(n, x.shape[1], h, w + 2 * SHIFT)
    p = p.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :].expand(n, x.shape[1], h, w)
    out = p.gather(3, cols)
    if flip:
        m = torch.rand(n, generator=g) < 0.5
        out = torch.where(m[:, None, None, None], out.flip(3), out)
    return out


def fit_judge(model: JudgeNet, x: torch.Tensor, y: torch.Tensor, g: torch.Generator, epochs: int,
              flip: bool) -> None:
    """Train on uint8 images ``x`` [N, C, H, W] and labels ``y``; under bf16 autocast where
    the CPU has bf16 units (2× faster there than fp32), in fp32 where it has not (bf16 is
    emulated there, and slower than fp32); the accuracy is measured afterwards in fp32."""
    from ..training.runtime import cpu_has_bf16  # here: training imports the metrics

    steps = epochs * (len(x) // BATCH)
    if steps < 1:
        raise GankitError(f"the judge needs at least {BATCH} labelled training images, got {len(x)}")
    bf16 = cpu_has_bf16()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for s in range(0, len(x) - BATCH + 1, BATCH):
            idx = perm[s:s + BATCH]
            batch = _augment(x[idx].float() / 255, g, flip)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(model(batch), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()


def judge_path(dataset: str, data_dir: str | None = None, seed: int = 0) -> Path:
    from .features import cache_dir
    return cache_dir(data_dir) / f"judge-{dataset}-v{VERSION}-e{EPOCHS}-s{seed}.pt"


def get_judge(dataset: str, data_dir: str | None = None, seed: int = 0) -> Judge:
    """The judge of a labelled named data set, trained on its training split (and cached)."""
    from ..data import load_images
    from ..data.registry import NAMED, resolve_labels
    from .features import save_cached_model

    if dataset not in NAMED:
        raise GankitError(f"gankit's judge of classes needs a labelled named data set ({', '.join(NAMED)}), "
                          f"not {dataset!r}")
    path = judge_path(dataset, data_dir, seed)
    state = torch.load(path, weights_only=True) if path.is_file() else None
    if state is not None and "shape" in state:   # a cached judge needs no training images
        c, size = state["shape"]
    else:
        x, _ = load_images(dataset, "train", data_dir)
        c, size = x.shape[1], x.shape[2]
    with torch.random.fork_rng():   # leave the caller's global random stream as it was
        torch.manual_seed(seed)
        model = JudgeNet(c, size, 10)   # both named data sets have 10 classes
        if state is not None:
            model.load_state_dict(state["model"])
            return Judge(model, dataset, float(state["accuracy"]))
        log.info("training gankit's %s judge of classes (once; cached in %s)", dataset, path)
        y = torch.from_numpy(resolve_labels(dataset, "train", data_dir))
        fit_judge(model, torch.from_numpy(np.array(x)), y,
                  torch.Generator().manual_seed(seed), EPOCHS, dataset in FLIP)
    xs, _ = load_images(dataset, "test", data_dir)
    ys = torch.from_numpy(resolve_labels(dataset, "test", data_dir))
    judge = Judge(model, dataset, 0.0)
    judge.accuracy = float((judge.predict(torch.from_numpy(np.array(xs)).float() / 255) == ys)
                           .float().mean())
    save_cached_model(path, model, judge.accuracy, shape=[int(c), int(size)])
    return judge
