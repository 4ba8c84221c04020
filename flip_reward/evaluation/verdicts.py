"""Readers of the baselines' answers: a 1-10 score, an A/B preference, a best index. Each is built on
``core.parsing.extract_field``, never raises and gives None for an unusable answer."""

from __future__ import annotations

import math
import re

from flip_reward.core.parsing import extract_field

SCORE_KEYS: tuple[str, ...] = ("SCORE", "RATING")
BETTER_KEYS: tuple[str, ...] = ("BETTER_RESPONSE", "BETTER")
INDEX_KEYS: tuple[str, ...] = ("BEST_RESPONSE_INDEX", "BEST_INDEX", "BEST_RESPONSE")
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_SCORE_TEXT = re.compile(rf"({_NUMBER})(?:\s*(?:/|out\s+of)\s*10)?", re.IGNORECASE)
_CHOICE_TEXT = re.compile(r"(?:(?:response|assistant|output|option)\s*)?([AB])", re.IGNORECASE)
_INDEX_TEXT = re.compile(r"(?:(?:response|index|candidate)\s*)?#?\s*(\d+)", re.IGNORECASE)


def _bare(value: str) -> str:
    """A short answer without surrounding whitespace, markdown emphasis, quotes, brackets or a final period."""
    return value.strip().strip("*_`'\"[]()").strip().rstrip(".").strip()


def parse_score(text: str) -> float | None:
    """The judge's 1-10 "SCORE" (or "RATING") as a float, or None when missing, non-numeric or out of range.

    Numbers in [1, 10] are kept as given, so 7.5 stays 7.5 (reward 0.75); a string holding one number is read
    ("8", "7.5", "**9**"); "7/10" and "7 out of 10" read as 7, any other fraction is None; 0, 11, NaN and booleans
    are None. Never raises.

    >>> parse_score('{"REASONING": "Fine.", "SCORE": "7/10"}'), parse_score('{"SCORE": 11}')
    (7.0, None)
    """
    value = extract_field(text, SCORE_KEYS)
    if isinstance(value, str):
        match = _SCORE_TEXT.fullmatch(_bare(value))
        value = float(match.group(1)) if match else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and 1 <= value <= 10 else None


def parse_better_response(text: str) -> str | None:
    """The judge's "BETTER_RESPONSE" as "A" or "B" ("a", "Response B", "[[A]]" accepted), else None ("tie",
    "both", "C", numbers). Never raises."""
    value = extract_field(text, BETTER_KEYS)
    match = _CHOICE_TEXT.fullmatch(_bare(value)) if isinstance(value, str) else None
    return match.group(1).upper() if match else None


def parse_best_index(text: str, count: int) -> int | None:
    """The judge's 0-based "BEST_RESPONSE_INDEX" among ``count`` responses, else None. Integers, integral floats
    (2.0) and strings holding one (``"2"``, ``"Response 2"``, ``"#2"``) are read; out of range, negative,
    fractional or boolean values are None. Never raises."""
    value = extract_field(text, INDEX_KEYS)
    if isinstance(value, str):
        match = _INDEX_TEXT.fullmatch(_bare(value))
        value = int(match.group(1)) if match else None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value < count else None
