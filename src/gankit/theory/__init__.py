"""The paper's theory, numerically: D*, JSD, C(G) for known densities, and the experiments
behind ``gankit theory`` (experiments.py)."""

from .densities import (
                        LOG4,
                        AffineGaussian,
                        AffineGenerator,
                        gauss_legendre_grid,
                        jsd,
                        optimal_discriminator,
                        value_by_quadrature,
                        virtual_criterion,
)

__all__ = ["LOG4", "AffineGaussian", "AffineGenerator", "gauss_legendre_grid", "jsd",
           "optimal_discriminator", "value_by_quadrature", "virtual_criterion"]
