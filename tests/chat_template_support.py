"""The conversations, stop tokens and rendering that the chat template tests and benchmarks/bench_templates.py share.

Rendering goes through transformers' own ``render_jinja_template`` (what ``apply_chat_template`` calls), so the
reader is checked against transformers' jinja settings, not against our own renderer.
"""

from __future__ import annotations

from pathlib import Path

from transformers.utils.chat_template_utils import render_jinja_template

TEMPLATES = Path(__file__).resolve().parent / "chat_templates"
ANSWER = "The answer is here."
THOUGHT = "Let me think.</think>\n\n"
HARMONY_ANSWER = "<|channel|>analysis<|message|>Let me think.<|end|><|start|>assistant<|channel|>final<|message|>"
CONVERSATIONS: dict[str, list[tuple[str, str]]] = {
    "single": [("user", "Write a short poem about autumn leaves.")],
    "system": [("system", "You are a concise assistant."), ("user", "Name three prime numbers.")],
    "multi-turn": [("user", "What is the capital of France?"), ("assistant", "Paris."), ("user", "And of Italy?")],
    "multi-line": [("user", "List two fruits.\nUse bullet points.\nKeep it short.")],
    "code": [("user", "Fix this function:\n```python\ndef add(a, b):\n    return a - b\n```")],
    "unicode": [("user", "Traduis en français : « Où est la gare ? » 🚉 — 日本語も。")],
    "markup": [("user", "What do <|im_start|> and <|im_end|> mean? And [INST], <|eot_id|>, <end_of_turn>?")],
    "3k": [("user", "Rewrite these notes as one paragraph: " + ("the meeting moved to noon; " * 110).strip())],
    "system-multi": [
        ("system", "Answer in one sentence."),
        ("user", "Who wrote Hamlet?"),
        ("assistant", "William Shakespeare."),
        ("user", "When?"),
    ],
    "paragraphs": [
        ("user", "Summarize the text below.\n\nThe river flooded the valley, and the farmers moved uphill.")
    ],
}


def messages_of(conversation: str) -> list[dict[str, str]]:
    return [{"role": role, "content": content} for role, content in CONVERSATIONS[conversation]]


def render(source: str, messages: list[dict[str, str]], bos: str = "", eos: str = "", **switches: object) -> str:
    """``messages`` through the chat template ``source`` with the generation prompt, as transformers renders it."""
    rendered, _ = render_jinja_template(
        [messages], chat_template=source, add_generation_prompt=True, bos_token=bos, eos_token=eos, **switches
    )
    return rendered[0]


def generated(prompt: str) -> tuple[str, str]:
    """What a policy generates after ``prompt`` (before its stop token), and the response FLIP must read from it:
    the thinking the prompt opened is put back in front; gpt-oss's channels become ``<think>`` and the answer."""
    opened = prompt.rfind("<think>")
    if opened != -1 and "</think>" not in prompt[opened:]:
        return THOUGHT + ANSWER, prompt[opened:] + THOUGHT + ANSWER
    if prompt.endswith("<|start|>assistant"):
        return HARMONY_ANSWER + ANSWER, "<think>Let me think.</think>" + ANSWER
    return ANSWER, ANSWER
