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


def test_every_tally_names_a_failure_kind_as_error_type_does() -> None:
    """One name per kind: the TRL metrics, the service's counters and /get_reward flags, inspect's rates."""
    from flip_reward.evaluation.inspection import RATE_FIELDS
    from flip_reward.integrations.trl import RewardStats
    from flip_reward.serving.protocol import openrlhf_answer

    assert [kind.counter for kind in ErrorType] == [
        "input_errors", "judge_errors", "parse_failures", "config_errors", "internal_errors",
    ]  # fmt: skip
    assert list(RATE_FIELDS.values()) == [
        "input_error_rate", "judge_error_rate", "parse_failure_rate", "config_error_rate", "internal_error_rate",
    ]  # fmt: skip
    results = [FlipResult(error="x", error_type=kind) for kind in JUDGED_FAILURES] + [FlipResult(reward=1.0)]
    assert RewardStats.of(results, 2.0).metrics() == {
        "input_errors": 1, "judge_errors": 1, "parse_failures": 1, "seconds": 2.0,
    }  # fmt: skip
    logs = openrlhf_answer(results)["extra_logs"]
    assert {name: logs[name] for name in logs if name.endswith(("_error", "_failure"))} == {
        "flip_input_error": [1.0, 0.0, 0.0, 0.0],
        "flip_judge_error": [0.0, 1.0, 0.0, 0.0],
        "flip_parse_failure": [0.0, 0.0, 1.0, 0.0],
    }


def test_the_services_counters_are_named_after_the_kinds() -> None:
    from flip_reward.serving.service_metrics import ServiceMetrics

    metrics = ServiceMetrics(lambda: 0)
    metrics.record_results([FlipResult(error="x", error_type=kind) for kind in (*JUDGED_FAILURES, ErrorType.JUDGE)])
    counts = [line for line in metrics.exposition().decode().splitlines() if line.endswith(("errors_total 1.0",
              "errors_total 2.0", "failures_total 1.0"))]  # fmt: skip
    assert counts == [
        "flip_serve_input_errors_total 1.0", "flip_serve_judge_errors_total 2.0", "flip_serve_parse_failures_total 1.0",
    ]  # fmt: skip
