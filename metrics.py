"""Repo-root convenience: ``from metrics import f1_score`` works from a checkout, as in the FLIP reference release."""

from flip_reward.core.metrics import f1_score, normalize_answer

__all__ = ["f1_score", "normalize_answer"]
