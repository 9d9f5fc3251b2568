"""Model families: each name builds a (generator, discriminator) pair for a data shape.

The discriminator always returns one logit per example, shape [n]; ``D(x) = sigmoid`` of
it. A generator may declare ``output_range`` (e.g. (-1, 1) for tanh): image data are
scaled to it. A family is a builder ``(config, data_shape) -> (G, D)`` registered in
:data:`gankit.registries.MODELS` (``docs/extending.md`` adds one), with, for
``--conditional``, a builder ``(config, data_shape, num_classes) -> (G(z, y), D(x, y))``
as its ``conditional`` entry.
"""

from __future__ import annotations

import math

from torch import nn

from ..errors import GankitError
from ..registries import MODELS
from .conditional import (
    AuxClassifier,
    AuxClassifierDiscriminator,
    ChannelConcatDiscriminator,
    ConcatDiscriminator,
    ConditionalGenerator,
    DeepConcatDiscriminator,
    ProjectionDiscriminator,
    class_batchnorm,
)
from .dcgan import SIZES as DCGAN_SIZES
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .mlp import MLPDiscriminator, MLPGenerator
from .paper_mnist import PaperMNISTDiscriminator, PaperMNISTGenerator


def _build_mlp(cfg, shape):
    return (MLPGenerator(cfg.z_dim, shape, hidden=cfg.hidden, depth=cfg.depth),
            MLPDiscriminator(shape, hidden=cfg.hidden, depth=cfg.depth))


def _image_shape(name: str, shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise GankitError(f"model {name} needs image data (C×H×W); this data set has shape {tuple(shape)}; "
                          "use --model mlp for low-dimensional data")
    return tuple(shape)


def _build_dcgan(cfg, shape):
    c, h, w = _image_shape("dcgan", shape)
    if h != w or h not in DCGAN_SIZES:
        raise GankitError(f"model dcgan takes square images of {', '.join(map(str, DCGAN_SIZES))} pixels, "
                          f"the data are {h}×{w}; pass --image-size N with --resize resize or center-crop")
    return (DCGANGenerator(cfg.z_dim, c, h, cfg.width),
            DCGANDiscriminator(c, h, cfg.width, norm=getattr(cfg, "d_norm", "batch")))


def _build_paper_mnist(cfg, shape):
    _image_shape("mnist-paper", shape)
    return PaperMNISTGenerator(cfg.z_dim, shape), PaperMNISTDiscriminator(shape)


MLP_EMBED, DCGAN_EMBED = 8, 50   # class-embedding sizes joined to the noise (and, for the MLP, to x)


def _conditional_mlp(cfg, shape, num_classes):
    G = ConditionalGenerator(MLPGenerator(cfg.z_dim + MLP_EMBED, shape, hidden=cfg.hidden, depth=cfg.depth),
                             num_classes, MLP_EMBED)
    D = ConcatDiscriminator(MLPDiscriminator((math.prod(shape) + MLP_EMBED,), hidden=cfg.hidden, depth=cfg.depth),
                            shape, num_classes, MLP_EMBED)
    return G, D


def _conditional_dcgan(cfg, shape, num_classes):
    G0, D0 = _build_dcgan(cfg.replace(z_dim=cfg.z_dim + DCGAN_EMBED), shape)
    if getattr(cfg, "g_class_input", "concat") == "batchnorm":
        class_batchnorm(G0, num_classes)
    G = ConditionalGenerator(G0, num_classes, DCGAN_EMBED)
    class_input = getattr(cfg, "class_input", "concat")
    if class_input == "projection":
        return G, ProjectionDiscriminator(D0, num_classes, D0.net[-1].channels)
    if class_input == "deep":
        D0 = DCGANDiscriminator(shape[0], shape[1], cfg.width, class_maps=num_classes,
                                norm=getattr(cfg, "d_norm", "batch"))
        return G, DeepConcatDiscriminator(D0, shape, num_classes)
    D0 = _build_dcgan(cfg, (shape[0] + num_classes, *shape[1:]))[1]   # K more input maps
    return G, ChannelConcatDiscriminator(D0, shape, num_classes)


MODELS.register("mlp", _build_mlp, doc="small MLPs for 1-D and 2-D data (--hidden, --depth)",
                conditional=_conditional_mlp, sizes=("hidden", "depth"))
MODELS.register("dcgan", _build_dcgan, conditional=_conditional_dcgan,
                doc="DCGAN for 28, 32 and 64 pixels, any number of channels (--width, --d-norm)",
                sizes=("width", "d_norm"),
                defaults={"z_dim": 100, "lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "batch_size": 64,
                          "lr_schedule": "constant"})
MODELS.register("mnist-paper", _build_paper_mnist, doc="the 2014 paper's MNIST model: ReLU MLP G, maxout D", sizes=(),
                defaults={"z_dim": 100, "batch_size": 100})


def build_models(cfg, data_shape: tuple[int, ...], num_classes: int = 0) -> tuple[nn.Module, nn.Module]:
    """Build G and D for ``cfg.model``, initialised from the current global torch RNG; with
    ``num_classes``, the conditional G(z, y) and D(x, y) (``models/conditional.py``), and with
    ``aux_classifier`` > 0 an auxiliary classifier beside D; with
    ``pack`` > 1, D for packs of that many examples; with ``spectral_norm``, D's weights
    spectrally normalised."""
    from ..training.regularizers import packed_shape, spectral_normalize
    build = MODELS.get(cfg.model)
    if num_classes:
        conditional = MODELS.entry(cfg.model).meta.get("conditional")
        if conditional is None:
            raise GankitError(f"model {cfg.model} has no conditional form; --conditional takes --model "
                              + " or ".join(n for n in MODELS.names() if MODELS.entry(n).meta.get("conditional")))
        G, D = conditional(cfg, tuple(data_shape), num_classes)
        if getattr(cfg, "aux_classifier", 0.0) > 0:   # built after G and D: their initial weights stay the same
            D = AuxClassifierDiscriminator(D, AuxClassifier(build(cfg, tuple(data_shape))[1], num_classes))
    else:
        G, D = build(cfg, tuple(data_shape))
    if getattr(cfg, "pack", 1) > 1:
        D = build(cfg, packed_shape(tuple(data_shape), cfg.pack))[1]
    if getattr(cfg, "spectral_norm", False):
        spectral_normalize(D)
    return G, D


__all__ = ["MODELS", "build_models", "MLPGenerator", "MLPDiscriminator", "DCGANGenerator",
           "DCGANDiscriminator", "PaperMNISTGenerator", "PaperMNISTDiscriminator"]
