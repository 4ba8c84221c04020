"""The judge client against real HTTP on loopback.

The server here is the scripted OpenAI-compatible test double (flip_reward.serving.scripted_judge), used for
deterministic answers and fault injection; the real engine path (transformers serve + a tiny model) is in
test_engine.py.
"""

from __future__ import annotations

import asyncio
import gc
import pickle
import re
import time

import pytest
from conftest import FAST_RETRIES, free_port

from flip_reward.judge.client import Judge, JudgeConfig, JudgeError
from flip_reward.judge.failures import router_text
from flip_reward.judge.transport import Completion, Endpoint, Transport
from flip_reward.serving.scripted_judge import Reply, ScriptedJudgeServer, flip_answer

ANSWER = flip_answer("Write a haiku")


def messages(text: str = "hello") -> list[dict]:
    return [{"role": "user", "content": text}]


def make_judge(server, **options) -> Judge:
    return Judge(JudgeConfig(model="hosted_vllm/judge", api_base=server.base_url, **{**FAST_RETRIES, **options}))


def run(coroutine):
    return asyncio.run(coroutine)


def test_answer_with_usage_and_latency(judge_server, script):
    script.default = lambda request: ANSWER
    response = run(make_judge(judge_server).complete(messages()))
    assert response.text == ANSWER
    assert (response.prompt_tokens, response.completion_tokens, response.cached) == (1, len(ANSWER.split()), False)
    assert response.latency_s > 0
    assert judge_server.requests[0]["model"] == "judge"


@pytest.mark.parametrize(
    "fault",
    [
        Reply(status=500),
        Reply(status=502),
        Reply(status=503),
        Reply(status=429),
        Reply(garbage=True),
        Reply(drop=True),
        Reply(delay=1.0, content=ANSWER),
    ],
    ids=["500", "502", "503", "429", "garbage-body", "dropped-connection", "timeout"],
)
def test_transient_faults_are_retried(judge_server, script, fault):
    script.default = lambda request: ANSWER
    script.queue = [fault, fault]
    response = run(make_judge(judge_server, timeout=0.3).complete(messages()))
    assert response.text == ANSWER
    assert len(judge_server.requests) == 3


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_client_errors_are_not_retried(judge_server, script, status):
    script.default = lambda request: Reply(status=status)
    with pytest.raises(JudgeError) as error:
        run(make_judge(judge_server).complete(messages()))
    assert len(judge_server.requests) == 1
    assert str(error.value).startswith(f"judge hosted_vllm/judge at {judge_server.base_url} failed:")
    assert f"scripted status {status}" in str(error.value)


def test_retries_exhausted_gives_error_with_cause(judge_server, script):
    script.default = lambda request: Reply(status=500)
    with pytest.raises(JudgeError, match="InternalServerError"):
        run(make_judge(judge_server, retries=2).complete(messages()))
    assert len(judge_server.requests) == 3


def test_total_deadline_bounds_a_request(judge_server, script):
    script.default = lambda request: Reply(delay=0.4, content=ANSWER)
    judge = make_judge(judge_server, timeout=0.3, retries=10, deadline=0.5)
    with pytest.raises(JudgeError, match="no answer within the 0.5s deadline"):
        run(judge.complete(messages()))
    assert len(judge_server.requests) <= 3


def test_dead_judge_trips_breaker_and_fails_fast():
    judge = Judge(
        JudgeConfig(
            model="hosted_vllm/judge",
            api_base=f"http://127.0.0.1:{free_port()}/v1",
            breaker_threshold=3,
            breaker_cooldown=60,
            **FAST_RETRIES,
        )
    )
    results = run(judge.complete_many([messages(str(i)) for i in range(50)]))
    assert all(isinstance(result, JudgeError) for result in results)
    assert judge.breaker.times_opened == 1
    unreachable = [r for r in results if re.search(r"is unreachable: \d+ consecutive connection failures", str(r))]
    assert len(unreachable) >= 40
    started = time.perf_counter()
    with pytest.raises(JudgeError, match="not sending requests for another"):
        run(judge.complete(messages("after")))
    assert time.perf_counter() - started < 0.5


def test_breaker_half_opens_with_one_probe_after_cooldown(caplog):
    caplog.set_level("WARNING", logger="flip_reward")
    port = free_port()
    judge = Judge(
        JudgeConfig(
            model="hosted_vllm/judge",
            api_base=f"http://127.0.0.1:{port}/v1",
            breaker_threshold=2,
            breaker_cooldown=1.0,
            **FAST_RETRIES,
        )
    )
    run(judge.complete_many([messages("a"), messages("b")]))
    assert judge.breaker.opened_at is not None
    with ScriptedJudgeServer(lambda request: Reply(delay=0.2, content=ANSWER), port=port) as revived:
        time.sleep(1.05)  # the probe's window (one cool-down) is far longer than its 0.2 s answer, even under load
        results = run(judge.complete_many([messages(f"after {i}") for i in range(10)]))
        assert len(revived.requests) == 1  # the probe; the others were refused while it was in flight
        assert [isinstance(result, JudgeError) for result in results].count(False) == 1
        assert judge.breaker.opened_at is None
        assert run(judge.complete(messages("closed again"))).text == ANSWER
    transitions = [record.getMessage() for record in caplog.records if record.name == "flip_reward"]
    target = f"hosted_vllm/judge at http://127.0.0.1:{port}/v1"
    expected = [f"judge {target} unreachable", f"judge {target} answers again"]
    assert [line.split(" after ")[0] for line in transitions] == expected  # each transition logged once


def test_a_slow_judge_is_not_a_dead_one(judge_server, script):
    script.default = lambda request: Reply(delay=0.5, content=ANSWER)
    judge = make_judge(judge_server, timeout=0.1, retries=1, breaker_threshold=2, deadline=5)
    results = run(judge.complete_many([messages(str(i)) for i in range(6)]))
    assert all("APITimeoutError" in str(result) for result in results)
    assert judge.breaker.opened_at is None and judge.breaker.times_opened == 0
    assert len(judge_server.requests) == 12


@pytest.mark.parametrize(
    ("fault", "opens"),
    [(Reply(status=502), True), (Reply(status=503), False), (Reply(drop=True), False), (Reply(status=500), False)],
    ids=["502-dead-backend", "503-busy", "dropped", "500"],
)
def test_which_answers_count_as_a_dead_judge(judge_server, script, fault, opens):
    script.default = lambda request: fault
    judge = make_judge(judge_server, retries=2, breaker_threshold=3)
    run(judge.complete_many([messages(str(i)) for i in range(4)]))
    assert (judge.breaker.opened_at is not None) is opens


def test_identical_requests_sent_once_and_cached(judge_server, script):
    script.default = lambda request: Reply(delay=0.05, content=ANSWER)
    judge = make_judge(judge_server)
    results = run(judge.complete_many([messages("same")] * 10 + [messages("other")]))
    assert len(judge_server.requests) == 2
    assert [r.text for r in results] == [ANSWER] * 11
    again = run(judge.complete(messages("same")))
    assert again.cached and again.latency_s == 0.0 and len(judge_server.requests) == 2


def test_a_cancelled_caller_leaves_its_identical_request_to_the_others(judge_server, script):
    script.default = lambda request: Reply(delay=0.2, content=ANSWER)
    judge = make_judge(judge_server, cache=False)

    async def scenario():
        first = asyncio.ensure_future(judge.complete(messages("same")))
        await asyncio.sleep(0.05)  # the first caller is sending it; the second waits on it
        second = asyncio.ensure_future(judge.complete(messages("same")))
        waiter = asyncio.ensure_future(judge.complete(messages("same")))
        await asyncio.sleep(0.01)
        first.cancel()
        waiter.cancel()  # a waiter's own cancellation is its own
        answer = await second
        return first.cancelled(), waiter.cancelled(), answer.text

    assert run(scenario()) == (True, True, ANSWER)
    assert len(judge_server.requests) == 2  # the cancelled one, then the second caller's


def test_a_failed_request_fails_its_identical_waiters_and_logs_nothing(judge_server, script, caplog):
    script.default = lambda request: Reply(delay=0.05, status=400)
    judge = make_judge(judge_server)
    results = run(judge.complete_many([messages("same")] * 3 + [messages("alone")]))
    assert [type(result) for result in results] == [JudgeError] * 4
    assert results[0] is results[1] is results[2] and len(judge_server.requests) == 2
    del results
    gc.collect()
    assert "never retrieved" not in caplog.text


def test_cache_can_be_disabled(judge_server, script):
    judge = make_judge(judge_server, cache=False)
    run(judge.complete(messages()))
    run(judge.complete(messages()))
    assert len(judge_server.requests) == 2


def test_disk_cache_survives_a_new_judge(judge_server, script, tmp_path):
    run(make_judge(judge_server, cache_dir=str(tmp_path)).complete(messages()))
    response = run(make_judge(judge_server, cache_dir=str(tmp_path)).complete(messages()))
    assert response.cached and len(judge_server.requests) == 1
    other_params = run(make_judge(judge_server, cache_dir=str(tmp_path), temperature=0.7).complete(messages()))
    assert not other_params.cached and len(judge_server.requests) == 2


def test_concurrency_is_bounded(judge_server, script):
    """20 requests gathered at once through a judge bounded to 4: the scripted judge holds each until 4 are in flight
    (so the bound is reached without relying on timing) and sees exactly 4 at most."""
    script.default = lambda request: Reply(content=ANSWER, wait_for_peers=4)
    judge = make_judge(judge_server, max_concurrency=4)

    async def main():
        return await asyncio.gather(*(judge.complete(messages(str(i))) for i in range(20)))

    assert [response.text for response in run(main())] == [ANSWER] * 20
    assert (len(judge_server.requests), judge_server.peak_in_flight, judge_server.in_flight) == (20, 4, 0)


def test_request_parameters_reach_the_server(judge_server, script):
    schema = {"type": "object", "properties": {"X": {"type": "string"}}}
    judge = make_judge(
        judge_server, temperature=0.6, max_tokens=77, seed=123, response_schema=schema, disable_thinking=True
    )
    run(judge.complete(messages()))
    sent = judge_server.requests[0]
    assert (sent["temperature"], sent["max_tokens"], sent["seed"]) == (0.6, 77, 123)
    assert sent["response_format"] == {"type": "json_schema", "json_schema": {"name": "judgment", "schema": schema}}
    assert sent["chat_template_kwargs"] == {"enable_thinking": False}
    assert sent["messages"] == messages()


def test_litellm_path_reaches_the_server_too(judge_server, script):
    script.default = lambda request: ANSWER
    judge = make_judge(judge_server, use_litellm=True, disable_thinking=True)
    assert run(judge.complete(messages())).text == ANSWER
    assert judge_server.requests[0]["chat_template_kwargs"] == {"enable_thinking": False}


def test_api_base_from_environment(judge_server, script, monkeypatch):
    monkeypatch.setenv("HOSTED_VLLM_API_BASE", judge_server.base_url)
    judge = Judge(JudgeConfig(model="hosted_vllm/judge"))
    assert run(judge.complete(messages())).text.startswith("{")


def test_pickled_judge_works_in_several_event_loops(judge_server, script):
    judge = make_judge(judge_server)
    run(judge.complete(messages("warm")))
    clone = pickle.loads(pickle.dumps(judge))
    assert clone.config == judge.config
    for attempt in range(3):
        assert run(clone.complete(messages(f"loop {attempt}"))).text
    assert len(judge_server.requests) == 4


def test_invalid_config_is_rejected():
    with pytest.raises(ValueError, match="JudgeConfig.max_concurrency must be > 0, got 0"):
        JudgeConfig(max_concurrency=0)
    with pytest.raises(ValueError, match="JudgeConfig.retries must be >= 0, got -1"):
        JudgeConfig(retries=-1)


def test_dead_judge_trips_breaker_through_litellm_too():
    judge = Judge(
        JudgeConfig(
            model="hosted_vllm/judge",
            api_base=f"http://127.0.0.1:{free_port()}/v1",
            use_litellm=True,
            breaker_threshold=3,
            **FAST_RETRIES,
        )
    )
    results = run(judge.complete_many([messages(str(i)) for i in range(8)]))
    assert judge.breaker.times_opened == 1
    assert all(isinstance(result, JudgeError) for result in results)


def test_a_failing_disk_cache_is_a_miss_not_an_error(judge_server, script, tmp_path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache directory should be")
    script.default = lambda request: ANSWER
    judge = make_judge(judge_server, cache_dir=str(blocked))
    assert run(judge.complete(messages())).text == ANSWER
    assert run(judge.complete(messages())).cached  # the in-memory cache still works
    assert len(judge_server.requests) == 1


def test_the_aiohttp_transport_sends_the_openai_request_and_reads_the_answer(judge_server, script, monkeypatch):
    monkeypatch.setenv("OPENAI_ORG_ID", "org-test")
    script.default = lambda request: ANSWER
    endpoint = Endpoint.resolve("openai/judge", judge_server.base_url, "sk-test")
    transport = Transport(endpoint, timeout=5)
    params = {"temperature": 0.0, "max_tokens": 7, "seed": 3, "extra_body": {"chat_template_kwargs": {"x": False}}}
    completion = run(transport.send(messages("hi"), params))
    assert completion == Completion(ANSWER, 1, len(ANSWER.split()), "stop")
    body = judge_server.requests[0]
    assert body == {"model": "judge", "messages": messages("hi"), "temperature": 0.0, "max_tokens": 7, "seed": 3,
                    "chat_template_kwargs": {"x": False}}  # fmt: skip
    assert not transport.use_litellm


@pytest.mark.parametrize(
    ("reply", "kind", "text"),
    [
        (Reply(status=429, content="slow down"), "RateLimitError", "Error code: 429 - slow down"),
        (Reply(status=404), "NotFoundError", "Error code: 404 - scripted status 404"),
        (Reply(status=503), "InternalServerError", "Error code: 503 - scripted status 503"),
        (Reply(garbage=True), "MalformedResponseError", "judge response is not JSON: b'<html>upstream proxy error'"),
        (Reply(drop=True), "APIConnectionError", "Connection error: ServerDisconnectedError"),
        (Reply(delay=0.5, content=ANSWER), "APITimeoutError", "Request timed out."),
    ],
    ids=["429", "404", "503", "garbage", "dropped", "timeout"],
)
def test_the_aiohttp_transport_raises_the_openai_errors(judge_server, script, reply, kind, text):
    script.default = lambda request: reply
    transport = Transport(Endpoint.resolve("hosted_vllm/judge", judge_server.base_url), timeout=0.2)
    with pytest.raises(Exception) as error:
        run(transport.send(messages(), {}))
    assert type(error.value).__name__ == kind and str(error.value).startswith(text)
    assert not transport.is_unreachable(error.value)
    if reply.status != 200:
        assert error.value.status_code == reply.status
        assert (reply.content or f"scripted status {reply.status}") in router_text(error.value)  # the body is kept


def test_the_aiohttp_transport_reports_a_refused_connection_as_unreachable():
    base = f"http://127.0.0.1:{free_port()}/v1"
    transport = Transport(Endpoint.resolve("hosted_vllm/judge", base), timeout=2)
    with pytest.raises(Exception) as error:
        run(transport.send(messages(), {}))
    assert type(error.value).__name__ == "APIConnectionError" and str(error.value) == f"cannot connect to {base}"
    assert transport.is_unreachable(error.value)
