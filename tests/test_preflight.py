"""The preflight checks the GRPO scripts run, called as the scripts call them (``main``): the policy tokenizer's
``</think>``, the CPUs upstream's placement asks for, and the FLIP_* settings. Tokenizers are built here (the tiny
model's byte-level BPE), nothing is downloaded."""

from __future__ import annotations

import pytest

from flip_reward.integrations.open_instruct.preflight import check_settings, cpus_needed, main
from flip_reward.training.tiny_model import build_tokenizer


@pytest.mark.parametrize("special", [False, True], ids=["plain-text", "special-token"])
def test_a_think_close_that_decoding_strips_is_warned_about(tmp_path, capsys, special):
    tokenizer = build_tokenizer()
    if special:
        tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "</think>"]})
    tokenizer.save_pretrained(tmp_path / "policy")
    main(["env", "--policy", str(tmp_path / "policy")])
    first = capsys.readouterr().out.splitlines()[0]
    if special:
        assert first.startswith(f"tokenizer: WARNING {tmp_path / 'policy'} makes </think> a special token")
    else:
        assert first == f"tokenizer: ok, </think> survives decoding with skip_special_tokens ({tmp_path / 'policy'})"


def test_a_policy_not_available_locally_is_not_checked(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    main(["env", "--policy", "allenai/Olmo-3-7B-Think-DPO"])
    assert (
        capsys.readouterr()
        .out.splitlines()[0]
        .startswith("tokenizer: not checked (allenai/Olmo-3-7B-Think-DPO is not available locally")
    )


def test_cpus_follow_upstreams_placement():
    assert cpus_needed([4], engines=3, tensor_parallel=1, single_gpu=False) == 46
    assert cpus_needed([1], engines=1, tensor_parallel=1, single_gpu=True) == 13  # vLLM shares the learner's GPU
    assert cpus_needed([8], engines=7, tensor_parallel=2, single_gpu=False) == 97


def test_settings_name_the_bad_variable_and_unknown_ones(capsys):
    assert check_settings({"FLIP_SAMPLE_EVERY": "0", "FLIP_CACHE_DIRR": "/tmp"}) == 1
    assert capsys.readouterr().out.splitlines() == [
        "settings: WARNING FLIP_CACHE_DIRR is not a FLIP setting, so nothing reads it (see docs/reference.md)",
        "settings: ERROR FLIP_SAMPLE_EVERY must be an integer >= 1, got '0'",
    ]
    assert check_settings({"FLIP_MAX_OUTAGE_S": "0"}) == 0
