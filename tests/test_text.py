"""flip_reward.text: any string made valid Unicode (lone surrogates), and JSON lines that stay valid UTF-8."""

from __future__ import annotations

import json

import pytest

from flip_reward.text import is_valid, json_line, repaired, valid_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Write a poem.", ("Write a poem.", 0)),
        (
            "中文 e\u0301 \U0001f469\u200d\U0001f469\u200d\U0001f467 \x00\x1b\u2028",
            ("中文 e\u0301 \U0001f469\u200d\U0001f469\u200d\U0001f467 \x00\x1b\u2028", 0),
        ),
        ("half an emoji: \ud83d", ("half an emoji: \ufffd", 1)),
        ("\ude00 low half first", ("\ufffd low half first", 1)),
        ("\ud83d\ude00 split pair", ("\U0001f600 split pair", 0)),
        ("\ude00\ud83d reversed pair", ("\ufffd\ufffd reversed pair", 2)),
        ("byte \udcff read with surrogateescape", ("byte \ufffd read with surrogateescape", 1)),
        ("already \ufffd, then \ud800", ("already \ufffd, then \ufffd", 1)),
    ],
    ids=["ascii", "valid_unicode", "lone_high", "lone_low", "split_pair", "reversed_pair", "escaped_byte", "fffd_kept"],
)
def test_repaired(text: str, expected: tuple[str, int]) -> None:
    assert repaired(text) == expected
    assert valid_text(text) == expected[0] and is_valid(expected[0]) and is_valid(text) == (expected[0] == text)


def test_valid_text_is_the_same_object_when_nothing_changes() -> None:
    text = "中文 " * 1000
    assert valid_text(text) is text


def test_json_line_escapes_only_lone_surrogates_and_reads_back() -> None:
    row = {"prompt": "Write \ud83d a poem 中文", "list": ["\udc80", 1, None], "\ud800 key": "v"}
    line = json_line(row)
    assert line == '{"prompt": "Write \\ud83d a poem 中文", "list": ["\\udc80", 1, null], "\\ud800 key": "v"}'
    assert json.loads(line.encode("utf-8").decode("utf-8")) == row
    assert json_line({"when": object}) == json.dumps({"when": str(object)})
