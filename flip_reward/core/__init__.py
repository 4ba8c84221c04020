"""The reward itself: the metric, how a prompt splits into context and instruction, what the judge is shown of a
response, how its answer is parsed, the context guard, the result type and method base, and ``FlipReward``."""
