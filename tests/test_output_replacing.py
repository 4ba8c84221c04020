"""How the commands replace their outputs and check them, each in a real ``flip-reward`` subprocess (the helpers
and the scripted judge of test_output_safety): a model that cannot be written on a full disk (a real tmpfs) is one
line and exit 4 with no part of it left; a file written again on a full disk leaves the previous one untouched, and
the files of ``eval`` land together or not at all; ``inspect`` and ``train`` refuse to write over their input;
``inspect`` checks its default folder up front and names it as such; a refused command makes no folder; a replaced
file keeps the mode, owner and group of the old one; a protected output (mode 0444) or a directory in an output's
place is refused up front (exit 2 naming the option), and a commit that fails anyway names the real path (exit 4
in the CLI; checked on FileSet itself, since the race that causes it cannot be timed in a subprocess); ``inspect``
refuses standard input.

The judge is the scripted OpenAI-compatible server on loopback (flip_reward.serving.scripted_judge), a test double
for known answers, not a model.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from conftest import REPO
from test_output_safety import (
    EVAL_ROW,
    INSTRUCTION,
    NO_SPACE,
    SAMPLES,
    SET_KEPT,
    answer_instruction,
    fill_up,
    flip_reward,
    judge_args,
    read_jsonl,
    train,
    write_jsonl,
)

from flip_reward.data.writing import FileSet, OutputError
from flip_reward.serving.scripted_judge import ScriptedJudgeServer, flip_answer, judged_response


def test_tiny_model_on_a_full_disk_is_one_line_and_leaves_no_part_of_a_model(tmpfs):
    """16 KiB free: room for config.json, not for the weights (safetensors' own error, no OSError)."""
    fill_up(tmpfs, leave=16384)
    run = flip_reward("tiny-model", str(tmpfs / "made" / "tm"))
    assert (run.returncode, run.stdout) == (4, "")
    assert run.stderr == f"error: could not write {tmpfs / 'made' / 'tm'}: {NO_SPACE}; the folder was removed\n"
    assert sorted(path.name for path in tmpfs.iterdir()) == ["filler", "made"]
    assert list((tmpfs / "made").iterdir()) == []
    (tmpfs / "given").mkdir()
    (tmpfs / "given" / "notes.md").write_text("mine\n")
    run = flip_reward("tiny-model", str(tmpfs / "given"))
    assert run.returncode == 4
    assert run.stderr == f"error: could not write {tmpfs / 'given'}: {NO_SPACE}; nothing in it was replaced\n"
    assert [(path.name, path.read_text()) for path in (tmpfs / "given").iterdir()] == [("notes.md", "mine\n")]


def test_train_with_its_policy_build_on_a_full_disk_exits_4(tmp_path, tmpfs):
    """``tiny:1`` built in RUN/models, a folder on a tmpfs with 16 KiB free: one line, exit 4, no part of a model."""
    pytest.importorskip("trl")
    run = tmp_path / "run"
    run.mkdir()
    (tmpfs / "models").mkdir()
    (run / "models").symlink_to(tmpfs / "models")
    fill_up(tmpfs, leave=16384)
    with ScriptedJudgeServer(answer_instruction) as server:
        result = train(run, server)
    assert result.returncode == 4, result.stderr[-3000:]
    policy = run / "models" / "policy-tiny-1"
    assert result.stderr.splitlines()[-1] == f"error: could not write {policy}: {NO_SPACE}; the folder was removed"
    assert "Traceback" not in result.stderr
    assert list((tmpfs / "models").iterdir()) == []


def test_a_parquet_file_on_a_full_disk_keeps_the_previous_one(tmp_path, tmpfs):
    rows = [{"prompt": f"{INSTRUCTION}, number {index}", "response": "Waves."} for index in range(3)]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmpfs / "rlvr.parquet"
    assert flip_reward("data", "convert", str(source), "-o", str(output)).returncode == 0
    before = output.read_bytes()
    fill_up(tmpfs)
    write_jsonl(source, [{"prompt": "Another prompt " * 200, "response": "Waves."}] * 50)
    run = flip_reward("data", "convert", str(source), "-o", str(output))
    assert run.returncode == 4
    assert run.stderr == (
        f"error: could not write {output}: Error writing bytes to file. Detail: {NO_SPACE}; "
        "the partial file was removed\n"
    )
    assert output.read_bytes() == before
    assert sorted(path.name for path in tmpfs.iterdir()) == ["filler", "rlvr.parquet"]


def test_eval_on_a_full_disk_replaces_none_of_the_previous_outputs(tmp_path, mount_tmpfs):
    """A first eval writes its four files; a second one, with 8 KiB free (results.json and report.md fit, the plot
    does not), replaces none of them, prints no ``wrote`` line and says the previous outputs are untouched."""
    disk = mount_tmpfs("disk", "512k")
    output = disk / "eval"

    def infer(request: dict) -> str:
        return flip_answer("Name a colour" if judged_response(request) == "Blue." else "Count to seven")

    with ScriptedJudgeServer(infer) as server:
        first = flip_reward(
            "eval", str(write_jsonl(tmp_path / "a.jsonl", [EVAL_ROW])), "--methods", "flip", "--output-dir",
            str(output), *judge_args(server),
        )  # fmt: skip
        assert first.returncode == 0, first.stderr
        before = {path.name: path.read_bytes() for path in output.iterdir()}
        fill_up(disk, leave=8192)
        rows = [{**EVAL_ROW, "id": f"e{index}", "subset": f"Subset {index}"} for index in range(3)]
        second = flip_reward(
            "eval", str(write_jsonl(tmp_path / "b.jsonl", rows)), "--methods", "flip", "--output-dir", str(output),
            *judge_args(server),
        )  # fmt: skip
    assert sorted(before) == ["accuracy.png", "details.jsonl", "report.md", "results.json"]
    assert second.returncode == 4
    assert second.stdout.startswith("flip: accuracy 1.0000") and "wrote" not in second.stdout
    assert second.stderr == f"error: could not write {output / 'accuracy.png'}: {NO_SPACE}; {SET_KEPT}\n"
    assert {path.name: path.read_bytes() for path in output.iterdir()} == before


def test_inspect_refuses_to_write_over_its_input(tmp_path):
    (tmp_path / "ij").mkdir()
    source = write_jsonl(tmp_path / "ij" / "inspect.json", SAMPLES)
    run = flip_reward("inspect", str(source))
    assert (run.returncode, run.stdout) == (2, "")
    assert run.stderr == (
        f"error: the input's folder {tmp_path / 'ij'} (the default --output-dir): {source} is the input file "
        f"{source} (the same file): writing it would destroy the input; choose another output\n"
    )
    assert read_jsonl(source) == SAMPLES
    assert sorted(path.name for path in (tmp_path / "ij").iterdir()) == ["inspect.json"]


def test_train_refuses_an_output_dir_that_holds_its_dataset(tmp_path):
    pytest.importorskip("trl")
    run = tmp_path / "trx"
    run.mkdir()
    row = {
        "messages": [{"role": "user", "content": INSTRUCTION}],
        "ground_truth": INSTRUCTION,
        "dataset": "general-flip",
    }
    dataset = write_jsonl(run / "samples.jsonl", [row, row])
    with ScriptedJudgeServer(answer_instruction) as server:
        result = train(tmp_path / "other", server, "--datasets", f"{dataset} 1.0", "--output-dir", str(run))
        assert server.requests == []
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: --output-dir {dataset} is the input file {dataset} (the same file): writing it would destroy the "
        "input; choose another output\n"
    )
    assert read_jsonl(dataset) == [row, row]
    assert sorted(path.name for path in run.iterdir()) == ["samples.jsonl"]


def test_inspect_checks_its_default_folder_before_reading(mount_tmpfs):
    """The input's folder on a read-only tmpfs: refused up front, as the same folder given as --output-dir is."""
    disk = mount_tmpfs("readonly")
    source = write_jsonl(disk / "samples.jsonl", SAMPLES)
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    for extra, named in (
        ([], f"the input's folder {disk} (the default --output-dir)"),
        (["--output-dir", str(disk)], f"--output-dir {disk}"),
    ):
        run = flip_reward("inspect", str(source), *extra)
        assert (run.returncode, run.stdout, run.stderr) == (2, "", f"error: {named}: {disk} is not writable\n")


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (None, "error: input file not found: {source}\n"),
        (
            [{"prompt": 5}],
            "error: row 1: field 'prompt': must be a string or a list of messages, got int\n"
            "1 invalid row(s); nothing was written (use --skip-invalid to convert the rest)\n",
        ),
    ],
)
def test_an_output_check_that_fails_makes_no_folder(tmp_path, rows, expected):
    source = tmp_path / "in.jsonl"
    if rows is not None:
        write_jsonl(source, rows)
    run = flip_reward("data", "convert", str(source), "-o", str(tmp_path / "made" / "a" / "b" / "x.jsonl"))
    assert (run.returncode, run.stderr) == (2, expected.format(source=source))
    assert sorted(path.name for path in tmp_path.iterdir()) == (["in.jsonl"] if rows else [])


def test_train_with_bad_settings_makes_no_output_dir(tmp_path):
    pytest.importorskip("trl")
    with ScriptedJudgeServer(answer_instruction) as server:
        bad = train(
            tmp_path / "run", server, "--output-dir", str(tmp_path / "new" / "run"), "--judge-max-tokens", "9000"
        )
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr.startswith("error: ")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["rlvr.jsonl"]


def eval_row_judge(request: dict) -> str:
    return flip_answer("Name a colour" if judged_response(request) == "Blue." else "Count to seven")


def test_a_replaced_output_keeps_its_mode_owner_and_group(tmp_path):
    """inspect's two files, eval's results.json and details.jsonl, a parquet file: each made 0600 or 0660 (and owned
    by uid 1000) after a first run keeps that after a second run replaced it."""
    source = write_jsonl(tmp_path / "samples.jsonl", SAMPLES)
    parquet = tmp_path / "rlvr.parquet"
    rows = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": INSTRUCTION, "response": "Waves."}])
    eval_input = write_jsonl(tmp_path / "eval.jsonl", [EVAL_ROW])
    modes = {
        tmp_path / "inspect.json": 0o600,
        tmp_path / "inspect.png": 0o660,
        tmp_path / "eval" / "results.json": 0o600,
        tmp_path / "eval" / "details.jsonl": 0o600,
        parquet: 0o640,
    }
    with ScriptedJudgeServer(eval_row_judge) as server:
        eval_args = ("eval", str(eval_input), "--methods", "flip", "--output-dir", str(tmp_path / "eval"))
        for first in (True, False):
            assert flip_reward("inspect", str(source)).returncode == 0
            assert flip_reward("data", "convert", str(rows), "-o", str(parquet)).returncode == 0
            assert flip_reward(*eval_args, *judge_args(server)).returncode == 0
            for path, mode in modes.items() if first else ():
                path.chmod(mode)
                os.chown(path, 1000, 1000)
    assert {
        path.name: (stat.S_IMODE(path.stat().st_mode), path.stat().st_uid, path.stat().st_gid) for path in modes
    } == {path.name: (mode, 1000, 1000) for path, mode in modes.items()}
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == []


@pytest.mark.parametrize("command", ["inspect", "eval", "convert"])
def test_a_protected_output_is_refused_up_front(tmp_path, command):
    """A 0444 output (root could write it; someone protected it): exit 2 naming the option, nothing replaced, no
    judge call (eval's judge address answers nothing)."""
    source = write_jsonl(tmp_path / "samples.jsonl", SAMPLES)
    out = tmp_path / "out"
    out.mkdir()
    protected = out / {"inspect": "inspect.png", "eval": "results.json", "convert": "rlvr.parquet"}[command]
    protected.write_text("kept\n")
    protected.chmod(0o444)
    if command == "inspect":
        run = flip_reward("inspect", str(source), "--output-dir", str(out))
        expected = f"error: --output-dir {out}: {protected}: not writable\n"
    elif command == "eval":
        eval_input = write_jsonl(tmp_path / "eval.jsonl", [EVAL_ROW])
        run = flip_reward(
            "eval", str(eval_input), "--output-dir", str(out), "--judge", "hosted_vllm/judge", "--api-base",
            "http://127.0.0.1:9/v1",
        )  # fmt: skip
        expected = f"error: --output-dir {out}: {protected}: not writable\n"
    else:
        rows = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": INSTRUCTION, "response": "Waves."}])
        run = flip_reward("data", "convert", str(rows), "-o", str(protected))
        expected = f"error: --output {protected}: not writable\n"
    assert (run.returncode, run.stdout, run.stderr) == (2, "", expected)
    assert [(path.name, path.read_text()) for path in out.iterdir()] == [(protected.name, "kept\n")]


def test_inspect_refuses_a_directory_in_place_of_one_of_its_files(tmp_path):
    source = write_jsonl(tmp_path / "samples.jsonl", SAMPLES)
    (tmp_path / "out2" / "inspect.json").mkdir(parents=True)
    run = flip_reward("inspect", str(source), "--output-dir", str(tmp_path / "out2"))
    assert (run.returncode, run.stdout) == (2, "")
    out = tmp_path / "out2"
    assert run.stderr == f"error: --output-dir {out}: {out / 'inspect.json'}: is a directory, expected a file\n"
    assert sorted(path.name for path in out.iterdir()) == ["inspect.json"]


def test_a_commit_that_fails_replaces_nothing_and_names_the_real_path(tmp_path):
    """A directory that appears in a file's place after it was written: no file replaced, no temporary file left."""
    (tmp_path / "a.txt").write_text("old a\n")
    with pytest.raises(OutputError) as raised, FileSet() as files:
        files.write(tmp_path / "a.txt", lambda path: path.write_text("new a\n"))
        files.write(tmp_path / "b.txt", lambda path: path.write_text("new b\n"))
        (tmp_path / "b.txt").mkdir()
        files.commit()
    assert str(raised.value) == (
        f"could not write {tmp_path / 'b.txt'}: Is a directory; the partial files were removed and the previous "
        "outputs are untouched"
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.txt", "b.txt"]
    assert (tmp_path / "a.txt").read_text() == "old a\n"


@pytest.mark.parametrize("how", ["redirected", "piped"])
def test_inspect_refuses_standard_input(tmp_path, how):
    source = write_jsonl(tmp_path / "samples.jsonl", SAMPLES)
    command = [sys.executable, "-m", "flip_reward.cli", "inspect", "/dev/stdin"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1"}
    with open(source, "rb") as rows:
        if how == "redirected":
            run = subprocess.run(command, stdin=rows, capture_output=True, text=True, cwd=REPO, env=env)
        else:
            feeder = subprocess.Popen(["cat"], stdin=rows, stdout=subprocess.PIPE)
            run = subprocess.run(command, stdin=feeder.stdout, capture_output=True, text=True, cwd=REPO, env=env)
            feeder.stdout.close()
            feeder.wait()
    assert (run.returncode, run.stdout, run.stderr) == (
        2,
        "",
        "error: unsupported input /dev/stdin: standard input is not read; expected a run directory or a .jsonl file "
        "(save the rows to a .jsonl file first)\n",
    )
    assert not os.path.exists("/dev/inspect.json") and not os.path.exists("/dev/inspect.png")
