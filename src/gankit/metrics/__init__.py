"""Metrics: pure functions over samples or features."""

from .modes import mode_stats, reverse_kl_uniform

__all__ = ["mode_stats", "reverse_kl_uniform"]
