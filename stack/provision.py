"""One-time set-up, each step idempotent: the PostgreSQL cluster, its roles and
databases and the serving tables (db/*.sql), Kafka's KRaft storage and topics
(stack/kafka/topics.json), Flink's directories. Run by `make up` (lifecycle.py)
before or after a service starts, and by Compose's init service."""

from __future__ import annotations

import base64
import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import uuid
from pathlib import Path

from .common import (
    CONF,
    DATA,
    DIST,
    HOME,
    KAFKA,
    PG_BIN,
    REPO,
    ROLE_SECRETS,
    RUN,
    SERVING_DB,
    StackError,
    java,
    pg_connect,
    private_file,
    say,
    secret,
    service_env,
    serving_db,
)


def make_flink_dirs() -> None:
    for sub in ("checkpoints", "savepoints", "tmp", "web"):
        (DATA / "flink" / sub).mkdir(parents=True, exist_ok=True)


def pg_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, the stack runs it as `postgres`."""
    return "postgres" if os.geteuid() == 0 else None


def closed_to(user: str, path: Path) -> Path | None:
    """The first directory on the way to PATH that USER may not enter (no x
    permission for it), or None when USER can reach PATH."""
    account = pwd.getpwnam(user)
    groups = {g.gr_gid for g in grp.getgrall() if user in g.gr_mem} | {account.pw_gid}
    for directory in [*reversed(path.parents), path]:
        try:
            st = directory.stat()
        except FileNotFoundError:
            return None  # made later, by us, for USER
        if st.st_uid == account.pw_uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return directory
    return None


def init_postgres() -> None:
    """initdb on first start: our postgresql.conf and pg_hba.conf, a generated superuser password."""
    pgdata = DATA / "postgres"
    if (pgdata / "PG_VERSION").exists():
        return
    user = pg_user()
    closed = closed_to(user, pgdata) if user else None
    if closed:
        raise StackError(
            f"PostgreSQL runs as the user {user!r} (it refuses root), and {user!r} cannot enter {closed} "
            f"(mode {stat.filemode(closed.stat().st_mode)}), on the way to its data in {pgdata}. Either keep the "
            f"stack's data elsewhere (STACK_HOME=/var/lib/tweetstream make up) or clone the project under a "
            f"directory others can enter (e.g. /opt or /srv), or open the way: chmod o+x {closed}"
        )
    say("[bold]postgres[/]: creating the database cluster")
    pgdata.mkdir(parents=True, exist_ok=True)
    pwfile = RUN / "pg_pw.tmp"
    RUN.mkdir(parents=True, exist_ok=True)
    pwfile.unlink(missing_ok=True)
    private_file(pwfile, secret("postgres_password"))
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

    with pg_connect() as conn:
        for role, pw in ROLE_SECRETS.items():
            if role == "postgres":  # (made by initdb)
                continue
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
    with serving_db("pipeline") as conn:
        for script in sorted((REPO / "db").glob("*.sql")):
            conn.execute(script.read_text())


def kraft_cluster_id() -> str:
    """A random KRaft cluster id (16 bytes, URL-safe base64, as Kafka's own), never
    starting with "-" (other tools, and people, would take it for an option)."""
    while (cluster_id := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"):
        pass
    return cluster_id


def kafka_format_command(cluster_id: str, config: Path = CONF / "kafka" / "server.properties") -> list[str]:
    """Kafka's StorageTool format, the id in one `--cluster-id=<id>` argument: a
    separate argument starting with "-" would be read as an option."""
    return [
        java(),
        "-cp",
        str(DIST / "kafka" / "libs" / "*"),
        "kafka.tools.StorageTool",
        "format",
        f"--cluster-id={cluster_id}",
        "-c",
        str(config),
    ]


def format_kafka() -> None:
    logdir = DATA / "kafka"
    if (logdir / "meta.properties").exists():
        return
    say("[bold]kafka[/]: formatting KRaft storage")
    logdir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        kafka_format_command(kraft_cluster_id()),
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
