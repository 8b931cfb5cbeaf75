"""How the process layer (stack/processes.py) treats the processes it starts (real processes,
stand-ins for the services): a crashed one is reaped at once, so PostgreSQL
never finds its dead predecessor's pid still taken, and each service is
stopped with the signal it shuts down cleanly on."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import pytest

from stack import processes, provision
from stack.processes import Service, running_pid


@pytest.fixture
def controller(monkeypatch):
    # (the stack's home is a temporary folder in the unit tier: tests/unit/conftest.py)
    monkeypatch.setattr(processes, "service_env", lambda service=None: dict(os.environ))

    def add(name: str, script: str, **kwargs) -> Service:
        svc = Service(name, 0, lambda: [sys.executable, "-c", script], lambda: True, **kwargs)
        svc.start()
        return svc

    yield add
    for name in ("crasher", "postmaster"):
        if running_pid(name):
            os.killpg(running_pid(name), signal.SIGKILL)


def wait_gone(name: str) -> None:
    for _ in range(100):
        if running_pid(name) is None:
            return
        time.sleep(0.1)
    raise AssertionError(f"{name} still counted as running")


def test_a_crashed_service_is_reaped_not_left_a_zombie(controller):
    controller("crasher", "import time; time.sleep(60)")
    pid = running_pid("crasher")
    assert pid
    os.killpg(pid, signal.SIGKILL)
    wait_gone("crasher")
    # reaped: the pid is free again (a zombie would keep /proc/<pid>, and its pid)
    assert not Path(f"/proc/{pid}").exists()


def test_a_service_is_stopped_with_its_own_signal(controller):
    # like PostgreSQL: SIGINT is the fast shutdown; SIGTERM would wait (here: forever)
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "def bye(*_): print('fast shutdown', flush=True); sys.exit(0)\n"
        "signal.signal(signal.SIGINT, bye)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    svc = controller("postmaster", script, stop_signal=signal.SIGINT)
    for _ in range(100):
        if "ready" in svc.log.read_text():
            break
        time.sleep(0.1)
    pid = running_pid("postmaster")
    assert svc.stop(timeout=20) is True
    assert "fast shutdown" in svc.log.read_text()  # not killed by the SIGKILL fallback
    assert running_pid("postmaster") is None and not Path(f"/proc/{pid}").exists()


def test_a_restart_reuses_the_command_line_of_the_process_it_replaces(controller):
    # like Flink's start scripts: a shell works out the arguments, then execs the real process
    script = (
        "import os, sys\n"
        "os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', 'worked-out-argument'])\n"
    )
    svc = controller("crasher", script, reuse_command=True)
    for _ in range(100):
        if Path(f"/proc/{running_pid('crasher')}/cmdline").read_bytes().endswith(b"\0worked-out-argument\0"):
            break  # exec'd
        time.sleep(0.1)
    svc.wait_healthy()  # healthy: its command line is kept
    first = running_pid("crasher")
    os.killpg(first, signal.SIGKILL)
    wait_gone("crasher")
    svc.start(restart=True)
    second = running_pid("crasher")
    assert second != first
    for _ in range(50):  # a process just forked may not have exec'd yet (empty or the parent's command line)
        args = Path(f"/proc/{second}/cmdline").read_bytes().split(b"\0")[:-1]
        if args and args[-1] == b"worked-out-argument":
            break
        time.sleep(0.1)
    assert args[-1] == b"worked-out-argument" and b"execv" not in b" ".join(args)  # the JVM's, not the script's


def test_a_kraft_cluster_id_never_starts_with_a_dash(monkeypatch):
    """One random id in 64 began with "-" (seen: -BUf_LmbQEiey1ytVsr50g), which Kafka's
    StorageTool read as an option: `make up` failed on a fresh data folder."""
    import base64
    import uuid

    dashed = uuid.UUID(bytes=bytes([0xF8]) + bytes(15))  # URL-safe base64 of 0xF8...: "-A..."
    assert base64.urlsafe_b64encode(dashed.bytes).decode().startswith("-")
    plain = uuid.UUID(int=1)
    drawn = iter([dashed, dashed, plain])
    monkeypatch.setattr(provision.uuid, "uuid4", lambda: next(drawn))
    cluster_id = provision.kraft_cluster_id()
    assert cluster_id == base64.urlsafe_b64encode(plain.bytes).decode().rstrip("=")
    assert len(cluster_id) == 22 and len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_a_pid_reused_by_another_process_is_not_the_service(controller):
    controller("crasher", "import time; time.sleep(60)")
    pid = running_pid("crasher")
    started = processes.pidfile("crasher").read_text().split()[1]
    processes.pidfile("crasher").write_text(f"{pid} {float(started) - 1:.2f}")  # the same pid, started earlier
    assert running_pid("crasher") is None
    os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def open_tmp():
    """A folder every user can reach (pytest's own tmp_path is under a folder closed to others)."""
    path = Path(tempfile.mkdtemp(dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_a_data_folder_the_database_user_cannot_reach_is_named(open_tmp):
    """As root, PostgreSQL runs as `postgres`; a clone under a folder closed to
    others (root's home, a fresh mktemp -d) made initdb fail with "Permission denied"."""
    closed = open_tmp / "closed"
    (closed / "repo").mkdir(parents=True)
    closed.chmod(0o700)
    nobody = "nobody"  # any user that is not the folder's owner, and in none of its groups
    assert provision.closed_to(nobody, closed / "repo" / ".stack" / "data" / "postgres") == closed
    closed.chmod(0o711)
    assert provision.closed_to(nobody, closed / "repo" / ".stack" / "data" / "postgres") is None


def test_make_up_stops_at_once_where_the_database_user_cannot_reach_its_data(open_tmp, monkeypatch):
    if os.geteuid() != 0 or provision.pg_user() is None:
        pytest.skip("only root runs PostgreSQL as another user")
    pytest.importorskip("pwd").getpwnam("postgres")  # the user make install's PostgreSQL package made
    home = open_tmp / "closed" / ".stack"
    home.mkdir(parents=True)
    (open_tmp / "closed").chmod(0o700)
    monkeypatch.setattr(provision, "DATA", home / "data")
    with pytest.raises(provision.StackError) as e:
        provision.init_postgres()
    assert f"'postgres' cannot enter {open_tmp / 'closed'} (mode drwx------)" in str(e.value)
    assert "STACK_HOME=" in str(e.value) and f"chmod o+x {open_tmp / 'closed'}" in str(e.value)
    assert not (home / "data" / "postgres").exists()
