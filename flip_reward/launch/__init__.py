"""Launching training runs: the run plan (knobs resolved once: flag > environment > preset > default), renderers from
the plan to each trainer's command (upstream open-instruct's grpo_fast.py, the local TRL backend, verl, OpenRLHF),
the pre-flight checks, and the supervision of the judge, router and trainer processes."""
