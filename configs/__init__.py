"""Presets (``FAMILY_NAME.env``: knob values for one kind of run), shipped in the wheel as flip_reward.configs and
read by flip_reward.presets."""
