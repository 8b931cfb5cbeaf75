"""The sink: Kafka Connect's connectors (connectors/*.json), deployed with curl,
their state, their restarts, and how far behind the count topics they are."""

from __future__ import annotations

import json
import subprocess

import httpx

from . import pipeline, progress
from .common import CONNECT_URL, KAFKA, REPO, StackError, http, say, service_env, serving_db, wait_until

CONNECTORS = REPO / "connectors"


def connector_topics() -> dict[str, list[str]]:
    """Each connector (connectors/<name>.json) and the topics it reads."""
    return {p.stem: json.loads(p.read_text())["topics"].split(",") for p in sorted(CONNECTORS.glob("*.json"))}


def connector_status(name: str, timeout: float = 10) -> dict:
    """Kafka Connect's status of one connector (the stack's Connect)."""
    return progress.connector_status(CONNECT_URL, name, http, timeout)


def connector_states() -> dict[str, str]:
    """Every deployed connector's state (progress.connector_state)."""
    return progress.connector_states(CONNECT_URL, http)


def deploy_connectors(timeout: float = 90) -> None:
    """connectors/deploy.sh PUTs every connectors/*.json with curl; then wait until each task runs."""
    env = service_env() | {"CONNECT_URL": CONNECT_URL}
    subprocess.run(["bash", str(CONNECTORS / "deploy.sh")], check=True, env=env, stdout=subprocess.DEVNULL)
    states: dict[str, str] = {}

    def running() -> bool:
        for name in connector_topics():
            try:
                states[name] = progress.connector_state(connector_status(name, timeout=5), trace=True)
            except (httpx.HTTPError, KeyError, ValueError) as e:
                states[name] = f"unknown ({e})"
        if any(s.startswith("FAILED") for s in states.values()):
            raise StackError("connectors not running: " + ", ".join(f"{k}={v}" for k, v in states.items()))
        return all(s == "RUNNING" for s in states.values())

    if not wait_until(running, timeout, interval=1):
        raise StackError("connectors not running: " + ", ".join(f"{k}={v}" for k, v in states.items()))


def restart_failed_connector_tasks() -> list[str]:
    """Connect never restarts a FAILED task by itself (e.g. after the database was away too long)."""
    restarted = []
    for name, state in connector_states().items():
        if state.startswith("FAILED"):
            http.post(
                f"{CONNECT_URL}/connectors/{name}/restart",
                params={"includeTasks": "true", "onlyFailed": "true"},
                timeout=10,
            )
            restarted.append(name)
    return restarted


def sink_lag() -> int:
    """Committed records in the count topics that the sink connectors have not consumed yet."""
    return sum(progress.consumer_lag(KAFKA, f"connect-{name}", topics) for name, topics in connector_topics().items())


def empty_serving_tables() -> None:
    """Before a reprocess rebuilds the counts: let the sink finish what the old job
    wrote, then empty the tables (so words a new version no longer counts disappear)."""
    wait_until(lambda: sink_lag() == 0, 60, interval=1)
    with serving_db("pipeline") as conn:
        conn.execute("TRUNCATE " + ", ".join((*pipeline.SERVING_TABLES, *pipeline.DERIVED_TABLES)))
    say("[bold]postgres[/]: serving tables emptied for the reprocess")
