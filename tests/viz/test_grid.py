import numpy as np
import pytest
import torch
from PIL import Image

from gankit.viz.grid import make_grid, save_image


def test_make_grid_layout_and_values():
    imgs = np.stack([np.full((1, 2, 3), v, np.float32) for v in (0.0, 0.5, 1.0)])
    g = make_grid(imgs, nrow=2, padding=1, pad_value=0.0)
    assert g.shape == (2 * 3 + 1, 2 * 4 + 1, 1) and g.dtype == np.uint8
    assert (g[1:3, 1:4] == 0).all() and (g[1:3, 5:8] == 128).all() and (g[4:6, 1:4] == 255).all()
    assert (g[4:6, 5:8] == 0).all()           # the empty cell is padding


def test_value_range_and_clipping():
    x = torch.tensor([[[[-1.0, 0.0, 2.0]]]])
    g = make_grid(x, padding=0, value_range=(-1, 1))
    assert g[0, :, 0].tolist() == [0, 128, 255]


def test_save_image_rgb(tmp_path):
    x = torch.zeros(4, 3, 5, 5)
    x[:, 0] = 1.0
    save_image(x, tmp_path / "g.png", padding=0)
    im = np.asarray(Image.open(tmp_path / "g.png"))
    assert im.shape == (10, 10, 3) and (im[..., 0] == 255).all() and (im[..., 1:] == 0).all()
    with pytest.raises(ValueError):
        make_grid(np.zeros((2, 5, 4, 4)))
