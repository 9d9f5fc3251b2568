"""Typed training configuration: defaults, validation, YAML in and out.

A :class:`Config` is the complete description of a training run. ``gankit train`` resolves
it from (in order of precedence) command-line flags, ``--config FILE.yaml``, ``--preset
NAME`` and the defaults below, then writes the fully resolved result to
``RUN/config.yaml``, which can be fed back with ``--config``.

Each field carries its own documentation in its metadata (:func:`option`): the group it
belongs to, a line of help, the allowed values or range. ``gankit train --help`` and the
validation are both built from it. Values that name a data set, a model, a generator
loss or a metric are checked against the registries (:mod:`gankit.registries`), so this
module imports no subsystem.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import yaml

from .errors import GankitError, listing, shorten
from .registries import DATA, LOSSES, MODELS, Registry, metric_outputs, parse_metric_list

# The options of one of gankit's models (its sizes, D's normalisation), and the model each
# belongs to.
MODEL_SIZES = {"hidden": "mlp", "depth": "mlp", "width": "dcgan", "d_norm": "dcgan"}

NOISES = ("normal", "uniform", "uniform_unit")
UPDATES = ("alternating", "simultaneous")
OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("constant", "linear", "exponential")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
RESIZE_POLICIES = ("none", "resize", "center-crop")
CPU_KERNELS = ("auto", "off")
ON_DIVERGENCE = ("stop", "rollback")
BN_STATS = ("running", "standing")   # a generator's BatchNorm statistics for sampling (sampling.standing_statistics)
# What a resumed run may change (nothing of the game it plays), and so where a checkpoint's
# configuration may differ from its run's config.yaml.
RESUMABLE_CHANGES = ("steps", "log_every", "eval_every", "checkpoint_every", "keep_checkpoints", "device")

GROUPS = ("data", "model", "objective and update rule", "stabilisers", "optimiser and schedule",
          "precision and hardware", "logging, evaluation and checkpoints")
LOGGING = GROUPS[-1]
AUGMENTS = ("color", "translation", "cutout")


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# Rules: (test, what the value must be). The error reads "NAME must be WHAT, got VALUE".
POSITIVE = (lambda v: _whole(v) and v > 0, "a whole number > 0")
NATURAL = (lambda v: _whole(v) and v >= 0, "a whole number >= 0")
# Seeds given to sample, eval and theory: whole numbers that torch's generators take (64-bit)
# with room for the offsets that name other streams (evaluation draws from seed + 12345,
# theory from seed + 99). A run's own seed may be any whole number >= 0: it reaches torch
# only through numpy's SeedSequence (training/state.py).
MAX_SEED = 2**62
SEED = (lambda v: _whole(v) and 0 <= v <= MAX_SEED, "a whole number from 0 to 2**62")
POSITIVE_NUMBER = (lambda v: _is_number(v) and math.isfinite(v) and v > 0, "a positive number")
NON_NEGATIVE_NUMBER = (lambda v: _is_number(v) and math.isfinite(v) and v >= 0, "a number >= 0")
UNIT_INTERVAL = (lambda v: _is_number(v) and 0.0 <= v < 1.0, "a number in [0, 1)")
SLICE = (lambda v: v == "" or (isinstance(v, str) and len(v) <= 40 and re.fullmatch(r"\d+:\d+", v) is not None
                               and int(v.split(":")[0]) < int(v.split(":")[1])),
         "START:STOP with whole numbers START < STOP, or empty")


def check_seed(value: Any, name: str = "seed") -> int:
    """``value`` if it is a seed (:data:`SEED`); a one-line :class:`GankitError` otherwise."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = int(value)     # numpy's integers too
    if not SEED[0](value):
        raise GankitError(f"{name} must be {SEED[1]}, got {shorten(value)}")
    return value


def option(default: Any, group: str, help: str, *, choices: tuple | Registry | None = None,
           rule: tuple[Callable[[Any], bool], str] | None = None, metavar: str | None = None):
    """A configuration field with its documentation and its constraint in the metadata."""
    assert group in GROUPS, group
    return field(default=default, metadata={"group": group, "help": help, "choices": choices, "rule": rule,
                                            "metavar": metavar})


def allowed_values(f: dataclasses.Field, listed: bool = False) -> list[str] | None:
    """The values a choice field allows (from its tuple or its registry), else None;
    ``listed``: those to offer a user (a registry's hidden placeholders left out)."""
    choices = f.metadata.get("choices")
    if choices is None:
        return None
    if isinstance(choices, Registry):
        return choices.listed() if listed else choices.names()
    return list(choices)


@dataclass
class Config:
    """Every option of a training run; each field's metadata documents it (see :func:`option`)."""

    # ---------------------------------------------------------------- data
    data: str = option("ring8", "data", "a toy density, a named image set, or PREFIX:PATH",
                       metavar="DATA")
    data_dir: str = option("", "data", "cache folder for named data sets (\"\" = $GANKIT_DATA or "
                                       "~/.cache/gankit/data)", metavar="DIR")
    image_size: int = option(0, "data", "images: target size in pixels (0 = the data's own size)", rule=NATURAL)
    resize: str = option("none", "data", "images: how to reach image_size", choices=RESIZE_POLICIES)
    channels: int = option(0, "data", "images: 1 (grayscale) or 3 (RGB); 0 = as the data", choices=(0, 1, 3))
    subset: str = option("", "data", "images: train on examples START:STOP of the training split only (e.g. 0:50000, "
                         "as the 2014 paper's MNIST run; empty = all)", rule=SLICE, metavar="START:STOP")
    dequantize: bool = option(False, "data", "images: train on (k + u)/256, u ~ U[0, 1), instead of the 8-bit "
                              "levels k/255 (uniform dequantisation, as density models do)")
    # ---------------------------------------------------------------- model
    model: str = option("mlp", "model", "model family for G and D", choices=MODELS)
    z_dim: int = option(8, "model", "noise dimension", rule=POSITIVE)
    noise: str = option("normal", "model", "noise prior p_z: normal N(0, I), uniform U(-1, 1)^z_dim, or "
                        "uniform_unit U(-√3, √3)^z_dim (unit variance: the published GAN code's uniform)",
                        choices=NOISES)
    hidden: int = option(256, "model", "MLP: units per hidden layer (G and D)", rule=POSITIVE)
    depth: int = option(3, "model", "MLP: number of hidden layers (G and D)", rule=POSITIVE)
    width: int = option(64, "model", "DCGAN: base number of feature maps (ngf = ndf)", rule=POSITIVE)
    d_norm: str = option("batch", "model", "DCGAN: D's normalisation after each convolution but the first: "
                         "batch (BatchNorm, DCGAN's) or none (a bias instead, as stylegan2's D; with --r1)",
                         choices=("batch", "none"))
    conditional: bool = option(False, "model", "a conditional GAN, G(z, y) and D(x, y), on the data's class labels")
    class_input: str = option("concat", "model", "conditional DCGAN: how D takes the class, as one-hot maps joined "
                              "to the image (concat) or to the input of every convolution (deep), or a projection "
                              "discriminator (projection; it collapsed within classes on MNIST, docs/results.md)",
                              choices=("concat", "deep", "projection"))
    g_class_input: str = option("concat", "model", "conditional DCGAN: how G takes the class, as an embedding joined "
                                "to the noise (concat) or also through class-conditional BatchNorm at every layer "
                                "(batchnorm)", choices=("concat", "batchnorm"))
    fake_labels: str = option("data", "model", "conditional: the classes G is trained on, drawn with the data's "
                              "class frequencies (data) or uniformly (uniform)", choices=("data", "uniform"))
    aux_classifier: float = option(0.0, "model", "conditional: weight λ of an auxiliary classifier C(x) of D's "
                                   "architecture, trained with D on the real examples' labels; G's loss gains "
                                   "λ·CE(C(G(z, y)), y) and D's λ·CE(C(x), y) (after AC-GAN; 0: none)",
                                   rule=NON_NEGATIVE_NUMBER)
    # ---------------------------------------------------------------- objective and update rule
    loss: str = option("nonsaturating", "objective and update rule",
                       "generator loss: nonsaturating (the paper's practical one) or minimax (the game as written)",
                       choices=LOSSES)
    k: int = option(1, "objective and update rule", "discriminator steps per generator step (Algorithm 1)",
                    rule=POSITIVE)
    update: str = option("alternating", "objective and update rule",
                         "alternating (Algorithm 1) or simultaneous (k = 1: both gradients from one batch and one "
                         "D, as the published code)", choices=UPDATES)
    reuse_fake: bool = option(False, "objective and update rule",
                              "k = 1: the G step reuses the D step's samples G(z) (the same update, one G forward "
                              "less)")
    # ---------------------------------------------------------------- stabilisers (none changes the objective)
    ema_kimg: float = option(0.0, "stabilisers", "EMA generator: half-life of the average of G's weights in "
                             "thousands of images (0: none); samples, metrics and pictures then use it",
                             rule=NON_NEGATIVE_NUMBER)
    ema_rampup: float = option(0.05, "stabilisers", "EMA ramp-up: the half-life is at most this times the images "
                               "seen so far (0: none)", rule=NON_NEGATIVE_NUMBER)
    bn_stats: str = option("running", "stabilisers", "BatchNorm statistics of the generator that samples, metrics "
                           "and pictures use: running (G's as trained, copied into the EMA generator) or standing "
                           "(recomputed from that generator itself, BigGAN's standing statistics)",
                           choices=BN_STATS)
    spectral_norm: bool = option(False, "stabilisers", "divide each weight of D by its largest singular value "
                                 "(torch's parametrization, one power iteration per D step; Miyato et al. 2018)")
    r1: float = option(0.0, "stabilisers", "γ of the zero-centred gradient penalty on real data, "
                       "γ/2 E||∇f(x)||² (0: none)", rule=NON_NEGATIVE_NUMBER)
    r2: float = option(0.0, "stabilisers", "γ of the same penalty on generated data (0: none)",
                       rule=NON_NEGATIVE_NUMBER)
    reg_every: int = option(1, "stabilisers", "lazy regularisation: the penalties every N D steps, weighted γ·N",
                            rule=POSITIVE)
    pack: int = option(1, "stabilisers", "PacGAN: D judges packs of this many examples, all real or all "
                       "generated (batch_size stays the examples per batch)", rule=POSITIVE)
    augment: str = option("", "stabilisers", "DiffAugment policy for images, comma-separated: color, translation, "
                          "cutout (applied to everything D sees)", metavar="POLICY")
    # ---------------------------------------------------------------- optimiser and schedule
    batch_size: int = option(256, "optimiser and schedule", "minibatch size m, for data and for noise",
                             rule=POSITIVE)
    steps: int = option(4000, "optimiser and schedule", "generator steps (outer iterations of Algorithm 1) in total",
                        rule=POSITIVE)
    seed: int = option(0, "optimiser and schedule", "seeds every random stream of the run", rule=NATURAL)
    optimizer: str = option("adam", "optimiser and schedule", "adam, or sgd (with momentum)", choices=OPTIMIZERS)
    lr_g: float = option(2e-3, "optimiser and schedule", "generator learning rate", rule=POSITIVE_NUMBER)
    lr_d: float = option(2e-3, "optimiser and schedule", "discriminator learning rate", rule=POSITIVE_NUMBER)
    beta1: float = option(0.5, "optimiser and schedule", "Adam beta1", rule=UNIT_INTERVAL)
    beta2: float = option(0.999, "optimiser and schedule", "Adam beta2", rule=UNIT_INTERVAL)
    momentum: float = option(0.5, "optimiser and schedule", "SGD momentum", rule=UNIT_INTERVAL)
    momentum_final: float = option(0.5, "optimiser and schedule", "SGD: momentum reached after momentum_ramp steps",
                                   rule=UNIT_INTERVAL)
    momentum_ramp: int = option(0, "optimiser and schedule",
                                "SGD: steps over which momentum rises linearly to momentum_final (0 = constant)",
                                rule=NATURAL)
    lr_schedule: str = option("linear", "optimiser and schedule",
                              "constant; linear: decay to 0 at steps; exponential: divide by lr_decay each step",
                              choices=LR_SCHEDULES)
    lr_decay: float = option(1.000004, "optimiser and schedule",
                             "exponential schedule: per-step divisor of the learning rates",
                             rule=(lambda v: _is_number(v) and 1.0 <= v < 2.0, "a number in [1, 2)"))
    lr_min: float = option(1e-6, "optimiser and schedule", "exponential schedule: floor of the learning rates",
                           rule=NON_NEGATIVE_NUMBER)
    # ---------------------------------------------------------------- precision and hardware
    device: str = option("auto", "precision and hardware", "cpu, cuda, cuda:N, or auto: a GPU when torch has "
                         "one, else the CPU", metavar="DEVICE")
    precision: str = option("auto", "precision and hardware",
                            "fp32, bf16, fp16 (autocast), or auto: bf16 for convolutional models and large MLPs on "
                            "CPUs with bf16 units, and on GPUs", choices=PRECISIONS)
    threads: int = option(0, "precision and hardware", "CPU threads for torch (0 = torch's default: the cores "
                          "it may use)", rule=NATURAL)
    share_cores: bool = option(False, "precision and hardware",
                               "with threads 0: leave the cores that other processes keep busy at start to them "
                               "(faster on a shared machine; the thread count, and so the rounding of the results, "
                               "then depends on that load)")
    cpu_kernels: str = option("auto", "precision and hardware",
                              "auto: on CPUs in bf16, compute DCGAN's stride-2 convolutions where oneDNN's kernels "
                              "are slow by im2col/col2im and one product (gankit.ops); off: torch's kernels only",
                              choices=CPU_KERNELS)
    # ---------------------------------------------------------------- logging, evaluation and checkpoints
    log_every: int = option(100, LOGGING, "steps between rows of metrics.jsonl and progress updates",
                            rule=POSITIVE)
    eval_every: int = option(1000, LOGGING,
                             "steps between evaluations (sample metrics, pictures); 0: only at the end",
                             rule=NATURAL)
    eval_samples: int = option(2500, LOGGING,
                               "generated samples per evaluation (2,500 in the toy mixtures' protocol)",
                               rule=POSITIVE)
    metrics: str = option("", LOGGING, "extra metrics at each evaluation, comma-separated", metavar="LIST")
    best_metric: str = option("", LOGGING, "keep checkpoints/best.pt by this logged metric", metavar="NAME")
    checkpoint_every: int = option(1000, LOGGING, "steps between checkpoints; one is always written at the end",
                                   rule=POSITIVE)
    keep_checkpoints: int = option(3, LOGGING, "how many step checkpoints to keep (the newest)", rule=POSITIVE)
    tensorboard: bool = option(True, LOGGING, "TensorBoard event files in RUN/tensorboard (when the tensorboard "
                               "package is installed)")
    on_divergence: str = option("stop", LOGGING,
                                "NaN/Inf in a loss or the weights: stop, or rollback to the last good checkpoint at "
                                "1/10 the learning rates (3 times at most)", choices=ON_DIVERGENCE)

    # ------------------------------------------------------------------ validation
    def refuse_inapplicable(self) -> None:
        """For a new run: options set away from their defaults that this run would ignore are
        refused. Options of conditional GANs without ``conditional``, and an option of
        another model (--hidden, --depth: mlp; --width, --d-norm: dcgan); models that do not declare
        their sizes (registered by users) are not checked. Not part of :meth:`validate`: the
        saved configuration of a run made before these checks still loads."""
        changed = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != f.default}
        for name in ("class_input", "g_class_input", "fake_labels"):
            if name in changed and not self.conditional:
                raise GankitError(f"{name} {changed[name]} applies to conditional GANs (--conditional)")
        entry = MODELS.entry(self.model) if isinstance(self.model, str) and self.model in MODELS else None
        sizes = entry.meta.get("sizes") if entry is not None else None
        for name, owner in MODEL_SIZES.items():
            if sizes is not None and name in changed and name not in sizes:
                raise GankitError(f"{name} {changed[name]} is an option of --model {owner}; "
                                  f"{self.model} does not use it")

    def validate(self) -> "Config":
        """Check every field against its metadata, then the rules that join fields; raise
        :class:`GankitError` naming the first bad value."""
        DATA.check(self.data)
        for f in fields(self):
            check_field(f, getattr(self, f.name))
        if self.resize != "none" and self.image_size == 0:
            raise GankitError(f"resize {self.resize} needs an image_size (--image-size)")
        if self.update == "simultaneous" and self.k != 1:
            raise GankitError(f"update simultaneous takes one D step per G step: k must be 1, got {self.k!r}")
        if self.update == "simultaneous" and self.precision == "fp16":
            raise GankitError("update simultaneous does not support fp16 loss scaling: use --precision bf16 or fp32")
        check_device_name(self.device)
        self.validate_stabilisers()
        if not isinstance(self.metrics, str):
            raise GankitError(f"metrics must be a comma-separated string, got {shorten(self.metrics)}")
        parse_metric_list(self.metrics)
        outputs = metric_outputs()
        if self.best_metric and self.best_metric not in outputs:
            raise GankitError(f"best_metric must be one of {', '.join(outputs)}, got {shorten(self.best_metric)}")
        return self

    def validate_stabilisers(self) -> None:
        bad = [p for p in self.augment.split(",") if p.strip() and p.strip() not in AUGMENTS]
        if bad:
            raise GankitError(f"augment takes {', '.join(AUGMENTS)}, comma-separated; got {shorten(bad[0])}")
        if self.batch_size % self.pack:
            raise GankitError(f"batch_size {self.batch_size} must be a multiple of pack {self.pack}")
        if self.conditional and self.pack > 1:
            raise GankitError("pack (PacGAN) is not available with conditional; D judges one example and its class")
        if self.aux_classifier and not self.conditional:
            raise GankitError("aux_classifier needs a conditional GAN (--conditional): C learns the data's labels")
        if self.update == "simultaneous" and (self.r1 or self.r2):
            raise GankitError(f"the gradient penalties need alternating updates: r1 {self.r1:g}, r2 {self.r2:g} "
                              "(--update alternating, or --r1 0 --r2 0 for simultaneous updates)")

    # ------------------------------------------------------------------ conversion
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "configuration") -> "Config":
        """Build a config from a mapping; unknown keys and wrong types are user errors."""
        if not isinstance(d, dict):
            raise GankitError(f"{source} must be a mapping of option: value, got {type(d).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted((k for k in d if k not in known), key=str)
        if unknown:
            import difflib
            near = {str(k): difflib.get_close_matches(str(k), known, n=1) for k in unknown}
            hint = "".join(f" ({k}: did you mean {m[0]}?)" for k, m in near.items() if m)
            raise GankitError(f"{source}: unknown option(s) {listing(unknown)}{hint}; see `gankit train --help` "
                              "for the known options")
        defaults = cls()
        values = {}
        for key, value in d.items():
            values[key] = _coerce(key, value, type(getattr(defaults, key)), source)
        return cls(**values)

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes)

    def to_yaml_text(self) -> str:
        """The configuration as YAML, in field order (``rundir.write_config`` writes it)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping of options from ``path`` (user errors become GankitError)."""
    path = Path(path)
    if not path.exists():
        raise GankitError(f"config file {str(path)!r} does not exist")
    if not path.is_file():
        raise GankitError(f"config file {str(path)!r} is not a file")
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise GankitError(f"config file {str(path)!r} is {path.stat().st_size:,} bytes; a configuration is a "
                              f"few hundred (at most {MAX_CONFIG_BYTES:,} are read)")
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise GankitError(f"cannot read config file {str(path)!r}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.constructor.ConstructorError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise GankitError(f"config file {str(path)!r} uses a YAML tag gankit does not accept{at} "
                          f"({shorten(str(exc.problem or ''), 60)}); options are plain values") from None
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
MAX_CONFIG_BYTES = 1 << 20


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


def with_own_defaults(given: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The options ``given`` completed, where the user set none of them, with the chosen
    model's own defaults (registered with the model, such as DCGAN's z 100, Adam 2e-4, beta1
    0.5) and then the data set's (registered with it, such as ring8's 2-d noise and light
    R1 penalty); returns the options and the defaults applied, by source (``"model dcgan"``,
    ``"data ring8"``)."""
    options, applied = dict(given), {}
    model = options.get("model", Config.model)
    data = options.get("data", Config.data)
    sources = (("model", model, MODELS.entry(model) if isinstance(model, str) and model in MODELS else None),
               ("data", data, DATA.entry(data) if isinstance(data, str) and data in DATA.names() else None))
    for kind, name, entry in sources:
        own = {k: v for k, v in (entry.meta.get("defaults", {}) if entry else {}).items() if k not in options}
        if own:
            applied[f"{kind} {name}"] = own
            options.update(own)
    return options, applied


def describe_defaults(applied: dict[str, dict[str, Any]]) -> str:
    """The log line naming the defaults :func:`with_own_defaults` applied."""
    return "; ".join(f"{source}: its own defaults " + ", ".join(f"{k} {v}" for k, v in own.items())
                     for source, own in applied.items()) + " (set any of them to override)"


def load_config(path: str | Path) -> Config:
    return Config.from_dict(load_yaml(path), source=f"config file {str(path)!r}").validate()


# ---------------------------------------------------------------------- helpers
def check_field(f: dataclasses.Field, value: Any) -> None:
    """One field's type and constraint, from its metadata."""
    typ = type(f.default)
    if typ is bool and not isinstance(value, bool):
        raise GankitError(f"{f.name} must be true or false, got {shorten(value)}")
    if typ is str and not isinstance(value, str):
        raise GankitError(f"{f.name} must be a string, got {shorten(value)}")
    allowed = allowed_values(f)
    if allowed is not None and value not in allowed:
        raise GankitError(f"{f.name} must be one of {', '.join(map(str, allowed_values(f, True)))}; "
                          f"got {shorten(value)}")
    rule = f.metadata.get("rule")
    if rule is not None and not rule[0](value):
        raise GankitError(f"{f.name} must be {rule[1]}, got {shorten(value)}")


def check_device_name(value, option: str = "device") -> None:
    """A device a run or the bench can be asked for: cpu, cuda, cuda:N or auto."""
    if not isinstance(value, str) or not (value in ("cpu", "cuda", "auto") or value.startswith("cuda:")):
        raise GankitError(f"{option} must be cpu, cuda, cuda:N or auto, got {shorten(value)}")


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
    kind = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}.get(typ, typ.__name__)
    raise GankitError(f"{source}: option {key} must be {kind}, got {shorten(value)}")
