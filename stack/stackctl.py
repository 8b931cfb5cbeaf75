"""Local stack controller: every service of the pipeline as a local process.

    stackctl up       start what is not running, wait for real health checks,
                      submit the Flink job and deploy the connectors
    stackctl down     stop what this controller started (Flink job stopped
                      with a savepoint, resumed from it by the next `up`)
    stackctl status   one line per service
    stackctl logs     tail of each service's log
    stackctl reset    down, then delete all pipeline data (keeps installs)
    stackctl supervise  (started by `up`) restart crashed services, resume the job
    stackctl stop/start SERVICE   one service on purpose (the supervisor leaves it)
    stackctl connectors / pipeline-apply / pipeline-status / pipeline-render

Each service's configuration is a file under stack/<service>/; data, logs,
pid files and generated secrets live under the stack home (.stack/ by default,
git-ignored). Everything binds to 127.0.0.1.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import typer
from rich.markup import escape

from . import pipeline, progress
from .common import (
    API_URL,
    CONF,
    CONNECT_URL,
    DATA,
    DIST,
    FLINK_URL,
    GATEWAY,
    HOME,
    KAFKA,
    LOGS,
    PG_BIN,
    PG_PORT,
    REGISTRY_URL,
    REPO,
    RUN,
    SERVING_DB,
    StackError,
    _tail,
    console,
    file_lock,
    flink_env,
    flink_home,
    http,
    http_ok,
    java,
    java21,
    pg_connect,
    private_file,
    say,
    secret,
    service_env,
)

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


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
            reap()  # a child of ours stays a zombie, its pid taken, until reaped
            return None
    except OSError:
        return None
    return pid


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


# Processes this controller started: polled so that one that exits is reaped at
# once. (A zombie keeps its pid, and PostgreSQL refuses to start while the pid in
# its postmaster.pid exists.)
_children: list[subprocess.Popen] = []


def reap() -> None:
    for proc in list(_children):
        if proc.poll() is not None:
            _children.remove(proc)


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
    def log(self) -> Path:
        return LOGS / f"{self.name}.log"

    @property
    def command_file(self) -> Path:
        return RUN / f"{self.name}.cmdline"

    def start(self, restart: bool = False) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        RUN.mkdir(parents=True, exist_ok=True)
        env = service_env(self.name) | self.env()
        command = self.command()
        if restart and self.reuse_command and self.command_file.exists():
            command = json.loads(self.command_file.read_text())
        with open(self.log, "ab") as log:
            log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} start {self.name}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                command,
                cwd=HOME,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                user=self.user,
            )
        _pidfile(self.name).write_text(f"{proc.pid} {_start_time(proc.pid)}")
        _children.append(proc)

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.healthy():
                if self.reuse_command:
                    self._remember_command()
                return
            if running_pid(self.name) is None:
                raise StackError(f"{self.name} exited during start-up")
            time.sleep(0.5)
        raise StackError(f"{self.name} did not become healthy within {self.timeout:.0f}s")

    def _remember_command(self) -> None:
        """Keep the running process's command line (the scripts exec the JVM: by the
        time the service answers, the process is the JVM)."""
        try:
            args = Path(f"/proc/{running_pid(self.name)}/cmdline").read_bytes().split(b"\0")[:-1]
        except OSError:  # gone meanwhile: the next start uses the scripts
            self.command_file.unlink(missing_ok=True)
            return
        self.command_file.write_text(json.dumps([a.decode() for a in args]))

    def stop(self, timeout: float = 30.0) -> bool:
        pid = running_pid(self.name)
        if pid is None:
            _pidfile(self.name).unlink(missing_ok=True)
            return False
        os.killpg(pid, self.stop_signal)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and running_pid(self.name):
            time.sleep(0.2)
        if running_pid(self.name):
            os.killpg(pid, signal.SIGKILL)
        _pidfile(self.name).unlink(missing_ok=True)
        return True


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


# --------------------------------------------------------------------------- service definitions


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
            "postgres",
            PG_PORT,
            lambda: [str(PG_BIN / "postgres"), "-D", str(DATA / "postgres"), "-c", "unix_socket_directories="],
            # SIGINT is PostgreSQL's fast shutdown; SIGTERM (smart) would wait for
            # the registry's, Connect's and the API's pooled connections to close
            postgres_healthy,
            user=pg_user(),
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
            lambda: [
                sys.executable,
                "-m",
                "uvicorn",
                "api.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                "8000",
                "--app-dir",
                str(REPO),
                "--no-access-log",
                # connections at once (a page holds two: its live stream and its fetches;
                # API_MAX_STREAMS is 2,000): more get a 503
                "--limit-concurrency",
                "4000",
            ],
            lambda: http_ok(f"{API_URL}/healthz"),
            timeout=60,
        ),
        # restarts whatever above crashes, resumes the Flink job, restarts failed connector tasks
        Service(
            "supervisor",
            0,
            lambda: [sys.executable, "-m", "stack.stackctl", "supervise"],
            lambda: running_pid("supervisor") is not None,
            timeout=10,
        ),
    ]


SERVICES = {s.name: s for s in services()}
# one-time set-up a service needs before its (re)start
BEFORE: dict[str, Callable[[], None]] = {}


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
    pwfile.unlink(missing_ok=True)
    private_file(pwfile, secret("postgres_password"))
    user = pg_user()
    if user:
        shutil.chown(pgdata, user)
        shutil.chown(pwfile, user)
    pgdata.chmod(0o700)
    try:
        subprocess.run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(pgdata),
                "-U",
                "postgres",
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            user=user,
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
    from psycopg import sql

    roles = {
        "pipeline": "pipeline_db_password",  # the sink: owns and writes the serving tables
        "registry": "registry_db_password",  # the schema registry's own storage
        "api_reader": "api_db_password",  # the API: SELECT only
    }
    with pg_connect() as conn:
        for role, pw in roles.items():
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            # PostgreSQL cannot bind a password and logs a failed statement: it
            # gets the SCRAM verifier libpq computes here, never the password
            verifier = conn.pgconn.encrypt_password(secret(pw).encode(), role.encode(), b"scram-sha-256").decode()
            conn.execute(
                sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(
                    sql.SQL("ALTER" if exists else "CREATE"), sql.Identifier(role), sql.Literal(verifier)
                )
            )
        for db, owner in ((SERVING_DB, "pipeline"), ("registry", "registry")):
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone():
                conn.execute(f"CREATE DATABASE {db} OWNER {owner}")
    with pg_connect(db=SERVING_DB) as conn:  # an extension is the superuser's to create
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    with pg_connect("pipeline", "pipeline_db_password", SERVING_DB) as conn:
        for script in sorted((REPO / "db").glob("*.sql")):
            conn.execute(script.read_text())


def kraft_cluster_id() -> str:
    """A random KRaft cluster id (16 bytes, URL-safe base64, as Kafka's own), never
    starting with "-": StorageTool would read such an id as an option and fail."""
    while (cluster_id := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"):
        pass
    return cluster_id


def format_kafka() -> None:
    logdir = DATA / "kafka"
    if (logdir / "meta.properties").exists():
        return
    say("[bold]kafka[/]: formatting KRaft storage")
    logdir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            java(),
            "-cp",
            str(DIST / "kafka" / "libs" / "*"),
            "kafka.tools.StorageTool",
            "format",
            "-t",
            kraft_cluster_id(),
            "-c",
            str(CONF / "kafka" / "server.properties"),
        ],
        cwd=HOME,
        check=True,
        stdout=subprocess.DEVNULL,
        env=service_env() | {"KAFKA_LOG4J_OPTS": ""},
    )


def create_topics() -> None:
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

    spec = {k: v for k, v in json.loads((CONF / "kafka" / "topics.json").read_text()).items() if not k.startswith("_")}
    admin = AdminClient({"bootstrap.servers": KAFKA})
    existing = set(admin.list_topics(timeout=10).topics)
    new = [
        NewTopic(name, t["partitions"], 1, config=t.get("config", {}))
        for name, t in spec.items()
        if name not in existing
    ]
    for name, fut in admin.create_topics(new).items() if new else []:
        fut.result()
        say(f"[bold]kafka[/]: created topic {name}")
    # topics made by an older topics.json get its current settings
    changed = [
        ConfigResource(
            ConfigResource.Type.TOPIC,
            name,
            incremental_configs=[
                ConfigEntry(k, str(v), incremental_operation=AlterConfigOpType.SET) for k, v in t["config"].items()
            ],
        )
        for name, t in spec.items()
        if name in existing and t.get("config")
    ]
    for fut in admin.incremental_alter_configs(changed).values() if changed else []:
        fut.result()


def sink_lag() -> int:
    """Committed records in the count topics that the sink connector has not consumed yet."""
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": KAFKA})
    md = admin.list_topics(timeout=10).topics
    lag = 0
    for connector in (p.stem for p in (REPO / "connectors").glob("*.json")):
        group = f"connect-{connector}"
        topics = json.loads((REPO / "connectors" / f"{connector}.json").read_text())["topics"].split(",")
        parts = [TopicPartition(t, p) for t in topics if t in md for p in md[t].partitions]
        c = Consumer({"bootstrap.servers": KAFKA, "group.id": group, "isolation.level": "read_committed"})
        try:
            for tp in c.committed(parts, timeout=10):
                _, high = c.get_watermark_offsets(tp, timeout=10)
                if high - max(tp.offset, 0) > 0:
                    lag += progress.records_between(KAFKA, tp, high)
        finally:
            c.close()
    return lag


def empty_serving_tables() -> None:
    """Before a reprocess rebuilds the counts: let the sink finish what the old job
    wrote, then empty the tables (so words a new version no longer counts disappear)."""
    deadline = time.monotonic() + 60
    while sink_lag() > 0 and time.monotonic() < deadline:
        time.sleep(1)
    with pg_connect("pipeline", "pipeline_db_password", SERVING_DB) as conn:
        conn.execute("TRUNCATE " + ", ".join((*pipeline.SERVING_TABLES, *pipeline.DERIVED_TABLES)))
    say("[bold]postgres[/]: serving tables emptied for the reprocess")


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
                st = http.get(f"{CONNECT_URL}/connectors/{name}/status", timeout=5).json()
                tasks = st.get("tasks", [])
                states[name] = st["connector"]["state"] if tasks else "NO TASKS"
                if tasks and any(t["state"] != "RUNNING" for t in tasks):
                    bad = next(t for t in tasks if t["state"] != "RUNNING")
                    states[name] = bad["state"] + (
                        ": " + bad.get("trace", "").splitlines()[0] if bad.get("trace") else ""
                    )
            except (httpx.HTTPError, KeyError, ValueError) as e:
                states[name] = f"unknown ({e})"
        if all(s == "RUNNING" for s in states.values()):
            return
        if time.monotonic() > deadline or any(s.startswith("FAILED") for s in states.values()):
            raise StackError("connectors not running: " + ", ".join(f"{k}={v}" for k, v in states.items()))
        time.sleep(1)


BEFORE.update({"postgres": init_postgres, "kafka": format_kafka, "flink-jobmanager": make_flink_dirs})


@contextlib.contextmanager
def control_lock(wait: bool = True):
    """One controller at a time: `up`/`down` and each supervisor round."""
    with file_lock(RUN / "control.lock", wait) as taken:
        yield taken


def restart_failed_connector_tasks() -> list[str]:
    """Connect never restarts a FAILED task by itself (e.g. after the database was away too long)."""
    restarted = []
    for name in http.get(f"{CONNECT_URL}/connectors", timeout=5).json():
        st = http.get(f"{CONNECT_URL}/connectors/{name}/status", timeout=5).json()
        if st["connector"]["state"] == "FAILED" or any(t["state"] == "FAILED" for t in st.get("tasks", [])):
            http.post(
                f"{CONNECT_URL}/connectors/{name}/restart",
                params={"includeTasks": "true", "onlyFailed": "true"},
                timeout=10,
            )
            restarted.append(name)
    return restarted


# How long a TaskManager may take to register with a restarted JobManager: its
# heartbeat.timeout (stack/flink/config.yaml, 10 s) and a margin.
TM_REREGISTER_S = 15


def replace_taskmanager_unless_registered() -> None:
    """After a JobManager restart: the TaskManager registers with the new one by itself
    once its heartbeat time-out has passed; one that has not by then is replaced (a
    new JVM, cold)."""
    if _wait(flink_tm_healthy, TM_REREGISTER_S) or not running_pid("flink-jobmanager"):
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
        if svc.name == "supervisor" or not _pidfile(svc.name).exists() or running_pid(svc.name):
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


# --------------------------------------------------------------------------- progress

# seconds without progress, while work waits, before a stage is called stalled
STALL_AFTER = float(os.environ.get("STALL_AFTER_SECONDS", progress.STALL_AFTER_SECONDS))
PROGRESS_FILE = RUN / "progress.json"  # the supervisor's latest verdicts, read by `status`


def pipeline_stages() -> list[progress.Stage]:
    sinks = [
        progress.sink_stage(p.stem, json.loads(p.read_text())["topics"].split(","))
        for p in sorted((REPO / "connectors").glob("*.json"))
    ]
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


def connector_states() -> dict[str, str]:
    return progress.connector_states(CONNECT_URL, http)


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
                    _wait(lambda: running_pid("flink-taskmanager") is None, 10)
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
        RUN.mkdir(parents=True, exist_ok=True)
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


def _wait(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return False


# --------------------------------------------------------------------------- commands


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


@app.command()
def up(api: bool = typer.Option(True, help="also start the HTTP API")) -> None:
    """Start the whole stack (idempotent) and return when everything is healthy."""
    t0 = time.monotonic()
    with control_lock():
        _up(api)
    console.print(f"[bold green]stack up[/] in {time.monotonic() - t0:.1f}s — dashboard: {API_URL}/")


def _up(api: bool) -> None:
    try:
        ensure_installed()
        for d in (DATA, LOGS, RUN):
            d.mkdir(parents=True, exist_ok=True)
        launch("postgres", init_postgres)
        # independent of each other: start together, wait in dependency order
        launch("kafka", format_kafka)
        launch("flink-jobmanager", make_flink_dirs)
        launch("flink-taskmanager")
        launch("flink-sql-gateway")
        await_healthy("postgres")
        provision_databases()
        launch("registry")  # keeps its schemas in PostgreSQL
        if api:
            launch("api")  # needs only PostgreSQL
        await_healthy("kafka")
        create_topics()
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
    except (StackError, subprocess.CalledProcessError, httpx.HTTPError) as e:
        console.print(f"[red]✗ stack start failed:[/] {e}")
        raise typer.Exit(1) from e


@app.command()
def connectors() -> None:
    """Deploy every connectors/*.json (curl PUT, idempotent) and wait until each task runs."""
    try:
        deploy_connectors()
    except (StackError, subprocess.CalledProcessError, httpx.HTTPError) as e:
        console.print(f"[red]✗ connectors:[/] {e}")
        raise typer.Exit(1) from e
    say("[green]✓[/] connectors running")


@app.command("pipeline-apply")
def pipeline_apply(
    version: int = typer.Option(None, help="the script version to roll out (default: the latest sql/v<N>_*.sql)"),
    reprocess: bool = typer.Option(
        False, help="recount every post from the start instead of resuming from a savepoint"
    ),
) -> None:
    """Roll out a pipeline version: stop the live job with a savepoint and start the
    new script from it when its state fits, else recount every post from the start."""
    try:
        scripts = pipeline.scripts()
        if version is not None and version not in scripts:
            raise StackError(f"no script for version {version} (have: {', '.join(f'v{v}' for v in scripts)})")
        pipeline.apply(scripts.get(version), reprocess, reprocess_hook=empty_serving_tables)
    except (StackError, httpx.HTTPError) as e:
        console.print(f"[red]✗ pipeline-apply failed:[/] {e}")
        raise typer.Exit(1) from e


@app.command("pipeline-status")
def pipeline_status() -> None:
    """Which pipeline version is live, and how it started."""
    try:
        print(json.dumps(pipeline.status(), indent=2))
    except httpx.HTTPError as e:
        console.print("[red]Flink is not running[/]")
        raise typer.Exit(1) from e


@app.command("pipeline-render")
def pipeline_render(version: int = typer.Option(None, help="default: the latest")) -> None:
    """Print a script with its placeholders filled in, ready for Flink's sql-client -f."""
    script = pipeline.scripts()[version] if version is not None else pipeline.latest()
    print(pipeline.Target().render(script))


def stop_service(name: str) -> bool:
    """Stop one service on purpose: the supervisor leaves it stopped (no pid file)."""
    with control_lock():
        return SERVICES[name].stop()


def start_service(name: str, attempts: int = 3) -> None:
    with control_lock():
        for attempt in range(1, attempts + 1):
            try:
                launch(name, BEFORE.get(name))
                await_healthy(name)
                return
            except StackError:
                if attempt == attempts:
                    raise
                time.sleep(2)  # e.g. PostgreSQL: its crashed predecessor's pid not yet gone


@app.command("stop")
def stop_cmd(service: str = typer.Argument(..., help="|".join(SERVICES))) -> None:
    """Stop one service (e.g. for maintenance); the supervisor will not restart it."""
    if service not in SERVICES:
        console.print(f"[red]no service {service!r}[/] (one of: {', '.join(SERVICES)})")
        raise typer.Exit(2)
    say(f"stopped {service}" if stop_service(service) else f"{service} was not running")


@app.command("start")
def start_cmd(service: str = typer.Argument(..., help="|".join(SERVICES))) -> None:
    """Start one service stopped with `stop` and wait until it is healthy."""
    if service not in SERVICES:
        console.print(f"[red]no service {service!r}[/] (one of: {', '.join(SERVICES)})")
        raise typer.Exit(2)
    try:
        start_service(service)
    except StackError as e:
        console.print(f"[red]✗ {e}[/]")
        raise typer.Exit(1) from e


@app.command()
def supervise(interval: float = typer.Option(1.0, help="seconds between rounds")) -> None:
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


@app.command()
def down() -> None:
    """Stop what this controller started, the Flink job with a savepoint first."""
    if SERVICES["supervisor"].stop():  # first, or it would restart what is being stopped
        say("stopped supervisor")
    with control_lock():
        _down()


def _down() -> None:
    if running_pid("flink-jobmanager"):
        try:
            pipeline.stop_for_shutdown()
        except (StackError, httpx.HTTPError) as e:
            say(f"[yellow]flink: {e}; the next `up` reprocesses from the first post[/]")
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


def memory_mib(pid: int, children: bool = True) -> float:
    """Proportional set size of a process and its children (shared pages counted once overall)."""
    total_kb = 0
    for p in process_tree(pid) if children else [pid]:
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
        # the supervisor's children are the services it restarted: counted above
        mem = memory_mib(pid, children=svc.name != "supervisor") if pid else 0.0
        total += mem
        state = "[green]healthy[/]" if ok else ("[yellow]running, unhealthy[/]" if pid else "[red]stopped[/]")
        console.print(f"{svc.name:18} {state:30} pid={pid or '-':<8} mem={mem:6.0f} MiB  log={svc.log}")
    console.print(f"{'total':18} {'':16} memory {total:,.0f} MiB (PSS)")
    if running_pid("flink-jobmanager"):
        try:
            st = pipeline.status()
            console.print(
                f"{'pipeline':18} v{st['live_version']} {st['state']}: {st['started']}"
                if st["live_version"]
                else f"{'pipeline':18} [red]not running[/]"
            )
        except (httpx.HTTPError, StackError):
            pass
    if running_pid("kafka"):
        all_ok &= show_progress()
    if not all_ok:
        raise typer.Exit(1)


def show_progress() -> bool:
    """Each stage's progress as the supervisor last judged it (or, without a
    supervisor, what waits now); False when a stage is stalled."""
    seen = json.loads(PROGRESS_FILE.read_text()) if PROGRESS_FILE.exists() else {}
    age = time.time() - seen.get("checked_at", 0)
    # (the supervisor checks every 2 s, but not while it restarts something)
    if running_pid("supervisor") and age < 180:
        verdicts = [progress.Verdict(**v) for v in seen["stages"]]
        note = (
            (
                f" [dim](as of {age:.0f} s ago"
                + (f", healing the {seen['healing']}" if seen.get("healing") else "")
                + ")[/]"
            )
            if age > 10
            else ""
        )
    else:
        watch = progress.Watch(KAFKA, STALL_AFTER)
        try:
            verdicts = [watch.check(stage) for stage in pipeline_stages()]
        finally:
            watch.close()
        note, seen = " [dim](not judged: the supervisor is not watching)[/]", {}
    colour = {"idle": "green", "moving": "green", "stalled": "red", "paused": "yellow", "unknown": "yellow"}
    for v in verdicts:
        console.print(f"{v.stage:18} [{colour[v.state]}]{v.state}[/]: {escape(v.message)}{note}")
    if seen.get("heals"):
        last = seen["last_heal"]
        console.print(
            f"{'healed':18} "
            + ", ".join(f"{k} {n}x" for k, n in seen["heals"].items())
            + f"; last at {time.strftime('%H:%M:%S', time.localtime(last['at']))}: {escape(last['action'])}"
        )
    return not any(v.state == "stalled" for v in verdicts)


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
