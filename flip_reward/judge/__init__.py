"""Calling a judge model: the async client (concurrency, retries, deadline, dedup), the transports that reach a
server, per-event-loop clients, the circuit breaker and the answer cache. Nothing here knows what a reward is."""
