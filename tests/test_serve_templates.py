"""``flip-reward serve`` reading OpenRLHF's templated prompts over HTTP: several template families in one request,
a refusal that names its item, a label that rescues it, ``--policy-template`` with a .jinja file and with a
tokenizer directory, an unusable value, and a megabyte of adversarial markup. The judge is the scripted
OpenAI-compatible server (a test double); prompts are rendered by transformers from tests/chat_templates."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from chat_template_support import TEMPLATES, messages_of, render
from conftest import REPO
from serve_support import ResponseScript, ServeProcess, call

from flip_reward.serving.scripted_judge import ScriptedJudgeServer
from flip_reward.templates import GROUPS

ANSWERS = {
    "Leaves fall in gold.": "Write a short poem about autumn leaves.",
    "Rome.": "And of Italy?",
    "2, 3 and 5.": "Name three prime numbers.",
    "Use a plus sign.": "Fix this function:\n```python\ndef add(a, b):\n    return a - b\n```",
    "Farmers moved uphill.": "Summarize the text below.\n\nThe river flooded the valley, and the farmers moved uphill.",
}
FAMILY_NAMES = ", ".join(GROUPS)
TRIED = "tried " + FAMILY_NAMES


def prompt_of(name: str, conversation: str) -> str:
    return render((TEMPLATES / f"{name}.jinja").read_text(encoding="utf-8"), messages_of(conversation))


def body_of(*samples: tuple[str, str, str | None]) -> dict:
    """A /get_reward body from (prompt, generated text with its stop token, label) samples."""
    return {
        "query": [prompt + text for prompt, text, _ in samples],
        "prompts": [prompt for prompt, _, _ in samples],
        "labels": [label for _, _, label in samples],
    }


@pytest.fixture(scope="module")
def judge():
    with ScriptedJudgeServer(ResponseScript(ANSWERS)) as server:
        yield server


def serve(judge, *args: str) -> ServeProcess:
    return ServeProcess("--judge", "hosted_vllm/scripted", "--api-base", judge.base_url, "--retries", "0", *args)


def test_one_request_mixes_families_and_a_refusal_names_its_item(judge) -> None:
    paragraphs = prompt_of("mistral-v7", "paragraphs")
    body = body_of(
        (prompt_of("phi3", "single"), "Leaves fall in gold.<|end|>", None),
        (prompt_of("gemma3", "multi-turn"), "Rome.<end_of_turn>", None),
        (prompt_of("gpt-oss", "system"), "<|channel|>final<|message|>2, 3 and 5.<|return|>", None),
        (prompt_of("glm4.5", "code"), "\n<think></think>\nUse a plus sign.<|user|>", None),
        (paragraphs, "Farmers moved uphill.</s>", None),
        (paragraphs, "Farmers moved uphill.</s>", ANSWERS["Farmers moved uphill."]),
    )
    with serve(judge) as service:
        status, answer = call(service.url, "/get_reward", body)
    assert status == 200
    assert answer["rewards"] == [1.0, 1.0, 1.0, 1.0, 0.0, 1.0]
    assert answer["errors"] == [None, None, None, None, answer["errors"][4], None]
    assert answer["errors"][4] == (
        "item 4: no instruction: no label, and the prompt reads two ways: mistral-tekken folds a system prompt into "
        "the last user turn, and that turn has a blank line: the text before it may be a system prompt or the "
        "user's own"
    )
    assert answer["extra_logs"]["flip_input_error"] == [0.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def test_a_pinned_jinja_template_reads_what_the_families_refuse(judge) -> None:
    paragraphs = prompt_of("mistral-v7", "paragraphs")
    body = body_of((paragraphs, "Farmers moved uphill.</s>", None), (prompt_of("qwen3", "single"), "x", None))
    with serve(judge, "--policy-template", str(TEMPLATES / "mistral-v7.jinja")) as service:
        status, answer = call(service.url, "/get_reward", body)
    assert status == 200 and answer["rewards"] == [1.0, 0.0]
    assert answer["errors"] == [
        None,
        "item 1: no instruction: no label, and the prompt does not re-render through the pinned template "
        "mistral-v7.jinja",
    ]


def test_a_pinned_tokenizer_directory_uses_its_template_and_special_tokens(judge, tmp_path) -> None:
    source = "{{ bos_token }}" + (TEMPLATES / "phi3.jinja").read_text(encoding="utf-8")
    config = {"bos_token": "<s>", "eos_token": "<|endoftext|>", "chat_template": source}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    body = body_of(("<s>" + prompt_of("phi3", "single"), "Leaves fall in gold.<|end|><|endoftext|>", None))
    with serve(judge, "--policy-template", str(tmp_path)) as service:
        status, answer = call(service.url, "/get_reward", body)
    assert status == 200 and answer["rewards"] == [1.0] and answer["errors"] == [None]


def test_an_unusable_policy_template_stops_the_service_at_start_with_one_line() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "flip_reward.cli", "serve", "--policy-template", "qwen9", "--port", "0"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert completed.returncode == 2 and completed.stdout == ""
    assert completed.stderr == (
        f"error: --policy-template qwen9: not a template family ({FAMILY_NAMES}), an existing .jinja file or a "
        "tokenizer directory\n"
    )


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{{" * 100_000, "past Python's recursion limit"),
        ("{% for x in y %}" * 30 + "a" + "{% endfor %}" * 30, "too many statically nested blocks"),
    ],
    ids=["100000-open-braces", "30-nested-loops"],
)
def test_a_template_nested_too_deep_stops_the_service_at_start_with_one_line(tmp_path, text, why) -> None:
    template = tmp_path / "deep.jinja"
    template.write_text(text)
    completed = subprocess.run(
        [sys.executable, "-m", "flip_reward.cli", "serve", "--policy-template", str(template), "--port", "0"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert (completed.returncode, completed.stdout) == (2, "")
    assert completed.stderr == (
        f"error: --policy-template {template}: the template nests too deeply to compile ({why})\n"
    )


def test_a_megabyte_of_unclosed_headers_is_read_off_the_loop_as_one_items_error(judge) -> None:
    adversarial = "<|im_start|>user\n" * 60_000 + "<|im_start|>assistant\n"
    body = body_of((adversarial, "x", None), (prompt_of("phi3", "single"), "Leaves fall in gold.<|end|>", None))
    with serve(judge) as service:
        status, answer = call(service.url, "/get_reward", body)
        assert call(service.url, "/health")[0] == 200
    assert status == 200 and answer["rewards"] == [0.0, 1.0]
    assert (
        answer["errors"][0]
        == f"item 0: no instruction: no label, and the prompt is in no known chat template ({TRIED})"
    )
