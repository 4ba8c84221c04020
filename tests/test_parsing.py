"""Tests for flip_reward.core.parsing: a corpus of well-formed and malformed judge outputs, exact expected values."""

from __future__ import annotations

import json
import random
import re

import pytest
from flip_reward.prompts import render

from flip_reward.core.parsing import (
    INSTRUCTION_KEYS,
    extract_field,
    parse_flip_answer,
    parse_inferred_instruction,
    parse_reasoning,
)

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
    for cases in SHAPE_CASES.values():
        assert len({c[0] for c in cases}) == len(cases)


# --- answer shapes beyond the template: one list of variants per shape, each read by parse_inferred_instruction

XML_TAG_CASES = [
    (
        "snake_case_pair",
        "<reasoning>It is a haiku.</reasoning>\n<inferred_instruction>Write a haiku about rain.</inferred_instruction>",
        HAIKU,
    ),
    (
        "spaced_uppercase",
        "<REASONING>r</REASONING>\n<INFERRED INSTRUCTION>Write a haiku about rain.</INFERRED INSTRUCTION>",
        HAIKU,
    ),
    ("hyphen_mixed_case", "<Inferred-Instruction>Write a haiku about rain.</inferred-instruction>", HAIKU),
    ("padded_tag_names", "< inferred_instruction >Write a haiku about rain.</ inferred_instruction >", HAIKU),
    ("bare_instruction_tag", "<instruction>\nWrite a haiku about rain.\n</instruction>", HAIKU),
    (
        "multiline_content",
        "<inferred_instruction>\nList:\n1. apples\n2. pears\n</inferred_instruction>",
        "List:\n1. apples\n2. pears",
    ),
    ("quoted_content", '<inferred_instruction>"Write a haiku about rain."</inferred_instruction>', HAIKU),
    ("prose_around", f"Here it is:\n<inferred_instruction>{HAIKU}</inferred_instruction>\nThanks!", HAIKU),
    ("fenced", f"```xml\n<reasoning>r</reasoning>\n<inferred_instruction>{HAIKU}</inferred_instruction>\n```", HAIKU),
    ("truncated_unclosed", "<reasoning>r</reasoning>\n<inferred_instruction>Write a haiku ab", "Write a haiku ab"),
    (
        "truncated_unclosed_multiline",
        "<reasoning>r</reasoning>\n<INFERRED_INSTRUCTION>\nWrite a haiku.\nMake it  \n",
        "Write a haiku.\nMake it",
    ),
    ("unclosed_before_next_tag", f"<inferred_instruction>{HAIKU}\n<reasoning>r</reasoning>", HAIKU),
    ("last_element_wins", "<instruction>Draft.</instruction>\n<instruction>Final.</instruction>", "Final."),
    (
        "content_with_html",
        "<inferred_instruction>Explain what <div> does in HTML.</inferred_instruction>",
        "Explain what <div> does in HTML.",
    ),
    (
        "content_with_json",
        '<inferred_instruction>Return {"name": "x"} as YAML.</inferred_instruction>',
        'Return {"name": "x"} as YAML.',
    ),
    (
        "tag_mentioned_in_reasoning",
        f"<reasoning>The reply uses <instruction> tags.</reasoning>\n<instruction>{HAIKU}</instruction>",
        HAIKU,
    ),
    (
        "label_inside_reasoning_tag",
        "<reasoning>The user said:\nInstruction: fake</reasoning>\n<inferred_instruction>Write a haiku ab",
        "Write a haiku ab",
    ),
    (
        "json_inside_reasoning_tag",
        f'<reasoning>Not {{"INFERRED INSTRUCTION": "fake"}}.</reasoning>\n<instruction>{HAIKU}</instruction>',
        HAIKU,
    ),
    (
        "tag_in_json_value_kept",
        '{"INFERRED INSTRUCTION": "Explain the <instruction> tag."}',
        "Explain the <instruction> tag.",
    ),
    ("tag_in_label_value_kept", "INSTRUCTION: Explain the <instruction> tag.", "Explain the <instruction> tag."),
    ("tags_inside_json_string", '{"REASONING": "It uses <instruction>fake</instruction> tags."}', None),
    ("only_reasoning_tag", "<reasoning>It is a haiku.</reasoning>", None),
    ("empty_element", "<inferred_instruction>  </inferred_instruction>", None),
    ("unknown_tag", f"<reply>{HAIKU}</reply>", None),
]

_TWICE = json.dumps(REF)  # the reference answer as a JSON string literal: "{\"REASONING\": ...}"
DOUBLE_ENCODED_CASES = [
    (
        "literal",
        '"{\\"REASONING\\": \\"r\\", \\"INFERRED INSTRUCTION\\": \\"Write a haiku about rain.\\"}"',
        HAIKU,
    ),
    ("dumps_twice", _TWICE, HAIKU),
    ("pretty_printed", json.dumps(json.dumps(json.loads(REF), indent=2)), HAIKU),
    ("padded", f"\n  {_TWICE}  \n", HAIKU),
    ("fenced_json", f"```json\n{_TWICE}\n```", HAIKU),
    ("fenced_bare", f"```\n{_TWICE}\n```", HAIKU),
    ("trailing_prose", f"{_TWICE}\n\nHope this helps!", HAIKU),
    ("after_thinking", f"<think>hmm</think>\n{_TWICE}", HAIKU),
    ("encoded_three_times", json.dumps(_TWICE), HAIKU),
    ("truncated", _TWICE[:-8], "Write a haiku about r"),
    ("truncated_inside_escape", _TWICE[:-7], "Write a haiku about ra"),
    ("escapes_inside", json.dumps('{"INFERRED INSTRUCTION": "List:\\n1. apples"}'), "List:\n1. apples"),
    ("array_wrapped", json.dumps(f"[{REF}]"), HAIKU),
    ("quoted_prose_untouched", f'"{HAIKU}"', None),
    ("quoted_broken_json", '"{not json"', None),
    ("literal_then_label_kept", '"{name}" is a placeholder.\nINFERRED INSTRUCTION: Fill in {name}.', "Fill in {name}."),
]

CURLY_QUOTE_CASES = [
    ("double_curly", "{“INFERRED INSTRUCTION”: “Write a haiku about rain.”}", HAIKU),
    ("double_curly_two_keys", "{“REASONING”: “r”, “INFERRED INSTRUCTION”: “Write a haiku about rain.”}", HAIKU),
    (
        "apostrophe_kept_in_double_curly",
        "{“REASONING”: “The reply’s tone is calm.”, “INFERRED INSTRUCTION”: “Write a poem about the sea’s moods”}",
        "Write a poem about the sea’s moods",
    ),
    ("single_curly", "{‘INFERRED INSTRUCTION’: ‘Write a haiku about rain.’}", HAIKU),
    (
        "apostrophe_kept_in_single_curly",
        "{‘REASONING’: ‘r’, ‘INFERRED INSTRUCTION’: ‘Write a poem about the sea’s moods’}",
        "Write a poem about the sea’s moods",
    ),
    (
        "straight_apostrophe_in_single_curly",
        "{‘INFERRED INSTRUCTION’: ‘Write a poem about the sea's moods’}",
        "Write a poem about the sea's moods",
    ),
    ("curly_value_straight_key", '{"REASONING": "r", "INFERRED INSTRUCTION": “Write a haiku about rain.”}', HAIKU),
    ("pretty_missing_commas", "{\n  “REASONING”: “r”\n  “INFERRED INSTRUCTION”: “Write a haiku about rain.”\n}", HAIKU),
    ("fenced", "```json\n{“REASONING”: “r”, “INFERRED INSTRUCTION”: “Write a haiku about rain.”}\n```", HAIKU),
    ("truncated", "{“REASONING”: “r”, “INFERRED INSTRUCTION”: “Write a haiku ab", "Write a haiku ab"),
    (
        "curly_inside_valid_json_kept",
        '{"INFERRED INSTRUCTION": "Write a story titled “The Last Leaf”, for kids."}',
        "Write a story titled “The Last Leaf”, for kids.",
    ),
    ("plain_label", "“Inferred instruction”: “Write a haiku about rain.”", HAIKU),
    ("braceless_pairs", "“REASONING”: “r”,\n“INFERRED INSTRUCTION”: “Write a haiku about rain.”", HAIKU),
    ("plain_value", "Inferred instruction: “Write a haiku about rain.”", HAIKU),
    (
        "plain_single_value",
        "Inferred instruction: ‘Write a poem about the sea’s moods’",
        "Write a poem about the sea’s moods",
    ),
]

DASH_AND_NUMBERED_LABEL_CASES = [
    ("hyphen", "INFERRED INSTRUCTION - Write a haiku about rain.", HAIKU),
    ("double_hyphen", "Inferred instruction -- Write a haiku about rain.", HAIKU),
    ("em_dash", "Inferred instruction — Write a haiku about rain.", HAIKU),
    ("en_dash_unspaced", "Inferred instruction–Write a haiku about rain.", HAIKU),
    ("bold_then_dash", "**Inferred instruction** — Write a haiku about rain.", HAIKU),
    ("after_dash_reasoning", "Reasoning - It is a haiku.\nInferred instruction - Write a haiku about rain.", HAIKU),
    ("stops_at_dash_label", "INFERRED INSTRUCTION - Write a haiku about rain.\nREASONING - r", HAIKU),
    ("numbered_dot", "1. Reasoning: r\n2. Inferred Instruction: Write a haiku about rain.", HAIKU),
    ("numbered_paren_bold", "1) **Reasoning**: r\n2) **Inferred instruction**: Write a haiku about rain.", HAIKU),
    ("numbered_parenthesised", "(2) Inferred instruction: Write a haiku about rain.", HAIKU),
    ("bold_around_number", "**2. Inferred instruction:** Write a haiku about rain.", HAIKU),
    ("numbered_heading", "## 2. Inferred Instruction\nWrite a haiku about rain.", HAIKU),
    ("numbered_dash", "2. Inferred instruction — Write a haiku about rain.", HAIKU),
    ("stops_at_numbered_label", "1. Inferred instruction: Write a haiku about rain.\n2. Confidence: high", HAIKU),
    ("hyphen_bullet", "- Reasoning: r\n- Inferred instruction: Write a haiku about rain.", HAIKU),
    ("round_bullet", "• Reasoning: r\n• Inferred instruction: Write a haiku about rain.", HAIKU),
    ("dash_mid_sentence", "The inferred instruction - as far as I can tell - is about rain.", None),
    ("dash_after_other_words", "My guess at the instruction — a haiku about rain.", None),
    ("hyphenated_word", "Instruction-tuned models - like me - write haikus.", None),
    ("indented_sentence", "  Clearly the instruction - a haiku - is short.", None),
]

INVENTED_KEY_CASES = [
    ("prompt", '{"REASONING": "r", "prompt": "Write a haiku about rain."}', HAIKU),
    ("original_instruction", '{"REASONING": "r", "ORIGINAL INSTRUCTION": "Write a haiku about rain."}', HAIKU),
    ("original_prompt_snake", '{"original_prompt": "Write a haiku about rain."}', HAIKU),
    ("inferred_prompt", '{"Inferred Prompt": "Write a haiku about rain."}', HAIKU),
    ("user_instruction", '{"user_instruction": "Write a haiku about rain."}', HAIKU),
    ("likely_instruction_hyphen", '{"likely-instruction": "Write a haiku about rain."}', HAIKU),
    ("reconstructed_user_message", '{"RECONSTRUCTED USER MESSAGE": "Write a haiku about rain."}', HAIKU),
    ("task", '{"REASONING": "r", "task": "Write a haiku about rain."}', HAIKU),
    ("plain_label", "Reasoning: r\nOriginal prompt: Write a haiku about rain.", HAIKU),
    ("xml_tag", "<reasoning>r</reasoning>\n<prompt>Write a haiku about rain.</prompt>", HAIKU),
    ("specific_beats_generic", '{"task": "poetry", "original prompt": "Write a haiku about rain."}', HAIKU),
    ("canonical_beats_later_key", '{"INFERRED INSTRUCTION": "Write a haiku about rain.", "prompt": "other"}', HAIKU),
    ("canonical_beats_earlier_key", '{"prompt": "other", "INFERRED INSTRUCTION": "Write a haiku about rain."}', HAIKU),
    ("canonical_beats_later_object", f'{{"INFERRED INSTRUCTION": "{HAIKU}"}}\n{{"task": "poetry"}}', HAIKU),
    (
        "canonical_beats_nested_keys",
        '{"analysis": {"prompt": "other", "task": "poetry"}, "INFERRED INSTRUCTION": "Write a haiku about rain."}',
        HAIKU,
    ),
    ("canonical_label_beats_later_label", f"INFERRED INSTRUCTION: {HAIKU}\nREASONING: r\nPrompt: other", HAIKU),
    ("canonical_tag_beats_label", "Task: poetry\n<instruction>Write a haiku about rain.</instruction>", HAIKU),
    (
        "prompt_in_reasoning_text",
        '{"REASONING": "The prompt: rain. Task: poetry.", "INFERRED INSTRUCTION": "Write a haiku about rain."}',
        HAIKU,
    ),
    ("prompt_only_in_reasoning_text", '{"REASONING": "Given the reply, prompt: unclear, task: poetry."}', None),
    ("prompt_label_inside_reasoning_string", '{"REASONING": "The user said:\nPrompt: fake"}', None),
    ("canonical_null_not_replaced", '{"INFERRED INSTRUCTION": null, "meta": {"task": "poetry"}}', None),
    (
        "invented_labels_stay_in_instruction",
        "INFERRED INSTRUCTION: You are a poet.\nTask: write a haiku about rain.\n\nREASONING: r",
        "You are a poet.\nTask: write a haiku about rain.",
    ),
    ("prompt_word_in_prose", "The prompt was probably about rain, the task a haiku.", None),
]

PLACEHOLDER_CASES = [
    ("angle_field_name", '{"REASONING": "r", "INFERRED INSTRUCTION": "<inferred instruction>"}', None),
    ("square_uppercase", '{"INFERRED INSTRUCTION": "[INFERRED INSTRUCTION]"}', None),
    ("brace_snake_case", '{"INFERRED INSTRUCTION": "{inferred_instruction}"}', None),
    ("double_brace", '{"INFERRED INSTRUCTION": "{{instruction}}"}', None),
    ("your_here", '{"INFERRED INSTRUCTION": "<your inferred instruction here>"}', None),
    ("square_your", '{"INFERRED INSTRUCTION": "[Your inferred instruction]"}', None),
    ("parenthesised", '{"INFERRED INSTRUCTION": "(inferred instruction)"}', None),
    ("dots", '{"INFERRED INSTRUCTION": "..."}', None),
    ("ellipsis_char", '{"INFERRED INSTRUCTION": "…"}', None),
    ("bracketed_dots", '{"INFERRED INSTRUCTION": "<...>"}', None),
    ("template_description", '{"INFERRED INSTRUCTION": "<the reconstructed user message>"}', None),
    ("template_description_bare", '{"INFERRED INSTRUCTION": "The reconstructed user message"}', None),
    ("insert_here_bare", '{"INFERRED INSTRUCTION": "Insert instruction here"}', None),
    ("plain_label", "INFERRED INSTRUCTION: <inferred instruction>", None),
    ("plain_label_square", "Inferred instruction: [Your inferred instruction]", None),
    ("xml_content", "<inferred_instruction>[INFERRED INSTRUCTION]</inferred_instruction>", None),
    ("curly_quoted", "{“INFERRED INSTRUCTION”: “<inferred instruction>”}", None),
    ("invented_key", '{"prompt": "<your prompt here>"}', None),
    (
        "echo_then_answer",
        'Format: {"INFERRED INSTRUCTION": "<the reconstructed user message>"}\n' + REF,
        HAIKU,
    ),
    (
        "answer_then_echo",
        REF + '\nFormat: {"INFERRED INSTRUCTION": "<the reconstructed user message>"}',
        HAIKU,
    ),
    ("placeholder_then_bare_key", f'{{"INFERRED INSTRUCTION": "<instruction>", "instruction": "{HAIKU}"}}', HAIKU),
    ("placeholder_label_then_tag", f"INSTRUCTION: [instruction]\n<inferred_instruction>{HAIKU}", HAIKU),
    ("placeholder_tag_then_label", f"<inferred_instruction>[instruction]\nINSTRUCTION: {HAIKU}", HAIKU),
    # --- real instructions with brackets in them
    (
        "html_tag_inside",
        '{"INFERRED INSTRUCTION": "Explain what <div> does in HTML"}',
        "Explain what <div> does in HTML",
    ),
    (
        "blank_inside",
        '{"INFERRED INSTRUCTION": "Fill in [BLANK] in this sentence: The sky is ___."}',
        "Fill in [BLANK] in this sentence: The sky is ___.",
    ),
    ("bracketed_whole_instruction", f'{{"INFERRED INSTRUCTION": "[{HAIKU}]"}}', f"[{HAIKU}]"),
    (
        "template_variables_inside",
        '{"INFERRED INSTRUCTION": "Fill in {name} and {{date}} in my template."}',
        "Fill in {name} and {{date}} in my template.",
    ),
    ("lone_html_tag", '{"INFERRED INSTRUCTION": "<div>"}', "<div>"),
    ("field_word_without_telltale", '{"INFERRED INSTRUCTION": "The question"}', "The question"),
    ("trailing_ellipsis", '{"INFERRED INSTRUCTION": "Continue: Once upon a time..."}', "Continue: Once upon a time..."),
    ("plain_label_html", "INFERRED INSTRUCTION: Explain what <div> does in HTML", "Explain what <div> does in HTML"),
]

CHATML = "Explain what <|im_start|> and <|im_end|> do in ChatML"
LLAMA_EOT = "What does <|eot_id|> end in a Llama 3 prompt, and where does <|start_header_id|>assistant go?"
THINK_TAGS = "Explain what <think> and </think> mark in Qwen3 output"


def _answer(instruction: str) -> str:
    """A judge's JSON answer inferring ``instruction`` (json.dumps, as a judge writes it)."""
    return json.dumps({"REASONING": "The response explains chat-template tokens.", "INFERRED INSTRUCTION": instruction})


# Instructions about chat templates, in the shapes real judges answer: the tokens inside the value are the
# instruction's own text; only an echoed assistant header before the answer and end-of-turn tokens after it go.
MARKUP_CASES = [
    ("chatml_json", _answer(CHATML), CHATML),
    ("chatml_echoed_turn", f"<|im_start|>assistant\n{_answer(CHATML)}<|im_end|>\n<|endoftext|>", CHATML),
    ("chatml_fenced_then_eos", f"```json\n{_answer(CHATML)}\n```<|im_end|>", CHATML),
    ("chatml_after_thinking", f"<think>\nIt explains ChatML.\n</think>\n\n{_answer(CHATML)}<|im_end|>", CHATML),
    ("chatml_label", f"INFERRED INSTRUCTION: {CHATML}<|im_end|>", CHATML),
    ("chatml_tag", f"<inferred_instruction>{CHATML}</inferred_instruction><|im_end|>", CHATML),
    (
        "llama3_echoed_turn",
        f"<|start_header_id|>assistant<|end_header_id|>\n\n{_answer(LLAMA_EOT)}<|eot_id|>",
        LLAMA_EOT,
    ),
    (
        "mistral_eos",
        '{"INFERRED INSTRUCTION": "Why does my Mistral prompt end with </s>?"}</s>',
        "Why does my Mistral prompt end with </s>?",
    ),
    (
        "gemma_turn",
        f"<start_of_turn>model\n{_answer('What is <end_of_turn> for?')}<end_of_turn>",
        "What is <end_of_turn> for?",
    ),
    (
        "deepseek_eos",
        _answer("What is <｜end▁of▁sentence｜>?") + "<｜end▁of▁sentence｜>",
        "What is <｜end▁of▁sentence｜>?",
    ),
    ("only_a_token", _answer("<|im_end|>"), "<|im_end|>"),
    ("only_a_token_named_like_a_field", _answer("<|message|>"), "<|message|>"),
    (
        "harmony_tokens",
        _answer("Where do <|channel|>final<|message|> go?") + "<|return|>",
        "Where do <|channel|>final<|message|> go?",
    ),
    ("think_tags_in_json", _answer(THINK_TAGS), THINK_TAGS),
    ("think_tags_in_json_then_eos", _answer(THINK_TAGS) + "<|im_end|>", THINK_TAGS),
]

SHAPE_CASES = {
    "markup_in_instruction": MARKUP_CASES,
    "xml_tags": XML_TAG_CASES,
    "double_encoded_json": DOUBLE_ENCODED_CASES,
    "curly_quotes": CURLY_QUOTE_CASES,
    "dash_and_numbered_labels": DASH_AND_NUMBERED_LABEL_CASES,
    "invented_keys": INVENTED_KEY_CASES,
    "echoed_placeholders": PLACEHOLDER_CASES,
}
ALL_CASES = INSTRUCTION_CASES + [case for cases in SHAPE_CASES.values() for case in cases]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(text, expected, id=f"{shape}-{case_id}")
        for shape, cases in SHAPE_CASES.items()
        for case_id, text, expected in cases
    ],
)
def test_judge_output_shapes(text: str, expected: str | None) -> None:
    """XML tags, double-encoded JSON, curly quotes, dash/numbered labels, invented keys, echoed placeholders."""
    assert parse_inferred_instruction(text) == expected


def _template_example(name: str) -> str:
    """The JSON answer example a system template shows the judge."""
    return next(line for line in render(name).splitlines() if line.startswith('{"REASONING"'))


def test_echoed_flip_template_is_nothing() -> None:
    system = render("FLIP_SYSTEM")
    user = render("FLIP_USER", context="Hi!", response="Hello! How can I help?")
    for text in (_template_example("FLIP_SYSTEM"), system, system + "\n" + user, f"```json\n{system}\n```"):
        assert parse_flip_answer(text) == (None, None), text
    placeholders = re.findall(r"<([^<>\n]+)>", _template_example("FLIP_SYSTEM"))
    assert len(placeholders) == 2
    for words in placeholders:
        for value in (f"<{words}>", f"[{words}]", f"{{{words}}}", f"{{{{{words}}}}}", f"<{words.upper()}>"):
            answers = (
                json.dumps({"REASONING": value, "INFERRED INSTRUCTION": value}),
                f"REASONING: {value}\nINFERRED INSTRUCTION: {value}",
                f"<reasoning>{value}</reasoning>\n<inferred_instruction>{value}</inferred_instruction>",
            )
            for answer in answers:
                assert parse_flip_answer(answer) == (None, None), answer


@pytest.mark.parametrize("name", ["FLIP_SYSTEM", "POINTWISE_SYSTEM", "PAIRWISE_SYSTEM", "LISTWISE_SYSTEM"])
def test_echoed_template_reasoning_is_nothing(name: str) -> None:
    assert parse_reasoning(_template_example(name)) is None


def test_invented_keys_follow_the_template_keys() -> None:
    assert INSTRUCTION_KEYS[:2] == ("INFERRED INSTRUCTION", "INSTRUCTION")
    assert {"PROMPT", "ORIGINAL INSTRUCTION", "ORIGINAL PROMPT", "INFERRED PROMPT", "TASK"} <= set(INSTRUCTION_KEYS)
    # one call with every name: the earliest name in the tuple wins inside an object
    assert extract_field('{"prompt": "a", "task": "b", "INFERRED INSTRUCTION": "c"}', INSTRUCTION_KEYS) == "c"


def test_huge_inputs_new_shapes() -> None:
    long_reasoning = "<reasoning>" + "word " * 40_000 + "</reasoning>"
    assert parse_inferred_instruction(long_reasoning + "<instruction>X</instruction>") == "X"
    assert parse_inferred_instruction("<instruction>" * 50_000) is None
    assert parse_inferred_instruction("<reasoning>" * 20_000 + "</reasoning>" * 20_000) is None
    assert parse_inferred_instruction("<reasoning>x</reasoning>" * 20_000 + "<instruction>Write") == "Write"
    encoded = json.dumps(json.dumps({"REASONING": "word " * 40_000, "INFERRED INSTRUCTION": "X"}))
    assert parse_inferred_instruction(encoded) == "X"
    assert parse_inferred_instruction('"{' + '\\"' * 100_000) is None
    curly = "{“REASONING”: “" + "he said ‘no’, twice. " * 10_000 + "”, “INFERRED INSTRUCTION”: “Write"
    assert parse_inferred_instruction(curly) == "Write"
    assert parse_inferred_instruction("{“a”: “" + "“, ”: " * 30_000) is None
    assert parse_inferred_instruction("1. Prompt\n" * 30_000) is None
    assert parse_inferred_instruction("Instruction - x\n" * 30_000) == "x"
    assert parse_inferred_instruction('{"INFERRED INSTRUCTION": "[' + "a" * 200_000 + '"}') == "[" + "a" * 200_000


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
    ("xml_tag", "<score>7</score>", ["SCORE"], "7"),
    ("dash_label", "SCORE - 8", ["SCORE"], "8"),
    ("numbered_label", "1. Reasoning: r\n2. Score: 9", ["SCORE"], "9"),
    ("curly_keys", "{“REASONING”: “r”, “SCORE”: 7}", ["SCORE"], 7),
    ("double_encoded", json.dumps('{"SCORE": 7}'), ["SCORE"], 7),
    ("echoed_placeholder_absent", '{"BETTER_RESPONSE": "<A or B>"}', ["BETTER_RESPONSE"], None),
    ("echoed_placeholder_skipped", '{"X": "[value]"}\n{"X": "real"}', ["X"], "real"),
]


@pytest.mark.parametrize(("text", "names", "expected"), [c[1:] for c in FIELD_CASES], ids=[c[0] for c in FIELD_CASES])
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
    ("xml_tag", "<reasoning>\nIt rhymes.\n</reasoning>\n<inferred_instruction>x</inferred_instruction>", "It rhymes."),
    ("xml_truncated", "<REASONING>It rhy", "It rhy"),
    ("dash_label", "REASONING - It rhymes.\nINFERRED INSTRUCTION - Write a poem.", "It rhymes."),
    ("numbered_label", "1. Reasoning: It rhymes.\n2. Inferred instruction: Write a poem.", "It rhymes."),
    ("curly_quotes", "{“REASONING”: “It’s short.”, “INFERRED INSTRUCTION”: “Write a poem.”}", "It’s short."),
    ("double_encoded", _TWICE, "The response is a haiku about rain."),
    ("echoed_placeholder", '{"REASONING": "<your reasoning here>", "INFERRED INSTRUCTION": "x"}', None),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in REASONING_CASES], ids=[c[0] for c in REASONING_CASES])
def test_parse_reasoning(text: str, expected: str | None) -> None:
    assert parse_reasoning(text) == expected


_ALPHABET = list("{}[]\"':,\\ \n\t\r#*`~-_abcxyz0129") + [
    "INFERRED INSTRUCTION",
    "inferred_instruction",
    "instruction",
    "REASONING",
    "<think>",
    "</think>",
    "<|im_end|>",
    "```json",
    "\\frac",
    "\\u00e9",
    "\\u12",
    "null",
    "true",
    "\x00",
    "\ufeff",
    "\ud800",
    "é",
    "🙂",
    "<inferred_instruction>",
    "</inferred_instruction>",
    "<REASONING>",
    "</reasoning>",
    "“",
    "”",
    "‘",
    "’",
    "—",
    " - ",
    "1. ",
    "2) ",
    "•",
    "prompt",
    "task:",
    '"{\\"',
    '\\"',
    "<inferred instruction>",
    "[INFERRED INSTRUCTION]",
    "...",
]


def _garbage(rng: random.Random) -> str:
    """Random tokens from a hostile alphabet, or two corpus cases cut and spliced at random points."""
    if rng.random() < 0.5:
        return "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 80)))
    a, b = rng.choice(ALL_CASES)[1], rng.choice(ALL_CASES)[1]
    return a[: rng.randint(0, len(a))] + b[rng.randint(0, len(b)) :]


def test_random_garbage_never_raises() -> None:
    rng = random.Random(20240601)
    for _ in range(600):
        text = _garbage(rng)
        result = parse_inferred_instruction(text)
        assert result is None or (isinstance(result, str) and result and result == result.strip()), text
        reasoning = parse_reasoning(text)
        assert reasoning is None or isinstance(reasoning, str), text


def test_parse_flip_answer_equals_the_two_parsers() -> None:
    texts = [
        '```json\n{"REASONING": "r", "INFERRED INSTRUCTION": "i"}\n```',
        "REASONING: a\nINSTRUCTION: b",
        '{"REASONING": "only"}',
        "<think>x",
        "",
        '{"INFERRED INSTRUCTION": "Write a po',
    ]
    for text in texts + [case[1] for case in ALL_CASES]:
        assert parse_flip_answer(text) == (parse_inferred_instruction(text), parse_reasoning(text)), text


WHOLE_OBJECTS = [  # one valid JSON object: parse_flip_answer reads these without the general scans when it can
    REF,
    '  {"REASONING": "r", "INFERRED INSTRUCTION": "Solve $\\frac{1}{2}$"}\n',
    '{"reasoning": "r", "inferred_instruction": "  padded  "}',
    '{"REASONING": "r", "INFERRED INSTRUCTION": ""}',
    '{"REASONING": "r", "INFERRED INSTRUCTION": "<inferred instruction>", "PROMPT": "Write a poem."}',
    '{"REASONING": "r", "INFERRED INSTRUCTION": ["Write", "a poem"]}',
    '{"REASONING": 3, "INFERRED INSTRUCTION": {"text": "x"}}',
    '{"outer": {"REASONING": "r", "INFERRED INSTRUCTION": "nested"}}',
    '{"INFERRED\\u0020INSTRUCTION": "escaped key", "REASONING": "r"}',
    '{"REASONING": "r", "INSTRUCTION": "bare key", "INFERRED INSTRUCTION": "template key"}',
    '{"REASONING": "r"} {"INFERRED INSTRUCTION": "two objects"}',
    '{"REASONING": "r", "INFERRED INSTRUCTION": "x", "note": "INFERRED INSTRUCTION: y"}',
]


def test_one_object_fast_path_equals_the_general_parsers() -> None:
    rng = random.Random(20261202)
    texts = WHOLE_OBJECTS + [_garbage(rng) for _ in range(600)]
    texts += ["{" + text + "}" for text in texts]
    for text in texts:
        assert parse_flip_answer(text) == (parse_inferred_instruction(text), parse_reasoning(text)), text
    assert parse_flip_answer(WHOLE_OBJECTS[0]) == (HAIKU, "The response is a haiku about rain.")
    assert parse_flip_answer(WHOLE_OBJECTS[2]) == ("padded", "r")
