"""``flip-reward serve``: the FLIP reward service over HTTP (OpenRLHF's remote reward protocol and a JSON API)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from flip_reward.cli.common import (
    add_judge_arguments,
    add_restatement_guard_argument,
    add_reward_metric_argument,
    command_epilog,
    judge_options,
)
from flip_reward.exit_codes import EXIT_INTERRUPTED, EXIT_INVALID_INPUT, EXIT_OK, EXIT_RUN_FAILED
from flip_reward.judge.client import JudgeConfig
from flip_reward.serving.connections import SHUTDOWN_MARGIN
from flip_reward.serving.service_config import MIB, TOKEN_ENV, ServiceConfig

if TYPE_CHECKING:
    from flip_reward.core.reward import FlipReward

SERVICE = ServiceConfig()  # the service's defaults, declared there


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``serve`` to the ``flip-reward`` subcommands."""
    serve = commands.add_parser(
        "serve",
        help="serve FLIP rewards over HTTP (OpenRLHF /get_reward, slime /slime/reward, /v1/score)",
        description="The FLIP reward service over HTTP: OpenRLHF's and slime's remote reward protocols and a JSON API.",
        epilog=command_epilog(
            (EXIT_OK, EXIT_RUN_FAILED, EXIT_INVALID_INPUT, EXIT_INTERRUPTED),
            outputs=(
                "endpoints: POST /get_reward (OpenRLHF), POST /slime/reward (slime), POST /v1/score (JSON), "
                "GET /health, GET /metrics (Prometheus)",
                "stdout: the service's base URL, alone on a line, once it listens; stderr: the details and the log",
            ),
            notes={
                EXIT_OK: "stopped by SIGTERM or SIGINT, every request in flight answered",
                EXIT_RUN_FAILED: "requests still in flight at --shutdown-timeout were dropped",
                EXIT_INTERRUPTED: "before it listened",
            },
        ),
    )
    serve.add_argument("--host", default=SERVICE.host, help="address to bind (default: %(default)s)")
    serve.add_argument("--port", type=int, default=SERVICE.port, help="port; 0 picks a free one (default: %(default)s)")
    serve.add_argument("--token-file", help="file holding the bearer token clients must send (else $FLIP_SERVE_TOKEN)")
    serve.add_argument(
        "--max-items", type=int, default=SERVICE.max_items, help="items per request (default: %(default)s)"
    )
    serve.add_argument(
        "--max-body-mb",
        type=float,
        default=SERVICE.max_body_bytes / MIB,
        help="request body size (default: %(default)s)",
    )
    serve.add_argument(
        "--shutdown-timeout",
        type=float,
        help="seconds requests in flight may take to finish after SIGTERM/SIGINT; those still running then are "
        f"dropped, with one line and exit status 1 (default: the judge's deadline, --timeout x (--retries + 1) + "
        f"{JudgeConfig.backoff_max:g}, plus {SHUTDOWN_MARGIN:g}: {JudgeConfig().total_deadline + SHUTDOWN_MARGIN:g} "
        "with the defaults)",
    )
    serve.add_argument(
        "--header-timeout",
        type=float,
        default=SERVICE.header_timeout,
        help="seconds a request's head (request line and headers) may take from its first byte (default: %(default)s)",
    )
    serve.add_argument(
        "--body-timeout",
        type=float,
        default=SERVICE.body_timeout,
        help="seconds a request's body may take to arrive in full once its head has; the service does not wait for "
        "it at SIGTERM/SIGINT (default: %(default)s)",
    )
    serve.add_argument(
        "--keepalive-timeout",
        type=float,
        default=SERVICE.keepalive_timeout,
        help="seconds a connection may wait for its next request, or its first (default: %(default)s)",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        default=SERVICE.max_connections,
        help="connections open at once, lowered to fit the open-file limit; past it the one that has waited longest "
        "without a request in progress (idle, mid-head or body still arriving) is closed, else the new one gets a 503 "
        "(default: %(default)s)",
    )
    add_reward_metric_argument(serve)
    serve.add_argument(
        "--think-prefilled", action="store_true", help="the policy's chat template opens <think> in the prompt"
    )
    serve.add_argument(
        "--policy-template",
        metavar="FAMILY|FILE.jinja|TOKENIZER_DIR",
        help="pin the policy's chat template for reading /get_reward and /slime/reward prompts: a family name, a "
        ".jinja file or a local tokenizer directory (default: every known family)",
    )
    add_restatement_guard_argument(serve)
    add_judge_arguments(serve)
    serve.set_defaults(run=run_serve)


def read_token(token_file: str | None) -> str | None:
    """The bearer token: the first line of ``token_file`` (ours, writable by us alone, in a folder nobody else can
    write: ``ownership.read_private_file``), else ``$FLIP_SERVE_TOKEN``, else None (no auth)."""
    from flip_reward.ownership import read_private_file

    if token_file:
        lines = read_private_file(token_file, f"token file {token_file}").strip().splitlines()
        if not lines or not lines[0].strip():
            raise ValueError(f"token file {token_file} is empty")
        return lines[0].strip()
    return os.environ.get(TOKEN_ENV, "").strip() or None


def run_serve(args: argparse.Namespace) -> int:
    from flip_reward.core.reward import FlipReward
    from flip_reward.serving.protocol import DEFAULT_READER
    from flip_reward.serving.reward_service import RewardService, serve
    from flip_reward.templates import load_policy_template

    reader = load_policy_template(args.policy_template) if args.policy_template else DEFAULT_READER
    config = ServiceConfig(
        host=args.host,
        port=args.port,
        token=read_token(args.token_file),
        max_body_bytes=int(args.max_body_mb * MIB),
        max_items=args.max_items,
        shutdown_timeout=args.shutdown_timeout,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        keepalive_timeout=args.keepalive_timeout,
        max_connections=args.max_connections,
    )
    flip = FlipReward(
        reward_metric=args.reward_metric,
        think_prefilled=args.think_prefilled,
        restatement_guard=args.restatement_guard,
        **judge_options(args),
    )
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("flip_reward").setLevel(logging.INFO)
    dropped = asyncio.run(serve(RewardService(flip, config, reader), announce(flip, config)))
    print("flip-reward serve: stopped", file=sys.stderr)
    return EXIT_RUN_FAILED if dropped else 0


def announce(flip: FlipReward, config: ServiceConfig) -> Callable[[str], None]:
    """What is printed once the service listens: its base URL alone on stdout (for scripts), details on stderr."""

    def say(url: str) -> None:
        auth = "bearer token required" if config.token else "no authentication (loopback only)"
        print(f"flip-reward serve: {url} (judge {flip.judge.endpoint.description}; {auth})", file=sys.stderr)
        print(url, flush=True)

    return say
