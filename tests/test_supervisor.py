"""The Supervisor (flip_reward.serving.processes) with real child processes: services that come up in order, never
come up or die at start, a trainer that ignores SIGINT (and TERM), Ctrl-C and TERM to the supervising process.

The healthy service is the scripted judge (flip_reward.serving.scripted_judge, a test double that answers /health).
Grace periods are passed small; nothing asserts on wall-clock time.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import psutil
import pytest
from conftest import free_port, group_alive, port_open

from flip_reward.exit_codes import EXIT_JUDGE_DOWN
from flip_reward.launch.preflight import check_judge
from flip_reward.serving.pid_files import stop
from flip_reward.serving.processes import Service, StartError, Supervisor

TRAINER = (
    "import os, signal, sys, time\n"
    "for name in sys.argv[1:]:\n"
    "    signal.signal(getattr(signal, name), signal.SIG_IGN)\n"
    "print(os.getpid(), os.environ.get('MARK'), flush=True)\n"
    "time.sleep(300)\n"
)
SUPERVISED = """\
import sys
from pathlib import Path
from flip_reward.serving.processes import Service, Supervisor

def log(message):
    print(message, file=sys.stderr, flush=True)

mode, port, run_dir, *ignored = sys.argv[1:]
judge = Service("judge", (sys.executable, "-m", "flip_reward.serving.scripted_judge", "--port", port),
                f"http://127.0.0.1:{port}/health", Path(run_dir) / "judge.log")
try:
    with Supervisor(Path(run_dir) / "run.pid", 60, log, trainer_int_grace=0.3, trainer_term_grace=0.3,
                    stop_grace=5) as supervisor:
        supervisor.start([judge])
        if mode == "wait":
            print("ready", flush=True)
            sys.exit(supervisor.wait())
        trainer = [sys.executable, "-c", sys.argv[0] and TRAINER, *ignored]
        print(supervisor.run_trainer(trainer, {"MARK": "trainer-env"}), flush=True)
except KeyboardInterrupt:
    sys.exit(130)
"""


def judge(name: str, port: int, log_dir: Path) -> Service:
    command = (sys.executable, "-m", "flip_reward.serving.scripted_judge", "--port", str(port))
    return Service(name, command, f"http://127.0.0.1:{port}/health", log_dir / f"{name}.log")


def start_time(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19])


def supervised(mode: str, tmp_path: Path, *ignored: str) -> tuple[subprocess.Popen, int]:
    """SUPERVISED in a child process (the scripted judge as its service); returns it and the judge's port."""
    port = free_port()
    program = SUPERVISED.replace("sys.argv[0] and TRAINER", repr(TRAINER))
    command = [sys.executable, "-c", program, mode, str(port), str(tmp_path / "run"), *ignored]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return child, port


def test_services_start_in_order_and_stop_the_last_first(tmp_path: Path) -> None:
    first_port, second_port = free_port(), free_port()
    messages: list[str] = []
    first = judge("first", first_port, tmp_path / "logs")
    # the second dies at once unless the first answers already: after_healthy waited for it
    check = f"import urllib.request; urllib.request.urlopen('{first.health_url}', timeout=5)"
    second = replace(
        judge("second", second_port, tmp_path / "logs"),
        command=("bash", "-c", f'"$0" -c "{check}" && exec "$0" "$@"', *judge("", second_port, tmp_path).command),
        after_healthy=True,
    )
    pid_file = tmp_path / "run" / "run.pid"
    with Supervisor(pid_file, 60, messages.append, stop_grace=5) as supervisor:
        supervisor.start([first, second])
        pids = [process.pid for _, process in supervisor.services]
        assert pid_file.read_text() == "".join(f"{pid} {start_time(pid)}\n" for pid in pids)
        assert port_open(first_port) and port_open(second_port)
        assert oct((tmp_path / "logs" / "first.log").stat().st_mode & 0o777) == "0o600"
    assert messages == [
        f"starting: {' '.join(first.command)} (log: {first.log_file})",
        f"starting: {' '.join(second.command)} (log: {second.log_file})",
        f"stopping process group {pids[1]}",
        f"stopping process group {pids[0]}",
    ]
    assert [group_alive(pid) for pid in pids] == [False, False]
    assert not pid_file.exists() and not port_open(first_port) and not port_open(second_port)


def test_a_service_that_never_gets_healthy_is_stopped_at_the_timeout(tmp_path: Path) -> None:
    stuck = Service("stuck judge", ("sleep", "300"), f"http://127.0.0.1:{free_port()}/health", tmp_path / "s.log")
    supervisor = Supervisor(tmp_path / "run.pid", 0.5, lambda message: None, stop_grace=5)
    with pytest.raises(StartError) as error, supervisor:
        supervisor.start([stuck])
    assert str(error.value) == "the stuck judge was not healthy after 0.5s"
    assert supervisor.services == [] and not (tmp_path / "run.pid").exists()


def test_a_service_that_dies_at_start_stops_the_others_and_shows_its_log(tmp_path: Path) -> None:
    port = free_port()
    dying = Service(
        "replica 2",
        ("bash", "-c", "echo pid $$; echo 'torch.OutOfMemoryError: CUDA out of memory' >&2; exit 1"),
        f"http://127.0.0.1:{free_port()}/health",
        tmp_path / "dying.log",
    )
    messages: list[str] = []
    supervisor = Supervisor(tmp_path / "run.pid", 60, messages.append, stop_grace=5)
    with pytest.raises(StartError) as error, supervisor:
        supervisor.start([judge("replica 1", port, tmp_path), dying])
    dead = int((tmp_path / "dying.log").read_text().split()[1])
    assert str(error.value) == (
        f"the replica 2 (PID {dead}) exited before it was healthy\n"
        f"last lines of {tmp_path / 'dying.log'}:\npid {dead}\ntorch.OutOfMemoryError: CUDA out of memory"
    )
    live = int(messages[2].removeprefix("stopping process group "))
    assert messages[2:] == [f"stopping process group {live}"]  # the dead one has no group left to stop
    assert not group_alive(live) and not port_open(port) and not (tmp_path / "run.pid").exists()


def test_a_started_service_is_left_running_once_detached(tmp_path: Path) -> None:
    port, pid_file = free_port(), tmp_path / "run.pid"
    with Supervisor(pid_file, 60, lambda message: None) as supervisor:
        supervisor.start([judge("judge", port, tmp_path)])
        supervisor.detach()
    [(_, process)] = supervisor.services
    try:
        assert group_alive(process.pid) and port_open(port) and pid_file.exists()
    finally:
        stop(pid_file, lambda message: None, grace=0.5)  # what `flip-reward judge stop` runs
        process.wait(timeout=30)  # this test is its parent (once a command exits, init reaps it)
    assert not group_alive(process.pid) and not pid_file.exists()


def test_trainer_exit_status_and_environment(tmp_path: Path) -> None:
    with Supervisor(None, 10, lambda message: None) as supervisor:
        assert supervisor.run_trainer([sys.executable, "-c", "raise SystemExit(3)"], {}) == 3
        assert supervisor.run_trainer(["bash", "-c", "kill -TERM $$"], {}) == 128 + signal.SIGTERM
        script = "import os, sys; sys.exit(os.environ['MARK'] == 'x' and os.getpgid(0) == os.getpid())"
        assert supervisor.run_trainer([sys.executable, "-c", script], {"MARK": "x"}) == 1  # own process group


@pytest.mark.parametrize(
    ("ignored", "signals"),
    [((), ["SIGINT"]), (("SIGINT",), ["SIGINT", "SIGTERM"]), (("SIGINT", "SIGTERM"), ["SIGINT", "SIGTERM", "SIGKILL"])],
    ids=["stops-at-sigint", "ignores-sigint", "ignores-sigint-and-term"],
)
def test_ctrl_c_stops_the_trainer_then_the_services(tmp_path: Path, ignored: tuple, signals: list[str]) -> None:
    child, port = supervised("train", tmp_path, *ignored)
    try:
        trainer, mark = child.stdout.readline().split()
        assert mark == "trainer-env"
        judge_pid = int((tmp_path / "run" / "run.pid").read_text().split()[0])
        child.send_signal(signal.SIGINT)  # Ctrl-C reaches only the supervisor: the trainer has its own group
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 130
    lines = err.splitlines()
    sent = [line for line in lines if line.startswith("sending ")]
    assert sent == [f"sending {name} to the trainer (process group {trainer})" for name in signals]
    assert lines[-1] == f"stopping process group {judge_pid}"  # after the trainer
    assert not group_alive(int(trainer)) and not group_alive(judge_pid) and not port_open(port)
    assert not (tmp_path / "run" / "run.pid").exists()


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_while_waiting_stops_every_service(tmp_path: Path, number: int) -> None:
    child, port = supervised("wait", tmp_path)
    try:
        assert child.stdout.readline() == "ready\n"
        judge_pid = int((tmp_path / "run" / "run.pid").read_text().split()[0])
        child.send_signal(number)
        child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == (130 if number == signal.SIGINT else 128 + number)
    assert not group_alive(judge_pid) and not port_open(port) and not (tmp_path / "run" / "run.pid").exists()


def test_a_service_dying_while_waiting_ends_the_wait(tmp_path: Path) -> None:
    child, port = supervised("wait", tmp_path)
    try:
        assert child.stdout.readline() == "ready\n"
        judge_pid = int((tmp_path / "run" / "run.pid").read_text().split()[0])
        os.killpg(judge_pid, signal.SIGKILL)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 1
    assert f"error: the judge (PID {judge_pid}) exited with status {128 + signal.SIGKILL}" in err.splitlines()
    assert not (tmp_path / "run" / "run.pid").exists()


def test_health_is_asked_directly_whatever_http_proxy_says(tmp_path: Path, monkeypatch) -> None:
    """A proxy setting (here a dead proxy) never reaches the health checks: the services run on this machine."""
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{free_port()}")
    port = free_port()
    with Supervisor(tmp_path / "run.pid", 30, lambda message: None, stop_grace=5) as supervisor:
        supervisor.start([judge("judge", port, tmp_path)])
        assert port_open(port)
    assert not port_open(port)


def test_what_a_trainer_leaves_running_is_stopped_with_it(tmp_path: Path) -> None:
    """A trainer that exits 0 but leaves a process of its group behind (as Ray may): that one is stopped too."""
    record = tmp_path / "left.pid"
    command = ["bash", "-c", f"sleep 300 & echo $! > {record}; exit 0"]
    messages: list[str] = []
    with Supervisor(None, 10, messages.append, trainer_int_grace=0.5, trainer_term_grace=5) as supervisor:
        assert supervisor.run_trainer(command, {}) == 0
    left = int(record.read_text())
    group = messages[0].rpartition("process group ")[2].rstrip(")")
    expected = [
        f"sending {name} to what the trainer left running (process group {group})" for name in ("SIGINT", "SIGTERM")
    ]
    assert group.isdigit() and messages in (expected[:1], expected)  # a script's background job may ignore SIGINT
    with pytest.raises(ProcessLookupError):
        os.kill(left, 0)


# --- defects found in review: each test below failed before its fix ------------------------------------------------


class Answering(http.server.BaseHTTPRequestHandler):
    """Someone else's server: answers every GET 200 (the health URL included)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def foreign_server():
    """A real HTTP server of somebody else's on a free port of 127.0.0.1; yields its port."""
    server = http.server.HTTPServer(("127.0.0.1", 0), Answering)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path: Path, foreign_server: int) -> None:
    """Another server answers the health URL while the service itself would exit 1 at once: never 'healthy'."""
    dying = Service("judge", ("bash", "-c", "exit 1"), f"http://127.0.0.1:{foreign_server}/health", tmp_path / "j.log")
    messages: list[str] = []
    supervisor = Supervisor(tmp_path / "run.pid", 30, messages.append, stop_grace=5)
    with pytest.raises(StartError) as error, supervisor:
        supervisor.start([dying])
    assert str(error.value) == f"port {foreign_server} on 127.0.0.1 is already in use"
    assert messages == [] and supervisor.services == [] and not (tmp_path / "j.log").exists()


def test_a_service_that_exits_is_not_healthy_whatever_answers_its_url(tmp_path: Path, foreign_server: int) -> None:
    """The service's own process is asked before its health URL: one that exited fails the start even though
    another server (started after the port check, here simulated by a URL on a different port) answers."""
    dying = Service("judge", ("bash", "-c", "echo gone; exit 1"), f"http://127.0.0.1:{foreign_server}/health",
                    tmp_path / "j.log")  # fmt: skip
    supervisor = Supervisor(None, 30, lambda message: None, stop_grace=5)
    with supervisor:
        service, process = supervisor._launch(dying)
        process.wait(timeout=30)
        with pytest.raises(StartError) as error:
            supervisor._wait_healthy([(service, process)])
    assert str(error.value) == (
        f"the judge (PID {process.pid}) exited before it was healthy\nlast lines of {tmp_path / 'j.log'}:\ngone"
    )


def test_a_service_that_exits_while_the_trainer_runs_stops_the_trainer_with_status_3(tmp_path: Path) -> None:
    port = free_port()
    messages: list[str] = []
    with Supervisor(tmp_path / "run.pid", 60, messages.append, trainer_int_grace=5, stop_grace=5) as supervisor:
        supervisor.start([judge("judge", port, tmp_path)])
        [(_, server)] = supervisor.services
        trainer = ["bash", "-c", f"kill -KILL -- -{server.pid}; exec sleep 300"]  # the judge dies mid-run
        assert supervisor.run_trainer(trainer, {}) == EXIT_JUDGE_DOWN
        group = messages[-1].rpartition("process group ")[2].rstrip(")")
    assert messages[1:] == [
        f"error: the judge (PID {server.pid}) exited with status {128 + signal.SIGKILL}: stopping the trainer",
        f"sending SIGINT to the trainer (process group {group})",
    ]
    assert supervisor.service_down == messages[1]
    assert not group_alive(int(group)) and not port_open(port)


def test_the_trainer_is_recorded_so_that_judge_stop_stops_it_after_the_launcher_was_killed(tmp_path: Path) -> None:
    child, port = supervised("train", tmp_path)
    pid_file = tmp_path / "run" / "run.pid"
    try:
        trainer = int(child.stdout.readline().split()[0])
        judge_pid = int(pid_file.read_text().split()[0])
        assert pid_file.read_text() == f"{judge_pid} {start_time(judge_pid)}\n{trainer} {start_time(trainer)}\n"
        child.kill()  # SIGKILL: the launcher stops nothing
        child.wait(timeout=60)  # (its trainer holds the pipes open)
        assert group_alive(trainer) and group_alive(judge_pid)
        messages: list[str] = []
        stop(pid_file, messages.append, grace=5)  # what `flip-reward judge stop PID_FILE` runs
    finally:
        child.kill()
        child.communicate(timeout=60)
    assert messages == [f"stopping process group {trainer}", f"stopping process group {judge_pid}"]
    assert not group_alive(trainer) and not group_alive(judge_pid) and not port_open(port)


def test_what_the_trainer_left_outside_its_group_is_stopped_and_reaped(tmp_path: Path) -> None:
    """A trainer whose child calls setsid (its own session and group) and outlives it: stopped all the same."""
    record = tmp_path / "left.pid"
    program = (
        "import subprocess, sys\n"
        "left = subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
        "open(sys.argv[1], 'w').write(str(left.pid))\n"
    )
    messages: list[str] = []
    with Supervisor(None, 10, messages.append, trainer_int_grace=5, trainer_term_grace=5) as supervisor:
        assert supervisor.run_trainer([sys.executable, "-c", program, str(record)], {}) == 0
    left = int(record.read_text())
    try:
        assert messages == ["sending SIGTERM to 1 process(es) the trainer left outside its process group"]
        assert not psutil.pid_exists(left)  # stopped, and reaped: no zombie left in the process table
    finally:
        if psutil.pid_exists(left):
            os.kill(left, signal.SIGKILL)


def test_a_reaped_trainers_group_holding_another_users_process_is_not_signalled(tmp_path: Path) -> None:
    """Once the trainer's leader is reaped, its group is signalled only under the identity check services get."""
    record = tmp_path / "left.pid"
    command = [
        "bash", "-c", "setpriv --reuid=65534 --regid=65534 --clear-groups sleep 300 & "
        'until [ "$(stat -c %u /proc/$!)" = 65534 ]; do sleep 0.01; done; echo $! > "$0"', str(record),
    ]  # fmt: skip
    messages: list[str] = []
    with Supervisor(None, 10, messages.append, trainer_int_grace=5, trainer_term_grace=5) as supervisor:
        assert supervisor.run_trainer(command, {}) == 0
    left = int(record.read_text())
    try:
        group = os.getpgid(left)
        assert messages == [f"process group {group} now holds processes of another user: not signalled"]
        assert psutil.Process(left).status() != psutil.STATUS_ZOMBIE
    finally:
        os.kill(left, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(left, 0)  # adopted while this process was the trainer's subreaper


def test_the_signal_handlers_are_restored_when_the_block_ends(tmp_path: Path) -> None:
    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    messages: list[str] = []
    with pytest.raises(KeyboardInterrupt), Supervisor(None, 10, messages.append):
        assert signal.getsignal(signal.SIGINT) is not before[signal.SIGINT]
        signal.raise_signal(signal.SIGINT)
    assert {number: signal.getsignal(number) for number in before} == before
    assert messages == ["received SIGINT: stopping"]


def test_a_started_judge_and_check_judge_follow_one_proxy_rule(tmp_path: Path, monkeypatch) -> None:
    """With a (dead) proxy set and no no_proxy, a judge on loopback is healthy and answers check_judge: loopback
    is never asked through a proxy, by either probe."""
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{free_port()}")
    port = free_port()
    lines: list[str] = []
    with Supervisor(tmp_path / "run.pid", 30, lambda message: None, stop_grace=5) as supervisor:
        supervisor.start([judge("judge", port, tmp_path)])
        assert check_judge(f"http://127.0.0.1:{port}/v1", emit=lines.append) == 0
    assert lines == [f"judge: ok, http://127.0.0.1:{port}/v1 serves scripted"]


def test_a_service_on_this_machines_own_address_is_healthy_whatever_the_proxy(monkeypatch) -> None:
    """A server bound to this machine's outward address (a 0.0.0.0 judge) is asked directly even with a (dead) proxy
    set and no NO_PROXY: it is a process started here, so no proxy stands between."""
    import http.server
    import threading

    from flip_reward.serving.judge_fleet import first_address
    from flip_reward.serving.processes import healthy

    address = first_address()
    if address.startswith("127."):
        pytest.skip("this machine has no outward address")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{free_port()}")
    server = http.server.HTTPServer((address, 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert healthy(f"http://{address}:{server.server_port}/") is True
    finally:
        server.shutdown()
        server.server_close()


def test_other_children_of_the_supervising_process_are_left_alone(tmp_path: Path) -> None:
    """The subreaper stops and reaps only the trainer's lineage: a process this program started itself keeps
    running, and another one's exit status stays for its own wait()."""
    sleeper = subprocess.Popen(["sleep", "30"])
    quitter = subprocess.Popen(["sh", "-c", "sleep 0.5; exit 7"])
    try:
        with Supervisor(None, 0, lambda message: None) as supervisor:
            assert supervisor.run_trainer(["sh", "-c", "sleep 1"], {}) == 0
        assert sleeper.poll() is None
        assert quitter.wait(timeout=10) == 7
    finally:
        sleeper.kill()
        sleeper.wait()


def test_orphans_the_trainer_leaves_are_reaped_while_it_runs(tmp_path: Path) -> None:
    """A trainer that double-forks short helpers (adopted here as the subreaper) leaves no zombie in the supervising
    process while it trains, not only once it stops."""
    forked, go = tmp_path / "forked", tmp_path / "go"
    script = (
        f"for i in $(seq 20); do ( sleep 0.05 & ); done; echo $$ > {forked}; while [ ! -e {go} ]; do sleep 0.1; done"
    )
    counts: list[int] = []

    def watch() -> None:
        while not forked.exists() or not forked.read_text().strip():
            threading.Event().wait(0.1)
        trainer = int(forked.read_text())
        for _ in range(200):  # until the zombies are gone (each poll of the trainer reaps), at most ~20 s
            zombies = [
                child
                for child in psutil.Process().children()
                if child.status() == psutil.STATUS_ZOMBIE and os.getsid(child.pid) == trainer
            ]
            counts.append(len(zombies))
            if not zombies:
                break
            threading.Event().wait(0.1)
        go.touch()

    watcher = threading.Thread(target=watch)
    watcher.start()
    with Supervisor(None, 0, lambda message: None) as supervisor:
        assert supervisor.run_trainer(["sh", "-c", script], {}) == 0
    watcher.join()
    assert counts[-1] == 0
