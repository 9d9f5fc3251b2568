"""The noise prior p_z, and drawing from a generator: batched, without gradients, in eval
mode, from a seeded stream."""

from __future__ import annotations

import math

import torch

from .data.images import available_memory
from .errors import GankitError
from .models.conditional import balanced_labels

# Half-widths of the uniform priors: U(-1, 1), and U(-√3, √3), whose unit variance matches
# N(0, I)'s; the published GAN code's "uniform" noise (goodfeli/adversarial's Generator) is
# the latter, the one its final mnist.yaml trains with.
UNIFORM_HALF_WIDTH = {"uniform": 1.0, "uniform_unit": math.sqrt(3.0)}


def sample_noise(m: int, z_dim: int, prior: str, generator: torch.Generator) -> torch.Tensor:
    """``m`` noise vectors from ``p_z``: ``"normal"`` N(0, I), ``"uniform"`` U(-1, 1)^z_dim, or
    ``"uniform_unit"`` U(-√3, √3)^z_dim (unit variance)."""
    if prior == "normal":
        return torch.randn(m, z_dim, generator=generator, device=generator.device)
    if prior in UNIFORM_HALF_WIDTH:
        # times 1.0 is exact in floating point: U(-1, 1)'s draws are those it always drew
        return (torch.rand(m, z_dim, generator=generator, device=generator.device) * 2 - 1) * UNIFORM_HALF_WIDTH[prior]
    raise ValueError(f"noise prior must be one of normal, {', '.join(UNIFORM_HALF_WIDTH)}; got {prior!r}")


def as_noise(z, z_dim: int) -> torch.Tensor:
    """``z`` (a tensor or anything ``torch.as_tensor`` takes) as float32 noise [m, z_dim]; a
    one-line :class:`GankitError` for another shape or a value that is not finite."""
    try:
        z = torch.as_tensor(z, dtype=torch.float32, device="cpu" if not torch.is_tensor(z) else z.device)
    except (TypeError, ValueError, RuntimeError) as e:
        raise GankitError(f"z must be a tensor of noise vectors: {e}") from None
    if z.ndim != 2 or z.shape[1] != z_dim or z.shape[0] == 0:
        raise GankitError(f"z must be noise vectors [n, {z_dim}] with n > 0, got shape {tuple(z.shape)}")
    if not torch.isfinite(z).all():
        raise GankitError("z holds values that are not finite (nan or inf)")
    return z


def generate(G: torch.nn.Module, n: int, z_dim: int, noise: str, seed: int, batch: int = 10_000,
             z: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> torch.Tensor:
    """``n`` samples of G as float32 on the CPU: noise from ``seed`` (or the given ``z``).

    A conditional G gets ``labels`` (int64 [n]), by default the classes in turn (0, 1, …,
    C−1, 0, …: a class-balanced draw). G runs in eval mode (BatchNorm uses running
    statistics, dropout is off); its mode is restored afterwards, and no training random
    stream is touched.
    """
    return torch.cat(list(generate_chunks(G, n, z_dim, noise, seed, batch, z, labels)))


def generate_chunks(G: torch.nn.Module, n: int, z_dim: int, noise: str, seed: int, batch: int = 10_000,
                    z: torch.Tensor | None = None, labels: torch.Tensor | None = None):
    """The samples of :func:`generate`, ``batch`` at a time (the same values): for outputs
    larger than memory, written as they come."""
    device = next(G.parameters()).device
    # the noise is drawn on the CPU wherever G runs, so that a seed names the same samples
    # on every device (CUDA's generator draws other numbers from the same seed)
    gen = torch.Generator().manual_seed(seed) if z is None else None
    total = n if z is None else z.shape[0]
    classes = getattr(G, "num_classes", 0)
    if classes and labels is None:
        labels = balanced_labels(total, classes)
    was = G.training
    G.eval()
    try:
        for s in range(0, total, batch):
            zb = sample_noise(min(batch, total - s), z_dim, noise, gen) if z is None else z[s:s + batch]
            with torch.no_grad():
                out = G(zb.to(device)) if labels is None else G(zb.to(device), labels[s:s + batch].to(device))
                yield out.float().cpu()
    finally:
        G.train(was)


STANDING_SEED = 12345   # the noise of standing statistics: a stream of its own, apart from the samples' seeds


def batchnorm_layers(G: torch.nn.Module) -> list[torch.nn.Module]:
    """G's BatchNorm layers (every ``BatchNorm1d/2d/3d``, in module order): the ones whose
    statistics :func:`standing_statistics` recomputes."""
    return [m for m in G.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def standing_statistics(G: torch.nn.Module, z_dim: int, noise: str, batch: int, n: int = 10_000,
                        seed: int = STANDING_SEED) -> int:
    """Recompute the running statistics of G's BatchNorm layers from G itself, in place:
    each becomes the mean over ``n // batch`` whole batches of ``batch`` samples (the batch
    size G trained at; at least one batch) of the batch means and unbiased batch variances
    that BatchNorm computes in training mode. These are BigGAN's "standing statistics"
    (Brock et al. 2018, for its averaged generator): an EMA generator's weights are an average, but the statistics it
    carries are copied from G as trained (the EMA, like stylegan2-ada's, copies buffers), so
    they describe another network's activations. Nothing else changes: dropout and every
    other layer stay in eval mode, no gradient is kept, no training random stream is drawn
    from (the noise comes from ``seed``), and G is left in eval mode. A conditional G gets
    the classes in turn. Returns the number of BatchNorm layers (0: nothing to recompute)."""
    norms = batchnorm_layers(G)
    if not norms:
        return 0
    device = next(G.parameters()).device
    gen = torch.Generator(device).manual_seed(seed)
    classes = getattr(G, "num_classes", 0)
    momenta = [m.momentum for m in norms]
    G.eval()
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None      # a cumulative mean over the batches, not an exponential one
            m.train()
        with torch.no_grad():
            for _ in range(max(1, n // batch)):   # whole batches: each counts once in the mean
                zb = sample_noise(batch, z_dim, noise, gen)
                G(zb) if not classes else G(zb, balanced_labels(batch, classes, device))
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        G.eval()
    return len(norms)


INTERPOLATION_PATHS = ("auto", "linear", "spherical")


def interpolation_noise(rows: int, steps: int, z_dim: int, noise: str, seed: int,
                        spherical: bool | None = None) -> torch.Tensor:
    """Noise for a latent walk: ``rows`` pairs of random endpoints, ``steps`` points from
    one to the other, along great circles (``spherical``; the default for a normal prior)
    or straight lines (the default for a uniform prior)."""
    gen = torch.Generator().manual_seed(seed)
    a, b = sample_noise(rows, z_dim, noise, gen), sample_noise(rows, z_dim, noise, gen)
    t = torch.linspace(0, 1, steps)[None, :, None]
    if spherical if spherical is not None else noise == "normal":
        cos = (torch.nn.functional.normalize(a, dim=1) * torch.nn.functional.normalize(b, dim=1)).sum(1)
        omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))[:, None, None]
        so = torch.sin(omega)
        z = (torch.sin((1 - t) * omega) / so) * a[:, None] + (torch.sin(t * omega) / so) * b[:, None]
    else:
        z = (1 - t) * a[:, None] + t * b[:, None]
    return z.reshape(rows * steps, z_dim)


def check_sample_memory(n: int, shape: tuple, what: str) -> None:
    """Refuse, before drawing, ``n`` samples that would not fit in the available memory."""
    need = n * math.prod(shape) * 4 * 2   # the samples, and a working copy
    avail = available_memory()
    if avail is not None and need > 0.8 * avail:
        raise GankitError(f"{what} of {n:,} samples needs about {need / 2**30:,.1f} GiB of memory, "
                          f"{avail / 2**30:,.1f} GiB are available; ask for fewer (--n)")
