"""A judge cache another local user could write is never read: planted answers must not become rewards.

The planter is real: a SQLite file written by another uid (``setpriv`` to nobody, or ``os.chown``), in a shared
directory like /tmp. The victim scores against the scripted loopback judge (a test double with known answers),
whose answers give the row a real F1 of 0.8; the planted answer would give 1.0.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import REPO

from flip_reward.core.metrics import f1_score
from flip_reward.core.reward import FlipReward
from flip_reward.judge.cache import DB_NAME
from flip_reward.serving.scripted_judge import flip_answer

NOBODY = 65534
ME = os.geteuid()
INSTRUCTION = "Write a short poem about the sea"
RESPONSE = "a short poem about the sea"
REAL_F1 = f1_score(f"Inferred: {RESPONSE}", INSTRUCTION)["f1"]  # the scripted judge's answer: 4 of 5 words each side
PLANTED = flip_answer(INSTRUCTION)  # an inferred instruction equal to the real one: reward 1.0
RISK = "another user could plant judge answers there"
PLANT_SCRIPT = """
import os, sqlite3, sys
directory, mode, value, keys = sys.argv[1], int(sys.argv[2], 8), sys.argv[3], sys.argv[4:]
if not os.path.isdir(directory):
    os.mkdir(directory)
    os.chmod(directory, mode)
with sqlite3.connect(os.path.join(directory, "answers.sqlite3")) as db:
    db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.executemany("INSERT OR REPLACE INTO answers VALUES (?, ?)", [(key, value) for key in keys])
"""


@pytest.fixture
def shared(tmp_path):
    """A directory like /tmp on a shared node: world-writable with the sticky bit, reachable by every user."""
    directory = Path(tempfile.mkdtemp(prefix="flip-shared-"))
    directory.chmod(0o1777)
    yield directory
    shutil.rmtree(directory)


@pytest.fixture
def keys(tmp_path, judge_server, script):
    """The cache keys of the victim's request (what a planter computes from the same code, data and judge URL):
    recorded by scoring once with a private cache."""
    rehearsal = tmp_path / "rehearsal"
    result = score_in_process(judge_server, rehearsal)
    assert (result.reward, result.cached) == (REAL_F1, False)
    with sqlite3.connect(rehearsal / DB_NAME) as db:
        return [key for (key,) in db.execute("SELECT key FROM answers")]


def plant(directory: Path, keys: list[str], mode: int = 0o755, as_uid: int | None = NOBODY) -> None:
    """Write the planted answers into ``directory``/answers.sqlite3 as ``as_uid`` (None: this user)."""
    command = [sys.executable, "-c", PLANT_SCRIPT, str(directory), f"{mode:o}", planted_entry(), *keys]
    if as_uid is not None:
        command = ["setpriv", f"--reuid={as_uid}", f"--regid={as_uid}", "--clear-groups", *command]
    subprocess.run(command, check=True, cwd="/")


def planted_entry() -> str:
    return json.dumps({"text": PLANTED, "prompt_tokens": 1, "completion_tokens": 1})


def score_in_process(server, cache: Path):
    """The library path (a training run): one FLIP reward with the disk cache at ``cache``."""
    return score_with(FlipReward("hosted_vllm/judge", server.base_url, cache_dir=str(cache), retries=0))


def score_with(flip: FlipReward):
    [result] = flip.score([INSTRUCTION], [RESPONSE])
    return result


def score_cli(tmp_path: Path, server, cache: Path) -> tuple[subprocess.CompletedProcess, Path]:
    """``flip-reward score --cache CACHE`` in a subprocess."""
    source = tmp_path / "rows.jsonl"
    source.write_text(json.dumps({"prompt": INSTRUCTION, "response": RESPONSE}) + "\n")
    output = tmp_path / "scored.jsonl"
    command = ["score", str(source), "-o", str(output), "--judge", "hosted_vllm/judge", "--api-base", server.base_url,
               "--cache", str(cache), "--retries", "0"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    completed = subprocess.run([sys.executable, "-m", "flip_reward.cli", *command], capture_output=True, text=True,
                               env=env, timeout=120, check=False)  # fmt: skip
    return completed, output


def foreign_directory(shared: Path, keys: list[str]) -> tuple[Path, str]:
    cache = shared / "cache"
    plant(cache, keys)
    return cache, f"{cache} is owned by uid {NOBODY}, not by this user (uid {ME})"


def world_writable_directory(shared: Path, keys: list[str]) -> tuple[Path, str]:
    cache = shared / "cache"
    cache.mkdir(mode=0o700)
    cache.chmod(0o777)  # the victim's own directory, but open to everyone
    plant(cache, keys)
    return cache, f"{cache} is writable by group or others (mode 0777)"


def symlinked_directory(shared: Path, keys: list[str]) -> tuple[Path, str]:
    plant(shared / "theirs", keys)
    cache = shared / "cache"
    subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "ln", "-s",
                    str(shared / "theirs"), str(cache)], check=True, cwd="/")  # fmt: skip
    return cache, f"{cache} is a symbolic link"


def symlinked_database(shared: Path, keys: list[str]) -> tuple[Path, str]:
    plant(shared / "theirs", keys)
    cache = shared / "mine"
    cache.mkdir(mode=0o700)
    (cache / DB_NAME).symlink_to(shared / "theirs" / DB_NAME)
    return cache, f"{cache / DB_NAME} is a symbolic link"


def foreign_database(shared: Path, keys: list[str]) -> tuple[Path, str]:
    cache = shared / "mine"
    plant(cache, keys, mode=0o700, as_uid=None)
    os.chown(cache / DB_NAME, NOBODY, NOBODY)  # a database handed over by another user
    return cache, f"{cache / DB_NAME} is owned by uid {NOBODY}, not by this user (uid {ME})"


def foreign_journal(shared: Path, keys: list[str]) -> tuple[Path, str]:
    cache = shared / "mine"
    cache.mkdir(mode=0o700)
    journal = cache / f"{DB_NAME}-journal"  # a hot journal is replayed into the database when it is opened
    journal.write_bytes(b"")
    os.chown(journal, NOBODY, NOBODY)
    return cache, f"{journal} is owned by uid {NOBODY}, not by this user (uid {ME})"


UNSAFE = [foreign_directory, world_writable_directory, symlinked_directory, symlinked_database, foreign_database,
          foreign_journal]  # fmt: skip


@pytest.mark.parametrize("make_unsafe", UNSAFE, ids=lambda make: make.__name__)
def test_cli_refuses_a_cache_another_user_could_write(tmp_path, shared, keys, judge_server, make_unsafe):
    cache, reason = make_unsafe(shared, keys)
    completed, output = score_cli(tmp_path, judge_server, cache)
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr == f"error: --cache {cache}: {reason}; {RISK}; use a directory only you can write\n"
    assert not output.exists()
    assert len(judge_server.requests) == 1  # the rehearsal's: the refused run asked nothing


@pytest.mark.parametrize(
    "make_unsafe", [foreign_directory, world_writable_directory, symlinked_database], ids=lambda make: make.__name__
)
def test_a_training_run_warns_once_and_scores_with_the_judge(shared, keys, judge_server, make_unsafe, caplog):
    cache, reason = make_unsafe(shared, keys)
    planted_before = (cache / DB_NAME).read_bytes()
    with caplog.at_level(logging.WARNING, logger="flip_reward"):
        first = score_in_process(judge_server, cache)
        flip = FlipReward("hosted_vllm/judge", judge_server.base_url, cache_dir=str(cache), retries=0)
        again = [score_with(flip) for _ in range(2)]
    assert (first.reward, first.cached, first.error) == (REAL_F1, False, None)
    assert [(result.reward, result.cached) for result in again] == [(REAL_F1, False), (REAL_F1, True)]  # memory
    warning = f"judge cache {cache} is not used: {reason}; {RISK}; answers are kept in memory only"
    assert [record.getMessage() for record in caplog.records] == [warning, warning]  # once per cache object
    assert (cache / DB_NAME).read_bytes() == planted_before  # nothing of ours written into their file


def test_the_real_f1_is_not_the_planted_one():
    assert (round(REAL_F1, 6), f1_score(INSTRUCTION, INSTRUCTION)["f1"]) == (0.8, 1.0)


def test_a_private_cache_is_used_and_a_missing_one_is_created_private(tmp_path, judge_server, script):
    cache = tmp_path / "new" / "cache"
    first = score_in_process(judge_server, cache)
    again = score_in_process(judge_server, cache)
    assert (first.reward, first.cached, again.reward, again.cached) == (REAL_F1, False, REAL_F1, True)
    assert (cache.stat().st_mode & 0o777, (cache / DB_NAME).stat().st_uid) == (0o700, ME)


def test_cli_names_a_cache_path_that_is_no_directory(tmp_path, judge_server):
    cache = tmp_path / "cache"
    cache.write_text("a file where the cache directory should be")
    completed, output = score_cli(tmp_path, judge_server, cache)
    assert (completed.returncode, completed.stderr) == (2, f"error: --cache {cache}: Not a directory\n")
    assert not output.exists()
