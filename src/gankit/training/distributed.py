"""torch.distributed glue: ``torchrun --nproc_per_node=N -m gankit train ...``.

- Process group from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
  ``MASTER_ADDR``/``MASTER_PORT`` or a rendezvous endpoint): NCCL on GPUs, gloo on CPUs.
- ``batch_size`` is the *global* batch: each of the N ranks trains on ``batch_size / N``
  examples per step. Every rank draws the same global noise batch and the same global data
  minibatch from identically seeded streams and keeps its own slice, so N ranks follow the
  same data order as one process with the same global batch, and checkpoints resume on any
  number of ranks.
- G and D are wrapped in ``DistributedDataParallel`` for their own updates (gradients are
  averaged across ranks); the frozen network of each step is called unwrapped.
- BatchNorm: converted to ``SyncBatchNorm`` on GPUs (statistics over the global batch); on
  the CPU/gloo, which SyncBatchNorm does not support, each rank normalises with its own
  slice's statistics, and DDP keeps the running statistics of rank 0.
- Rank 0 alone writes the run directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ..errors import GankitError


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's slice of a global batch."""
        if not self.enabled:
            return batch
        m = batch.shape[0] // self.world
        return batch[self.rank * m:(self.rank + 1) * m]

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            t = t.clone()
            dist.all_reduce(t)
            t /= self.world
        return t

    def any(self, flag: bool) -> bool:
        if not self.enabled:
            return flag
        t = torch.tensor([1.0 if flag else 0.0])
        dist.all_reduce(t)
        return bool(t.item() > 0)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def init_from_env(device: torch.device) -> Dist:
    """Join the process group torchrun described, or run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        try:
            dist.init_process_group(backend=backend)
        except (RuntimeError, ValueError) as exc:
            raise GankitError(f"cannot join the torch.distributed group ({exc}); start with torchrun") from None
    d = Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(d.local_rank)
    return d


def wrap(module: nn.Module, d: Dist, device: torch.device) -> nn.Module:
    """DDP around a module (SyncBatchNorm first on GPUs); the module itself when alone.
    Layers that draw randomness per example (gankit's dropout) and declare ``batch_part``
    learn this process's (rank, processes), to draw for the global batch and keep their slice."""
    if not d.enabled or not any(p.requires_grad for p in module.parameters()):
        return module
    for m in module.modules():
        if hasattr(m, "batch_part"):
            m.batch_part = (d.rank, d.world)
    if device.type == "cuda":
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        return nn.parallel.DistributedDataParallel(module, device_ids=[d.local_rank])
    return nn.parallel.DistributedDataParallel(module)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
