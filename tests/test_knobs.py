"""The knob system (flip_reward.knobs) and docs/knobs.md, the reference generated from the settings classes of the
training commands, setup_open_instruct and the reward plugins (SETTINGS).

FLIP_WRITE_KNOBS=1 rewrites docs/knobs.md from the declarations instead of comparing (then review the diff).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from flip_reward.core.settings import FlipSettings
from flip_reward.knobs import SettingsError, declared, knob, reference, resolve, unknown_preset_keys
from flip_reward.launch.areal import ArealSettings
from flip_reward.launch.grpo_settings import GrpoChoice, GrpoFastSettings
from flip_reward.launch.local import LocalSettings
from flip_reward.launch.nemo_rl import NemoRlSettings
from flip_reward.launch.openrlhf import OpenRLHFSettings
from flip_reward.launch.roll import RollSettings
from flip_reward.launch.setup_open_instruct import SetupSettings
from flip_reward.launch.skyrl import SkyRLSettings
from flip_reward.launch.slime import SlimeSettings
from flip_reward.launch.verl import VerlSettings
from flip_reward.presets import load_preset, preset_names
from flip_reward.training.config import TrainSettings

DOC = Path(__file__).resolve().parents[1] / "docs" / "knobs.md"
FLIP_TITLE = "`FLIP_*` variables (the reward in every trainer)"
# The settings classes of the training commands, setup_open_instruct and the reward plugins (flags, variables,
# presets), each section with its title in docs/knobs.md; the other commands' options are in their --help.
SETTINGS = [
    ("`flip-reward train` (local GRPO with TRL)", (TrainSettings,)),
    (
        "`flip-reward launch open-instruct` (scripts/train/grpo_flip.sh, grpo_llmjudge.sh)",
        (GrpoChoice, GrpoFastSettings),
    ),
    ("`flip-reward launch local` (BACKEND=local; its other knobs are `flip-reward train`'s)", (LocalSettings,)),
    ("`flip-reward launch verl` (scripts/train/verl_grpo_flip.sh)", (VerlSettings,)),
    ("`flip-reward launch openrlhf` (scripts/train/openrlhf_grpo_flip.sh)", (OpenRLHFSettings,)),
    ("`flip-reward launch slime`", (SlimeSettings,)),
    ("`flip-reward launch skyrl`", (SkyRLSettings,)),
    ("`flip-reward launch areal` (AReaL 1.0.4)", (ArealSettings,)),
    ("`flip-reward launch nemo-rl` (NeMo-RL with NeMo Gym)", (NemoRlSettings,)),
    ("`flip-reward launch roll` (ROLL's RLVR pipeline, from a checkout)", (RollSettings,)),
    ("scripts/setup_open_instruct.sh (python -m flip_reward.launch.setup_open_instruct)", (SetupSettings,)),
    (FLIP_TITLE, (FlipSettings,)),
]
HEADER = (
    "# Knobs\n\nThe settings of the training commands (`flip-reward train`, `flip-reward launch ...`), of "
    "scripts/setup_open_instruct.sh and of the reward plugins (`FLIP_*`), generated from their declarations "
    "(flip_reward/knobs.py; tests/test_knobs.py keeps this page equal to them); the options of the other commands "
    "are in their `--help`. Precedence: command-line flag > environment variable > preset > default. A setting with "
    "two variables (`A` or `B`) reads A first; both set to different values is an error naming both.\n"
)

# A section's words before its table, where the table alone does not say who reads its knobs.
INTROS = {
    FLIP_TITLE: (
        "Read in each process that scores (flip_reward/core/settings.py): by the open-instruct verifier, whose judge "
        "is upstream's `--llm_judge_*` arguments; by `launch openrlhf`, which hands those with a `flip-reward serve` "
        "option to the service; and by every adapter in a trainer's own processes (verl, verifiers, ART, SkyRL, "
        "AReaL, NeMo Gym, ROLL, slime, through flip_reward/integrations/process_reward.py), under whatever options "
        "the trainer's configuration gives. Most of those trainers have no judge option, so `FLIP_JUDGE_*` and "
        "`HOSTED_VLLM_API_BASE` name the judge there: `flip-reward launch skyrl`, `areal`, `nemo-rl`, `roll` and "
        "`slime` set them in the trainer's environment from `JUDGE_MODEL`, `JUDGE_TIMEOUT`, `JUDGE_MAX_TOKENS`, "
        "`JUDGE_TEMPERATURE`, `JUDGE_MAX_CONTEXT` and the judge they serve or route to; set them yourself when you "
        "run the trainer on its own ([other trainers](other-trainers.md)).\n\n"
    )
}


def knobs_page() -> str:
    return HEADER + "".join(
        f"\n## {title}\n\n{INTROS.get(title, '')}{reference(*classes)}" for title, classes in SETTINGS
    )


def test_docs_list_every_knob_as_declared():
    if os.environ.get("FLIP_WRITE_KNOBS"):
        DOC.write_text(knobs_page(), encoding="utf-8")
    assert DOC.read_text(encoding="utf-8") == knobs_page()


# Variables whose bounds differ on purpose, with the class that differs and why.
BOUNDS_DIFFER = {"LOCAL_EVAL_COUNT": (VerlSettings,)}  # verl validates on held-out rows: at least one (else 0: none)


def test_a_variable_has_one_type_and_check_in_every_command():
    """Defaults may differ per command (their help says why); the type, the choices and the bounds may not (unset is
    None or "" as a class prefers)."""
    rules: dict[str, tuple] = {}
    for cls in (cls for _, classes in SETTINGS for cls in classes):
        for item in declared(cls):
            if item.knob.env in BOUNDS_DIFFER and cls in BOUNDS_DIFFER[item.knob.env]:
                continue
            rule = (item.kind, item.knob.choices, item.knob.minimum, item.knob.above)
            for name in item.knob.names:
                assert rules.setdefault(name, rule) == rule, f"{name} in {cls.__name__}: {rule} vs {rules[name]}"


@dataclass(frozen=True)
class Demo:
    name: str
    port: int = knob("DEMO_PORT", 8000, "port", minimum=1)
    share: float | None = knob("DEMO_SHARE", None, "share")
    verbose: bool = knob("DEMO_VERBOSE", False, "more lines")
    url: str = knob("DEMO_URL", lambda s: f"http://{s.name}:{s.port}", "address", choices=())


def test_flag_beats_environment_beats_preset_beats_default():
    fixed = {"name": "h"}
    assert resolve(Demo, fixed=fixed) == Demo("h", 8000, None, False, "http://h:8000")
    assert resolve(Demo, preset={"DEMO_PORT": "1"}, fixed=fixed).port == 1
    assert resolve(Demo, environ={"DEMO_PORT": "2"}, preset={"DEMO_PORT": "1"}, fixed=fixed).port == 2
    flags = {"port": "3", "verbose": None}
    settings = resolve(Demo, flags, {"DEMO_PORT": "2", "DEMO_VERBOSE": "yes"}, {"DEMO_PORT": "1"}, fixed)
    assert (settings.port, settings.verbose, settings.url) == (3, True, "http://h:3")


@dataclass(frozen=True)
class Aliased:
    workers: int = knob("DEMO_WORKERS", 4, "workers", aliases=("OLD_WORKERS",), above=0)
    wait: float = knob("DEMO_WAIT", 1.0, "seconds", above=0)


def test_a_knob_reads_its_aliases_and_refuses_two_that_differ():
    assert resolve(Aliased, environ={"OLD_WORKERS": "8"}).workers == 8
    assert resolve(Aliased, environ={"DEMO_WORKERS": "8", "OLD_WORKERS": " 8 "}).workers == 8
    assert resolve(Aliased, environ={"DEMO_WORKERS": "08", "OLD_WORKERS": "8"}).workers == 8  # equal values
    assert resolve(Aliased, environ={"DEMO_WORKERS": "  ", "OLD_WORKERS": "8"}).workers == 8  # blank is unset
    assert resolve(Aliased, {"workers": "2"}, {"OLD_WORKERS": "8"}).workers == 2
    assert resolve(Aliased, environ={"OLD_WORKERS": "8"}, preset={"DEMO_WORKERS": "3"}).workers == 8
    messages = []
    for environ in ({"DEMO_WORKERS": "8", "OLD_WORKERS": "9"}, {"OLD_WORKERS": "x"}, {"DEMO_WAIT": "0"}):
        with pytest.raises(SettingsError) as error:
            resolve(Aliased, environ=environ)
        messages.append(str(error.value))
    assert messages == [
        "DEMO_WORKERS and OLD_WORKERS (environment) are one setting but differ: '8' vs '9'",
        "OLD_WORKERS (environment): expected an integer, got 'x'",
        "DEMO_WAIT (environment): must be > 0, got 0.0",
    ]
    assert "| `DEMO_WORKERS` or `OLD_WORKERS` | `--workers` | 4 | workers |" in reference(Aliased)
    unknown_preset_keys(Aliased, {"OLD_WORKERS": "1"}, "demo")  # an alias is a known preset key


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"DEMO_PORT": "x"}, "DEMO_PORT (environment): expected an integer, got 'x'"),
        ({"DEMO_PORT": "0"}, "DEMO_PORT (environment): must be >= 1, got 0"),
        ({"DEMO_SHARE": "half"}, "DEMO_SHARE (environment): expected a number, got 'half'"),
        (
            {"DEMO_VERBOSE": "maybe"},
            "DEMO_VERBOSE (environment): expected 1/0, true/false, yes/no or on/off, got 'maybe'",
        ),
    ],
)
def test_bad_values_name_their_source(environ, message):
    with pytest.raises(SettingsError) as error:
        resolve(Demo, environ=environ, fixed={"name": "h"})
    assert str(error.value) == message


def test_blank_values_count_as_unset():
    """A variable set to spaces is unset, never a False or an empty text (a blank guard switch keeps its default)."""
    settings = resolve(Demo, environ={"DEMO_PORT": " ", "DEMO_VERBOSE": "  "}, fixed={"name": "h"})
    assert (settings.port, settings.verbose) == (8000, False)
    flagged = resolve(Flagged, environ={"DEMO_ON": " "})
    assert flagged.on is True
    from flip_reward.core.settings import FlipSettings

    flip = FlipSettings.from_env({"FLIP_RESTATEMENT_GUARD": " ", "FLIP_CACHE": " ", "FLIP_CONCURRENCY": " "})
    assert (flip.restatement_guard, flip.cache, flip.concurrency) == (True, True, 64)


@dataclass(frozen=True)
class Flagged:
    on: bool = knob("DEMO_ON", True, "a switch on by default")


def test_empty_values_count_as_unset():
    settings = resolve(Demo, environ={"DEMO_PORT": "", "DEMO_SHARE": ""}, fixed={"name": "h"})
    assert (settings.port, settings.share) == (8000, None)


def test_a_typo_in_a_preset_is_refused_with_the_closest_knob():
    with pytest.raises(SettingsError) as error:
        unknown_preset_keys(Demo, {"DEMO_PROT": "1", "DEMO_PORT": "2"}, "mine.env")
    assert str(error.value) == "preset mine.env: unknown setting(s) DEMO_PROT (did you mean DEMO_PORT?)"


def test_shipped_presets_hold_only_knobs_of_their_command():
    assert preset_names("local") == ["1gpu", "tiny"]
    for name in preset_names("local"):
        unknown_preset_keys(TrainSettings, load_preset("local", name).values, name, also=("TOTAL_EPISODES",))
    assert preset_names("grpo") == ["1gpu", "1node", "multinode"]
    for name in preset_names("grpo"):
        unknown_preset_keys(GrpoFastSettings, load_preset("grpo", name).values, name)


def test_an_unknown_preset_lists_the_choices():
    with pytest.raises(SettingsError) as error:
        load_preset("local", "tny")
    assert str(error.value) == "no preset 'tny' (configs/local_tny.env); available: 1gpu, tiny"
