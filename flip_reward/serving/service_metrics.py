"""The reward service's Prometheus metrics (``GET /metrics``), in a registry of each service's own.

``flip_serve_requests_total{endpoint,status}`` counts answered requests; ``flip_serve_request_seconds{endpoint}``
is their latency; ``flip_serve_in_flight`` the requests being handled; ``flip_serve_reward`` (count and sum) the
rewards given, failures included as 0.0; ``flip_serve_judge_errors_total``, ``flip_serve_parse_failures_total``
and ``flip_serve_input_errors_total`` the failed rewards by kind; ``flip_serve_bodies_cut_off_total`` the requests
whose connection closed before their body arrived in full (not answered, so not in ``flip_serve_requests_total``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Summary,
    disable_created_metrics,
    generate_latest,
)

from flip_reward.core.results import JUDGED_FAILURES

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0, 600.0)


class ServiceMetrics:
    """The counters of one reward service; ``in_flight`` says how many requests are being handled."""

    def __init__(self, in_flight: Callable[[], int]) -> None:
        disable_created_metrics()  # no ``*_created`` series: one timestamp per counter is noise here
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "flip_serve_requests", "Requests answered", ["endpoint", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "flip_serve_request_seconds",
            "Time to answer a request",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "flip_serve_in_flight", "Requests being handled (their body arrived)", registry=self.registry
        )
        self.in_flight.set_function(in_flight)
        self.rewards = Summary("flip_serve_reward", "Rewards given (failures as 0.0)", registry=self.registry)
        self.failures = {
            kind: Counter(
                f"flip_serve_{kind.counter}",
                f"Failed rewards: {kind.counter.replace('_', ' ')}",
                registry=self.registry,
            )
            for kind in JUDGED_FAILURES
        }
        self.bodies_cut_off = Counter(
            "flip_serve_bodies_cut_off",
            "Requests whose connection closed before their body arrived in full",
            registry=self.registry,
        )

    def record_results(self, results: Sequence[object]) -> None:
        """Count the rewards of one request and their failures by kind."""
        for result in results:
            self.rewards.observe(result.reward)
            if result.error_type in self.failures:
                self.failures[result.error_type].inc()

    def record_request(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def exposition(self) -> bytes:
        """Everything, in the Prometheus text format."""
        return generate_latest(self.registry)
