"""The supervisor (started by `make up`, stopped by `make down`): like Docker's
restart policy, it restarts a service whose process died, resumes the Flink job
when it is gone and restarts failed connector tasks; and, because a process that
is alive is not one that works, it watches each stage's progress (progress.py)
and restarts a stage that has stalled.

    python -m stack.supervisor
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import httpx
import typer
from rich.markup import escape

from . import pipeline, progress
from .common import CONNECT_URL, FLINK_URL, KAFKA, StackError, http, say, settings, wait_until
from .processes import pidfile, reap, running_pid
from .services import (
    BEFORE,
    SERVICES,
    await_healthy,
    connect_healthy,
    control_lock,
    flink_jm_healthy,
    flink_tm_healthy,
    launch,
    postgres_healthy,
)
from .sink import connector_states, connector_topics, empty_serving_tables, restart_failed_connector_tasks

# seconds without progress, while work waits, before a stage is called stalled
STALL_AFTER = settings.stall_after_seconds
PROGRESS_FILE = settings.run / "progress.json"  # the latest verdicts, read by `make status`


# How long a TaskManager may take to register with a restarted JobManager: its
# heartbeat.timeout (stack/flink/config.yaml, 10 s) and a margin.
TM_REREGISTER_S = 15


def replace_taskmanager_unless_registered() -> None:
    """After a JobManager restart: the TaskManager registers with the new one by itself
    once its heartbeat time-out has passed; one that has not by then is replaced (a
    new JVM, cold)."""
    if wait_until(flink_tm_healthy, TM_REREGISTER_S) or not running_pid("flink-jobmanager"):
        return
    try:
        SERVICES["flink-taskmanager"].stop(timeout=10)
        launch("flink-taskmanager", restart=True)
        await_healthy("flink-taskmanager")
        say("[green]✓[/] restarted flink-taskmanager (it did not register with the new JobManager)")
    except StackError as e:  # the next rounds restart it
        say(f"[red]flink-taskmanager: {escape(str(e))}[/]")


def heal() -> list[str]:
    """One supervisor round: restart every crashed service (its pid file is there, its
    process is not: `down` removes pid files), resume the Flink job from its latest
    checkpoint when it is gone, restart failed connector tasks. Returns what it did."""
    done = []
    for svc in SERVICES.values():
        if svc.name == "supervisor" or not pidfile(svc.name).exists() or running_pid(svc.name):
            continue
        t0 = time.monotonic()
        say(f"[yellow]{svc.name} is not running: restarting it[/]")
        launch(svc.name, BEFORE.get(svc.name), restart=True)
        await_healthy(svc.name)
        done.append(f"restarted {svc.name} in {time.monotonic() - t0:.1f}s")
        if svc.name == "flink-jobmanager":
            # meanwhile the job is submitted below: it waits for the TaskManager's slots
            threading.Thread(target=replace_taskmanager_unless_registered, daemon=True).start()
    if running_pid("flink-jobmanager") and flink_jm_healthy() and pipeline.live_job() is None:
        # (a roll-out in progress holds the lock and is left alone)
        job = pipeline.ensure_running(reprocess_hook=empty_serving_tables, wait=False)
        if job:
            done.append(f"resumed Flink job {job['jid']} (it was gone)")
    if running_pid("connect") and connect_healthy():
        done += [f"restarted failed tasks of connector {n}" for n in restart_failed_connector_tasks()]
    for line in done:
        say(f"[green]✓[/] {line}")
    return done


def pipeline_stages() -> list[progress.Stage]:
    sinks = [progress.sink_stage(name, topics) for name, topics in connector_topics().items()]
    return [progress.flink_stage(flink_url=FLINK_URL), *sinks]


def why_stalled(stage: progress.Stage) -> str:
    """What the stage's own service says, to name the fault."""
    try:
        if stage.connector is None:  # the Flink job
            job = pipeline.live_job()
            if job is None:
                return "no Flink job is running"
            if job["state"] != "RUNNING":
                return f"Flink job {job['state']}: {pipeline.root_cause(job['jid'])[:300]}"
            return "the Flink job is RUNNING but no checkpoint commits its progress (a task is blocked)"
        if not postgres_healthy():
            return "PostgreSQL does not answer"
        state = connector_states().get(stage.connector, "not deployed")
        return (
            f"connector {stage.connector} {state}"
            if state != "RUNNING"
            else f"the tasks of connector {stage.connector} are RUNNING but write nothing (a task is blocked)"
        )
    except (httpx.HTTPError, KeyError, ValueError) as e:
        return f"its service does not answer ({type(e).__name__})"


def heal_stall(stage: progress.Stage) -> str | None:
    """Restart a stalled stage: the Flink job from its latest checkpoint, or the
    connector's tasks. Left alone: a job Flink is already restarting, a sink whose
    database is away (the service checks handle those). Returns what it did."""
    if stage.connector is None:  # the Flink job
        job = pipeline.live_job()
        if job is None or job["state"] != "RUNNING":
            return None
        detail = http.get(f"{FLINK_URL}/jobs/{job['jid']}", timeout=5).json()
        tasks_started = max(v["start-time"] for v in detail["vertices"]) / 1000
        if any(v["status"] != "RUNNING" for v in detail["vertices"]) or time.time() - tasks_started < STALL_AFTER:
            return None  # still deploying or restoring its state (a big state takes a while): not blocked
        with pipeline.rollout_lock(pipeline.Target(), wait=False) as mine:
            if not mine:  # a roll-out is in progress
                return None
            how = "cancelled"
            if not pipeline.cancel(job["jid"], timeout=5):
                # a task blocked where an interrupt cannot reach it (a socket read):
                # only its process going away ends it
                how = "killed its TaskManager (the job did not cancel within 5 s)"
                tm = running_pid("flink-taskmanager")
                if tm:
                    os.killpg(tm, signal.SIGKILL)
                    wait_until(lambda: running_pid("flink-taskmanager") is None, 10)
                launch("flink-taskmanager", restart=True)
                pipeline.wait_ended(job["jid"], timeout=60)  # the JobManager notices within seconds
            new = pipeline._ensure_running(pipeline.Target(), empty_serving_tables)  # (the lock is ours)
        return (
            f"{how} the Flink job {job['jid']}, resumed it from its latest checkpoint as {new['jid'] if new else '?'}"
        )
    if not postgres_healthy():
        return None
    http.post(f"{CONNECT_URL}/connectors/{stage.connector}/restart", params={"includeTasks": "true"}, timeout=10)
    return f"restarted the tasks of connector {stage.connector}"


class Guard:
    """The supervisor's eye on progress: a verdict per stage each round, written to
    PROGRESS_FILE. A stage stalled for STALL_AFTER seconds is logged and healed, at
    most once per STALL_AFTER seconds (a restarted stage gets time to move)."""

    def __init__(self) -> None:
        self.watch = progress.Watch(KAFKA, STALL_AFTER)
        self.heals: dict[str, int] = {}
        self.last_heal: dict | None = None
        self.acted_at: dict[str, float] = {}

    def round(self) -> list[progress.Verdict]:
        checked = [(stage, self.watch.check(stage)) for stage in pipeline_stages()]
        stalled = []
        for stage, v in checked:
            if v.state == "stalled" and stage.connector:
                v.paused_if(connector_states().get(stage.connector))
            if v.state == "stalled":
                v.message += f"; {why_stalled(stage)}"
                stalled.append((stage, v))
        verdicts = [v for _, v in checked]
        self._publish(verdicts)  # first: a heal can take a minute
        for stage, v in stalled:
            if time.time() - self.acted_at.get(stage.group, 0) < STALL_AFTER:
                continue
            self.acted_at[stage.group] = time.time()
            say(f"[red]stalled: {v.stage}: {escape(v.message)}[/]")
            self._publish(verdicts, healing=v.stage)
            action = heal_stall(stage)
            if action:
                self.heals[v.stage] = self.heals.get(v.stage, 0) + 1
                self.last_heal = {"stage": v.stage, "at": time.time(), "why": v.message, "action": action}
                say(f"[green]✓[/] healed {v.stage}: {escape(action)}")
            self._publish(verdicts)
        return verdicts

    def _publish(self, verdicts: list[progress.Verdict], healing: str | None = None) -> None:
        PROGRESS_FILE.parent.mkdir(parents=True, exist_ok=True)
        tmp = PROGRESS_FILE.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "checked_at": time.time(),
                    "stall_after": STALL_AFTER,
                    "healing": healing,
                    "stages": [v.to_dict() for v in verdicts],
                    "heals": self.heals,
                    "last_heal": self.last_heal,
                },
                indent=2,
            )
        )
        tmp.replace(PROGRESS_FILE)


def run(interval: float = 1.0) -> None:
    """Watch the stack (started by `up`, stopped by `down`): restart what crashes, like
    Docker's restart policy, and put the pipeline back where it was."""
    say(f"supervisor watching the stack (a stage is stalled after {STALL_AFTER:.0f} s without progress)")
    guard = Guard()
    while True:
        reap()
        with control_lock(wait=False) as mine:
            if mine:
                try:
                    heal()
                    guard.round()
                except Exception as e:  # noqa: BLE001 - whatever happened, the supervisor must go on
                    say(f"[red]supervisor: {type(e).__name__}: {e}[/] (trying again)")
        time.sleep(interval)


def main(interval: float = typer.Option(1.0, help="seconds between rounds")) -> None:
    """Watch the stack: restart what crashes or stalls."""
    run(interval)


if __name__ == "__main__":
    typer.run(main)
