"""Launching training runs: the run plan (knobs resolved once: flag > environment > preset > default), renderers from
the plan to each trainer's command (upstream open-instruct's grpo_fast.py, the local TRL backend, verl, OpenRLHF)
and the pre-flight checks; the processes run under ``flip_reward.serving.processes``'s Supervisor."""
