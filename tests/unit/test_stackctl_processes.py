"""How the stack controller treats the processes it starts (real processes,
stand-ins for the services): a crashed one is reaped at once, so PostgreSQL
never finds its dead predecessor's pid still taken, and each service is
stopped with the signal it shuts down cleanly on."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from stack import stackctl


@pytest.fixture
def controller(tmp_path, monkeypatch):
    monkeypatch.setattr(stackctl, "RUN", tmp_path / "run")
    monkeypatch.setattr(stackctl, "LOGS", tmp_path / "logs")
    monkeypatch.setattr(stackctl, "HOME", tmp_path)
    monkeypatch.setattr(stackctl, "service_env", lambda service=None: dict(os.environ))

    def add(name: str, script: str, **kwargs) -> stackctl.Service:
        svc = stackctl.Service(name, 0, lambda: [sys.executable, "-c", script], lambda: True, **kwargs)
        monkeypatch.setitem(stackctl.SERVICES, name, svc)
        svc.start()
        return svc

    yield add
    for name in ("crasher", "postmaster"):
        if stackctl.running_pid(name):
            os.killpg(stackctl.running_pid(name), signal.SIGKILL)


def wait_gone(name: str) -> None:
    for _ in range(100):
        if stackctl.running_pid(name) is None:
            return
        time.sleep(0.1)
    raise AssertionError(f"{name} still counted as running")


def test_a_crashed_service_is_reaped_not_left_a_zombie(controller):
    controller("crasher", "import time; time.sleep(60)")
    pid = stackctl.running_pid("crasher")
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
    pid = stackctl.running_pid("postmaster")
    assert svc.stop(timeout=20) is True
    assert "fast shutdown" in svc.log.read_text()  # not killed by the SIGKILL fallback
    assert stackctl.running_pid("postmaster") is None and not Path(f"/proc/{pid}").exists()


def test_a_restart_reuses_the_command_line_of_the_process_it_replaces(controller):
    # like Flink's start scripts: a shell works out the arguments, then execs the real process
    script = (
        "import os, sys\n"
        "os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', 'worked-out-argument'])\n"
    )
    svc = controller("crasher", script, reuse_command=True)
    for _ in range(100):
        if Path(f"/proc/{stackctl.running_pid('crasher')}/cmdline").read_bytes().endswith(b"\0worked-out-argument\0"):
            break  # exec'd
        time.sleep(0.1)
    svc.wait_healthy()  # healthy: its command line is kept
    first = stackctl.running_pid("crasher")
    os.killpg(first, signal.SIGKILL)
    wait_gone("crasher")
    svc.start(restart=True)
    second = stackctl.running_pid("crasher")
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
    monkeypatch.setattr(stackctl.uuid, "uuid4", lambda: next(drawn))
    cluster_id = stackctl.kraft_cluster_id()
    assert cluster_id == base64.urlsafe_b64encode(plain.bytes).decode().rstrip("=")
    assert len(cluster_id) == 22 and len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
