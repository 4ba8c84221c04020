"""Judge servers: a managed server process (scripts/serve_judge.sh) and the scripted OpenAI-compatible test judge."""
