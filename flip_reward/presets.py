"""Presets: named sets of knob values (``configs/FAMILY_NAME.env``, shipped in the wheel as ``flip_reward.configs``)
and the reader of ``KEY=value`` files they are written in.

A family is the command a preset is for: ``grpo`` (upstream open-instruct), ``local`` (``flip-reward train``),
``verl`` (verl and OpenRLHF). A preset is named (``tiny``, ``1gpu``, ...) or given as a path to a ``.env`` file; a
name that is neither is refused with the family's choices, never ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from flip_reward.knobs import SettingsError, declared, unknown_preset_keys

PACKAGE = "flip_reward.configs"


@dataclass(frozen=True)
class Preset:
    """A preset's name as given, the path it was read from (said by every plan that uses it), and its values."""

    name: str
    origin: str
    values: dict[str, str]


def preset_names(family: str) -> list[str]:
    """The presets shipped for ``family``, sorted."""
    prefix = f"{family}_"
    return sorted(
        entry.name.removeprefix(prefix).removesuffix(".env")
        for entry in files(PACKAGE).iterdir()
        if entry.name.startswith(prefix) and entry.name.endswith(".env")
    )


def load_preset(family: str, name: str) -> Preset:
    """Preset ``name`` of ``family`` (shipped), or the ``.env`` file at path ``name``; SettingsError when it is
    neither, listing the family's presets."""
    shipped = files(PACKAGE) / f"{family}_{name}.env"
    if "/" not in name and not name.endswith(".env") and shipped.is_file():
        return Preset(name, str(shipped), read_env_text(shipped.read_text("utf-8"), str(shipped)))
    path = Path(name)
    if path.is_file():
        return Preset(name, str(path), read_env_text(path.read_text("utf-8"), str(path)))
    if "/" in name or name.endswith(".env"):
        raise SettingsError(f"no preset file {name}")
    raise SettingsError(
        f"no preset {name!r} (configs/{family}_{name}.env); available: {', '.join(preset_names(family))}"
    )


def checked_preset(family: str, name: str, cls: type, also: tuple[str, ...] = ()) -> Preset:
    """Preset ``name`` of ``family`` (``load_preset``), read once for settings ``cls``: SettingsError for a key that is
    no knob of ``cls`` (nor in ``also``) or that is the knob naming the preset (``resolve_knob`` reads it first)."""
    preset = load_preset(family, name)
    for item in declared(cls):
        if item.name == "preset" and item.knob.env in preset.values:
            raise SettingsError(f"preset {preset.name}: {item.knob.env} picks the preset; it cannot be set in one")
    unknown_preset_keys(cls, preset.values, preset.name, also)
    return preset


def read_env_text(text: str, origin: str) -> dict[str, str]:
    """The ``KEY=value`` lines of a preset (comments and blank lines skipped, one level of quotes removed).

    >>> read_env_text("# a comment\\nSTEPS=8\\nJUDGE_SERVER_ARGS='--max-model-len 8192'\\n", "demo")
    {'STEPS': '8', 'JUDGE_SERVER_ARGS': '--max-model-len 8192'}
    """
    values = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise SettingsError(f"{origin}:{number}: expected KEY=value, got {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values
