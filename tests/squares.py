"""A learnable, cheap image data set for end-to-end tests: bright 8×8 squares at random
places on black 28×28 images, saved as an ``.npy`` file."""

from pathlib import Path

import numpy as np


def write_squares(folder: Path, n: int) -> tuple[Path, np.ndarray]:
    """``n`` images (uint8 [n, 28, 28], the same for the same ``n``) in ``folder/sq.npy``."""
    rng = np.random.default_rng(0)
    x = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        r, c = rng.integers(0, 20, 2)
        x[i, r:r + 8, c:c + 8] = 255
    np.save(folder / "sq.npy", x)
    return folder / "sq.npy", x
