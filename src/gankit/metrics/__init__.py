"""Metrics: pure functions over samples or features (one file per metric)."""

from .energy import energy_distance
from .frechet import check_enough, feature_statistics, fid_from_features, frechet_distance
from .kid import kid
from .modes import mode_stats, reverse_kl_uniform
from .nearest import nearest_examples
from .parzen import parzen_log_likelihoods, parzen_score
from .precision_recall import precision_recall

__all__ = ["mode_stats", "reverse_kl_uniform", "frechet_distance", "feature_statistics", "check_enough",
           "fid_from_features", "kid", "energy_distance", "nearest_examples", "precision_recall", "parzen_score",
           "parzen_log_likelihoods"]
