"""A policy's own chat template pinned by ``--policy-template`` (a family name, a ``.jinja`` file or a local
tokenizer directory): prompts are read by round trip through that template.

The template is rendered by transformers' own jinja environment when transformers is installed (what
``apply_chat_template`` uses, TRL's ``{% generation %}`` blocks included), else by one with its settings (jinja2's
sandbox, ``trim_blocks`` and ``lstrip_blocks``, ``raise_exception``, ``strftime_now``, ``{% generation %}`` as its
body); the tokenizer's special tokens are variables. At load, sentinel conversations (one user turn; two; user,
assistant, user; system and user) are rendered to learn the text before the first message, between turns and after
the last one (the generation prompt), with thinking on and off. A prompt is then split at the user/assistant
markers (the earliest occurrence each time, so linear in its length) into candidate conversations, each rendered
again: those that give back the prompt exactly are its readings. None is an error. A reading whose instruction
(the last user message) may be joined with more of the prompt is two readings, an error: it holds a marker of the
template (what it writes between two turns, or the start of one after the end of another; so two user turns in a
row and a system prompt after the first turn are refused, not split), it starts as the template starts a tool's
result or follows an empty answer, or it reads as ending in whitespace before text the template adds unless the
message ends with it (GLM's ``/nothink``). So is a blank line in the user turn a template folds the system prompt
into. reader.one_reading decides between the rest (joins between earlier turns change only the context).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from jinja2 import Template, nodes
from jinja2 import TemplateError as JinjaError
from jinja2.ext import Extension, loopcontrols
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

from flip_reward.templates.families import EVERY_STOP, FAMILIES, GROUPS, harmony_response
from flip_reward.templates.reader import (
    FamilyReader,
    Reading,
    TemplateError,
    empty_answer_before,
    folds_blank_line,
    one_reading,
)

SYSTEM, USER, ASSISTANT, LAST_USER = "FLIPSENTINELSYSTEM", "FLIPSENTINELUSER", "FLIPSENTINELANSWER", "FLIPSENTINELASK"
TOOL = "FLIPSENTINELTOOL"
THINKING_SWITCHES: tuple[dict, ...] = ({}, {"enable_thinking": False}, {"thinking": True})  # Qwen 3, DeepSeek V3.1


class _TemplateRaised(Exception):
    """``raise_exception`` called by a template."""


def _raise(message: str) -> None:
    raise _TemplateRaised(message)


def _tojson(value: object, ensure_ascii: bool = False, indent: int | None = None, **kwargs: object) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, **kwargs)


class _Generation(Extension):
    """TRL's ``{% generation %}`` block (it marks the answer for training), rendered as its body."""

    tags = {"generation"}

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller: Callable[[], str]) -> str:
        return caller()


def _compile(source: str) -> Template:
    """``source`` compiled by transformers when it is installed, else by an environment with its settings."""
    try:
        from transformers.utils.chat_template_utils import _compile_jinja_template
    except ImportError:
        extensions = [loopcontrols, _Generation]
        environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=extensions)
        environment.filters["tojson"] = _tojson
        environment.globals.update(raise_exception=_raise, strftime_now=lambda fmt: datetime.now().strftime(fmt))
        return environment.from_string(source)
    return _compile_jinja_template(source)


class JinjaTemplate:
    """A chat template rendered as transformers renders it, with ``special_tokens`` (bos_token, eos_token, ...)."""

    def __init__(self, source: str, special_tokens: Mapping[str, str] | None = None):
        self.template = _compile(source)
        self.special_tokens = dict(special_tokens or {})

    def render(self, messages: list[dict[str, str]], **switches: object) -> str:
        """The prompt of ``messages`` with the generation prompt; _TemplateRaised or a jinja error when refused."""
        return self.template.render(messages=messages, add_generation_prompt=True, **self.special_tokens, **switches)


@dataclass(frozen=True)
class Shape:
    """What a template writes around messages, for one setting of its switches: before the first user message
    (``head``), after the last one (``generation``), between user and assistant and back, between two user messages,
    and with a system prompt: before it and between it and the first user message."""

    switches: dict
    head: str
    generation: str
    user_assistant: str | None = None
    assistant_user: str | None = None
    system_head: str | None = None
    system_user: str | None = None
    fold: str | None = None
    user_user: str | None = None
    tool_head: str | None = None

    def markers(self) -> tuple[str, ...]:
        """The texts the template writes between turns (and the start of a turn after the end of another), which the
        instruction of a reading must not hold: where it does, the prompt also reads with it split there."""
        between = [self.user_assistant, self.assistant_user, self.user_user]
        between += [self.system_user] if self.fold is None else []
        found = [marker for marker in between if marker]
        if self.user_assistant and self.assistant_user:
            found.append(os.path.commonprefix([self.user_assistant, self.assistant_user]))
        return tuple(marker for marker in dict.fromkeys(found) if marker)


def _between(text: str, *sentinels: str) -> list[str] | None:
    """The pieces of ``text`` around ``sentinels``, each found exactly once and in order, or None."""
    pieces, position = [], 0
    for sentinel in sentinels:
        found = text.find(sentinel, position)
        if found == -1 or text.count(sentinel) != 1:
            return None
        pieces.append(text[position:found])
        position = found + len(sentinel)
    return [*pieces, text[position:]]


def _try_render(template: JinjaTemplate, messages: list[dict[str, str]], switches: dict) -> str | None:
    try:
        return template.render(messages, **switches)
    except Exception:  # a template is someone else's code: whatever it raises, it renders nothing for these
        return None


def probe(template: JinjaTemplate) -> list[Shape]:
    """The distinct shapes of ``template`` over THINKING_SWITCHES; ValueError when it cannot render one user turn."""
    shapes: dict[tuple, Shape] = {}
    for switches in THINKING_SWITCHES:
        single = _try_render(template, [{"role": "user", "content": USER}], switches)
        pieces = _between(single, USER) if single is not None else None
        if pieces is None:
            continue
        head, generation = pieces
        turns = _try_render(template, _conversation(None), switches)
        turn_pieces = _between(turns, USER, ASSISTANT, LAST_USER) if turns is not None else None
        if turn_pieces is None or turn_pieces[0] != head or turn_pieces[-1] != generation:
            turn_pieces = [None, None, None, None]
        system = _try_render(template, _conversation(SYSTEM)[:2], switches)
        system_pieces = _between(system, SYSTEM, USER) if system is not None else None
        if system_pieces is None or system_pieces[-1] != generation:
            system_pieces = [None, None, None]
        fold = _fold(template, switches, head, system_pieces[0])
        two_users = _try_render(template, _conversation(None)[::2], switches)
        user_pieces = _between(two_users, USER, LAST_USER) if two_users is not None else None
        user_user = user_pieces[1] if user_pieces and user_pieces[0] == head and user_pieces[-1] == generation else None
        tool_head = _tool_head(template, switches, turn_pieces[2])
        shape = Shape(switches, head, generation, *turn_pieces[1:3], *system_pieces[:2], fold, user_user, tool_head)
        shapes.setdefault((shape.head, shape.generation, shape.system_head, shape.system_user), shape)
    if not shapes:
        raise ValueError("the template does not render a conversation of one user message")
    return list(shapes.values())


def _fold(template: JinjaTemplate, switches: dict, head: str, system_head: str | None) -> str | None:
    """Which user turn the template folds a system prompt into ("first" or "last"), or None."""
    rendered = _try_render(template, _conversation(SYSTEM), switches) or ""
    if rendered.find(SYSTEM) > rendered.find(ASSISTANT) > -1:
        return "last"
    return "first" if system_head is not None and system_head == head else None


def _tool_head(template: JinjaTemplate, switches: dict, assistant_user: str | None) -> str | None:
    """What the template writes at the start of a user turn that holds a tool's result (Qwen's ``<tool_response>``),
    or None where it writes tool results otherwise."""
    messages = [*_conversation(None)[:2], {"role": "tool", "content": TOOL}]
    rendered = _try_render(template, messages, switches)
    pieces = _between(rendered, USER, ASSISTANT, TOOL) if rendered is not None and assistant_user else None
    if pieces is None or pieces[2] == assistant_user or not pieces[2].startswith(assistant_user):
        return None
    return pieces[2][len(assistant_user) :]


def _conversation(system: str | None) -> list[dict[str, str]]:
    head = [{"role": "system", "content": system}] if system else []
    turns = [("user", USER), ("assistant", ASSISTANT), ("user", LAST_USER)]
    return head + [{"role": role, "content": content} for role, content in turns]


def _split_turns(body: str, shape: Shape) -> list[dict[str, str]] | None:
    """``body`` (from the first user message to the generation prompt) as alternating user and assistant messages,
    split at the earliest marker each time."""
    messages, position, role = [], 0, "user"
    while True:
        marker = shape.user_assistant if role == "user" else shape.assistant_user
        found = body.find(marker, position) if marker else -1
        if found == -1:
            if role != "user":
                return None
            messages.append({"role": "user", "content": body[position:]})
            return messages
        messages.append({"role": role, "content": body[position:found]})
        position, role = found + len(marker), "assistant" if role == "user" else "user"


def _candidates(prompt: str, shape: Shape) -> list[list[dict[str, str]]]:
    """The conversations ``prompt`` may be in ``shape``: without a system prompt, and with one."""
    if not prompt.endswith(shape.generation):
        return []
    end = len(prompt) - len(shape.generation)
    found = []
    if prompt.startswith(shape.head) and len(shape.head) <= end:
        turns = _split_turns(prompt[len(shape.head) : end], shape)
        found += [turns] if turns else []
    if shape.system_head is not None and shape.system_user and prompt.startswith(shape.system_head):
        start = len(shape.system_head)
        split = prompt.find(shape.system_user, start, end)
        if split != -1:
            turns = _split_turns(prompt[split + len(shape.system_user) : end], shape)
            found += [[{"role": "system", "content": prompt[start:split]}, *turns]] if turns else []
    return found


class PinnedTemplate:
    """Reads prompts by round trip through one chat template (see the module docstring)."""

    def __init__(self, source: str, name: str, special_tokens: Mapping[str, str] | None = None):
        self.template = JinjaTemplate(source, special_tokens)
        self.name = name
        self.shapes = probe(self.template)
        eos = (special_tokens or {}).get("eos_token")
        self.stops = tuple(dict.fromkeys([*([eos] if eos else []), *EVERY_STOP]))

    def read(self, prompt: str) -> Reading:
        """The one reading of ``prompt``; TemplateError when none or two re-render to it."""
        readings: list[Reading] = []
        two_ways = f"the prompt reads two ways through the pinned template {self.name}"
        for shape in self.shapes:
            for messages in _candidates(prompt, shape):
                if _try_render(self.template, messages, shape.switches) == prompt:
                    why = self._second_reading(messages, shape, prompt)
                    if why is not None:
                        raise TemplateError(f"{two_ways}{why}")
                    readings.append(self._reading(messages, shape))
        if not readings:
            raise TemplateError(f"the prompt does not re-render through the pinned template {self.name}")
        return one_reading(readings, lambda *_: two_ways)

    def _second_reading(self, messages: list[dict[str, str]], shape: Shape, prompt: str) -> str | None:
        """Why ``messages``, which re-render to ``prompt``, are not its only reading, or None."""
        if shape.fold is not None and folds_blank_line(messages, shape.fold):
            return f": the {shape.fold} user turn, which it folds a system prompt into, has a blank line"
        instruction = messages[-1]["content"]  # a join between earlier turns changes only the context
        if any(marker in instruction for marker in shape.markers()):
            return ": the last user message holds the template's own markup"
        tool_result = bool(shape.tool_head) and instruction.startswith(shape.tool_head)
        if tool_result or empty_answer_before(messages, len(messages) - 1):
            return ": the last user turn may be a tool's result"
        # Text before the generation prompt's markup that a template adds unless the message ends with it (GLM's
        # /nothink): any message may have, but one that reads as ending in whitespace most likely wrote it itself.
        added = shape.generation[: max(shape.generation.find("<"), 0)]
        if added.strip() and instruction[-1:].isspace():
            own = [*messages[:-1], {**messages[-1], "content": instruction + added}]
            if _try_render(self.template, own, shape.switches) == prompt:
                return f": the last user message may end with {added!r} itself (the template then adds none)"
        return None

    def _reading(self, messages: list[dict[str, str]], shape: Shape) -> Reading:
        stripped = [{**message, "content": message["content"].strip()} for message in messages]
        finish = harmony_response if shape.generation.endswith("<|start|>assistant") else None
        return Reading(self.name, self.name, stripped, _prefill(shape.generation), self.stops, finish)


def _prefill(generation: str) -> str:
    """The thinking a generation prompt leaves open (``<think>`` and what follows it), else ''."""
    opened = generation.rfind("<think>")
    return generation[opened:] if opened != -1 and "</think>" not in generation[opened:] else ""


def _token(value: object) -> str | None:
    """A special token as tokenizer_config.json writes it: a string, or an object with its ``content``."""
    if isinstance(value, Mapping):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _tokenizer_template(directory: Path) -> tuple[str, dict[str, str]]:
    """The chat template of a saved tokenizer (chat_template.jinja, else tokenizer_config.json's chat_template)
    and its special tokens."""
    config_path = directory / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    tokens = {name: token for name, value in config.items() if name.endswith("_token") and (token := _token(value))}
    jinja_file = directory / "chat_template.jinja"
    source = jinja_file.read_text(encoding="utf-8") if jinja_file.is_file() else config.get("chat_template")
    if isinstance(source, list):  # named templates: the default one
        source = next(
            (t.get("template") for t in source if isinstance(t, Mapping) and t.get("name") == "default"), None
        )
    if not isinstance(source, str) or not source.strip():
        raise ValueError("no chat template in it (neither chat_template.jinja nor tokenizer_config.json's)")
    return source, tokens


def load_policy_template(value: str) -> FamilyReader | PinnedTemplate:
    """The reader ``--policy-template VALUE`` asks for; ValueError with one line saying why it cannot be used."""
    option = f"--policy-template {value}"
    if value in GROUPS:
        return FamilyReader([family for family in FAMILIES if family.group == value])
    path = Path(value)
    try:
        if path.is_dir():
            source, tokens = _tokenizer_template(path)
            return PinnedTemplate(source, path.name, tokens)
        if path.suffix == ".jinja" and path.is_file():
            return PinnedTemplate(path.read_text(encoding="utf-8"), path.name)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, JinjaError, ValueError) as error:
        raise ValueError(f"{option}: {error}") from None
    except (RecursionError, SyntaxError) as error:  # Python's limits on the code jinja makes of the template
        limit = error.msg if isinstance(error, SyntaxError) else "past Python's recursion limit"
        raise ValueError(f"{option}: the template nests too deeply to compile ({limit})") from None
    raise ValueError(
        f"{option}: not a template family ({', '.join(GROUPS)}), an existing .jinja file or a tokenizer directory"
    )
