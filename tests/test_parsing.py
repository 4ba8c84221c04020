"""Tests for flip_reward.core.parsing: a corpus of well-formed and malformed judge outputs with exact expected values."""

from __future__ import annotations

import random

import pytest

from flip_reward.core.parsing import extract_field, parse_inferred_instruction, parse_reasoning

HAIKU = "Write a haiku about rain."
REF = '{"REASONING": "The response is a haiku about rain.", "INFERRED INSTRUCTION": "Write a haiku about rain."}'

QWEN3 = (
    "<think>\nOkay, the response lists three tips: a fixed bedtime, no screens, a cool room. So the user "
    'probably asked for sleep tips. I should answer with "INFERRED INSTRUCTION": "..." in JSON.\n</think>\n\n'
    '```json\n{\n  "REASONING": "The response gives three numbered tips for better sleep.",\n'
    '  "INFERRED INSTRUCTION": "Give me three tips for sleeping better."\n}\n```<|im_end|>\n<|endoftext|>'
)
LLAMA3 = (
    "<|start_header_id|>assistant<|end_header_id|>\n\nHere is my analysis in the requested format:\n\n{\n"
    '"REASONING": "The text is a cover letter for a junior data analyst role.",\n'
    '"INFERRED INSTRUCTION": "Write a cover letter for a junior data analyst position."\n}\n\n'
    "I hope this helps!<|eot_id|>"
)
NOISY = 'he said "no" twice. ' * 400  # unescaped quotes: only json_repair reads it, and the object is long
LONG_BROKEN = '{"REASONING": "' + NOISY + '", "INFERRED INSTRUCTION": "Write a dialogue."}'
LONG_TRUNCATED = '{"REASONING": "' + NOISY + '", "INFERRED INSTRUCTION": "Write a dia'

INSTRUCTION_CASES = [
    # --- well-formed and lightly wrapped JSON
    ("reference", REF, HAIKU),
    ("fenced_json", f"```json\n{REF}\n```", HAIKU),
    ("fenced_bare", f"```\n{REF}\n```", HAIKU),
    ("fenced_tilde", f"~~~json\n{REF}\n~~~", HAIKU),
    ("crlf", '{\r\n  "REASONING": "r",\r\n  "INFERRED INSTRUCTION": "Write a haiku about rain."\r\n}\r\n', HAIKU),
    ("crlf_raw_inside_value", '{"INFERRED INSTRUCTION": "Line one.\r\nLine two."}', "Line one.\nLine two."),
    ("prose_around", f"Sure! Here is my answer:\n\n{REF}\n\nLet me know if you need anything else.", HAIKU),
    ("bom", "\ufeff" + REF, HAIKU),
    ("array_wrapped", f"[{REF}]", HAIKU),
    ("value_padded", '{"INFERRED INSTRUCTION": "  \\n Write a haiku about rain.\\n "}', HAIKU),
    # --- several or nested objects
    ("second_object_holds_key", '{"REASONING": "draft"}\n{"INFERRED INSTRUCTION": "Second."}', "Second."),
    ("last_object_wins", '{"INFERRED INSTRUCTION": "First."} then {"INFERRED INSTRUCTION": "Second."}', "Second."),
    ("later_object_without_key", '{"INFERRED INSTRUCTION": "First."}\n{"confidence": 0.9}', "First."),
    (
        "nested_objects",
        '{"REASONING": {"steps": ["a", "b"]}, "INFERRED INSTRUCTION": "Do X.", "meta": {"k": 1}}',
        "Do X.",
    ),
    ("key_only_nested", '{"result": {"INFERRED INSTRUCTION": "Nested."}}', "Nested."),
    (
        "braces_in_strings",
        '{"REASONING": "uses {x} and }", "INFERRED INSTRUCTION": "Fill in {name}."}',
        "Fill in {name}.",
    ),
    (
        "stray_brace_in_prose",
        'It uses a { brace.\n{"REASONING": "r", "INFERRED INSTRUCTION": "Explain it."}',
        "Explain it.",
    ),
    # --- key spellings and mentions of the key
    (
        "reasoning_mentions_key",
        '{"REASONING": "I fill the INFERRED INSTRUCTION field.", "INFERRED INSTRUCTION": "Go."}',
        "Go.",
    ),
    (
        "reasoning_quotes_key_value",
        '{"REASONING": "not \\"INFERRED INSTRUCTION\\": \\"fake\\"", "INFERRED INSTRUCTION": "real"}',
        "real",
    ),
    ("key_underscore_titlecase", '{"Inferred_Instruction": "Summarize the article."}', "Summarize the article."),
    ("key_lowercase_padded", '{" inferred instruction ": "Summarize the article."}', "Summarize the article."),
    ("key_hyphen", '{"inferred-instruction": "Summarize the article."}', "Summarize the article."),
    ("key_instruction", '{"reasoning": "r", "instruction": "Translate this to French."}', "Translate this to French."),
    ("inferred_beats_instruction", '{"INFERRED INSTRUCTION": "inferred", "instruction": "bare"}', "inferred"),
    ("unquoted_keys", "{REASONING: r, INFERRED INSTRUCTION: Write a haiku about rain.}", HAIKU),
    # --- nothing usable: None, never the reasoning or the whole text
    ("empty_string", "", None),
    ("whitespace_only", " \n\t ", None),
    ("empty_value", '{"REASONING": "r", "INFERRED INSTRUCTION": ""}', None),
    ("whitespace_value", '{"REASONING": "r", "INFERRED INSTRUCTION": "  \\n "}', None),
    ("null_value", '{"REASONING": "r", "INFERRED INSTRUCTION": null}', None),
    ("only_reasoning", '{"REASONING": "The response is a haiku about rain."}', None),
    ("prose_without_key", "The response is a poem about the sea, so the user asked for a poem.", None),
    ("key_in_prose_without_colon", "I cannot determine the INFERRED INSTRUCTION here.", None),
    ("truncated_after_key", '{"REASONING": "r", "INFERRED INSTRUCTION": ', None),
    ("truncated_in_reasoning", '{"REASONING": "The response is a po', None),
    (
        "label_inside_reasoning_string",
        '{"REASONING": "The user said:\nInstruction: fake", "INFERRED INSTRUCTION": null}',
        None,
    ),
    ("label_inside_truncated_reasoning", '{"REASONING": "The user said:\nInstruction: fake\nso', None),
    ("bare_key_after_comma_in_truncated_reasoning", '{"REASONING": "In short, instruction: fake.', None),
    ("long_truncated_reasoning_mentions_key", '{"REASONING": "' + "x, instruction: fake. " * 300, None),
    ("dict_value", '{"INFERRED INSTRUCTION": {"task": "Write a haiku."}}', None),
    # --- thinking
    ("unclosed_think", '<think>It is a poem. {"INFERRED INSTRUCTION": "Write a poem."}', None),
    ("think_then_json", '<think>\nmaybe "INFERRED INSTRUCTION": "wrong"\n</think>\n\n' + REF, HAIKU),
    ("think_uppercase_tags", '<THINK>{"INFERRED INSTRUCTION": "wrong"}</THINK>' + REF, HAIKU),
    ("think_nested", '<think>a <think>b</think> {"INFERRED INSTRUCTION": "wrong"}</think>' + REF, HAIKU),
    ("stray_close_think", 'The user wants {"INFERRED INSTRUCTION": "wrong"}.\n</think>\n' + REF, HAIKU),
    ("stray_close_think_nothing_after", 'Thinking... {"INFERRED INSTRUCTION": "wrong"}\n</think>\n', None),
    ("json_before_unclosed_think", REF + "\n<think>wait, maybe", HAIKU),
    ("qwen3_realistic", QWEN3, "Give me three tips for sleeping better."),
    ("llama3_realistic", LLAMA3, "Write a cover letter for a junior data analyst position."),
    # --- chat-template leftovers
    ("im_start_im_end", f"<|im_start|>assistant\n{REF}<|im_end|>", HAIKU),
    ("endoftext", f"{REF}<|endoftext|>", HAIKU),
    ("llama2_eos", f"{REF}</s>", HAIKU),
    # --- non-string values
    ("list_value", '{"INFERRED INSTRUCTION": ["Write a poem.", "Make it rhyme."]}', "Write a poem.\nMake it rhyme."),
    ("list_mixed_items", '{"INFERRED INSTRUCTION": ["Step one.", 2, null, {"x": 1}, [3], "  "]}', "Step one.\n2"),
    ("empty_list", '{"INFERRED INSTRUCTION": []}', None),
    ("int_value", '{"INFERRED INSTRUCTION": 42}', "42"),
    ("float_value", '{"INFERRED INSTRUCTION": 4.5}', "4.5"),
    ("bool_value", '{"INFERRED INSTRUCTION": true}', "True"),
    # --- broken JSON
    (
        "truncated_value",
        '{"REASONING": "r", "INFERRED INSTRUCTION": "Write a poem about the se',
        "Write a poem about the se",
    ),
    ("truncated_fenced", '```json\n{"REASONING": "r", "INFERRED INSTRUCTION": "Write a poem', "Write a poem"),
    (
        "single_quotes",
        "{'REASONING': 'The user's request', 'INFERRED INSTRUCTION': 'Write a limerick.'}",
        "Write a limerick.",
    ),
    ("trailing_comma", '{"REASONING": "r", "INFERRED INSTRUCTION": "Write a limerick.",}', "Write a limerick."),
    ("missing_comma", '{"REASONING": "r"\n"INFERRED INSTRUCTION": "Write a limerick."}', "Write a limerick."),
    (
        "unescaped_quotes",
        '{"REASONING": "r", "INFERRED INSTRUCTION": "Write a story titled "The Last Leaf" for kids."}',
        'Write a story titled "The Last Leaf" for kids.',
    ),
    ("unescaped_quote_swallows_key", '{"REASONING": "He said "hi"", "INFERRED INSTRUCTION": "Say hi."}', "Say hi."),
    (
        "raw_newlines",
        '{"REASONING": "a\nb", "INFERRED INSTRUCTION": "List:\n1. apples\n2. pears"}',
        "List:\n1. apples\n2. pears",
    ),
    ("escaped_newline_and_tab", '{"INFERRED INSTRUCTION": "List:\\n1. apples\\tpears"}', "List:\n1. apples\tpears"),
    (
        "latex_single_backslash",
        r'{"INFERRED INSTRUCTION": "Simplify \frac{a}{b} + \(x^2\) \times 3"}',
        r"Simplify \frac{a}{b} + \(x^2\) \times 3",
    ),
    (
        "latex_escaped_backslash",
        r'{"INFERRED INSTRUCTION": "Simplify \\frac{a}{b} \\nabla f"}',
        r"Simplify \frac{a}{b} \nabla f",
    ),
    (
        "latex_beside_newline_escape",
        r'{"INFERRED INSTRUCTION": "Solve \beta x = 1.\nThen \text{stop}."}',
        "Solve \\beta x = 1.\nThen \\text{stop}.",
    ),
    (
        "latex_in_broken_json",
        r'{"REASONING": "r", "INFERRED INSTRUCTION": "Prove \nabla \cdot F = 0",}',
        r"Prove \nabla \cdot F = 0",
    ),
    ("long_broken_object", LONG_BROKEN, "Write a dialogue."),
    ("long_truncated_object", LONG_TRUNCATED, "Write a dia"),
    # --- plain-text forms
    ("plain_labels", "REASONING: The response is a haiku.\nINFERRED INSTRUCTION: Write a haiku about rain.", HAIKU),
    (
        "plain_multiline_stops_at_label",
        "INFERRED INSTRUCTION: Write a haiku.\nMake it rhyme.\n\nREASONING: r",
        "Write a haiku.\nMake it rhyme.",
    ),
    ("bold_colon_inside", "**Reasoning:** r\n\n**Inferred Instruction:** Write a haiku about rain.", HAIKU),
    ("bold_colon_outside", "**INFERRED INSTRUCTION**: Write a haiku about rain.\n**REASONING**: r", HAIKU),
    ("bold_whole_line", "**Inferred Instruction: Write a haiku about rain.**", HAIKU),
    ("bold_heading_line", "**Inferred Instruction**\nWrite a haiku about rain.", HAIKU),
    (
        "markdown_heading",
        "## Reasoning\nr\n\n## Inferred Instruction\nWrite a haiku.\nAbout rain.\n",
        "Write a haiku.\nAbout rain.",
    ),
    ("bullet_label", "- Reasoning: r\n- Inferred instruction: Write a haiku about rain.", HAIKU),
    ("plain_quoted_value", 'Inferred instruction: "Write a haiku about rain."', HAIKU),
    ("plain_in_fence", "```\nINFERRED INSTRUCTION: Write a haiku about rain.\n```", HAIKU),
    ("plain_instruction_label", "Instruction: Write a haiku about rain.", HAIKU),
    ("plain_braces_kept", "INFERRED INSTRUCTION: Fill in {name} and {date}.", "Fill in {name} and {date}."),
    ("plain_latex_kept", r"INFERRED INSTRUCTION: Simplify \frac{a}{b}.", r"Simplify \frac{a}{b}."),
    ("braceless_json_pairs", '"REASONING": "r",\n"INFERRED INSTRUCTION": "Write a haiku about rain."', HAIKU),
    ("plain_label_empty_value", "INFERRED INSTRUCTION:\nREASONING: r", None),
    ("plain_after_json_without_key", '{"REASONING": "r"}\nINFERRED INSTRUCTION: Write a haiku about rain.', HAIKU),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in INSTRUCTION_CASES], ids=[c[0] for c in INSTRUCTION_CASES]
)
def test_parse_inferred_instruction(text: str, expected: str | None) -> None:
    assert parse_inferred_instruction(text) == expected


def test_case_ids_are_unique() -> None:
    assert len({c[0] for c in INSTRUCTION_CASES}) == len(INSTRUCTION_CASES)


@pytest.mark.parametrize("value", [None, b'{"INFERRED INSTRUCTION": "x"}', 42, ["x"], {"INFERRED INSTRUCTION": "x"}])
def test_non_string_input_is_none(value: object) -> None:
    assert parse_inferred_instruction(value) is None  # type: ignore[arg-type]
    assert parse_reasoning(value) is None  # type: ignore[arg-type]
    assert extract_field(value, ["INFERRED INSTRUCTION"]) is None  # type: ignore[arg-type]


def test_huge_inputs() -> None:
    thinking = "<think>" + "hmm " * 20_000 + "</think>"
    long_valid = thinking + '{"REASONING": "' + "word " * 40_000 + '", "INFERRED INSTRUCTION": "X"}'
    assert parse_inferred_instruction(long_valid) == "X"
    long_noisy = '{"REASONING": "' + 'he said "no". ' * 15_000 + '", "INFERRED INSTRUCTION": "Write a'
    assert parse_inferred_instruction(long_noisy) == "Write a"
    assert parse_inferred_instruction("{" * 200_000) is None
    assert parse_inferred_instruction('{"a": 1}' * 25_000) is None
    assert parse_inferred_instruction("," + " " * 100_000 + "INFERRED INSTRUCTION" + " " * 100_000) is None
    backslashes = parse_inferred_instruction('{"INFERRED INSTRUCTION": "' + "\\" * 50_001)
    assert backslashes is not None and set(backslashes) == {"\\"}  # how many survive is json_repair's business


def test_binary_garbage() -> None:
    rng = random.Random(1)
    text = bytes(rng.getrandbits(8) for _ in range(50_000)).decode("latin-1")
    assert parse_inferred_instruction(text) is None
    assert parse_reasoning(text) is None


FIELD_CASES = [
    ("score_int", '{"REASONING": "r", "SCORE": 7}', ["SCORE"], 7),
    ("score_str", '{"REASONING": "r", "SCORE": "7"}', ["SCORE"], "7"),
    ("score_float", '{"score": 7.5}', ["SCORE"], 7.5),
    ("score_plain_label", "REASONING: fine\nSCORE: 8", ["SCORE"], "8"),
    ("score_bold_label", "**Score:** 9/10", ["SCORE"], "9/10"),
    ("score_truncated_after_number", '{"REASONING": "r", "SCORE": 6', ["SCORE"], 6),
    ("better_response", '{"REASONING": "B is clearer.", "BETTER_RESPONSE": "B"}', ["BETTER_RESPONSE"], "B"),
    ("better_response_spaced_key", '{"better response": "A"}', ["BETTER_RESPONSE"], "A"),
    ("best_response_index", '```json\n{"BEST_RESPONSE_INDEX": 2}\n```', ["BEST_RESPONSE_INDEX"], 2),
    ("name_priority", '{"a": 1, "b": 2}', ["b", "a"], 2),
    ("single_name_string", '{"SCORE": 3}', "SCORE", 3),
    ("list_returned_raw", '{"X": ["a", 1]}', ["X"], ["a", 1]),
    ("dict_returned_raw", '{"X": {"y": 1}}', ["X"], {"y": 1}),
    ("bool_returned_raw", '{"X": false}', ["X"], False),
    ("string_returned_unstripped", '{"X": " a "}', ["X"], " a "),
    ("null_value", '{"X": null, "Y": 1}', ["X"], None),
    ("missing_key", '{"Y": 1}', ["X"], None),
    ("no_names", '{"X": 1}', [], None),
    ("blank_name_ignored", '{"X": 1}', ["  ", "X"], 1),
]


@pytest.mark.parametrize(
    ("text", "names", "expected"), [c[1:] for c in FIELD_CASES], ids=[c[0] for c in FIELD_CASES]
)
def test_extract_field(text: str, names: list[str], expected: object) -> None:
    result = extract_field(text, names)
    assert result == expected
    assert type(result) is type(expected)  # 7, 7.5 and "7" are distinct answers


REASONING_CASES = [
    ("reference", REF, "The response is a haiku about rain."),
    (
        "plain_multiline",
        "REASONING: It rhymes.\nIt is short.\nINFERRED INSTRUCTION: Write a poem.",
        "It rhymes.\nIt is short.",
    ),
    ("truncated", '{"REASONING": "The response is a po', "The response is a po"),
    ("qwen3", QWEN3, "The response gives three numbered tips for better sleep."),
    ("only_instruction", '{"INFERRED INSTRUCTION": "Write a poem."}', None),
    ("inside_unclosed_think", '<think>{"REASONING": "hidden"}', None),
    ("prose", "Just some prose.", None),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in REASONING_CASES], ids=[c[0] for c in REASONING_CASES])
def test_parse_reasoning(text: str, expected: str | None) -> None:
    assert parse_reasoning(text) == expected


_ALPHABET = list('{}[]"\':,\\ \n\t\r#*`~-_abcxyz0129') + [
    "INFERRED INSTRUCTION", "inferred_instruction", "instruction", "REASONING", "<think>", "</think>",
    "<|im_end|>", "```json", "\\frac", "\\u00e9", "\\u12", "null", "true", "\x00", "\ufeff", "\ud800", "é", "🙂",
]


def _garbage(rng: random.Random) -> str:
    """Random tokens from a hostile alphabet, or two corpus cases cut and spliced at random points."""
    if rng.random() < 0.5:
        return "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 80)))
    a, b = rng.choice(INSTRUCTION_CASES)[1], rng.choice(INSTRUCTION_CASES)[1]
    return a[: rng.randint(0, len(a))] + b[rng.randint(0, len(b)) :]


def test_random_garbage_never_raises() -> None:
    rng = random.Random(20240601)
    for _ in range(400):
        text = _garbage(rng)
        result = parse_inferred_instruction(text)
        assert result is None or (isinstance(result, str) and result and result == result.strip()), text
        reasoning = parse_reasoning(text)
        assert reasoning is None or isinstance(reasoning, str), text


def test_parse_flip_answer_equals_the_two_parsers():
    texts = ['```json\n{"REASONING": "r", "INFERRED INSTRUCTION": "i"}\n```', "REASONING: a\nINSTRUCTION: b",
             '{"REASONING": "only"}', "<think>x", "", '{"INFERRED INSTRUCTION": "Write a po']
    from flip_reward.core.parsing import parse_flip_answer, parse_reasoning

    for text in texts:
        assert parse_flip_answer(text) == (parse_inferred_instruction(text), parse_reasoning(text))
