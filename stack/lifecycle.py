"""The whole stack at once: `make up` (start in dependency order, set up, submit
the Flink job, deploy the connectors, start the supervisor), `make down` (the
Flink job stopped with a savepoint first) and `make reset`."""

from __future__ import annotations

import shutil

import httpx

from . import pipeline, provision
from .common import DATA, HOME, LOGS, RUN, StackError, say
from .processes import running_pid
from .services import SERVICES, await_healthy, ensure_installed, launch
from .sink import deploy_connectors, empty_serving_tables


def up(api: bool = True) -> None:
    """Start what is not running and return when everything is healthy (the caller holds control_lock)."""
    ensure_installed()
    for d in (DATA, LOGS, RUN):
        d.mkdir(parents=True, exist_ok=True)
    launch("postgres", provision.init_postgres)
    # independent of each other: start together, wait in dependency order
    launch("kafka", provision.format_kafka)
    launch("flink-jobmanager", provision.make_flink_dirs)
    launch("flink-taskmanager")
    launch("flink-sql-gateway")
    await_healthy("postgres")
    provision.provision_databases()
    launch("registry")  # keeps its schemas in PostgreSQL
    if api:
        launch("api")  # needs only PostgreSQL
    await_healthy("kafka")
    provision.create_topics()
    launch("connect")
    # the job needs Kafka, the registry and Flink; Connect goes on starting meanwhile
    for name in ("registry", "flink-jobmanager", "flink-taskmanager", "flink-sql-gateway"):
        await_healthy(name)
    job = pipeline.ensure_running(reprocess_hook=empty_serving_tables)
    say(f"[green]✓[/] Flink job {job['name']} running")
    await_healthy("connect")
    deploy_connectors()
    say("[green]✓[/] connectors running")
    if api:
        await_healthy("api")
    launch("supervisor")


def down() -> None:
    """Stop every service, the Flink job with a savepoint first (the caller stopped
    the supervisor, then took control_lock)."""
    if running_pid("flink-jobmanager"):
        try:
            pipeline.stop_for_shutdown()
        except (StackError, httpx.HTTPError) as e:
            say(f"[yellow]flink: {e}; the next `up` reprocesses from the first post[/]")
    for svc in reversed(list(SERVICES.values())):
        if svc.stop():
            say(f"stopped {svc.name}")


def reset() -> None:
    """Stop everything and delete all pipeline data (topics, counts, state, logs). Installs stay."""
    for svc in reversed(list(SERVICES.values())):
        svc.stop(timeout=10)
    for d in (DATA, LOGS, RUN, HOME / "rejects"):
        shutil.rmtree(d, ignore_errors=True)
