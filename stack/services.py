"""The services of the stack: how each one starts (its command line, from the
configuration file under stack/<service>/), how to tell it works (a health check
that asks it something, not only whether its process is alive), and starting or
stopping one by name."""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Callable

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_fixed

from . import provision
from .common import (
    API_URL,
    CONF,
    CONNECT_URL,
    DATA,
    DIST,
    FLINK_URL,
    GATEWAY,
    KAFKA,
    PG_BIN,
    PG_PORT,
    REGISTRY_URL,
    RUN,
    StackError,
    _tail,
    file_lock,
    flink_env,
    flink_home,
    http,
    http_ok,
    java,
    java21,
    pg_connect,
    say,
)
from .processes import Service, port_open, running_pid

# --------------------------------------------------------------------------- health checks


def postgres_healthy() -> bool:
    try:
        with pg_connect() as conn:
            conn.execute("SELECT 1")
        return True
    except Exception:
        return False


def kafka_healthy() -> bool:
    from confluent_kafka.admin import AdminClient

    if not port_open(9092):
        return False
    try:
        md = AdminClient({"bootstrap.servers": KAFKA}).list_topics(timeout=3)
        return len(md.brokers) > 0
    except Exception:
        return False


def flink_jm_healthy() -> bool:
    return http_ok(f"{FLINK_URL}/config")


def sql_gateway_healthy() -> bool:
    return http_ok(f"{GATEWAY}/info")


def flink_tm_healthy() -> bool:
    try:
        return http.get(f"{FLINK_URL}/overview", timeout=2.0).json().get("taskmanagers", 0) > 0
    except (httpx.HTTPError, ValueError):
        return False


def connect_healthy() -> bool:
    try:
        plugins = http.get(f"{CONNECT_URL}/connector-plugins", timeout=3.0).json()
    except (httpx.HTTPError, ValueError):
        return False
    return any(p.get("class") == "io.debezium.connector.jdbc.JdbcSinkConnector" for p in plugins)


# --------------------------------------------------------------------------- the service table


def flink_dynamic_props() -> list[str]:
    """Absolute paths, which config.yaml cannot know, as `-D key=value` pairs
    (jobmanager.sh reads a bare first argument as a host name)."""
    props = {
        "execution.checkpointing.dir": f"file://{DATA / 'flink' / 'checkpoints'}",
        "execution.checkpointing.savepoint-dir": f"file://{DATA / 'flink' / 'savepoints'}",
        "io.tmp.dirs": str(DATA / "flink" / "tmp"),
        "web.tmpdir": str(DATA / "flink" / "web"),
    }
    return [arg for k, v in props.items() for arg in ("-D", f"{k}={v}")]


def services() -> list[Service]:
    kafka_cp = str(DIST / "kafka" / "libs" / "*")
    log4j = f"-Dlog4j2.configurationFile={CONF / 'kafka' / 'log4j2.properties'}"
    locale = ["-Duser.language=en", "-Duser.country=US", "-Dfile.encoding=UTF-8"]
    return [
        Service(
            "postgres",
            PG_PORT,
            lambda: [str(PG_BIN / "postgres"), "-D", str(DATA / "postgres"), "-c", "unix_socket_directories="],
            # SIGINT is PostgreSQL's fast shutdown; SIGTERM (smart) would wait for
            # the registry's, Connect's and the API's pooled connections to close
            postgres_healthy,
            user=provision.pg_user(),
            timeout=60,
            stop_signal=signal.SIGINT,
        ),
        Service(
            "kafka",
            9092,
            lambda: [
                java(),
                "-Xms512m",
                "-Xmx512m",
                *locale,
                log4j,
                "-cp",
                kafka_cp,
                "kafka.Kafka",
                str(CONF / "kafka" / "server.properties"),
            ],
            kafka_healthy,
            timeout=90,
        ),
        Service(
            "registry",
            8081,
            lambda: [
                java21(),
                "-Xmx384m",
                *locale,
                f"-Dquarkus.config.locations={CONF / 'registry' / 'application.properties'}",
                "-jar",
                str(DIST / "registry" / "quarkus-run.jar"),
            ],
            lambda: http_ok(f"{REGISTRY_URL}/apis/ccompat/v7/subjects"),
            timeout=120,
        ),
        Service(
            "connect",
            8083,
            lambda: [
                java(),
                "-Xms256m",
                "-Xmx768m",
                *locale,
                log4j,
                "-cp",
                kafka_cp,
                "org.apache.kafka.connect.cli.ConnectDistributed",
                str(CONF / "connect" / "worker.properties"),
            ],
            connect_healthy,
            timeout=180,
        ),
        Service(
            "flink-jobmanager",
            8082,
            lambda: ["bash", str(flink_home() / "bin" / "jobmanager.sh"), "start-foreground", *flink_dynamic_props()],
            flink_jm_healthy,
            env=flink_env,
            timeout=120,
            reuse_command=True,
        ),
        Service(
            "flink-taskmanager",
            0,
            lambda: ["bash", str(flink_home() / "bin" / "taskmanager.sh"), "start-foreground", *flink_dynamic_props()],
            flink_tm_healthy,
            env=flink_env,
            timeout=120,
            reuse_command=True,
        ),
        Service(
            "flink-sql-gateway",
            8084,
            lambda: ["bash", str(flink_home() / "bin" / "sql-gateway.sh"), "start-foreground"],
            sql_gateway_healthy,
            env=flink_env,
            timeout=120,
            reuse_command=True,
        ),
        Service(
            "api",
            8000,
            # uvicorn with the API's own settings (api/core/config.py: workers, limits)
            lambda: [sys.executable, "-m", "api"],
            lambda: http_ok(f"{API_URL}/healthz"),
            timeout=60,
        ),
        # restarts whatever above crashes, resumes the Flink job, restarts failed connector tasks
        Service(
            "supervisor",
            0,
            lambda: [sys.executable, "-m", "stack.supervisor"],
            lambda: running_pid("supervisor") is not None,
            timeout=10,
        ),
    ]


SERVICES = {s.name: s for s in services()}
# one-time set-up a service needs before its (re)start
BEFORE: dict[str, Callable[[], None]] = {
    "postgres": provision.init_postgres,
    "kafka": provision.format_kafka,
    "flink-jobmanager": provision.make_flink_dirs,
}


# --------------------------------------------------------------------------- starting and stopping


@contextlib.contextmanager
def control_lock(wait: bool = True):
    """One controller at a time: `up`/`down` and each supervisor round."""
    with file_lock(RUN / "control.lock", wait) as taken:
        yield taken


def ensure_installed() -> None:
    missing = [
        p
        for p in (
            DIST / "kafka" / "libs",
            DIST / "registry" / "quarkus-run.jar",
            DIST / "connect-plugins",
            PG_BIN / "postgres",
        )
        if not p.exists()
    ]
    if missing:
        raise StackError("not installed: " + ", ".join(map(str, missing)) + " (run `make install`)")
    flink_home()


def launch(name: str, before: Callable[[], None] | None = None, restart: bool = False) -> None:
    """Start a service unless this controller already runs it (`restart`: the
    supervisor replaces a process that died)."""
    svc = SERVICES[name]
    if running_pid(name):
        return
    if svc.port and port_open(svc.port):
        raise StackError(f"{name}: port 127.0.0.1:{svc.port} is taken by another process (not started by this stack)")
    if before:
        before()
    svc.start(restart)
    svc.started_at = time.monotonic()


def await_healthy(name: str) -> None:
    svc = SERVICES[name]
    try:
        svc.wait_healthy()
    except StackError as e:
        raise StackError(f"{e}\n--- last lines of {svc.log}:\n{_tail(svc.log)}") from None
    if svc.started_at is None:
        say(f"[green]✓[/] {name} already running")
    else:
        say(f"[green]✓[/] {name} healthy")


def stop_service(name: str) -> bool:
    """Stop one service on purpose: the supervisor leaves it stopped (no pid file)."""
    with control_lock():
        return SERVICES[name].stop()


def start_service(name: str, attempts: int = 3) -> None:
    """Start one service and wait until it is healthy, trying again a moment later
    (e.g. PostgreSQL: its crashed predecessor's pid not yet gone)."""

    def start() -> None:
        launch(name, BEFORE.get(name))
        await_healthy(name)

    with control_lock():
        Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_fixed(2),
            retry=retry_if_exception_type(StackError),
            reraise=True,
        )(start)
