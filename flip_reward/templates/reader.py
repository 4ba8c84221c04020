"""Reading a templated prompt back into chat messages, and the response out of prompt + response, by the families.

A family is accepted only when its grammar consumes the whole prompt and the turns it read, with what its
conventions took out written back, re-render to exactly that prompt. What "two readings" means here:

- Within a family the reading splits at every complete turn boundary (an end-of-turn marker followed by the header
  of a known role) and nowhere else. Markup inside a message that does not form a complete boundary, such as
  ``What do <|im_start|> and <|im_end|> mean?``, stays content.
- A message that holds a complete boundary writes the same text as the turns it spells out. The reading takes
  the turns, as the policy's tokenizer does where the markers are special tokens, unless the instruction (the
  last user message) may be joined with a turn next to it; that is two readings, an error: two turns of one role
  in a row (a message holding ``<|im_end|>\n<|im_start|>user\n``, or a header with no end marker: ``What does
  <｜User｜> do``), an empty answer before it (a tool call the template does not write, the instruction its
  result), and, where the markers are plain text to the tokenizer (DeepSeek V2's ``User:``, Tulu and OLMo 2's
  ``<|user|>``, Mistral v1's ``[INST]``), any turn next to it but an answer. A message holding the alternation
  itself (Phi-3's ``a<|end|>\n<|assistant|>\nb<|end|>\n<|user|>\nc``) is byte for byte, and token for token,
  the conversation it spells out: it is read as that.
- Two readings are also two families, or two variants of one, whose readings of the same prompt both round-trip
  but give different instructions (the last user message, compared without surrounding whitespace; readings that
  differ only in earlier turns yield to the one with the fewest messages), and a template that folds the system
  prompt into a user turn (Gemma, Mistral before v7) when that turn has a blank line: the text before it may be a
  system prompt or the user's own. Either is an error, never a pick.
- A reading in which a message holds a complete boundary of its own family that the scan did not split at (the
  end of another role's turn followed by a header: ``</s>[INST]`` inside a Mistral v3 user message) is not one.
- A reading in which a message ends with an end-of-turn token of any known family (``<|end|>``, ``<|eot_id|>``,
  ...) is not one: that token ended the turn in another family's markup. This is what keeps a Tulu reading of a
  Phi-3 prompt (every message would end in ``<|end|>``) from competing with the Phi-3 one. The other way round it
  cannot be told apart: a Tulu message that ends in ``<|end|>`` writes a Phi-3 prompt, and is read as one (pin
  ``--policy-template tulu`` to refuse it).
- Text a family writes into a turn that the reader cannot take back out exactly (Llama 3.1's tool list in the
  user turn, gpt-oss's tool call chains, a ``/nothink`` a GLM user may have typed) is an error. Qwen's and
  Nemotron's tool results, ``<tool_response>`` blocks in a user turn, are read back as tool messages.

Everything is linear in the prompt's length: the scanner moves forward with ``str.find`` over the family's markers
and the round trip is one concatenation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flip_reward.templates.families import EVERY_STOP, FAMILIES, FOLD_SEPARATOR, Family
from flip_reward.templates.scanner import Grammar, Scan, scan


class TemplateError(ValueError):
    """A templated text that cannot be read exactly; the message says why (callers add the item)."""


@dataclass(frozen=True)
class Reading:
    """A prompt read back: its ``messages`` (role, content; the open assistant turn is not one), the template that
    read it, and what reading the response needs (the generation prompt's prefill, stop tokens, channel markup)."""

    template: str
    group: str
    messages: list[dict[str, str]]
    prefill: str = ""
    stops: tuple[str, ...] = EVERY_STOP
    finish: Callable[[str], str] | None = None

    def response(self, query: str, prompt: str) -> str:
        """The response in ``query`` (prompt + response as the trainer decoded it): the text after the prompt, the
        ``stops`` it ends with (the end-of-turn and end-of-text tokens of every known family, and a pinned
        template's eos: a policy may close with its eos after its end-of-turn token) and surrounding whitespace
        removed, with the generation prompt's opened ``<think>`` put back."""
        text = response_after(query, prompt, self.stops)
        if self.finish is not None:
            text = self.finish(text)
        return self.prefill + text if self.prefill else text


def response_after(query: str, prompt: str, stops: Sequence[str] = EVERY_STOP) -> str:
    """The text of ``query`` after ``prompt`` without the ``stops`` and whitespace it ends with (nor leading
    whitespace); TemplateError when the query does not start with its prompt."""
    if not query.startswith(prompt):
        raise TemplateError("does not start with its prompt")
    start, end = len(prompt), len(query)
    while True:
        while end > start and query[end - 1].isspace():
            end -= 1
        stop = next((s for s in stops if s and end - start >= len(s) and query.endswith(s, start, end)), None)
        if stop is None:
            break
        end -= len(stop)
    while start < end and query[start].isspace():
        start += 1
    return query[start:end]


def read_family(family: Family, prompt: str) -> Reading | str | None:
    """``prompt`` read in ``family``: a Reading, a string saying why it reads two ways or not exactly, or None when
    it does not read (the grammar does not consume it, the round trip differs, or it has no user turn)."""
    scanned = scan(prompt, family.grammar)
    if scanned is None or any(_holds_boundary(content, family.grammar) for _, content in scanned.turns):
        return None
    turns = _round_trip(family, scanned, prompt)
    if turns is None:
        return None
    messages = [{"role": family.role(role), "content": content.strip()} for role, content in turns]
    users = [index for index, message in enumerate(messages) if message["role"] == "user"]
    if not users or not messages[users[-1]]["content"] or messages[0]["role"] == "assistant":
        return None  # no instruction to read, or a conversation that opens with an answer
    if any(message["content"].endswith(EVERY_STOP) for message in messages):
        return None  # an end-of-turn token ends the turn: a message that ends in one is misread
    unreadable = next((why for text, why in family.unreadable.items() for _, c in scanned.turns if text in c), None)
    if unreadable is not None:
        return f"the prompt does not read exactly as {family.name}: {unreadable}"
    why = _two_readings(family, messages, users[-1])
    if why is not None:
        return f"the prompt reads two ways: {why}"
    return Reading(family.name, family.group, messages, scanned.generation.prefill, finish=family.finish)


def _two_readings(family: Family, messages: list[dict[str, str]], last: int) -> str | None:
    """Why ``messages`` (as read in ``family``, ``last`` the index of the last user message) may also read with
    another instruction, or None.

    Another reading joins the instruction (the last user message) with a turn next to it, as a message holding the
    family's markup would be written: two turns of one role in a row (the open answer counts as one) are what a
    message holding a header writes, and an empty answer before the instruction may be a tool call that the
    template does not write, with the instruction its result. In a family whose markers are plain text, any turn
    next to the instruction other than an answer is. Joins between earlier turns change only the context, which
    ``one_reading`` tolerates. A blank line in the user turn that a template folds the system prompt into is two
    readings too.
    """
    roles = [message["role"] for message in messages] + ["assistant"]
    for index in range(max(last - 1, 0), len(messages)):
        role, following = roles[index], roles[index + 1]
        if role == following != "tool":  # parallel tool results are consecutive
            return f"two {role} turns in a row in {family.name}: one message may hold the template's markup"
        if index == last - 1 and empty_answer_before(messages, last):
            return f"an empty answer in {family.name} before the user turn, which may be a tool's result"
        if family.text_markers and "assistant" not in (role, following) and (index, role) != (0, "system"):
            plain = f"{family.name} writes its turn markers as plain text"
            return f"{plain}: the {following} turn may be the text of the {role} message"
    if family.fold and folds_blank_line(messages, family.fold):
        return (
            f"{family.name} folds a system prompt into the {family.fold} user turn, and that turn has a blank line: "
            "the text before it may be a system prompt or the user's own"
        )
    return None


def empty_answer_before(messages: list[dict[str, str]], index: int) -> bool:
    """Whether the user turn ``messages[index]`` follows an empty answer: a tool call that the template does not
    write, and the tool's result written as a user turn, read the same."""
    before = messages[index - 1] if index > 0 else None
    return before is not None and before["role"] == "assistant" and not before["content"]


def folds_blank_line(messages: list[dict[str, str]], fold: str) -> bool:
    """Whether the user turn that a template folds a system prompt into (``fold``: "first" or "last") has a blank
    line: the text before it may be a system prompt."""
    users = [message for message in messages if message["role"] == "user"]
    return FOLD_SEPARATOR in users[0 if fold == "first" else -1]["content"]


def _round_trip(family: Family, scanned: Scan, prompt: str) -> list[tuple[str, str]] | None:
    """The scanned turns with the family's conventions read off, when writing them back renders ``prompt``."""
    notes: dict = {}
    turns = scanned.turns
    for convention in family.conventions:
        turns = convention.read(turns, scanned, notes)
    written = turns
    for convention in reversed(family.conventions):
        written = convention.write(written, notes)
    bare_system = family.grammar.bare_system is not None and written[:1] and written[0][0] == "system"
    if any(role not in family.grammar.headers for role, _ in written[1 if bare_system else 0 :]):
        return None
    return turns if family.grammar.render(scanned.prefix, written, scanned.generation) == prompt else None


def _holds_boundary(content: str, grammar: Grammar) -> bool:
    """Whether ``content`` holds a complete turn boundary of ``grammar`` (a footer followed by a header; a header
    alone after a role with no footer). The scanner splits at the boundaries of the role it is reading, so one left
    inside a message belongs to another role's footer: that reading put a turn inside another."""
    headers = list(grammar.headers.values())
    for footer in set(grammar.footers.values()):
        if not footer:
            if any(header and header in content for header in headers):
                return True
            continue
        found = content.find(footer)
        while found != -1:
            if any(content.startswith(header, found + len(footer)) for header in headers):
                return True
            found = content.find(footer, found + 1)
    return False


class FamilyReader:
    """Reads prompts in the known families (all, or those named); see the module docstring for the rules."""

    def __init__(self, families: Sequence[Family] = FAMILIES):
        self.families = tuple(families)
        self.names = tuple(dict.fromkeys(family.group for family in self.families))

    def read(self, prompt: str) -> Reading:
        """The one reading of ``prompt``; TemplateError when it reads in no family or in two ways."""
        readings: list[Reading] = []
        for family in self.families:
            reading = read_family(family, prompt)
            if isinstance(reading, str):
                raise TemplateError(reading)
            if reading is not None:
                readings.append(reading)
        if not readings:
            raise TemplateError(f"the prompt is in no known chat template (tried {', '.join(self.names)})")
        return one_reading(readings, lambda a, b: f"the prompt reads two ways: as {a.template} and as {b.template}")


def one_reading(readings: Sequence[Reading], two_ways: Callable[[Reading, Reading], str]) -> Reading:
    """The reading to use among ``readings`` of one prompt that all round-trip: they must agree on the instruction
    (the last user message); where they differ only in earlier turns, the one with the fewest messages (text a
    template writes by itself, such as its default system prompt, is not a message). TemplateError with
    ``two_ways`` otherwise."""
    first = readings[0]
    other = next((r for r in readings if _instruction(r) != _instruction(first)), None)
    if other is not None:
        raise TemplateError(two_ways(first, other))
    return min(readings, key=lambda reading: len(reading.messages))


def _instruction(reading: Reading) -> str:
    return next(m["content"] for m in reversed(reading.messages) if m["role"] == "user")
