"""What is left of a text once its thinking is removed: the one ``<think>``/``<answer>`` stripper, for policy
responses (what the judge is shown) and judge answers (what the parser reads) alike. Linear in the text's length:
it runs on the event loop of every reward, on responses of 16k tokens and more."""

from __future__ import annotations

import re

_THINK_TAG = re.compile(r"<(/?)think>", re.IGNORECASE)
_ANSWER_OPEN, _ANSWER_CLOSE = "<answer>", "</answer>"


def strip_thinking(text: str, inside: bool = False) -> str:
    """``text`` without its ``<think>...</think>`` blocks; ``inside`` says the text starts inside one (a chat template
    opened it in the generation prompt).

    A ``</think>`` with no open block marks everything before it as thinking (the block was opened before the text
    began); an unclosed ``<think>`` hides everything after it (thinking cut off by the token limit).

    >>> strip_thinking("<think>plan</think>Answer."), strip_thinking("plan</think>Answer."), strip_thinking("A<think>b")
    ('Answer.', 'Answer.', 'A')
    """
    kept: list[str] = []
    pos = 0
    for tag in _THINK_TAG.finditer(text):
        if tag.group(1):  # closing: ends the block, or (with no block open) marks everything before it as thinking
            kept = kept if inside else []
            pos, inside = tag.end(), False
        elif not inside:
            kept.append(text[pos : tag.start()])
            inside = True
    if not inside:
        kept.append(text[pos:])
    return "".join(kept)


def final_answer(response: str, think_prefilled: bool = False) -> str:
    """What the judge is shown of a policy response: its thinking removed (``strip_thinking``), then the inside of
    ``<answer>...</answer>`` when the policy used those tags; stripped of surrounding whitespace. With
    ``think_prefilled`` a response that never closes its thinking shows nothing.

    >>> final_answer("<think>hmm</think><answer>Paris</answer>"), final_answer("still thinking", think_prefilled=True)
    ('Paris', '')
    """
    text = strip_thinking(response, inside=think_prefilled)
    start = text.find(_ANSWER_OPEN)
    if start >= 0:
        end = text.find(_ANSWER_CLOSE, start)
        text = text[start + len(_ANSWER_OPEN) : end if end >= 0 else len(text)]
    return text.strip()
