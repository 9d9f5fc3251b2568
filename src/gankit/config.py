"""Typed training configuration: defaults, validation, YAML in and out.

A :class:`Config` is the complete description of a training run. ``gankit train`` resolves
it from (in order of precedence) command-line flags, ``--config FILE.yaml``, and the
defaults below, then writes the fully resolved result to ``RUN/config.yaml``, which can be
fed back with ``--config``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from .errors import GankitError

LOSSES = ("nonsaturating", "minimax")
NOISES = ("normal", "uniform")
UPDATES = ("alternating", "simultaneous")
OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("constant", "linear", "exponential")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class Config:
    """Every option of a training run. Field comments are the documentation."""

    data: str = "ring8"             # data: a toy name, mnist, fashion-mnist, idx:DIR, folder:DIR, npz:FILE, cifar10:DIR, fake:C,H,W
    data_dir: str = ""              # cache folder for named data sets ("" = $GANKIT_DATA or ~/.cache/gankit/data)
    image_size: int = 0             # images: target size in pixels (0 = the data's own size)
    resize: str = "none"            # images: how to reach image_size: none, resize, center-crop
    channels: int = 0               # images: 1 (grayscale) or 3 (RGB); 0 = as the data
    model: str = "mlp"              # model family for G and D (see `gankit.models.MODELS`)
    loss: str = "nonsaturating"     # generator loss: "nonsaturating" (paper's practical) or "minimax"
    k: int = 1                      # discriminator steps per generator step (Algorithm 1)
    update: str = "alternating"     # "alternating" (Algorithm 1) or "simultaneous" (k = 1: both gradients from one batch and one D, as the published code)
    batch_size: int = 256           # minibatch size m, for data and for noise
    steps: int = 4000               # generator steps (outer iterations of Algorithm 1) in total
    seed: int = 0                   # seeds every random stream of the run
    noise: str = "normal"           # noise prior p_z: "normal" N(0, I) or "uniform" U(-1, 1)^d
    z_dim: int = 8                  # noise dimension
    optimizer: str = "adam"         # "adam" or "sgd" (SGD with momentum)
    lr_g: float = 2e-3              # generator learning rate
    lr_d: float = 2e-3              # discriminator learning rate
    beta1: float = 0.5              # Adam beta1
    beta2: float = 0.999            # Adam beta2
    momentum: float = 0.5           # SGD momentum
    lr_schedule: str = "linear"     # "constant"; "linear": decay to 0 at `steps`; "exponential": divide by lr_decay each step
    lr_decay: float = 1.000004      # exponential schedule: per-step divisor of the learning rates
    lr_min: float = 1e-6            # exponential schedule: floor of the learning rates
    momentum_final: float = 0.5     # SGD: momentum reached after momentum_ramp steps
    momentum_ramp: int = 0          # SGD: steps over which momentum rises linearly to momentum_final (0 = constant)
    hidden: int = 256               # MLP: units per hidden layer (G and D)
    width: int = 64                 # DCGAN: base number of feature maps (ngf = ndf)
    depth: int = 3                  # MLP: number of hidden layers (G and D)
    device: str = "cpu"             # "cpu", "cuda", "cuda:N" or "auto"
    precision: str = "auto"         # fp32, bf16, fp16 (autocast), or auto: bf16 for convolutions on CPUs with bf16 units and on GPUs
    threads: int = 0                # CPU threads for torch (0 = torch's default less the cores other processes keep busy at start)
    reuse_fake: bool = False        # k = 1: the G step reuses the D step's samples G(z) (same update, one G forward less)
    log_every: int = 100            # steps between rows of metrics.jsonl and progress updates
    eval_every: int = 1000          # steps between evaluations (sample metrics, pictures); 0: only at the end
    checkpoint_every: int = 1000    # steps between checkpoints; one is always written at the end
    eval_samples: int = 2500        # generated samples per evaluation (SPEC: 2,500 for the toy mixtures)
    keep_checkpoints: int = 3       # how many step checkpoints to keep (the newest)
    on_divergence: str = "stop"     # NaN/Inf in a loss or the weights: "stop", or "rollback" to the last good checkpoint at 1/10 the learning rates (3 times at most)
    metrics: str = ""               # extra metrics at each evaluation, comma-separated: fid, kid, pr, parzen
    best_metric: str = ""           # keep checkpoints/best.pt by this logged metric (e.g. fid, high_quality)

    # ------------------------------------------------------------------ validation
    def validate(self) -> "Config":
        """Check every field; raise :class:`GankitError` naming the first bad one."""
        from .data import check_data_spec
        from .data.images import RESIZE_POLICIES
        from .models import MODELS

        check_data_spec(self.data)
        _choice("resize", self.resize, RESIZE_POLICIES)
        if self.channels not in (0, 1, 3):
            raise GankitError(f"channels must be 0 (as the data), 1 or 3, got {self.channels!r}")
        if not isinstance(self.image_size, int) or isinstance(self.image_size, bool) or self.image_size < 0:
            raise GankitError(f"image_size must be a whole number >= 0, got {self.image_size!r}")
        if self.resize != "none" and self.image_size == 0:
            raise GankitError(f"resize {self.resize} needs an image_size (--image-size)")
        if self.model not in MODELS:
            raise GankitError(
                f"unknown model {self.model!r}; choose one of: {', '.join(sorted(MODELS))}"
            )
        _choice("loss", self.loss, LOSSES)
        _choice("noise", self.noise, NOISES)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _choice("precision", self.precision, PRECISIONS)
        _choice("on_divergence", self.on_divergence, ("stop", "rollback"))
        _choice("update", self.update, UPDATES)
        if self.update == "simultaneous" and self.k != 1:
            raise GankitError(f"update simultaneous takes one D step per G step: k must be 1, got {self.k!r}")
        if self.update == "simultaneous" and self.precision == "fp16":
            raise GankitError("update simultaneous does not support fp16 loss scaling: use --precision bf16 or fp32")
        _positive_int("keep_checkpoints", self.keep_checkpoints)
        if not isinstance(self.reuse_fake, bool):
            raise GankitError(f"reuse_fake must be true or false, got {self.reuse_fake!r}")
        if not isinstance(self.threads, int) or isinstance(self.threads, bool) or self.threads < 0:
            raise GankitError(f"threads must be a whole number >= 0, got {self.threads!r}")
        for name in ("k", "batch_size", "steps", "z_dim", "hidden", "width", "depth", "log_every",
                     "checkpoint_every", "eval_samples"):
            _positive_int(name, getattr(self, name))
        if not isinstance(self.eval_every, int) or isinstance(self.eval_every, bool) or self.eval_every < 0:
            raise GankitError(f"eval_every must be a whole number >= 0, got {self.eval_every!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise GankitError(f"seed must be a whole number >= 0, got {self.seed!r}")
        for name in ("lr_g", "lr_d"):
            v = getattr(self, name)
            if not _is_number(v) or not math.isfinite(v) or v <= 0:
                raise GankitError(f"{name} must be a positive number, got {v!r}")
        if not _is_number(self.lr_decay) or not (1.0 <= self.lr_decay < 2.0):
            raise GankitError(f"lr_decay must be a number in [1, 2), got {self.lr_decay!r}")
        if not _is_number(self.lr_min) or not math.isfinite(self.lr_min) or self.lr_min < 0:
            raise GankitError(f"lr_min must be a number >= 0, got {self.lr_min!r}")
        if not isinstance(self.momentum_ramp, int) or isinstance(self.momentum_ramp, bool) or self.momentum_ramp < 0:
            raise GankitError(f"momentum_ramp must be a whole number >= 0, got {self.momentum_ramp!r}")
        for name in ("beta1", "beta2", "momentum", "momentum_final"):
            v = getattr(self, name)
            if not _is_number(v) or not (0.0 <= v < 1.0):
                raise GankitError(f"{name} must be a number in [0, 1), got {v!r}")
        check_device_name(self.device)
        from .evaluate import LOWER_IS_BETTER, parse_metrics
        parse_metrics(self.metrics)
        if self.best_metric and self.best_metric not in LOWER_IS_BETTER:
            raise GankitError(f"best_metric must be one of {', '.join(LOWER_IS_BETTER)}, got {self.best_metric!r}")
        return self

    # ------------------------------------------------------------------ conversion
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "configuration") -> "Config":
        """Build a config from a mapping; unknown keys and wrong types are user errors."""
        if not isinstance(d, dict):
            raise GankitError(f"{source} must be a mapping of option: value, got {type(d).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise GankitError(
                f"{source}: unknown option(s) {', '.join(map(str, unknown))}; "
                f"known options: {', '.join(known)}"
            )
        defaults = cls()
        values = {}
        for key, value in d.items():
            values[key] = _coerce(key, value, type(getattr(defaults, key)), source)
        return cls(**values)

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes)

    def to_yaml(self, path: str | Path) -> None:
        """Write the config as YAML, atomically."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        tmp.replace(path)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping of options from ``path`` (user errors become GankitError)."""
    path = Path(path)
    if not path.exists():
        raise GankitError(f"config file {str(path)!r} does not exist")
    if not path.is_file():
        raise GankitError(f"config file {str(path)!r} is not a file")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise GankitError(f"cannot read config file {str(path)!r}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise GankitError(f"config file {str(path)!r} is not valid YAML{at}; fix the syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise GankitError(f"config file {str(path)!r} must hold a mapping of option: value")
    return data


PRESET_DIR = Path(__file__).parent / "presets"


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name: str) -> dict[str, Any]:
    """The options of a shipped preset (``gankit/presets/NAME.yaml``)."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise GankitError(f"unknown preset {name!r}; choose one of: {', '.join(preset_names())}")
    d = load_yaml(path)
    Config.from_dict(d, source=f"preset {name!r}")
    return d


def load_config(path: str | Path) -> Config:
    return Config.from_dict(load_yaml(path), source=f"config file {str(path)!r}").validate()


# ---------------------------------------------------------------------- helpers
def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise GankitError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def check_device_name(value, option: str = "device") -> None:
    """A device a run or the bench can be asked for: cpu, cuda, cuda:N or auto."""
    if not isinstance(value, str) or not (value in ("cpu", "cuda", "auto") or value.startswith("cuda:")):
        raise GankitError(f"{option} must be cpu, cuda, cuda:N or auto, got {value!r}")


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise GankitError(f"{name} must be a whole number > 0, got {value!r}")


def _coerce(key: str, value: Any, typ: type, source: str) -> Any:
    """Accept a YAML value for a field of type ``typ``; ints are accepted for floats."""
    if typ is float and _is_number(value):
        return float(value)
    if typ is float and isinstance(value, str):
        # YAML 1.1 reads "1e-3" (no dot) as a string; accept numeric strings for floats.
        try:
            return float(value)
        except ValueError:
            pass
    if typ is bool and isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    if typ is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, typ) and not (typ is int and isinstance(value, bool)):
        return value
    raise GankitError(f"{source}: option {key} must be a {typ.__name__}, got {value!r}")
