"""The processes that serve and their supervision: judge servers, fleets and routers (judge_fleet, judge_server),
the reward service, the Supervisor that starts, watches and stops them and a trainer (processes, pid_files), and the
scripted OpenAI-compatible test judge."""
