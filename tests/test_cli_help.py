"""The edges of the ``flip-reward`` command line: --version, the usage and error of each subcommand, the help of every
option, and the outputs and exit statuses each help page lists, checked against docs/reference.md's table. Errors
and --version run in real ``flip-reward`` processes; help pages are read from the parser itself."""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import subprocess
import sys

import pytest
from conftest import REPO

from flip_reward.cli import build_parser
from flip_reward.exit_codes import MEANINGS, STOPPED_BY_SIGNAL


def subcommands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], object]:
    """Every parser below ``parser`` by its command path, ``("data", "convert")`` for ``flip-reward data convert``."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found[(*path, name)] = child
                found.update(subcommands(child, (*path, name)))
    return found


PARSERS = subcommands(build_parser())
LEAVES = [path for path, parser in PARSERS.items() if not subcommands(parser)]


def flip_reward(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flip_reward.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=60
    )


def test_version_is_the_installed_distributions():
    run = flip_reward("--version")
    assert (run.returncode, run.stdout, run.stderr) == (
        0,
        f"flip-reward {importlib.metadata.version('flip-reward')}\n",
        "",
    )


@pytest.mark.parametrize(
    "path", [path for path, parser in PARSERS.items() if parser.get_default("passes_through") is not True], ids=" ".join
)
def test_a_mistyped_option_is_reported_in_the_usage_of_its_subcommand(path):
    """(A launcher that passes unknown arguments to its trainer is tested in test_launch_trainers.py.)"""
    run = flip_reward(*path, "--bogus")
    command = " ".join(("flip-reward", *path))
    lines = run.stderr.splitlines()
    assert (run.returncode, run.stdout) == (2, "")
    assert lines[0].startswith(f"usage: {command} [-h]"), run.stderr
    assert lines[-1] == f"{command}: error: unrecognized arguments: --bogus"


def test_an_option_value_error_and_the_help_show_required_options_as_required():
    """The unknown-argument pass relaxes the required options; an error in it, and --help, still show them as
    required."""
    run = flip_reward("score", "in.jsonl", "--temperature", "warm")
    assert run.returncode == 2
    assert run.stderr.splitlines()[0].startswith("usage: flip-reward score [-h] --output OUTPUT [--split SPLIT]")
    assert (
        run.stderr.splitlines()[-1] == "flip-reward score: error: argument --temperature: expected a number, got 'warm'"
    )
    run = flip_reward("data", "convert", "--help")
    assert run.returncode == 0
    assert run.stdout.startswith("usage: flip-reward data convert [-h] --output OUTPUT\n"), run.stdout


@pytest.mark.parametrize("path", [(), ("data",)], ids=["flip-reward", "data"])
def test_a_missing_subcommand_is_named_command(path):
    run = flip_reward(*path)
    command = " ".join(("flip-reward", *path))
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        f"usage: {command} [-h]{' [--version]' if not path else ''} COMMAND ...",
        f"{command}: error: the following arguments are required: COMMAND",
    ]
    assert "_command" not in flip_reward(*path, "--help").stdout


@pytest.mark.parametrize("path", list(PARSERS), ids=" ".join)
def test_every_option_has_help_and_one_default(path):
    for action in PARSERS[path]._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        assert action.help and action.help != argparse.SUPPRESS, (path, action.option_strings or action.dest)
        assert action.help.count("(default:") <= 1, (path, action.help)
    page = PARSERS[path].format_help()
    assert "``" not in page and "(default: computed)" not in page and "(default: None)" not in page


def reference_exit_codes() -> dict[str, tuple[str, list[str]]]:
    """docs/reference.md's exit-code table: each code's meaning and the commands that return it."""
    text = (REPO / "docs" / "reference.md").read_text(encoding="utf-8")
    table = text.split("## Exit codes", 1)[1].split("\n\n", 2)[1]
    rows = {}
    for line in table.splitlines()[2:]:
        code, meaning, commands = (cell.strip() for cell in line.strip("|").split(" | ")[:3])
        rows[code] = (meaning, re.findall(r"`([^`]+)`", commands))
    return rows


def help_exit_codes(page: str) -> dict[str, str]:
    """The exit statuses a help page lists, with their meanings (a command's own note after ': ' left out)."""
    section = page.split("\nexit status:\n", 1)[1]
    listed = {}
    for line in section.splitlines():
        code, meaning = line.split(maxsplit=1)
        for known in [*MEANINGS.values(), STOPPED_BY_SIGNAL[1]]:
            if meaning == known or meaning.startswith(f"{known}: "):
                meaning = known
        listed[code] = meaning
    return listed


def test_the_reference_table_gives_each_code_the_meaning_of_exit_codes_py():
    table = {code: meaning for code, (meaning, _) in reference_exit_codes().items()}
    assert table == {
        **{str(code): meaning for code, meaning in MEANINGS.items()},
        STOPPED_BY_SIGNAL[0]: STOPPED_BY_SIGNAL[1],
    }


@pytest.mark.parametrize("path", [(), *PARSERS], ids=lambda path: " ".join(("flip-reward", *path)))
def test_every_help_page_lists_its_exit_codes_as_the_reference_does(path):
    table = reference_exit_codes()
    commands = [" ".join(leaf) for leaf in LEAVES if leaf[: len(path)] == path]  # a group: its commands' codes
    expected = {code: meaning for code, (meaning, names) in table.items() if set(names) & set(commands)}
    parser = PARSERS[path] if path else build_parser()
    assert help_exit_codes(parser.format_help()) == expected


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_every_command_help_page_lists_its_outputs(path):
    page = PARSERS[path].format_help()
    assert "\noutputs:\n  " in page, page


def test_score_help_lists_every_field_score_writes(tmp_path):
    from flip_reward.core.reward import FlipResult
    from flip_reward.data.samples import result_fields

    page = " ".join(PARSERS[("score",)].format_help().split())
    assert "every input row plus " + ", ".join(result_fields("", FlipResult(reward=0.0))) in page


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--temperature", "-1", "argument --temperature: must be >= 0, got -1.0"),
        ("--concurrency", "0", "argument --concurrency: must be > 0, got 0"),
        ("--timeout", "x", "argument --timeout: expected a number, got 'x'"),
    ],
)
def test_a_judge_option_the_judge_client_would_refuse_is_refused_naming_the_option(option, value, message):
    """The judge client's own rules (JudgeConfig), applied where the option is read: exit 2 and the option's name."""
    result = flip_reward("score", "data/sample_scoring.jsonl", "-o", "/tmp/never-written.jsonl", option, value)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == f"flip-reward score: error: {message}"
