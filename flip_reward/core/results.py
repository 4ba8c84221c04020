"""The result base type every judged method returns: why it failed, the judge's reasoning, and what it cost."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class Judgment:
    """What every result carries besides its verdict (FlipResult and the baselines' results extend it).

    ``error`` is None on success, else why the verdict is missing; ``error_type`` is "input" (bad prompt or empty
    response), "judge" (the request failed after retries) or "parse" (the judge answered but nothing usable could be
    read from it). ``latency_s`` is 0 for an answer from the cache.
    """

    reasoning: str | None = None
    error: str | None = None
    error_type: str | None = None
    latency_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False

    def to_dict(self) -> dict:
        """Every field by name, the verdict's own fields first (the columns of ``flip-reward score`` and eval
        details)."""
        values = asdict(self)
        shared = [field.name for field in fields(Judgment)]
        return {
            **{name: value for name, value in values.items() if name not in shared},
            **{name: values[name] for name in shared},
        }
