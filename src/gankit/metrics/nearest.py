"""Nearest training examples of generated images, by pixel (Euclidean) distance: the
2014 paper's Figure 2 shows one beside each row of samples, to show that the model has not
memorised its data."""

from __future__ import annotations

import numpy as np
import torch


def nearest_examples(samples01: torch.Tensor, data_u8: np.ndarray | torch.Tensor,
                     chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """For each sample ([n, C, H, W] in [0, 1]) the index of its nearest example in the
    uint8 data [N, C, H, W] (scaled to [0, 1]) and the distance. The data are read in chunks
    of ``chunk`` examples, so memory stays at n × chunk distances whatever N is; distances
    are computed in float64 as ‖x‖² + ‖t‖² − 2 x·t."""
    x = samples01.reshape(samples01.shape[0], -1).double()
    data = torch.as_tensor(data_u8)
    best_d = torch.full((x.shape[0],), float("inf"), dtype=torch.float64)
    best_i = torch.zeros(x.shape[0], dtype=torch.long)
    xx = (x * x).sum(1, keepdim=True)
    for start in range(0, data.shape[0], chunk):
        t = data[start:start + chunk].reshape(-1, x.shape[1]).double() / 255.0
        d2 = xx + (t * t).sum(1)[None] - 2 * x @ t.T
        d, i = d2.min(1)
        better = d < best_d
        best_d, best_i = torch.where(better, d, best_d), torch.where(better, i + start, best_i)
    return best_i, best_d.clamp_min(0).sqrt()
