import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal, norm

from gankit.data import get_distribution, make_source
from gankit.data.synthetic import SYNTHETIC
from gankit.errors import GankitError


def test_ring8_matches_spec():
    d = get_distribution("ring8")
    a = 2 * np.pi * np.arange(8) / 8
    np.testing.assert_allclose(d.means.numpy(), np.stack([np.cos(a), np.sin(a)], 1), rtol=0, atol=1e-15)
    np.testing.assert_allclose(d.stds.numpy(), 0.01, rtol=0, atol=0)
    np.testing.assert_allclose(d.weights.numpy(), 1 / 8, rtol=1e-15)


def test_grid25_matches_spec():
    d = get_distribution("grid25")
    got = {tuple(p) for p in d.means.numpy().tolist()}
    assert got == {(float(x), float(y)) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
    assert float(d.stds.max()) == float(d.stds.min()) == 0.05


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_log_prob_against_scipy(name):
    d = get_distribution(name)
    g = torch.Generator().manual_seed(1)
    x = d.sample(50, g).double()
    expected = np.log(sum(
        float(w) * multivariate_normal(mean=m.numpy(), cov=float(s) ** 2).pdf(x.numpy())
        for m, s, w in zip(d.means, d.stds, d.weights)))
    np.testing.assert_allclose(d.log_prob(x).numpy(), expected, rtol=1e-9, atol=1e-9)


def test_gaussian1d_samples_have_the_stated_moments():
    d = get_distribution("gaussian1d")
    x = d.sample(200_000, torch.Generator().manual_seed(0)).double()
    # Standard errors: 0.5/sqrt(n) = 0.0011 for the mean; tolerance 5 SE both ways.
    assert x.mean().item() == pytest.approx(2.0, abs=0.0056)
    assert x.std().item() == pytest.approx(0.5, abs=0.004)
    assert d.log_prob(torch.tensor([[2.0]])).item() == pytest.approx(norm(2, 0.5).logpdf(2.0), rel=1e-12)


def test_ring8_samples_spread_evenly_and_tightly():
    d = get_distribution("ring8")
    x = d.sample(80_000, torch.Generator().manual_seed(0)).double()
    dist = torch.cdist(x, d.means)
    nearest = dist.argmin(1)
    counts = torch.bincount(nearest, minlength=8).numpy()
    # Binomial(80000, 1/8): SD 93.5; 5 SD both ways.
    assert np.all(np.abs(counts - 10_000) < 470)
    # Distance to the mean is Rayleigh(0.01): mean 0.01*sqrt(pi/2).
    assert dist.min(1).values.mean().item() == pytest.approx(0.01 * math.sqrt(math.pi / 2), rel=0.01)


def test_sampling_is_reproducible_and_on_generator():
    d = get_distribution("grid25")
    a = d.sample(100, torch.Generator().manual_seed(3))
    b = d.sample(100, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.dtype == torch.float32 and a.shape == (100, 2)


def test_density_integrates_to_one_in_1d():
    d = get_distribution("mixture1d")
    lo, hi = d.bounds[0]
    xs = np.linspace(lo, hi, 20001)
    total = np.trapezoid(d.prob(xs[:, None]).numpy(), xs)
    assert total == pytest.approx(1.0, abs=1e-6)


def test_unknown_data_set_is_a_user_error():
    with pytest.raises(GankitError, match="unknown data set 'nope'"):
        make_source("nope", torch.device("cpu"))


def test_a_bare_path_as_data_set_names_the_prefixes_that_read_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pics").mkdir()
    np.save(tmp_path / "arr.npy", np.zeros((4, 2)))
    (tmp_path / "pts.csv").write_text("0,1\n")
    hints = {"pics": "give folder:pics (images), idx:pics", "arr.npy": "give npz:arr.npy (images) or points:arr.npy",
             "pts.csv": "give points:pts.csv", "absent": "'absent'; choose one of"}
    for spec, hint in hints.items():
        with pytest.raises(GankitError, match=f"unknown data set '{spec}'") as e:
            make_source(spec, torch.device("cpu"))
        assert hint in str(e.value)
