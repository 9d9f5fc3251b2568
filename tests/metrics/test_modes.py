import math

import numpy as np
import pytest

from gankit.data import get_distribution
from gankit.errors import GankitError
from gankit.metrics import mode_stats


def test_counts_on_a_constructed_sample():
    means = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    std = 0.1
    x = np.array([
        [0.0, 0.29],    # mode 0, within 3 std (0.3): high quality
        [0.0, 0.31],    # mode 0, outside: not
        [10.1, 0.0],    # mode 1, hq
        [10.0, 0.2],    # mode 1, hq
        [10.0, 0.0],    # mode 1, hq
        [5.0, 5.0],     # far from everything
    ])
    s = mode_stats(x, means, std)
    assert s["modes"] == 2 and s["num_modes"] == 4
    assert s["high_quality"] == pytest.approx(4 / 6, abs=1e-15)
    p = np.array([1 / 4, 3 / 4])
    assert s["reverse_kl"] == pytest.approx(float(np.sum(p * np.log(p * 4))), abs=1e-12)


def test_exact_data_scores_all_modes_and_near_zero_kl():
    d = get_distribution("grid25")
    import torch
    x = d.sample(2500, torch.Generator().manual_seed(0)).numpy()
    s = mode_stats(x, d.means.numpy(), 0.05)
    assert s["modes"] == 25
    # P(|N(0, I_2)| <= 3) = 1 - exp(-4.5) = 0.98889; SE over 2500 samples 0.0021; tolerance 5 SE.
    assert s["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.0105)
    assert 0 <= s["reverse_kl"] < 0.03


def test_collapsed_generator():
    d = get_distribution("ring8")
    x = np.tile(d.means.numpy()[:1], (100, 1))
    s = mode_stats(x, d.means.numpy(), 0.01)
    assert s["modes"] == 1 and s["high_quality"] == 1.0
    assert s["reverse_kl"] == pytest.approx(math.log(8), rel=1e-12)


def test_no_high_quality_sample_gives_undefined_kl():
    s = mode_stats(np.full((5, 2), 100.0), np.zeros((3, 2)), 0.1)
    assert s["modes"] == 0 and s["high_quality"] == 0.0 and s["reverse_kl"] is None


def test_bad_input_is_refused():
    with pytest.raises(GankitError, match="NaN"):
        mode_stats(np.array([[np.nan, 0.0]]), np.zeros((2, 2)), 0.1)
    with pytest.raises(GankitError, match="shape"):
        mode_stats(np.zeros((4, 3)), np.zeros((2, 2)), 0.1)
