"""The 2014 paper's figures from a trained run: Figure 2 (samples beside their nearest
training image, `gankit sample --nearest`) and Figure 3 (linear interpolations in z,
`gankit sample --interpolate linear`)."""

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.metrics import nearest_examples
from gankit.runs import Run
from gankit.sampling import interpolation_noise

from .squares import write_squares


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("fig")
    _, x = write_squares(d, 96)
    assert main(["train", "--data", f"npz:{d / 'sq.npy'}", "--out", str(d / "r"), "--model", "dcgan", "--width", "8",
                 "--z-dim", "8", "--batch-size", "16", "--steps", "4", "--quiet"]) == 0
    return d / "r", x


def test_nearest_examples_equal_brute_force():
    gen = torch.Generator().manual_seed(0)
    data = torch.randint(0, 256, (1000, 1, 6, 6), generator=gen, dtype=torch.uint8)
    samples = torch.rand(7, 1, 6, 6, generator=gen)
    samples[3] = data[517].float() / 255            # a sample that is a training image
    idx, dist = nearest_examples(samples, data.numpy(), chunk=128)   # chunks smaller than the data
    full = torch.cdist(samples.reshape(7, -1).double(), data.reshape(1000, -1).double() / 255)
    assert torch.equal(idx, full.argmin(1))
    # atol: the float32 sample that copies a training image is 1e-8 away from it
    torch.testing.assert_close(dist, full.min(1).values, rtol=1e-9, atol=1e-7)
    assert idx[3] == 517 and dist[3] < 1e-6


def test_nearest_figure_layout_and_neighbours(run, tmp_path, capsys):
    path, x = run
    out = tmp_path / "fig2.png"
    capsys.readouterr()
    assert main(["sample", str(path), "--nearest", "--rows", "3", "--cols", "4", "--seed", "5", "--out", str(out)]) == 0
    assert "3 rows of samples, each with its nearest training image" in capsys.readouterr().out
    img = np.asarray(Image.open(out))
    # 3 rows of 4 samples (28 px, padding 2), an 8-px gap, then one column of neighbours.
    assert img.shape == (3 * 30 + 2, (4 * 30 + 2) + 8 + (30 + 2))
    # The neighbour column holds, for each row, the training image nearest to its last sample.
    r = Run.open(path).load()
    last = r.sample(12, seed=5)[3::4]
    idx, _ = nearest_examples(last, x[:, None])
    for row in range(3):
        y0, x0 = 2 + row * 30, 4 * 30 + 2 + 8 + 2
        assert np.array_equal(img[y0:y0 + 28, x0:x0 + 28], x[int(idx[row])]), row


def test_linear_interpolation_is_the_papers_figure_3(run, tmp_path):
    path, _ = run
    assert main(["sample", str(path), "--interpolate", "linear", "--rows", "2", "--cols", "5",
                 "--out", str(tmp_path / "walk.npy")]) == 0
    walk = torch.from_numpy(np.load(tmp_path / "walk.npy"))
    assert walk.shape == (10, 1, 28, 28)
    z = interpolation_noise(2, 5, 8, "uniform", 0, spherical=False).reshape(2, 5, 8)
    # straight lines: equal steps between the end points
    torch.testing.assert_close(z[:, 1:] - z[:, :-1], ((z[:, -1] - z[:, 0]) / 4)[:, None].expand(2, 4, 8),
                               rtol=1e-5, atol=1e-6)
    r = Run.open(path).load()
    zn = interpolation_noise(2, 5, 8, r.trained_config.noise, 0, spherical=False)
    torch.testing.assert_close(walk, r.sample(10, z=zn), rtol=0, atol=0)
    assert main(["sample", str(path), "--interpolate", "--out", str(tmp_path / "walk.png")]) == 0
    assert np.asarray(Image.open(tmp_path / "walk.png")).shape == (8 * 30 + 2, 10 * 30 + 2)


@pytest.mark.parametrize("extra, says", [
    (["--nearest", "--interpolate"], "choose one of --nearest and --interpolate"),
    (["--rows", "3"], "--rows and --cols lay out"),
    (["--nearest", "--rows", "0"], "--rows must be a whole number of at least 1"),
    (["--interpolate", "--cols", "1"], "--cols must be a whole number of at least 2"),
    (["--nearest", "--rows", "200", "--cols", "100"], "more than gankit draws"),
    (["--interpolate", "sideways"], "invalid choice"),
])
def test_figure_options_refused_in_one_line(run, tmp_path, capsys, extra, says):
    path, _ = run
    capsys.readouterr()
    assert main(["sample", str(path), "--out", str(tmp_path / "f.png"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1 and err.startswith("gankit: error:"), err
    assert not (tmp_path / "f.png").exists()


def test_nearest_refused_for_points(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "toy"), "--steps", "2", "--hidden", "8", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "toy"), "--nearest", "--out", str(tmp_path / "f.png")]) == 2
    assert "this run's data are not images" in capsys.readouterr().err

