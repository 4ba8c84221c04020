"""``flip-reward score`` end to end against the scripted loopback judge (a test double with known answers)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pyarrow
import pyarrow.parquet
import pytest
from conftest import REPO, free_port

from flip_reward.cli import main
from flip_reward.serving.scripted_judge import flip_answer, judged_response

ROWS = [
    {"id": "a", "prompt": "Write a poem about roses", "response": "Roses bloom."},
    {
        "id": "b",
        "messages": [{"role": "user", "content": "Write a\nSQL query"}, {"role": "assistant", "content": "SELECT 1;"}],
    },
    {"id": "c", "prompt": [{"role": "user", "content": "Name a colour"}], "response": "Blue."},
]
ANSWERS = {"Roses bloom.": "Write a poem about roses", "SELECT 1;": "Write a SQL query", "Blue.": "Name a fruit"}


@pytest.fixture
def answering(script):
    script.default = lambda request: flip_answer(ANSWERS[judged_response(request)])
    return script


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def score(tmp_path, server, source, *extra):
    output = tmp_path / "out" / "scored.jsonl"
    code = main(
        [
            "score",
            str(source),
            "--output",
            str(output),
            "--judge",
            "hosted_vllm/judge",
            "--api-base",
            server.base_url,
            *extra,
        ]
    )
    return code, output


def test_scores_every_row_in_order(tmp_path, judge_server, answering, capsys):
    code, output = score(tmp_path, judge_server, write_jsonl(tmp_path / "in.jsonl", ROWS))
    assert code == 0
    rows = read_jsonl(output)
    assert [row["id"] for row in rows] == ["a", "b", "c"]
    assert [row["reward"] for row in rows] == [1.0, 1.0, 0.5]
    assert rows[1]["messages"] == ROWS[1]["messages"]
    assert rows[2]["inferred_instruction"] == "Name a fruit" and rows[2]["error"] is None
    summary = capsys.readouterr().err
    assert "rows 3 | mean reward 0.8333 | median 1.0000 | parse failures 0 | judge errors 0 | input errors 0" in summary
    assert "rewards/s" in summary and "scoring" in summary


@pytest.mark.parametrize("form", ["json", "parquet", "dataset-dir"])
def test_other_input_forms(tmp_path, judge_server, answering, form):
    flat = [
        {
            "id": row["id"],
            "prompt": row.get("prompt", "Write a\nSQL query")
            if isinstance(row.get("prompt", ""), str)
            else "Name a colour",
            "response": row.get("response", "SELECT 1;"),
        }
        for row in ROWS
    ]
    if form == "json":
        source = tmp_path / "in.json"
        source.write_text(json.dumps(flat))
    elif form == "parquet":
        source = tmp_path / "in.parquet"
        pyarrow.parquet.write_table(pyarrow.Table.from_pylist(flat), source)
    else:
        source = tmp_path / "dataset"
        source.mkdir()
        write_jsonl(source / "train.jsonl", flat)
    code, output = score(tmp_path, judge_server, source)
    assert code == 0
    assert [row["reward"] for row in read_jsonl(output)] == [1.0, 1.0, 0.5]


BAD_ROWS = [
    {"id": 1, "prompt": "Write a short poem about roses", "response": "Roses bloom."},
    {"id": 2, "prompt": "no response"},
    {"id": 3, "messages": [{"role": "user", "content": "hi"}]},
    {"id": 4, "prompt": "assistant: nobody asked", "response": "x"},
    {"id": 5, "messages": [{"role": "user", "content": "q"}, {"role": "user", "content": "r"}]},
    {"id": 6, "response": "orphan"},
]


def test_invalid_rows_stop_before_any_judge_call(tmp_path, judge_server, answering, capsys):
    code, output = score(tmp_path, judge_server, write_jsonl(tmp_path / "in.jsonl", BAD_ROWS))
    assert code == 2 and not output.exists() and judge_server.requests == []
    assert capsys.readouterr().err.splitlines() == [
        "error: row 2: field 'response': missing",
        "error: row 3: field 'messages': must be a list of at least a user and an assistant message",
        "error: row 4: field 'prompt': prompt has no user message",
        "error: row 5: field 'messages': the last message must be the assistant's response",
        "error: row 6: field 'messages': row needs 'messages', or 'prompt' and 'response'",
        "5 invalid row(s); nothing was scored (use --skip-invalid to score the rest)",
    ]


def test_skip_invalid_scores_the_rest_and_keeps_every_row(tmp_path, judge_server, answering):
    code, output = score(tmp_path, judge_server, write_jsonl(tmp_path / "in.jsonl", BAD_ROWS), "--skip-invalid")
    assert code == 0
    rows = read_jsonl(output)
    assert [row["id"] for row in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0]["reward"] == pytest.approx(2 * 0.8 / 1.8)
    assert [row["error_type"] for row in rows] == [None, "input", "input", "input", "input", "input"]
    assert rows[3]["error"] == "row 4: field 'prompt': prompt has no user message"
    assert len(judge_server.requests) == 1


def test_broken_jsonl_line_is_named(tmp_path, judge_server, capsys):
    source = tmp_path / "in.jsonl"
    source.write_text('{"prompt": "a", "response": "b"}\n{"prompt": \n')
    code, _ = score(tmp_path, judge_server, source)
    assert code == 2
    assert capsys.readouterr().err.startswith("error: row 2: field '<line>': not valid JSON")


def test_missing_input_file_and_bad_option(tmp_path, judge_server, capsys):
    code, _ = score(tmp_path, judge_server, tmp_path / "absent.jsonl")
    assert code == 2
    assert capsys.readouterr().err == f"error: input file not found: {tmp_path / 'absent.jsonl'}\n"
    with pytest.raises(SystemExit) as stop:  # refused by argparse, naming the option (JudgeConfig's rule)
        score(tmp_path, judge_server, write_jsonl(tmp_path / "in.jsonl", ROWS), "--concurrency", "0")
    assert stop.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == "flip-reward score: error: argument --concurrency: must be > 0, got 0"


def test_dead_judge_fails_fast_with_one_message(tmp_path):
    rows = [{"prompt": f"Write poem {i}", "response": f"Poem {i}"} for i in range(40)]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    started = time.perf_counter()
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "flip_reward.cli",
            "score",
            str(source),
            "-o",
            str(tmp_path / "out.jsonl"),
            "--judge",
            "hosted_vllm/judge",
            "--api-base",
            f"http://127.0.0.1:{free_port()}/v1",
            "--timeout",
            "5",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 3
    final = [line for line in completed.stderr.splitlines() if line.startswith("error: ")]
    assert len(final) == 1
    assert "is down (APIConnectionError: cannot connect to http://127.0.0.1:" in final[0]
    assert "ConnectionRefusedError" in final[0] and "Timeout" not in final[0]  # refused, not timed out
    assert final[0].endswith("); no row was scored")
    assert time.perf_counter() - started < 60
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 40


def test_restatement_guard_and_its_flag(tmp_path, judge_server, script):
    """A judge that copies back whatever it is shown: the guard removes the restated task, the flag lets it through."""
    script.default = lambda request: flip_answer(judged_response(request))
    restated = "**Task:** Write a poem about roses.\n\nRoses bloom."
    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "Write a poem about roses", "response": restated}])
    code, output = score(tmp_path, judge_server, source)
    [guarded] = read_jsonl(output)
    assert code == 0
    assert (guarded["reward"], guarded["restatement_masked"], guarded["judged_response"]) == (1 / 3, 5, "Roses bloom.")
    assert guarded["response_chars"] == len(restated)
    code, output = score(tmp_path, judge_server, source, "--no-restatement-guard")
    [unguarded] = read_jsonl(output)
    assert (unguarded["reward"], unguarded["restatement_masked"], unguarded["judged_response"]) == (8 / 11, 0, restated)


@pytest.mark.parametrize(("flag", "best"), [((), 1), (("--no-restatement-guard",), 0)])
def test_rerank_flip_guard_stops_a_restatement_winning(tmp_path, judge_server, script, flag, best):
    script.default = lambda request: flip_answer(judged_response(request))
    row = {"prompt": "Write a poem about roses", "responses": ["Write a poem about roses.", "Roses bloom."]}
    source, output = write_jsonl(tmp_path / "in.jsonl", [row]), tmp_path / "best.jsonl"
    judge = ["--judge", "hosted_vllm/judge", "--api-base", judge_server.base_url]
    args = ["rerank", str(source), "-o", str(output), *judge]
    assert main([*args, *flag]) == 0
    assert read_jsonl(output)[0]["best_index"] == best
