"""``flip-reward serve``: a real service process on loopback, both protocols, concurrency, faults, auth, bad bodies
and shutdown. The judge behind it is the scripted OpenAI-compatible server (a test double, see serve_support)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import free_port
from serve_support import ResponseScript, ServeProcess, call, metric, requests_arrived, requests_for

from flip_reward.core.reward import FlipResult
from flip_reward.serving.scripted_judge import Reply, ScriptedJudgeServer, flip_answer
from flip_reward.templates import GROUPS, FamilyReader

SEA = "Write a poem about the sea."
FRANCE = "What is the capital of France?"
ANSWERS = {
    "Waves roll in under a silver moon.": SEA,
    "Mountains rise above the clouds.": "Write a poem about mountains.",
    "Paris, on the Seine.": FRANCE,
    "FAIL500": Reply(content="scripted outage", status=500),
    "GARBLED": Reply(content="I think they asked for something"),
    "SLOW": Reply(content=flip_answer(SEA), delay=3.0),
}
SCORE_FIELDS = [*FlipResult().to_dict(), "response_chars"]


def chatml(instruction: str, system: str | None = None, opener: str = "") -> str:
    head = f"<|im_start|>system\n{system}<|im_end|>\n" if system else ""
    return f"{head}<|im_start|>user\n{instruction}<|im_end|>\n<|im_start|>assistant\n{opener}"


def llama3(instruction: str) -> str:
    return (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
        f"{instruction}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def tulu(instruction: str) -> str:
    return f"<|user|>\nHi\n<|assistant|>\nHello!<|endoftext|>\n<|user|>\n{instruction}\n<|assistant|>\n"


def openrlhf_body(*samples: tuple[str, str, str, str | None]) -> dict:
    """A /get_reward body from (prompt, response, end-of-turn tokens, label) samples."""
    return {
        "query": [prompt + response + end for prompt, response, end, _ in samples],
        "prompts": [prompt for prompt, *_ in samples],
        "labels": [label for *_, label in samples],
    }


@pytest.fixture(scope="module")
def judge():
    with ScriptedJudgeServer(ResponseScript(ANSWERS)) as server:
        yield server


@pytest.fixture(scope="module")
def service(judge):
    args = ("--judge", "hosted_vllm/scripted", "--api-base", judge.base_url, "--retries", "0", "--max-items", "16")
    with ServeProcess(*args, "--max-body-mb", "0.05") as process:
        yield process


# --- reading templated text ------------------------------------------------------------------------------------


@pytest.mark.parametrize("build", [chatml, llama3, tulu], ids=["chatml", "llama3", "tulu"])
def test_every_template_gives_back_its_instruction_and_response(build) -> None:
    prompt = build("Name three\nprimes.")
    end = {"chatml": "<|im_end|>", "llama3": "<|eot_id|>", "tulu": "<|endoftext|>"}[build.__name__]
    reading = FamilyReader().read(prompt)
    assert reading.messages[-1] == {"role": "user", "content": "Name three\nprimes."}
    assert reading.response(prompt + "2, 3 and 5." + end + "<|endoftext|>", prompt) == "2, 3 and 5."


def test_a_think_opening_generation_prompt_puts_the_think_back() -> None:
    prompt = chatml(SEA, opener="<think>")
    assert FamilyReader().read(prompt).response(prompt + "plan</think>Waves.<|im_end|>", prompt) == (
        "<think>plan</think>Waves."
    )


# --- /get_reward (OpenRLHF) ------------------------------------------------------------------------------------


def test_get_reward_scores_in_input_order_with_and_without_labels(service) -> None:
    body = openrlhf_body(
        (chatml(SEA, system="Be poetic."), "Waves roll in under a silver moon.", "<|im_end|>", None),
        (llama3(SEA), "Mountains rise above the clouds.", "<|eot_id|>", None),
        (tulu("ignored when a label is given"), "Paris, on the Seine.", "<|endoftext|>", FRANCE),
    )
    status, answer = call(service.url, "/get_reward", body)
    assert status == 200
    assert answer["rewards"] == [1.0, 0.75, 1.0]
    assert answer["scores"] == answer["rewards"]
    assert answer["errors"] == [None, None, None]
    assert answer["extra_logs"] == {
        "flip_f1": [1.0, 0.75, 1.0],
        "flip_judge_error": [0.0, 0.0, 0.0],
        "flip_parse_failure": [0.0, 0.0, 0.0],
        "flip_input_error": [0.0, 0.0, 0.0],
        "flip_restatement_masked": [0.0, 0.0, 0.0],
    }


def test_one_bad_item_scores_zero_with_its_error_and_the_others_are_unaffected(service) -> None:
    body = openrlhf_body(
        (chatml(SEA), "Waves roll in under a silver moon.", "<|im_end|>", None),
        ("Just text, no template.", "Some answer.", "", None),
        (chatml(SEA), "FAIL500", "<|im_end|>", None),
        (chatml(SEA), "GARBLED", "<|im_end|>", None),
    )
    body["query"][1] = "a query that does not hold its prompt"
    body["query"].append(chatml(SEA) + "Answer.")
    body["prompts"].append("Plain prompt")
    body["labels"].append(None)
    status, answer = call(service.url, "/get_reward", body)
    assert status == 200
    assert answer["rewards"] == [1.0, 0.0, 0.0, 0.0, 0.0]
    errors = answer["errors"]
    assert errors[0] is None
    assert errors[1].startswith("item 1: the query does not start with its prompt")
    assert "500" in errors[2] and "scripted outage" in errors[2]
    assert errors[3].startswith("no inferred instruction in judge output")
    assert errors[4] == "item 4: the query does not start with its prompt"
    assert answer["extra_logs"]["flip_input_error"] == [0.0, 1.0, 0.0, 0.0, 1.0]
    assert answer["extra_logs"]["flip_judge_error"] == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert answer["extra_logs"]["flip_parse_failure"] == [0.0, 0.0, 0.0, 1.0, 0.0]


def test_an_item_without_label_or_known_template_is_an_error_naming_its_index(service) -> None:
    body = openrlhf_body(("Question: hi\nAnswer: ", "Hello.", "", None), ("Q: ", "A.", "", ""))
    status, answer = call(service.url, "/get_reward", body)
    assert status == 200 and answer["rewards"] == [0.0, 0.0]
    reason = f"no instruction: no label, and the prompt is in no known chat template (tried {', '.join(GROUPS)})"
    assert answer["errors"] == [f"item 0: {reason}", f"item 1: {reason}"]


def test_concurrent_clients_share_one_judge_dedup_and_cache(service, judge) -> None:
    shared = "A lighthouse keeps watch over the harbour."
    judge.respond.answers[shared] = SEA

    def client(number: int) -> tuple[int, dict]:
        own = f"Client {number} writes about the waves and the tide."
        judge.respond.answers[own] = "Write a poem about the tide."
        body = openrlhf_body(*((chatml(SEA), text, "<|im_end|>", None) for text in (own, shared, own)))
        return call(service.url, "/get_reward", body)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(client, range(8)))
    for status, answer in answers:
        assert status == 200
        assert answer["rewards"] == [0.75, 1.0, 0.75]  # "write poem about tide" vs "write poem about sea"
    assert requests_for(judge, shared) == 1
    assert all(requests_for(judge, f"Client {n} writes about the waves and the tide.") == 1 for n in range(8))


# --- /v1/score ---------------------------------------------------------------------------------------------------


def test_score_writes_the_fields_of_flip_reward_score(service) -> None:
    items = [
        {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": FRANCE}],
         "response": "Paris, on the Seine."},
        {"prompt": f"user: {SEA}", "response": "Mountains rise above the clouds."},
        {"prompt": [{"role": "assistant", "content": "no user"}], "response": "Paris, on the Seine."},
    ]  # fmt: skip
    status, answer = call(service.url, "/v1/score", {"items": items})
    assert status == 200
    results = answer["results"]
    assert [list(result) for result in results] == [SCORE_FIELDS] * 3
    assert [result["reward"] for result in results] == [1.0, 0.75, 0.0]
    assert results[0]["inferred_instruction"] == FRANCE and results[0]["response_chars"] == 20
    assert results[1]["precision"] == 0.75 and results[1]["judged_response"] == "Mountains rise above the clouds."
    assert results[2]["error_type"] == "input" and results[2]["error"] == "prompt: prompt has no user message"


# --- bad bodies --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "index", "field", "message"),
    [
        ("/get_reward", [1], None, None, "the body must be a JSON object, got list"),
        ("/get_reward", {"query": "x", "prompts": []}, None, "query", "'query' must be a list of strings, got str"),
        ("/get_reward", {"query": ["a", "b"], "prompts": ["a", 3]}, 1, "prompts", "prompts[1] must be a string, got int"),  # noqa: E501
        ("/get_reward", {"query": ["a"], "prompts": ["a", "b"]}, None, "prompts", "'prompts' has 2 entries but 'query' has 1"),  # noqa: E501
        ("/get_reward", {"query": ["a"], "prompts": ["a"], "labels": [7]}, 0, "labels", "labels[0] must be a string, got int"),  # noqa: E501
        ("/v1/score", {"items": {}}, None, "items", "'items' must be a list, got dict"),
        ("/v1/score", {"items": [{"prompt": "p", "response": "r"}, "x"]}, 1, "items", "items[1] must be an object, got str"),  # noqa: E501
        ("/v1/score", {"items": [{"response": "r"}]}, 0, "prompt", "items[0].prompt must be a string or a list of messages, got missing"),  # noqa: E501
        ("/v1/score", {"items": [{"prompt": "p"}, {"prompt": "p", "response": 1}]}, 0, "response", "items[0].response must be a string, got missing"),  # noqa: E501
    ],
)  # fmt: skip
def test_a_malformed_body_is_a_400_naming_the_item_and_field(service, path, body, index, field, message) -> None:
    assert call(service.url, path, body) == (400, {"error": message, "index": index, "field": field})


def test_a_body_that_is_not_json_is_a_400(service) -> None:
    status, answer = call(service.url, "/v1/score", raw=b"{not json")
    assert status == 400 and answer["error"].startswith("the body is not JSON: ")


def test_too_many_items_or_too_large_a_body_is_a_413(service) -> None:
    items = [{"prompt": "p", "response": "r"}] * 17
    assert call(service.url, "/v1/score", {"items": items}) == (
        413,
        {"error": "17 items in one request; at most 16 are accepted", "index": None, "field": None},
    )
    status, answer = call(service.url, "/v1/score", {"items": [{"prompt": "p", "response": "x" * 60_000}]})
    assert status == 413 and answer["error"] == f"the body is over {int(0.05 * 1024 * 1024)} bytes"


def test_health_and_metrics(service) -> None:
    status, health = call(service.url, "/health")
    assert status == 200 and health["status"] == "ok" and health["judge_available"] is True
    assert call(service.url, "/v1/score", {"items": [{"prompt": f"user: {SEA}", "response": "GARBLED"}]})[0] == 200
    status, text = call(service.url, "/metrics")
    assert status == 200
    assert metric(text, 'flip_serve_requests_total{endpoint="/v1/score",status="200"}') >= 1
    assert metric(text, "flip_serve_parse_failures_total") >= 1
    assert metric(text, "flip_serve_reward_count") >= 1
    assert metric(text, 'flip_serve_request_seconds_count{endpoint="/v1/score"}') >= 1
    assert metric(text, "flip_serve_in_flight") == 1.0  # this scrape
    assert "flip_serve_judge_errors_total" in text and "flip_serve_input_errors_total" in text


# --- a dead judge --------------------------------------------------------------------------------------------------


def test_a_dead_judge_is_a_quick_503_with_one_message() -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with ServeProcess("--judge", "hosted_vllm/scripted", "--api-base", dead, "--retries", "0") as service:
        items = [{"prompt": f"user: {SEA}", "response": f"Answer number {n}."} for n in range(5)]
        status, answer = call(service.url, "/v1/score", {"items": items})
        assert status == 503
        assert answer["error"].startswith(f"judge hosted_vllm/scripted at {dead} is unreachable: 5 consecutive")
        started = time.perf_counter()
        status, again = call(service.url, "/get_reward", openrlhf_body((chatml(SEA), "x", "", None)))
        assert status == 503 and again["error"].startswith(f"judge hosted_vllm/scripted at {dead} is unreachable")
        assert time.perf_counter() - started < 1.0
        assert call(service.url, "/health")[1]["judge_available"] is False
        text = call(service.url, "/metrics")[1]
        assert metric(text, 'flip_serve_requests_total{endpoint="/v1/score",status="503"}') == 1
        assert metric(text, "flip_serve_judge_errors_total") == 5


# --- authentication ------------------------------------------------------------------------------------------------


def test_a_token_from_the_environment_is_required_except_for_health(judge) -> None:
    args = ("--judge", "hosted_vllm/scripted", "--api-base", judge.base_url)
    body = {"items": [{"prompt": f"user: {FRANCE}", "response": "Paris, on the Seine."}]}
    with ServeProcess(*args, env={"FLIP_SERVE_TOKEN": "s3cret"}) as service:
        unauthorized = {"error": "missing or wrong token: send 'Authorization: Bearer <token>'"}
        assert call(service.url, "/v1/score", body) == (401, unauthorized)
        assert call(service.url, "/v1/score", body, token="wrong") == (401, unauthorized)
        assert call(service.url, "/metrics", token="wrong")[0] == 401
        assert call(service.url, "/health")[0] == 200
        status, answer = call(service.url, "/v1/score", body, token="s3cret")
        assert status == 200 and answer["results"][0]["reward"] == 1.0


def test_a_token_file_works_and_a_public_address_needs_a_token(judge, tmp_path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-the-file\n")
    args = ("--judge", "hosted_vllm/scripted", "--api-base", judge.base_url)
    with ServeProcess(*args, "--token-file", str(token_file), env={"FLIP_SERVE_TOKEN": ""}) as service:
        assert call(service.url, "/get_reward", openrlhf_body((chatml(SEA), "x", "", None)))[0] == 401
        body = openrlhf_body((chatml(SEA), "Waves roll in under a silver moon.", "", None))
        assert call(service.url, "/get_reward", body, token="from-the-file")[1]["rewards"] == [1.0]
    refused = ServeProcess(*args, "--host", "0.0.0.0", env={"FLIP_SERVE_TOKEN": ""})
    with pytest.raises(AssertionError) as failure:
        refused.__enter__()
    assert refused.process.returncode == 2
    assert (
        "error: refusing to serve on 0.0.0.0 without a token: anyone who can reach it could spend the judge "
        "(set FLIP_SERVE_TOKEN or --token-file, or bind 127.0.0.1)"
    ) in str(failure.value)


# --- shutdown ------------------------------------------------------------------------------------------------------


def test_sigterm_lets_the_request_in_flight_finish_then_exits_zero(judge) -> None:
    args = ("--judge", "hosted_vllm/scripted", "--api-base", judge.base_url)
    with ServeProcess(*args) as service:
        answers: list = []
        body = openrlhf_body((chatml(SEA), "SLOW", "<|im_end|>", None))
        client = threading.Thread(target=lambda: answers.append(call(service.url, "/get_reward", body)))
        client.start()
        assert requests_arrived(judge, "SLOW") == 1, "the slow judge request never arrived"
        service.process.send_signal(signal.SIGTERM)
        client.join(timeout=30)
        returncode, stderr = service.wait()
        assert answers == [(200, answers[0][1])] and answers[0][1]["rewards"] == [1.0]
        assert returncode == 0, stderr
        assert "stopping: finishing 1 request(s) in flight" in stderr


# --- bodies and headers that cannot be read: a 400, never a 500 -----------------------------------------------------


@pytest.fixture(scope="module")
def with_token(judge):
    """A service with a token and the default body limit (the deep-JSON body is 100 kB)."""
    args = ("--judge", "hosted_vllm/scripted", "--api-base", judge.base_url, "--retries", "0")
    with ServeProcess(*args, env={"FLIP_SERVE_TOKEN": "s3cret"}) as process:
        yield process


def test_unreadable_bodies_and_headers_are_a_400_with_no_traceback(with_token) -> None:
    deep = b'{"items": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert call(with_token.url, "/v1/score", raw=deep, token="s3cret") == (
        400,
        {
            "error": "the body is not JSON: JSON nested deeper than 100 levels (at line 1 column 110)",
            "index": None,
            "field": None,
        },
    )
    body = json.dumps({"items": [{"prompt": f"user: {FRANCE}", "response": "Paris, on the Seine."}]}).encode()
    assert call(with_token.url, "/v1/score", raw=body, token="s3cret", headers={"Content-Encoding": "gzip"}) == (
        400,
        {"error": "the body cannot be read: Can not decode content-encoding: gzip", "index": None, "field": None},
    )
    not_utf8 = {"Authorization": "Bearer s3cr\xe9t\xff"}  # sent as Latin-1: bytes that are not UTF-8
    assert call(with_token.url, "/v1/score", raw=body, headers=not_utf8) == (
        400,
        {"error": "the Authorization header is not UTF-8", "index": None, "field": "Authorization"},
    )
    assert call(with_token.url, "/health", headers=not_utf8) == (
        400,
        {"error": "the Authorization header is not UTF-8", "index": None, "field": "Authorization"},
    )
    assert (
        call(
            with_token.url, "/v1/score", raw=gzip.compress(body), token="s3cret", headers={"Content-Encoding": "gzip"}
        )[1]["results"][0]["reward"]
        == 1.0
    )  # noqa: E501
    assert "Traceback" not in with_token.stderr and "internal error" not in with_token.stderr


def test_the_bearer_scheme_is_case_insensitive(with_token) -> None:
    body = {"items": [{"prompt": f"user: {FRANCE}", "response": "Paris, on the Seine."}]}
    for scheme in ("bearer", "BEARER", "Bearer"):
        status, answer = call(with_token.url, "/v1/score", body, headers={"Authorization": f"{scheme} s3cret"})
        assert (status, answer["results"][0]["reward"]) == (200, 1.0), scheme
    assert call(with_token.url, "/v1/score", body, headers={"Authorization": "Basic s3cret"})[0] == 401


def test_health_shows_the_judge_only_to_callers_with_the_token(with_token, judge) -> None:
    assert call(with_token.url, "/health") == (200, {"status": "ok"})
    assert call(with_token.url, "/health", token="wrong") == (200, {"status": "ok"})
    assert call(with_token.url, "/health", token="s3cret") == (
        200,
        {"status": "ok", "judge": f"hosted_vllm/scripted at {judge.base_url}", "judge_available": True},
    )


# --- the token file -------------------------------------------------------------------------------------------------


def serve_exit(*args: str) -> tuple[int, str]:
    """The exit status and stderr of a ``flip-reward serve`` that is expected to refuse to start."""
    result = subprocess.run(
        [sys.executable, "-m", "flip_reward.cli", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "FLIP_SERVE_TOKEN": ""},
    )
    return result.returncode, result.stderr


def test_a_token_file_of_another_user_or_writable_by_others_is_refused(judge, tmp_path) -> None:
    args = ("--judge", "hosted_vllm/scripted", "--api-base", judge.base_url)
    foreign = tmp_path / "foreign"
    foreign.write_text("planted\n")
    foreign.chmod(0o600)
    os.chown(foreign, 65534, 65534)
    assert serve_exit(*args, "--token-file", str(foreign)) == (
        2,
        f"error: token file {foreign} is owned by uid 65534, not by this user (uid {os.getuid()}): refusing it\n",
    )
    shared = tmp_path / "shared"
    shared.write_text("everyone can change me\n")
    shared.chmod(0o666)
    assert serve_exit(*args, "--token-file", str(shared)) == (
        2,
        f"error: token file {shared} is writable by group or others (mode 0666): refusing it (chmod 600 {shared})\n",
    )


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder under /tmp that every user can reach and write (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="flip-shared-"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder)


def test_a_token_file_another_user_can_replace_is_refused(judge, shared) -> None:
    """In a folder anyone can write, another user (nobody, through setpriv) swaps the 0600 token file for a link to
    /etc/hostname: the service refuses the folder instead of letting that user in with the host name."""
    args = ("--judge", "hosted_vllm/scripted", "--api-base", judge.base_url)
    token = shared / "token"
    token.write_text("s3cret\n")
    token.chmod(0o600)
    planted = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "ln", "-sf", "/etc/hostname", str(token)]
    subprocess.run(planted, check=True, timeout=30)
    assert token.is_symlink()
    assert serve_exit(*args, "--token-file", str(token)) == (
        2,
        f"error: token file {token}: its folder {shared} is writable by group or others (mode 0777): refusing it "
        f"(chmod go-w {shared})\n",
    )


def test_a_token_file_linked_from_a_private_folder_is_read_through_the_link(judge, tmp_path) -> None:
    """As Kubernetes mounts a secret: the named file is a link into a folder nobody else can write; the token is
    read through it, and a link to something that is not a regular file is refused."""
    data = tmp_path / "..data"
    data.mkdir(mode=0o755)
    (data / "token").write_text("s3cret\n")
    (data / "token").chmod(0o600)
    (tmp_path / "token").symlink_to("..data/token")
    args = ("--judge", "hosted_vllm/scripted", "--api-base", judge.base_url, "--token-file", str(tmp_path / "token"))
    with ServeProcess(*args, env={"FLIP_SERVE_TOKEN": ""}) as service:
        assert call(service.url, "/v1/score", {"items": []})[0] == 401
        assert call(service.url, "/v1/score", {"items": []}, token="s3cret")[0] != 401
    (tmp_path / "device").symlink_to("/dev/null")
    assert serve_exit(*args[:4], "--token-file", str(tmp_path / "device")) == (
        2,
        f"error: token file {tmp_path / 'device'} is not a regular file: refusing it\n",
    )


AS_NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")  # as a non-root pod runs


def test_a_kubernetes_secret_mount_is_read_by_a_service_that_is_not_root(judge, shared) -> None:
    """The layout of a Kubernetes secret volume: a sticky 1777 folder of root's holding root's link ``token`` to
    ``..data/token``, ``..data`` root's link to a 0755 folder of root's, and in it the token, root's, mode 0644. A
    real service running as nobody (uid 65534) reads it: root may own the file and the links, whom nobody else can
    replace in a sticky folder."""
    shared.chmod(0o1777)
    version = shared / "..2026_12_06_00_00_00.000000001"
    version.mkdir(mode=0o755)
    (version / "token").write_text("s3cret\n")
    (version / "token").chmod(0o644)
    (shared / "..data").symlink_to(version.name)
    (shared / "token").symlink_to("..data/token")
    home = shared / "home"  # nobody's HOME, for the judge cache
    home.mkdir()
    os.chown(home, 65534, 65534)
    args = ("--judge", "hosted_vllm/scripted", "--api-base", judge.base_url, "--token-file", str(shared / "token"))
    env = {"FLIP_SERVE_TOKEN": "", "HOME": str(home), "XDG_CACHE_HOME": str(home)}
    with ServeProcess(*args, env=env, prefix=AS_NOBODY) as service:
        assert call(service.url, "/v1/score", {"items": []})[0] == 401
        assert call(service.url, "/v1/score", {"items": []}, token="s3cret")[0] == 200


def test_a_token_file_that_cannot_be_read_is_one_line_naming_it(judge, tmp_path) -> None:
    """A missing file, a folder, a FIFO (which must not block the start), bytes that are not UTF-8, and a link of
    another user's in a shared sticky folder such as /tmp (whose advice is to move it, not to chmod /tmp)."""
    args = ("--judge", "hosted_vllm/scripted", "--api-base", judge.base_url)
    os.mkfifo(tmp_path / "fifo", 0o600)
    (tmp_path / "latin1").write_bytes(b"caf\xe9\n")
    (tmp_path / "latin1").chmod(0o600)
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    (sticky / "token").symlink_to("/etc/hostname")
    os.lchown(sticky / "token", 65534, 65534)  # a link of nobody's, who may replace it even in a sticky folder
    expected = {
        "missing": f"error: token file {tmp_path / 'missing'} cannot be read: No such file or directory\n",
        "fifo": f"error: token file {tmp_path / 'fifo'} is not a regular file: refusing it\n",
        ".": f"error: token file {tmp_path / '.'} is not a regular file: refusing it\n",
        "latin1": f"error: token file {tmp_path / 'latin1'} is not UTF-8 text\n",
        "sticky/token": f"error: token file {sticky / 'token'}: its folder {sticky} is writable by group or others "
        "(mode 1777) and token there is owned by uid 65534, who can replace it: refusing it (move it to a folder only "
        "you can write)\n",
    }
    for name, line in expected.items():
        assert serve_exit(*args, "--token-file", str(tmp_path / name)) == (2, line), name
