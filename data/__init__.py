"""Small sample datasets written for this project, shipped in the wheel as flip_reward.sample_data (the default data
of `flip-reward train` and the demos)."""
