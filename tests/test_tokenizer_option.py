"""``--tokenizer``, named by the user, is loaded at start or refused in one line (exit 2, before any judge call):
transformers missing (made unimportable by tests/blocked_imports), a directory without a tokenizer, a name that is
neither a directory nor in the local Hugging Face cache. Real ``flip-reward score`` processes; the judge is the
scripted OpenAI-compatible server on loopback (flip_reward.serving.scripted_judge), a test double, not a model."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

from flip_reward.serving.scripted_judge import flip_answer

BLOCKER = REPO / "tests" / "blocked_imports"  # its sitecustomize makes FLIP_TEST_BLOCKED_MODULES unimportable
ROW = {"prompt": "Write a poem about roses", "response": "Roses bloom."}


def score(tmp_path, server, tokenizer, env: dict | None = None) -> subprocess.CompletedProcess:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(ROW) + "\n")
    return subprocess.run(
        [sys.executable, "-m", "flip_reward.cli", "score", str(source), "-o", str(tmp_path / "out.jsonl"),
         "--judge", "hosted_vllm/judge", "--api-base", server.base_url, "--tokenizer", str(tokenizer)],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "TQDM_DISABLE": "1", **(env or {})}, timeout=120,
    )  # fmt: skip


def test_a_tokenizer_without_transformers_is_refused(tmp_path, judge_server):
    (tmp_path / "tok").mkdir()
    pythonpath = os.pathsep.join([str(BLOCKER), str(REPO), os.environ.get("PYTHONPATH", "")])
    env = {"PYTHONPATH": pythonpath, "FLIP_TEST_BLOCKED_MODULES": "transformers"}
    run = score(tmp_path, judge_server, tmp_path / "tok", env)
    assert (run.returncode, run.stderr) == (
        2,
        f"error: --tokenizer {tmp_path / 'tok'} cannot be used: transformers is not installed "
        "(pip install 'flip-reward[serve]')\n",
    )
    assert judge_server.requests == []
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("tok", "the directory holds no tokenizer (no tokenizer_config.json or tokenizer.json)"),
        ("nobody/no-tokenizer", "no such directory, nor a hub tokenizer of that name in the local Hugging Face cache"),
    ],
)
def test_a_tokenizer_that_is_not_there_is_refused(tmp_path, judge_server, name, why):
    pytest.importorskip("transformers")
    (tmp_path / "tok").mkdir()
    tokenizer = tmp_path / name if name == "tok" else name
    run = score(tmp_path, judge_server, tokenizer)
    assert (run.returncode, run.stderr) == (2, f"error: --tokenizer {tokenizer} cannot be used: {why}\n")
    assert judge_server.requests == []


def test_a_tokenizer_that_loads_is_used(tmp_path, judge_server, script, tiny_model_dir):
    script.default = lambda request: flip_answer("Write a poem about roses")
    run = score(tmp_path, judge_server, tiny_model_dir)
    assert run.returncode == 0, run.stderr
    assert json.loads((tmp_path / "out.jsonl").read_text())["reward"] == 1.0
