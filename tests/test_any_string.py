"""No string makes a reward entry point raise: property tests (hypothesis) over arbitrary strings in the response, the
earlier turns, the instruction or label, and the judge's answer, through FlipReward, both protocols of the reward
service (a real ``flip-reward serve`` on loopback), the TRL reward function, verl's ``compute_score``, the
open-instruct verifier and ``flip-reward score`` (a real subprocess).

The strings: any code point (lone surrogates included: the valid JSON ``"\\ud83d"``, an emoji cut in half, decodes to
one), and targeted pieces (NUL and other control characters, line and paragraph separators, BOM, zero-width and
bidi controls, combining marks, emoji ZWJ sequences, RTL and CJK scripts, chat-template tokens, thinking tags, role
lines, JSON syntax), and lines of a million characters. The judge is the scripted OpenAI-compatible server on
loopback (a test double, not a model): ``echo`` answers with the response it is shown plus half an emoji, escaped
the way a JSON encoder writes it, so every entry point can be compared with FlipReward on the same input; ``exact``
answers the instruction itself (set per call), so the reward is known; ``verbatim`` answers an arbitrary string.

Asserted: nothing raises and no request fails; every reward is in [0, 1]; each item has a result or an input error
naming its field (``prompt`` or ``response``, or the row and field); every text that comes back encodes as UTF-8;
output files are valid UTF-8 JSON lines, one per input, that give the input row back exactly; and exact values where
they are determined (the echoed inference; reward 1.0 for a judge that answers the instruction).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
from conftest import FAST_RETRIES, REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serve_support import ServeProcess, call
from test_open_instruct_plugin import oi, streaming_config  # noqa: F401  (oi: the verifier-contract fixture)

from flip_reward.core.metrics import normalize_answer
from flip_reward.core.placeholders import is_placeholder
from flip_reward.core.reward import FlipResult, FlipReward
from flip_reward.core.thinking import final_answer
from flip_reward.data.samples import SampleWriter
from flip_reward.integrations import verl as flip_verl
from flip_reward.integrations.trl import JudgeRewardFunction
from flip_reward.judge.loops import run_sync
from flip_reward.serving.scripted_judge import ScriptedJudgeServer, flip_answer, judged_response
from flip_reward.text import valid_text

JUDGE = "hosted_vllm/scripted"
HALF_EMOJI = "\ud83d"
ANY_CHARACTER = st.characters(codec=None, exclude_categories=())  # every code point, surrogates included
PIECES = (
    "\x00",
    "\x01\x02\x03",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\u200b",
    "\u200d",
    "\u202e",
    HALF_EMOJI,
    "\ude00",
    "\udc80",
    "\ud83d\ude00",  # a surrogate pair split over two code points: joined into one character
    "\U0001f469\u200d\U0001f469\u200d\U0001f467",
    "\U0001f3f3\ufe0f\u200d\U0001f308",
    "e\u0301",
    "Z\u0324\u0354\u0367\u0311",
    "עברית",
    "مرحبا بالعالم",
    "中文字符",
    "日本語のテキスト",
    "한국어",
    "İ",
    "ß",
    "\ufb01",
    "\t",
    "\r\n",
    "\r",
    "\n\n",
    "   ",
    "<think>",
    "</think>",
    "<answer>",
    "<|im_start|>",
    "<|im_end|>",
    "user: ",
    "\nassistant: ",
    "{",
    '"',
    "\\",
    "\\ud83d",
    "...",
)
WORDS = ("Write", " a", " poem", " about", " the", " sea", ".", " ")
texts = st.one_of(
    st.text(ANY_CHARACTER, max_size=30),
    st.lists(
        st.one_of(st.sampled_from(PIECES), st.sampled_from(WORDS), st.text(ANY_CHARACTER, max_size=6)), max_size=12
    ).map("".join),
)
LINE = 1_000_000
LONG_PIECES = (
    "x",
    "中文",
    "\U0001f469\u200d\U0001f469\u200d\U0001f467",
    "e\u0301",
    "a\x00",
    HALF_EMOJI + "b",
    "\u2028",
)
long_lines = st.sampled_from(LONG_PIECES).map(lambda piece: (piece * (LINE // len(piece) + 1))[:LINE])
ROLES = ("system", "user", "assistant")
turns = st.lists(st.tuples(st.sampled_from(ROLES), texts), max_size=3)
EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Judging:
    """The scripted judge's behaviour, switched per test: ``echo``, ``exact`` or ``verbatim`` (see the module)."""

    def __init__(self) -> None:
        self.mode, self.instruction, self.answer = "echo", "", ""

    def __call__(self, request: dict) -> str:
        if self.mode == "exact":
            return flip_answer(self.instruction)
        if self.mode == "verbatim":
            return self.answer
        return flip_answer(judged_response(request) + " " + HALF_EMOJI, reasoning="Half an emoji: " + HALF_EMOJI)


@pytest.fixture(scope="module")
def judging() -> Judging:
    return Judging()


@pytest.fixture(scope="module")
def judge(judging):
    """The scripted OpenAI-compatible judge on loopback (a test double), answering as ``judging`` says."""
    with ScriptedJudgeServer(judging) as server:
        yield server


@pytest.fixture
def echo(judging):
    judging.mode = "echo"
    return judging


def flip_for(judge, **options: object) -> FlipReward:
    return FlipReward(JUDGE, judge.base_url, **{**FAST_RETRIES, **options})


def messages(history: list[tuple[str, str]], instruction: str) -> list[dict[str, str]]:
    return [*({"role": role, "content": text} for role, text in history), {"role": "user", "content": instruction}]


def encodes(*values: object) -> bool:
    """Whether every string among ``values`` (and inside lists and dicts of them) encodes as UTF-8."""
    for value in values:
        if isinstance(value, str):
            value.encode("utf-8")
        elif isinstance(value, dict):
            encodes(*value.keys(), *value.values())
        elif isinstance(value, (list, tuple)):
            encodes(*value)
    return True


def check(result: FlipResult, judge_mode: str = "echo") -> None:
    """What every result must be: a reward in [0, 1], an error only for input the item itself spoils (naming the
    field) or, unless the judge echoes, for an answer with no inference; valid text; with the echo judge, the
    echo of what it was shown."""
    assert 0.0 <= result.reward <= 1.0 and isinstance(result.reward, float)
    assert encodes(result.to_dict())
    if result.error_type == "input":
        assert result.error.startswith(("prompt: ", "response ")), result.error
    else:
        assert result.error_type in ((None,) if judge_mode == "echo" else (None, "parse")), result.error
    if judge_mode == "echo" and result.error is None:
        assert result.inferred_instruction == (result.judged_response + " \ufffd").strip()
        assert result.reasoning == "Half an emoji: \ufffd"


def same(one: FlipResult | dict, other: FlipResult) -> None:
    """``one`` (a result, or the fields an entry point sends back) is ``other``, as far as a reward goes."""
    fields = one if isinstance(one, dict) else one.to_dict()
    names = ("reward", "error_type", "inferred_instruction", "judged_response", "replaced_surrogates")
    assert {name: fields[name] for name in names} == {name: getattr(other, name) for name in names}


def as_json_reads(value: object) -> object:
    """``value`` as any JSON reader gives it back: the same, but for a surrogate pair split over two code points,
    which reads back as its one character."""
    return json.loads(json.dumps(value))


def expected_exact(instruction: str) -> tuple[float, str | None]:
    """(reward, error_type) of a judge that answers ``instruction`` itself: 1.0 when it has a token, else 0.0; an
    answer that is blank or reads as an echoed placeholder ("...", "<instruction>") is no inference."""
    answer = valid_text(instruction).strip()
    if not answer or is_placeholder(answer):
        return 0.0, "parse"
    return (1.0 if normalize_answer(answer).split() else 0.0), None


# --- FlipReward ------------------------------------------------------------------------------------------------


@EXAMPLES
@given(st.lists(st.tuples(turns, texts, texts), min_size=1, max_size=4), st.lists(texts, max_size=2))
def test_flip_reward_scores_any_strings(judge, echo, items, flattened) -> None:
    prompts = [messages(history, instruction) for history, instruction, _ in items] + flattened
    responses = [response for *_, response in items] + flattened
    results = asyncio.run(flip_for(judge).ascore(prompts, responses))
    assert len(results) == len(prompts)
    for result in results:
        check(result)
    for result, (history, instruction, response) in zip(results, items):
        if not instruction.strip():
            assert (result.error_type, result.error) == ("input", "prompt: the last user message is empty")
            continue
        given = [text for _, text in history] + [instruction, response]
        halves = sum(valid_text(text).count("\ufffd") - text.count("\ufffd") for text in given)
        assert result.replaced_surrogates == halves
        if not final_answer(valid_text(response)):
            assert (result.error_type, result.error) == ("input", "response is empty once reasoning is removed")


@EXAMPLES
@given(turns, texts, texts)
def test_a_judge_that_answers_the_instruction_gets_its_exact_reward(judge, judging, history, instruction, response):
    """The judge's JSON answer escapes lone surrogates (``json.dumps``); the instruction is made valid text on both
    sides, so a judge that answers it gets 1.0 (0.0 when it normalises to no token)."""
    judging.mode, judging.instruction = "exact", instruction
    [result] = flip_for(judge, cache=False, restatement_guard=False).score([messages(history, instruction)], [response])
    check(result, "exact")
    if not instruction.strip() or not final_answer(valid_text(response)):
        assert result.error_type == "input"
    else:
        assert (result.reward, result.error_type) == expected_exact(instruction)


@EXAMPLES
@given(st.one_of(texts, texts.map(lambda text: '{"REASONING": "r", "INFERRED INSTRUCTION": "' + text + '"}')))
def test_any_judge_answer_is_read_or_a_parse_failure(judge, judging, answer) -> None:
    judging.mode, judging.answer = "verbatim", answer
    [result] = flip_for(judge, cache=False).score(["Write a poem about the sea."], ["Waves."])
    check(result, "verbatim")


FIELDS = ("response", "history", "instruction", "judge answer")


@settings(EXAMPLES, max_examples=8)
@given(st.sampled_from(FIELDS), long_lines)
def test_a_million_character_line_anywhere(judge, judging, field, line) -> None:
    judging.mode, judging.instruction = "exact", "Write a poem about the sea."
    history, instruction, response = ["Hi"], judging.instruction, "Waves roll in."
    if field == "judge answer":
        judging.instruction = line
    else:
        history, instruction, response = {
            "response": (history, instruction, line),
            "history": ([line], instruction, response),
            "instruction": (history, line, response),
        }[field]
        judging.instruction = instruction
    prompt = messages([("user", text) for text in history], instruction)
    [result] = flip_for(judge, cache=False).score([prompt], [response])
    check(result, "exact")
    if field == "judge answer":
        assert result.inferred_instruction == (valid_text(line).strip() or None)
    elif field in ("instruction", "response") and not line.strip():
        assert result.error_type == "input"
    else:
        assert (result.reward, result.error_type) == expected_exact(instruction)


# --- the reward service ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(judge):
    with ServeProcess("--judge", JUDGE, "--api-base", judge.base_url, "--retries", "0") as process:
        yield process


def chatml_prompt() -> str:
    return "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


@settings(EXAMPLES, max_examples=40)
@given(st.lists(st.tuples(turns, texts, texts), min_size=1, max_size=4))
def test_service_v1_score_answers_every_item(judge, echo, service, items) -> None:
    body = {"items": [{"prompt": messages(h, i), "response": r} for h, i, r in items]}
    status, answer = call(service.url, "/v1/score", body)
    assert status == 200, answer
    direct = asyncio.run(flip_for(judge).ascore([item["prompt"] for item in body["items"]], [r for *_, r in items]))
    assert len(answer["results"]) == len(items)
    for fields, expected, (*_, response) in zip(answer["results"], direct, items):
        same(fields, expected)
        assert fields["response_chars"] == len(as_json_reads(response))


@settings(EXAMPLES, max_examples=3)
@given(long_lines)
def test_service_takes_a_million_character_line(judge, echo, service, line) -> None:
    prompt = [{"role": "user", "content": "Write a poem about the sea."}]
    status, answer = call(service.url, "/v1/score", {"items": [{"prompt": prompt, "response": line}]})
    assert status == 200, answer
    [expected] = flip_for(judge).score([prompt], [line])
    same(answer["results"][0], expected)


@settings(EXAMPLES, max_examples=40)
@given(st.lists(st.tuples(texts, texts), min_size=1, max_size=4))
def test_service_get_reward_answers_every_item(judge, echo, service, samples) -> None:
    """Labels carry the instruction; the prompt is a simple ChatML one and the query is it plus the response."""
    body = {
        "query": [chatml_prompt() + response + "<|im_end|>" for _, response in samples],
        "prompts": [chatml_prompt()] * len(samples),
        "labels": [label for label, _ in samples],
    }
    status, answer = call(service.url, "/get_reward", body)
    assert status == 200, answer
    assert len(answer["rewards"]) == len(answer["errors"]) == len(samples)
    assert all(0.0 <= reward <= 1.0 for reward in answer["rewards"])
    flip = flip_for(judge)
    for reward, error, (label, response) in zip(answer["rewards"], answer["errors"], samples):
        assert error is None or error.startswith(("prompt: ", "response ", "item ")), error
        if label.strip() and "<|" not in response:  # the response is the query after its prompt, as written
            [expected] = flip.score([[{"role": "user", "content": label.strip()}]], [response])
            assert (reward, error) == (expected.reward, expected.error)


# --- the trainer adapters --------------------------------------------------------------------------------------


@settings(EXAMPLES, max_examples=40)
@given(st.lists(st.tuples(turns, texts, texts, st.booleans()), min_size=1, max_size=4))
def test_trl_reward_function_and_its_sample_log(judge, echo, tmp_path_factory, items) -> None:
    """Completions as strings or as assistant messages; the trace of every completion is a valid UTF-8 JSON line
    that gives the prompt back exactly."""
    path = tmp_path_factory.mktemp("samples") / "samples.jsonl"
    reward = JudgeRewardFunction(flip_for(judge), samples=SampleWriter(path))
    prompts = [messages(history, instruction) for history, instruction, *_ in items]
    completions = [[{"role": "assistant", "content": r}] if as_chat else r for *_, r, as_chat in items]
    rewards = asyncio.run(reward(prompts=prompts, completions=completions))
    direct = asyncio.run(flip_for(judge).ascore(prompts, [r for *_, r, _ in items]))
    assert rewards == [result.reward for result in direct]
    reward.samples.flush()
    lines = path.read_bytes().decode("utf-8").split("\n")
    assert lines[-1] == "" and len(lines) == len(items) + 1
    traces = [json.loads(line) for line in lines[:-1]]
    assert [trace["prompt"] for trace in traces] == as_json_reads(prompts)
    assert [trace["reward"] for trace in traces] == rewards


@settings(EXAMPLES, max_examples=40)
@given(turns, texts, texts)
def test_verl_compute_score(judge, echo, history, ground_truth, response) -> None:
    options = {"judge_model": JUDGE, "api_base": judge.base_url, **FAST_RETRIES}
    context = [{"role": role, "content": text} for role, text in history]
    scored = asyncio.run(flip_verl.compute_score("any", response, ground_truth, {"context": context}, **options))
    [expected] = flip_for(judge).score([[*context, {"role": "user", "content": ground_truth}]], [response])
    assert scored == {
        "score": expected.reward,
        "f1": expected.f1,
        "inferred_instruction": expected.inferred_instruction or "",
        "error": expected.error or "",
        "error_type": expected.error_type or "",
        "restatement_masked": expected.restatement_masked,
    }
    check(expected)


@pytest.fixture
def general_flip(oi, judge, monkeypatch):  # noqa: F811  (oi is the imported fixture)
    """The ``general-flip`` verifier as upstream's ``build_all_verifiers`` makes it, and the plugin module."""
    monkeypatch.setenv("HOSTED_VLLM_API_BASE", judge.base_url)
    monkeypatch.delenv("FLIP_SAMPLE_LOG", raising=False)
    return oi.gtu.build_all_verifiers(SimpleNamespace(seed=7), streaming_config())["general-flip"], oi.verifier


@settings(EXAMPLES, max_examples=40)
@given(turns, texts, st.one_of(texts, st.lists(texts, max_size=2)), texts)
def test_open_instruct_verifier(general_flip, echo, history, instruction, label, prediction) -> None:
    """The flattened ``query`` (upstream's ``role: content`` lines) with any text in it, and any label."""
    verifier, plugin = general_flip
    query = "\n".join(f"{role}: {text}" for role, text in [*history, ("user", instruction)])
    verified = run_sync(lambda: verifier.async_call([], prediction, label, query=query))
    expected = run_sync(lambda: verifier.reward.ascore_one(plugin.flip_prompt(query, label), prediction))
    check(expected)
    assert (verified.score, verified.reasoning) == (expected.reward, plugin.reasoning_text(expected))
    assert encodes(verified.reasoning)


# --- flip-reward score -----------------------------------------------------------------------------------------


@settings(EXAMPLES, max_examples=4)
@given(st.lists(st.tuples(turns, texts, texts, st.booleans()), min_size=1, max_size=12))
def test_score_command_writes_one_valid_row_per_input(judge, echo, tmp_path_factory, items) -> None:
    """A JSONL file whose strings escape lone surrogates (valid JSON); rows as ``messages`` or ``prompt`` plus
    ``response``. Exit 0 with --skip-invalid, and each output line is the input row plus its result."""
    folder = tmp_path_factory.mktemp("score")
    prompts = [messages(history, instruction) for history, instruction, *_ in items]
    responses = [response for *_, response, _ in items]
    rows = [
        {"messages": [*prompt, {"role": "assistant", "content": response}]}
        if as_chat
        else {"prompt": prompt, "response": response}
        for prompt, response, (*_, as_chat) in zip(prompts, responses, items)
    ]
    (folder / "in.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    command = [sys.executable, "-m", "flip_reward.cli", "score", str(folder / "in.jsonl"), "-o"]
    command += [str(folder / "out.jsonl"), "--judge", JUDGE, "--api-base", judge.base_url, "--skip-invalid"]
    finished = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert finished.returncode == 0, finished.stderr
    lines = (folder / "out.jsonl").read_bytes().decode("utf-8").split("\n")
    assert lines[-1] == "" and len(lines) == len(rows) + 1
    written = [json.loads(line) for line in lines[:-1]]
    direct = asyncio.run(flip_for(judge).ascore(prompts, responses))
    for number, (row, out, expected) in enumerate(zip(rows, written, direct), start=1):
        assert {key: out[key] for key in row} == as_json_reads(row)
        if out["error_type"] == "input" and expected.error_type != "input":
            assert out["error"].startswith(f"row {number}: field "), out["error"]
        else:
            same(out, expected)
