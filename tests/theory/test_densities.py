"""D*, JSD and C(G) against independent computations (scipy quadrature), to stated tolerances."""

import math

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import multivariate_normal, norm

from gankit.data import get_distribution
from gankit.theory import LOG4, AffineGaussian, jsd, optimal_discriminator, value_by_quadrature, virtual_criterion


def _jsd_scipy_1d(p, q, lo, hi):
    def f(x):
        a, b = p(x), q(x)
        m = (a + b) / 2
        return 0.5 * (a * math.log(a / m) if a > 0 else 0) + 0.5 * (b * math.log(b / m) if b > 0 else 0)
    return integrate.quad(f, lo, hi, limit=500, epsabs=1e-13, epsrel=1e-12, points=[-2, 0, 2])[0]


@pytest.mark.parametrize("mu, s", [(1.0, 1.0), (2.0, 0.5), (0.0, 2.0), (5.0, 0.3)])
def test_jsd_1d_against_scipy_quad(mu, s):
    p = get_distribution("gaussian1d")             # N(2, 0.5²)
    q = AffineGaussian([[s]], [mu])
    ours = jsd(p, q, [[-12.0, 14.0]])
    ref = _jsd_scipy_1d(norm(2, 0.5).pdf, norm(mu, s).pdf, -12.0, 14.0)
    assert abs(ours - ref) < 1e-6
    assert 0 <= ours <= math.log(2)


def test_jsd_limits():
    p = AffineGaussian([[1.0]], [0.0])
    assert jsd(p, p, [[-10, 10]]) == pytest.approx(0.0, abs=1e-12)
    far = AffineGaussian([[1.0]], [60.0])
    assert jsd(p, far, [[-15, 75]]) == pytest.approx(math.log(2), abs=1e-6)


def test_jsd_2d_against_scipy_dblquad():
    p = AffineGaussian([[1.0, 0.0], [0.3, 0.8]], [0.0, 0.5])
    q = AffineGaussian([[0.7, 0.0], [0.0, 1.2]], [1.0, -0.5])
    pp = multivariate_normal(p.b, p.cov).pdf
    qq = multivariate_normal(q.b, q.cov).pdf

    def f(y, x):
        a, b = pp([x, y]), qq([x, y])
        m = (a + b) / 2
        return 0.5 * a * math.log(a / m) + 0.5 * b * math.log(b / m)

    ref = integrate.dblquad(f, -9, 10, -9, 10, epsabs=1e-10, epsrel=1e-10)[0]
    assert abs(jsd(p, q, [[-9, 10], [-9, 10]]) - ref) < 1e-6


def test_affine_gaussian_density():
    a = AffineGaussian([[1.0, 0.5], [0.0, 2.0]], [1.0, -1.0])
    x = np.array([[0.3, 0.2], [2.0, -3.0]])
    np.testing.assert_allclose(a.log_prob(x), multivariate_normal(a.b, a.cov).logpdf(x), rtol=1e-12)


def test_optimal_discriminator_formula():
    p, q = get_distribution("gaussian1d"), AffineGaussian([[1.0]], [1.0])
    x = np.linspace(-2, 5, 50)
    want = norm(2, 0.5).pdf(x) / (norm(2, 0.5).pdf(x) + norm(1, 1).pdf(x))
    np.testing.assert_allclose(optimal_discriminator(p, q, x), want, rtol=1e-10, atol=1e-15)
    assert optimal_discriminator(p, p, x) == pytest.approx(np.full(50, 0.5), abs=1e-15)


def test_theorem_1_value_at_dstar_is_c_of_g_and_is_the_max():
    p, q = get_distribution("gaussian1d"), AffineGaussian([[1.0]], [1.0])
    box = [[-10.0, 12.0]]
    c = virtual_criterion(p, q, box)
    v_star = value_by_quadrature(lambda x: optimal_discriminator(p, q, x), p, q, box)
    assert v_star == pytest.approx(c, abs=1e-8)
    assert -LOG4 < c < -LOG4 + 2 * math.log(2)
    for other in (lambda x: np.full(len(x), 0.5), lambda x: 0.9 * optimal_discriminator(p, q, x) + 0.05):
        assert value_by_quadrature(other, p, q, box) < c - 1e-4
    assert value_by_quadrature(lambda x: np.full(len(x), 0.5), p, q, box) == pytest.approx(-LOG4, abs=1e-8)
    assert virtual_criterion(p, p, box) == pytest.approx(-LOG4, abs=1e-12)
