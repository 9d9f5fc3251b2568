"""FID, KID, precision/recall and Parzen against independent references."""

import math

import numpy as np
import pytest
import scipy.linalg
from scipy.special import logsumexp

from gankit.errors import GankitError
from gankit.metrics import (
    feature_statistics,
    fid_from_features,
    frechet_distance,
    kid,
    parzen_log_likelihoods,
    parzen_score,
    precision_recall,
)
from gankit.metrics.kid import mmd2_unbiased


def _fid_reference(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


@pytest.mark.parametrize("d", [2, 16, 64])
def test_frechet_against_sqrtm_reference(d):
    rng = np.random.default_rng(d)
    a, b = rng.normal(size=(400, d)), rng.normal(size=(400, d)) @ rng.normal(size=(d, d)) * 0.5 + 0.3
    m1, s1 = feature_statistics(a)
    m2, s2 = feature_statistics(b)
    ours, ref = frechet_distance(m1, s1, m2, s2), _fid_reference(m1, s1, m2, s2)
    assert abs(ours - ref) <= 1e-6 * abs(ref)


def test_frechet_closed_form_1d_and_zero():
    # 1-D Gaussians: (mu1 - mu2)^2 + (s1 - s2)^2.
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4 + 1, rel=1e-12)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    assert fid_from_features(x, x) == pytest.approx(0.0, abs=1e-9)


def test_frechet_refuses_too_few_samples():
    with pytest.raises(GankitError, match="more samples than feature dimensions"):
        feature_statistics(np.zeros((10, 10)))


def test_kid_unbiased_estimator_against_a_loop():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(5, 3)) + 1
    k = lambda a, b: (a @ b / 3 + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(6) for j in range(6) if i != j) / 30
    yy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / 20
    xy = sum(k(x[i], y[j]) for i in range(6) for j in range(5)) / 30
    assert mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_kid_same_vs_different():
    rng = np.random.default_rng(2)
    a, b, c = rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8)) + 0.5
    same, diff = kid(a, b, subsets=20, subset_size=500), kid(a, c, subsets=20, subset_size=500)
    assert abs(same["kid"]) < 3 * same["kid_std"] + 1e-3
    assert diff["kid"] > 10 * max(same["kid_std"], 1e-4)
    with pytest.raises(GankitError, match="at least 2"):
        kid(a[:1], b)


def test_precision_recall_constructed():
    g = np.stack(np.meshgrid(np.arange(10.0), np.arange(10.0)), -1).reshape(-1, 2)
    assert precision_recall(g, g + 0.01) == {"precision": 1.0, "recall": 1.0, "k": 3}
    far = precision_recall(g, g + 100)
    assert far["precision"] == 0.0 and far["recall"] == 0.0
    half = np.concatenate([g[:50] + 0.01, g[:50] + 100])
    pr = precision_recall(g, half)
    assert pr["precision"] == pytest.approx(0.5, abs=1e-12)
    with pytest.raises(GankitError, match="needs more than 3"):
        precision_recall(g[:3], g)


def test_parzen_against_direct_formula():
    rng = np.random.default_rng(3)
    s, x = rng.random((50, 7)), rng.random((20, 7))
    sig = [0.1, 0.3]
    ours = parzen_log_likelihoods(s, x, sig, batch=7)
    for i, sg in enumerate(sig):
        d2 = ((x[:, None] - s[None]) ** 2).sum(-1)
        want = logsumexp(-d2 / (2 * sg ** 2), axis=1) - math.log(50) - 3.5 * math.log(2 * math.pi * sg ** 2)
        np.testing.assert_allclose(ours[i], want, rtol=1e-10, atol=1e-10)


def test_parzen_score_picks_the_best_sigma():
    rng = np.random.default_rng(4)
    s, val, test = rng.normal(size=(500, 2)), rng.normal(size=(200, 2)), rng.normal(size=(300, 2))
    r = parzen_score(s, test, val, sigmas=(0.01, 0.3, 5.0))
    assert r["sigma"] == 0.3
    v = r["validation_by_sigma"]
    assert v["0.3000"] > v["0.0100"] and v["0.3000"] > v["5.0000"]
    ll = parzen_log_likelihoods(s, test, [0.3])[0]
    assert r["mean"] == pytest.approx(ll.mean(), rel=1e-12)
    assert r["se"] == pytest.approx(ll.std(ddof=1) / math.sqrt(300), rel=1e-12)
