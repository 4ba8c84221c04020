"""Launching runs: the run plan, its renderers to each trainer's command, the pre-flight checks, and the
supervision of the processes a run needs (judge servers, vllm-router, the trainer)."""
