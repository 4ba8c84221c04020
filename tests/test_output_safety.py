"""How the commands write their output at its edges, each in a real ``flip-reward`` subprocess: an output that is
the input (the same path, a hard link, a symbolic link) is refused before any judge call; a full disk (a real tmpfs
filled up) is one line naming the file, exit status 4 and whole lines only, with no asyncio noise, for every
command that writes, one warning that stops a sample log without stopping the reward, and a GRPO run that trains
on past a full disk and ends with a line per unwritten output and exit status 4; an output folder that cannot be made
names its option (also ``train --output-dir``, before any model or judge); a missing optional extra is one line
saying what to install; the Ctrl-C line says what the judge cache really keeps.

The judge is the scripted OpenAI-compatible server on loopback (flip_reward.serving.scripted_judge), a test double
for known answers, not a model. ``TQDM_DISABLE=1`` (tqdm's own setting) keeps progress bars out of the stderr that
is compared exactly.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

from flip_reward.cli import main
from flip_reward.knobs import declared
from flip_reward.serving.scripted_judge import Reply, ScriptedJudgeServer, flip_answer, judged_response
from flip_reward.training.config import TrainSettings

OPTIONS = [item.knob for item in declared(TrainSettings)]

NO_SPACE = "No space left on device (errno 28)"
INSTRUCTION = "Write a short poem about the sea"


def flip_reward(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``flip-reward ARGS`` in a subprocess (this worktree's code), without progress bars."""
    return subprocess.run(
        [sys.executable, "-m", "flip_reward.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "TQDM_DISABLE": "1", **(env or {})},
        timeout=120,
    )


def judge_args(server: ScriptedJudgeServer) -> list[str]:
    return ["--judge", "hosted_vllm/judge", "--api-base", server.base_url, "--retries", "0"]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def answer_instruction(request: dict) -> str:
    return flip_answer(INSTRUCTION)


# --- item 5: the output is the input ---------------------------------------------------------------------------------

SCORE_ROW = {"prompt": INSTRUCTION, "response": "Waves crash on the shore."}
RERANK_ROW = {"prompt": INSTRUCTION, "responses": ["Waves.", "Seven."]}
EVAL_ROW = {"id": "e1", "prompt": "Name a colour", "chosen": ["Blue."], "rejected": ["Seven."], "subset": "Alpha"}


def same_file(tmp_path: Path, link: str, name: str) -> tuple[Path, Path]:
    """``(input, output)``: two names of one file, ``link`` says how (the same path, a hard or a symbolic link)."""
    source = tmp_path / name
    if link == "same path":
        return source, source
    other = source.with_name("other-" + name)
    if link == "hard link":
        os.link(source, other)
    else:
        other.symlink_to(source)
    return source, other


@pytest.mark.parametrize("link", ["same path", "hard link", "symbolic link"])
@pytest.mark.parametrize("command", ["score", "rerank", "data convert"])
def test_an_output_that_is_the_input_is_refused_before_any_call(tmp_path, command, link):
    rows = [RERANK_ROW if command == "rerank" else SCORE_ROW] * 3
    write_jsonl(tmp_path / "in.jsonl", rows)
    before = (tmp_path / "in.jsonl").read_bytes()
    source, output = same_file(tmp_path, link, "in.jsonl")
    with ScriptedJudgeServer(answer_instruction) as server:
        if command == "data convert":
            run = flip_reward("data", "convert", str(source), "-o", str(output))
        else:
            run = flip_reward(command, str(source), "-o", str(output), *judge_args(server))
        assert server.requests == []
    assert run.returncode == 2
    assert run.stderr == (
        f"error: --output {output} is the input file {source} (the same file): writing it would destroy the input; "
        "choose another output\n"
    )
    assert (tmp_path / "in.jsonl").read_bytes() == before


@pytest.mark.parametrize("link", ["same path", "hard link"])
def test_eval_refuses_an_output_dir_whose_file_is_the_input(tmp_path, link):
    (tmp_path / "eval").mkdir()
    details = write_jsonl(tmp_path / "eval" / "details.jsonl", [EVAL_ROW])
    source = details
    if link == "hard link":
        source = tmp_path / "in.jsonl"
        os.link(details, source)
    with ScriptedJudgeServer(answer_instruction) as server:
        run = flip_reward("eval", str(source), "--output-dir", str(tmp_path / "eval"), *judge_args(server))
        assert server.requests == []
    assert run.returncode == 2
    assert run.stderr == (
        f"error: --output-dir {details} is the input file {source} (the same file): writing it would destroy the "
        "input; choose another output\n"
    )
    assert read_jsonl(source) == [EVAL_ROW]


# --- item 6: a full disk ---------------------------------------------------------------------------------------------


def fill_up(mount: Path, leave: int = 0) -> None:
    """Fill the file system at ``mount`` to its last byte, then free ``leave`` bytes (whole 4 KiB pages)."""
    with open(mount / "filler", "wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"\0" * 4096)
        except OSError as error:
            assert error.errno == 28
        filler.truncate(max(filler.tell() - leave, 0))


def assert_whole_lines_only(path: Path, stderr: str) -> list[dict]:
    """Every line of ``path`` is whole JSON, and stderr is the one line naming it with their count."""
    rows = read_jsonl(path)
    assert 0 < len(rows)
    assert stderr == f"error: could not write {path}: {NO_SPACE}; the {len(rows)} line(s) before are whole\n"
    return rows


def long_rows(count: int) -> list[dict]:
    poem = "waves " * 60
    return [{"id": index, "prompt": INSTRUCTION, "response": f"Poem {index}: {poem}"} for index in range(count)]


def test_score_on_a_full_disk_keeps_whole_rows_in_order_and_exits_4(tmp_path, tmpfs):
    source = write_jsonl(tmp_path / "in.jsonl", long_rows(300))
    output = tmpfs / "scored.jsonl"
    with ScriptedJudgeServer(answer_instruction) as server:
        run = flip_reward("score", str(source), "-o", str(output), *judge_args(server))
    assert run.returncode == 4, run.stderr
    rows = assert_whole_lines_only(output, run.stderr)  # no "Task was destroyed", no "Event loop is closed"
    assert len(rows) < 300
    assert [(row["id"], row["reward"]) for row in rows] == [(index, 1.0) for index in range(len(rows))]


def test_rerank_on_a_full_disk_keeps_whole_rows_and_exits_4(tmp_path, tmpfs):
    rows = [{"id": index, "prompt": INSTRUCTION, "responses": ["waves " * 50, "sand " * 50]} for index in range(300)]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmpfs / "best.jsonl"
    with ScriptedJudgeServer(answer_instruction) as server:
        run = flip_reward("rerank", str(source), "-o", str(output), *judge_args(server))
    assert run.returncode == 4, run.stderr
    kept = assert_whole_lines_only(output, run.stderr)
    assert [row["id"] for row in kept] == list(range(len(kept)))


def test_data_convert_on_a_full_disk(tmp_path, tmpfs):
    prompts = [f"{INSTRUCTION}, number {index}, " + "please " * 40 for index in range(300)]
    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": prompt, "response": "Waves."} for prompt in prompts])
    run = flip_reward("data", "convert", str(source), "-o", str(tmpfs / "rlvr.jsonl"))
    assert run.returncode == 4 and run.stdout == ""
    kept = assert_whole_lines_only(tmpfs / "rlvr.jsonl", run.stderr)
    assert [row["ground_truth"] for row in kept] == [prompt.strip() for prompt in prompts[: len(kept)]]
    (tmpfs / "rlvr.jsonl").unlink()
    fill_up(tmpfs)
    run = flip_reward("data", "convert", str(source), "-o", str(tmpfs / "rlvr.parquet"))
    assert run.returncode == 4
    assert run.stderr == (
        f"error: could not write {tmpfs / 'rlvr.parquet'}: Error writing bytes to file. Detail: {NO_SPACE}; "
        "the partial file was removed\n"
    )
    assert sorted(path.name for path in tmpfs.iterdir()) == ["filler"]


SET_KEPT = "the partial files were removed and the previous outputs are untouched"
SAMPLES = [
    {
        "step": 1,
        "prompt": [{"role": "user", "content": INSTRUCTION}],
        "response": "Waves.",
        "response_chars": 6,
        "inferred_instruction": INSTRUCTION,
        "reward": 1.0,
        "f1": 1.0,
        "error_type": None,
    }
]


def test_eval_and_inspect_on_a_full_disk_leave_no_partial_file(tmp_path, tmpfs):
    source = write_jsonl(tmp_path / "in.jsonl", [EVAL_ROW])
    (tmpfs / "eval").mkdir()
    (tmpfs / "inspect").mkdir()
    fill_up(tmpfs)

    def infer(request: dict) -> str:
        return flip_answer("Name a colour" if judged_response(request) == "Blue." else "Count to seven")

    with ScriptedJudgeServer(infer) as server:
        run = flip_reward(
            "eval", str(source), "--methods", "flip", "--output-dir", str(tmpfs / "eval"), *judge_args(server)
        )
    assert run.returncode == 4
    assert run.stdout.startswith("flip: accuracy 1.0000")
    assert run.stderr == f"error: could not write {tmpfs / 'eval' / 'results.json'}: {NO_SPACE}; {SET_KEPT}\n"
    source = write_jsonl(tmp_path / "samples.jsonl", SAMPLES)
    run = flip_reward("inspect", str(source), "--output-dir", str(tmpfs / "inspect"))
    assert run.returncode == 4
    assert run.stderr == f"error: could not write {tmpfs / 'inspect' / 'inspect.json'}: {NO_SPACE}; {SET_KEPT}\n"
    assert [path.name for path in (tmpfs / "eval").iterdir()] == []
    assert [path.name for path in (tmpfs / "inspect").iterdir()] == []


SAMPLE_LOG_RUN = """
import asyncio, json, sys
from types import SimpleNamespace
from flip_reward.data.samples import SampleWriter
from flip_reward.integrations.trl import flip_reward_function

reward = flip_reward_function("hosted_vllm/judge", sys.argv[1], retries=0)
reward.samples = writer = SampleWriter(sys.argv[2])
rewards = []
for step in range(20):
    completions = [f"Step {step}, poem {index}: " + "waves " * 100 for index in range(8)]
    state = SimpleNamespace(global_step=step)
    rewards += asyncio.run(reward(prompts=[sys.argv[3]] * 8, completions=completions, trainer_state=state))
writer.flush()
print(json.dumps({"rewards": rewards, "dropped": writer.dropped, "failure": str(writer.failure)}))
"""


def test_a_sample_log_on_a_full_disk_warns_once_and_stops_without_stopping_the_rewards(tmpfs):
    """The TRL reward function of ``flip-reward train`` (and of other trainers) with its trace on a full disk: every
    reward comes back, one warning, whole lines only, and every line after the failure dropped (counted)."""
    log = tmpfs / "samples.jsonl"
    with ScriptedJudgeServer(answer_instruction) as server:
        run = subprocess.run(
            [sys.executable, "-c", SAMPLE_LOG_RUN, server.base_url, str(log), INSTRUCTION],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
        )
    assert run.returncode == 0, run.stderr
    outcome = json.loads(run.stdout)
    assert outcome["rewards"] == [1.0] * 160
    lines = read_jsonl(log)
    assert 0 < len(lines) < 160 and outcome["dropped"] == 160 - len(lines)
    assert [line["response"] for line in lines] == [
        f"Step {step}, poem {index}: " + "waves " * 99 + "waves" for step in range(20) for index in range(8)
    ][: len(lines)]
    failure = f"could not write {log}: {NO_SPACE}; the lines before are whole"
    assert (run.stderr, outcome["failure"]) == (f"sample log stopped (the run goes on): {failure}\n", failure)


TRAIN_STEPS = 6


def train(run: Path, server: ScriptedJudgeServer, *extra: str) -> subprocess.CompletedProcess:
    """``flip-reward train`` on CPU: the tiny random policy ``tiny:1`` (built in RUN/models), 2 prompts x 4 completions
    a step, judged by the scripted judge (served as ``scripted``), no saved model; the training variables of the
    outer environment left out."""
    messages = [{"role": "user", "content": INSTRUCTION}]
    row = {"messages": messages, "ground_truth": INSTRUCTION, "dataset": "general-flip"}
    data = write_jsonl(run.parent / "rlvr.jsonl", [row, row])
    env = {key: value for key, value in os.environ.items() if key not in {option.env for option in OPTIONS}}
    arguments = ["train", "--model", "tiny:1", "--datasets", f"{data} 1.0", "--output-dir", str(run)]
    arguments += ["--judge", "hosted_vllm/scripted", "--judge-base-url", server.base_url, "--judge-retries", "0"]
    arguments += ["--steps", str(TRAIN_STEPS), "--prompts-per-step", "2", "--num-generations", "4"]
    arguments += ["--max-completion-length", "8", "--no-save-model", "--seed", "3", *extra]
    return subprocess.run(
        [sys.executable, "-m", "flip_reward.cli", *arguments],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**env, "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )


def test_train_with_its_outputs_on_a_full_disk_trains_on_and_exits_4(tmp_path, tmpfs, mount_tmpfs):
    """A real GRPO run whose ``metrics.jsonl``, ``reward_curve.png`` and ``inspect.json`` are on a full tmpfs and
    whose ``model`` is on one with 16 KiB free, room for config.json but not for the weights (safetensors' own error,
    no OSError) (symbolic links; the policy built at the start and the traces have room): one warning when the
    metrics file fills up, every step trained, the metrics file keeps whole lines, the summary covers every step,
    then one line per output that could not be written, exit 4."""
    pytest.importorskip("trl")
    run = tmp_path / "run"
    run.mkdir()
    (tmpfs / "metrics.jsonl").write_bytes(b"x" * 4096)  # one page, freed when the run truncates the file
    fill_up(tmpfs)
    (run / "metrics.jsonl").symlink_to(tmpfs / "metrics.jsonl")
    for name in ("reward_curve.png", "inspect.json"):
        (run / name).symlink_to(tmpfs / name)
    model_disk = mount_tmpfs("model-disk")
    fill_up(model_disk, leave=16384)
    (run / "model").symlink_to(model_disk)
    with ScriptedJudgeServer(answer_instruction) as server:
        result = train(run, server, "--save-model")
    assert result.returncode == 4, result.stderr[-3000:]
    metrics, removed = run / "metrics.jsonl", ("reward_curve.png", "inspect.json")
    kept = {"reward_curve.png": "the partial file was removed", "inspect.json": SET_KEPT}
    rows = read_jsonl(metrics)
    assert [row["step"] for row in rows] == list(range(1, len(rows) + 1)) and 0 < len(rows) < TRAIN_STEPS
    assert {row["judge_errors"] for row in rows} == {0}
    lost = f"could not write {metrics}: {NO_SPACE}; the {len(rows)} line(s) before are whole"
    err = result.stderr.splitlines()
    assert err.count(f"metrics log stopped (training goes on): {lost}") == 1
    assert err[-4:] == [
        f"error: {lost}",
        f"error: could not write {run / 'model'}: {NO_SPACE}; the model there is incomplete",
        *(f"error: could not write {run / name}: {NO_SPACE}; {kept[name]}" for name in removed),
    ]
    assert not any("Traceback" in line for line in err)
    assert result.stdout.startswith(f"GRPO: {TRAIN_STEPS} step(s) in ")  # the summary has every step
    assert sorted(path.name for path in tmpfs.iterdir()) == ["filler", "metrics.jsonl"]  # no partial file
    assert not os.path.lexists(run / "inspect.png")
    assert len(read_jsonl(run / "samples.jsonl")) == TRAIN_STEPS * 8


# --- item 18: output folders that cannot be made, tiny-model over a file, the Ctrl-C line ----------------------------


def test_an_output_folder_on_a_read_only_disk_names_the_option(tmp_path, mount_tmpfs):
    """A real tmpfs remounted read-only (even root cannot write there): refused before any judge call, nothing made.
    Under /proc, where only making a folder tells, the same: exit status 2 naming the option, nothing judged."""
    readonly = mount_tmpfs("readonly")
    subprocess.run(["mount", "-o", "remount,ro", str(readonly)], check=True)
    source = write_jsonl(tmp_path / "in.jsonl", [SCORE_ROW])
    with ScriptedJudgeServer(answer_instruction) as server:
        run = flip_reward("score", str(source), "-o", f"{readonly}/x/out.jsonl", *judge_args(server))
        assert (run.returncode, run.stderr) == (
            2,
            f"error: --output {readonly}/x/out.jsonl: {readonly} is not writable\n",
        )
        source = write_jsonl(tmp_path / "eval.jsonl", [EVAL_ROW])
        run = flip_reward("eval", str(source), "--output-dir", f"{readonly}/x/eval", *judge_args(server))
        assert (run.returncode, run.stderr) == (
            2,
            f"error: --output-dir {readonly}/x/eval: {readonly} is not writable\n",
        )
        run = flip_reward("score", str(tmp_path / "in.jsonl"), "-o", "/proc/x/out.jsonl", *judge_args(server))
        assert (run.returncode, run.stderr) == (
            2,
            "error: --output /proc/x/out.jsonl: cannot create /proc/x: No such file or directory (errno 2)\n",
        )
        assert server.requests == []


@pytest.mark.parametrize("output_dir", ["/proc/x/run", "{tmp}/taken"])
def test_train_with_an_output_dir_that_cannot_be_made_stops_before_any_model_or_judge(tmp_path, output_dir):
    pytest.importorskip("trl")
    output_dir = output_dir.format(tmp=tmp_path)
    (tmp_path / "taken").write_text("notes\n")
    with ScriptedJudgeServer(answer_instruction) as server:
        run = train(tmp_path / "run", server, "--output-dir", output_dir)
        assert server.requests == []
    why = "is a file, expected a directory" if output_dir.endswith("taken") else f"cannot create {output_dir}: "
    why += "No such file or directory (errno 2)" if output_dir.startswith("/proc") else ""
    assert (run.returncode, run.stdout, run.stderr) == (2, "", f"error: --output-dir {output_dir}: {why}\n")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["rlvr.jsonl", "taken"]  # no model was built


def test_tiny_model_over_an_existing_file_is_an_error(tmp_path):
    taken = tmp_path / "README.md"
    taken.write_text("notes\n")
    run = flip_reward("tiny-model", str(taken))
    assert (run.returncode, run.stdout) == (2, "")
    assert run.stderr == f"error: output_dir {taken}: is a file, expected a directory\n"
    assert taken.read_text() == "notes\n"


def test_the_ctrl_c_line_says_what_the_cache_keeps_and_a_rerun_asks_the_rest(tmp_path):
    """Rows 0-2 are answered at once, row 1 with text that is no FLIP answer (a parse failure, not cached), the rest
    only after 5 s; after SIGINT a rerun with the same --cache (and judge URL, part of the key) asks again about row 1
    and rows 3-7 only, which the judge now answers at once."""
    rows = [{"id": index, "prompt": INSTRUCTION, "response": f"Poem {index}."} for index in range(8)]
    source, output, cache = write_jsonl(tmp_path / "in.jsonl", rows), tmp_path / "scored.jsonl", tmp_path / "cache"
    rerun = False

    def first_three_at_once(request: dict) -> Reply:
        text = judged_response(request)
        if rerun:
            return Reply(content=flip_answer(INSTRUCTION))
        content = "I cannot tell." if text == "Poem 1." else flip_answer(INSTRUCTION)
        return Reply(content=content, delay=0 if text < "Poem 3" else 5)

    command = ["score", str(source), "-o", str(output), "--cache", str(cache)]
    with ScriptedJudgeServer(first_three_at_once) as server:
        run = subprocess.Popen(
            [sys.executable, "-m", "flip_reward.cli", *command, *judge_args(server)],
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, "TQDM_DISABLE": "1"},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (output.exists() and len(output.read_text().splitlines()) == 3):
            time.sleep(0.1)
        while time.monotonic() < deadline and len(server.requests) < len(rows):
            time.sleep(0.1)
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=60)
        assert run.returncode == 130
        assert err == (
            f"interrupted: 3 of 8 rows written to {output}; run the same command again to resume: the judge cache "
            f"{cache} keeps every usable answer received (an unparsable or cut-off answer is asked again)\n"
        )
        rerun, first_run = True, len(server.requests)
        assert main([*command, *judge_args(server)]) == 0  # in this process: the rerun only counts requests
        asked = sorted(judged_response(request) for request in server.requests[first_run:])
    assert asked == ["Poem 1.", *(f"Poem {index}." for index in range(3, 8))]


# --- a disk cache on a full disk: the warning, the summary and the Ctrl-C line say what it could not keep ---------

CACHE_WARNING = (
    "judge cache {cache} failed (database or disk is full): an answer it cannot store is kept in memory only and "
    "asked again by a later run (said once)"
)


def test_a_cache_on_a_full_disk_is_one_warning_above_the_bar_and_a_line_after_the_summary(tmp_path, tmpfs):
    fill_up(tmpfs)
    source, cache = write_jsonl(tmp_path / "in.jsonl", long_rows(3)), tmpfs / "cache"
    with ScriptedJudgeServer(answer_instruction) as server:
        run = flip_reward("score", str(source), "-o", str(tmp_path / "out.jsonl"), "--cache", str(cache),
                          *judge_args(server), env={"TQDM_DISABLE": "0"})  # fmt: skip
    assert run.returncode == 0, run.stderr
    pieces = re.split(r"[\r\n]", run.stderr)  # the progress bar redraws with carriage returns
    assert pieces.count(CACHE_WARNING.format(cache=cache)) == 1  # a line of its own, not glued onto the bar
    assert run.stderr.splitlines()[-1] == (
        f"warning: the judge cache {cache} could not write 3 of the answers (database or disk is full): a rerun asks "
        "the judge about them again"
    )
    assert "| cached 0 |" in run.stderr.splitlines()[-2]


def test_the_ctrl_c_line_says_a_cache_on_a_full_disk_kept_nothing(tmp_path, tmpfs):
    """Rows 0-2 are answered at once, the rest after 5 s; SIGINT once the first three are written."""
    fill_up(tmpfs)
    rows = [{"id": index, "prompt": INSTRUCTION, "response": f"Poem {index}."} for index in range(6)]
    source, output, cache = write_jsonl(tmp_path / "in.jsonl", rows), tmp_path / "scored.jsonl", tmpfs / "cache"

    def first_three_at_once(request: dict) -> Reply:
        return Reply(content=flip_answer(INSTRUCTION), delay=0 if judged_response(request) < "Poem 3" else 5)

    with ScriptedJudgeServer(first_three_at_once) as server:
        run = subprocess.Popen(
            [sys.executable, "-m", "flip_reward.cli", "score", str(source), "-o", str(output), "--cache", str(cache),
             *judge_args(server)],
            stderr=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "TQDM_DISABLE": "1"},
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (output.exists() and len(output.read_text().splitlines()) == 3):
            time.sleep(0.1)
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=60)
    assert run.returncode == 130
    assert err == (
        CACHE_WARNING.format(cache=cache) + "\n"
        f"interrupted: 3 of 6 rows written to {output}; the judge cache {cache} could not be written (database or "
        "disk is full): a rerun asks again\n"
    )


# --- item 15: a missing optional extra -------------------------------------------------------------------------------

BLOCKER = REPO / "tests" / "blocked_imports"  # its sitecustomize makes FLIP_TEST_BLOCKED_MODULES unimportable


@pytest.mark.parametrize(
    ("args", "blocked", "expected"),
    [
        (
            ["train", "--preset", "tiny", "--dry-run"],
            "trl,torch",
            "error: flip-reward train needs the module 'torch', which is not installed: "
            "pip install 'flip-reward[train]'",
        ),
        (
            ["train", "--preset", "tiny", "--output-dir", "{tmp}/model/run"],
            "trl",
            "error: flip-reward train needs the module 'trl', which is not installed: pip install 'flip-reward[train]'",
        ),
        (
            ["tiny-model", "{tmp}/model"],
            "transformers,tokenizers,torch",
            "error: flip-reward tiny-model needs the module 'torch', which is not installed: "
            "pip install 'flip-reward[serve]' or 'flip-reward[train]'",
        ),
    ],
)
def test_a_command_whose_extra_is_not_installed_says_which_to_install(tmp_path, args, blocked, expected):
    pythonpath = os.pathsep.join([str(BLOCKER), str(REPO), os.environ.get("PYTHONPATH", "")])
    env = {"PYTHONPATH": pythonpath, "FLIP_TEST_BLOCKED_MODULES": blocked}
    (tmp_path / "model").mkdir()
    run = flip_reward(*(arg.format(tmp=tmp_path) for arg in args), env=env)
    assert (run.returncode, run.stderr) == (2, expected + "\n")  # no plan, no "starting the judge" line
    assert list((tmp_path / "model").iterdir()) == []  # checked first: no model built, no judge started (its log)


def test_the_local_backend_checks_the_train_extra_as_flip_reward_train_does(tmp_path):
    """``flip-reward launch local`` runs flip-reward train in its own process (flip_reward.training.command): the
    same check of the [train] extra, the same line, before anything is made."""
    pythonpath = os.pathsep.join([str(BLOCKER), str(REPO), os.environ.get("PYTHONPATH", "")])
    env = {"PYTHONPATH": pythonpath, "FLIP_TEST_BLOCKED_MODULES": "trl", "LOCAL_PRESET": "tiny", "EXP_NAME": "x"}
    run = flip_reward("launch", "local", "--output-dir", f"{tmp_path}/run", env=env)
    assert (run.returncode, run.stdout) == (2, "")
    assert run.stderr.splitlines() == [
        "grpo (local): preset tiny, reward flip: flip-reward train --reward flip --preset tiny --exp-name x "
        f"--output-dir {tmp_path}/run",
        "error: flip-reward train needs the module 'trl', which is not installed: pip install 'flip-reward[train]'",
    ]
    assert list(tmp_path.iterdir()) == []
