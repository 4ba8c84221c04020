"""The general-flip verifier inside real upstream open-instruct (pinned commit), with the scripted judge.

Runs when ``open_instruct.ground_truth_utils`` imports: upstream installed, or a checkout in $OPEN_INSTRUCT_DIR
(scripts/setup_open_instruct.sh --clone-only) and its CPU dependencies (NOTES.md); skipped with the reason
otherwise. grpo_fast.py itself needs CUDA, vLLM and DeepSpeed, so the trainer's reward path is driven from
``build_all_verifiers`` down: upstream's own ``apply_verifiable_reward`` and ``RewardConfig.build()`` (what each vLLM
actor calls), on verifiers shipped the way Ray ships them (cloudpickle). ``FLIP_TEST_RAY=1`` adds a test in a real
Ray actor. The judge is the scripted loopback server (a test double) for exact answers and an injected fault.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
from types import SimpleNamespace

import pytest
from open_instruct_support import import_upstream, upstream_checkout

from flip_reward.data.rlvr import KNOWN_VERIFIERS
from flip_reward.judge.loops import run_sync
from flip_reward.serving.scripted_judge import Reply, flip_answer, judged_response

gtu, SKIP_REASON = import_upstream()
pytestmark = pytest.mark.skipif(gtu is None, reason=SKIP_REASON)

QUERY = (
    "system: You are a careful assistant.\nuser: I need help with a poem.\nassistant: Sure, what kind?\n"
    "user: A limerick about a cat\nwho learns to play the piano."
)
INSTRUCTION = "A limerick about a cat\nwho learns to play the piano."


def streaming_config() -> SimpleNamespace:
    """The fields of upstream's StreamingDataLoaderConfig that build_all_verifiers reads (its data_loader module
    imports vLLM, so the dataclass itself cannot be built here)."""
    return SimpleNamespace(
        llm_judge_model="hosted_vllm/scripted",
        llm_judge_max_tokens=256,
        llm_judge_max_context_length=8192,
        llm_judge_temperature=0.0,
        llm_judge_timeout=10,
        code_api_url="http://localhost:1234/test_program",
        code_max_execution_time=1.0,
        code_pass_rate_reward_threshold=0.0,
        code_apply_perf_penalty=False,
        max_length_verifier_max_length=32768,
        remap_verifier=None,
    )


@pytest.fixture
def verifiers(monkeypatch, judge_server, script):
    monkeypatch.setenv("HOSTED_VLLM_API_BASE", judge_server.base_url)
    for name in ("FLIP_THINK_PREFILLED", "FLIP_RETRIES", "FLIP_CACHE"):
        monkeypatch.delenv(name, raising=False)
    script.default = lambda request: flip_answer(INSTRUCTION)
    from flip_reward.integrations import open_instruct

    # Importing the package registers the verifier when upstream is importable at that moment; register() does the
    # same explicitly (another test module may have imported the package before upstream was on sys.path).
    assert open_instruct.register().__bases__ == (gtu.VerifierFunction,)
    return gtu.build_all_verifiers(SimpleNamespace(seed=3), streaming_config())


def run(coroutine):
    """The coroutine on a loop of its own whose HTTP clients are closed before it ends."""
    return run_sync(lambda: coroutine)


def test_check_knows_exactly_the_verifiers_upstream_builds(verifiers) -> None:
    assert set(verifiers) == KNOWN_VERIFIERS


def test_the_call_signatures_match_upstream(verifiers) -> None:
    flip = verifiers["general-flip"]
    for method in ("__call__", "async_call"):
        ours = list(inspect.signature(getattr(flip, method)).parameters)
        theirs = list(inspect.signature(getattr(gtu.VerifierFunction, method)).parameters)[1:]
        assert ours == theirs
    parameters = inspect.signature(gtu.apply_verifiable_reward).parameters
    assert list(parameters)[:5] == ["reward_fn_mapping", "responses", "decoded_responses", "ground_truths", "datasets"]
    assert {"reward_mult", "queries", "rollout_states"} <= set(parameters)


def test_upstream_reward_path_with_fault_pickled_copy_and_two_event_loops(verifiers, judge_server, script) -> None:
    import cloudpickle

    script.queue = [Reply(status=503)]  # the first judge request fails once; the retry succeeds
    shipped = cloudpickle.loads(cloudpickle.dumps(verifiers))  # as Ray ships them to each vLLM actor
    assert type(shipped["general-flip"]).__name__ == "FlipVerifier"
    responses = ["<think>Rhymes: cat, hat.</think>There once was a cat at the keys...", "Short reply."]
    ground_truths = [[INSTRUCTION], ["unused"]]  # rlvr_tokenize_v1 wraps a string ground truth in a list
    datasets = [["general-flip"], ["general-flip"]]
    queries = [QUERY, "user: " + INSTRUCTION]

    def reward_once() -> tuple[list, list]:
        return run(
            gtu.apply_verifiable_reward(
                shipped, [[1], [2]], responses, ground_truths, datasets, reward_mult=10.0, queries=queries
            )
        )

    rewards, per_verifier = reward_once()
    assert rewards == [10.0, 10.0] and per_verifier == [{"general-flip": 10.0}] * 2
    assert len(judge_server.requests) == 3  # two rewards, one of them retried after the 503
    cat = next(request for request in judge_server.requests if "cat at the keys" in judged_response(request))
    context = cat["messages"][-1]["content"]
    assert "user: I need help with a poem." in context and "assistant: Sure, what kind?" in context
    assert "who learns to play the piano" not in context

    in_thread = []
    thread = threading.Thread(target=lambda: in_thread.append(reward_once()))
    thread.start()
    thread.join()
    assert in_thread[0][0] == [10.0, 10.0]  # a second event loop in another thread

    reward_fn = gtu.RewardConfig(verifier_functions=shipped, verification_reward=10.0).build()
    infos = SimpleNamespace(
        timeouts=[False, False],
        tool_errors=["", ""],
        tool_outputs=["", ""],
        tool_calleds=[False, False],
        rollout_states=None,
    )
    scores, metrics = run(reward_fn([[1], [2]], responses, ground_truths, datasets, ["stop", "stop"], infos, queries))
    assert scores == [10.0, 10.0]
    assert metrics["objective/general-flip_reward"] == 10.0


def test_baseline_verifier_is_upstreams_llm_judge(verifiers) -> None:
    assert type(verifiers["general-quality"]).__name__ == "LMJudgeVerifier"
    assert (
        verifiers["general-flip"].verifier_config.llm_judge_model
        == verifiers["general-quality"].verifier_config.llm_judge_model
    )


@pytest.mark.skipif(os.environ.get("FLIP_TEST_RAY") != "1", reason="set FLIP_TEST_RAY=1 (starts Ray, ~30 s)")
def test_reward_config_in_a_ray_actor(verifiers, judge_server) -> None:
    """Ray pickles the RewardConfig to an actor, which imports flip_reward on unpickling and awaits the reward
    function from its own event loop, as upstream's LLMRayActor does."""
    import ray

    checkout = str(upstream_checkout() or "")
    env = {
        "PYTHONPATH": os.pathsep.join(filter(None, [checkout, os.environ.get("PYTHONPATH", "")])),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "HF_HUB_OFFLINE": "1",
    }
    ray.init(num_cpus=1, include_dashboard=False, runtime_env={"env_vars": env}, log_to_driver=False)
    try:

        @ray.remote
        class RewardActor:
            def __init__(self, reward_config):
                self.reward_fn = reward_config.build()
                self.loop = asyncio.new_event_loop()

            def score(self, responses, ground_truths, datasets, queries):
                infos = SimpleNamespace(
                    timeouts=[False] * len(responses),
                    tool_errors=[""] * len(responses),
                    tool_outputs=[""] * len(responses),
                    tool_calleds=[False] * len(responses),
                    rollout_states=None,
                )
                scores, _ = self.loop.run_until_complete(
                    self.reward_fn(
                        [[1]] * len(responses),
                        responses,
                        ground_truths,
                        datasets,
                        ["stop"] * len(responses),
                        infos,
                        queries,
                    )
                )
                return scores

        actor = RewardActor.remote(gtu.RewardConfig(verifier_functions=verifiers, verification_reward=10.0))
        scores = ray.get(
            actor.score.remote(["A cat plays piano."], [[INSTRUCTION]], [["general-flip"]], [QUERY]), timeout=120
        )
        assert scores == [10.0]
    finally:
        ray.shutdown()
