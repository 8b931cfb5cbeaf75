"""The process layer: start a service's process in a session of its own, know
whether that very process still runs, stop it, measure it.

A pid file (`<run>/<name>.pid`) holds the pid and the process's start time, so a
pid reused by another process is never taken for the service. Nothing here knows
what the services are (services.py) or what to do when one dies (supervisor.py).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from .common import StackError, service_env, settings, wait_until


def pidfile(name: str):
    return settings.run / f"{name}.pid"


def _started(proc: psutil.Process) -> str:
    return f"{proc.create_time():.2f}"  # Linux counts start times in 1/100 s


# Processes this controller started: polled so that one that exits is reaped at
# once. (A zombie keeps its pid, and PostgreSQL refuses to start while the pid in
# its postmaster.pid exists.)
_children: list[subprocess.Popen] = []


def reap() -> None:
    for proc in list(_children):
        if proc.poll() is not None:
            _children.remove(proc)


def running_pid(name: str) -> int | None:
    """The pid this controller started for `name`, if that very process still runs."""
    try:
        pid, started = pidfile(name).read_text().split()
        proc = psutil.Process(int(pid))
        if _started(proc) != started:  # the pid was reused by another process
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            reap()  # a child of ours stays a zombie, its pid taken, until reaped
            return None
    except (OSError, ValueError, psutil.Error):
        return None
    return proc.pid


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def process_tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    try:
        return [pid, *(p.pid for p in psutil.Process(pid).children(recursive=True))]
    except psutil.Error:
        return [pid]


def memory_mib(pid: int, children: bool = True) -> float:
    """Proportional set size of a process and its children (shared pages counted once overall)."""
    total = 0
    for p in process_tree(pid) if children else [pid]:
        try:
            total += psutil.Process(p).memory_full_info().pss
        except psutil.Error:
            pass
    return total / 2**20


@dataclass
class Service:
    name: str
    port: int
    command: Callable[[], list[str]]
    healthy: Callable[[], bool]
    user: str | None = None  # run as this OS user (PostgreSQL refuses root)
    env: Callable[[], dict[str, str]] = dict  # extra environment, computed at start
    timeout: float = 120.0
    stop_signal: int = signal.SIGTERM
    # Restarts reuse the command line of the process they replace (Flink's start
    # scripts spend 5-8 s on a busy machine working out the JVM's arguments).
    reuse_command: bool = False
    started_at: float | None = None  # set when this run of the controller started it

    @property
    def log(self):
        return settings.logs / f"{self.name}.log"

    @property
    def command_file(self):
        return settings.run / f"{self.name}.cmdline"

    def start(self, restart: bool = False) -> None:
        settings.logs.mkdir(parents=True, exist_ok=True)
        settings.run.mkdir(parents=True, exist_ok=True)
        env = service_env(self.name) | self.env()
        command = self.command()
        if restart and self.reuse_command and self.command_file.exists():
            command = json.loads(self.command_file.read_text())
        with open(self.log, "ab") as log:
            log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} start {self.name}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                command,
                cwd=settings.home,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                user=self.user,
            )
        pidfile(self.name).write_text(f"{proc.pid} {_started(psutil.Process(proc.pid))}")
        _children.append(proc)

    def wait_healthy(self) -> None:
        def healthy() -> bool:
            if self.healthy():
                return True
            if running_pid(self.name) is None:
                raise StackError(f"{self.name} exited during start-up")
            return False

        if not wait_until(healthy, self.timeout):
            raise StackError(f"{self.name} did not become healthy within {self.timeout:.0f}s")
        if self.reuse_command:
            self._remember_command()

    def _remember_command(self) -> None:
        """Keep the running process's command line (the scripts exec the JVM: by the
        time the service answers, the process is the JVM)."""
        try:
            args = psutil.Process(running_pid(self.name)).cmdline()
        except (psutil.Error, TypeError):  # gone meanwhile: the next start uses the scripts
            self.command_file.unlink(missing_ok=True)
            return
        self.command_file.write_text(json.dumps(args))

    def stop(self, timeout: float = 30.0) -> bool:
        pid = running_pid(self.name)
        if pid is None:
            pidfile(self.name).unlink(missing_ok=True)
            return False
        os.killpg(pid, self.stop_signal)
        if not wait_until(lambda: running_pid(self.name) is None, timeout, interval=0.2):
            os.killpg(pid, signal.SIGKILL)
        pidfile(self.name).unlink(missing_ok=True)
        return True
