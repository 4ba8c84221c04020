"""What ``flip-reward score``, ``eval``, ``rerank`` and ``data`` share: row numbers, invalid and empty inputs, the
output check made before any judge call, rows written as they complete (Ctrl-C keeps them, ``--cache`` resumes), and
the exit status when a judge refuses every request.

The judge is the scripted OpenAI-compatible server on loopback (flip_reward.serving.scripted_judge), a test double
for exact answers and faults, not a model.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, free_port

from flip_reward.cli import main
from flip_reward.serving.scripted_judge import Reply, ScriptedJudgeServer, flip_answer, judged_response

SCORE_ROW = {"prompt": "Write a poem about roses", "response": "Roses bloom."}
EVAL_ROW = {"id": "e1", "prompt": "Name a colour", "chosen": ["Blue."], "rejected": ["Seven."], "subset": "Alpha"}
RERANK_ROW = {"prompt": "Name a colour", "responses": ["Blue.", "Seven."]}
RLVR_ROW = {"messages": [{"role": "user", "content": "Hi"}], "ground_truth": "Hi", "dataset": "general-flip"}
# command -> (a valid row, an invalid row, the error naming it when it is on line 4)
COMMANDS = {
    "score": (SCORE_ROW, {"prompt": "Hi"}, "field 'response': missing"),
    "eval": (EVAL_ROW, {**EVAL_ROW, "id": "e2", "rejected": None}, "field 'rejected': missing"),
    "rerank": (RERANK_ROW, {"prompt": "Hi"}, "field 'responses': missing"),
    "data check": (RLVR_ROW, {"ground_truth": "x", "dataset": "general-flip"}, "field 'messages': missing"),
    "data convert": (
        SCORE_ROW,
        {"text": "x"},
        "field 'messages': row needs 'messages', 'conversation(s)' or 'prompt'",
    ),
}


def command_line(command: str, source, tmp_path, server=None, output=None) -> list[str]:
    """The arguments of ``command`` on ``source``, writing under ``tmp_path`` unless ``output`` says where."""
    judge = ["--judge", "hosted_vllm/judge", "--api-base", server.base_url if server else "http://127.0.0.1:9/v1"]
    if command == "eval":
        return ["eval", str(source), "--output-dir", str(output or tmp_path / "eval"), "--retries", "0", *judge]
    if command == "data check":
        return ["data", "check", str(source)]
    if command == "data convert":
        return ["data", "convert", str(source), "-o", str(output or tmp_path / "rlvr.jsonl")]
    return [command, str(source), "-o", str(output or tmp_path / f"{command}.jsonl"), "--retries", "0", *judge]


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_rows_are_named_by_their_physical_line(tmp_path, judge_server, capsys, command):
    """Blank lines are skipped but counted: the bad row on line 4 is row 4, in every command."""
    good, bad, expected = COMMANDS[command]
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(good) + "\n\n   \n" + json.dumps(bad) + "\n")
    assert main(command_line(command, source, tmp_path, judge_server)) == 2
    assert f"error: row 4: {expected}" in capsys.readouterr().err.splitlines()
    assert judge_server.requests == []


def test_row_numbers_of_a_json_list_are_positions(tmp_path, judge_server, capsys):
    source = tmp_path / "in.json"
    source.write_text(json.dumps([SCORE_ROW, {"prompt": "Hi"}], indent=2))
    assert main(command_line("score", source, tmp_path, judge_server)) == 2
    assert capsys.readouterr().err.splitlines()[0] == "error: row 2: field 'response': missing"


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("content", ["", "\n  \n"], ids=["empty", "blank-lines"])
def test_an_empty_input_is_an_error(tmp_path, judge_server, capsys, command, content):
    source = tmp_path / "in.jsonl"
    source.write_text(content)
    assert main(command_line(command, source, tmp_path, judge_server)) == 2
    assert capsys.readouterr().err == f"error: {source} has no rows\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.jsonl"]
    assert judge_server.requests == []


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_row_that_is_not_an_object_is_an_invalid_row(tmp_path, judge_server, capsys, command):
    good = COMMANDS[command][0]
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(good) + '\n[1, 2]\n"text"\n')
    assert main(command_line(command, source, tmp_path, judge_server)) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[:2] == [
        "error: row 2: field '<row>': expected a JSON object, got list",
        "error: row 3: field '<row>': expected a JSON object, got str",
    ]


def test_score_skip_invalid_keeps_a_row_that_is_not_an_object(tmp_path, judge_server, script):
    script.default = lambda request: flip_answer("Write a poem about roses")
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(SCORE_ROW) + "\n[1, 2]\n")
    assert main([*command_line("score", source, tmp_path, judge_server), "--skip-invalid"]) == 0
    first, second = read_jsonl(tmp_path / "score.jsonl")
    assert first["reward"] == 1.0
    assert (second["row"], second["reward"], second["error_type"]) == ([1, 2], 0.0, "input")
    assert second["error"] == "row 2: field '<row>': expected a JSON object, got list"
    assert len(judge_server.requests) == 1


@pytest.mark.parametrize(
    ("command", "output", "expected"),
    [
        ("score", "scored.csv", "--output {out}: cannot write '.csv' files; use .jsonl"),
        ("score", "scored", "--output {out}: cannot write a file without an extension; use .jsonl"),
        ("score", "taken.jsonl/", "--output {out}: is a directory, expected a file"),
        ("score", "a-file/scored.jsonl", "--output {out}: cannot create {tmp}/a-file: {tmp}/a-file is a file"),
        ("rerank", "best.json", "--output {out}: cannot write '.json' files; use .jsonl"),
        ("eval", "a-file", "--output-dir {out}: is a file, expected a directory"),
        ("eval", "a-file/eval", "--output-dir {out}: cannot create {out}: {tmp}/a-file is a file"),
        ("data convert", "rlvr.csv", "--output {out}: cannot write '.csv' files; use .jsonl or .parquet"),
    ],
)
def test_the_output_is_checked_before_any_judge_call(tmp_path, judge_server, capsys, command, output, expected):
    (tmp_path / "a-file").write_text("not a directory")
    (tmp_path / "taken.jsonl").mkdir()
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(COMMANDS[command][0]) + "\n")
    out = str(tmp_path / output).rstrip("/")
    assert main(command_line(command, source, tmp_path, judge_server, output=out)) == 2
    assert capsys.readouterr().err == "error: " + expected.format(out=out, tmp=tmp_path) + "\n"
    assert judge_server.requests == []


def score_subprocess(source, output, base_url, cache) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flip_reward.cli",
            "score",
            str(source),
            "-o",
            str(output),
            "--judge",
            "hosted_vllm/judge",
            "--api-base",
            base_url,
            "--cache",
            str(cache),
            "--timeout",
            "120",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def test_ctrl_c_keeps_the_rows_scored_and_the_cache_resumes(tmp_path):
    """Rows 0-2 are answered at once, the rest only after 10 s: SIGINT then ends the run with exit 130, the
    three rows on disk in input order, and a rerun with the same --cache (and judge URL) asks the judge only about
    the others."""
    rows = [{"id": index, "prompt": f"Write poem {index}", "response": f"Poem {index}."} for index in range(8)]
    source, output, cache = tmp_path / "in.jsonl", tmp_path / "scored.jsonl", tmp_path / "cache"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))

    def slow_after_three(request: dict) -> Reply:
        text = judged_response(request)
        return Reply(content=flip_answer(text.replace("Poem", "Write poem")), delay=0 if text < "Poem 3" else 10)

    with ScriptedJudgeServer(slow_after_three) as server:
        run = score_subprocess(source, output, server.base_url, cache)
        deadline = time.monotonic() + 60
        while not (output.exists() and len(output.read_text().splitlines()) == 3) and time.monotonic() < deadline:
            time.sleep(0.1)
        while len(server.requests) < len(rows) and time.monotonic() < deadline:
            time.sleep(0.1)
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=30)
    assert run.returncode == 130, err
    assert err.splitlines()[-1] == (
        f"interrupted: 3 of 8 rows written to {output}; run the same command again to resume: "
        f"the judge cache {cache} keeps every usable answer received (an unparsable or cut-off answer is asked again)"
    )
    kept = read_jsonl(output)
    assert [(row["id"], row["reward"]) for row in kept] == [(0, 1.0), (1, 1.0), (2, 1.0)]
    again = ScriptedJudgeServer(lambda request: flip_answer(judged_response(request)), port=server.port)
    with again as server:  # the same URL: it is part of the cache key
        rerun = score_subprocess(source, output, server.base_url, cache)
        rerun.communicate(timeout=120)
        asked = sorted(judged_response(request) for request in server.requests)
    assert rerun.returncode == 0
    assert asked == [f"Poem {index}." for index in range(3, 8)]
    assert [row["cached"] for row in read_jsonl(output)] == [True] * 3 + [False] * 5


FASTAPI_404 = Reply(status=404, body='{"detail": "Not Found"}')  # a vLLM server asked at a base URL without /v1
VLLM_404 = Reply(
    status=404,
    body=json.dumps({"object": "error", "message": "The model `judge` does not exist.", "type": "NotFoundError"}),
)


def test_score_exits_1_with_the_servers_reason_when_every_request_is_refused(tmp_path, capsys):
    with ScriptedJudgeServer(lambda request: FASTAPI_404) as server:
        source = tmp_path / "in.jsonl"
        source.write_text(json.dumps(SCORE_ROW) + "\n" + json.dumps(SCORE_ROW) + "\n")
        assert main(command_line("score", source, tmp_path, server)) == 1
        judge = f"judge hosted_vllm/judge at {server.base_url}"
    rows = read_jsonl(tmp_path / "score.jsonl")
    assert [row["error"] for row in rows] == [f"{judge} failed: NotFoundError: HTTP 404: Not Found"] * 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: {judge} refused the requests (HTTP 404: Not Found): check that the server serves the model named "
        "by --judge and that --api-base ends in /v1; no row was scored"
    )


def test_rerank_and_eval_exit_1_when_every_request_is_refused(tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    with ScriptedJudgeServer(lambda request: VLLM_404) as server:
        judge = f"judge hosted_vllm/judge at {server.base_url}"
        source.write_text(json.dumps(RERANK_ROW) + "\n")
        assert main(command_line("rerank", source, tmp_path, server)) == 1
        assert read_jsonl(tmp_path / "rerank.jsonl")[0]["error"] == (
            f"response 0: {judge} failed: NotFoundError: HTTP 404: The model `judge` does not exist."
        )
        refused = f"error: {judge} refused the requests (HTTP 404: The model `judge` does not exist.): check"
        assert capsys.readouterr().err.splitlines()[-1].startswith(refused)
        source.write_text(json.dumps(EVAL_ROW) + "\n")
        assert main(command_line("eval", source, tmp_path, server)) == 1
        last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith(refused) and last.endswith("; no example was judged")


def test_a_refusal_among_answers_is_no_failure(tmp_path, judge_server, script):
    """One 400 and one answer: the row that was scored makes it a run with an error, not a failed run (exit 0)."""
    script.queue = [Reply(status=400, content="max_tokens is too large")]
    script.default = lambda request: flip_answer("Write a poem about roses")
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(SCORE_ROW) + "\n" + json.dumps({**SCORE_ROW, "response": "Roses!"}) + "\n")
    assert main([*command_line("score", source, tmp_path, judge_server), "--concurrency", "1"]) == 0
    errors = [row["error"] for row in read_jsonl(tmp_path / "score.jsonl")]
    assert errors[0].endswith("failed: BadRequestError: HTTP 400: max_tokens is too large") and errors[1] is None


ROOM = (
    "max_tokens {tokens} leaves too little of max_context_length 8192 for the judge's prompt: the FlipReward "
    "prompt takes about 432 tokens and a response needs at least 256; use max_tokens <= 7472 or a larger "
    "max_context_length"
)


@pytest.mark.parametrize("tokens", ["8192", "9000", "7473"])
def test_max_tokens_that_leaves_no_room_for_the_prompt_is_rejected_before_any_call(
    tmp_path, judge_server, capsys, tokens
):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(SCORE_ROW) + "\n")
    args = [*command_line("score", source, tmp_path, judge_server), "--max-tokens", tokens]
    assert main([*args, "--max-context-length", "8192"]) == 2
    assert capsys.readouterr().err == "error: " + ROOM.format(tokens=tokens) + "\n"
    assert judge_server.requests == [] and not (tmp_path / "score.jsonl").exists()


def test_the_largest_max_tokens_that_leaves_room_is_accepted(tmp_path, judge_server, script):
    script.default = lambda request: flip_answer("Write a poem about roses")
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(SCORE_ROW) + "\n")
    args = [*command_line("score", source, tmp_path, judge_server), "--max-tokens", "7472"]
    assert main([*args, "--max-context-length", "8192"]) == 0
    assert read_jsonl(tmp_path / "score.jsonl")[0]["reward"] == 1.0


@pytest.mark.parametrize(
    ("judge", "api_base", "expected"),
    [
        (
            "Qwen/Qwen3-4B",
            "http://127.0.0.1:9/v1",
            "judge 'Qwen/Qwen3-4B' names no litellm provider: prefix one, e.g. 'hosted_vllm/Qwen/Qwen3-4B' for a "
            "vLLM or transformers server (with its base URL), or 'openai/...', 'anthropic/...'",
        ),
        (
            "hosted_vllm/Qwen/Qwen3-4B",
            None,
            "judge 'hosted_vllm/Qwen/Qwen3-4B' needs the base URL of its server: pass --api-base "
            "(api_base=) or set HOSTED_VLLM_API_BASE, e.g. http://127.0.0.1:8000/v1",
        ),
    ],
    ids=["no-provider", "hosted-vllm-without-base"],
)
def test_a_judge_that_cannot_be_called_is_one_error_line_before_any_call(
    tmp_path, capsys, monkeypatch, judge, api_base, expected
):
    monkeypatch.delenv("HOSTED_VLLM_API_BASE", raising=False)
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(SCORE_ROW) + "\n")
    base = ["--api-base", api_base] if api_base else []
    for command in ("score", "rerank", "eval"):
        row = {"score": SCORE_ROW, "rerank": RERANK_ROW, "eval": EVAL_ROW}[command]
        source.write_text(json.dumps(row) + "\n")
        args = [a for a in command_line(command, source, tmp_path) if a not in ("--api-base", "http://127.0.0.1:9/v1")]
        judge_at = args.index("hosted_vllm/judge")
        args[judge_at] = judge
        assert main([*args, *base]) == 2
        assert capsys.readouterr() == ("", f"error: {expected}\n")  # litellm's banner on stdout is off too


def test_an_unknown_preset_path_is_shown_as_given(capsys):
    assert main(["train", "--preset", "my/presets/fast.env", "--dry-run"]) == 2
    assert capsys.readouterr().err == "error: no preset file my/presets/fast.env\n"
    assert main(["train", "--preset", "fast.env", "--dry-run"]) == 2
    assert capsys.readouterr().err == "error: no preset file fast.env\n"


def test_the_breaker_message_states_its_threshold(tmp_path):
    """Against a dead port: the rows refused once the breaker opened say after how many failures it opens."""
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({**SCORE_ROW, "response": f"Poem {i}."}) + "\n" for i in range(12)))
    dead = ScriptedJudgeServer(lambda request: "")
    dead.port = free_port()
    assert main([*command_line("score", source, tmp_path, dead), "--concurrency", "1"]) == 3
    refused = [row["error"] for row in read_jsonl(tmp_path / "score.jsonl") if "is unreachable" in row["error"]]
    assert len(refused) == 7 and all(  # 12 rows, one at a time: 5 failed connections open it
        re.fullmatch(
            rf"judge hosted_vllm/judge at {re.escape(dead.base_url)} is unreachable: \d+ consecutive connection "
            r"failures, the breaker opens after 5 \(last: .*\); not sending requests for another \d+s",
            error,
        )
        for error in refused
    )
