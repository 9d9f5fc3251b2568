"""Algorithm 1 of Goodfellow et al. (2014): k discriminator steps, then one generator step.

This module knows nothing of files, progress bars or pictures: :class:`GANTrainer` performs
one outer iteration per :meth:`GANTrainer.step`, and :func:`run_loop` repeats it, handing
each step to callbacks (``training/callbacks.py``) that log, evaluate and checkpoint.

Per outer iteration (docs/theory.md, Algorithm 1)::

    repeat k times:
        z_1..z_m ~ p_z (fresh),  x_1..x_m ~ p_data (fresh minibatch)
        ascend  grad_theta_d V~          (G fixed)
    z_1..z_m ~ p_z (fresh)
    descend grad_theta_g L_G            (D fixed)

No quantity is copied to the host inside a step: statistics stay as tensors until a
callback asks for them, so logging every N steps costs one synchronisation per N steps.
"""

from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm  # torch's spectral-norm parametrization

from .. import objectives
from ..sampling import sample_noise, standing_statistics
from .regularizers import Stabilizers


class DataSource(Protocol):
    def next(self, m: int, generator: torch.Generator) -> torch.Tensor: ...


@dataclass
class StepStats:
    """Statistics of one outer iteration, as device tensors (read them with :meth:`to_dict`).

    ``value``, ``d_real``, ``d_fake`` and ``loss_d`` come from the last discriminator step
    (before its update); ``loss_g`` from the generator step.
    """

    value: torch.Tensor
    d_real: torch.Tensor
    d_fake: torch.Tensor
    loss_d: torch.Tensor
    loss_g: torch.Tensor
    grad_norm_d: torch.Tensor | None = None
    grad_norm_g: torch.Tensor | None = None
    loss_scale: torch.Tensor | None = None  # fp16: the gradient scaler's scale after this step
    # --aux-classifier: the auxiliary classifier's cross-entropy on the real batch (D step) and
    # on G's samples for their classes (G step), unweighted
    class_loss_d: torch.Tensor | None = None
    class_loss_g: torch.Tensor | None = None

    def to_dict(self, reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, float]:
        """The statistics as floats (one host transfer); ``reduce`` averages them across
        processes when training is distributed.

        With fp16 loss scaling (``loss_scale`` set), a gradient that overflowed is the
        scaler's business, not divergence: that optimizer's step was skipped and the scale
        lowered, so its norm is left out of the statistics rather than reported as inf."""
        names = ("value", "d_real", "d_fake", "loss_d", "loss_g", "grad_norm_d", "grad_norm_g", "loss_scale",
                 "class_loss_d", "class_loss_g")
        tensors = [getattr(self, n) for n in names]
        present = [(n, t) for n, t in zip(names, tensors) if t is not None]
        stacked = torch.stack([t.detach().float() for _, t in present])
        values = (reduce(stacked.cpu()) if reduce else stacked).cpu().tolist()
        out = {n: float(v) for (n, _), v in zip(present, values)}
        if self.loss_scale is not None:
            for n in ("grad_norm_d", "grad_norm_g"):
                if n in out and not math.isfinite(out[n]):
                    del out[n]
        return out


def _grad_norm(module: nn.Module) -> torch.Tensor:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


@dataclass
class GANTrainer:
    """The state Algorithm 1 updates, and one outer iteration of it.

    Args:
        G, D: generator and discriminator (D returns logits, shape [n]).
        opt_g, opt_d: their optimizers.
        data: a source with ``next(m, generator)``.
        loss: generator loss, ``"nonsaturating"`` or ``"minimax"``.
        k: discriminator steps per generator step.
        batch_size: m.
        z_dim, noise: the noise prior.
        data_generator, noise_generator: the random streams for data and noise.
    """

    G: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    data: DataSource
    loss: str
    k: int
    batch_size: int
    z_dim: int
    noise: str
    data_generator: torch.Generator
    noise_generator: torch.Generator
    step_count: int = 0
    # step -> {"lr_factor": multiplier of the initial learning rates, "momentum": SGD momentum}
    schedule: Callable[[int], dict] | None = None
    precision: str = "fp32"          # "fp32", "bf16" or "fp16": autocast for the forward passes
    channels_last: bool = False      # image batches in channels_last memory format (convolutions)
    reuse_fake: bool = False         # k = 1: the G step reuses the D step's G(z) (the same update)
    update: str = "alternating"      # or "simultaneous": one batch, both gradients from the same D (k = 1)
    dist: object = None              # training.distributed.Dist: this rank's slice of each global batch
    G_train: nn.Module | None = None  # G as updated (DDP-wrapped when distributed); G itself otherwise
    D_train: nn.Module | None = None
    stab: Stabilizers = field(default_factory=Stabilizers)  # EMA, packing, augmentation, R1/R2
    # conditional: the probabilities of the classes G is trained on (None: unconditional)
    class_probs: torch.Tensor | None = None
    aux_weight: float = 0.0          # λ of the auxiliary classifier's loss (D an AuxClassifierDiscriminator)
    # Spectral norm: advance the power iteration in G's step too (torch's behaviour in training
    # mode; False: once per D step, G's step normalises by σ = uᵀWv with D's current u, v).
    sn_iterate_in_g_step: bool = False

    def __post_init__(self) -> None:
        self._base_lrs = [[g["lr"] for g in opt.param_groups] for opt in (self.opt_d, self.opt_g)]
        self.lr_scale = 1.0
        self.device_type = self.noise_generator.device.type
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        self._autocast = (lambda: torch.autocast(self.device_type, dtype=dtype)) if dtype else contextlib.nullcontext
        # fp16 has too little range for gradients: scale the losses (state kept in checkpoints).
        self.scaler = torch.amp.GradScaler(self.device_type) if self.precision == "fp16" else None
        self._fake = None
        self._standing: tuple[int, nn.Module] | None = None   # (step, G with standing statistics)
        self._class_loss: dict[str, torch.Tensor] = {}
        self.G_train = self.G_train or self.G
        self.D_train = self.D_train or self.D
        # Spectral norm (a parametrization) recomputes D's weights, power iteration included,
        # at every access; within one D step D runs two or three times (real, generated, the
        # penalty) on the same weights, so they are computed once per step and reused.
        parametrized = any(parametrize.is_parametrized(m) for m in self.D.modules())
        self._d_weights_once = parametrize.cached if parametrized else contextlib.nullcontext
        # In G's step D is fixed and its u, v are one power iteration old (this D step's), so
        # the parametrizations run without iterating (their eval mode): σ = uᵀWv of the updated
        # W. That halves the power iterations per step (on grid25's MLP, spectral norm's cost
        # fell from x1.21 to x1.165, docs/results.md); the estimate still improves every D step.
        self._sn_modules = [m for m in self.D.modules() if isinstance(m, _SpectralNorm)]
        # D's parameters, listed once: G's step freezes and frees them, and walking D's module
        # tree for them every step (twice as deep with parametrizations) cost 30-57 µs on grid25.
        self._d_params = list(self.D.parameters())

    def _shard(self, batch: torch.Tensor) -> torch.Tensor:
        return self.dist.shard(batch) if self.dist is not None else batch

    def _backward_step(self, loss: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            loss.backward()
            opt.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(opt)  # unscales .grad in place first (the logged norms are true ones)
            self.scaler.update()

    def scale_learning_rates(self, scale: float) -> None:
        """Multiply the initial learning rates by ``scale`` relative to the configured ones
        (a rollback after divergence); kept in checkpoints as ``lr_scale``."""
        factor = scale / self.lr_scale
        self._base_lrs = [[b * factor for b in bases] for bases in self._base_lrs]
        for opt, bases in zip((self.opt_d, self.opt_g), self._base_lrs):
            for group, base in zip(opt.param_groups, bases):
                group["lr"] = base
        self.lr_scale = scale

    def _apply_schedule(self) -> None:
        """Hyperparameters are a pure function of the step, so resuming needs no scheduler state."""
        h = self.schedule(self.step_count)
        for opt, bases in zip((self.opt_d, self.opt_g), self._base_lrs):
            for group, base in zip(opt.param_groups, bases):
                if "lr_factor" in h:
                    group["lr"] = max(base * h["lr_factor"], h.get("lr_min", 0.0))
                if "momentum" in h and "momentum" in group:
                    group["momentum"] = h["momentum"]

    def noise_batch(self, m: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This process's part of ``m`` fresh noise vectors (all of them when alone) and, for
        a conditional GAN, of their classes (drawn after the noise, from the same stream)."""
        z = self._shard(sample_noise(m, self.z_dim, self.noise, self.noise_generator))
        if self.class_probs is None:
            return z, None
        y = torch.multinomial(self.class_probs, m, replacement=True, generator=self.noise_generator)
        return z, self._shard(y.to(z.device))

    def data_batch(self, m: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This process's part of the next ``m`` data examples (channels_last images when
        asked for) and, for a conditional GAN, of their labels."""
        if self.class_probs is None:
            x, y = self.data.next(m, self.data_generator), None
        else:
            x, y = self.data.next_labeled(m, self.data_generator)
            y = self._shard(y)
        x = self._shard(x)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    @property
    def G_sample(self) -> nn.Module:
        """The generator to draw samples from: the EMA generator when there is one. With
        standing statistics (``bn_stats: standing``), a copy of it whose BatchNorm statistics
        are recomputed from itself, as ``gankit sample`` and ``eval`` load it (made once per
        step; the networks that train, and every random stream, are left as they are)."""
        G = self.stab.ema.ema if self.stab.ema is not None else self.G
        if self.stab.bn_stats != "standing":
            return G
        if self._standing is None or self._standing[0] != self.step_count:
            standing = copy.deepcopy(G)
            standing_statistics(standing, self.z_dim, self.noise, self.batch_size)
            self._standing = (self.step_count, standing)
        return self._standing[1]

    def _judge(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor | None, side: str) -> tuple[torch.Tensor, ...]:
        """D's logits on ``x`` (float32), and the loss to add to the ``side`` ("d" or "g")
        network's: λ times the auxiliary classifier's cross-entropy against ``y`` when there is
        one (recorded, unweighted, for the step's statistics), else None."""
        if not self.aux_weight:
            return call(net, x, y).float(), None
        logits, class_logits = net(x, y, classes=True)
        ce = nn.functional.cross_entropy(class_logits.float(), y)
        self._class_loss[side] = ce.detach()
        return logits.float(), self.aux_weight * ce

    @staticmethod
    def _plus(loss: torch.Tensor, *extra: torch.Tensor | None) -> torch.Tensor:
        for e in extra:
            if e is not None:
                loss = loss + e
        return loss

    def discriminator_step(self, j: int = 0) -> tuple[torch.Tensor, ...]:
        """One update of D (the ``j``-th of this iteration) on a fresh data minibatch and
        fresh noise, G fixed. With stabilisers, D judges augmented and packed batches and its
        loss carries the due gradient penalties (the returned L_D does not)."""
        m = self.batch_size
        z, y_fake = self.noise_batch(m)
        x, y = self.data_batch(m)
        keep = self.reuse_fake and self.k == 1
        with self._d_weights_once():
            with self._autocast():
                with torch.set_grad_enabled(keep):
                    fake = call(self.G_train if keep else self.G, z, y_fake)
                real_in, fake_in = self.stab.d_view(x), self.stab.d_view(fake.detach())
                real_logits, class_loss = self._judge(self.D_train, real_in, y, "d")
                fake_logits = call(self.D_train, fake_in, y_fake).float()
            loss_d = objectives.discriminator_loss(real_logits, fake_logits)
            penalty = self.stab.penalty(self.D, real_in, fake_in, self.step_count * self.k + j, self._autocast,
                                        labels=(y, y_fake))
        self._fake = (fake, y_fake) if keep else None
        self.opt_d.zero_grad(set_to_none=True)
        self._backward_step(self._plus(loss_d, penalty, class_loss), self.opt_d)
        return loss_d.detach(), real_logits.detach(), fake_logits.detach()

    def generator_step(self) -> torch.Tensor:
        """One update of G on fresh noise, D fixed (D's parameters get no gradient).

        With ``reuse_fake`` and k = 1 the samples G(z) of the D step are reused: G has not
        changed since, so this is the same update on the same kind of draw.
        """
        kept, self._fake = self._fake, None
        for p in self._d_params:
            p.requires_grad_(False)
        iterating = [p.training for p in self._sn_modules]
        if not self.sn_iterate_in_g_step:
            for p in self._sn_modules:
                p.train(False)
        try:
            with self._autocast():
                if kept is None:
                    z, y = self.noise_batch(self.batch_size)
                    fake = call(self.G_train, z, y)
                else:
                    fake, y = kept
                fake_logits, class_loss = self._judge(self.D, self.stab.d_view(fake), y, "g")
            loss_g = objectives.generator_loss(fake_logits, self.loss)
            self.opt_g.zero_grad(set_to_none=True)
            self._backward_step(self._plus(loss_g, class_loss), self.opt_g)
        finally:
            for p in self._d_params:
                p.requires_grad_(True)
            for p, mode in zip(self._sn_modules, iterating):
                p.train(mode)
        return loss_g.detach()

    def simultaneous_step(self) -> tuple[torch.Tensor, ...]:
        """One update of both networks from the same state, as the published code does it
        (goodfeli/adversarial, ``AdversaryCost2``): one data batch, one noise batch, one D
        forward pass on each (the same dropout masks); D's gradient from L_D, G's from its
        loss on those same logits; then both optimizers step. G's gradient therefore sees D
        *before* its update, unlike Algorithm 1."""
        if self.scaler is not None:
            raise ValueError("simultaneous updates do not support fp16 loss scaling; use bf16 or fp32")
        m = self.batch_size
        z, y_fake = self.noise_batch(m)
        x, y = self.data_batch(m)
        with self._d_weights_once(), self._autocast():
            fake = call(self.G_train, z, y_fake)
            real_logits, class_loss_d = self._judge(self.D_train, self.stab.d_view(x), y, "d")
            fake_logits, class_loss_g = self._judge(self.D_train, self.stab.d_view(fake), y_fake, "g")
        loss_d = objectives.discriminator_loss(real_logits, fake_logits)
        loss_g = objectives.generator_loss(fake_logits, self.loss)
        self.opt_d.zero_grad(set_to_none=True)
        self.opt_g.zero_grad(set_to_none=True)
        # Each loss differentiated only with respect to its own network's parameters.
        g_params = [p for p in self.G.parameters() if p.requires_grad]
        d_params = [p for p in self.D.parameters() if p.requires_grad]
        torch.autograd.backward(self._plus(loss_g, class_loss_g), inputs=g_params, retain_graph=True)
        torch.autograd.backward(self._plus(loss_d, class_loss_d), inputs=d_params)
        self.opt_d.step()
        self.opt_g.step()
        return loss_d.detach(), real_logits.detach(), fake_logits.detach(), loss_g.detach()

    def step(self, with_grad_norms: bool = False) -> StepStats:
        """One outer iteration of Algorithm 1. Returns its statistics as tensors."""
        grad_norm_d = grad_norm_g = None
        if self.schedule is not None:
            self._apply_schedule()
        if self.update == "simultaneous":
            loss_d, real_logits, fake_logits, loss_g = self.simultaneous_step()
        else:
            for j in range(self.k):
                loss_d, real_logits, fake_logits = self.discriminator_step(j)
            loss_g = self.generator_step()  # D is frozen here: its gradients stay those of its last step
        if self.stab.ema is not None:
            self.stab.ema.update(self.batch_size)
        if with_grad_norms:
            grad_norm_d, grad_norm_g = _grad_norm(self.D), _grad_norm(self.G)
        self.step_count += 1
        return StepStats(
            value=-loss_d,
            d_real=torch.sigmoid(real_logits).mean(),
            d_fake=torch.sigmoid(fake_logits).mean(),
            loss_d=loss_d,
            loss_g=loss_g,
            grad_norm_d=grad_norm_d,
            grad_norm_g=grad_norm_g,
            loss_scale=loss_d.new_tensor(self.scaler.get_scale()) if with_grad_norms and self.scaler else None,
            class_loss_d=self._class_loss.get("d"),
            class_loss_g=self._class_loss.get("g"),
        )


def call(net: nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """``net(x)``, or ``net(x, y)`` for a conditional network and its labels."""
    return net(x) if y is None else net(x, y)


class Callback:
    """Hooks on the loop. ``row`` collects what this step logs (metrics.jsonl). A callback
    that sets ``stop_requested = True`` stops the run as SIGINT does: the step finishes, a
    checkpoint is written, and the run reports itself interrupted (resumable)."""

    stop_requested = False

    def on_start(self, trainer: GANTrainer) -> None: ...

    def wants_stats(self, step: int) -> bool:
        return False

    def on_step_end(self, trainer: GANTrainer, step: int, stats: StepStats, row: dict) -> None: ...

    def on_end(self, trainer: GANTrainer, step: int) -> None: ...


def run_loop(trainer: GANTrainer, until: int, callbacks: Sequence[Callback] = (),
             should_stop: Callable[[], bool] = lambda: False) -> int:
    """Run outer iterations until ``trainer.step_count == until`` (or ``should_stop()``).

    Callbacks see each step in order; the first one that wants statistics at a step makes
    the trainer compute gradient norms for it. Returns the last step done.
    """
    for cb in callbacks:
        cb.on_start(trainer)
    while trainer.step_count < until and not should_stop():
        step = trainer.step_count + 1
        want = any(cb.wants_stats(step) for cb in callbacks)
        stats = trainer.step(with_grad_norms=want)
        row: dict = {}
        for cb in callbacks:
            cb.on_step_end(trainer, step, stats, row)
    for cb in callbacks:
        cb.on_end(trainer, trainer.step_count)
    return trainer.step_count
