"""Splitting a templated text into turns at a template family's markers, in time linear in the text's length."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Generation:
    """What a template writes after the last turn for ``add_generation_prompt``; ``prefill`` is the part of it the
    response continues (an opened ``<think>``), put back in front of the response so that its thinking is hidden."""

    text: str
    prefill: str = ""


@dataclass(frozen=True)
class Grammar:
    """The markup of one template: the header and footer of each role (as the template writes the role), the texts
    the prompt may start with (a BOS) and end with (its generation prompts). ``bare_system``, when set, is the text
    that closes a system prompt written before the first turn with no header (DeepSeek)."""

    headers: Mapping[str, str]
    footers: Mapping[str, str]
    generations: tuple[Generation, ...]
    prefixes: tuple[str, ...] = ("",)
    bare_system: str | None = None

    def render(self, prefix: str, turns: list[tuple[str, str]], generation: Generation) -> str:
        """The text of ``turns`` ((role, content) pairs) between ``prefix`` and ``generation``."""
        parts = [prefix]
        for index, (role, content) in enumerate(turns):
            if index == 0 and role == "system" and self.bare_system is not None:
                parts += [content, self.bare_system]
            else:
                parts += [self.headers[role], content, self.footers[role]]
        parts.append(generation.text)
        return "".join(parts)


@dataclass(frozen=True)
class Scan:
    """A text read in a grammar: its prefix, its turns ((role, content) pairs) and its generation prompt."""

    prefix: str
    turns: list[tuple[str, str]]
    generation: Generation


class _Headers:
    """Where the next header of any role starts at or after a position, for positions that only grow: each header's
    next occurrence is searched again only once it lies behind, so a whole scan costs O(headers x length)."""

    def __init__(self, body: str, headers: Mapping[str, str]):
        self.body = body
        self.by_length = sorted(headers.items(), key=lambda item: -len(item[1]))
        self.next = {text: -2 for _, text in self.by_length if text}

    def role_at(self, position: int) -> str | None:
        """The role whose header starts at ``position`` (the longest when several do), or None."""
        return next((role for role, text in self.by_length if self.body.startswith(text, position)), None)

    def next_start(self, position: int) -> int:
        """The first position at or after ``position`` where a non-empty header starts, or -1."""
        found = -1
        for text, cached in self.next.items():
            if cached != -1 and cached < position:
                cached = self.next[text] = self.body.find(text, position)
            if cached != -1 and (found == -1 or cached < found):
                found = cached
        return found


def scan(text: str, grammar: Grammar) -> Scan | None:
    """``text`` split into turns at every complete boundary of ``grammar`` (a footer followed by a header; markup
    that does not form one stays content), or None when the grammar does not consume the whole text."""
    prefix = max((p for p in grammar.prefixes if text.startswith(p)), key=len, default=None)
    generation = max(
        (g for g in grammar.generations if text.endswith(g.text) and len(g.text) <= len(text) - len(prefix or "")),
        key=lambda g: len(g.text),
        default=None,
    )
    if prefix is None or generation is None:
        return None
    body = text[len(prefix) : len(text) - len(generation.text)]
    headers = _Headers(body, grammar.headers)
    turns: list[tuple[str, str]] = []
    position = 0
    if grammar.bare_system is not None and headers.role_at(0) is None:
        end = _turn_end(body, 0, grammar.bare_system, headers)
        if end is None:
            return None
        turns.append(("system", body[:end]))
        position = end + len(grammar.bare_system)
    while position < len(body):
        role = headers.role_at(position)
        if role is None:
            return None
        start = position + len(grammar.headers[role])
        end = _turn_end(body, start, grammar.footers[role], headers)
        if end is None:
            return None
        turns.append((role, body[start:end]))
        if end + len(grammar.footers[role]) == position:
            return None  # a role with neither header nor footer would not move on
        position = end + len(grammar.footers[role])
    return Scan(prefix, turns, generation) if turns else None


def _turn_end(body: str, start: int, footer: str, headers: _Headers) -> int | None:
    """Where the turn whose content starts at ``start`` ends: the first ``footer`` followed by a header, or the one
    that ends the body; with no footer, the next header or the end of the body."""
    if not footer:
        found = headers.next_start(start)
        return len(body) if found == -1 else found
    last = len(body) - len(footer)
    found = body.find(footer, start)
    while found != -1:
        if found == last or headers.role_at(found + len(footer)) is not None:
            return found
        found = body.find(footer, found + 1)
    return None
