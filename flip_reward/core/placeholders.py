"""Recognising echoed template placeholders: judge output that copies the prompt's field template ("<your inferred
instruction here>", "[INFERRED INSTRUCTION]", "...") instead of answering, so that such a value counts as absent."""

from __future__ import annotations

import re

# Echoed template placeholders: a whole value of filler ("...", "___"), or one bracketed group (<x>, [x], {x},
# {{x}}, (x)) whose words name the field ("<your inferred instruction here>") or repeat a template's description.
# A chat-template token (<|message|>, <|text|>) is no bracketed group: it is markup an instruction may ask about.
_PLACEHOLDER_MAX = 120
_FILLER = re.compile(r"(?:\.{2,}|…|_{2,}|-{2,}|\s)*")
_WRAPPED = re.compile(r"(?:<+(?!\|)|\[+|\{+|\(+)\s*([^<>\[\]{}()]*?)\s*(?:>+|\]+|\}+|\)+)?")
_PLACEHOLDER_WORDS = re.compile(
    r"(?:(?:your|the|a|an|my|insert|enter|put|type|inferred|reconstructed|original|likely|most|probable|actual"
    r"|exact|final|full|missing|user|users|user s|single|short|brief)\s)*"
    r"(?:instruction|prompt|message|request|query|question|reasoning|explanation|rationale|analysis|task|answer"
    r"|text|string|response|value|content|placeholder)s?(?:\s(?:goes\s)?here)?"
)
_PLACEHOLDER_MARKER = re.compile(r"\b(?:your|here|insert|enter|placeholder|inferred|reconstructed)\b")
_TEMPLATE_DESCRIPTION = re.compile(
    r"a few sentences (?:on|comparing) .*|the number of the best response|an integer from 1 to 10|a or b"
)


def is_placeholder(value: str) -> bool:
    """Whether ``value`` is template text echoed back rather than an answer: filler ("...", "…", "___"), a
    bracketed field name or description ("<inferred instruction>", "[Your inferred instruction]", "{{prompt}}",
    "<the reconstructed user message>"), or such words unbracketed with a telltale word ("your ... here").
    A real value that merely contains brackets ("Explain what <div> does"), or is one chat-template token
    ("<|message|>"), is none."""
    text = value.strip()
    if len(text) > _PLACEHOLDER_MAX:
        return False
    wrapped = _WRAPPED.fullmatch(text)
    body = wrapped.group(1) if wrapped else text
    if _FILLER.fullmatch(body):
        return bool(text)
    words = " ".join(re.sub(r"[\W_]+", " ", body.casefold()).split())
    if _TEMPLATE_DESCRIPTION.fullmatch(words):
        return True
    telltale = wrapped is not None or _PLACEHOLDER_MARKER.search(words) is not None
    return telltale and _PLACEHOLDER_WORDS.fullmatch(words) is not None
