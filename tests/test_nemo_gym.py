"""NeMo Gym: ``FlipResourcesServer`` started the way ``ng_run`` starts a resources server, answering the simple agent.

The server folder (``server_files``: ``app.py``, ``requirements.txt``, ``configs/flip.yaml``) is written under a Gym
root named by ``NEMO_GYM_EXTRA_ROOTS``; NeMo Gym's own parser (``GlobalConfigDictParser``, nemo-gym 0.7 from PyPI)
reads the config from ``config_paths`` and gives the server its host and a free port; NeMo Gym's own launch path
(``_resolve_server_dir``, ``_server_launch_command`` with ``skip_venv_if_present`` and ``run_command``, as
``RunHelper`` uses them) runs ``app.py`` in its folder, under bash, with the parsed config in ``NEMO_GYM_CONFIG_DICT``;
the server's venv is this test's own (linked where Gym looks for it), since building one with uv needs the network.
Each ``/verify`` body is built as the simple agent builds it (``SimpleAgentRunRequest`` of the row, dumped, with the
policy's Responses API answer as ``response``), and each answer is read with the agent's ``SimpleAgentVerifyResponse``.
The judge is the scripted OpenAI-compatible server (a test double), so every reward is an exact F1; it answers the first
request about each response with an HTTP 500, so every reward here has come through the server's retry.
"""

import json
import os
import signal
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from nemo_gym.cli.env import _resolve_server_dir, _server_launch_command
from nemo_gym.cli.setup_command import get_venv_path, run_command
from nemo_gym.global_config import GlobalConfigDictParser, GlobalConfigDictParserConfig
from nemo_gym.openai_utils import NeMoGymResponse
from omegaconf import DictConfig, OmegaConf
from pydantic import ValidationError
from responses_api_agents.simple_agent.app import SimpleAgentRunRequest, SimpleAgentVerifyResponse
from serve_support import FirstFails, call, requests_for

from flip_reward.core.results import ErrorType
from flip_reward.core.reward import FlipResult
from flip_reward.integrations import nemo_gym as flip_gym
from flip_reward.serving.scripted_judge import Reply, ScriptedJudgeServer, judged_response

SEA = "Write a poem about the sea."
WAVES = "Waves roll in under a silver moon."
FOAM = "Foam glitters under a silver moon."
ANSWERS = {
    WAVES: SEA,
    "Mountains rise above the clouds.": "Write a poem about mountains.",
    "Tides turn under a silver moon.": SEA,
    FOAM: SEA,
    "FAIL500": Reply(content="scripted outage", status=500),
}
INSTANCE = "flip_resources_server"
READY_TIMEOUT_S = 120.0


def gym_config(root: Path, judge_url: str) -> DictConfig:
    """The Gym config as NeMo Gym's parser makes it from the server's ``configs/flip.yaml``."""
    server = {"judge_model": "hosted_vllm/scripted", "reward_options": {"api_base": judge_url, "retries": 1,
                                                                        "backoff": 0.01}}  # fmt: skip
    for relative, text in flip_gym.server_files("flip-reward", INSTANCE, server).items():
        path = root / "resources_servers" / flip_gym.SERVER_NAME / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    initial = {
        "config_paths": [f"resources_servers/{flip_gym.SERVER_NAME}/configs/{flip_gym.SERVER_NAME}.yaml"],
        "skip_venv_if_present": True,  # the venv linked below is used as it is
        "uv_venv_dir": str(root / "venvs"),
        "allow_openai_version_skew": True,  # the project's openai is newer than nemo-gym's pin; only the server runs
    }
    parse = GlobalConfigDictParserConfig(
        initial_global_config_dict=DictConfig(initial), skip_load_from_cli=True, skip_load_from_dotenv=True
    )
    return GlobalConfigDictParser().parse(parse)


class GymServer:
    """The FLIP server as ``RunHelper`` starts one: its folder resolved, its launch command run under bash."""

    def __init__(self, root: Path, config: DictConfig, env: dict[str, str]):
        self.server = config[INSTANCE]["resources_servers"][flip_gym.SERVER_NAME]
        self.url = f"http://{self.server.host}:{self.server.port}"
        self.dir = _resolve_server_dir(Path("resources_servers", flip_gym.SERVER_NAME))
        venv = get_venv_path(self.dir, config)
        venv.parent.mkdir(parents=True, exist_ok=True)
        venv.symlink_to(sys.prefix, target_is_directory=True)  # this test's venv, where Gym looks for the server's
        command = _server_launch_command(self.dir, config, INSTANCE, Path(self.server.entrypoint))
        self.log = (root / "server.log").open("w")
        extra_env = {"NEMO_GYM_CONFIG_DICT": OmegaConf.to_yaml(config), "NEMO_GYM_CONFIG_PATH": INSTANCE, **env}
        self.process = run_command(command, self.dir, INSTANCE, global_config_dict=config, stdout_target=self.log,
                                   stderr_target=subprocess.STDOUT, extra_env=extra_env)  # fmt: skip
        self.wait_ready(root / "server.log")

    def wait_ready(self, log: Path) -> None:
        for _ in range(int(READY_TIMEOUT_S / 0.2)):
            if self.process.poll() is not None:
                raise AssertionError(f"the FLIP server exited ({self.process.returncode}):\n{log.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                self.process_wait(0.2)
        raise AssertionError(f"the FLIP server did not answer /health:\n{log.read_text()}")

    def process_wait(self, seconds: float) -> None:
        try:
            self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            pass

    @property
    def python(self) -> psutil.Process:
        """The server's Python process: bash itself once it has exec'ed its last command, else bash's child."""
        bash = psutil.Process(self.process.pid)
        [python] = [process for process in [bash, *bash.children()] if process.cmdline()[-1:] == ["app.py"]]
        return python

    def stop(self) -> None:
        """SIGINT to the server, as ``RunHelper.shutdown`` sends (to bash's Python child too, when it has one)."""
        self.python.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)
        self.log.close()


@pytest.fixture(scope="module")
def judge():
    with ScriptedJudgeServer(FirstFails(ANSWERS)) as server:  # every response's first request: HTTP 500
        yield server


@pytest.fixture(scope="module")
def gym(judge, tmp_path_factory):
    root = tmp_path_factory.mktemp("gym")
    with pytest.MonkeyPatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("FLIP_") or name == "HOSTED_VLLM_API_BASE"]:
            patch.delenv(name)
        patch.setenv("NEMO_GYM_EXTRA_ROOTS", str(root))
        for name in ("UV_CACHE_DIR", "UV_LOCK_TIMEOUT"):  # the parser exports them; restored afterwards
            patch.delenv(name, raising=False)
        config = gym_config(root, judge.base_url)
        server = GymServer(root, config, {"FLIP_SAMPLE_LOG": str(root / "traces" / "samples.jsonl")})
        try:
            yield server
        finally:
            server.stop()


def message(role: str, text: str, parts: bool = False) -> dict:
    return {"role": role, "content": [{"type": "input_text", "text": text}] if parts else text}


def model_response(*texts: str, reasoning: str = "The user wants verse about the ocean.") -> dict:
    """The policy model's Responses API answer as the simple agent receives it: a reasoning item and an assistant
    message per text (none: a tool call only)."""
    output = [{"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": reasoning}]}]
    output += [
        {"id": f"msg_{index}", "type": "message", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": text, "annotations": []}]}
        for index, text in enumerate(texts)
    ]  # fmt: skip
    if not texts:
        output.append({"type": "function_call", "call_id": "c1", "name": "get_tide", "arguments": "{}", "id": "fc_1"})
    response = {"id": "resp_1", "created_at": 1.0, "model": "policy", "object": "response", "output": output,
                "parallel_tool_calls": False, "tool_choice": "auto", "tools": []}  # fmt: skip
    return NeMoGymResponse.model_validate(response).model_dump(mode="json")


def verify(gym: GymServer, row: dict, response: dict) -> SimpleAgentVerifyResponse:
    """POST ``/verify`` as the simple agent does and read the answer with its model."""
    payload = SimpleAgentRunRequest.model_validate(row).model_dump() | {"response": response}
    status, body = call(gym.url, "/verify", json.loads(json.dumps(payload, default=str)))
    assert status == 200, body
    return SimpleAgentVerifyResponse.model_validate(body)


def row(input_: object, **extra: object) -> dict:
    agent = {"type": "responses_api_agents", "name": "flip_simple_agent"}
    return {"responses_create_params": {"input": input_}, "agent_ref": agent, **extra}


def fields(answer: SimpleAgentVerifyResponse) -> tuple:
    extra = answer.model_extra
    return (answer.reward, extra["f1"], extra["inferred_instruction"], extra["error_type"], answer.mask_sample,
            answer.failure_kind)  # fmt: skip


# --- through the server ---------------------------------------------------------------------------------------------


def test_gyms_parser_accepts_the_config_and_the_server_runs_app_py_in_its_folder(gym) -> None:
    assert gym.dir.name == "flip" and gym.dir.parent.name == "resources_servers"
    assert gym.python.cmdline()[-1] == "app.py" and Path(gym.python.cwd()) == gym.dir
    config = flip_gym.FlipResourcesServerConfig.model_validate({**gym.server, "name": INSTANCE})
    assert config.options()["judge_model"] == "hosted_vllm/scripted" and config.domain == "rlhf"
    with pytest.raises(ValidationError, match="num_workers must be 1"):
        flip_gym.FlipResourcesServerConfig.model_validate({**gym.server, "name": INSTANCE, "num_workers": 2})


def test_the_simple_agents_requests_get_the_exact_f1_of_their_last_assistant_message(gym, judge) -> None:
    tool_turns = [
        {"type": "function_call", "call_id": "c1", "name": "get_tide", "arguments": '{"port": "Brest"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "High tide at 6pm."},
    ]
    cases = [
        (row(SEA, task_id=7), model_response(WAVES)),  # input as a string
        (row([message("developer", "Answer in verse."), message("user", SEA, parts=True)]),
         model_response("Mountains rise above the clouds.")),  # messages, input_text parts
        (row([message("user", "Hi"), message("assistant", "Hello!"), *tool_turns, message("user", SEA)]),
         model_response("Draft: the sea.", FOAM)),  # a conversation; two assistant messages, the last is judged
        (row([message("user", SEA)]), model_response()),  # a tool call and no message: nothing to judge
    ]  # fmt: skip
    with ThreadPoolExecutor(len(cases)) as pool:
        answers = list(pool.map(lambda case: verify(gym, *case), cases))
    assert [fields(answer) for answer in answers] == [
        (1.0, 1.0, SEA, "", False, None),
        (0.75, 0.75, "Write a poem about mountains.", "", False, None),
        (1.0, 1.0, SEA, "", False, None),
        (0.0, 0.0, "", "input", False, None),
    ]
    assert answers[0].model_extra["task_id"] == 7 and answers[0].model_extra["agent_ref"]["name"] == "flip_simple_agent"
    assert answers[3].model_extra["error"] == "response is empty once reasoning is removed"
    judged = {judged_response(request): request["messages"][-1]["content"] for request in judge.requests}
    assert "developer: Answer in verse." in judged["Mountains rise above the clouds."]
    assert "tool: High tide at 6pm." in judged[FOAM] and 'assistant: get_tide({"port": "Brest"})' in judged[FOAM]
    assert not any("verse about the ocean" in str(request) for request in judge.requests)  # reasoning never judged
    assert "Draft: the sea." not in judged


def test_a_transient_judge_failure_is_retried_and_gives_the_right_reward(gym, judge) -> None:
    answer = verify(gym, row(SEA), model_response("Tides turn under a silver moon."))
    assert fields(answer) == (1.0, 1.0, SEA, "", False, None)
    assert requests_for(judge, "Tides turn under a silver moon.") == 2  # the 500, then the answer


def test_a_persistent_judge_failure_is_zero_with_the_error_and_masked(gym, judge) -> None:
    answer = verify(gym, row(SEA), model_response("FAIL500"))
    outage = f"judge hosted_vllm/scripted at {judge.base_url} failed: InternalServerError: HTTP 500: scripted outage"
    assert fields(answer) == (0.0, 0.0, "", "judge", True, "judge_failed")
    assert answer.model_extra["error"] == outage and answer.failure_reason == outage
    assert requests_for(judge, "FAIL500") == 2  # retries=1


def test_a_bad_body_is_refused_by_gym_and_the_server_keeps_serving(gym) -> None:
    status, body = call(gym.url, "/verify", {"responses_create_params": {"input": SEA}})
    assert status == 422 and "response" in json.dumps(body)
    assert verify(gym, row(SEA), model_response(WAVES)).reward == 1.0


def test_the_servers_samples_are_traced_and_flip_reward_inspect_reads_them(gym, tmp_path) -> None:
    """FLIP_SAMPLE_LOG in the server's environment: its samples, failures included, land in its own trace file."""
    responses = ["Mountains rise above the clouds.", "FAIL500", ""]
    for text in responses:
        verify(gym, row([message("user", SEA)], task_id="traced"), model_response(text))
    trace = gym.dir.parents[1] / "traces" / f"samples.pid{gym.python.pid}.jsonl"
    traced: dict[str, dict] = {}
    for _ in range(300):  # the trace is written by a background thread
        lines = trace.read_text(encoding="utf-8").splitlines() if trace.exists() else []
        traced = {record["response"]: record for record in map(json.loads, lines)}
        if all(text in traced for text in responses):
            break
        gym.process_wait(0.1)
    assert [(traced[text]["reward"], traced[text]["error_type"]) for text in responses] == [
        (0.75, None), (0.0, "judge"), (0.0, "input")
    ]  # fmt: skip
    assert traced[responses[0]]["prompt"] == [{"role": "user", "content": SEA}]
    inspected = subprocess.run(
        [sys.executable, "-m", "flip_reward.cli", "inspect", str(trace), "--output-dir", str(tmp_path / "report")],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=120,
    )
    assert inspected.returncode == 0, inspected.stderr
    overall = json.loads((tmp_path / "report" / "inspect.json").read_text(encoding="utf-8"))["overall"]
    records = [json.loads(line) for line in lines]
    assert overall["completions"] == len(records)
    assert overall["judge_error_rate"] == sum(record["error_type"] == "judge" for record in records) / len(records)


# --- the answer's fields --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_type", "kind", "masked"),
    [
        (ErrorType.INPUT, None, False),
        (ErrorType.PARSE, "judge_unparseable", False),
        (ErrorType.JUDGE, "judge_failed", True),
        (ErrorType.CONFIG, "verifier_error", True),
        (ErrorType.INTERNAL, "verifier_error", True),
    ],
)
def test_each_error_type_is_zero_with_nemo_gyms_failure_fields(error_type, kind, masked) -> None:
    body = flip_gym.FlipVerifyRequest.model_validate(
        {**row(SEA, reward=5, error="row's own"), "response": model_response(WAVES)}
    )
    answer = flip_gym.verify_response(body, FlipResult(error="why", error_type=error_type))
    assert (answer.reward, answer.error, answer.error_type, answer.failure_kind, answer.mask_sample) == (
        0.0, "why", str(error_type), kind, masked
    )  # fmt: skip
    assert answer.failure_reason == "why" and answer.model_extra == {"agent_ref": row(SEA)["agent_ref"]}
