"""Local GRPO with TRL (``flip-reward train``): settings, the run, the training loop, its monitor and tiny models."""
