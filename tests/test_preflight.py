"""The pre-flight checks of ``flip-reward launch open-instruct`` (flip_reward.launch.preflight): where upstream is, the
policy tokenizer's ``</think>``, the CPUs upstream's placement asks for, and the FLIP_* settings. Tokenizers are built
here (the tiny model's byte-level BPE), nothing is downloaded."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from flip_reward.launch.local import pick_backend
from flip_reward.launch.preflight import Placement, check_settings, check_think_token, cpus_needed, find_checkout
from flip_reward.training.tiny_model import build_tokenizer


@pytest.mark.parametrize("special", [False, True], ids=["plain-text", "special-token"])
def test_a_think_close_that_decoding_strips_is_warned_about(tmp_path, capsys, special):
    tokenizer = build_tokenizer()
    if special:
        tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "</think>"]})
    tokenizer.save_pretrained(tmp_path / "policy")
    assert check_think_token(str(tmp_path / "policy")) == 0
    first = capsys.readouterr().out.splitlines()[0]
    if special:
        assert first.startswith(f"tokenizer: WARNING {tmp_path / 'policy'} makes </think> a special token")
    else:
        assert first == f"tokenizer: ok, </think> survives decoding with skip_special_tokens ({tmp_path / 'policy'})"


def test_a_policy_not_available_locally_is_not_checked(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert check_think_token("allenai/Olmo-3-7B-Think-DPO") == 0
    assert (
        capsys.readouterr()
        .out.splitlines()[0]
        .startswith("tokenizer: not checked (allenai/Olmo-3-7B-Think-DPO is not available locally")
    )


def test_cpus_follow_upstreams_placement():
    assert cpus_needed(Placement((4,), engines=3)) == 46
    assert cpus_needed(Placement((1,), engines=1, single_gpu=True)) == 13  # vLLM shares the learner's GPU
    assert cpus_needed(Placement((8,), engines=7, tensor_parallel=2)) == 97


def test_settings_name_the_bad_variable_and_unknown_ones(capsys):
    assert check_settings({"FLIP_SAMPLE_EVERY": "0", "FLIP_CACHE_DIRR": "/tmp"}) == 1
    assert capsys.readouterr().out.splitlines() == [
        "settings: WARNING FLIP_CACHE_DIRR is not a FLIP setting, so nothing reads it (see docs/reference.md)",
        "settings: ERROR FLIP_SAMPLE_EVERY (environment): must be >= 1, got 0",
    ]
    assert check_settings({"FLIP_MAX_OUTAGE_S": "0"}) == 0


def test_the_cpu_check_names_what_is_missing():
    """On one CPU (taskset): 4 learner GPUs x 10, 3 vLLM engines and upstream's 3 fixed actors need 46."""
    code = "from flip_reward.launch.preflight import *; raise SystemExit(check_cpus(Placement((4,), engines=3)))"
    result = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (
        1,
        "env: MISSING 46 CPUs on this node for 4 learner GPU(s) x 10, the vLLM engines and upstream's actors; it has "
        "1 (upstream's placement would time out after 20 minutes): fewer learners per node, or a machine with more "
        "CPUs\n",
    )


def test_upstream_is_found_in_the_given_environment_and_the_backend_pick_agrees(tmp_path, monkeypatch):
    """One function, find_checkout, for the flags check and BACKEND=auto: OPEN_INSTRUCT_DIR of the environment it is
    given (os.environ names another tree here, and is not read), else an installed open_instruct; never a clone
    beside the source tree that the trainer could not import. nvidia-smi is a stand-in script listing one GPU."""
    tree = tmp_path / "open-instruct"
    (tree / "open_instruct").mkdir(parents=True)
    (tree / "open_instruct" / "grpo_fast.py").write_text("")
    monkeypatch.setenv("OPEN_INSTRUCT_DIR", str(tmp_path / "elsewhere"))
    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir()
    smi.write_text("#!/bin/sh\necho 'GPU 0: Stand-in (UUID: GPU-0)'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{smi.parent}:/usr/bin:/bin")
    given = {"OPEN_INSTRUCT_DIR": str(tree)}
    assert find_checkout(given) == tree
    assert pick_backend(given) == (
        "open-instruct",
        "grpo: backend open-instruct (grpo_fast.py): CUDA GPU and open_instruct found; BACKEND=local runs TRL",
    )
    if importlib.util.find_spec("open_instruct") is None:
        assert find_checkout({}) is None
        assert pick_backend({})[0] == "local"
