"""Contract tests of the ``general-flip`` open-instruct verifier.

They run against real upstream ``open_instruct.ground_truth_utils`` when it imports (installed, or a checkout in
$OPEN_INSTRUCT_DIR, plus its CPU dependencies), and otherwise against a minimal stand-in of upstream's
verifier contract written in tests/open_instruct_support.py from the contract documented in NOTES.md, so they run
everywhere. FLIP_TEST_CONTRACT=standin, =upstream or =both picks explicitly. The judge is the scripted loopback
server (a test double), because the tests need exact judge answers and injected faults.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import pickle
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import REPO
from open_instruct_support import import_upstream, standin_modules
from serve_support import inspect_report

from flip_reward.core.settings import FlipSettings, FlipSettingsError
from flip_reward.judge.loops import run_sync
from flip_reward.serving.scripted_judge import Reply, flip_answer, judged_response

PLUGIN_MODULES = (
    "open_instruct",
    "open_instruct.ground_truth_utils",
    "flip_reward.integrations.open_instruct",
    "flip_reward.integrations.open_instruct.verifier",
)
MULTILINE_QUERY = (
    "system: You are terse.\nuser: Hi there\nassistant: Hello! How can I help?\n"
    "user: Write a haiku about rain\nthat mentions a red umbrella."
)
INSTRUCTION = "Write a haiku about rain\nthat mentions a red umbrella."


def run(coroutine):
    """The coroutine on a loop of its own whose HTTP clients are closed before it ends."""
    return run_sync(lambda: coroutine)


def streaming_config(**overrides) -> SimpleNamespace:
    """The fields of upstream's StreamingDataLoaderConfig that build_all_verifiers reads (upstream's defaults)."""
    fields = {
        "llm_judge_model": "hosted_vllm/scripted",
        "llm_judge_max_tokens": 256,
        "llm_judge_max_context_length": 8192,
        "llm_judge_temperature": 0.0,
        "llm_judge_timeout": 5,
        "code_api_url": "http://localhost:1234/test_program",
        "code_max_execution_time": 1.0,
        "code_pass_rate_reward_threshold": 0.0,
        "code_apply_perf_penalty": False,
        "max_length_verifier_max_length": 32768,
        "remap_verifier": None,
    }
    return SimpleNamespace(**{**fields, **overrides})


def contract_kinds() -> list[str]:
    choice = os.environ.get("FLIP_TEST_CONTRACT", "auto")
    if choice == "both":
        return ["standin", "upstream"]
    if choice in ("standin", "upstream"):
        return [choice]
    return ["upstream" if import_upstream()[0] is not None else "standin"]


@pytest.fixture(params=contract_kinds())
def oi(request):
    """``.gtu``: ground_truth_utils (stand-in or upstream); ``.verifier``: the plugin module bound to it."""
    from flip_reward import integrations

    if request.param == "upstream":
        gtu, reason = import_upstream()
        if gtu is None:
            pytest.skip(reason)
        verifier = importlib.import_module("flip_reward.integrations.open_instruct.verifier")
        assert verifier.VerifierFunction is gtu.VerifierFunction
        return SimpleNamespace(kind="upstream", gtu=gtu, verifier=verifier)
    saved = {name: sys.modules.get(name) for name in PLUGIN_MODULES}
    saved_attribute = integrations.__dict__.get("open_instruct")

    def restore() -> None:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        if saved_attribute is None:
            integrations.__dict__.pop("open_instruct", None)
        else:
            integrations.open_instruct = saved_attribute

    request.addfinalizer(restore)
    for name in PLUGIN_MODULES:
        sys.modules.pop(name, None)
    integrations.__dict__.pop("open_instruct", None)
    sys.modules.update(standin_modules())
    verifier = importlib.import_module("flip_reward.integrations.open_instruct.verifier")
    return SimpleNamespace(kind="standin", gtu=sys.modules["open_instruct.ground_truth_utils"], verifier=verifier)


@pytest.fixture
def flip_env(monkeypatch, judge_server):
    """The verifier's environment: the scripted judge as HOSTED_VLLM_API_BASE, fast retries, no other FLIP_*."""
    for name in list(FlipSettings.__dataclass_fields__):
        monkeypatch.delenv(f"FLIP_{name.upper()}", raising=False)
    monkeypatch.setenv("HOSTED_VLLM_API_BASE", judge_server.base_url)
    return judge_server


def general_flip(oi, **streaming):
    verifiers = oi.gtu.build_all_verifiers(SimpleNamespace(seed=7), streaming_config(**streaming))
    return verifiers["general-flip"]


def test_build_all_verifiers_registers_general_flip_from_upstream_arguments(oi, flip_env, monkeypatch) -> None:
    monkeypatch.setenv("FLIP_DISABLE_THINKING", "1")
    monkeypatch.setenv("FLIP_CONCURRENCY", "8")
    verifier = general_flip(
        oi, llm_judge_max_tokens=111, llm_judge_max_context_length=4096, llm_judge_temperature=0.3, llm_judge_timeout=42
    )
    assert isinstance(verifier, oi.verifier.FlipVerifier)
    assert type(verifier).__bases__ == (oi.gtu.VerifierFunction,)  # a DIRECT subclass, as discovery requires
    assert verifier.name == "general-flip" and verifier.weight == 1.0
    config = verifier.verifier_config
    assert isinstance(config, oi.gtu.VerifierConfig)
    assert (
        config.llm_judge_model,
        config.llm_judge_max_tokens,
        config.llm_judge_max_context_length,
        config.llm_judge_temperature,
        config.llm_judge_timeout,
        config.seed,
    ) == ("hosted_vllm/scripted", 111, 4096, 0.3, 42, 7)
    assert config.flip.disable_thinking and config.flip.concurrency == 8
    assert config.flip.hosted_vllm_api_base == flip_env.base_url
    judge = verifier.reward.judge.config
    assert (judge.max_tokens, judge.temperature, judge.timeout, judge.seed, judge.max_concurrency) == (
        111,
        0.3,
        42.0,
        7,
        8,
    )


def test_scores_the_whole_multiline_last_user_message_with_earlier_turns_as_context(oi, flip_env, script) -> None:
    script.default = lambda request: flip_answer(INSTRUCTION)
    verifiers = oi.gtu.build_all_verifiers(SimpleNamespace(seed=7), streaming_config())
    rewards, per_verifier = run(
        oi.gtu.apply_verifiable_reward(
            verifiers,
            [[1, 2], [3]],
            ["<think>plan</think>Red umbrella, rain.", "Write a haiku"],
            [["ignored label"], ["x"]],
            [["general-flip"], ["general-flip"]],
            reward_mult=10.0,
            queries=[MULTILINE_QUERY, "user: Write a haiku about rain\nthat mentions a red umbrella."],
        )
    )
    assert rewards == [10.0, 10.0] and per_verifier[0] == {"general-flip": 10.0}
    first = next(request for request in flip_env.requests if "Red umbrella" in judged_response(request))
    request = first["messages"][-1]["content"]
    assert "user: Hi there" in request and "assistant: Hello! How can I help?" in request
    assert "system: You are terse." in request
    assert judged_response(first) == "Red umbrella, rain."  # the thinking is not shown
    assert "mentions a red umbrella" not in request  # the instruction is what the judge must infer


def test_role_like_lines_inside_the_instruction_are_settled_by_the_label(oi, flip_env, script) -> None:
    instruction = "Rewrite this chat log more politely:\nuser: gimme the report\nassistant: no"
    script.default = lambda request: flip_answer(instruction)
    query = "system: Be helpful.\nuser: " + instruction
    result = run(general_flip(oi).async_call([], "Could you please share the report?", instruction, query))
    assert result.score == 1.0
    request = flip_env.requests[-1]["messages"][-1]["content"]
    assert "<history>\nsystem: Be helpful.\n</history>" in request
    assert "gimme the report" not in request


def test_reasoning_reports_f1_and_inferred_instruction(oi, flip_env, script) -> None:
    script.default = lambda request: flip_answer("Write a haiku about snow")
    result = run(general_flip(oi).async_call([], "Snow settles softly", "label", "user: Write a haiku about rain"))
    assert isinstance(result, oi.gtu.VerificationResult)
    assert result.score == pytest.approx(0.75)  # "write haiku about ..." : 3 of 4 normalized tokens
    assert result.cost == 0.0
    assert result.reasoning.startswith("FLIP f1=0.7500 ")
    assert "inferred instruction: Write a haiku about snow" in result.reasoning


def test_label_is_the_instruction_when_the_query_has_no_user_message(oi, flip_env, script) -> None:
    script.default = lambda request: flip_answer("Translate good night into French")
    verifier = general_flip(oi)
    no_query = run(verifier.async_call([], "Bonne nuit.", "Translate good night into French", None))
    system_only = run(verifier.async_call([], "Bonne nuit.", ["Translate good night into French"], "system: Be brief."))
    assert no_query.score == 1.0 and system_only.score == 1.0
    assert "system: Be brief." in flip_env.requests[-1]["messages"][-1]["content"]
    neither = run(verifier.async_call([], "Bonne nuit.", {"not": "text"}, None))
    assert neither.score == 0.0 and neither.reasoning.startswith("FLIP error (input)")


def test_a_transient_judge_fault_is_retried(oi, flip_env, script) -> None:
    script.queue = [Reply(status=503), Reply(garbage=True)]
    script.default = lambda request: flip_answer("Write a haiku about rain")
    result = run(general_flip(oi).async_call([], "Rain", None, "user: Write a haiku about rain"))
    assert result.score == 1.0
    assert len(flip_env.requests) == 3


def test_never_raises_into_the_trainer(oi, flip_env, monkeypatch) -> None:
    monkeypatch.setenv("FLIP_RETRIES", "0")
    monkeypatch.setenv("HOSTED_VLLM_API_BASE", "http://127.0.0.1:9/v1")  # nothing listens on port 9
    verifier = general_flip(oi)
    down = run(verifier.async_call([], "Rain", None, "user: Write a haiku"))
    assert down.score == 0.0 and down.reasoning.startswith("FLIP error (judge)")
    not_text = run(verifier.async_call([], None, None, "user: Write a haiku"))
    assert not_text.score == 0.0 and "response must be a string" in not_text.reasoning
    broken = general_flip(oi, llm_judge_model="no-such-provider/model")
    config_error = run(broken.async_call([], "Rain", None, "user: Write a haiku"))
    assert config_error.score == 0.0 and config_error.reasoning.startswith("FLIP error (config)")


def test_thinking_is_hidden_from_the_judge(oi, flip_env, script, monkeypatch) -> None:
    verifier = general_flip(oi)
    run(verifier.async_call([], "I should write about rain.</think>Drops on the roof.", None, "user: Rain"))
    assert judged_response(flip_env.requests[-1]) == "Drops on the roof."
    monkeypatch.setenv("FLIP_THINK_PREFILLED", "1")
    prefilled = general_flip(oi)
    unclosed = run(prefilled.async_call([], "I should write about rain and never stop", None, "user: Rain"))
    assert unclosed.score == 0.0 and "empty once reasoning is removed" in unclosed.reasoning
    assert len(flip_env.requests) == 1


def test_settings_are_read_once_and_travel_with_the_pickle(oi, flip_env, script, monkeypatch) -> None:
    monkeypatch.setenv("FLIP_STRUCTURED_OUTPUT", "1")
    verifier = general_flip(oi)
    monkeypatch.setenv("FLIP_STRUCTURED_OUTPUT", "0")
    monkeypatch.delenv("HOSTED_VLLM_API_BASE")  # a Ray actor's environment does not matter
    copy = pickle.loads(pickle.dumps(verifier))
    assert type(copy) is type(verifier) and copy.verifier_config == verifier.verifier_config
    assert copy.verifier_config.flip.structured_output
    script.default = lambda request: flip_answer("Write a haiku about rain")
    assert run(copy.async_call([], "Rain", None, "user: Write a haiku about rain")).score == 1.0
    assert flip_env.requests[-1]["response_format"]["type"] == "json_schema"


def test_the_judge_client_is_built_when_unpickled_not_on_the_first_reward(oi, flip_env, script) -> None:
    copy = pickle.loads(pickle.dumps(general_flip(oi)))  # what a Ray actor receives
    assert copy.reward is not None and copy.reward.judge.endpoint.api_base == flip_env.base_url
    assert flip_env.requests == []  # built without a request
    broken = pickle.loads(pickle.dumps(general_flip(oi, llm_judge_model="no-such-provider/x")))
    result = run(broken.async_call([], "Rain", None, "user: Write a haiku about rain"))
    assert result.score == 0.0 and result.reasoning.startswith("FLIP error (config): cannot set up the FLIP judge")


def test_sample_log_traces_every_nth_sample_into_a_file_per_actor(oi, flip_env, script, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("FLIP_SAMPLE_LOG", str(tmp_path / "traces" / "samples.jsonl"))
    monkeypatch.setenv("FLIP_SAMPLE_EVERY", "2")
    script.default = lambda request: flip_answer("Write a haiku about rain")
    actor = pickle.loads(pickle.dumps(general_flip(oi)))  # what a Ray actor receives
    for response in ("Rain one", "Rain two", "Rain three"):
        assert run(actor.async_call([], response, None, "user: Write a haiku about rain")).score == 1.0
    actor._samples.flush()
    [path] = (tmp_path / "traces").iterdir()
    assert path.name == f"samples.pid{os.getpid()}.jsonl"  # outside Ray the process id names the actor
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(line["sample"], line["response"], line["reward"]) for line in lines] == [
        (1, "Rain one", 1.0),
        (3, "Rain three", 1.0),
    ]
    assert lines[0]["prompt"] == "user: Write a haiku about rain" and lines[0]["step"] is None
    assert lines[0]["inferred_instruction"] == "Write a haiku about rain" and lines[0]["restatement_masked"] == 0


def test_restatement_guard_can_be_turned_off(oi, flip_env, monkeypatch) -> None:
    assert general_flip(oi).reward.restatement_guard is True
    monkeypatch.setenv("FLIP_RESTATEMENT_GUARD", "0")
    assert general_flip(oi).reward.restatement_guard is False


def test_awaited_from_several_event_loops_and_called_synchronously(oi, flip_env, script) -> None:
    script.default = lambda request: flip_answer("Write a haiku about rain")
    verifier = general_flip(oi)
    query = "user: Write a haiku about rain"
    assert run(verifier.async_call([], "Rain one", None, query)).score == 1.0
    scores = []

    def in_thread() -> None:
        scores.append(run(verifier.async_call([], "Rain two", None, query)).score)

    threads = [threading.Thread(target=in_thread) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert scores == [1.0, 1.0]
    assert verifier([], "Rain three", None, query).score == 1.0  # sync, no loop running

    async def sync_inside_a_loop() -> float:
        return verifier([], "Rain four", None, query).score

    assert run(sync_inside_a_loop()) == 1.0


def test_bad_flip_environment_fails_at_construction_with_the_variable_named(oi, flip_env, monkeypatch) -> None:
    monkeypatch.setenv("FLIP_CONCURRENCY", "lots")
    with pytest.raises(FlipSettingsError, match="FLIP_CONCURRENCY"):
        general_flip(oi)
    monkeypatch.setenv("FLIP_CONCURRENCY", "4")
    monkeypatch.setenv("FLIP_JUDGE_API_BASES", "http://a:8000/v1,http://b:8000/v1")
    with pytest.raises(FlipSettingsError, match="FLIP_JUDGE_API_BASES is no longer read: put vllm-router in front"):
        general_flip(oi)
    monkeypatch.delenv("FLIP_JUDGE_API_BASES")
    monkeypatch.setenv("HOSTED_VLLM_API_BASE", "http://alice:pa#ss@127.0.0.1:8000/v1")
    with pytest.raises(FlipSettingsError) as refused:
        general_flip(oi)
    assert str(refused.value) == (
        "HOSTED_VLLM_API_BASE: judge URL http://***@127.0.0.1:8000/v1: its user name or password holds a '/', '?' or "
        "'#': percent-encode them in the URL (/ as %2F, ? as %3F, # as %23, @ as %40)"
    )


def test_an_actor_logs_failures_per_window_and_warns_when_answers_are_empty(
    oi, flip_env, script, caplog, monkeypatch
) -> None:
    """One 500 (retries off) and one parse failure among five rewards, then a window of answers that are empty once
    reasoning is removed: the first failure of each kind at once, then one line per window with the counts."""
    caplog.set_level("WARNING", logger="flip_reward.open_instruct")
    script.queue = [Reply(status=500), "no json here"]
    script.default = lambda request: flip_answer("Write a haiku about rain")
    monkeypatch.setenv("FLIP_RETRIES", "0")
    verifier = general_flip(oi)
    log = verifier._log
    for response in ("Rain one", "Rain two", "Rain three", "Rain four", "Rain five"):
        run(verifier.async_call([], response, None, "user: Write a haiku about rain"))
    log.flush(log.window_start + 60)
    for _ in range(8):
        run(verifier.async_call([], "<think>only reasoning, never closed", None, "user: Write a haiku about rain"))
    log.flush(log.window_start + 60)
    lines = [record.getMessage() for record in caplog.records if record.name == "flip_reward.open_instruct"]
    assert [line.split(":")[1].strip() for line in lines[:2]] == [
        "first judge failure (scored 0.0)",
        "first parse failure (scored 0.0)",
    ]
    url = flip_env.base_url
    assert lines[2] == (
        "general-flip: last 60 s: 5 rewards, 1 judge errors, 1 parse failures, 0 other failures (each scored 0.0; "
        f"judge hosted_vllm/scripted at {url})"
    )
    assert lines[3].startswith("general-flip: first input failure (scored 0.0): response is empty once reasoning")
    assert lines[4].startswith("general-flip: last 60 s: 8 rewards, 0 judge errors, 0 parse failures, 8 other")
    assert lines[5].startswith("general-flip: 8 of the last 8 responses were empty once reasoning is removed")
    assert len(lines) == 6


class BreaksWhenRead(str):
    """A response that raises on the first string method the reward path calls on it: it stands in for any failure
    the reward path did not foresee (FlipReward itself never raises), which the verifier reports as "internal"."""

    def isascii(self) -> bool:
        raise RuntimeError("this response breaks when read")


def inspected(trace_dir: Path, out_dir: Path) -> tuple[dict, list[str]]:
    """``flip-reward inspect`` (a real process) of the one trace file in ``trace_dir``: inspect.json and stdout."""
    [trace] = trace_dir.iterdir()
    return inspect_report(trace, out_dir)


def test_traces_with_config_and_internal_failures_are_inspected(oi, flip_env, script, monkeypatch, tmp_path) -> None:
    """The verifier's own failures ("config": no judge client; "internal": an unforeseen exception) are traced with
    their error_type, and flip-reward inspect reads those traces and counts them."""
    script.default = lambda request: flip_answer("Write a haiku about rain")
    monkeypatch.setenv("FLIP_SAMPLE_LOG", str(tmp_path / "working" / "samples.jsonl"))
    working = general_flip(oi)
    for response in ("Rain one", BreaksWhenRead("Rain two"), "Rain three"):
        run(working.async_call([], response, None, "user: Write a haiku about rain"))
    monkeypatch.setenv("FLIP_SAMPLE_LOG", str(tmp_path / "broken" / "samples.jsonl"))
    broken = general_flip(oi, llm_judge_model="no-such-provider/x")
    for response in ("Rain four", "Rain five"):
        run(broken.async_call([], response, None, "user: Write a haiku about rain"))
    working._samples.flush()
    broken._samples.flush()

    report, out = inspected(tmp_path / "working", tmp_path / "working-report")
    figures = report["overall"]
    assert (figures["completions"], figures["internal_error_rate"], figures["config_error_rate"]) == (3, 1 / 3, 0.0)
    assert (figures["parse_failure_rate"], figures["judge_error_rate"], figures["input_error_rate"]) == (0.0, 0.0, 0.0)
    assert figures["mean_reward"] == 2 / 3
    assert "internal errors (an unexpected exception in the trainer's reward plugin, reward 0.0): 1 (0.3333)" in out

    report, out = inspected(tmp_path / "broken", tmp_path / "broken-report")
    figures = report["overall"]
    assert (figures["completions"], figures["config_error_rate"], figures["internal_error_rate"]) == (2, 1.0, 0.0)
    assert figures["mean_reward"] == 0.0
    assert "config errors (the trainer's reward plugin could not be set up, reward 0.0): 2 (1.0000)" in out


REAL_RESPONSES = REPO.parent / "shared" / "real_responses" / "alpaca_eval_dev.jsonl"  # read in place, never copied


def real_conversations(every: int = 50) -> list[tuple[list[dict], str]]:
    """(chat messages, response) from the real responses: each row's instruction after a system message and the
    previous row's exchange, so that the history is real text too; every ``every``-th row."""
    rows = [json.loads(line) for line in REAL_RESPONSES.read_text(encoding="utf-8").splitlines() if line.strip()]
    conversations = []
    for before, row in list(zip(rows, rows[1:]))[::every]:
        messages = [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": before["instruction"]},
            {"role": "assistant", "content": before["response"]},
            {"role": "user", "content": row["instruction"]},
        ]
        conversations.append((messages, row["response"]))
    return conversations


def judged(result):
    """The result without its timing."""
    return dataclasses.replace(result, latency_s=0.0, cached=False)


@pytest.mark.skipif(not REAL_RESPONSES.is_file(), reason=f"no real responses at {REAL_RESPONSES}")
def test_a_prompt_split_once_gives_the_same_reward_and_request(oi, flip_env, script) -> None:
    """Real rows scored from their prompt as given and from the prompt the callers split once (the verifier's
    flip_prompt of the flattened query and label; score's scoring_input): the same rewards, the same judge requests.
    The scripted judge echoes what it was shown, so the reward follows the judged text."""
    from flip_reward.core.conversation import SplitPrompt
    from flip_reward.core.reward import FlipReward
    from flip_reward.data.loading import scoring_input

    flip = FlipReward("hosted_vllm/scripted", flip_env.base_url, cache=False)
    conversations = real_conversations()
    assert len(conversations) == 40
    flattened = ["\n".join(f"{m['role']}: {m['content']}" for m in messages) for messages, _ in conversations]
    prompts = {
        "as given": [messages for messages, _ in conversations],
        "flattened": flattened,
        "verifier": [
            oi.verifier.flip_prompt(query, messages[-1]["content"])
            for query, (messages, _) in zip(flattened, conversations)
        ],
        "score": [scoring_input({"prompt": m, "response": r}, 1)[0] for m, r in conversations],
    }
    assert all(isinstance(prompt, SplitPrompt) for prompt in prompts["verifier"] + prompts["score"])
    responses = [response for _, response in conversations]
    rewards, requests = {}, {}
    for name, batch in prompts.items():
        before = len(flip_env.requests)
        rewards[name] = [judged(result) for result in flip.score(batch, responses)]
        requests[name] = sorted(json.dumps(body["messages"]) for body in flip_env.requests[before:])
    assert len(requests["as given"]) == 40 and len({result.reward for result in rewards["as given"]}) > 10
    for name in ("flattened", "verifier", "score"):
        assert (rewards[name], requests[name]) == (rewards["as given"], requests["as given"]), name
