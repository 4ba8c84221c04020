"""Settings of the reward service: ``ServiceConfig`` (where it listens, what it accepts), declared once for the
service and ``flip-reward serve``'s options, without the HTTP stack (so --help needs no aiohttp)."""

from __future__ import annotations

from dataclasses import dataclass, field

from flip_reward.net import is_loopback

TOKEN_ENV = "FLIP_SERVE_TOKEN"
MIB = 1024 * 1024


@dataclass(frozen=True)
class ServiceConfig:
    """Where the service listens and what it accepts; ``token`` (never shown) turns on bearer authentication.
    ``shutdown_timeout`` None: the judge's deadline for one call plus ``SHUTDOWN_MARGIN``."""

    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = field(default=None, repr=False)
    max_body_bytes: int = 16 * MIB
    max_items: int = 4096
    shutdown_timeout: float | None = None
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 30.0
    max_connections: int = 512

    def __post_init__(self) -> None:
        limits = (
            "max_body_bytes",
            "max_items",
            "header_timeout",
            "body_timeout",
            "keepalive_timeout",
            "max_connections",
        )
        for name in limits:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.shutdown_timeout is not None and self.shutdown_timeout <= 0:
            raise ValueError(f"shutdown_timeout must be > 0, got {self.shutdown_timeout!r}")
        if self.token is not None and not self.token.strip():
            raise ValueError("the token is empty")
        if self.token is None and not is_loopback(self.host):
            raise ValueError(
                f"refusing to serve on {self.host} without a token: anyone who can reach it could spend the judge "
                f"(set {TOKEN_ENV} or --token-file, or bind 127.0.0.1)"
            )
