"""The one vocabulary of failure kinds: ErrorType, what results carry and write, and the docs' table of it."""

from __future__ import annotations

import json
import re

from conftest import REPO

from flip_reward.core.results import JUDGED_FAILURES, ErrorType
from flip_reward.core.reward import FlipResult


def documented_error_types() -> list[str]:
    """The first cells of the table under "## Error types" in docs/reference.md, in order."""
    reference = (REPO / "docs" / "reference.md").read_text(encoding="utf-8")
    section = reference.split("\n## Error types\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][2:]  # past the header and its rule
    return [re.fullmatch(r'\| `"([a-z]+)"` \|.*', row).group(1) for row in rows]


def test_the_reference_lists_exactly_the_error_types() -> None:
    assert documented_error_types() == [kind.value for kind in ErrorType]
    assert [kind.value for kind in ErrorType] == ["input", "judge", "parse", "config", "internal"]


def test_a_result_carries_the_member_and_writes_the_plain_string() -> None:
    result = FlipResult(error="no instruction", error_type="input")
    assert result.error_type is ErrorType.INPUT and JUDGED_FAILURES == ("input", "judge", "parse")
    written = result.to_dict()["error_type"]
    assert type(written) is str and written == "input"
    assert json.loads(json.dumps(FlipResult(error="x", error_type=ErrorType.INTERNAL).to_dict()))["error_type"] == (
        "internal"
    )
    assert FlipResult().to_dict()["error_type"] is None
