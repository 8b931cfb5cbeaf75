"""The one-shot `init` service of docker-compose.yml: the same set-up steps
`make up` runs after starting the services, against the Compose services
(addresses and passwords from the STACK_* and *_PASSWORD variables).

    python -m stack.compose_init
"""

from __future__ import annotations

from . import pipeline
from .common import StackError, say, wait_until
from .provision import create_topics, provision_databases
from .services import connect_healthy, flink_tm_healthy, kafka_healthy, postgres_healthy
from .sink import deploy_connectors


def wait_for(name: str, healthy, timeout: float = 300) -> None:
    if not wait_until(healthy, timeout, interval=2):
        raise StackError(f"{name} not healthy after {timeout:.0f}s")
    say(f"[green]✓[/] {name}")


def main() -> None:
    wait_for("postgres", postgres_healthy)
    provision_databases()
    wait_for("kafka", kafka_healthy)
    create_topics()
    wait_for("flink", flink_tm_healthy)
    job = pipeline.ensure_running()
    say(f"[green]✓[/] Flink job {job['name']} running")
    wait_for("connect", connect_healthy)
    deploy_connectors()
    say("[green]✓[/] connectors running")


if __name__ == "__main__":
    main()
