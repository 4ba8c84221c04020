"""NeMo Gym: ``FlipResourcesServer`` started the way ``ng_run`` starts a resources server, answering the simple agent;
and ``flip-reward launch nemo-rl``.

The server folder as the launcher writes it (``launch.nemo_rl.server_files``: ``app.py``, ``requirements.txt``,
``configs/flip.yaml``) is under a Gym root named by ``NEMO_GYM_EXTRA_ROOTS``; NeMo Gym's own parser
(``GlobalConfigDictParser``, nemo-gym 0.7 from PyPI) reads the launcher's ``config_paths`` (Gym's vLLM policy server
config too) and gives the server its host and a free port; NeMo Gym's own launch path
(``_resolve_server_dir``, ``_server_launch_command`` with ``skip_venv_if_present`` and ``run_command``, as
``RunHelper`` uses them) runs ``app.py`` in its folder, under bash, with the parsed config in ``NEMO_GYM_CONFIG_DICT``;
the server's venv is this test's own (linked where Gym looks for it), since building one with uv needs the network.
Each ``/verify`` body is built as the simple agent builds it (``SimpleAgentRunRequest`` of the row, dumped, with the
policy's Responses API answer as ``response``), and each answer is read with the agent's ``SimpleAgentVerifyResponse``.
The judge is the scripted OpenAI-compatible server (a test double), so every reward is an exact F1; it answers the first
request about each response with an HTTP 500, so every reward here has come through the server's retry. NeMo-RL is not
on PyPI: its own config loader is used from a checkout named by ``NEMO_RL_DIR`` (skipped, saying so, without one);
rollouts and training need GPUs.
"""

import asyncio
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
import yaml
from conftest import REPO
from nemo_gym.cli.env import _resolve_server_dir, _server_launch_command
from nemo_gym.cli.setup_command import get_venv_path, run_command
from nemo_gym.global_config import GlobalConfigDictParser, GlobalConfigDictParserConfig
from nemo_gym.judge import JudgeError, judge_failsafe
from nemo_gym.openai_utils import NeMoGymResponse
from omegaconf import DictConfig, OmegaConf
from pydantic import ValidationError
from responses_api_agents.simple_agent.app import SimpleAgentRunRequest, SimpleAgentVerifyResponse
from serve_support import FirstFails, call, inspected_overall, requests_for

from flip_reward.core.results import ErrorType
from flip_reward.core.reward import FlipResult
from flip_reward.integrations import nemo_gym as flip_gym
from flip_reward.launch import nemo_rl
from flip_reward.launch.command_trainer import RunFiles, mixed_rows
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
INSTANCE = nemo_rl.SERVER_INSTANCE
POLICY = {"policy_base_url": ["http://127.0.0.1:9/v1"], "policy_api_key": "dummy_key", "policy_model_name": "policy"}
READY_TIMEOUT_S = 120.0
NEMO_RL_DIR = os.environ.get("NEMO_RL_DIR")  # a NeMo-RL checkout (not on PyPI), for its config loader
NEMO_RL_EXAMPLE = "examples/nemo_gym/grpo_workplace_assistant_nemotron_nano_v2_9b.yaml"


def test_the_hugging_face_cache_stays_where_the_user_keeps_it() -> None:
    """Importing nemo_gym points HF_HOME and HF_DATASETS_CACHE at ``./cache/huggingface`` when they are unset (its
    ``__init__``): the test session sets them first (conftest), so no test of the session writes a dataset cache into
    the checkout nor looks for tokenizers there."""
    for name in ("HF_HOME", "HF_DATASETS_CACHE"):
        assert not Path(os.environ[name]).absolute().is_relative_to(REPO), f"{name}={os.environ[name]}"


def gym_config(root: Path, judge_url: str) -> DictConfig:
    """The Gym config as NeMo Gym's parser makes it from the config paths of ``flip-reward launch nemo-rl`` (Gym's
    vLLM policy server and the FLIP server's folder as the launcher writes it, here with the judge in its keys)."""
    server = {"judge_model": "hosted_vllm/scripted", "reward_options": {"api_base": judge_url, "retries": 1,
                                                                        "backoff": 0.01}}  # fmt: skip
    for path, text in nemo_rl.server_files(root, "flip-reward", nemo_rl.gym_config(server)).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    initial = {
        "config_paths": [nemo_rl.POLICY_CONFIG, nemo_rl.SERVER_CONFIG],
        **POLICY,  # what NeMo-RL's NemoGym actor sets
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
        self.config = config
        self.server = config[INSTANCE]["resources_servers"][nemo_rl.SERVER]
        self.url = f"http://{self.server.host}:{self.server.port}"
        self.dir = _resolve_server_dir(Path("resources_servers", nemo_rl.SERVER))
        venv = get_venv_path(self.dir, config)
        venv.parent.mkdir(parents=True, exist_ok=True)
        venv.symlink_to(sys.prefix, target_is_directory=True)  # this test's venv, where Gym looks for the server's
        command = _server_launch_command(self.dir, config, INSTANCE, Path(self.server.entrypoint))
        self.log = (root / "server.log").open("w")
        extra_env = {"NEMO_GYM_CONFIG_DICT": OmegaConf.to_yaml(config), "NEMO_GYM_CONFIG_PATH": INSTANCE, **env}
        self.process = run_command(command, self.dir, INSTANCE, global_config_dict=config, stdout_target=self.log,
                                   stderr_target=subprocess.STDOUT, extra_env=extra_env)  # fmt: skip
        try:
            self.wait_ready(root / "server.log")
        except AssertionError:
            self.stop()
            raise

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
        if self.process.poll() is None:
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
    agent = gym.config[nemo_rl.AGENT]["responses_api_agents"]["simple_agent"]
    assert (agent.resources_server.name, agent.model_server.name) == (INSTANCE, nemo_rl.POLICY_MODEL)
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
    assert answer.model_extra["instance_config"] == {"mask_sample": True}  # where NeMo-RL's GRPO reads the flag
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
    overall = inspected_overall(trace, tmp_path / "report")
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
    assert answer.failure_reason == "why"
    assert answer.model_extra == {"agent_ref": row(SEA)["agent_ref"], **({"instance_config": {"mask_sample": True}}
                                                                         if masked else {})}  # fmt: skip


def test_a_masked_answer_carries_the_flag_where_gyms_own_judge_failsafe_puts_it_for_nemo_rl() -> None:
    """Gym's ``judge_failsafe`` (around every ``/verify``) answers a JudgeError with ``mask_sample`` at the top level
    and in ``instance_config``, the row's own keys kept: NeMo-RL's GRPO reads it there
    (``rollouts._extract_mask_sample_flags``). FLIP's judge failure carries both, as Gym's own row does."""

    body = flip_gym.FlipVerifyRequest.model_validate(
        {**row(SEA, instance_config={"difficulty": 2}), "response": model_response(WAVES)}
    )

    async def failing_verify(body):
        raise JudgeError("down")

    gyms = json.loads(asyncio.run(judge_failsafe(failing_verify)(body=body)).body)
    ours = flip_gym.verify_response(body, FlipResult(error="down", error_type=ErrorType.JUDGE)).model_dump()
    keys = ("reward", "mask_sample", "failure_kind", "instance_config")
    assert [ours[key] for key in keys] == [gyms[key] for key in keys] == [
        0.0, True, "judge_failed", {"difficulty": 2, "mask_sample": True}
    ]  # fmt: skip


# --- flip-reward launch nemo-rl -------------------------------------------------------------------------------------


def chat_rows(path: Path) -> Path:
    rows = [
        {"messages": [{"role": "user", "content": SEA}]},
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                      {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Name three primes."},
                      {"role": "assistant", "content": "2, 3, 5."}]},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def launch_plan(tmp_path: Path, **environ: str) -> tuple[nemo_rl.NemoRlSettings, RunFiles]:
    environ = {"DATASETS": f"{chat_rows(tmp_path / 'chat.jsonl')} 1.0", "OUTPUT_DIR": str(tmp_path / "run"), **environ}
    settings = nemo_rl.NemoRlSettings.from_sources({}, environ)
    return settings, RunFiles(tmp_path / "run" / "data" / "train.jsonl", tmp_path / "run" / "config")


def test_the_launchers_rows_are_simple_agent_requests_and_its_gym_config_parses(tmp_path, monkeypatch) -> None:
    settings, files = launch_plan(tmp_path)
    rows = mixed_rows(nemo_rl.RECIPE, settings, files.data)
    assert rows == [f"data: {tmp_path / 'chat.jsonl'}: 2 rows -> 2 training rows"]
    written = [json.loads(line) for line in files.data.read_text(encoding="utf-8").splitlines()]
    assert written[1] == {
        "responses_create_params": {"input": [{"role": "system", "content": "Be brief."},
                                              {"role": "user", "content": "Hi"},
                                              {"role": "assistant", "content": "Hello!"},
                                              {"role": "user", "content": "Name three primes."}]},
        "agent_ref": {"type": "responses_api_agents", "name": nemo_rl.AGENT},
    }  # fmt: skip
    assert [SimpleAgentRunRequest.model_validate(row).model_dump()["responses_create_params"]["input"][-1]["content"]
            for row in written] == [SEA, "Name three primes."]  # fmt: skip
    for path, text in nemo_rl.run_files(settings, files).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    trainer = nemo_rl.nemo_rl_command(settings, files, sys.executable, ["grpo.max_num_steps=5"])
    monkeypatch.setenv("NEMO_GYM_EXTRA_ROOTS", trainer.env["NEMO_GYM_EXTRA_ROOTS"])  # as NeMo-RL's Gym actor has it
    for name in ("UV_CACHE_DIR", "UV_LOCK_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    config = yaml.safe_load(nemo_rl.config_path(files).read_text(encoding="utf-8"))
    # over the inherited example's `nemotron_json`, a tool parser that vLLM has only with Nemotron's plugin file
    assert config["policy"]["generation"]["vllm_cfg"] == {"http_server_serving_chat_kwargs": {"tool_parser": None}}
    assert config["policy"]["generation"]["max_new_tokens"] == settings.response_length == 8192
    initial = {**config["env"]["nemo_gym"], **POLICY, "allow_openai_version_skew": True}
    parse = GlobalConfigDictParserConfig(initial_global_config_dict=DictConfig(initial), skip_load_from_cli=True,
                                         skip_load_from_dotenv=True)  # fmt: skip
    parsed = GlobalConfigDictParser().parse(parse)
    assert parsed[INSTANCE]["resources_servers"]["flip"]["entrypoint"] == "app.py"
    assert parsed[nemo_rl.AGENT]["responses_api_agents"]["simple_agent"]["resources_server"]["name"] == INSTANCE
    assert parsed[nemo_rl.POLICY_MODEL]["responses_api_models"]["vllm_model"]["base_url"] == POLICY["policy_base_url"]
    folder = _resolve_server_dir(Path("resources_servers", nemo_rl.SERVER))
    assert folder == nemo_rl.gym_root(files) / "resources_servers" / "flip" and (folder / "requirements.txt").exists()
    flip_gym.FlipResourcesServerConfig.model_validate({**parsed[INSTANCE]["resources_servers"]["flip"], "host": "h",
                                                       "port": 1, "name": INSTANCE})  # fmt: skip


def test_launch_nemo_rl_dry_run_prints_the_plan_and_the_command(tmp_path) -> None:
    environ = {"DATASETS": f"{chat_rows(tmp_path / 'chat.jsonl')} 1.0", "NEMO_RL_DIR": str(tmp_path / "RL"),
               "NUM_GPUS": "2", "JUDGE_GPUS": "1"}  # fmt: skip
    completed = subprocess.run(
        [sys.executable, "-m", "flip_reward.cli", "launch", "nemo-rl", "--dry-run", "--output-dir", "run",
         "grpo.max_num_steps=5"],
        capture_output=True, text=True, cwd=tmp_path, env={**os.environ, **environ}, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0] == "nemo-rl: 1 training GPU(s); reward flip_reward.integrations.nemo_gym.FlipResourcesServer"
    assert f"data: {tmp_path / 'chat.jsonl'}: 2 rows -> 2 training rows" in lines
    run = tmp_path / "run"
    config = run / "config"
    assert {f"config: {config}/grpo_flip.yaml", f"config: {config}/gym/resources_servers/flip/app.py"} <= set(lines)
    assert f"    defaults: {tmp_path / 'RL' / NEMO_RL_EXAMPLE}" in lines
    assert lines[-1] == (
        "trainer: env CUDA_VISIBLE_DEVICES=0 HOSTED_VLLM_API_BASE=http://127.0.0.1:8001/v1 "
        "FLIP_JUDGE_MODEL=hosted_vllm/Qwen/Qwen3-4B FLIP_JUDGE_TIMEOUT=3600 FLIP_JUDGE_MAX_TOKENS=2048 "
        "FLIP_JUDGE_TEMPERATURE=1.0 FLIP_JUDGE_MAX_CONTEXT=25000 "
        f"NEMO_GYM_EXTRA_ROOTS={run / 'config' / 'gym'} uv run --directory {tmp_path / 'RL'} python "
        f"examples/nemo_gym/run_grpo_nemo_gym.py --config {run / 'config' / 'grpo_flip.yaml'} grpo.max_num_steps=5"
    )
    assert not run.exists()  # a dry run writes nothing

    # a relative FLIP_SAMPLE_LOG reaches the server absolute: Gym runs it in its own folder (the fixture's server)
    traced = subprocess.run(
        [sys.executable, "-m", "flip_reward.cli", "launch", "nemo-rl", "--dry-run", "--output-dir", "run"],
        capture_output=True, text=True, cwd=tmp_path, env={**os.environ, **environ, "FLIP_SAMPLE_LOG": "t/s.jsonl"},
        timeout=120,
    )  # fmt: skip
    assert traced.returncode == 0, traced.stderr
    assert f" FLIP_SAMPLE_LOG={tmp_path}/t/s.jsonl NEMO_GYM_EXTRA_ROOTS=" in traced.stdout.splitlines()[-1]


def test_launch_nemo_rl_refuses_a_policy_layout_nemo_rl_would_refuse_once_started(tmp_path) -> None:
    """NeMo-RL checks the policy's layout only once Ray and its workers are up: the training GPUs divisible by the
    tensor-parallel size, a step's samples by the data-parallel size. The launcher writes the tensor-parallel size
    (the inherited examples' 2 does not divide the default 7 training GPUs) and refuses a bad layout (exit 2)."""
    environ = {**os.environ, "DATASETS": f"{chat_rows(tmp_path / 'chat.jsonl')} 1.0", "NEMO_RL_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "flip_reward.cli", "launch", "nemo-rl", "--dry-run", "--output-dir", "run"]

    def dry_run(**knobs: str) -> subprocess.CompletedProcess:
        return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env={**environ, **knobs},
                              timeout=120)  # fmt: skip

    plan = dry_run()
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.splitlines()[0].startswith("nemo-rl: 7 training GPU(s);")
    assert "        tensor_model_parallel_size: 1" in plan.stdout.splitlines()
    refused = [dry_run(NEMO_RL_TENSOR_PARALLEL="2"), dry_run(PROMPTS_PER_STEP="5")]
    assert [(run.returncode, run.stdout, run.stderr.strip()) for run in refused] == [
        (2, "", "error: NEMO_RL_TENSOR_PARALLEL=2 does not divide the 7 training GPU(s): NeMo-RL needs their number "
                "divisible by the policy's tensor-parallel size"),
        (2, "", "error: PROMPTS_PER_STEP x SAMPLES_PER_PROMPT = 40 samples per step do not split evenly over NeMo-RL's "
                "7 data-parallel rank(s) (training GPUs / NEMO_RL_TENSOR_PARALLEL)"),
    ]  # fmt: skip
    assert dry_run(NUM_GPUS="4", JUDGE_GPUS="3", NEMO_RL_TENSOR_PARALLEL="3").returncode == 0


@pytest.mark.skipif(not NEMO_RL_DIR, reason="NEMO_RL_DIR (a NeMo-RL checkout) is not set: NeMo-RL is not on PyPI")
def test_nemo_rls_config_loader_composes_the_launchers_config_over_its_example(tmp_path, monkeypatch) -> None:
    """NeMo-RL's own ``load_config`` (its ``defaults:`` inheritance) and ``parse_hydra_overrides``, as
    run_grpo_nemo_gym.py calls them, on the config the launcher writes."""
    monkeypatch.syspath_prepend(NEMO_RL_DIR)
    from nemo_rl.utils.config import load_config, parse_hydra_overrides, register_omegaconf_resolvers

    settings, files = launch_plan(tmp_path, NEMO_RL_DIR=NEMO_RL_DIR)  # 8 GPUs, the judge on GPU 7: 7 train
    for path, text in nemo_rl.run_files(settings, files).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    register_omegaconf_resolvers()
    config = parse_hydra_overrides(load_config(nemo_rl.config_path(files)), ["grpo.max_num_steps=5"])
    config = OmegaConf.to_container(config, resolve=True)
    assert config["policy"]["model_name"] == config["policy"]["tokenizer"]["name"] == "Qwen/Qwen3-4B"
    assert config["policy"]["train_global_batch_size"] == 28 * 8 and config["grpo"]["max_num_steps"] == 5
    assert config["policy"]["max_total_sequence_length"] == 2048 + 8192
    # the response budget: NeMo-RL's _prepare_nemo_gym_rows makes it each row's max_output_tokens (the example's
    # max_new_tokens is the whole sequence length)
    assert config["policy"]["generation"]["max_new_tokens"] == 8192
    assert config["policy"]["megatron_cfg"]["optimizer"]["lr"] == 1e-6
    # the example's tool parser is a plugin of Nemotron's (not in vLLM): the policy server keeps NeMo-RL's default
    chat_kwargs = config["policy"]["generation"]["vllm_cfg"]["http_server_serving_chat_kwargs"]
    assert chat_kwargs == {"enable_auto_tools": True, "tool_parser": None}
    assert config["data"]["train"]["data_path"] == str(files.data.absolute()) and config["data"]["validation"] is None
    assert config["data"]["default"]["dataset_name"] == "NemoGymDataset"
    assert config["env"]["should_use_nemo_gym"] is True
    assert config["env"]["nemo_gym"]["config_paths"] == [nemo_rl.POLICY_CONFIG, nemo_rl.SERVER_CONFIG]
    assert (config["grpo"]["val_period"], config["cluster"]["gpus_per_node"]) == (0, 7)
    # the layout NeMo-RL's Policy checks once its workers are up (lm_policy.py): the world size divisible by TP x PP x
    # CP, and a step's samples divisible by the data-parallel size (grpo.py)
    megatron = config["policy"]["megatron_cfg"]
    assert megatron["enabled"] and (megatron["tensor_model_parallel_size"], megatron["pipeline_model_parallel_size"],
                                    megatron["context_parallel_size"]) == (1, 1, 1)  # fmt: skip
    world, model_parallel = config["cluster"]["gpus_per_node"], megatron["tensor_model_parallel_size"]
    assert world % model_parallel == 0 and config["policy"]["train_global_batch_size"] % (world // model_parallel) == 0
