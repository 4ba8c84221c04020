"""Comparing FLIP with LLM-as-a-judge baselines: the baselines' parsers and judges, RewardBench-2 accuracy, the
report files and best-of-N selection."""
