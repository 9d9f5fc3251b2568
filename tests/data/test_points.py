"""--data points:FILE: the user's own low-dimensional points, read, refused, trained on,
pictured and scored in their own units."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from scipy.stats import gaussian_kde, norm

from gankit import Config, train
from gankit.cli import main
from gankit.data import PointsDensity, load_points
from gankit.errors import GankitError
from gankit.metrics import energy_distance
from gankit.metrics.energy import energy_distance_unbiased
from gankit.runs import Run


def _two_clusters(n=400, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal([10, 100], [1, 5], (n // 2, 2)), rng.normal([20, 50], [1, 5], (n // 2, 2))])


def test_reads_npy_npz_and_text_tables(tmp_path):
    a = _two_clusters()
    np.save(tmp_path / "p.npy", a)
    np.savez(tmp_path / "p.npz", other=np.zeros(3), points=a)
    np.savetxt(tmp_path / "p.csv", a, delimiter=",", header="x,y", comments="")
    np.savetxt(tmp_path / "p.tsv", a, delimiter="\t")
    np.savetxt(tmp_path / "p.txt", a, header="a comment")   # blank-separated, '# a comment' first
    for name in ("p.npy", "p.npz", "p.csv", "p.tsv", "p.txt"):
        got = load_points(tmp_path / name)
        assert got.dtype == np.float64 and got.shape == (400, 2), name
        np.testing.assert_allclose(got, a, rtol=1e-15, atol=0, err_msg=name)
    np.save(tmp_path / "one_d.npy", a[:, 0].astype(np.float32))
    assert load_points(tmp_path / "one_d.npy").shape == (400, 1)
    np.save(tmp_path / "ints.npy", np.arange(10).reshape(5, 2))
    assert load_points(tmp_path / "ints.npy").tolist() == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]


@pytest.mark.parametrize("name, content, says", [
    ("ragged.csv", "1,2\n3,4\n5\n", "line 3 has 1 value where the first row has 2"),
    ("text.csv", "x,y\n1,2\nfoo,4\n", "line 3 is not a row of numbers"),
    ("nan.csv", "1,2\n3,nan\n5,6\n", "row 2 holds NaN or Inf"),
    ("empty.csv", "# nothing\n\n", "no numbers"),
    ("one.csv", "1,2\n", "1 point; a GAN needs at least 2"),
    ("binary.csv", b"\xff\xfe\x00\x01", "not UTF-8 text"),
    ("points.json", "[[1, 2]]", "give a .npy, .npz, .csv"),
])
def test_malformed_tables_end_in_one_line(tmp_path, capsys, name, content, says):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(GankitError, match=re.escape(says)):
        load_points(path)
    capsys.readouterr()
    assert main(["train", "--data", f"points:{path}", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("gankit: error: ") and says in err, err
    assert not (tmp_path / "run").exists()


def test_malformed_arrays_are_refused(tmp_path):
    np.save(tmp_path / "wide.npy", np.zeros((10, 3000)))
    np.save(tmp_path / "cube.npy", np.zeros((4, 2, 2)))
    np.save(tmp_path / "strings.npy", np.array([["a", "b"], ["c", "d"]]))
    np.save(tmp_path / "inf.npy", np.array([[0.0, 1.0], [np.inf, 2.0], [3.0, 4.0]]))
    (tmp_path / "trunc.npy").write_bytes((tmp_path / "wide.npy").read_bytes()[:500])
    for name, says in [("wide.npy", "3,000 coordinates per point"), ("cube.npy", "shape (4, 2, 2)"),
                       ("strings.npy", "not numbers"), ("inf.npy", "row 2 holds NaN or Inf"),
                       ("trunc.npy", "truncated or damaged"), ("absent.npy", "does not exist")]:
        with pytest.raises(GankitError, match=re.escape(says)):
            load_points(tmp_path / name)
    with pytest.raises(GankitError, match="not a regular file"):
        load_points(tmp_path)


def test_kernel_density_matches_scipy_in_one_dimension():
    # In 1-D one bandwidth per coordinate is scipy's kernel: the two must agree.
    pts = np.random.default_rng(1).normal(3, 2, (400, 1))
    xs = np.linspace(-5, 10, 31)[:, None]
    np.testing.assert_allclose(PointsDensity(pts, "t").log_prob(xs).numpy(), gaussian_kde(pts.T).logpdf(xs.T),
                               rtol=1e-10, atol=1e-10)


def test_kernel_density_keeps_separated_clusters_apart():
    # Two clusters whose centres are joined by a strong correlation: between them the
    # estimate falls further below its value at the centres (measured: 7.5 nats) than
    # scipy's full-covariance kernel does (4.2 nats), which bridges them.
    a = _two_clusters(2000)
    q = np.array([[10.0, 100.0], [20.0, 50.0], [15.0, 75.0]])
    ours, full = PointsDensity(a, "t").log_prob(q).numpy(), gaussian_kde(a.T).logpdf(q.T)
    gap, full_gap = min(ours[:2]) - ours[2], min(full[:2]) - full[2]
    assert 6 < gap < 12 and gap > full_gap + 2, (gap, full_gap)


def test_energy_distance_against_closed_form():
    # X ~ N(0, 1), Y ~ N(1, 1): E|X - Y| = E|N(1, 2)|, E|X - X'| = E|Y - Y'| = 2/sqrt(pi).
    s = math.sqrt(2.0)
    e_xy = s * math.sqrt(2 / math.pi) * math.exp(-1 / 4) + 1 * (1 - 2 * norm.cdf(-1 / s))
    exact = 2 * e_xy - 2 * (2 / math.sqrt(math.pi))
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 1, (20000, 1)), rng.normal(1, 1, (20000, 1))
    e = energy_distance(x, y, subsets=20, subset_size=2000, seed=0)
    assert abs(e["energy"] - exact) < 0.01, (e, exact)       # exact = 0.4330; s.e. of the mean ≈ 0.004
    assert 0 < e["energy_std"] < 0.05
    same = energy_distance(x, rng.normal(0, 1, (20000, 1)), subsets=20, subset_size=2000, seed=0)
    assert abs(same["energy"]) < 0.01


def test_energy_u_statistic_by_hand():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3))
    d = lambda a, b: np.linalg.norm(a - b)  # noqa: E731
    xy = np.mean([d(a, b) for a in x for b in y])
    xx = np.mean([d(x[i], x[j]) for i in range(7) for j in range(7) if i != j])
    yy = np.mean([d(y[i], y[j]) for i in range(5) for j in range(5) if i != j])
    assert energy_distance_unbiased(x, y) == pytest.approx(2 * xy - xx - yy, rel=1e-12, abs=1e-12)


SMALL = dict(steps=20, batch_size=64, hidden=16, log_every=10, eval_every=10, checkpoint_every=10)


def test_trains_samples_and_scores_in_the_data_units(tmp_path, capsys):
    a = _two_clusters()
    np.savetxt(tmp_path / "p.csv", a, delimiter=",")
    run = train(data=f"points:{tmp_path / 'p.csv'}", out=tmp_path / "r", progress=False, **SMALL)
    mean, std = torch.as_tensor(a).mean(0), torch.as_tensor(a).std(0)
    assert torch.allclose(run.data_state["mean"], mean, rtol=1e-12, atol=0)
    # G learns standardised points; what a user gets back is in the data's units.
    z = torch.randn(5, run.config.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        raw = run.G(z).double()
    np.testing.assert_allclose(run.sample(5, z=z).double().numpy(), (raw * std + mean).numpy(), rtol=1e-5, atol=1e-4)
    for picture in ("samples.png", "discriminator.png", "losses.png", "plots/samples_step_000010.png"):
        assert (tmp_path / "r" / picture).stat().st_size > 1000, picture
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "r"), "--n", "500"]) == 0
    out = capsys.readouterr().out
    assert "energy" in out and "fid" in out and "500 draws from the 400 points of" in out, out
    assert main(["sample", str(tmp_path / "r"), "--n", "300", "--out", str(tmp_path / "s.png")]) == 0
    assert main(["sample", str(tmp_path / "r"), "--n", "300", "--out", str(tmp_path / "s.npy")]) == 0
    assert abs(np.load(tmp_path / "s.npy")[:, 1].mean() - 75) < 60   # in data units (y spans 30–120), not ~0


def test_resume_on_points_is_bitwise(tmp_path):
    np.save(tmp_path / "p.npy", _two_clusters())
    cfg = Config(data=f"points:{tmp_path / 'p.npy'}", lr_schedule="constant", **SMALL)
    train(cfg, out=tmp_path / "full", progress=False)
    train(cfg.replace(steps=10), out=tmp_path / "split", progress=False)
    train(cfg, out=tmp_path / "split", resume=True, progress=False)
    a, b = Run.open(tmp_path / "full").load(weights="raw"), Run.open(tmp_path / "split").load(weights="raw")
    for k, v in a.G.state_dict().items():
        assert torch.equal(v, b.G.state_dict()[k]), k


def test_pictures_of_many_coordinates_are_refused(tmp_path, capsys):
    np.save(tmp_path / "p.npy", np.random.default_rng(0).normal(size=(300, 5)))
    assert main(["train", "--data", f"points:{tmp_path / 'p.npy'}", "--out", str(tmp_path / "r"), "--steps", "4",
                 "--hidden", "8", "--quiet"]) == 0
    assert not (tmp_path / "r" / "samples.png").exists()
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "r"), "--n", "10", "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "5 coordinates; write them to a .npy file" in err, err
    assert main(["eval", str(tmp_path / "r"), "--n", "100"]) == 0
