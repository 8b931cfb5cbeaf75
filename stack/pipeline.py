"""The Flink SQL pipeline: versioned scripts in sql/, rendered and submitted
through Flink's SQL gateway, rolled out with a savepoint when the state is
compatible, or reprocessed from the start of the topic when it is not."""

from __future__ import annotations

import json
import re
import string
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from .common import (
    DATA,
    FLINK_URL,
    GATEWAY,
    KAFKA,
    LOGS,
    REGISTRY_URL,
    REPO,
    RUN,
    StackError,
    file_lock,
    http,
    say,
    wait_until,
)

SQL_DIR = REPO / "sql"
CHECKPOINTS = DATA / "flink" / "checkpoints"  # execution.checkpointing.dir (stack/services.py sets it)
STOPWORDS_DIR = SQL_DIR / "stopwords"
JOB_PREFIX = "tweetstream-pipeline"
VERSION_FILE = re.compile(r"^v(\d+)_[\w-]+\.sql$")
# the pipeline's counting tables, and with the records it set aside, what it serves
# (each one an upsert topic and a PostgreSQL table; emptied before a reprocess rebuilds them)
COUNT_TABLES = ("hashtag_counts", "unigram_tops", "hashtag_minute_counts", "unigram_minute_tops", "post_stats")
SERVING_TABLES = (*COUNT_TABLES, "rejected_posts")
# tables the database derives from the ones above (db/006_word_minute_tops.sql, db/007_word_tops.sql)
DERIVED_TABLES = ("unigram_counts", "unigram_minute_counts")


@dataclass(frozen=True)
class Script:
    version: int
    path: Path


def scripts() -> dict[int, Script]:
    found = {}
    for path in SQL_DIR.glob("v*.sql"):
        m = VERSION_FILE.match(path.name)
        if m:
            v = int(m.group(1))
            if v in found:
                raise StackError(f"two scripts for version {v}: {found[v].path.name}, {path.name}")
            found[v] = Script(v, path)
    if not found:
        raise StackError(f"no pipeline script (sql/v<N>_<name>.sql) in {SQL_DIR}")
    return dict(sorted(found.items()))


def latest() -> Script:
    return list(scripts().values())[-1]


def stopwords() -> list[str]:
    import unicodedata

    words = set()
    for f in sorted(STOPWORDS_DIR.glob("*.txt")):
        for line in f.read_text(encoding="utf-8").splitlines():
            w = line.split("#", 1)[0].strip()
            if w:
                words.add(unicodedata.normalize("NFC", w).lower())
    return sorted(words)


def render(script: Script, *, topic_prefix: str = "", job_name: str = JOB_PREFIX, registry: str = REGISTRY_URL) -> str:
    """The script with its ${NAME} placeholders filled in; an unknown name is an error."""
    path = script.path
    values = {
        "KAFKA": KAFKA,
        "REGISTRY": f"{registry}/apis/ccompat/v7",
        "TOPIC_PREFIX": topic_prefix,
        "JOB_NAME": job_name,
        # one SQL string literal's content: the words separated by spaces
        "STOPWORDS": " ".join(stopwords()).replace("'", "''"),
    }
    try:
        return string.Template(path.read_text(encoding="utf-8")).substitute(values)
    except KeyError as e:
        raise StackError(f"{path.name}: unknown placeholder ${{{e.args[0]}}} (known: {', '.join(values)})") from None


# --------------------------------------------------------------------------- Flink REST


def jobs(client: httpx.Client = http, timeout: float = 5) -> list[dict]:
    return client.get(f"{FLINK_URL}/jobs/overview", timeout=timeout).json()["jobs"]


# The states of a job that is the pipeline or about to be (not SUSPENDED or
# RECONCILING: the supervisor starts another job then)
ACTIVE = ("RUNNING", "CREATED", "INITIALIZING", "RESTARTING", "FAILING", "CANCELLING")


def pick_live(jobs: list[dict], prefix: str = JOB_PREFIX) -> dict | None:
    """The pipeline's job among Flink's jobs (/jobs/overview): an ACTIVE state and
    the name `prefix-v<N>`; the newest if there are several. The one rule the
    supervisor, `make status`, the API, the progress checks and the bench follow."""
    live = [j for j in jobs if j["state"] in ACTIVE and re.fullmatch(re.escape(prefix) + r"-v\d+", j["name"])]
    return max(live, key=lambda j: j.get("start-time", 0), default=None)


def live_job(prefix: str = JOB_PREFIX) -> dict | None:
    """The pipeline's job now (pick_live), if any."""
    return pick_live(jobs(), prefix)


def job_version(job: dict) -> int:
    return int(job["name"].rsplit("-v", 1)[1])


def statements(sql: str) -> list[str]:
    """A script cut into its statements, as Flink's SQL client cuts it: at each `;`
    outside strings, quoted names and comments, except inside an
    `EXECUTE STATEMENT SET BEGIN ... END;` block, which is one statement."""
    out, start, i, n = [], 0, 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'`\"":
            i = sql.find(c, i + 1)  # a doubled quote ('') reads as two strings: same cut
            i = n if i < 0 else i + 1
            continue
        if sql.startswith("--", i):
            i = sql.find("\n", i)
            i = n if i < 0 else i
            continue
        if sql.startswith("/*", i):
            i = sql.find("*/", i + 2)
            i = n if i < 0 else i + 2
            continue
        if c == ";":
            code = _code(sql[start:i])
            in_set = re.match(r"EXECUTE\s+STATEMENT\s+SET\b", code, re.I) and not re.search(r"\bEND$", code, re.I)
            if not in_set:
                if code:
                    out.append(sql[start:i].strip())
                start = i + 1
        i += 1
    if _code(sql[start:]):
        out.append(sql[start:].strip())
    return out


# A SQL shell reads the pipeline's topics under a group of its own: never the
# job's, whose committed offsets are the job's progress (stack/progress.py)
SHELL_GROUP = "tweetstream-sql-shell"


def declarations(sql: str) -> list[str]:
    """What a SQL shell on the running pipeline needs from a rendered script: its
    functions, tables and views, and its `table.*` options (time zone, state TTL),
    not its INSERTs nor the job's own settings (its name, checkpoints,
    parallelism); the source table then gets the shell's consumer group."""
    kept = [s for s in statements(sql) if re.match(r"(CREATE|ALTER)\b|SET\s+'table\.", _code(s), re.IGNORECASE)]
    source = re.search(r"CREATE\s+TABLE\s+(\w+)\s*\([^;]*?'properties\.group\.id'", sql, re.IGNORECASE | re.DOTALL)
    if source:
        kept.append(f"ALTER TABLE {source.group(1)} SET ('properties.group.id' = '{SHELL_GROUP}')")
    return kept


def _code(text: str) -> str:
    """`text` without its comments, trimmed (only to classify a statement)."""
    return re.sub(r"--[^\n]*|/\*.*?\*/", " ", text, flags=re.S).strip()


def submit(sql: str, job_name: str, restore_from: str | None = None, timeout: float = 300) -> str:
    """Run a rendered script through the SQL gateway, one statement at a time in a
    session of its own; return the id of the job it started. (The gateway is a
    running JVM with the planner warm: a submission takes 2-5 s, where the SQL
    client started a JVM and planned cold in 20-30 s.)"""
    RUN.mkdir(parents=True, exist_ok=True)
    (RUN / f"{job_name}.sql").write_text(sql, encoding="utf-8")
    log = [
        f"-- {time.strftime('%Y-%m-%d %H:%M:%S')} {job_name}" + (f", restoring {restore_from}" if restore_from else "")
    ]
    config = {"execution.state-recovery.path": restore_from} if restore_from else {}
    deadline = time.monotonic() + timeout
    job_id = None
    try:
        session = http.post(
            f"{GATEWAY}/sessions", json={"properties": config, "sessionName": job_name}, timeout=30
        ).json()["sessionHandle"]
    except (httpx.HTTPError, KeyError, ValueError) as e:
        raise SubmitError(f"the SQL gateway ({GATEWAY}) did not open a session for {job_name}: {e}") from None
    try:
        for statement in statements(sql):
            t0 = time.monotonic()
            log.append(statement + ";")
            result = _execute(session, statement, deadline)
            log.append(f"-- ({time.monotonic() - t0:.2f} s)")
            job_id = result.get("jobID") or job_id
    except SubmitError as e:
        log.append(f"-- [ERROR] {e}")
        raise SubmitError(f"the SQL gateway could not run {job_name}:\n{e}") from None
    finally:
        (LOGS / f"sql-gateway-{job_name}.out").write_text("\n\n".join(log) + "\n")
        try:
            http.delete(f"{GATEWAY}/sessions/{session}", timeout=10)
        except httpx.HTTPError:
            pass  # the gateway closes idle sessions itself
    if not job_id:
        raise SubmitError(f"{job_name} started no job (a script ends with its INSERT or EXECUTE STATEMENT SET)")
    return job_id


def _execute(session: str, statement: str, deadline: float) -> dict:
    """One statement: submit it, wait for its first result (an INSERT's is its job id)."""
    r = http.post(f"{GATEWAY}/sessions/{session}/statements", json={"statement": statement}, timeout=30)
    if r.status_code != 200:
        raise SubmitError(_gateway_error(r, statement))
    operation = r.json()["operationHandle"]
    result: dict = {}

    def answered() -> bool:
        r = http.get(
            f"{GATEWAY}/sessions/{session}/operations/{operation}/result/0", params={"rowFormat": "JSON"}, timeout=30
        )
        if r.status_code != 200:
            raise SubmitError(_gateway_error(r, statement))
        result.update(r.json())
        return result.get("resultType") != "NOT_READY"

    if not wait_until(answered, max(0.0, deadline - time.monotonic()), interval=0.05):
        raise SubmitError(f"no answer within the time-out to: {_first_line(statement)}")
    return result


def _gateway_error(r: httpx.Response, statement: str) -> str:
    """The statement and the gateway's innermost cause (its answer is a whole stack trace)."""
    try:
        text = "\n".join(r.json().get("errors", []))
    except ValueError:
        text = r.text
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Caused by: ")]
    if starts:
        cause = [lines[starts[-1]][len("Caused by: ") :]]
        for line in lines[starts[-1] + 1 :]:
            if line.startswith("\tat ") or line.startswith("End of exception") or re.match(r"\s*\.\.\. \d+ more", line):
                break
            cause.append(line)
        text = "\n".join(cause)
    cause = re.sub(r"^(?:[a-z]\w*\.)+", "", text.strip())  # the exception's class without its package
    return f"in: {_first_line(statement)}\n" + "\n".join(cause.splitlines()[:12])


def _first_line(statement: str) -> str:
    code = _code(statement)
    return code.splitlines()[0][:120] if code else statement[:120]


class SubmitError(StackError):
    pass


# How Flink says that a savepoint's or checkpoint's state does not fit a script
STATE_MISMATCH = re.compile(
    r"Cannot map checkpoint/savepoint state|StateMigrationException|Failed to rollback to checkpoint/savepoint"
    r"|Exception while creating StreamOperatorStateContext|is not compatible with the state|incompatible.{0,40}state",
    re.IGNORECASE,
)


def failures(job_id: str) -> str:
    """Every exception the job recorded, stack traces included."""
    exc = http.get(f"{FLINK_URL}/jobs/{job_id}/exceptions", timeout=5).json()
    entries = exc.get("exceptionHistory", {}).get("entries", [])
    return "\n".join(
        [exc.get("root-exception") or ""] + [e.get("stacktrace") or e.get("exceptionName", "") for e in entries]
    )


def root_cause(job_id: str) -> str:
    """The innermost cause of the job's latest failure, in one line."""
    text = http.get(f"{FLINK_URL}/jobs/{job_id}/exceptions", timeout=5).json().get("root-exception") or ""
    causes = [line for line in text.splitlines() if line.startswith("Caused by: ")]
    return (causes[-1][len("Caused by: ") :] if causes else text.split("\n", 1)[0]) or "no exception recorded"


def wait_healthy(job_id: str, timeout: float = 90) -> None:
    """Wait until the job runs with a completed checkpoint: the state was restored and
    works. A failure that says the state does not fit raises SubmitError (the caller
    then recounts from the first post); any other failure (a service still coming
    back) is left to Flink's restart strategy."""
    state = "unknown"

    def restored() -> bool:
        nonlocal state
        state = http.get(f"{FLINK_URL}/jobs/{job_id}", timeout=5).json()["state"]
        recorded = failures(job_id)
        mismatch = STATE_MISMATCH.search(recorded)
        if mismatch or state in ("FAILED", "CANCELED"):
            first = next((line for line in recorded.splitlines() if line.strip()), "no exception recorded")
            raise SubmitError(f"job {job_id} {state.lower()}: {mismatch.group(0) if mismatch else first}")
        return state == "RUNNING" and completed_checkpoints(job_id) >= 1

    if wait_until(restored, timeout, interval=1):
        return
    # slow (a big state to restore, a busy machine) or retrying (a service still away): not broken
    say(f"[yellow]flink: job {job_id} is {state.lower()} and made no checkpoint within {timeout:.0f}s yet[/]")


def completed_checkpoints(job_id: str) -> int:
    """How many checkpoints the job has completed (0 while it is still starting)."""
    cp = http.get(f"{FLINK_URL}/jobs/{job_id}/checkpoints", timeout=5).json()
    return cp.get("counts", {}).get("completed", 0)  # a job still starting answers {"errors": [...]}


def cancel(job_id: str, timeout: float = 60) -> bool:
    """Cancel a job; True when it ended within `timeout` seconds."""
    http.patch(f"{FLINK_URL}/jobs/{job_id}", params={"mode": "cancel"}, timeout=10)
    return wait_ended(job_id, timeout)


def wait_ended(job_id: str, timeout: float) -> bool:
    return wait_until(
        lambda: http.get(f"{FLINK_URL}/jobs/{job_id}", timeout=5).json()["state"] in ("CANCELED", "FAILED", "FINISHED"),
        timeout,
    )


def stop_with_savepoint(job_id: str, timeout: float = 120) -> str:
    """Stop a job after a savepoint; return the savepoint's location."""
    # NATIVE: RocksDB's own files, restored by copying them; the default (canonical)
    # format re-inserts every key on restore (35 s for a 2-million-post state)
    trigger = http.post(
        f"{FLINK_URL}/jobs/{job_id}/stop", json={"drain": False, "formatType": "NATIVE"}, timeout=10
    ).json()["request-id"]
    status: dict = {}

    def completed() -> bool:
        status.update(http.get(f"{FLINK_URL}/jobs/{job_id}/savepoints/{trigger}", timeout=10).json())
        return status["status"]["id"] == "COMPLETED"

    if wait_until(completed, timeout, interval=1):
        op = status.get("operation", {})
        if "location" not in op:
            raise StackError(f"stop with savepoint failed: {json.dumps(op.get('failure-cause', op))[:500]}")
        return op["location"]
    raise StackError(f"the savepoint of job {job_id} did not complete within {timeout:.0f}s")


# --------------------------------------------------------------------------- roll-out


@dataclass(frozen=True)
class Target:
    """Where a pipeline runs: the real one (prefix ''), or a test's own topics and job
    names; `registry` puts another registry URL (a test's proxy) in the script."""

    prefix: str = ""
    registry: str = REGISTRY_URL

    @property
    def job_prefix(self) -> str:
        return f"{self.prefix}{JOB_PREFIX}"

    def job_name(self, script: Script) -> str:
        return f"{self.job_prefix}-v{script.version}"

    @property
    def live_file(self) -> Path:
        return RUN / f"{self.prefix}pipeline.json"

    @property
    def savepoint_file(self) -> Path:
        return RUN / f"{self.prefix}savepoint.json"

    def render(self, script: Script) -> str:
        return render(script, topic_prefix=self.prefix, job_name=self.job_name(script), registry=self.registry)


def _digest(sql: str) -> str:
    import hashlib

    return hashlib.sha256(sql.encode()).hexdigest()[:16]


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def start(script: Script, restore_from: str | None, target: Target = Target(), reprocess_hook=None) -> str:
    """Start `script`: from the savepoint when its state fits, else reprocess every post."""
    sql = target.render(script)
    name = target.job_name(script)
    if restore_from:
        kind = "checkpoint" if "/chk-" in restore_from else "savepoint"
        say(f"[bold]flink[/]: starting {script.path.name} from {kind} {restore_from}")
        job_id = None
        try:
            job_id = submit(sql, name, restore_from)
            wait_healthy(job_id)
            _record(target, script, sql, job_id, f"resumed from {kind} {restore_from}", restore_from)
            return job_id
        except SubmitError as e:
            if job_id:
                cancel(job_id)
            say(
                f"[yellow]flink: the {kind}'s state does not fit {script.path.name} ({e}); reprocessing from the first post[/]"
            )
    if reprocess_hook:
        reprocess_hook()
    say(f"[bold]flink[/]: starting {script.path.name}, reading every post from the start of the topic")
    job_id = submit(sql, name)
    wait_healthy(job_id)
    _record(target, script, sql, job_id, "counted every post from the start of the topic")
    return job_id


def _record(target: Target, script: Script, sql: str, job_id: str, mode: str, restored_from: str | None = None) -> None:
    RUN.mkdir(parents=True, exist_ok=True)
    target.live_file.write_text(
        json.dumps(
            {
                "version": script.version,
                "script": script.path.name,
                "sql_sha256": _digest(sql),
                "job_id": job_id,
                "started": mode,
                "restored_from": restored_from,
                "applied_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
            indent=2,
        )
    )


def latest_checkpoint(job_id: str) -> str | None:
    """The newest completed checkpoint Flink kept for a job (it keeps them when the
    job is cancelled or its JobManager dies: RETAIN_ON_CANCELLATION)."""
    done = [d for d in (CHECKPOINTS / job_id).glob("chk-*") if (d / "_metadata").exists()]
    return str(max(done, key=lambda d: int(d.name[4:]))) if done else None


@contextmanager
def rollout_lock(target: Target, wait: bool = True):
    """One roll-out at a time: `pipeline-apply`, `up` and the supervisor each take
    it before they start or stop the job (without it, the supervisor saw no live
    job in the middle of a roll-out and started a second one). Yields whether it
    was taken (always, when `wait`)."""
    with file_lock(RUN / f"{target.prefix}pipeline.lock", wait) as taken:
        yield taken


def ensure_running(target: Target = Target(), reprocess_hook=None, wait: bool = True) -> dict | None:
    """`make up` and the supervisor: keep a live job; else start the latest script
    from where the last job stopped: the savepoint `down` left, or the newest
    checkpoint of a job that crashed with its JobManager. With `wait` False, a
    roll-out in progress elsewhere is left alone and None returned."""
    with rollout_lock(target, wait) as taken:
        if not taken:
            return None
        return _ensure_running(target, reprocess_hook)


def _ensure_running(target: Target, reprocess_hook) -> dict:
    job = live_job(target.job_prefix)
    if job:
        return job
    saved, live = _read(target.savepoint_file), _read(target.live_file)
    # A job that died before its first checkpoint leaves the snapshot it was
    # restored from as the newest state (it owns it: nothing deleted it).
    restore = (
        saved.get("location")
        or (latest_checkpoint(live["job_id"]) if live.get("job_id") else None)
        or live.get("restored_from")
    )
    if restore is None and live:
        say("[yellow]flink: no savepoint or checkpoint of the last job; recounting from the first post[/]")
    start(latest(), restore, target, reprocess_hook if (saved or live) else None)
    target.savepoint_file.unlink(missing_ok=True)
    return live_job(target.job_prefix)


def stop_for_shutdown(target: Target = Target()) -> None:
    """`make down`: stop the live job with a savepoint the next `up` resumes from."""
    job = live_job(target.job_prefix)
    if not job:
        return
    say("[bold]flink[/]: stopping the pipeline with a savepoint")
    location = stop_with_savepoint(job["jid"])
    target.savepoint_file.write_text(json.dumps({"location": location, "version": job_version(job)}))
    say(f"[bold]flink[/]: savepoint {location}")


def apply(script: Script | None = None, reprocess: bool = False, target: Target = Target(), reprocess_hook=None) -> str:
    """Roll out a script (default: the latest version) in place of the live job.
    Nothing happens when the live job runs this very script (same rendered SQL)."""
    with rollout_lock(target):
        return _apply(script, reprocess, target, reprocess_hook)


def _apply(script: Script | None, reprocess: bool, target: Target, reprocess_hook) -> str:
    script = script or latest()
    sql = target.render(script)
    job = live_job(target.job_prefix)
    live = _read(target.live_file)
    if job and live.get("job_id") == job["jid"] and live.get("sql_sha256") == _digest(sql) and not reprocess:
        say(f"v{script.version} ({script.path.name}) is already live, unchanged (job {job['jid']})")
        return job["jid"]
    savepoint = None
    if job:
        say(f"[bold]flink[/]: stopping v{job_version(job)} with a savepoint")
        savepoint = stop_with_savepoint(job["jid"])
    elif target.savepoint_file.exists():
        savepoint = _read(target.savepoint_file)["location"]
    job_id = start(script, None if reprocess else savepoint, target, reprocess_hook)
    target.savepoint_file.unlink(missing_ok=True)
    say(f"[green]✓[/] v{script.version} ({script.path.name}) is live")
    return job_id


def status(target: Target = Target()) -> dict:
    job = live_job(target.job_prefix)
    live = _read(target.live_file)
    current = live if job and live.get("job_id") == job["jid"] else {}
    return {
        "live_version": job_version(job) if job else None,
        "script": current.get("script"),
        "job_id": job["jid"] if job else None,
        "state": job["state"] if job else "not running",
        "started": current.get("started"),
        "applied_at": current.get("applied_at"),
        "sql_sha256": current.get("sql_sha256"),
        "latest_script": latest().path.name,
    }
