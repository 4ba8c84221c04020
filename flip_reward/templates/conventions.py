"""What a template adds around the messages beyond its markup (a default system prompt, a date preamble, think
prefixes on past answers, ``/nothink``, tool results wrapped in a user turn), each read off the turns and written
back for the round trip."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flip_reward.templates.scanner import Scan

Turns = list[tuple[str, str]]
MAX_DEFAULT_CHARS = 4096  # a template's own system text is short; longer ones are never compared


@dataclass(frozen=True)
class DefaultSystem:
    """A first system turn the template writes when the conversation has none (Qwen 2.5's "You are Qwen...",
    Granite's dated one): it is not a message. ``patterns`` match its whole text."""

    patterns: tuple[re.Pattern[str], ...]

    def read(self, turns: Turns, scan: Scan, notes: dict) -> Turns:
        if turns and turns[0][0] == "system" and len(turns[0][1]) <= MAX_DEFAULT_CHARS:
            if any(pattern.fullmatch(turns[0][1]) for pattern in self.patterns):
                notes[self] = turns[0][1]
                return turns[1:]
        return turns

    def write(self, turns: Turns, notes: dict) -> Turns:
        return [("system", notes[self]), *turns] if self in notes else turns


@dataclass(frozen=True)
class SystemPreamble:
    """Text the template puts before the system prompt (Llama 3.1's knowledge and today's dates), in a system turn
    of its own when the conversation has no system prompt."""

    pattern: re.Pattern[str]

    def read(self, turns: Turns, scan: Scan, notes: dict) -> Turns:
        if not turns or turns[0][0] != "system" or not (match := self.pattern.match(turns[0][1])):
            return turns
        rest = turns[0][1][match.end() :]
        notes[self] = (match.group(0), not rest)
        return turns[1:] if not rest else [("system", rest), *turns[1:]]

    def write(self, turns: Turns, notes: dict) -> Turns:
        if self not in notes:
            return turns
        preamble, alone = notes[self]
        if alone:
            return [("system", preamble), *turns]
        return [("system", preamble + turns[0][1]), *turns[1:]]


@dataclass(frozen=True)
class Affix:
    """Text the template adds at the start (``at="start"``) or end of every turn of ``role`` that it reads here:
    think markers on past answers (``<think></think>``, DeepSeek V3.1's ``</think>``), OLMo 3's functions note on
    the system prompt, GLM's ``/nothink`` on user turns (only with ``generations``, when the prompt ends in one)."""

    role: str
    texts: tuple[str, ...]
    at: str = "start"
    generations: tuple[str, ...] | None = None

    def read(self, turns: Turns, scan: Scan, notes: dict) -> Turns:
        if self.generations is not None and scan.generation.text not in self.generations:
            return turns
        found: dict[int, str] = {}
        result = []
        for index, (role, content) in enumerate(turns):
            affix = next((text for text in self.texts if role == self.role and self._has(content, text)), None)
            if affix is not None:
                found[index] = affix
                content = content[len(affix) :] if self.at == "start" else content[: len(content) - len(affix)]
            result.append((role, content))
        notes[self] = found
        return result

    def _has(self, content: str, text: str) -> bool:
        return content.startswith(text) if self.at == "start" else content.endswith(text)

    def write(self, turns: Turns, notes: dict) -> Turns:
        found = notes.get(self, {})
        return [
            (role, (found[i] + content if self.at == "start" else content + found[i]) if i in found else content)
            for i, (role, content) in enumerate(turns)
        ]


@dataclass(frozen=True)
class Wrapped:
    """Turns the template writes as another role with text around the content (gpt-oss writes the system prompt
    as a developer message ``# Instructions\\n\\n...\\n\\n``): read back as ``role`` with the content inside."""

    written: str
    role: str
    head: str
    tail: str

    def read(self, turns: Turns, scan: Scan, notes: dict) -> Turns:
        found, result = set(), []
        for index, (role, content) in enumerate(turns):
            wrapped = len(content) >= len(self.head) + len(self.tail)
            if role == self.written and wrapped and content.startswith(self.head) and content.endswith(self.tail):
                found.add(index)
                role, content = self.role, content[len(self.head) : len(content) - len(self.tail)]
            result.append((role, content))
        notes[self] = found
        return result

    def write(self, turns: Turns, notes: dict) -> Turns:
        found = notes.get(self, set())
        return [
            (self.written, self.head + content + self.tail) if i in found else (role, content)
            for i, (role, content) in enumerate(turns)
        ]


@dataclass(frozen=True)
class ToolResults:
    """Tool results the template writes inside a turn of another role (Qwen's and Nemotron's ``<tool_response>``
    blocks in a user turn, one turn for consecutive results, then one of ``ends``): a turn made only of such blocks
    is read back as one tool message each."""

    written: str
    head: str
    tail: str
    separator: str
    ends: tuple[str, ...] = ("",)

    def read(self, turns: Turns, scan: Scan, notes: dict) -> Turns:
        found: dict[int, str] = {}  # the first result of each turn read: the end written after its last one
        following: set[int] = set()  # the other results of those turns
        result = []
        for role, content in turns:
            end = next((end for end in self.ends if content.endswith(self.tail + end)), None)
            if role == self.written and content.startswith(self.head) and end is not None:
                inner = content[len(self.head) : len(content) - len(self.tail + end)]
                results = inner.split(self.tail + self.separator + self.head)
                found[len(result)] = end
                following.update(range(len(result) + 1, len(result) + len(results)))
                result += [("tool", text) for text in results]
            else:
                result.append((role, content))
        notes[self] = (found, following)
        return result

    def write(self, turns: Turns, notes: dict) -> Turns:
        found, following = notes.get(self, ({}, set()))
        result, end = [], ""
        for index, (role, content) in enumerate(turns):
            if index in found:
                end = found[index]
                result.append((self.written, self.head + content + self.tail + end))
            elif index in following:
                previous = result[-1][1][: len(result[-1][1]) - len(end)]
                result[-1] = (self.written, previous + self.separator + self.head + content + self.tail + end)
            else:
                result.append((role, content))
        return result
