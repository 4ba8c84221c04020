"""The reward service's wire formats: request bodies read into (prompt, response) items, results written back.

``POST /get_reward`` speaks OpenRLHF's remote reward protocol: ``{"query": [str], "prompts": [str], "labels":
[str | null]}`` in, ``{"rewards", "scores", "extra_logs"}`` out, in input order. OpenRLHF turns every
``extra_logs`` value into a tensor, so it holds numbers only (F1 and 0/1 failure flags per item); the error texts
travel beside it under ``errors``. ``POST /v1/score`` takes ``{"items": [{"prompt": str | messages, "response":
str}]}`` and answers ``{"results": [...]}`` with the fields ``flip-reward score`` writes. ``POST /slime/reward``
takes what slime's ``remote_rm`` posts for one sample, ``{"prompt": str | messages, "response": str, "label": str |
null}``, and answers one object with ``reward`` (slime reads it with ``--reward-key reward``) and ``SLIME_FIELDS``.

A body of the wrong shape is a BadRequest (HTTP 400, or 413 for too many items) naming the item and field; an item
of the right shape whose content is unusable (no instruction to recover, a query that does not hold its prompt)
becomes an input failure for that item alone, reward 0.0 with its error, as FlipReward reports its own. slime
retries any answer but a 2xx and then stops training, so a ``/slime/reward`` body that is a JSON object is always
scored: a field of the wrong type is that sample's input failure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from flip_reward.core.conversation import with_instruction
from flip_reward.core.results import JUDGED_FAILURES
from flip_reward.core.reward import FlipResult
from flip_reward.data.samples import result_fields
from flip_reward.templates import FamilyReader, PinnedTemplate, TemplateError, holds_markup, response_after

TemplateReader = FamilyReader | PinnedTemplate
DEFAULT_READER = FamilyReader()
SLIME_FIELDS = ("reward", "f1", "inferred_instruction", "error", "error_type", "restatement_masked")


class BadRequest(ValueError):
    """A request body the service cannot read: HTTP ``status`` with a JSON error naming the item and field."""

    def __init__(self, message: str, index: int | None = None, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.index, self.field, self.status = index, field, status

    def body(self) -> dict:
        return {"error": str(self), "index": self.index, "field": self.field}


@dataclass(frozen=True)
class Item:
    """One (prompt, response) to score; ``error`` set means the item is unusable and scores 0.0 as an input error."""

    prompt: object = None
    response: object = None
    error: str | None = None


def _list_of(body: Mapping, field: str, count: int | None, allow_none: bool = False) -> list:
    """``body[field]`` checked to be a list of strings (of ``count`` entries when given; None allowed with
    ``allow_none``)."""
    values = body.get(field)
    if not isinstance(values, list):
        raise BadRequest(f"'{field}' must be a list of strings, got {type(values).__name__}", field=field)
    if count is not None and len(values) != count:
        raise BadRequest(f"'{field}' has {len(values)} entries but 'query' has {count}", field=field)
    for index, value in enumerate(values):
        if not isinstance(value, str) and not (allow_none and value is None):
            raise BadRequest(f"{field}[{index}] must be a string, got {type(value).__name__}", index, field)
    return values


def _bounded(count: int, max_items: int) -> None:
    if count > max_items:
        raise BadRequest(f"{count} items in one request; at most {max_items} are accepted", status=413)


def _object(body: object) -> Mapping:
    if not isinstance(body, Mapping):
        raise BadRequest(f"the body must be a JSON object, got {type(body).__name__}")
    return body


def openrlhf_items(body: object, max_items: int, reader: TemplateReader = DEFAULT_READER) -> list[Item]:
    """The items of a ``/get_reward`` body: the response is the query after its prompt, the instruction is the
    label when one is given, else the last user turn of the templated prompt as ``reader`` reads it."""
    body = _object(body)
    queries = _list_of(body, "query", None)
    _bounded(len(queries), max_items)
    prompts = _list_of(body, "prompts", len(queries))
    labels = _list_of(body, "labels", len(queries), allow_none=True) if body.get("labels") is not None else None
    return [
        openrlhf_item(index, query, prompt, labels[index] if labels else None, reader)
        for index, (query, prompt) in enumerate(zip(queries, prompts))
    ]


def openrlhf_item(
    index: int, query: str, prompt: str, label: str | None, reader: TemplateReader = DEFAULT_READER
) -> Item:
    """One OpenRLHF sample as chat messages and response (``templated_item``), its error naming the item."""
    item = templated_item(query, prompt, label, reader)
    return item if item.error is None else Item(error=f"item {index}: {item.error}")


def templated_item(query: str, prompt: str, label: str | None, reader: TemplateReader = DEFAULT_READER) -> Item:
    """A templated ``prompt`` and the ``query`` (prompt + response) as chat messages and response: the label
    replaces the prompt's last user turn; with a label, a prompt in no readable template only loses the earlier
    turns."""
    if not query.startswith(prompt):
        return Item(error="the query does not start with its prompt")
    labelled = label is not None and bool(label.strip())
    try:
        reading = reader.read(prompt)
    except TemplateError as error:
        if not labelled:
            return Item(error=f"no instruction: no label, and {error}")
        return Item([{"role": "user", "content": label.strip()}], response_after(query, prompt))
    response = reading.response(query, prompt)
    if not labelled:
        return Item(reading.messages, response)
    return Item(with_instruction(reading.messages, label), response)


def slime_item(prompt: object, response: object, label: object, reader: TemplateReader = DEFAULT_READER) -> Item:
    """A slime ``Sample``'s ``prompt``, ``response`` and ``label`` as chat messages and response.

    The prompt is a templated string (``--apply-chat-template``), raw text, or chat messages; the label, when it is
    a non-empty string, is the instruction and replaces the prompt's last user turn. A templated string is read by
    ``reader``; a string in no template that holds no template markup is the instruction itself. The response loses
    the stop token slime keeps (``no_stop_trim``) and, for a templated prompt, gets back an opened ``<think>``.
    Unusable fields are an input failure for the sample, never an exception."""
    if not isinstance(response, str):
        return Item(error=f"the response must be a string, got {type(response).__name__}")
    if label is not None and not isinstance(label, str):
        return Item(error=f"the label must be a string (the instruction) or null, got {type(label).__name__}")
    if isinstance(prompt, list):
        return Item(
            with_instruction(prompt, label) if label and label.strip() else prompt, response_after(response, "")
        )
    if not isinstance(prompt, str):
        return Item(error=f"the prompt must be a string or a list of messages, got {type(prompt).__name__}")
    item = templated_item(prompt + response, prompt, label, reader)
    if item.error is None or holds_markup(prompt):
        return item
    return Item([{"role": "user", "content": prompt}], response_after(response, ""))


def slime_items(body: object, reader: TemplateReader = DEFAULT_READER) -> list[Item]:
    """The one item of a ``/slime/reward`` body (``slime_item``); BadRequest only when it is not a JSON object."""
    body = _object(body)
    return [slime_item(body.get("prompt"), body.get("response"), body.get("label"), reader)]


def score_items(body: object, max_items: int) -> list[Item]:
    """The items of a ``/v1/score`` body, each ``{"prompt": str | messages, "response": str}``."""
    items = _object(body).get("items")
    if not isinstance(items, list):
        raise BadRequest(f"'items' must be a list, got {type(items).__name__}", field="items")
    _bounded(len(items), max_items)
    return [score_item(index, item) for index, item in enumerate(items)]


def score_item(index: int, item: object) -> Item:
    if not isinstance(item, Mapping):
        raise BadRequest(f"items[{index}] must be an object, got {type(item).__name__}", index, "items")
    prompt, response = item.get("prompt"), item.get("response")
    if not isinstance(prompt, (str, list)):
        kind = "missing" if prompt is None else f"a {type(prompt).__name__}"
        raise BadRequest(f"items[{index}].prompt must be a string or a list of messages, got {kind}", index, "prompt")
    if not isinstance(response, str):
        kind = "missing" if response is None else f"a {type(response).__name__}"
        raise BadRequest(f"items[{index}].response must be a string, got {kind}", index, "response")
    return Item(prompt, response)


def openrlhf_answer(results: Sequence[FlipResult]) -> dict:
    """The ``/get_reward`` answer: rewards (= scores), numeric per-item logs, and each item's error (or null)."""
    rewards = [result.reward for result in results]
    logs = {"flip_f1": [result.f1 for result in results]}
    for kind in JUDGED_FAILURES:
        logs[f"flip_{kind.failure}"] = [float(result.error_type == kind) for result in results]
    logs["flip_restatement_masked"] = [float(result.restatement_masked) for result in results]
    return {"rewards": rewards, "scores": rewards, "extra_logs": logs, "errors": [r.error for r in results]}


def score_answer(items: Sequence[Item], results: Sequence[FlipResult]) -> dict:
    """The ``/v1/score`` answer: one result per item, with the fields ``flip-reward score`` writes."""
    return {"results": [result_fields(item.response, result) for item, result in zip(items, results)]}


def slime_answer(items: Sequence[Item], results: Sequence[FlipResult]) -> dict:
    """The ``/slime/reward`` answer: the ``SLIME_FIELDS`` of the one result (``error`` null on success)."""
    fields = results[0].to_dict()
    return {name: fields[name] for name in SLIME_FIELDS}
