"""The defects a close review of the reward path found, one test (or a few) each, against real HTTP on loopback.

The servers here are the scripted OpenAI-compatible test double (flip_reward.serving.scripted_judge): it gives
deterministic answers and injects faults; it is not a model.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import sqlite3
import stat
import subprocess
import sys
import threading

import pytest
from conftest import FAST_RETRIES, REPO, free_port

from flip_reward.core.reward import FlipReward
from flip_reward.core.thinking import final_answer, strip_thinking
from flip_reward.judge.cache import DB_NAME
from flip_reward.judge.client import Judge, JudgeConfig, JudgeError
from flip_reward.serving.scripted_judge import Reply, ScriptedJudgeServer, flip_answer, judged_response

INSTRUCTION = "Write a haiku"
SECRET = "sk-test-0123456789abcdef"


def make_flip(server, **options) -> FlipReward:
    return FlipReward("hosted_vllm/judge", server.base_url, **{**FAST_RETRIES, "retries": 0, **options})


def reward_of(flip: FlipReward, response: str = "Autumn moon rises"):
    [result] = flip.score([INSTRUCTION], [response])
    return result


# 1. The cache key names the server that answered.


def test_two_servers_with_one_model_name_do_not_share_cache_entries(tmp_path):
    with (
        ScriptedJudgeServer(lambda request: flip_answer("Write a haiku")) as first,
        ScriptedJudgeServer(lambda request: flip_answer("Write a limerick")) as second,
    ):
        cache = str(tmp_path / "cache")
        assert reward_of(make_flip(first, cache_dir=cache)).inferred_instruction == "Write a haiku"
        result = reward_of(make_flip(second, cache_dir=cache))
        assert (result.inferred_instruction, result.cached) == ("Write a limerick", False)
        assert len(second.requests) == 1


# 2. Only answers the method could use are cached.


@pytest.mark.parametrize(
    "unusable",
    [
        Reply(content=""),
        Reply(content=flip_answer("Write a haiku"), finish_reason="length"),
        Reply(content="I cannot tell what was asked."),
    ],
    ids=["empty", "cut-off-at-max-tokens", "unparsable"],
)
def test_unusable_answers_are_not_replayed_from_the_cache(judge_server, script, unusable):
    script.queue = [unusable]
    script.default = lambda request: flip_answer("Write a haiku")
    flip = make_flip(judge_server)
    first = reward_of(flip)
    second = reward_of(flip)
    assert (second.reward, second.cached, second.error) == (1.0, False, None)
    assert len(judge_server.requests) == 2
    assert first.error_type == ("parse" if unusable.finish_reason != "length" else None)
    assert reward_of(flip).cached  # the usable answer is the one kept


def test_a_baseline_caches_only_answers_it_could_read(judge_server, script):
    from flip_reward.evaluation.baselines import PointwiseJudgeReward

    script.queue = [json.dumps({"REASONING": "ok", "SCORE": 11})]  # out of range: unusable
    script.default = lambda request: json.dumps({"REASONING": "ok", "SCORE": 8})
    judge = PointwiseJudgeReward("hosted_vllm/judge", judge_server.base_url, **FAST_RETRIES)
    assert judge.score([INSTRUCTION], ["Moon"])[0].error_type == "parse"
    assert judge.score([INSTRUCTION], ["Moon"])[0].reward == 0.8
    assert judge.score([INSTRUCTION], ["Moon"])[0].cached
    assert len(judge_server.requests) == 2


# 3. Stripping thinking is linear in the response length (figures: benchmarks/bench_hardening.py).


def test_thinking_of_sixty_four_thousand_open_tags_is_stripped_in_one_pass():
    flood = "<think>" * 64_000 + "never closed"
    assert final_answer(flood) == ""
    assert final_answer("The answer." + flood) == "The answer."
    assert final_answer("</think>" * 64_000 + "Answer.") == "Answer."
    assert strip_thinking("<think>a<think>b</think>c</think>d") == "d"  # a stray close: everything before is thinking


# 4. The per-loop registry is thread-safe.


def test_scoring_from_many_threads_at_once_never_raises(judge_server, script):
    script.default = lambda request: flip_answer(judged_response(request))
    flip = make_flip(judge_server, cache=False, restatement_guard=False)  # the responses restate on purpose
    errors, rewards = [], []

    def work(worker: int) -> None:
        try:
            for _ in range(25):
                rewards.extend(result.reward for result in flip.score([INSTRUCTION], [f"{INSTRUCTION} {worker}"]))
        except Exception as error:  # what the test is about: nothing may escape
            errors.append(error)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, so that an unlocked registry is caught
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert len(rewards) == 8 * 25 and set(rewards) == {0.8}  # F1("write haiku N", "write haiku")


# 5. The disk cache holds JSON only, in a private directory, and a disk error costs one call.


def test_disk_cache_is_json_in_a_private_directory(judge_server, script, tmp_path):
    script.default = lambda request: flip_answer("Write a haiku")
    cache = tmp_path / "cache"
    reward_of(make_flip(judge_server, cache_dir=str(cache)))
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    with sqlite3.connect(cache / DB_NAME) as db:
        [(value,)] = db.execute("SELECT value FROM answers").fetchall()
    entry = json.loads(value)  # JSON text, nothing to unpickle
    assert (sorted(entry), entry["text"]) == (["completion_tokens", "prompt_tokens", "text"], flip_answer(INSTRUCTION))


@pytest.mark.parametrize(
    "planted",
    [
        pickle.dumps({"text": "x"}),
        "not json",
        json.dumps({"text": 3, "prompt_tokens": 1, "completion_tokens": 1}),
        json.dumps(["text", "prompt_tokens"]),
    ],
    ids=["pickle-bytes", "not-json", "wrong-types", "wrong-shape"],
)
def test_a_planted_disk_entry_is_a_miss(judge_server, script, tmp_path, planted):
    script.default = lambda request: flip_answer("Write a haiku")
    cache = tmp_path / "cache"
    reward_of(make_flip(judge_server, cache_dir=str(cache)))
    with sqlite3.connect(cache / DB_NAME) as db:
        db.execute("UPDATE answers SET value = ?", (planted,))
    result = reward_of(make_flip(judge_server, cache_dir=str(cache)))
    assert (result.reward, result.cached) == (1.0, False)
    assert len(judge_server.requests) == 2


def test_a_transient_disk_error_costs_one_call_not_the_cache(judge_server, script, tmp_path):
    script.default = lambda request: flip_answer(judged_response(request))
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache directory should be")
    flip = make_flip(judge_server, cache_dir=str(blocked))
    assert reward_of(flip, "first").error is None  # disk unusable: scored, not cached on disk
    blocked.unlink()
    assert reward_of(flip, "second").error is None  # the disk works again: this one is stored
    assert reward_of(make_flip(judge_server, cache_dir=str(blocked)), "second").cached
    assert not reward_of(make_flip(judge_server, cache_dir=str(blocked)), "first").cached


# 6. API keys stay secret.


def test_api_keys_never_show_in_reprs_or_errors(judge_server, script):
    script.default = lambda request: Reply(status=401, content=f"Incorrect API key provided: {SECRET}")
    config = JudgeConfig(model="openai/judge", api_base=judge_server.base_url, api_key=SECRET)
    judge = Judge(config)
    assert SECRET not in repr(config) and SECRET not in repr(judge.endpoint)
    with pytest.raises(JudgeError) as error:
        asyncio.run(judge.complete([{"role": "user", "content": "hi"}]))
    assert SECRET not in str(error.value) and "Incorrect API key provided: ***" in str(error.value)


def test_a_key_from_the_environment_is_not_pickled(monkeypatch):
    monkeypatch.setenv("HOSTED_VLLM_API_KEY", SECRET)
    flip = FlipReward("hosted_vllm/judge", "http://127.0.0.1:9/v1")
    assert flip.judge.endpoint.api_key == SECRET  # each process reads its own environment ...
    assert SECRET.encode() not in pickle.dumps(flip)  # ... so the key does not travel
    assert pickle.loads(pickle.dumps(flip)).judge.endpoint.api_key == SECRET
    given = FlipReward("hosted_vllm/judge", "http://127.0.0.1:9/v1", api_key="sk-given")
    assert b"sk-given" in pickle.dumps(given)  # given explicitly: it travels


# 7. Retry classification.


@pytest.mark.parametrize("status", [408, 409])
def test_request_timeout_and_conflict_are_retried(judge_server, script, status):
    script.queue = [Reply(status=status)]
    script.default = lambda request: flip_answer("Write a haiku")
    assert reward_of(make_flip(judge_server, retries=1)).reward == 1.0
    assert len(judge_server.requests) == 2


def test_no_content_with_finish_reason_stop_is_one_parse_failure(judge_server, script):
    script.default = lambda request: Reply(content=None, finish_reason="stop")
    result = reward_of(make_flip(judge_server, retries=3))
    assert (result.error_type, result.error) == ("parse", "no inferred instruction in judge output: ''")
    assert len(judge_server.requests) == 1


def test_a_refused_connection_is_a_connection_error_not_a_timeout():
    flip = FlipReward("hosted_vllm/judge", f"http://127.0.0.1:{free_port()}/v1", retries=0)
    result = reward_of(flip)
    assert result.error_type == "judge"
    assert "APIConnectionError: cannot connect to http://127.0.0.1:" in result.error
    assert "Timeout" not in result.error


# 8. What the first reward of a process would block on is built at construction and unpickling, or off the loop.

FIRST_REWARD = """
import asyncio, pickle, sys, threading
from flip_reward.core.context import load_local_tokenizer
from flip_reward.core.reward import FlipReward
flip = pickle.loads(pickle.dumps(FlipReward("hosted_vllm/judge", "http://127.0.0.1:9/v1", tokenizer=sys.argv[1])))
assert all(name in sys.modules for name in ("litellm", "openai", "aiohttp"))

async def fit_counting_turns(response):
    turns = 0

    async def other_task():
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_task())
    await asyncio.sleep(0)
    fitted = await flip.fitted([], [response])
    other.cancel()
    return fitted, turns

short, _ = asyncio.run(fit_counting_turns("A short reply."))
print(threading.active_count(), load_local_tokenizer.cache_info().currsize, short.responses == ["A short reply."])
long, turns = asyncio.run(fit_counting_turns("word " * 20000))
print(load_local_tokenizer.cache_info().currsize, turns > 100, len(long.responses[0]) < 100000)
"""


def test_construction_prepares_clients_and_the_tokenizer_loads_off_the_event_loop(tiny_model_dir):
    """No thread is left behind by construction (one that dies holding the import lock hangs the interpreter's
    exit); a request that surely fits counts no token; the first that may not loads the tokenizer on a worker thread
    while the event loop goes on (another task kept turning)."""
    completed = subprocess.run(
        [sys.executable, "-c", FIRST_REWARD, str(tiny_model_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.split() == ["1", "0", "True", "1", "True", "True"]


# 9. The in-memory cache is bounded by a knob.


def test_memory_cache_holds_cache_size_answers(judge_server, script):
    script.default = lambda request: flip_answer(judged_response(request))
    flip = make_flip(judge_server, cache_size=2)
    flip.score([INSTRUCTION] * 3, ["one", "two", "three"])
    assert len(flip.judge.cache) == 2
    assert len(make_flip(judge_server, cache_size=0).judge.cache) == 0
    assert JudgeConfig().cache_size == 4096
    with pytest.raises(ValueError, match="cache_size"):
        JudgeConfig(cache_size=-1)


# 10. A loop per step leaks no client.

PER_STEP_LOOPS = """
import asyncio, gc, sys
from flip_reward.core.reward import FlipReward
flip = FlipReward("hosted_vllm/judge", sys.argv[1], cache=False)
for step in range(4):
    [result] = asyncio.run(flip.ascore(["Write a haiku"], [f"step {step}"]))
    assert result.error is None, result.error
gc.collect()
print("done")
"""


def test_asyncio_run_per_step_leaves_no_unclosed_session(judge_server, script):
    script.default = lambda request: flip_answer("Write a haiku")
    completed = subprocess.run(
        [sys.executable, "-X", "dev", "-c", PER_STEP_LOOPS, judge_server.base_url],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == "done"
    assert "Unclosed" not in completed.stderr, completed.stderr[-2000:]
