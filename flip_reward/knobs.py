"""Knobs: every setting of a command declared once, as a field of a frozen dataclass, with its environment variable,
flag, default, type, check and help, and resolved in one order: command-line flag > environment > preset > default.

A settings class declares its knobs with :func:`knob`; the field's annotation is the knob's type (``str``, ``int``,
``float``, ``bool`` or one of them ``| None``). A knob may also read other variables (``aliases``: one setting with a
second name, e.g. FLIP_CONCURRENCY for JUDGE_CONCURRENCY): in one source the first name set wins, and two names set to
different values are refused, naming both. A default is a value, or a function of the knobs declared before it
(so ``OUTPUT_DIR`` can default to ``output/EXP_NAME``). :func:`resolve` builds the settings from the three sources
and names the source of any bad value; :func:`add_flags` puts every knob on an argparse parser; :func:`reference`
renders the table that docs/knobs.md holds (a test keeps the two equal).

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Demo:
...     port: int = knob("DEMO_PORT", 8000, "where to listen", minimum=1)
...     url: str = knob("DEMO_URL", lambda s: f"http://127.0.0.1:{s.port}", "the address", shown="http://127.0.0.1:PORT")
>>> resolve(Demo, environ={"DEMO_PORT": "9000"})
Demo(port=9000, url='http://127.0.0.1:9000')
>>> resolve(Demo, flags={"port": "80"}, environ={"DEMO_PORT": "9000"}).port
80
>>> try:
...     resolve(Demo, preset={"DEMO_PORT": "zero"})
... except SettingsError as error:
...     print(error)
DEMO_PORT (preset): expected an integer, got 'zero'
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off", "")


class SettingsError(ValueError):
    """A knob (flag, environment variable or preset value) that cannot be used; the message names where it came
    from."""


@dataclass(frozen=True)
class Knob:
    """One setting: its environment variable (None: flag only), default (a value or a function of the settings
    resolved so far), help, flag (default: from the field name; "" for none), the values it may take, its smallest
    value (``minimum``) or the value it must exceed (``above``), ``shown``, how --help and the reference show a
    computed default, ``read``, a function that finds its text in a source instead, and ``aliases``, more variables
    it reads (after ``env``)."""

    env: str | None
    default: object
    help: str
    flag: str | None = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    shown: str | None = None
    read: Callable[[Mapping[str, str], Any], str | None] | None = None
    above: float | None = None
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """The variables this knob reads, in order."""
        return (self.env, *self.aliases) if self.env else self.aliases

    def raw(self, source: Mapping[str, str], partial: Any) -> list[tuple[str, str]]:
        """The variables that set this knob in one source (the environment or a preset) with their text, in the
        order of ``names``; a blank value counts as unset."""
        if self.read is not None:
            text = self.read(source, partial)
            return [] if text is None else [(self.env or "", text)]
        return [(name, source[name]) for name in self.names if source.get(name, "").strip() != ""]

    def default_text(self) -> str:
        if self.shown is not None:
            return self.shown
        if callable(self.default):
            return "computed"
        if isinstance(self.default, bool):
            return "on" if self.default else "off"
        return "unset" if self.default in (None, "") else str(self.default)


def knob(env: str | None, default: object, help: str, **options: Any) -> Any:
    """A dataclass field carrying a :class:`Knob` (``options``: flag, choices, minimum, above, shown, read,
    aliases)."""
    return field(metadata={"knob": Knob(env, default, help, **options)})


@dataclass(frozen=True)
class Declared:
    """A knob as a settings class declares it: the field's name, its type and the knob."""

    name: str
    kind: type
    optional: bool
    knob: Knob

    @property
    def flag(self) -> str:
        return self.knob.flag or "--" + self.name.replace("_", "-")

    @property
    def label(self) -> str:
        """How messages name the knob: its environment variable, else its flag."""
        return self.knob.env or self.flag


def declared(cls: type) -> Iterator[Declared]:
    """The knobs of settings class ``cls``, in declaration order."""
    hints = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        if "knob" not in item.metadata:
            continue
        kind, optional = _base_type(hints[item.name])
        yield Declared(item.name, kind, optional, item.metadata["knob"])


def _base_type(hint: Any) -> tuple[type, bool]:
    arguments = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        kinds = [argument for argument in arguments if argument is not type(None)]
        return kinds[0], len(kinds) < len(arguments)
    return hint, False


def convert(item: Declared, value: object, origin: str) -> object:
    """``value`` (text from a flag, the environment or a preset; or a default) as the knob's type, checked."""
    if isinstance(value, str):
        value = _parse(item, value.strip(), origin)
    if item.knob.choices and value not in item.knob.choices and value is not None:
        raise SettingsError(f"{origin}: must be one of {', '.join(item.knob.choices)}, got {value!r}")
    if item.knob.minimum is not None and value is not None and value < item.knob.minimum:
        raise SettingsError(f"{origin}: must be >= {item.knob.minimum:g}, got {value}")
    if item.knob.above is not None and value is not None and value <= item.knob.above:
        raise SettingsError(f"{origin}: must be > {item.knob.above:g}, got {value}")
    return value


def _parse(item: Declared, text: str, origin: str) -> object:
    if item.optional and text == "":
        return None
    try:
        if item.kind is int:
            return int(text)
        if item.kind is float:
            return float(text)
    except ValueError:
        expected = "an integer" if item.kind is int else "a number"
        raise SettingsError(f"{origin}: expected {expected}, got {text!r}") from None
    if item.kind is bool:
        if text.lower() not in TRUE + FALSE:
            raise SettingsError(f"{origin}: expected 1/0, true/false, yes/no or on/off, got {text!r}")
        return text.lower() in TRUE
    return text


def resolve(
    cls: type,
    flags: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
    preset: Mapping[str, str] | None = None,
    fixed: Mapping[str, object] | None = None,
) -> Any:
    """Settings ``cls`` from ``flags`` (field name -> value, None when not given), ``environ`` and ``preset``, in
    that order, else each knob's default; ``fixed`` gives fields that are no knobs (e.g. the preset's name).
    SettingsError names the flag or variable and its source."""
    flags, environ, preset = flags or {}, environ or {}, preset or {}
    partial = types.SimpleNamespace(**(fixed or {}))
    for item in declared(cls):
        setattr(partial, item.name, _value(item, partial, flags, environ, preset))
    try:
        return cls(**vars(partial))
    except SettingsError:
        raise
    except (TypeError, ValueError) as error:
        raise SettingsError(str(error)) from None


def _value(
    item: Declared,
    partial: Any,
    flags: Mapping[str, object],
    environ: Mapping[str, str],
    preset: Mapping[str, str],
) -> object:
    if flags.get(item.name) is not None:
        return convert(item, flags[item.name], item.flag)
    for origin, source in (("environment", environ), ("preset", preset)):
        found = [(name, text, convert(item, text, f"{name or item.label} ({origin})"))
                 for name, text in item.knob.raw(source, partial)]  # fmt: skip
        for name, text, value in found[1:]:
            if value != found[0][2]:
                raise SettingsError(
                    f"{found[0][0]} and {name} ({origin}) are one setting but differ: {found[0][1]!r} vs {text!r}"
                )
        if found:
            return found[0][2]
    default = item.knob.default
    return convert(item, default(partial) if callable(default) else default, f"{item.label} (default)")


def resolve_knob(
    cls: type, name: str, flags: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None
) -> object:
    """Knob ``name`` of ``cls`` alone, from ``flags`` > ``environ`` > its default (no preset, no other knob): for the
    knob that names the preset, read before the preset is."""
    item = next(item for item in declared(cls) if item.name == name)
    return _value(item, types.SimpleNamespace(), flags or {}, environ or {}, {})


def unknown_preset_keys(cls: type, preset: Mapping[str, str], name: str, also: tuple[str, ...] = ()) -> None:
    """SettingsError naming every key of preset ``name`` that is no knob of ``cls`` (nor in ``also``), with the
    closest knob, so that a typo in a preset never passes silently."""
    known = {name for item in declared(cls) for name in item.knob.names} | set(also)
    unknown = sorted(set(preset) - known)
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, sorted(known), n=1)
        hints.append(f"{key} (did you mean {close[0]}?)" if close else key)
    raise SettingsError(f"preset {name}: unknown setting(s) {', '.join(hints)}")


def add_flags(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """A flag for every knob of ``cls`` (except the fields in ``skip``), left None unless given; booleans get
    ``--x/--no-x``. The help names the environment variable and the default."""
    for item in declared(cls):
        if item.name in skip or item.knob.flag == "":
            continue
        details = [f"default: {item.knob.default_text()}"] if item.knob.default_text() != "computed" else []
        details += [f"env {' or '.join(item.knob.names)}"] if item.knob.names else []
        help_text = f"{item.knob.help} ({'; '.join(details)})" if details else item.knob.help
        help_text = help_text.replace("%", "%%")
        options: dict[str, Any] = {"dest": item.name, "default": None, "help": help_text}
        if item.kind is bool:
            parser.add_argument(item.flag, action=argparse.BooleanOptionalAction, **options)
        else:
            parser.add_argument(item.flag, metavar=item.knob.env or item.name.upper(), **options)


def reference(*classes: type) -> str:
    """The Markdown table of the knobs of ``classes`` (variable, flag, default, meaning), as docs/knobs.md holds it; a
    knob's aliases follow its variable ("or ...")."""
    lines = ["| Variable | Flag | Default | Meaning |", "|---|---|---|---|"]
    for item in (item for cls in classes for item in declared(cls)):
        variable = " or ".join(f"`{name}`" for name in item.knob.names)
        flag = f"`{item.flag}`" if item.knob.flag != "" else ""
        meaning = item.knob.help + (f" ({', '.join(item.knob.choices)})" if item.knob.choices else "")
        lines.append(f"| {variable} | {flag} | {item.knob.default_text()} | {meaning.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
