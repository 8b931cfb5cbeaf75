"""Progress is health: is each stage of the pipeline getting through what waits for it?

A stage reads a set of Kafka topics as a consumer group and commits how far it
got: the Flink job reads `tweets` (its offsets are committed at each completed
checkpoint, so they move only when counts are really out), the sink connector
reads the count topics (Connect commits every second). A stage is

- ``idle``    when nothing waits for it (and, for the Flink job, its last
              completed checkpoint is less than ``stall_after`` seconds old:
              an unaligned checkpoint commits the offsets of posts still in
              flight between its tasks, so a job that restarts again and
              again from it has nothing waiting in Kafka, yet counts nothing),
- ``moving``  when records wait and its committed offsets moved in the last
              ``stall_after`` seconds,
- ``stalled`` when records have waited and its offsets have not moved for
              ``stall_after`` seconds.

Used by the supervisor (which heals a stall), `make status` and the API's
/api/stats, /healthz/pipeline and the page. Needs a broker to ask, and Flink's
REST API for the job's checkpoints.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import httpx
from confluent_kafka import Consumer, KafkaException, TopicPartition

from .common import FLINK_URL, STALL_AFTER_SECONDS, http
from .pipeline import JOB_PREFIX, pick_live

SOURCE_TOPIC = "tweets"
FLINK_GROUP = "tweetstream-flink"  # sql/*.sql: the source's properties.group.id


@dataclass(frozen=True)
class Stage:
    name: str  # "flink job", "sink"
    group: str  # the consumer group whose committed offsets are its progress
    topics: tuple[str, ...]
    waiting_what: str  # what waits for it, in words
    connector: str | None = None  # for a sink: its Kafka Connect connector
    flink_url: str | None = None  # for the Flink job: where to ask for its checkpoints
    job_prefix: str | None = None


def flink_stage(prefix: str = "", flink_url: str = FLINK_URL) -> Stage:
    return Stage(
        "flink job",
        f"{prefix}{FLINK_GROUP}",
        (f"{prefix}{SOURCE_TOPIC}",),
        f"posts in {prefix}{SOURCE_TOPIC}",
        flink_url=flink_url,
        job_prefix=f"{prefix}{JOB_PREFIX}",
    )


def job_progressed_at(flink_url: str, job_prefix: str, timeout: float = 3.0) -> float | None:
    """When the pipeline's Flink job last completed a checkpoint (else when it
    started), in epoch seconds; None when no such job is live or Flink does not answer."""
    try:
        job = pick_live(http.get(f"{flink_url}/jobs/overview", timeout=timeout).json()["jobs"], job_prefix)
        if job is None:
            return None
        latest = http.get(f"{flink_url}/jobs/{job['jid']}/checkpoints", timeout=timeout).json().get("latest") or {}
    except (httpx.HTTPError, KeyError, ValueError):
        return None
    completed = (latest.get("completed") or {}).get("latest_ack_timestamp") or 0
    return max(job["start-time"], completed) / 1000


def sink_stage(connector: str, topics: list[str]) -> Stage:
    # Kafka Connect's sink consumers use the group connect-<connector name>
    return Stage("sink", f"connect-{connector}", tuple(topics), "count updates for PostgreSQL", connector)


@dataclass
class Verdict:
    stage: str
    state: str  # idle | moving | stalled | paused | unknown
    waiting: int  # records waiting: at most this many (transaction markers take offsets)
    last_moved_at: float | None  # epoch seconds: when its offsets last moved (or nothing waited)
    message: str = ""
    stalled_seconds: float = 0.0
    connector: str | None = None

    def paused_if(self, connector_state: str | None) -> Verdict:
        """A sink whose connector was paused (or stopped) on purpose is not stalled."""
        if self.state == "stalled" and connector_state in ("PAUSED", "STOPPED"):
            self.state = "paused"
            self.message = f"{self.waiting:,} count updates wait: connector {self.connector} is {connector_state}"
        return self

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Seen:
    committed: dict = field(default_factory=dict)
    moved_at: float = 0.0
    # the last exact count (a read of what waits), for these committed and end offsets
    probed_for: tuple | None = None
    probed: int = 0


class Watch:
    """Remembers, per stage, when its committed offsets last moved. Call `check`
    every few seconds; it is not thread-safe (one caller at a time)."""

    def __init__(self, bootstrap: str, stall_after: float = STALL_AFTER_SECONDS, timeout: float = 5.0):
        self.bootstrap, self.stall_after, self.timeout = bootstrap, stall_after, timeout
        self._seen: dict[str, _Seen] = {}
        self._readers: dict[str, Consumer] = {}

    def _reader(self, group: str) -> Consumer:
        # a consumer that never subscribes: it reads the group's committed offsets
        # and the topics' ends (read_committed: the end is the last stable offset)
        if group not in self._readers:
            self._readers[group] = Consumer(
                {
                    "bootstrap.servers": self.bootstrap,
                    "group.id": group,
                    "isolation.level": "read_committed",
                    "enable.auto.commit": False,
                    "socket.timeout.ms": int(self.timeout * 1000),
                    "log_level": 3,  # errors only: a stopped broker is reported by the verdict
                }
            )
        return self._readers[group]

    def close(self) -> None:
        for c in self._readers.values():
            c.close()
        self._readers.clear()

    def check(self, stage: Stage, now: float | None = None) -> Verdict:
        now = time.time() if now is None else now
        seen = self._seen.setdefault(stage.group, _Seen(moved_at=now))
        try:
            committed, ends = self._offsets(stage)
        except KafkaException as e:
            return Verdict(
                stage.name, "unknown", 0, seen.moved_at, f"cannot read offsets: {e}", connector=stage.connector
            )
        upper = sum(max(0, ends[tp] - committed[tp]) for tp in ends)
        first = not seen.committed
        if committed != seen.committed and not first:
            seen.committed, seen.moved_at = committed, now
            waiting = upper  # moving: an upper bound is enough (and cheap)
        elif upper == 0:
            seen.committed, waiting = committed, 0
        else:
            # not moved (or first seen): does a record wait, or only transaction
            # markers (a stage that read everything may sit just before one)?
            seen.committed = committed
            key = (tuple(sorted(committed.items())), tuple(sorted(ends.items())))
            if seen.probed_for != key:
                seen.probed_for, seen.probed = key, upper if self._any_record_waits(committed, ends) else 0
            waiting = seen.probed
        if waiting == 0:
            seen.moved_at = now  # nothing to do is not a stall
            checkpointed = self._job_progressed_at(stage)
            if checkpointed is not None and now - checkpointed >= self.stall_after:
                quiet = now - checkpointed
                return Verdict(
                    stage.name,
                    "stalled",
                    0,
                    checkpointed,
                    f"the job has completed no checkpoint for {quiet:.0f} s (posts it read may wait between its tasks)",
                    stalled_seconds=round(quiet, 1),
                )
            return Verdict(stage.name, "idle", 0, now, "nothing waiting", connector=stage.connector)
        quiet = now - seen.moved_at
        if quiet >= self.stall_after:
            return Verdict(
                stage.name,
                "stalled",
                waiting,
                seen.moved_at,
                f"{waiting:,} {stage.waiting_what} wait and nothing has moved for {quiet:.0f} s",
                stalled_seconds=round(quiet, 1),
                connector=stage.connector,
            )
        return Verdict(
            stage.name,
            "moving",
            waiting,
            seen.moved_at,
            f"{waiting:,} {stage.waiting_what} to go",
            connector=stage.connector,
        )

    def _offsets(self, stage: Stage) -> tuple[dict, dict]:
        reader = self._reader(stage.group)
        topics = reader.list_topics(timeout=self.timeout).topics
        parts = [
            TopicPartition(t, p)
            for t in stage.topics
            if t in topics and topics[t].error is None
            for p in topics[t].partitions
        ]
        committed, ends = {}, {}
        for tp in reader.committed(parts, timeout=self.timeout) if parts else []:
            low, high = reader.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=self.timeout)
            key = (tp.topic, tp.partition)
            committed[key] = max(tp.offset, low)  # no commit yet (negative): from the start of what is kept
            ends[key] = high
        return committed, ends

    def _job_progressed_at(self, stage: Stage) -> float | None:
        if stage.flink_url is None or stage.job_prefix is None:
            return None
        return job_progressed_at(stage.flink_url, stage.job_prefix, self.timeout)

    def _any_record_waits(self, committed: dict, ends: dict) -> bool:
        return any(
            records_between(self.bootstrap, TopicPartition(t, p, committed[(t, p)]), ends[(t, p)], limit=1)
            for (t, p) in ends
            if ends[(t, p)] > committed[(t, p)]
        )


def connector_states(connect_url: str, client=http, timeout: float = 5.0) -> dict[str, str]:
    """Connector name: the state of its first task that is not RUNNING, else the
    connector's own state (what the API, `make status` and the supervisor show)."""
    return {
        name: connector_state(connector_status(connect_url, name, client, timeout))
        for name in client.get(f"{connect_url}/connectors", timeout=timeout).json()
    }


def connector_status(connect_url: str, name: str, client=http, timeout: float = 5.0) -> dict:
    """Kafka Connect's status of one connector: its state and each task's (with its error)."""
    return client.get(f"{connect_url}/connectors/{name}/status", timeout=timeout).json()


def connector_state(status: dict, trace: bool = False) -> str:
    """One connector's state from its Kafka Connect status: the state of its first
    task that is not RUNNING (with the first line of its error when `trace`), else
    the connector's own state; "NO TASKS" for a RUNNING connector without any."""
    tasks = status.get("tasks", [])
    if not tasks:
        return "NO TASKS" if status["connector"]["state"] == "RUNNING" else status["connector"]["state"]
    bad = next((t for t in tasks if t["state"] != "RUNNING"), None)
    if bad is None:
        return status["connector"]["state"]
    if trace and bad.get("trace"):
        return f"{bad['state']}: {bad['trace'].splitlines()[0]}"
    return bad["state"]


def consumer_lag(bootstrap: str, group: str, topics: list[str], timeout: float = 10.0) -> int:
    """Records in TOPICS that consumer group GROUP has not committed past yet, as a
    read_committed reader counts them (the sink's lag, the Flink job's source lag)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "isolation.level": "read_committed"})
    try:
        md = c.list_topics(timeout=timeout).topics
        parts = [TopicPartition(t, p) for t in topics if t in md for p in md[t].partitions]
        lag = 0
        for tp in c.committed(parts, timeout=timeout) if parts else []:
            _, high = c.get_watermark_offsets(tp, timeout=timeout)
            if high > max(tp.offset, 0):
                lag += records_between(bootstrap, tp, high)
        return lag
    finally:
        c.close()


def records_between(
    bootstrap: str, tp: TopicPartition, high: int, timeout: float = 5.0, limit: int | None = None
) -> int:
    """Records a read_committed reader gets from tp's offset up to `high` (counting
    stops at `limit`). Not simply high - offset: transaction markers (commit, abort)
    take offsets too, and a reader never commits past the last of them."""
    probe = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "tweetstream-progress-probe",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "log_level": 3,
        }
    )
    try:
        probe.assign([TopicPartition(tp.topic, tp.partition, max(tp.offset, 0))])
        found, deadline = 0, time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = probe.poll(0.5)
            if msg is None:
                continue
            if msg.error():  # end of partition: only markers (or nothing committed yet) were left
                break
            if msg.offset() >= high:
                break
            found += 1
            if limit is not None and found >= limit:
                return found
        else:
            position = probe.position([TopicPartition(tp.topic, tp.partition)])[0].offset
            found += max(0, high - max(position, tp.offset))  # an open transaction: not readable yet
        return found
    finally:
        probe.close()
