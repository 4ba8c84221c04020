"""Credentials in the judge URL (``--api-base http://user:pass@host/v1``) are sent as HTTP basic auth and never shown.

The judge is the scripted OpenAI-compatible server (a test double) behind a real check of the ``Authorization``
header (``basic_auth``): every route answers 401 without the right credentials, as a reverse proxy would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO
from serve_support import ServeProcess, call

from flip_reward.core.reward import FlipReward
from flip_reward.judge.client import JudgeConfig
from flip_reward.judge.transport import Endpoint
from flip_reward.judge.urls import redact_url
from flip_reward.serving.probe import JudgeProbeError, check_serves, served_models
from flip_reward.serving.scripted_judge import ScriptedJudgeServer, flip_answer, judged_response

SECRET = "s3cret"
ANSWERS = {"Roses bloom.": "Write a poem about roses", "Blue.": "Name a fruit"}
ROWS = [
    {"prompt": "Write a poem about roses", "response": "Roses bloom."},
    {"prompt": "Name a colour", "response": "Blue."},
]
REWARDS = [1.0, 0.5]  # "Name a fruit" against "Name a colour": 1 of 2 words on each side


def answer(request: dict) -> str:
    return flip_answer(ANSWERS[judged_response(request)])


def with_userinfo(server: ScriptedJudgeServer, userinfo: str) -> str:
    return server.base_url.replace("http://", f"http://{userinfo}@")


def shown(server: ScriptedJudgeServer) -> str:
    return f"hosted_vllm/judge at http://***@127.0.0.1:{server.port}/v1"


def score(tmp_path, api_base: str) -> tuple[subprocess.CompletedProcess, str]:
    """``flip-reward score`` of ROWS in a subprocess; its result and the output file's text."""
    source, output = tmp_path / "rows.jsonl", tmp_path / "scored.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    command = [sys.executable, "-m", "flip_reward.cli", "score", str(source), "-o", str(output), "--judge",
               "hosted_vllm/judge", "--api-base", api_base, "--retries", "0"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    completed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)
    return completed, output.read_text() if output.exists() else ""


def test_score_sends_the_credentials_as_basic_auth(tmp_path):
    with ScriptedJudgeServer(answer, basic_auth=f"user:{SECRET}") as server:
        completed, output = score(tmp_path, with_userinfo(server, f"user:{SECRET}"))
    assert completed.returncode == 0, completed.stderr
    rows = [json.loads(line) for line in output.splitlines()]
    assert [(row["reward"], row["error"]) for row in rows] == [(REWARDS[0], None), (REWARDS[1], None)]
    assert server.refused_authorizations == []
    assert SECRET not in completed.stdout + completed.stderr + output


@pytest.mark.parametrize(
    ("userinfo", "expected"),
    [("us%40er:p%3As3cret%2F", "us@er:p:s3cret/"), ("s3cret-token", "s3cret-token:")],
    ids=["percent-encoded", "user-only"],
)
def test_percent_encoded_and_user_only_credentials(userinfo, expected):
    with ScriptedJudgeServer(answer, basic_auth=expected) as server:
        flip = FlipReward("hosted_vllm/judge", with_userinfo(server, userinfo), retries=0)
        results = flip.score([row["prompt"] for row in ROWS], [row["response"] for row in ROWS])
    assert [(result.reward, result.error) for result in results] == [(REWARDS[0], None), (REWARDS[1], None)]
    assert (server.refused_authorizations, flip.judge.endpoint.description) == ([], shown(server))


def test_wrong_credentials_are_reported_without_them(tmp_path):
    with ScriptedJudgeServer(answer, basic_auth="user:other") as server:
        completed, output = score(tmp_path, with_userinfo(server, f"user:{SECRET}"))
    failure = f"judge {shown(server)} failed: AuthenticationError: HTTP 401: invalid credentials"
    assert [json.loads(line)["error"] for line in output.splitlines()] == [failure, failure]
    assert completed.returncode == 1
    assert completed.stderr.splitlines()[-1] == (
        f"error: judge {shown(server)} refused the requests (HTTP 401: invalid credentials); no row was scored"
    )
    assert SECRET not in completed.stdout + completed.stderr + output
    assert len(server.refused_authorizations) == 2  # the credentials were sent, just wrong ones


def test_serve_never_shows_the_credentials():
    with ScriptedJudgeServer(answer, basic_auth="user:other") as server:
        api_base = with_userinfo(server, f"user:{SECRET}")
        with ServeProcess("--judge", "hosted_vllm/judge", "--api-base", api_base, "--retries", "0") as service:
            health = call(service.url, "/health")
            scored = call(service.url, "/v1/score", {"items": ROWS[:1]})
            returncode, stderr = service.stop()
    failure = f"judge {shown(server)} failed: AuthenticationError: HTTP 401: invalid credentials"
    assert (scored[0], scored[1]["results"][0]["error"]) == (200, failure)
    assert f"(judge {shown(server)};" in stderr  # the start-up line
    assert (returncode, SECRET in json.dumps(health) + json.dumps(scored) + stderr) == (0, False)


def test_serve_probes_with_them_at_start():
    """The start-up probe sends the URL's credentials as the requests do: no false "HTTP 401" warning."""
    with ScriptedJudgeServer(answer, basic_auth=f"user:{SECRET}") as server:
        api_base = with_userinfo(server, f"user:{SECRET}")
        with ServeProcess("--judge", "hosted_vllm/scripted", "--api-base", api_base, "--retries", "0") as service:
            scored = call(service.url, "/v1/score", {"items": ROWS})
            returncode, stderr = service.stop()
    assert [result["reward"] for result in scored[1]["results"]] == REWARDS
    assert (returncode, server.refused_authorizations) == (0, [])
    assert "warning" not in stderr.lower() and SECRET not in stderr


def test_the_library_scores_with_them_and_hides_them():
    with ScriptedJudgeServer(answer, basic_auth=f"user:{SECRET}") as server:
        api_base = with_userinfo(server, f"user:{SECRET}")
        flip = FlipReward("hosted_vllm/judge", api_base, retries=0)
        results = flip.score([row["prompt"] for row in ROWS], [row["response"] for row in ROWS])
        assert [result.reward for result in results] == REWARDS
        assert flip.judge.endpoint.description == shown(server)
        assert SECRET not in repr(flip.judge.config) + repr(flip.judge.endpoint)
        assert served_models(flip.judge.endpoint) == ["scripted"]  # the start probes send them too
        with pytest.raises(JudgeProbeError) as refused:
            check_serves(Endpoint.resolve("hosted_vllm/other", api_base))
    assert (
        str(refused.value)
        == f"http://***@127.0.0.1:{server.port}/v1 serves scripted, not 'other' (from hosted_vllm/other)"
    )


def test_a_litellm_judge_refuses_a_url_with_credentials():
    with pytest.raises(ValueError) as refused:
        FlipReward("hosted_vllm/judge", f"http://user:{SECRET}@127.0.0.1:9/v1", use_litellm=True)
    assert str(refused.value) == (
        "judge hosted_vllm/judge at http://***@127.0.0.1:9/v1: credentials in the base URL go as HTTP basic auth, "
        "which only the OpenAI-compatible transport sends (litellm always sends its own Authorization header): use a "
        "hosted_vllm/ or openai/ judge without use_litellm, or a URL without credentials"
    )


def test_redact_url_hides_every_user_info():
    text = f"judges http://user:{SECRET}@a:1/v1,https://tok@b/v1 and http://c/v1?to=x@y; http://u:p@ss{SECRET}@d/v1"
    # an "@" after the authority (RFC 3986: up to the first "/", "?" or "#") is the path's or query's, and shown
    assert redact_url(text) == "judges http://***@a:1/v1,https://***@b/v1 and http://c/v1?to=x@y; http://***@d/v1"
    assert redact_url(f"http://u:{SECRET}@h:1/v1/a@b?x=c@d") == "http://***@h:1/v1/a@b?x=c@d"
    assert [redact_url(f"at http://alice:pa{mark}ss{SECRET}@h:1/v1 now") for mark in "#/?"] == [
        "at http://***@h:1/v1 now"
    ] * 3
    assert repr(JudgeConfig(api_base=f"http://u:{SECRET}@h/v1")).startswith(
        "JudgeConfig(model='hosted_vllm/Qwen/Qwen3-4B', api_base='http://***@h/v1', max_concurrency=64,"
    )


def test_train_dry_run_probes_with_them_and_never_prints_them(tmp_path):
    with ScriptedJudgeServer(answer, basic_auth=f"user:{SECRET}") as server:
        api_base = with_userinfo(server, f"user:{SECRET}")
        command = [sys.executable, "-m", "flip_reward.cli", "train", "--dry-run", "--datasets",
                   "data/sample_rlvr_flip.jsonl 1.0", "--output-dir", str(tmp_path / "run"), "--judge",
                   "hosted_vllm/scripted", "--judge-base-url", api_base]  # fmt: skip
        env = {key: value for key, value in os.environ.items() if not key.startswith(("JUDGE_", "FLIP_"))}
        completed = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
                                   env={**env, "PYTHONPATH": str(REPO)})  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert f"judge: ok, http://***@127.0.0.1:{server.port}/v1 serves hosted_vllm/scripted" in completed.stderr
    assert SECRET not in completed.stdout + completed.stderr and server.refused_authorizations == []


@pytest.mark.parametrize("mark", ["#", "/", "?"])
def test_an_unencoded_delimiter_in_the_password_is_refused_at_start(mark):
    """``flip-reward serve`` exits 2 with one line asking for percent-encoding, the password not shown."""
    api_base = f"http://alice:pa{mark}ss{SECRET}@127.0.0.1:9/v1"
    command = [sys.executable, "-m", "flip_reward.cli", "serve", "--port", "0", "--judge", "hosted_vllm/judge",
               "--api-base", api_base]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    completed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert (completed.returncode, completed.stdout, completed.stderr.splitlines()) == (2, "", [
        "error: judge URL http://***@127.0.0.1:9/v1: its user name or password holds a '/', '?' or '#': "
        "percent-encode them in the URL (/ as %2F, ? as %3F, # as %23, @ as %40)"
    ])  # fmt: skip


@pytest.mark.parametrize("tail", ["/v1/a@b", "/v1?x=a@b"])
def test_an_at_sign_in_the_path_or_query_is_no_credentials(tmp_path, tail):
    """No judge listens: the run is refused as judge down (exit 3), the URL shown whole, host included."""
    completed, _ = score(tmp_path, f"http://127.0.0.1:9{tail}")
    cause = f"APIConnectionError: cannot connect to http://127.0.0.1:9{tail} (ConnectionRefusedError: [Errno 111] "
    assert (completed.returncode, completed.stderr.splitlines()[-1]) == (3, (
        f"error: judge hosted_vllm/judge at http://127.0.0.1:9{tail} is down ({cause}Connect call failed "
        "('127.0.0.1', 9))); no row was scored"
    ))  # fmt: skip


@pytest.mark.parametrize("api_base", [f"user:{SECRET}@127.0.0.1:9/v1", f"user:{SECRET}@http://127.0.0.1:9/v1"])
def test_a_base_url_without_a_scheme_is_refused_without_its_password(tmp_path, api_base):
    completed, written = score(tmp_path, api_base)
    assert (completed.returncode, completed.stdout, completed.stderr, written) == (2, "", (
        f"error: judge URL ***@{api_base.rpartition('@')[2]}: it does not start with http:// or https://; write it "
        "whole, e.g. http://127.0.0.1:8000/v1\n"
    ), "")  # fmt: skip
