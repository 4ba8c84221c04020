"""The judge of a training run as a launcher needs it: the services to start (a server, replicas behind vllm-router,
or vllm-router alone in front of the running judges of JUDGE_BASE_URL; none for one running judge) and the base URL
the trainer's reward reaches, from the shared judge knobs (``run_knobs.JudgeKnobs``)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from flip_reward.judge.urls import CredentialsSyntaxError, redact_url, split_credentials
from flip_reward.knobs import SettingsError
from flip_reward.launch.run_knobs import JudgeKnobs
from flip_reward.serving.judge_fleet import FleetError, judge_services, router_service, served_url, worker_url
from flip_reward.serving.processes import Service

HOSTED_VLLM = "hosted_vllm/"
HOSTED_VLLM_API_BASE = "HOSTED_VLLM_API_BASE"


@dataclass(frozen=True)
class RunJudge:
    """``services`` to start before the trainer (none: the judge at ``url`` runs already) and the judge's base URL.
    ``pid_file`` and ``log_file`` are where the services' PIDs and output go."""

    services: tuple[Service, ...]
    url: str
    pid_file: Path
    log_file: Path

    def lines(self, settings: JudgeKnobs) -> list[str]:
        """What a dry run says about the judge: each service's command, or the running judge's address."""
        if not self.services:
            return [f"judge: external at {redact_url(settings.judge_base_url)}"]
        return [
            f"judge: {service.name}: {redact_url(shlex.join(service.command))} (log: {service.log_file})"
            for service in self.services
        ]


def run_judge(settings: JudgeKnobs, run_dir: Path, python: str, dry_run: bool = False) -> RunJudge:
    """The judge of a run whose judge files go to ``run_dir`` (judge.pid, judge.log); SettingsError when it cannot
    be started as set (a fleet that does not split, no vllm or vllm-router executable for a real run)."""
    pid_file, log_file = run_dir / "judge.pid", run_dir / "judge.log"
    url = served_url(settings.judge_host, settings.judge_port, settings.judge_advertise_host or None)
    try:
        if settings.starts_judge:
            services = judge_services(
                settings.judge_model.removeprefix(HOSTED_VLLM),
                replicas=settings.judge_replicas,
                host=settings.judge_host,
                port=settings.judge_port,
                gpus=settings.judge_gpus,
                server=settings.judge_server,
                server_args=shlex.split(settings.judge_server_args),
                log_file=log_file,
                python=python,
                policy=settings.judge_router_policy,
                router_args=shlex.split(settings.judge_router_args),
                start_timeout=settings.judge_start_timeout,
                dry_run=dry_run,
            )
        elif len(settings.judge_urls) > 1:
            router = router_service(
                [worker_url(judge) for judge in settings.judge_urls],
                host=settings.judge_host,
                port=settings.judge_port,
                policy=settings.judge_router_policy,
                router_args=shlex.split(settings.judge_router_args),
                start_timeout=settings.judge_start_timeout,
                log_file=log_file,
                python=python,
                dry_run=dry_run,
            )
            services = [router]
        else:
            return RunJudge((), settings.judge_urls[0], pid_file, log_file)
    except FleetError as error:
        raise SettingsError(str(error)) from None
    return RunJudge(tuple(services), url, pid_file, log_file)


def has_credentials(url: str) -> bool:
    """Whether judge URL ``url`` holds user-info (read as ``flip_reward.judge.urls`` reads it)."""
    try:
        return split_credentials(url)[1] is not None
    except CredentialsSyntaxError:
        return True


def url_in_environment(judge_model: str, url: str, printed_by: str) -> dict[str, str]:
    """Where a command that ``printed_by`` shows (its command line, its config) learns judge URL ``url``: nothing
    (``{}``: the URL goes in the command) unless the URL holds credentials; then HOSTED_VLLM_API_BASE only, for a
    hosted_vllm/ judge (litellm reads it); SettingsError for credentials with another provider."""
    if not has_credentials(url):
        return {}
    if judge_model.startswith(HOSTED_VLLM):
        return {HOSTED_VLLM_API_BASE: url}
    raise SettingsError(
        f"JUDGE_BASE_URL holds credentials, which {printed_by} would print: they need a hosted_vllm/ JUDGE_MODEL"
    )
