"""Image grids and PNG output with numpy and Pillow (torchvision is not needed)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def make_grid(images, nrow: int | None = None, padding: int = 2, value_range=(0.0, 1.0),
              pad_value: float = 1.0) -> np.ndarray:
    """Tile [N, C, H, W] images (C = 1 or 3) into one uint8 [H', W', C] picture.

    ``value_range`` maps to 0..255 (values outside are clipped); ``nrow`` images per row
    (default: a near-square grid); ``padding`` pixels of ``pad_value`` between images.
    """
    a = np.asarray(images.detach().cpu().float() if hasattr(images, "detach") else images, dtype=np.float32)
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4 or a.shape[1] not in (1, 3) or a.shape[0] == 0:
        raise ValueError(f"make_grid expects [N, C, H, W] with C in (1, 3) and N > 0, got {a.shape}")
    lo, hi = value_range
    a = np.clip((a - lo) / (hi - lo), 0.0, 1.0)
    n, c, h, w = a.shape
    ncol = nrow or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncol)
    grid = np.full((c, nrows * (h + padding) + padding, ncol * (w + padding) + padding), pad_value, np.float32)
    for i in range(n):
        r, q = divmod(i, ncol)
        y, x = padding + r * (h + padding), padding + q * (w + padding)
        grid[:, y:y + h, x:x + w] = a[i]
    return np.rint(grid.transpose(1, 2, 0) * 255).astype(np.uint8)


def save_image(images, path: str | Path, **grid_kwargs) -> None:
    """Write images ([N, C, H, W] tiled by :func:`make_grid`, or one [H, W, C] uint8) as PNG."""
    from PIL import Image

    a = images if (isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 3) \
        else make_grid(images, **grid_kwargs)
    img = Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    img.save(tmp)
    tmp.replace(path)


def grid_png(images, **grid_kwargs) -> bytes:
    """The PNG bytes of :func:`make_grid`'s picture (for pages that embed their pictures)."""
    import io

    from PIL import Image

    a = make_grid(images, **grid_kwargs)
    buf = io.BytesIO()
    Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a).save(buf, format="PNG")
    return buf.getvalue()
