"""`flip-reward data convert` and `flip-reward data check`: RLVR rows for open-instruct, and the bundled samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flip_reward.cli import main
from flip_reward.data.rlvr import KNOWN_VERIFIERS

REPO = Path(__file__).resolve().parents[1]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_convert_chat_sharegpt_and_prompt_rows(tmp_path: Path, capsys) -> None:
    source = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {
                "messages": [
                    {"role": "system", "content": "Be kind."},
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello!"},
                    {"role": "user", "content": [{"type": "text", "text": "Write a poem\nabout rain."}]},
                    {"role": "assistant", "content": "Drops..."},
                ]
            },
            {"conversations": [{"from": "human", "value": "Name three primes."}, {"from": "gpt", "value": "2, 3, 5"}]},
            {"prompt": "Summarize this:\nThe cat sat.", "response": "A cat sat."},
            {"prompt": "system: Be brief.\nuser: Why is the sky blue?"},
        ],
    )
    assert main(["data", "convert", str(source), "-o", str(tmp_path / "out.jsonl")]) == 0
    rows = read_jsonl(tmp_path / "out.jsonl")
    assert rows[0] == {
        "messages": [
            {"role": "system", "content": "Be kind."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Write a poem\nabout rain."},
        ],
        "ground_truth": "Write a poem\nabout rain.",
        "dataset": "general-flip",
    }
    assert rows[1] == {
        "messages": [{"role": "user", "content": "Name three primes."}],
        "ground_truth": "Name three primes.",
        "dataset": "general-flip",
    }
    assert rows[2]["messages"] == [{"role": "user", "content": "Summarize this:\nThe cat sat."}]
    assert rows[3]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Why is the sky blue?"},
    ]
    assert "wrote 4 rows" in capsys.readouterr().out


def test_convert_for_the_baseline_differs_only_in_dataset_and_writes_parquet(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "Tell me a joke.", "response": "..."}])
    assert main(["data", "convert", str(source), "-o", str(tmp_path / "flip.jsonl")]) == 0
    assert (
        main(["data", "convert", str(source), "-o", str(tmp_path / "judge.parquet"), "--verifier", "general-quality"])
        == 0
    )
    import pyarrow.parquet

    judge = pyarrow.parquet.read_table(tmp_path / "judge.parquet").to_pylist()
    flip = read_jsonl(tmp_path / "flip.jsonl")
    assert judge == [{**flip[0], "dataset": "general-quality"}]
    assert main(["data", "check", str(tmp_path / "judge.parquet")]) == 0


def test_convert_reports_bad_rows_by_number_and_field(tmp_path: Path, capsys) -> None:
    source = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"prompt": "Fine."},
            {"messages": [{"role": "assistant", "content": "No user here."}]},
            {"text": "no prompt field"},
            {"conversations": [{"from": "robot", "value": "?"}]},
        ],
    )
    out = tmp_path / "out.jsonl"
    assert main(["data", "convert", str(source), "-o", str(out)]) == 2
    errors = capsys.readouterr().err
    assert "row 2: field 'messages': no user message" in errors
    assert "row 3: field 'messages'" in errors
    assert "row 4: field 'conversations': message 0 has an unknown 'from'" in errors
    assert not out.exists()
    assert main(["data", "convert", str(source), "-o", str(out), "--skip-invalid"]) == 0
    assert len(read_jsonl(out)) == 1


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"ground_truth": "x", "dataset": "general-flip"}, "row 1: field 'messages': missing"),
        (
            {"messages": [], "ground_truth": "x", "dataset": "general-flip"},
            "field 'messages': must be a non-empty list",
        ),
        (
            {"messages": [{"role": "human", "content": "Hi"}], "ground_truth": "x", "dataset": "general-flip"},
            "field 'messages[0].role'",
        ),
        (
            {
                "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
                "ground_truth": "x",
                "dataset": "general-flip",
            },
            "field 'messages[0].content': must be a string",
        ),
        (
            {"messages": [{"role": "system", "content": "Rules."}], "ground_truth": "x", "dataset": "general-flip"},
            "the prompt has no user message",
        ),
        (
            {"messages": [{"role": "user", "content": "  "}], "ground_truth": "x", "dataset": "general-flip"},
            "the last user message (the instruction) is empty",
        ),
        ({"messages": [{"role": "user", "content": "Hi"}], "dataset": "general-flip"}, "field 'ground_truth': missing"),
        (
            {"messages": [{"role": "user", "content": "Hi"}], "ground_truth": "x", "dataset": "general_flip"},
            "unknown verifier 'general_flip'",
        ),
        (
            {
                "messages": [{"role": "user", "content": "Hi"}],
                "ground_truth": ["x"],
                "dataset": ["general-flip", "math"],
            },
            "field 'ground_truth': must be a list of 2",
        ),
        ({"messages": [{"role": "user", "content": "Hi"}], "ground_truth": "x", "dataset": 3}, "field 'dataset'"),
    ],
)
def test_check_names_the_row_and_field(tmp_path: Path, capsys, row: dict, expected: str) -> None:
    path = write_jsonl(tmp_path / "rlvr.jsonl", [row])
    assert main(["data", "check", str(path)]) == 2
    assert expected in capsys.readouterr().err


def test_check_accepts_multi_verifier_rows_a_trailing_response_and_other_plugins_on_request(
    tmp_path: Path, capsys
) -> None:
    rows = [
        {
            "messages": [{"role": "user", "content": "2+2?"}],
            "ground_truth": ["4", "2+2?"],
            "dataset": ["math", "general-flip"],
        },
        {
            "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
            "ground_truth": "Hi",
            "dataset": "general-quality",
        },
    ]
    path = write_jsonl(tmp_path / "rlvr.jsonl", rows)
    assert main(["data", "check", str(path)]) == 0
    assert "2 rows ok; verifiers: general-flip 1, general-quality 1, math 1" in capsys.readouterr().out
    other = write_jsonl(tmp_path / "other.jsonl", [{**rows[1], "dataset": "my-plugin"}])
    assert main(["data", "check", str(other)]) == 2
    assert main(["data", "check", str(other), "--allow-unknown-verifiers"]) == 0


def test_check_reports_broken_json_lines(tmp_path: Path, capsys) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text(
        '{"messages": [{"role": "user", "content": "Hi"}], "ground_truth": "Hi", "dataset": "math"}\n{oops\n'
    )
    assert main(["data", "check", str(path)]) == 2
    assert "row 2: field '<line>': not valid JSON" in capsys.readouterr().err


def test_bundled_samples_are_valid_and_differ_only_in_dataset(capsys) -> None:
    flip = REPO / "data" / "sample_rlvr_flip.jsonl"
    judge = REPO / "data" / "sample_rlvr_llmjudge.jsonl"
    assert main(["data", "check", str(flip)]) == 0 and main(["data", "check", str(judge)]) == 0
    flip_rows, judge_rows = read_jsonl(flip), read_jsonl(judge)
    assert len(flip_rows) >= 24  # enough prompts for a 1-GPU smoke run (8 prompts per step)
    assert {row["dataset"] for row in flip_rows} == {"general-flip"}
    assert [{**row, "dataset": "general-flip"} for row in judge_rows] == flip_rows
    assert any("\n" in row["ground_truth"] for row in flip_rows)  # multi-line instructions
    assert any(len(row["messages"]) > 2 for row in flip_rows)  # multi-turn prompts
    for row in flip_rows:
        assert row["ground_truth"] == row["messages"][-1]["content"]


def test_general_flip_is_a_known_verifier() -> None:
    assert "general-flip" in KNOWN_VERIFIERS and "general-quality" in KNOWN_VERIFIERS


@pytest.mark.parametrize("limit", ["0", "-3", "two"])
def test_convert_limit_must_be_a_positive_count(tmp_path: Path, capsys, limit: str) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "Tell me a joke."}])
    with pytest.raises(SystemExit) as stopped:
        main(["data", "convert", str(source), "-o", str(tmp_path / "out.jsonl"), "--limit", limit])
    assert stopped.value.code == 2
    expected = f"expected a whole number, got {limit!r}" if limit == "two" else f"must be at least 1, got {limit}"
    assert capsys.readouterr().err.splitlines()[-1] == f"flip-reward data convert: error: argument --limit: {expected}"
    assert not (tmp_path / "out.jsonl").exists()


def test_convert_limit_keeps_row_numbers(tmp_path: Path, capsys) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"prompt": "A"}\n\n{"text": "no prompt"}\n{"prompt": "C"}\n')
    assert main(["data", "convert", str(source), "-o", str(tmp_path / "out.jsonl"), "--limit", "2"]) == 2
    assert capsys.readouterr().err.splitlines()[0].startswith("error: row 3: field 'messages'")


@pytest.mark.parametrize("kind", ["Dataset", "DatasetDict"])
def test_convert_reads_a_dataset_saved_to_disk(tmp_path: Path, kind: str) -> None:
    import datasets

    dataset = datasets.Dataset.from_list([{"prompt": "Tell me a joke."}, {"prompt": "Name a colour."}])
    saved = dataset if kind == "Dataset" else datasets.DatasetDict({"train": dataset})
    saved.save_to_disk(str(tmp_path / "saved"))
    assert main(["data", "convert", str(tmp_path / "saved"), "-o", str(tmp_path / "out.jsonl")]) == 0
    assert [row["ground_truth"] for row in read_jsonl(tmp_path / "out.jsonl")] == ["Tell me a joke.", "Name a colour."]


def test_a_saved_dataset_dict_without_the_split_names_its_splits(tmp_path: Path, capsys) -> None:
    import datasets

    datasets.DatasetDict({"test": datasets.Dataset.from_list([{"prompt": "Hi"}])}).save_to_disk(str(tmp_path / "d"))
    capsys.readouterr()
    assert main(["data", "convert", str(tmp_path / "d"), "-o", str(tmp_path / "out.jsonl")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'd'} has no split 'train'; it has test\n"


def test_non_utf8_input_names_the_line(tmp_path: Path, capsys) -> None:
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_bytes(b'{"prompt": "A"}\n\n{"prompt": "caf\xe9"}\n')
    assert main(["data", "convert", str(jsonl), "-o", str(tmp_path / "out.jsonl")]) == 2
    assert capsys.readouterr().err == (
        "error: row 3: field '<line>': not valid UTF-8 (byte 0xe9 at column 16)\n"
        "1 invalid row(s); nothing was written (use --skip-invalid to convert the rest)\n"
    )
    as_json = tmp_path / "in.json"
    as_json.write_bytes(b'[\n  {"prompt": "A"},\n  {"prompt": "caf\xe9"}\n]\n')
    assert main(["data", "check", str(as_json)]) == 2
    assert capsys.readouterr().err == f"error: {as_json}: line 3: not valid UTF-8 (byte 0xe9 at column 18)\n"
