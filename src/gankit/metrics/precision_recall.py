"""Improved precision and recall (Kynkäänniemi et al. 2019): k-nearest-neighbour manifolds.

The real manifold is the union of balls around each real feature with radius the distance
to its k-th nearest real neighbour; *precision* is the share of generated features inside
it; *recall* swaps the roles.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import GankitError


def _sqdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.square().sum(1, keepdim=True) + b.square().sum(1)[None] - 2 * a @ b.T).clamp_min(0)


def _radii(x: torch.Tensor, k: int, batch: int) -> torch.Tensor:
    out = []
    for s in range(0, x.shape[0], batch):
        d = _sqdist(x[s:s + batch], x)
        out.append(d.kthvalue(k + 1, dim=1).values)   # the 0-th neighbour is the point itself
    return torch.cat(out)


def _coverage(queries: torch.Tensor, refs: torch.Tensor, radii: torch.Tensor, batch: int) -> float:
    inside = 0
    for s in range(0, queries.shape[0], batch):
        d = _sqdist(queries[s:s + batch], refs)
        inside += int((d <= radii[None]).any(1).sum())
    return inside / queries.shape[0]


def precision_recall(real, fake, k: int = 3, batch: int = 2048) -> dict:
    r = torch.as_tensor(np.asarray(real, np.float64))
    f = torch.as_tensor(np.asarray(fake, np.float64))
    if min(r.shape[0], f.shape[0]) <= k:
        raise GankitError(f"precision/recall with k={k} needs more than {k} real and generated samples")
    rr, rf = _radii(r, k, batch), _radii(f, k, batch)
    return {"precision": _coverage(f, r, rr, batch), "recall": _coverage(r, f, rf, batch), "k": k}
