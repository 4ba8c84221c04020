"""Per-sample traces: the writer (bounded, never blocking, never failing) and the lines the TRL reward function and the
open-instruct verifier write. Judges here are the scripted loopback server, a test double with known answers."""

from __future__ import annotations

import asyncio
import json
import pickle
from types import SimpleNamespace

from conftest import FAST_RETRIES

from flip_reward.core.reward import FlipResult
from flip_reward.data.samples import SampleWriter, trace_line
from flip_reward.integrations.trl import flip_reward_function
from flip_reward.serving.scripted_judge import flip_answer, judged_response

INSTRUCTION = "Write a short poem about the sea"


def read_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_trace_line_shows_what_the_judge_saw_under_response():
    result = FlipResult(reward=0.5, f1=0.5, inferred_instruction="Write a poem", judged_response="Waves.")
    line = trace_line(3, INSTRUCTION, "<think>hm</think>Waves.", result)
    assert (line["step"], line["prompt"], line["response"], line["response_chars"]) == (3, INSTRUCTION, "Waves.", 23)
    assert (line["inferred_instruction"], line["reward"], line["restatement_masked"]) == ("Write a poem", 0.5, 0)
    assert "judged_response" not in line


def test_writer_appends_rotates_at_its_bound_and_pickles(tmp_path):
    writer = SampleWriter(tmp_path / "traces" / "samples.jsonl", max_bytes=90)
    for number in range(5):
        writer.put({"n": number, "pad": "x" * 20})  # 40 bytes a line: two fit under 90
    writer.flush()
    current, backup = tmp_path / "traces" / "samples.jsonl", tmp_path / "traces" / "samples.jsonl.1"
    assert [line["n"] for line in read_lines(current)] == [4]
    assert [line["n"] for line in read_lines(backup)] == [2, 3]
    clone = pickle.loads(pickle.dumps(writer))
    clone.put({"n": 5, "pad": ""})
    clone.flush()
    assert [line["n"] for line in read_lines(current)] == [4, 5]


def test_writer_never_raises_when_the_disk_fails(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    writer = SampleWriter(blocked / "samples.jsonl")
    writer.put({"n": 1})
    writer.put({"unserialisable": object()})  # written with str(): never an error for the caller
    writer.flush()
    assert not (blocked / "samples.jsonl").exists()


def test_trl_reward_traces_each_completion_with_its_step_and_logs_the_inferred_instruction(
    judge_server, script, tmp_path
):
    script.default = lambda request: flip_answer(judged_response(request))
    writer = SampleWriter(tmp_path / "samples.jsonl")
    reward = flip_reward_function("hosted_vllm/judge", judge_server.base_url, **FAST_RETRIES)
    reward.samples = writer
    extras = {}
    completions = ["Waves crash on the shore.", "<think>plan</think>Tides.", ""]
    rewards = asyncio.run(
        reward(
            prompts=[INSTRUCTION] * 3,
            completions=completions,
            trainer_state=SimpleNamespace(global_step=4),
            log_extra=lambda column, values: extras.setdefault(column, values),
        )
    )
    writer.flush()
    lines = read_lines(tmp_path / "samples.jsonl")
    assert [line["step"] for line in lines] == [5, 5, 5]  # the step being generated for, counted from 1
    assert [line["response"] for line in lines] == ["Waves crash on the shore.", "Tides.", ""]
    assert [line["response_chars"] for line in lines] == [25, 25, 0]
    assert [line["inferred_instruction"] for line in lines] == ["Waves crash on the shore.", "Tides.", None]
    assert [line["reward"] for line in lines] == rewards
    assert [line["error_type"] for line in lines] == [None, None, "input"]
    assert extras["flip_reward/inferred_instruction"] == ["Waves crash on the shore.", "Tides.", ""]
    assert extras["flip_reward/error_type"] == ["", "", "input"]
