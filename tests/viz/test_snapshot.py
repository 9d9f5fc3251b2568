"""The per-evaluation sample pictures (numpy + Pillow)."""

import numpy as np
import torch
from PIL import Image

from gankit.data import get_distribution
from gankit.viz.snapshot import SamplesSnapshot

RED = np.array([214, 39, 40])


def _snap(name):
    d = get_distribution(name)
    return d, SamplesSnapshot(lambda p: d.log_prob(torch.as_tensor(p)).numpy(), np.asarray(d.bounds))


def test_2d_dots_land_where_the_samples_are(tmp_path):
    d, snap = _snap("ring8")
    lo, hi = snap.lo, snap.hi
    pts = np.array([[lo[0] + 0.25 * (hi[0] - lo[0]), lo[1] + 0.75 * (hi[1] - lo[1])], [np.nan, 0.0], [1e6, 0.0]])
    img = snap.render(pts, title="t")
    body = img[snap.top:snap.top + snap.h].astype(int)
    assert body.shape == (400, 400, 3)
    # The one finite in-view sample: a blended red dot a quarter across and a quarter down.
    col, row = round(0.25 * 399), round(0.25 * 399)
    px = body[row, col]
    assert px[0] > px[2] + 60, px  # red dominates where the dot is
    # Elsewhere no red: a background pixel far from the dot is blue-white.
    assert body[399 - 5, 5][2] >= body[399 - 5, 5][0]
    # The background shows the density: brightest (most blue) pixels near the ring's modes.
    blue = 255 - body[..., 0]
    r, c = np.unravel_index(np.argmax(blue), blue.shape)
    x = lo[0] + c / 399 * (hi[0] - lo[0])
    y = hi[1] - r / 399 * (hi[1] - lo[1])
    assert np.min(np.hypot(*(d.means.numpy() - [x, y]).T)) < 0.1
    snap.save(tmp_path / "s.png", pts, title="t")
    assert Image.open(tmp_path / "s.png").size == (400, 400 + 2 * snap.top)


def test_1d_histogram_follows_the_samples():
    d, snap = _snap("gaussian1d")
    x = d.sample(5000, torch.Generator().manual_seed(0)).numpy()
    img = snap.render(x)
    body = img[snap.top:snap.top + snap.h].astype(int)
    green = (body[..., 1] > body[..., 0] + 40) & (body[..., 1] > body[..., 2] + 40)
    height = green.sum(0)  # bar height per column
    centre = (d.means.numpy().ravel()[0] - snap.lo[0]) / (snap.hi[0] - snap.lo[0]) * (snap.w - 1)
    tallest = np.argmax(height)
    assert abs(tallest - centre) < 0.1 * snap.w
    assert height[0] == 0 and height[-1] == 0  # no mass at the edges of the view
