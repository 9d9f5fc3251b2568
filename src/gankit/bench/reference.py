"""The plain reference loop of ``gankit bench``, written as the PyTorch DCGAN example is.

fp32, a Sigmoid on D and ``BCELoss``, data through a ``DataLoader`` whose dataset converts
each image on access, the D step's fake batch reused for the G step, ``.item()`` every
step, and torch's own layers in the example's form (:func:`example_layers`). Nothing in
the library imports this module; ``gankit bench`` does.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .. import ops
from ..models.dcgan import LogitHead, NoiseProjection
from ..models.paper_mnist import Dropout
from ..sampling import UNIFORM_HALF_WIDTH


def example_layers(module: nn.Module) -> nn.Module:
    """The model as the PyTorch example writes it, computing the same function with the
    same parameters: gankit's product layers back as the convolutions they stand for,
    its CPU kernels removed, its dropout as ``nn.Dropout``. In place; returns the module."""
    ops.remove(module)
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, NoiseProjection):
                conv = nn.ConvTranspose2d(child.in_features, child.channels, child.size, 1, 0, bias=False)
                parent.add_module(name, _Unsqueezed(_with_weight(conv, child.to_conv(child.weight))))
            elif isinstance(child, LogitHead):
                conv = nn.Conv2d(child.channels, 1, child.size, 1, 0, bias=False)
                parent.add_module(name, _with_weight(conv, child.to_conv(child.weight)))
            elif isinstance(child, Dropout):
                parent.add_module(name, nn.Dropout(child.p))
    return module


def _with_weight(conv: nn.Module, weight: torch.Tensor) -> nn.Module:
    with torch.no_grad():
        conv.weight.copy_(weight)
    return conv


class _Unsqueezed(nn.Module):
    """A transposed convolution fed noise [n, z] as the 1×1 image [n, z, 1, 1] it expects."""

    def __init__(self, conv: nn.ConvTranspose2d):
        super().__init__()
        self.conv = conv

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.conv(z[:, :, None, None])


def build_case_models(cfg, shape):
    """G and D of a bench case, initialised from seed 0 (the same weights in both loops)."""
    from ..models import build_models
    torch.manual_seed(0)
    return build_models(cfg, shape)


def _optim(cfg, params, lr):
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(cfg.beta1, cfg.beta2))
    return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum)


class PerItemImages(Dataset):
    """uint8 images converted on access, one by one, as torchvision's datasets do."""

    def __init__(self, images: np.ndarray, lo: float, hi: float):
        self.images, self.lo, self.hi = images, lo, hi

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        from PIL import Image
        a = self.images[i]
        img = Image.fromarray(a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0))
        t = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)
        t = t[None] if t.ndim == 2 else t.permute(2, 0, 1)
        return t * (self.hi - self.lo) + self.lo, 0


class Points(Dataset):
    def __init__(self, x: torch.Tensor):
        self.x = x

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], 0


class ReferenceLoop:
    """The plain loop (see the module docstring)."""

    def __init__(self, case, workers: int, device: torch.device | str = "cpu"):
        cfg = case.cfg
        self.device = torch.device(device)
        shape = (2,) if case.images is None else case.images.shape[1:]
        self.G, D = (example_layers(m) for m in build_case_models(cfg, shape))
        self.D = nn.Sequential(D, nn.Sigmoid())
        self.G.to(self.device)
        self.D.to(self.device)
        self.optG = _optim(cfg, self.G.parameters(), cfg.lr_g)
        self.optD = _optim(cfg, self.D.parameters(), cfg.lr_d)
        self.crit = nn.BCELoss()
        self.cfg, self.workers = cfg, workers
        if case.images is None:
            from ..data import get_distribution
            ds = Points(get_distribution(cfg.data).sample(200_000, torch.Generator().manual_seed(0)))
        else:
            lo, hi = getattr(self.G, "output_range", (-1.0, 1.0))
            ds = PerItemImages(case.images, lo, hi)
        self.dataset = ds
        self.it = None

    def loader(self):
        return DataLoader(self.dataset, batch_size=self.cfg.batch_size, shuffle=True, num_workers=self.workers,
                          drop_last=True, persistent_workers=False)

    def noise(self, b):
        if self.cfg.noise in UNIFORM_HALF_WIDTH:
            half = UNIFORM_HALF_WIDTH[self.cfg.noise]
            return (torch.rand(b, self.cfg.z_dim, device=self.device) * 2 - 1) * half
        return torch.randn(b, self.cfg.z_dim, device=self.device)

    def run(self, steps: int) -> None:
        for _ in range(steps):
            try:
                real, _ = next(self.it)
            except (StopIteration, TypeError):
                self.it = iter(self.loader())
                real, _ = next(self.it)
            real = real.to(self.device)
            b = real.shape[0]
            if self.cfg.update == "simultaneous":
                self._simultaneous(real, b)
                continue
            self.D.zero_grad()
            label = torch.full((b,), 1.0, device=self.device)
            out = self.D(real).view(-1)
            err_real = self.crit(out, label)
            err_real.backward()
            d_x = out.mean().item()
            fake = self.G(self.noise(b))
            label.fill_(0.0)
            out = self.D(fake.detach()).view(-1)
            err_fake = self.crit(out, label)
            err_fake.backward()
            d_g1 = out.mean().item()
            self.optD.step()
            self.G.zero_grad()
            label.fill_(1.0)
            out = self.D(fake).view(-1)
            err_g = self.crit(out, label)
            err_g.backward()
            d_g2 = out.mean().item()
            self.optG.step()
            _ = (err_real.item() + err_fake.item(), err_g.item(), d_x, d_g1, d_g2)

    def _simultaneous(self, real, b):
        """The published code's update (``update: simultaneous``) written plainly: both
        gradients from one forward pass on each batch, then both optimizers step."""
        fake = self.G(self.noise(b))
        out_real, out_fake = self.D(real).view(-1), self.D(fake).view(-1)
        ones, zeros = torch.ones(b, device=self.device), torch.zeros(b, device=self.device)
        err_d = self.crit(out_real, ones) + self.crit(out_fake, zeros)
        err_g = self.crit(out_fake, ones)
        self.D.zero_grad()
        self.G.zero_grad()
        g_params = list(self.G.parameters())
        for p, g in zip(g_params, torch.autograd.grad(err_g, g_params, retain_graph=True)):
            p.grad = g
        err_d.backward(inputs=list(self.D.parameters()))
        self.optD.step()
        self.optG.step()
        _ = (err_d.item(), err_g.item(), out_real.mean().item(), out_fake.mean().item())
