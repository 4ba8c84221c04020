"""The judge's PID files (flip_reward/serving/pid_files.py), driven through scripts/serve_judge.sh (``flip-reward
judge``): a private directory, no planted symlink or foreign file, no PID 1, and no process signalled unless it is
the one the command started.

Planted files are made by another uid (``setpriv`` to nobody, or ``os.chown``). "Nothing signalled" is checked on a
sentinel process of ours named by the planted file; the PID 1 cases run inside a PID namespace (``unshare``), so
that even a script that did signal every process could only reach that namespace. The judge started in the last
test is the scripted loopback server (a test double) behind a fake ``vllm`` command.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import REPO, free_port, group_alive, port_open

SCRIPT = REPO / "scripts" / "serve_judge.sh"
NOBODY = 65534
ME = os.geteuid()
FAKE_VLLM = """#!/usr/bin/env bash
# fake `vllm serve MODEL --host H --port P`: the scripted judge on P
while (($#)); do [[ $1 == --port ]] && port=$2; shift; done
exec "$FAKE_PYTHON" -m flip_reward.serving.scripted_judge --port "$port"
"""


def run_script(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=environment,
                          timeout=120, check=False)  # fmt: skip


def as_nobody(*command: object) -> None:
    subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *map(str, command)],
                   check=True, cwd="/")  # fmt: skip


def start_time(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19])


@pytest.fixture
def shared():
    """A directory like /tmp on a shared node: world-writable with the sticky bit, reachable by every user."""
    directory = Path(tempfile.mkdtemp(prefix="flip-shared-"))
    directory.chmod(0o1777)
    yield directory
    shutil.rmtree(directory)


@pytest.fixture
def sentinel():
    """A process of ours in its own process group: the one a planted PID file names."""
    process = subprocess.Popen(["sleep", "300"], start_new_session=True)
    yield process
    process.kill()
    process.wait()


@pytest.fixture
def private(tmp_path):
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    return directory


def test_a_planted_symlink_is_never_followed(tmp_path, shared):
    precious = tmp_path / "precious.txt"
    precious.write_text("the victim's data\n")
    port = free_port()
    as_nobody("ln", "-s", precious, shared / f"serve_judge.{port}.pid")  # where the PID file used to be
    as_nobody("mkdir", "-m", "0755", shared / f"flip-reward-{ME}")  # and the private directory, taken first
    as_nobody("ln", "-s", precious, shared / f"flip-reward-{ME}" / f"serve_judge.{port}.pid")
    result = run_script("Qwen/Qwen3-4B", "--port", port, env={"TMPDIR": str(shared), "XDG_RUNTIME_DIR": ""})
    pid_file = shared / f"flip-reward-{ME}" / f"serve_judge.{port}.pid"
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"serve_judge: error: refusing PID file {pid_file}: {pid_file.parent} is owned by uid {NOBODY}, not by this "
        f"user (uid {ME})\n"
    )
    assert precious.read_text() == "the victim's data\n" and not port_open(port)


@pytest.mark.parametrize("command", ["start", "stop"])
def test_a_symlinked_pid_file_is_refused(tmp_path, private, command):
    precious = tmp_path / "precious.txt"
    precious.write_text(f"{os.getpid()} {start_time(os.getpid())}\n")
    pid_file = private / "judge.pid"
    pid_file.symlink_to(precious)
    args = (
        ["--stop", pid_file] if command == "stop" else ["Qwen/Qwen3-4B", "--port", free_port(), "--pid-file", pid_file]
    )
    result = run_script(*args)
    assert (result.returncode, result.stderr) == (
        1,
        f"serve_judge: error: refusing PID file {pid_file}: {pid_file} is a symbolic link\n",
    )
    assert precious.read_text() == f"{os.getpid()} {start_time(os.getpid())}\n" and pid_file.is_symlink()


def test_a_symlinked_log_file_is_refused_before_it_is_truncated(tmp_path, private):
    precious = tmp_path / "precious.txt"
    precious.write_text("the victim's data\n")
    log_file = private / "judge.log"
    log_file.symlink_to(precious)
    result = run_script("Qwen/Qwen3-4B", "--port", free_port(), "--pid-file", private / "judge.pid", "--log-file",
                        log_file)  # fmt: skip
    assert (result.returncode, result.stderr) == (
        1,
        f"serve_judge: error: refusing log file {log_file}: {log_file} is a symbolic link\n",
    )
    assert precious.read_text() == "the victim's data\n"


def test_a_pid_file_in_a_directory_others_can_write_is_refused(shared):
    pid_file = shared / "judge.pid"
    result = run_script("Qwen/Qwen3-4B", "--port", free_port(), "--pid-file", pid_file)
    assert (result.returncode, result.stderr) == (
        1,
        f"serve_judge: error: refusing PID file {pid_file}: {shared} is writable by group or others (mode 1777)\n",
    )
    assert not pid_file.exists()


def test_a_pid_file_of_another_user_is_refused(private, sentinel):
    pid_file = private / "judge.pid"
    pid_file.write_text(f"{sentinel.pid} {start_time(sentinel.pid)}\n")
    os.chown(pid_file, NOBODY, NOBODY)
    result = run_script("--stop", pid_file)
    assert (result.returncode, result.stderr) == (
        1,
        f"serve_judge: error: refusing PID file {pid_file}: {pid_file} is owned by uid {NOBODY}, not by this user "
        f"(uid {ME})\n",
    )
    assert sentinel.poll() is None and pid_file.exists()


def test_a_pid_now_used_by_another_process_is_not_signalled(private, sentinel):
    pid_file = private / "judge.pid"
    recorded = start_time(sentinel.pid) - 1  # the process the script started had this PID and has exited
    pid_file.write_text(f"{sentinel.pid} {recorded}\n")
    result = run_script("--stop", pid_file)
    assert (result.returncode, result.stderr) == (
        0,
        f"serve_judge: PID {sentinel.pid} is not the process {pid_file} recorded (it started at "
        f"{start_time(sentinel.pid)}, that one at {recorded} clock ticks after boot): not signalled\n"
        f"serve_judge: kept {pid_file}: it names a process group that was not signalled\n",
    )
    assert sentinel.poll() is None and pid_file.read_text() == f"{sentinel.pid} {recorded}\n"  # the record is kept


NAMESPACED_STOP = """
setsid sleep 300 & sentinel=$!
sleep 0.2
printf '%s\\n' "$PLANTED" >"$PID_FILE"
bash "$SCRIPT" --stop "$PID_FILE"; status=$?
kill -0 "$sentinel" 2>/dev/null && echo "sentinel alive"
echo "status $status"
"""


@pytest.mark.parametrize("planted", ["1", "1 4242", "0 0", "-1 5", "12a 3", "", "99999999999999999999 5"], ids=repr)
def test_pid_1_and_other_non_pids_are_refused_and_nothing_is_signalled(private, planted):
    pid_file = private / "judge.pid"
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(REPO), "SCRIPT": str(SCRIPT),
           "PID_FILE": str(pid_file), "PLANTED": planted}  # fmt: skip
    result = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "bash", "-c", NAMESPACED_STOP],
                            capture_output=True, text=True, env=env, timeout=60, check=False)  # fmt: skip
    assert result.stderr == (
        f"serve_judge: error: refusing PID file {pid_file}: line 1 is {planted!r}, not 'PID START_TIME' with a "
        "PID from 2 to 4194304\n"
    )
    assert result.stdout == "sentinel alive\nstatus 1\n" and pid_file.read_text() == planted + "\n"


def test_the_default_pid_file_lives_in_a_private_directory_and_stops_the_server(tmp_path):
    bin_dir, runtime = tmp_path / "bin", tmp_path / "runtime"
    bin_dir.mkdir()
    (bin_dir / "vllm").write_text(FAKE_VLLM)
    (bin_dir / "vllm").chmod(0o755)
    runtime.mkdir(mode=0o700)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "JUDGE_SERVER": "vllm", "FAKE_PYTHON": sys.executable,
           "XDG_RUNTIME_DIR": str(runtime)}  # fmt: skip
    port = free_port()
    started = run_script("Qwen/Qwen3-4B", "--port", port, "--timeout", 60, env=env)
    pid_file = runtime / f"flip-reward-{ME}" / f"serve_judge.{port}.pid"
    try:
        assert started.returncode == 0, started.stderr
        assert (pid_file.parent.stat().st_mode & 0o777, pid_file.stat().st_mode & 0o777) == (0o700, 0o600)
        [(pgid, recorded)] = [tuple(map(int, line.split())) for line in pid_file.read_text().splitlines()]
        assert recorded == start_time(pgid) and group_alive(pgid)
        again = run_script("Qwen/Qwen3-4B", "--port", port, env=env)
        assert (again.returncode, again.stderr) == (
            1,
            f"serve_judge: error: a server from {pid_file} is running (PID {pgid}); stop it with --stop {pid_file}\n",
        )
    finally:
        stopped = run_script("--stop", "--port", port, env=env)  # the default PID file of that port
    assert (stopped.returncode, stopped.stderr) == (0, f"serve_judge: stopping process group {pgid}\n")
    assert not pid_file.exists() and not group_alive(pgid) and not port_open(port)


def test_stop_signals_a_group_whose_leader_exited_only_when_every_process_in_it_is_ours(private):
    leader = subprocess.Popen(["bash", "-c", "sleep 300 & echo $!; exit 0"], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)  # fmt: skip
    leader.stdout.readline()  # the child in the group has started
    leader.wait()
    pid_file = private / "judge.pid"
    pid_file.write_text(f"{leader.pid} 0\n")  # recorded after the leader had exited
    try:
        result = run_script("--stop", pid_file)
        assert (result.returncode, result.stderr) == (0, f"serve_judge: stopping process group {leader.pid}\n")
        assert not group_alive(leader.pid)
    finally:
        if group_alive(leader.pid):
            os.killpg(leader.pid, signal.SIGKILL)


def test_stop_group_reaps_a_group_it_had_to_kill_before_returning() -> None:
    """A service that ignores TERM is KILLed, and its leader is reaped (through ``alive``) before stop_group
    returns: no zombie keeps its PID (and, in a long-lived caller, its port or GPU) after the stop."""
    from flip_reward.serving.pid_files import stop_group

    program = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); " \
              "time.sleep(300)"  # fmt: skip
    child = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, text=True,
                             start_new_session=True)  # fmt: skip
    try:
        assert child.stdout.readline() == "ready\n"
        messages: list[str] = []
        stop_group(child.pid, 0.2, messages.append, lambda: child.poll() is None or group_alive(child.pid))
        assert child.returncode == -signal.SIGKILL  # reaped by stop_group's wait
        assert messages == [
            f"stopping process group {child.pid}",
            f"process group {child.pid} outlived TERM by 0.2s: sending KILL",
        ]
    finally:
        child.kill()
        child.communicate(timeout=30)
