"""``flip-reward judge {serve,route,stop}``: a judge's OpenAI-compatible server(s) in the background, vllm-router in
front of judges, or the stop of either (``scripts/serve_judge.sh`` runs this command)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from flip_reward.cli.common import command_epilog
from flip_reward.exit_codes import EXIT_INTERRUPTED, EXIT_INVALID_INPUT, EXIT_OK, EXIT_RUN_FAILED
from flip_reward.launch import judge_commands
from flip_reward.serving import judge_fleet

SERVE_HELP = """\
Serves MODEL (a hub name or a directory; HF_HUB_OFFLINE defaults to 1 for a directory) with `vllm serve` when vLLM
imports and a CUDA GPU is visible, else `transformers serve` (JUDGE_SERVER=vllm or transformers forces one). Every
process runs in its own session and process group, logs to a file, and its PID goes to the PID file with its start
time. Once GET /health answers everywhere, the base URL (http://H:P/v1) is printed as the only line on stdout and
the servers keep running: stop them with `flip-reward judge stop`. Requests must name the model exactly as MODEL.
Arguments after -- go to the server (SERVER_ARGS).

--replicas N (N > 1, vLLM only) starts N servers on 127.0.0.1, ports P+1..P+N (JUDGE_GPUS split evenly, with
--tensor-parallel-size), and vllm-router on H:P in front, as one unit. transformers serve cannot serve behind the
router (it refuses the fields vllm-router adds, HTTP 422): a fleet of them is refused.
"""
ENVIRONMENT = """\
environment: PYTHON (the interpreter beside which vllm, transformers and vllm-router are looked for first; default
this one), JUDGE_SERVER (auto, vllm, transformers), JUDGE_GPUS (CUDA_VISIBLE_DEVICES of vLLM), JUDGE_ROUTER_POLICY
(default of --policy), JUDGE_ROUTER_ARGS (more vllm-router arguments).
"""
ROUTE_HELP = """\
Starts only vllm-router on H:P in front of OpenAI-compatible judges that already run (their base URLs, with or
without the trailing /v1; a URL with user:password@ is refused, exit 2: vllm-router cannot send credentials). One
judge gets policy round_robin (vllm-router refuses power_of_two over one worker). vllm-router comes with pip install
"flip-reward[fleet]".
"""
STOP_HELP = """\
Sends TERM to every process group of the PID file (default: the default PID file of --port), the last started
first, KILL after 10 s, and removes the PID file; nothing to do (exit 0) when it or the processes are gone. A PID
file that is a symbolic link or another user's, in a directory others can write, a PID of 1 or less, and a PID now
used by another process (its start time differs from the one recorded) are refused, never signalled (exit 1).
"""
START_EXIT_CODES = (EXIT_OK, EXIT_RUN_FAILED, EXIT_INVALID_INPUT, EXIT_INTERRUPTED)
START_NOTES = {
    EXIT_OK: "started, or a dry run",
    EXIT_RUN_FAILED: "it did not start (everything started is stopped), a port in use, a PID or log file refused",
    EXIT_INVALID_INPUT: "settings that cannot work, before anything starts",
    EXIT_INTERRUPTED: "everything started is stopped",
}
STOP_EXIT_CODES = (EXIT_OK, EXIT_RUN_FAILED, EXIT_INVALID_INPUT, EXIT_INTERRUPTED)
STOP_NOTES = {
    EXIT_OK: "stopped, or nothing to stop",
    EXIT_RUN_FAILED: "a PID file or a PID refused (never signalled)",
    EXIT_INVALID_INPUT: "a --port that is no number",
}


def start_outputs(what: str) -> tuple[str, ...]:
    """The outputs of ``judge serve`` and ``judge route`` (``what``: the servers they start)."""
    return (
        "stdout: the base URL (http://H:P/v1) as the only line once every /health answers; with --dry-run the "
        "commands, one a line (server:, replica I:, router:)",
        f"the PID file (every process group of {what}, with its start time) and the log file(s)",
        "stderr: progress and errors, each line starting with flip-reward judge: (serve_judge: for the script)",
    )


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``judge`` to the ``flip-reward`` subcommands."""
    judge = commands.add_parser(
        "judge",
        help="serve a judge (or a fleet behind vllm-router) in the background, route to judges, stop them",
        description="Judge servers in the background: serve, route, stop (docs/judge-servers.md).",
        epilog=command_epilog(
            START_EXIT_CODES,
            stopped_by_signal=True,
            text="flip-reward judge COMMAND --help: a command's options, outputs and exit statuses",
        ),
    )
    judge.add_argument(
        "--script",
        metavar="PATH",
        help="messages as scripts/serve_judge.sh (which passes its path): serve_judge: lines, stop hint PATH --stop",
    )
    actions = judge.add_subparsers(dest="judge_command", required=True, metavar="COMMAND", title="commands")
    serve = actions.add_parser(
        "serve",
        help="serve MODEL: one server, or --replicas N behind vllm-router",
        description=SERVE_HELP,
        usage="%(prog)s [-h] [options] MODEL [-- SERVER_ARGS ...]",
        tail="server_args",
        epilog=command_epilog(
            START_EXIT_CODES,
            outputs=start_outputs("the servers and the router"),
            notes=START_NOTES,
            stopped_by_signal=True,
            text=ENVIRONMENT,
        ),
    )
    serve.add_argument("model", metavar="MODEL", help="hub name or directory of the judge model")
    serve.add_argument("--replicas", default="1", help="servers of MODEL behind vllm-router (default: %(default)s)")
    add_start_arguments(serve)
    serve.set_defaults(run=run_serve)
    route = actions.add_parser(
        "route",
        help="vllm-router in front of judges that already run",
        description=ROUTE_HELP,
        tail="server_args",  # refused, with the line saying why
        epilog=command_epilog(
            START_EXIT_CODES,
            outputs=start_outputs("the router"),
            notes=START_NOTES,
            stopped_by_signal=True,
            text=ENVIRONMENT,
        ),
    )
    route.add_argument("urls", nargs="*", metavar="URL", help="a judge's base URL (one or more)")
    route.add_argument(
        "--replicas", default="1", help="refused unless 1: a router alone serves no model (the line says so)"
    )
    add_start_arguments(route)
    route.set_defaults(run=run_route)
    stop = actions.add_parser(
        "stop",
        help="stop what serve or route started",
        description=STOP_HELP,
        epilog=command_epilog(
            STOP_EXIT_CODES,
            outputs=(
                "stderr: one line per process group stopped (or refused); the PID file is removed once every group "
                "it names is stopped",
            ),
            notes=STOP_NOTES,
        ),
    )
    stop.add_argument(
        "pid_file", nargs="?", type=Path, metavar="PID_FILE", help="the PID file (default: that of --port)"
    )
    stop.add_argument(
        "--port",
        default=str(judge_fleet.DEFAULT_PORT),
        help="the port whose default PID file to read (default: %(default)s)",
    )
    stop.add_argument(
        "--pid-file", dest="pid_file_option", type=Path, metavar="PID_FILE", help="the PID file, as the argument"
    )
    stop.set_defaults(run=run_stop)


def add_start_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``serve`` and ``route`` share."""
    parser.add_argument("--policy", help="vllm-router's routing policy (default: $JUDGE_ROUTER_POLICY or power_of_two)")
    parser.add_argument("--port", default=str(judge_fleet.DEFAULT_PORT), help="port (default: %(default)s)")
    parser.add_argument("--host", default=judge_fleet.DEFAULT_HOST, help="address to bind (default: %(default)s)")
    parser.add_argument(
        "--pid-file",
        type=Path,
        help="PID file (default: DIR/serve_judge.PORT.pid, DIR=${XDG_RUNTIME_DIR:-${TMPDIR:-/tmp}}/flip-reward-UID)",
    )
    parser.add_argument(
        "--log-file", type=Path, help="log file (default: DIR/serve_judge.PORT.log; replica I: .I before .log)"
    )
    parser.add_argument(
        "--timeout",
        default=str(judge_fleet.DEFAULT_START_TIMEOUT_S),
        help="seconds to wait for every /health (default: %(default)s)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the commands, one a line, and start nothing")


def logger(args: argparse.Namespace) -> Callable[[str], None]:
    """The message printer: ``serve_judge: ...`` lines for the script, ``flip-reward judge: ...`` otherwise."""
    name = "serve_judge" if args.script else "flip-reward judge"

    def log(message: str) -> None:
        print(f"{name}: {message}", file=sys.stderr, flush=True)

    return log


def start_of(
    args: argparse.Namespace, model: str | None, urls: tuple[str, ...], replicas: str
) -> judge_commands.JudgeStart:
    """The start the options describe; ``--script`` words the stop hint as the script's ``--stop``."""
    hint = f"{args.script} --stop" if args.script else "flip-reward judge stop"
    return judge_commands.JudgeStart(
        model=model, route_urls=urls, replicas=replicas, policy=args.policy, port=args.port, host=args.host,
        pid_file=args.pid_file, log_file=args.log_file, timeout=args.timeout, server_args=args.server_args,
        dry_run=args.dry_run, stop_hint=hint,
    )  # fmt: skip


def run_serve(args: argparse.Namespace) -> int:
    return judge_commands.serve(start_of(args, args.model, (), args.replicas), logger(args))


def run_route(args: argparse.Namespace) -> int:
    return judge_commands.serve(start_of(args, None, tuple(args.urls), args.replicas), logger(args))


def run_stop(args: argparse.Namespace) -> int:
    return judge_commands.stop(args.pid_file or args.pid_file_option, args.port, logger(args))
