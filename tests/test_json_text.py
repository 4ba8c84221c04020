"""flip_reward.json_text: the nesting bound counts brackets outside strings only, and errors carry their position."""

from __future__ import annotations

import json

import pytest

from flip_reward.json_text import MAX_JSON_DEPTH, JsonTextError, parse_json


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_the_bound_is_exact():
    assert parse_json(nested(MAX_JSON_DEPTH)) == json.loads(nested(MAX_JSON_DEPTH))
    with pytest.raises(JsonTextError) as caught:
        parse_json(nested(MAX_JSON_DEPTH + 1))
    assert (caught.value.line, caught.value.column, caught.value.too_deep) == (1, 101, True)


@pytest.mark.parametrize("depth", [990, 100_000])
def test_deep_nesting_is_refused_before_the_parser_runs(depth):
    """990 levels parse with json.loads, then break json.dumps of the row; 100,000 raise RecursionError in it."""
    with pytest.raises(JsonTextError) as caught:
        parse_json('{"a": ' + nested(depth) + "}")
    assert caught.value.describe() == "JSON nested deeper than 100 levels (at column 106)"


def test_brackets_inside_strings_do_not_count():
    text = json.dumps({"code": "[" * 500 + '\\"{' * 300, "list": [["x"]]})
    assert parse_json(text)["list"] == [["x"]]


def test_an_unterminated_string_is_a_syntax_error_not_a_depth_error():
    with pytest.raises(JsonTextError) as caught:
        parse_json('{"a": "' + "[" * 500)
    assert str(caught.value) == "not valid JSON (Unterminated string starting at line 1 column 7)"


def test_a_syntax_error_at_the_end_of_a_line_is_at_its_last_column():
    with pytest.raises(JsonTextError) as caught:
        parse_json('{"prompt": "hi"\r\n')
    assert caught.value.describe() == "not valid JSON (Expecting ',' delimiter at column 16)"
