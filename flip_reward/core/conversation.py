"""Splitting a prompt into (context, original instruction): the last user message is what FLIP must recover.

Prompts arrive as chat messages (content a string or a list of text parts) or as open-instruct's flattened string
``"\\n".join(f"{role}: {content}")``. Messages keep every line: a multi-line instruction is one instruction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ROLES = ("system", "user", "assistant", "tool", "developer", "function")
_ROLE_LINE = re.compile(rf"^({'|'.join(ROLES)}): ?", re.MULTILINE)


@dataclass(frozen=True)
class Turn:
    """One chat message with its content flattened to text."""

    role: str
    content: str


class PromptError(ValueError):
    """The prompt cannot yield an instruction (no user message, wrong types, empty text)."""


def message_text(content: object) -> str:
    """Text of a message's content: a string, or the ``text`` of each text part of a list, joined by newlines."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                texts.append(part["text"])
        return "\n".join(texts)
    raise PromptError(f"message content must be a string or a list of text parts, got {type(content).__name__}")


def last_index(messages: Sequence[object], role: str) -> int | None:
    """The index of the last of ``messages`` whose role is ``role`` (items that are no mapping are passed over), or
    None when there is none; the adapters use it on their trainer's messages before FLIP reads them.

    >>> last_index([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}], "user")
    0
    """
    found = [
        index for index, message in enumerate(messages) if isinstance(message, Mapping) and message.get("role") == role
    ]
    return found[-1] if found else None


def with_instruction(messages: Sequence[object], instruction: str) -> list[object]:
    """``messages`` with ``instruction`` (stripped) as their instruction: the messages before the last user message
    (all of them when there is none), then a user message of ``instruction``; how a trainer's label or ground truth
    replaces the prompt's own last user turn.

    >>> with_instruction([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], " Name it. ")
    [{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': 'Name it.'}]
    """
    messages = list(messages)
    return [*messages[: last_index(messages, "user")], {"role": "user", "content": instruction.strip()}]


def parse_messages(messages: Sequence[object]) -> list[Turn]:
    """Chat messages (``{"role": ..., "content": ...}``) as turns, a null content as empty text; raises PromptError
    naming the bad message."""
    turns = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise PromptError(f"message {index} must be an object with a string 'role'")
        if "content" not in message:
            raise PromptError(f"message {index} has no 'content'")
        content = message["content"]  # null: an assistant turn that only calls tools, or a columnar format's gap
        turns.append(Turn(message["role"], "" if content is None else message_text(content)))
    return turns


def parse_flattened(prompt: str) -> list[Turn]:
    """Turns of open-instruct's flattened prompt; text with no ``role:`` line at all is one user turn."""
    starts = list(_ROLE_LINE.finditer(prompt))
    if not starts or starts[0].start() != 0:
        return [Turn("user", prompt)]
    turns = []
    for match, following in zip(starts, [*starts[1:], None]):
        end = following.start() - 1 if following else len(prompt)
        turns.append(Turn(match.group(1), prompt[match.end() : end]))
    return turns


def to_turns(prompt: str | Sequence[object]) -> list[Turn]:
    """Turns of a prompt given as a flattened string or as chat messages."""
    if isinstance(prompt, str):
        return parse_flattened(prompt)
    if isinstance(prompt, Sequence):
        return parse_messages(prompt)
    raise PromptError(f"prompt must be a string or a list of messages, got {type(prompt).__name__}")


HISTORY_SEPARATOR = "\n\n"


def format_turn(turn: Turn) -> str:
    """One turn of the history as the judge reads it: a ``role: content`` block."""
    return f"{turn.role}: {turn.content.strip()}"


def split_turns(prompt: str | Sequence[object]) -> tuple[list[str], str]:
    """``(history, instruction)``: the last user message, and the turns before it as ``format_turn`` blocks.

    >>> split_turns([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
    ...              {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Name a colour."}])
    (['system: Be brief.', 'user: Hi', 'assistant: Hello!'], 'Name a colour.')
    """
    turns = to_turns(prompt)
    user_indices = [index for index, turn in enumerate(turns) if turn.role == "user"]
    if not user_indices:
        raise PromptError("prompt has no user message")
    last = user_indices[-1]
    instruction = turns[last].content.strip()
    if not instruction:
        raise PromptError("the last user message is empty")
    return [format_turn(turn) for turn in turns[:last]], instruction


@dataclass(frozen=True)
class SplitPrompt:
    """A prompt split once (``split_prompt``): the turns before the instruction as ``format_turn`` blocks, and the
    instruction. FlipReward and the baselines take one in place of a prompt, so that a caller that split the prompt
    to check it does not have it split again."""

    history: tuple[str, ...]
    instruction: str


def split_prompt(prompt: str | Sequence[object] | SplitPrompt) -> SplitPrompt:
    """``prompt`` split as ``split_turns`` does (PromptError when it yields no instruction); a SplitPrompt as it is.

    >>> split_prompt("system: Be brief.\\nuser: Name a colour.")
    SplitPrompt(history=('system: Be brief.',), instruction='Name a colour.')
    """
    if isinstance(prompt, SplitPrompt):
        return prompt
    history, instruction = split_turns(prompt)
    return SplitPrompt(tuple(history), instruction)


def split_conversation(prompt: str | Sequence[object]) -> tuple[str, str]:
    """``(context, instruction)``: the last user message, and the turns before it joined into the text the judge
    reads ("" when none).

    >>> split_conversation([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
    ...                     {"role": "user", "content": "Write a haiku\\nabout rain"}])
    ('user: Hi\\n\\nassistant: Hello!', 'Write a haiku\\nabout rain')
    >>> split_conversation("system: Be brief.\\nuser: Name three\\nprimes.")
    ('system: Be brief.', 'Name three\\nprimes.')
    """
    history, instruction = split_turns(prompt)
    return HISTORY_SEPARATOR.join(history), instruction
