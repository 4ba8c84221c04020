"""Judge servers: managed servers and routers (on flip_reward.launch's Supervisor), the reward service, and the scripted
OpenAI-compatible test judge."""
