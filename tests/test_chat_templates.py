"""Chat templates read back (flip_reward.templates) through the /get_reward item reader: every family's prompt
recovered exactly or refused with its reason, literal markup, responses, labels, pinned templates, and adversarial
bodies. Prompts are rendered by transformers from templates written for these tests (tests/chat_templates)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from chat_template_support import ANSWER, CONVERSATIONS, TEMPLATES, generated, messages_of, render

from flip_reward.serving.protocol import openrlhf_item
from flip_reward.templates import FamilyReader, PinnedTemplate, TemplateError, load_policy_template, response_after
from flip_reward.templates.families import GROUPS

STOPS = {
    "deepseek": "<｜end▁of▁sentence｜>",
    "gemma": "<end_of_turn>",
    "mistral": "</s>",
    "phi3": "<|end|>",
    "llama": "<|eot_id|>",
    "granite": "<|end_of_text|>",
    "glm": "<|user|>",
    "gpt-oss": "<|return|>",
    "tulu": "<|end_of_text|>",
    "olmo2": "<|endoftext|>",
}
FOLD = (
    "no instruction: no label, and the prompt reads two ways: {} folds a system prompt into the {} user turn, and "
    "that turn has a blank line: the text before it may be a system prompt or the user's own"
)
REFUSED = {
    ("gemma2", "paragraphs"): FOLD.format("gemma", "first"),
    **{("gemma3", c): FOLD.format("gemma", "first") for c in ("system", "system-multi", "paragraphs")},
    **{("mistral-v1", c): FOLD.format("mistral-v1", "first") for c in ("system", "system-multi", "paragraphs")},
    **{("mistral-v3", c): FOLD.format("mistral-v3", "last") for c in ("system", "system-multi", "paragraphs")},
    **{("mistral-tekken", c): FOLD.format("mistral-tekken", "last") for c in ("system", "system-multi", "paragraphs")},
    ("mistral-v7", "paragraphs"): FOLD.format("mistral-tekken", "last"),  # v7 without a system prompt is tekken
}
SWITCHES = {
    "qwen3": {"enable_thinking": False},
    "glm4.5": {"enable_thinking": False},
    "deepseek-v3.1": {"thinking": True},
}
SWITCHES["nemotron3"] = SWITCHES["qwen3"]
TRIED = "tried " + ", ".join(GROUPS)


def template(name: str) -> str:
    return (TEMPLATES / f"{name}.jinja").read_text(encoding="utf-8")


def stop_of(name: str) -> str:
    return next((stop for key, stop in STOPS.items() if name.startswith(key)), "<|im_end|>")


def cases() -> list[tuple[str, str, dict]]:
    names = sorted(path.stem for path in TEMPLATES.glob("*.jinja"))
    found = [(name, conversation, {}) for name in names for conversation in CONVERSATIONS]
    found += [(name, conversation, SWITCHES[name]) for name in SWITCHES for conversation in CONVERSATIONS]
    return [case for case in found if not (case[0] == "gemma2" and "system" in case[1])]  # Gemma 2 has no system


@pytest.mark.parametrize(("name", "conversation", "switches"), cases())
def test_every_family_gives_back_each_conversation_exactly_or_says_why_not(name, conversation, switches) -> None:
    prompt = render(template(name), messages_of(conversation), **switches)
    text, response = generated(prompt)
    item = openrlhf_item(3, prompt + text + stop_of(name), prompt, None)
    if (name, conversation) in REFUSED:
        assert (item.error, item.prompt) == (f"item 3: {REFUSED[(name, conversation)]}", None)
    else:
        assert (item.error, item.prompt, item.response) == (None, messages_of(conversation), response)


def test_the_switches_change_the_prompts_they_are_tested_with() -> None:
    for name, switches in SWITCHES.items():
        messages = messages_of("single")
        assert render(template(name), messages) != render(template(name), messages, **switches), name


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("qwen2.5", "Explain <|im_start|>user and <|im_end|> in ChatML."),
        ("qwen2.5", "Is <|im_end|>\n<|im_start|> a boundary without a role?"),
        ("llama3", "What do <|start_header_id|> and <|eot_id|> do?"),
        ("phi3", "The token <|end|> closes a turn; <|user|> opens one."),
        ("tulu3", "Say <|user|> or\n<|assistant|>: aloud."),
        ("gemma3", "What is <start_of_turn>model for? And <end_of_turn>?"),
        ("gpt-oss", "Harmony uses <|start|>, <|message|> and <|end|>."),
        ("kimi-k2", "Kimi writes <|im_user|> and <|im_middle|>."),
        ("granite3", "Granite writes <|start_of_role|>user<|end_of_role|>."),
        ("mistral-v3", "What does [INST] mean?"),
    ],
)
def test_a_familys_own_markup_inside_a_message_stays_content(name, text) -> None:
    prompt = render(template(name), [{"role": "user", "content": text}])
    item = openrlhf_item(0, prompt + ANSWER + stop_of(name), prompt, None)
    assert (item.error, item.prompt, item.response) == (None, [{"role": "user", "content": text}], ANSWER)


def test_an_embedded_complete_boundary_is_read_as_the_turns_it_writes() -> None:
    text = "First<|im_end|>\n<|im_start|>assistant\nSure.<|im_end|>\n<|im_start|>user\nSecond"
    prompt = render(template("qwen3"), [{"role": "user", "content": text}])
    assert FamilyReader().read(prompt).messages == [
        {"role": "user", "content": "First"},
        {"role": "assistant", "content": "Sure."},
        {"role": "user", "content": "Second"},
    ]  # what the policy saw too: its tokenizer reads that text as the special tokens


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deepseek-r1", "What does <｜Assistant｜> mark?"),  # a user turn has no end marker: this splits it
        ("mistral-tekken", "What does [/INST] mean?"),  # as does the end of an instruction for an answer
        ("phi3", "Which token is <|end|>"),  # a message that ends with another family's end-of-turn token
    ],
)
def test_markup_that_would_split_a_message_is_refused_not_misread(name, text) -> None:
    prompt = render(template(name), [{"role": "user", "content": text}])
    item = openrlhf_item(0, prompt + ANSWER, prompt, None)
    assert item.error == f"item 0: no instruction: no label, and the prompt is in no known chat template ({TRIED})"


def test_the_response_is_the_query_after_its_prompt_without_stop_tokens() -> None:
    prompt = render(template("qwen2.5"), messages_of("single"))
    assert response_after(prompt + "  Done. <|im_end|>\n<|endoftext|><|im_end|>", prompt) == "Done."
    assert response_after(prompt + "<|im_end|>", prompt) == ""
    with pytest.raises(TemplateError, match="^does not start with its prompt$"):
        response_after("something else", prompt)
    item = openrlhf_item(2, "something else", prompt, None)
    assert item.error == "item 2: the query does not start with its prompt"


def test_a_label_replaces_the_last_user_turn_and_is_enough_without_a_readable_prompt() -> None:
    prompt = render(template("phi3"), messages_of("system-multi"))
    item = openrlhf_item(0, prompt + ANSWER + "<|end|>", prompt, "  When was Hamlet written?  ")
    assert item.prompt == [*messages_of("system-multi")[:-1], {"role": "user", "content": "When was Hamlet written?"}]
    assert item.response == ANSWER
    unreadable = openrlhf_item(1, "Question: x\nAnswer: y</s>", "Question: x\nAnswer:", "What is x?")
    assert (unreadable.prompt, unreadable.response) == ([{"role": "user", "content": "What is x?"}], "y")


def test_an_adversarial_megabyte_of_unclosed_headers_is_one_items_error() -> None:
    for header, generation in (("<|im_start|>user\n", "<|im_start|>assistant\n"), ("<|user|>\n", "<|assistant|>\n")):
        prompt = header * (1_000_000 // len(header)) + generation
        item = openrlhf_item(5, prompt + ANSWER, prompt, None)
        assert item.error == f"item 5: no instruction: no label, and the prompt is in no known chat template ({TRIED})"


# --- pinned templates (--policy-template) ---------------------------------------------------------------------


def test_a_pinned_template_reads_what_the_families_must_refuse() -> None:
    pinned = load_policy_template(str(TEMPLATES / "mistral-v7.jinja"))
    for conversation in CONVERSATIONS:
        prompt = render(template("mistral-v7"), messages_of(conversation))
        reading = pinned.read(prompt)
        assert (reading.template, reading.messages) == ("mistral-v7.jinja", messages_of(conversation))
        assert reading.response(prompt + " " + ANSWER + "</s>", prompt) == ANSWER


def test_a_pinned_template_that_folds_the_system_prompt_refuses_a_blank_line_in_that_turn() -> None:
    pinned = load_policy_template(str(TEMPLATES / "gemma3.jinja"))
    assert pinned.read(render(template("gemma3"), messages_of("multi-turn"))).messages == messages_of("multi-turn")
    for conversation in ("system", "paragraphs"):
        expected = "the prompt reads two ways through the pinned template gemma3.jinja: the first user turn, which it "
        with pytest.raises(TemplateError, match=f"^{expected}folds a system prompt into, has a blank line$"):
            pinned.read(render(template("gemma3"), messages_of(conversation)))


def test_a_pinned_template_puts_back_the_thinking_its_generation_prompt_opens() -> None:
    pinned = load_policy_template(str(TEMPLATES / "olmo3.jinja"))
    prompt = render(template("olmo3"), messages_of("system"))
    reading = pinned.read(prompt)
    assert reading.messages == messages_of("system")
    assert reading.response(prompt + "plan</think>Done.<|im_end|>", prompt) == "<think>plan</think>Done."
    with pytest.raises(TemplateError, match="^the prompt does not re-render through the pinned template olmo3.jinja$"):
        pinned.read(render(template("qwen3"), messages_of("single")))


def test_a_tokenizer_directory_pins_its_template_with_its_special_tokens(tmp_path) -> None:
    source = "{{ bos_token }}" + template("phi3") + "{% if not add_generation_prompt %}{{ eos_token }}{% endif %}"
    config = {"bos_token": {"content": "<s>", "special": True}, "eos_token": "<|endoftext|>", "chat_template": source}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    pinned = load_policy_template(str(tmp_path))
    prompt = "<s>" + render(template("phi3"), messages_of("system-multi"))
    reading = pinned.read(prompt)
    assert (reading.template, reading.messages) == (tmp_path.name, messages_of("system-multi"))
    assert reading.response(prompt + ANSWER + "<|end|><|endoftext|>", prompt) == ANSWER
    (tmp_path / "chat_template.jinja").write_text(template("qwen2.5"), encoding="utf-8")  # newer transformers
    prompt = render(template("qwen2.5"), messages_of("single"))
    assert load_policy_template(str(tmp_path)).read(prompt).messages == messages_of("single")


def test_a_family_name_pins_that_family_alone() -> None:
    reader = load_policy_template("phi3")
    assert isinstance(reader, FamilyReader) and reader.names == ("phi3",)
    prompt = render(template("qwen2.5"), messages_of("single"))
    with pytest.raises(TemplateError, match=r"^the prompt is in no known chat template \(tried phi3\)$"):
        reader.read(prompt)


def test_an_unusable_policy_template_is_one_line_naming_the_option(tmp_path) -> None:
    (tmp_path / "tokenizer_config.json").write_text("{}", encoding="utf-8")
    (tmp_path / "broken.jinja").write_text("{% for %}", encoding="utf-8")
    (tmp_path / "silent.jinja").write_text("hello", encoding="utf-8")
    expected = {
        "nonsense": "--policy-template nonsense: not a template family ({}), an existing .jinja file or a tokenizer "
        "directory".format(", ".join(GROUPS)),
        str(tmp_path): f"--policy-template {tmp_path}: no chat template in it (neither chat_template.jinja nor "
        "tokenizer_config.json's)",
        str(tmp_path / "broken.jinja"): f"--policy-template {tmp_path / 'broken.jinja'}: Expected an expression, "
        "got 'end of statement block'",
        str(tmp_path / "silent.jinja"): f"--policy-template {tmp_path / 'silent.jinja'}: the template does not "
        "render a conversation of one user message",
    }
    for value, message in expected.items():
        with pytest.raises(ValueError) as raised:
            load_policy_template(value)
        assert str(raised.value) == message


def test_pinned_reading_is_a_round_trip_not_a_guess() -> None:
    pinned = PinnedTemplate(template("qwen2.5"), "qwen")
    prompt = render(template("qwen2.5"), messages_of("multi-turn"))
    assert pinned.read(prompt).messages == messages_of("multi-turn")
    with pytest.raises(TemplateError, match="^the prompt does not re-render through the pinned template qwen$"):
        pinned.read(prompt.split("<|im_end|>\n", 1)[1])  # without the system prompt it always writes


# --- review findings: every reading exact or refused -----------------------------------------------------------

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {}}}]
TOOL_CALL = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
TOOL_CONVERSATION = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [TOOL_CALL]},
    {"role": "tool", "content": "sunny"},
]
TWO_WAYS = "item 0: no instruction: no label, and the prompt reads two ways: "


def no_label_item(name: str, messages: list[dict], **switches: object):
    """The /get_reward item, without a label, of ``messages`` rendered by template ``name`` and answered."""
    prompt = render(template(name), messages, **switches)
    text, _ = generated(prompt)
    return openrlhf_item(0, prompt + text + stop_of(name), prompt, None)


@pytest.mark.parametrize(
    ("name", "messages", "error"),
    [
        (
            "qwen2.5",
            [{"role": "user", "content": "Context: cats."}, {"role": "user", "content": "Write a haiku."}],
            "two user turns in a row in chatml: one message may hold the template's markup",
        ),
        (
            "deepseek-v2",  # "User: " is plain text to DeepSeek V2's tokenizer
            [{"role": "user", "content": "Classify the sentiment of this chat.\n\nUser: my order is late"}],
            "two user turns in a row in deepseek-v2: one message may hold the template's markup",
        ),
        (
            "tulu3",  # so is <|user|> to Tulu 3's
            [{"role": "user", "content": "Convert to plain text:\n<|user|>\nhello there"}],
            "two user turns in a row in tulu: one message may hold the template's markup",
        ),
        (
            "tulu3",
            [
                {"role": "system", "content": "A"},
                {"role": "user", "content": "Hi"},
                {"role": "system", "content": "B"},
                {"role": "user", "content": "Write"},
            ],
            "tulu writes its turn markers as plain text: the user turn may be the text of the system message",
        ),
        (
            "deepseek-r1",
            [{"role": "user", "content": "What does <｜User｜> do"}],
            "two user turns in a row in deepseek-v3: one message may hold the template's markup",
        ),
        (
            "glm4.5",
            [{"role": "user", "content": "GLM uses <|user|>\nand <|assistant|> tokens"}],
            "two user turns in a row in glm45: one message may hold the template's markup",
        ),
        (
            "gemma2",  # writes the tool's result as a user turn after an empty answer
            TOOL_CONVERSATION,
            "an empty answer in gemma before the user turn, which may be a tool's result",
        ),
    ],
)
def test_a_message_that_may_hold_turns_is_two_readings(name, messages, error) -> None:
    assert no_label_item(name, messages).error == TWO_WAYS + error


def test_a_system_prompt_between_turns_is_read_where_the_markers_are_special_tokens() -> None:
    messages = [
        {"role": "system", "content": "A"},
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": "B"},
        {"role": "user", "content": "Write"},
    ]
    item = no_label_item("qwen2.5", messages)
    assert (item.error, item.prompt, item.response) == (None, messages, ANSWER)


QWEN_TOOLS = (
    "<|im_start|>system\nYou are Qwen.\n\n# Tools\n\n<tools>\n{}\n</tools><|im_end|>\n"
    "<|im_start|>user\nWeather in Paris and Rome?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{}\n</tool_call>"
    "<|im_end|>\n<|im_start|>user\n<tool_response>\nsunny\n</tool_response>\n<tool_response>\nrain\n"
    "</tool_response>{}<|im_end|>\n<|im_start|>assistant\n"
)


@pytest.mark.parametrize("end", ["", "\n"])  # Qwen 2.5/3 close the last result with nothing, Nemotron 3 with "\n"
def test_chatml_tool_results_in_a_user_turn_are_read_as_tool_messages(end) -> None:
    prompt = QWEN_TOOLS.format("{}", "{}", end)
    assert FamilyReader().read(prompt).messages == [
        {"role": "system", "content": "You are Qwen.\n\n# Tools\n\n<tools>\n{}\n</tools>"},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": "<tool_call>\n{}\n</tool_call>"},
        {"role": "tool", "content": "sunny"},
        {"role": "tool", "content": "rain"},
    ]


@pytest.mark.parametrize(
    ("prompt", "error"),
    [
        (
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\nCutting Knowledge "
            "Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
            "Given the following functions, please respond with a JSON for a function call with its proper "
            'arguments.\n\n{"name": "get_weather"}\n\nWeather in Paris?<|eot_id|>'
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
            "the prompt does not read exactly as llama3: the template put its tool list into the user turn",
        ),
        (
            "<|start|>user<|message|>Weather in Paris?<|end|><|start|>assistant to=functions.get_weather<|channel|>"
            'commentary json<|message|>{"city": "Paris"}<|call|><|start|>functions.get_weather to=assistant'
            '<|channel|>commentary<|message|>"sunny"<|end|><|start|>assistant',
            "the prompt does not read exactly as harmony: a tool call chain, which the reader does not read",
        ),
        (
            "[gMASK]<sop><|user|>\nSay /nothink<|assistant|>\n<think></think>",  # GLM adds none after a user's own
            "the prompt does not read exactly as glm45: the user may have written /nothink (the template then adds "
            "none)",
        ),
    ],
)
def test_a_turn_the_template_wrote_into_a_message_is_refused(prompt, error) -> None:
    assert openrlhf_item(0, prompt + ANSWER, prompt, None).error == f"item 0: no instruction: no label, and {error}"


def test_a_pinned_template_refuses_a_message_holding_its_markers() -> None:
    pinned = load_policy_template(str(TEMPLATES / "qwen2.5.jinja"))
    user, system = ({"role": role, "content": text} for role, text in (("user", "Write"), ("system", "B")))
    two_ways = "^the prompt reads two ways through the pinned template qwen2.5.jinja: "
    for messages in ([{"role": "user", "content": "Context: cats."}, user], [user, system, user]):
        with pytest.raises(TemplateError, match=two_ways + "the last user message holds the template's own markup$"):
            pinned.read(render(template("qwen2.5"), messages))
    gemma = load_policy_template(str(TEMPLATES / "gemma2.jinja"))
    with pytest.raises(TemplateError, match=r"^.* gemma2.jinja: the last user turn may be a tool's result$"):
        gemma.read(render(template("gemma2"), TOOL_CONVERSATION))


def test_a_pinned_harmony_template_reads_the_answer_out_of_its_channels() -> None:
    pinned = load_policy_template(str(TEMPLATES / "gpt-oss.jinja"))
    prompt = render(template("gpt-oss"), messages_of("single"))
    text, response = generated(prompt)
    assert pinned.read(prompt).response(prompt + text + "<|return|>", prompt) == response
    assert response == "<think>Let me think.</think>" + ANSWER


def test_a_pinned_template_with_trl_generation_blocks_loads_and_reads() -> None:
    marked = template("qwen2.5").replace(
        "{{- '<|im_start|>' ~ m.role ~ '\\n' ~ m.content ~ '<|im_end|>\\n' -}}",
        "{%- if m.role == 'assistant' -%}{{- '<|im_start|>assistant\\n' -}}{% generation %}"
        "{{- m.content ~ '<|im_end|>' -}}{% endgeneration %}{{- '\\n' -}}"
        "{%- else -%}{{- '<|im_start|>' ~ m.role ~ '\\n' ~ m.content ~ '<|im_end|>\\n' -}}{%- endif -%}",
    )
    assert "{% generation %}" in marked
    pinned = PinnedTemplate(marked, "trl-qwen")
    prompt = render(template("qwen2.5"), messages_of("multi-turn"))
    assert pinned.read(prompt).messages == messages_of("multi-turn")


def test_a_pinned_template_that_adds_text_unless_the_message_has_it_refuses_a_message_ending_with_it() -> None:
    source = template("glm4.5").replace(
        "('/nothink' if nothink else '')", "('/nothink' if nothink and not m.content.endswith('/nothink') else '')"
    )
    assert source != template("glm4.5")
    pinned = PinnedTemplate(source, "glm")
    no_thinking = {"enable_thinking": False}
    for content in (
        "Write a haiku.",
        "Write a haiku./nothink",
    ):  # the same prompt: the template adds none to the second
        prompt = render(source, [{"role": "user", "content": content}], **no_thinking)
        assert pinned.read(prompt).messages == [{"role": "user", "content": "Write a haiku."}]
    prompt = render(source, [{"role": "user", "content": "Say /nothink"}], **no_thinking)
    expected = (
        "the prompt reads two ways through the pinned template glm: the last user message may end with '/nothink' "
        "itself (the template then adds none)"
    )
    with pytest.raises(TemplateError, match=f"^{re.escape(expected)}$"):
        pinned.read(prompt)


VARIANT = {
    "deepseek-r1": "deepseek-v3",
    "deepseek-v3.1": "deepseek-v3",
    "gemma2": "gemma",
    "gemma3": "gemma",
    "glm4.5": "glm45",
    "gpt-oss": "harmony",
    "granite3": "granite",
    "kimi-k2": "kimi",
    "llama3.1": "llama3",
    "mistral-v7": "mistral-tekken",
    "olmo2": "tulu",
    "tulu3": "tulu",
    **dict.fromkeys(("lfm2", "nemotron3", "olmo3", "qwen2.5", "qwen3", "qwq"), "chatml"),
}
CONSECUTIVE_USERS = [
    {"role": "user", "content": "Context: the cat sleeps all day."},
    {"role": "user", "content": "Write a haiku about it."},
]
MID_SYSTEM = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "Who wrote Hamlet?"},
    {"role": "assistant", "content": "Shakespeare."},
    {"role": "system", "content": "Now answer in French."},
    {"role": "user", "content": "And Faust?"},
]
PLAIN = "{} writes its turn markers as plain text: the user turn may be the text of the system message"
MID_SYSTEM_REFUSED = {
    **{name: f"the prompt is in no known chat template ({TRIED})" for name in ("deepseek-r1", "deepseek-v2")},
    "deepseek-v3.1": f"the prompt is in no known chat template ({TRIED})",  # DeepSeek writes it bare mid-conversation
    "gemma3": FOLD.format("gemma", "first").removeprefix("no instruction: no label, and "),
    "mistral-v1": FOLD.format("mistral-v1", "first").removeprefix("no instruction: no label, and "),
    "mistral-v3": FOLD.format("mistral-v3", "last").removeprefix("no instruction: no label, and "),
    "mistral-tekken": FOLD.format("mistral-tekken", "last").removeprefix("no instruction: no label, and "),
    "olmo2": "the prompt reads two ways: " + PLAIN.format("tulu"),
    "tulu3": "the prompt reads two ways: " + PLAIN.format("tulu-llama"),
}


@pytest.mark.parametrize("name", sorted(path.stem for path in TEMPLATES.glob("*.jinja")))
def test_consecutive_user_turns_are_refused_in_every_family(name) -> None:
    variant = VARIANT.get(name, name)
    expected = f"two user turns in a row in {variant}: one message may hold the template's markup"
    assert no_label_item(name, CONSECUTIVE_USERS).error == TWO_WAYS + expected


@pytest.mark.parametrize("name", sorted(path.stem for path in TEMPLATES.glob("*.jinja") if path.stem != "gemma2"))
def test_a_system_prompt_mid_conversation_is_read_or_refused(name) -> None:
    item = no_label_item(name, MID_SYSTEM)
    if name in MID_SYSTEM_REFUSED:
        assert item.error == f"item 0: no instruction: no label, and {MID_SYSTEM_REFUSED[name]}"
    elif name == "llama3.1":  # the template itself leaves out a system prompt after the first turn
        assert (item.error, item.prompt) == (None, MID_SYSTEM[:3] + MID_SYSTEM[4:])
    else:
        expected = generated(render(template(name), MID_SYSTEM))[1]
        assert (item.error, item.prompt, item.response) == (None, MID_SYSTEM, expected)


def test_without_transformers_a_pinned_template_renders_generation_blocks_as_their_body() -> None:
    code = (
        "import sys; sys.modules['transformers'] = None\n"  # an import of transformers now raises ImportError
        "from flip_reward.templates import PinnedTemplate\n"
        "source = \"{% for m in messages %}<{{ m.role }}>{% if m.role == 'assistant' %}{% generation %}"
        "{{ m.content }}{% endgeneration %}{% else %}{{ m.content }}{% endif %}</{{ m.role }}>{% endfor %}"
        '{% if add_generation_prompt %}<assistant>{% endif %}"\n'
        "print(PinnedTemplate(source, 't').read('<user>Hi</user><assistant>Yo</assistant><user>Go</user><assistant>')"
        ".messages)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    expected = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Yo"},
        {"role": "user", "content": "Go"},
    ]
    assert done.stdout == f"{expected}\n"
