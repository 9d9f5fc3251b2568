"""The stabilisers of later GANs, each a small piece that changes no objective: an EMA
generator, spectral normalisation of D, zero-centred gradient penalties (R1, R2), packing
(PacGAN) and differentiable augmentation (DiffAugment). The trainer (loop.py) calls them;
docs/theory.md §6 states what each computes and tests/training/test_regularizers.py checks it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm  # subclassed: its buffers, init, state dict


@dataclass
class Stabilizers:
    """The stabilisers a trainer applies (all off by default)."""

    pack: int = 1                                   # PacGAN: D judges packs of this many examples
    augment: tuple = ()                             # DiffAugment policy: color, translation, cutout
    augment_generator: torch.Generator | None = None
    r1: float = 0.0                                 # γ of the R1 penalty on real data
    r2: float = 0.0                                 # γ of the R2 penalty on generated data
    reg_every: int = 1                              # lazy regularisation: every N D steps, weight γ·N
    ema: "EMA | None" = None
    bn_stats: str = "running"                       # "standing": samples from G with recomputed statistics
    batch_part: tuple = (0, 1)                      # (rank, processes): this process's share of a batch

    def d_view(self, x: torch.Tensor) -> torch.Tensor:
        """What D sees of a batch: augmented (images), then packed."""
        if self.augment:
            x = diff_augment(x, list(self.augment), self.augment_generator, self.batch_part)
        return pack(x, self.pack)

    def penalty(self, D: nn.Module, real_in: torch.Tensor, fake_in: torch.Tensor, d_step: int,
                autocast=None, labels: tuple = (None, None)) -> torch.Tensor | None:
        """``reg_every · (γ1 R1 + γ2 R2)`` on D's inputs when D step ``d_step`` is due, else
        None; a conditional D gets each batch's ``labels`` (real, generated)."""
        if not (self.r1 or self.r2) or d_step % self.reg_every:
            return None
        total = 0.0
        if self.r1:
            total = total + self.r1 * gradient_penalty(D, real_in, autocast, labels[0])
        if self.r2:
            total = total + self.r2 * gradient_penalty(D, fake_in, autocast, labels[1])
        return self.reg_every * total


# ---------------------------------------------------------------------- EMA generator
class EMA:
    """An exponential moving average of G's weights (stylegan2-ada's ``G_ema``).

    After each G step, ``θ_ema ← β θ_ema + (1 − β) θ_g`` with ``β = 0.5^(m / h)``: ``h`` is
    the half-life in images, ``ema_kimg · 1000``, ramped up early in training to at most
    ``rampup`` times the images seen so far (so the average does not drag the first random
    weights along). Buffers (BatchNorm's running statistics) are copied, not averaged."""

    def __init__(self, G: nn.Module, kimg: float, rampup: float = 0.05):
        self.G = G
        self.kimg, self.rampup = float(kimg), float(rampup)
        self.ema = copy.deepcopy(G).eval().requires_grad_(False)
        self.images = 0

    def beta(self, batch: int) -> float:
        half_life = self.kimg * 1000.0
        if self.rampup > 0:
            half_life = min(half_life, self.images * self.rampup)
        return 0.5 ** (batch / max(half_life, 1e-8))

    @torch.no_grad()
    def update(self, batch: int) -> None:
        self.images += batch
        b = self.beta(batch)
        ema_p, g_p = list(self.ema.parameters()), list(self.G.parameters())
        torch._foreach_lerp_(ema_p, [p.detach() for p in g_p], 1.0 - b)
        for e, g in zip(self.ema.buffers(), self.G.buffers()):
            e.copy_(g)

    def state_dict(self) -> dict:
        return {"model": self.ema.state_dict(), "images": self.images}

    def load_state_dict(self, state: dict) -> None:
        self.ema.load_state_dict(state["model"])
        self.images = int(state["images"])


# ---------------------------------------------------------------------- spectral normalisation
class SpectralNorm(_SpectralNorm):
    """torch's spectral-norm parametrization (Miyato et al. 2018: W / σ, σ = uᵀWv, u and v
    advanced by one power iteration per forward pass in training mode), with its buffers,
    state dict, initialisation, values and gradients bitwise, computed in fewer calls. On a
    small D the cost of spectral norm is the number of calls, not their arithmetic
    (docs/results.md, "What each stabiliser costs"), so the power iteration normalises u and
    v in place with one norm and one division each (``F.normalize`` with ``out=`` takes four
    calls behind its Python checks), and a pass without a graph (G's step, where D is
    fixed) takes no copies of u and v (torch copies them for the graph of an earlier pass).
    """

    @torch.no_grad()
    def _power_method(self, weight_mat: torch.Tensor, n_power_iterations: int) -> None:
        for _ in range(n_power_iterations):
            for out, mat, vec in ((self._u, weight_mat, self._v), (self._v, weight_mat.H, self._u)):
                torch.mv(mat, vec, out=out)
                out.div_(torch.linalg.vector_norm(out).clamp_min_(self.eps))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if weight.ndim == 1 or (weight.requires_grad and torch.is_grad_enabled()):
            return super().forward(weight)
        mat = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(mat, self.n_power_iterations)
        return weight / torch.vdot(self._u, torch.mv(mat, self._v))


def spectral_normalize(D: nn.Module) -> nn.Module:
    """Divide every weight of D's linear and convolutional layers by its largest singular
    value, estimated by power iteration (:class:`SpectralNorm`, torch's parametrization in
    fewer calls; dimension 1 for transposed convolutions, as ``torch.nn.utils.
    parametrizations.spectral_norm`` takes it). In place; returns D. The trainer runs one
    iteration per D step: D's passes within the step share one computation of the weights,
    and G's step reuses the step's u, v (``GANTrainer.sn_iterate_in_g_step``)."""
    for m in list(D.modules()):
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)) and not hasattr(m, "parametrizations"):
            dim = 1 if isinstance(m, nn.ConvTranspose2d) else 0
            parametrize.register_parametrization(m, "weight", SpectralNorm(m.weight, dim=dim))
    return D


# ---------------------------------------------------------------------- gradient penalties
def gradient_penalty(D: nn.Module, x: torch.Tensor, autocast=None, y: torch.Tensor | None = None) -> torch.Tensor:
    """``1/2 E_x ||∇_x f(x)||²`` (f: D's logit; ``f(x, y)`` for a conditional D with the
    labels ``y`` held fixed) on the batch ``x``, with a graph for its own gradient (R1 on real
    data, R2 on generated data; Mescheder et al. 2018). The squared norms are summed in
    float32 (float64 for float64 inputs) whatever the precision of D's forward pass."""
    x = x.detach().requires_grad_(True)
    ctx = autocast() if autocast is not None else torch.autocast(x.device.type, enabled=False)
    with ctx:
        logits = D(x) if y is None else D(x, y)
    logits = logits if logits.dtype == torch.float64 else logits.float()
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    grad = grad if grad.dtype == torch.float64 else grad.float()
    return 0.5 * grad.square().flatten(1).sum(1).mean()


# ---------------------------------------------------------------------- packing
def pack(x: torch.Tensor, m: int) -> torch.Tensor:
    """PacGAN's packing: ``m`` consecutive examples concatenated into one, along features
    (vectors) or channels (images): [n, ...] -> [n/m, m·...]."""
    if m == 1:
        return x
    n = x.shape[0]
    assert n % m == 0, f"a batch of {n} does not split into packs of {m}"
    if x.ndim == 4:
        return x.reshape(n // m, m * x.shape[1], *x.shape[2:])
    return x.reshape(n // m, -1)


def packed_shape(shape: tuple, m: int) -> tuple:
    """The shape D judges when it takes packs of ``m`` examples of ``shape``."""
    if m == 1:
        return tuple(shape)
    return (m * shape[0], *shape[1:]) if len(shape) == 3 else (m * math.prod(shape),)


# ---------------------------------------------------------------------- DiffAugment
POLICIES = ("color", "translation", "cutout")


def parse_policy(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()] if text else []


def diff_augment(x: torch.Tensor, policy: list[str], generator: torch.Generator | None = None,
                 part: tuple[int, int] = (0, 1)) -> torch.Tensor:
    """DiffAugment (Zhao et al. 2020): the same kinds of random, differentiable transforms
    for every image D sees, real or generated: ``color`` (brightness, saturation, contrast),
    ``translation`` (by up to 1/8 of the size, zero-filled) and ``cutout`` (a zeroed square
    of half the size). Draws from ``generator`` (a run's own stream, for exact resume).
    ``x`` is part ``rank`` of ``processes`` equal slices of a global batch (``part``): the
    transforms are drawn for the whole batch and this slice's are applied, so N processes
    augment each image as one process does."""
    if x.ndim != 4 or not policy:
        return x
    for p in policy:
        x = _AUGMENTS[p](x, _Draws(generator, part, x))
    return x


class _Draws:
    """Uniform draws for a global batch of which ``x`` is the slice ``part`` = (rank,
    processes); called with ``(n, *rest)``, returns this slice's n rows, in ``x``'s device and dtype."""

    def __init__(self, generator: torch.Generator | None, part: tuple[int, int], x: torch.Tensor):
        self.generator, (self.rank, self.processes), self.x = generator, part, x

    def __call__(self, n: int, *rest: int) -> torch.Tensor:
        dev = self.generator.device if self.generator is not None else self.x.device
        u = torch.rand(n * self.processes, *rest, generator=self.generator, device=dev)
        return u[self.rank * n:(self.rank + 1) * n].to(self.x.device, self.x.dtype)


def _color(x, rand):
    n = x.shape[0]
    x = x + (rand(n, 1, 1, 1) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (rand(n, 1, 1, 1) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (rand(n, 1, 1, 1) + 0.5) + mean


def _translation(x, rand, ratio: float = 0.125):
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = (rand(n) * (2 * sh + 1)).floor().long().clamp(max=2 * sh) - sh
    dx = (rand(n) * (2 * sw + 1)).floor().long().clamp(max=2 * sw) - sw
    ys = (torch.arange(h, device=x.device)[None, :] - dy[:, None]).clamp(-1, h)
    xs = (torch.arange(w, device=x.device)[None, :] - dx[:, None]).clamp(-1, w)
    padded = F.pad(x, (1, 1, 1, 1))                       # index -1 and h land on zeros
    rows = padded[torch.arange(n, device=x.device)[:, None, None], :, (ys + 1)[:, :, None], (xs + 1)[:, None, :]]
    return rows.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last) if x.is_contiguous(
        memory_format=torch.channels_last) else rows.permute(0, 3, 1, 2).contiguous()


def _cutout(x, rand, ratio: float = 0.5):
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = (rand(n) * (h + 1 - ch % 2)).floor().long()
    cx = (rand(n) * (w + 1 - cw % 2)).floor().long()
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = ((ys - cy[:, None, None] + ch // 2).clamp(0) < ch) & (ys >= cy[:, None, None] - ch // 2) & \
             ((xs - cx[:, None, None] + cw // 2).clamp(0) < cw) & (xs >= cx[:, None, None] - cw // 2)
    return x * (~inside)[:, None].to(x.dtype)


_AUGMENTS = {"color": _color, "translation": _translation, "cutout": _cutout}
