"""The one-shot `init` service of docker-compose.yml: the same set-up steps
`make up` runs after starting the services, against the Compose services
(addresses and passwords from the STACK_* and *_PASSWORD variables).

    python -m stack.compose_init
"""

from __future__ import annotations

import time

from . import pipeline
from .common import StackError, say
from .stackctl import (
    connect_healthy,
    create_topics,
    deploy_connectors,
    flink_tm_healthy,
    kafka_healthy,
    postgres_healthy,
    provision_databases,
)


def wait_for(name: str, healthy, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not healthy():
        if time.monotonic() > deadline:
            raise StackError(f"{name} not healthy after {timeout:.0f}s")
        time.sleep(2)
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
