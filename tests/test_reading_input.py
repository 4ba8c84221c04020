"""How the commands read their input, through real ``flip-reward`` processes on real files: a line that is no JSON,
JSON nested 100,000 deep, a line over ``--max-line-bytes`` and a line that is not UTF-8 are bad rows like any other
(named by line and column, exit 2; skipped and counted under ``--skip-invalid``; every one listed by ``data check``);
a name that is no local file is refused at once unless it has the hub's owner/name form.

The judge of ``score`` is the scripted OpenAI-compatible server on loopback (flip_reward.serving.scripted_judge), a
test double for exact answers, not a model.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading

import pytest
from conftest import REPO, free_port

from flip_reward.serving.scripted_judge import flip_answer

GOOD = {"prompt": "Write a poem about roses", "response": "Roses bloom."}
RLVR = {"messages": [{"role": "user", "content": "Hi"}], "ground_truth": "Hi", "dataset": "general-flip"}
STEP = {
    "step": 0,
    "prompt": [{"role": "user", "content": "Write a poem about roses"}],
    "response": "Roses bloom.",
    "response_chars": 12,
    "inferred_instruction": "Write a poem about roses",
    "reward": 1.0,
    "error_type": None,
    "restatement_masked": 0,
}
DEEP = "[" * 100_000 + "]" * 100_000
TOO_DEEP = "field '<line>': JSON nested deeper than 100 levels (at column 101)"


def flip_reward(*args: str, cwd=REPO, env: dict | None = None) -> subprocess.CompletedProcess:
    """A real ``flip-reward`` process (hub lookups off, as everywhere in the tests)."""
    return subprocess.run(
        [sys.executable, "-m", "flip_reward.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        timeout=120,
    )


def judge_args(server) -> list[str]:
    return ["--judge", "hosted_vllm/judge", "--api-base", server.base_url, "--retries", "0"]


def lines_file(path, *lines: str | bytes):
    path.write_bytes(b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines))
    return path


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(
    ("command", "good", "row"),
    [
        ("score", GOOD, "row"),
        ("data check", RLVR, "row"),
        ("data convert", GOOD, "row"),
        ("inspect", STEP, "line"),
    ],
)
def test_json_nested_100000_deep_is_one_error_naming_the_line(tmp_path, command, good, row):
    source = lines_file(tmp_path / "in.jsonl", json.dumps(good), DEEP)
    out = {"score": ["-o", tmp_path / "out.jsonl"], "data convert": ["-o", tmp_path / "out.jsonl"]}.get(command, [])
    judge = ["--judge", "hosted_vllm/judge", "--api-base", "http://127.0.0.1:9/v1"] if command == "score" else []
    done = flip_reward(*command.split(), source, *out, *judge)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[0] == f"error: {row} 2: {TOO_DEEP}"
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_a_deep_json_file_is_named_with_line_and_column(tmp_path):
    source = tmp_path / "in.json"
    source.write_text("[\n" + DEEP + "\n]")
    done = flip_reward("data", "check", source)
    assert (done.returncode, done.stderr) == (
        2,
        f"error: {source}: JSON nested deeper than 100 levels (at line 2 column 100)\n",
    )


def test_score_skip_invalid_skips_and_counts_lines_that_are_not_json(tmp_path, judge_server, script):
    script.default = lambda request: flip_answer("Write a poem about roses")
    source = lines_file(tmp_path / "in.jsonl", json.dumps(GOOD), '{"prompt": "Hi", "response": "x"', DEEP, b"\xff{}")
    output = tmp_path / "out.jsonl"
    done = flip_reward("score", source, "-o", output, "--skip-invalid", *judge_args(judge_server))
    assert done.returncode == 0, done.stderr
    assert "| input errors 3 |" in done.stderr.splitlines()[-1]
    rows = read_jsonl(output)
    assert [(row.get("prompt"), row["reward"], row["error_type"]) for row in rows] == [
        ("Write a poem about roses", 1.0, None),
        (None, 0.0, "input"),
        (None, 0.0, "input"),
        (None, 0.0, "input"),
    ]
    assert [row["error"] for row in rows[1:]] == [
        "row 2: field '<line>': not valid JSON (Expecting ',' delimiter at column 33)",
        f"row 3: {TOO_DEEP}",
        "row 4: field '<line>': not valid UTF-8 (byte 0xff at column 1)",
    ]
    assert len(judge_server.requests) == 1


def test_without_skip_invalid_score_names_every_bad_line_and_calls_no_judge(tmp_path, judge_server):
    source = lines_file(tmp_path / "in.jsonl", "not json", json.dumps(GOOD), '{"prompt": "Hi"} extra')
    done = flip_reward("score", source, "-o", tmp_path / "out.jsonl", *judge_args(judge_server))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: row 1: field '<line>': not valid JSON (Expecting value at column 1)",
        "error: row 3: field '<line>': not valid JSON (Extra data at column 18)",
        "2 invalid row(s); nothing was scored (use --skip-invalid to score the rest)",
    ]
    assert judge_server.requests == []


def test_data_check_names_every_bad_row_past_lines_that_are_not_json(tmp_path):
    source = lines_file(
        tmp_path / "in.jsonl", json.dumps(RLVR), "{oops", json.dumps({"messages": []}), '{"a": "unterminated', DEEP
    )
    done = flip_reward("data", "check", source)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: row 2: field '<line>': not valid JSON (Expecting property name enclosed in double quotes at column 2)",
        "error: row 3: field 'ground_truth': missing",
        "error: row 4: field '<line>': not valid JSON (Unterminated string starting at column 7)",
        f"error: row 5: {TOO_DEEP}",
        f"{source}: 4 of 5 rows invalid",
    ]


def test_data_convert_skip_invalid_skips_lines_that_are_not_json(tmp_path):
    source = lines_file(tmp_path / "in.jsonl", "{oops", json.dumps(GOOD), DEEP)
    output = tmp_path / "out.jsonl"
    done = flip_reward("data", "convert", source, "-o", output, "--skip-invalid")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "error: row 1: field '<line>': not valid JSON (Expecting property name enclosed in double quotes at column 2)",
        f"error: row 3: {TOO_DEEP}",
        "2 invalid row(s) skipped",
    ]
    assert [row["ground_truth"] for row in read_jsonl(output)] == ["Write a poem about roses"]


@pytest.mark.parametrize("command", ["score", "data check", "data convert"])
def test_a_line_past_max_line_bytes_is_a_bad_row(tmp_path, judge_server, command):
    long_row = json.dumps({**GOOD, "response": "x" * 1000})  # 1,055 bytes
    at_limit = json.dumps({**GOOD, "response": "y" * (1000 - len(json.dumps({**GOOD, "response": ""})))})
    assert len(at_limit) == 1000
    source = lines_file(tmp_path / "in.jsonl", at_limit, long_row, json.dumps(GOOD))
    extra = {
        "score": ["-o", tmp_path / "out.jsonl", *judge_args(judge_server)],
        "data convert": ["-o", tmp_path / "o.jsonl"],
    }
    done = flip_reward(*command.split(), source, "--max-line-bytes", "1000", *extra.get(command, []))
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    expected = ["error: row 2: field '<line>': longer than 1000 bytes (--max-line-bytes)"]
    if command == "data check":  # the rows are no RLVR rows: each is named
        expected = ["error: row 1: field 'messages': missing", *expected, "error: row 3: field 'messages': missing"]
    assert errors == expected
    assert judge_server.requests == []


def test_the_default_line_limit_is_16_mib(tmp_path):
    at_limit = json.dumps({**RLVR, "pad": ""})
    at_limit = json.dumps({**RLVR, "pad": "p" * (16 * 1024 * 1024 - len(at_limit))})
    source = lines_file(tmp_path / "in.jsonl", at_limit, at_limit[:-1] + " }")
    done = flip_reward("data", "check", source)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: row 2: field '<line>': longer than 16777216 bytes (--max-line-bytes)",
        f"{source}: 1 of 2 rows invalid",
    ]


def test_inspect_names_the_line_and_column_of_invalid_utf8(tmp_path):
    source = lines_file(tmp_path / "samples.jsonl", json.dumps(STEP), b"", json.dumps(STEP).encode()[:-2] + b'\xff"}')
    done = flip_reward("inspect", source)
    assert done.returncode == 2
    column = len(json.dumps(STEP)) - 1
    assert done.stderr.splitlines() == [
        f"error: line 3: field '<line>': not valid UTF-8 (byte 0xff at column {column})",
        f"1 problem(s) in {source}; nothing was inspected",
    ]
    assert not (tmp_path / "inspect.json").exists()


def test_inspect_refuses_a_line_past_max_line_bytes(tmp_path):
    source = lines_file(tmp_path / "samples.jsonl", json.dumps(STEP), json.dumps({**STEP, "response": "z" * 500}))
    done = flip_reward("inspect", source, "--max-line-bytes", "300")
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == "error: line 2: field '<line>': longer than 300 bytes (--max-line-bytes)"


def test_a_bare_name_that_is_no_local_file_is_refused_without_a_hub_lookup(tmp_path):
    done = flip_reward("score", "sample_scoring", "-o", tmp_path / "out.jsonl", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (
        2,
        "error: input not found: sample_scoring (no local file or directory of that name; only a name of the form "
        "owner/name is looked up on the Hugging Face Hub)\n",
    )


def test_a_missing_path_in_a_local_folder_is_refused_without_a_hub_lookup(tmp_path):
    (tmp_path / "data").mkdir()
    done = flip_reward("score", "data/sample_scoring", "-o", tmp_path / "out.jsonl", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (
        2,
        "error: input not found: data/sample_scoring (no such file or directory in the local folder data/; a Hugging "
        "Face dataset owner/name is looked up on the hub only when no local folder has the owner's name)\n",
    )


def test_an_owner_name_that_is_no_local_path_is_tried_on_the_hub(tmp_path):
    done = flip_reward("data", "check", "owner/absent", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(
        "error: input not found: owner/absent is no local file or directory, and as a Hugging Face dataset: "
    )


def test_a_hub_name_with_the_hub_unreachable_is_one_line_at_once(tmp_path):
    """HF_HUB_OFFLINE unset and HF_ENDPOINT a closed loopback port (no network): one TCP connect is refused, and
    the command says so in one line, without datasets' retries (their warnings would be on stderr)."""
    port = free_port()
    done = flip_reward(
        "score", "owner/absent", "-o", tmp_path / "out.jsonl", "--judge", "hosted_vllm/judge", "--api-base",
        "http://127.0.0.1:9/v1", cwd=tmp_path, env={"HF_HUB_OFFLINE": "", "HF_ENDPOINT": f"http://127.0.0.1:{port}"},
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "error: input not found: owner/absent is no local file or directory, and as a Hugging Face dataset: the "
        f"Hugging Face Hub cannot be reached (http://127.0.0.1:{port}: Connection refused (errno 111)); set "
        "HF_HUB_OFFLINE=1 to read a copy cached locally\n"
    )  # no "Retrying in ...", no "thrown while requesting HEAD"


class RecordingProxy(http.server.BaseHTTPRequestHandler):
    """A loopback stand-in for an HTTP proxy: records each request line and answers 404 at once."""

    seen: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(self.requestline)
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hub_proxy():
    """A real loopback server playing the proxy (no network): the requests it saw."""
    RecordingProxy.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RecordingProxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    server.server_close()


HUB_NOT_FOUND = (
    "error: input not found: owner/absent is no local file or directory, and as a Hugging Face dataset: Couldn't "
    "find any data file at {folder}/owner/absent. Couldn't find 'owner/absent' on the Hugging Face Hub either: "
    "LocalEntryNotFoundError: An error happened while trying to locate the file on the Hub and we cannot find the "
    "requested files in the local cache. Please check your connection and try again or make sure your Internet "
    "connection is on.\n"
)


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"])
def test_a_hub_name_behind_a_proxy_is_not_checked_by_a_direct_connect(tmp_path, hub_proxy, variable):
    """HF_ENDPOINT a closed loopback port, reached only through the proxy: no pre-check of our own (it would say
    "cannot be reached"); datasets asks the proxy, whose 404 it reports."""
    port = free_port()
    env = {"HF_HUB_OFFLINE": "", "HF_ENDPOINT": f"http://127.0.0.1:{port}", variable: f"http://127.0.0.1:{hub_proxy}"}
    done = flip_reward("data", "check", "owner/absent", cwd=tmp_path, env=env)
    assert (done.returncode, done.stderr) == (2, HUB_NOT_FOUND.format(folder=tmp_path))
    assert f"HEAD http://127.0.0.1:{port}/datasets/owner/absent/resolve/main/README.md HTTP/1.1" in RecordingProxy.seen


def test_a_hub_endpoint_that_no_proxy_names_is_checked_directly(tmp_path, hub_proxy):
    port = free_port()
    env = {"HF_HUB_OFFLINE": "", "HF_ENDPOINT": f"http://127.0.0.1:{port}", "HTTP_PROXY": f"http://127.0.0.1:{hub_proxy}",
           "NO_PROXY": "127.0.0.1"}  # fmt: skip
    done = flip_reward("data", "check", "owner/absent", cwd=tmp_path, env=env)
    assert (done.returncode, done.stderr) == (
        2,
        "error: input not found: owner/absent is no local file or directory, and as a Hugging Face dataset: the "
        f"Hugging Face Hub cannot be reached (http://127.0.0.1:{port}: Connection refused (errno 111)); set "
        "HF_HUB_OFFLINE=1 to read a copy cached locally\n",
    )
    assert RecordingProxy.seen == []


def test_a_hub_name_with_datasets_offline_is_not_checked(tmp_path):
    """HF_DATASETS_OFFLINE=1 alone makes datasets offline: it answers from its cache at once, without our check."""
    port = free_port()
    env = {"HF_HUB_OFFLINE": "", "HF_DATASETS_OFFLINE": "1", "HF_ENDPOINT": f"http://127.0.0.1:{port}"}
    done = flip_reward("data", "check", "owner/absent", cwd=tmp_path, env=env)
    assert (done.returncode, done.stderr) == (
        2,
        "error: input not found: owner/absent is no local file or directory, and as a Hugging Face dataset: "
        "Couldn't reach 'owner/absent' on the Hub (OfflineModeIsEnabled)\n",
    )


@pytest.mark.parametrize(("name", "how"), [("/dev/stdin", "redirected"), ("/dev/stdin", "piped"), ("-", "piped")])
def test_standard_input_is_refused_the_same_way_redirected_or_piped(tmp_path, name, how):
    source = lines_file(tmp_path / "in.jsonl", json.dumps(GOOD))
    command = [sys.executable, "-m", "flip_reward.cli", "score", name, "-o", str(tmp_path / "out.jsonl"), "--judge",
               "hosted_vllm/judge", "--api-base", "http://127.0.0.1:9/v1"]  # fmt: skip
    with open(source, "rb") as rows:
        feed = {"stdin": rows} if how == "redirected" else {"input": rows.read()}
        done = subprocess.run(command, capture_output=True, cwd=REPO, timeout=120, **feed)
    assert (done.returncode, done.stderr.decode()) == (
        2,
        f"error: unsupported input {name}: standard input is not read; expected a .jsonl, .json, .parquet file or a "
        "dataset name (save the rows to a .jsonl file first)\n",
    )
    assert not (tmp_path / "out.jsonl").exists()


def test_score_reads_ahead_a_bounded_window_and_writes_every_row_in_order(tmp_path, judge_server, script):
    """With --concurrency 1, score holds at most 8 rows past the oldest unwritten one; all 50 come out, in order."""
    script.default = lambda request: flip_answer("Write a poem about roses")
    rows = [{**GOOD, "response": f"Roses bloom {index}.", "id": index} for index in range(50)]  # distinct requests
    rows[17] = {"id": 17, "prompt": "Write a poem about roses"}  # an invalid row inside the stream
    source = lines_file(tmp_path / "in.jsonl", *map(json.dumps, rows))
    output = tmp_path / "out.jsonl"
    done = flip_reward("score", source, "-o", output, "--skip-invalid", "--concurrency", "1", *judge_args(judge_server))
    assert done.returncode == 0, done.stderr
    scored = read_jsonl(output)
    assert [row["id"] for row in scored] == list(range(50))
    assert [row["reward"] for row in scored] == [0.0 if index == 17 else 1.0 for index in range(50)]
    assert scored[17]["error"] == "row 18: field 'response': missing"
    assert len(judge_server.requests) == 49


def test_inspect_reads_the_output_of_score_skip_invalid(tmp_path, judge_server, script):
    """Rows that score --skip-invalid writes for unreadable lines hold only the result fields (error_type "input"):
    inspect counts them as input errors, even when the first line is one."""
    script.default = lambda request: flip_answer("Write a poem about roses")
    source = lines_file(tmp_path / "in.jsonl", "not json", json.dumps(GOOD), json.dumps({"prompt": 5}), b"\xff{}")
    output = tmp_path / "out.jsonl"
    assert flip_reward("score", source, "-o", output, "--skip-invalid", *judge_args(judge_server)).returncode == 0
    done = flip_reward("inspect", output, "--output-dir", tmp_path / "report")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "report" / "inspect.json").read_text())
    overall = report["overall"]
    assert (report["kind"], overall["completions"], overall["mean_reward"]) == ("score", 4, 0.25)
    assert (overall["input_error_rate"], overall["judge_error_rate"], overall["parse_failure_rate"]) == (0.75, 0, 0)
    assert [(top["line"], top["reward"]) for top in report["top"]] == [(2, 1.0), (1, 0.0), (3, 0.0), (4, 0.0)]
    assert "input errors (invalid input rows, reward 0.0): 3 (0.7500)" in done.stdout.splitlines()
