"""The places that name the pipeline's outputs agree with each other.

An output is named five times: the latest pipeline script (sql/v<N>_*.sql) writes
its Kafka topic, stack/kafka/topics.json creates the topic, a connector of
connectors/*.json reads it, db/*.sql creates the PostgreSQL table the connector
writes (named after the topic), and stack.pipeline.SERVING_TABLES lists it. Each
one written by the script must be in every other place, and nothing may be in one
of them but not written by the script, except what is listed here on purpose: the
topics the script reads (tweets), the connectors' dead-letter topic (dlq_sink), the
tables the database derives (stack.pipeline.DERIVED_TABLES) and its own tables
(DB_OWN_TABLES below).

`read_facts` parses the files; `disagreements` checks the facts, so the tests below
feed it broken facts and check that each message names what is missing where."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from api.core.config import Settings
from producer.config import ProducerSettings
from stack import pipeline
from stack.common import REPO

# tables of the serving database that no topic fills (db/*.sql makes and writes them itself)
DB_OWN_TABLES = (
    "retention",  # db/002_retention.sql: how long the per-minute rows are kept
    "sink_rejects",  # db/005_sink_guard.sql: rows the sink's guard set aside
)
TOPICS_FILE = "stack/kafka/topics.json"
SERVING = "stack.pipeline.SERVING_TABLES"
DERIVED = "stack.pipeline.DERIVED_TABLES"
PREFIX = "${TOPIC_PREFIX}"


@dataclass(frozen=True)
class Facts:
    script: str  # the latest pipeline script, relative to the repository: sql/v4_counts.sql
    writes: dict[str, str]  # a Kafka table the script inserts into -> its topic (without ${TOPIC_PREFIX})
    reads: dict[str, str]  # a Kafka table the script only reads -> its topic
    unprefixed: tuple[str, ...]  # Kafka tables of the script whose topic does not start with ${TOPIC_PREFIX}
    topics: tuple[str, ...]  # created by stack/kafka/topics.json
    connectors: dict[str, tuple[str, ...]]  # connectors/<name>.json -> its "topics"
    dead_letters: dict[str, str]  # connectors/<name>.json -> its dead-letter topic
    table_names: dict[str, str]  # connectors/<name>.json -> its "collection.name.format"
    db_tables: dict[str, str]  # a table db/*.sql creates -> the file that creates it
    serving: tuple[str, ...]  # stack.pipeline.SERVING_TABLES
    derived: tuple[str, ...]  # stack.pipeline.DERIVED_TABLES
    producer_topic: str  # the producer's default topic (producer.config.ProducerSettings.topic)
    api_dead_letter_topic: str  # what /api/stats reads as the dead letters (api.core.config.Settings)


def _without_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", " ", sql, flags=re.S)


def parse_script(sql: str) -> tuple[dict[str, str], dict[str, str], tuple[str, ...]]:
    """(Kafka tables written -> topic, Kafka tables read -> topic, tables whose topic lacks the prefix)."""
    kafka, unprefixed, inserted = {}, [], set()
    for statement in pipeline.statements(sql):
        code = _without_comments(statement)
        inserted |= set(re.findall(r"\bINSERT\s+INTO\s+`?(\w+)`?", code, re.I))
        m = re.match(r"\s*CREATE\s+(?:TEMPORARY\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?`?(\w+)`?", code, re.I)
        if not m:
            continue
        options = dict(re.findall(r"'([^']+)'\s*=\s*'((?:[^']|'')*)'", code[code.upper().rfind("WITH") :]))
        if options.get("connector") in ("kafka", "upsert-kafka") and "topic" in options:
            topic = options["topic"]
            if not topic.startswith(PREFIX):
                unprefixed.append(m.group(1))
            kafka[m.group(1)] = topic.removeprefix(PREFIX)
    writes = {t: topic for t, topic in kafka.items() if t in inserted}
    reads = {t: topic for t, topic in kafka.items() if t not in inserted}
    return writes, reads, tuple(unprefixed)


def parse_db(files: list[Path]) -> dict[str, str]:
    """Each table (not view) a db/*.sql file creates -> that file's name."""
    tables = {}
    for f in sorted(files):
        for name in re.findall(
            r"\bCREATE\s+(?:UNLOGGED\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:public\.)?\"?(\w+)\"?",
            _without_comments(f.read_text(encoding="utf-8")),
            re.I,
        ):
            tables.setdefault(name, f"db/{f.name}")
    return tables


def read_facts(root: Path = REPO) -> Facts:
    script = root / "sql" / pipeline.latest().path.name
    writes, reads, unprefixed = parse_script(script.read_text(encoding="utf-8"))
    connectors = {
        f"connectors/{f.name}": json.loads(f.read_text()) for f in sorted((root / "connectors").glob("*.json"))
    }
    topics = json.loads((root / TOPICS_FILE).read_text())
    return Facts(
        script=f"sql/{script.name}",
        writes=writes,
        reads=reads,
        unprefixed=unprefixed,
        topics=tuple(t for t in topics if not t.startswith("_")),
        connectors={n: tuple(t.strip() for t in c["topics"].split(",") if t.strip()) for n, c in connectors.items()},
        dead_letters={
            n: c["errors.deadletterqueue.topic.name"]
            for n, c in connectors.items()
            if "errors.deadletterqueue.topic.name" in c
        },
        table_names={n: c.get("collection.name.format", "${topic}") for n, c in connectors.items()},
        db_tables=parse_db(list((root / "db").glob("*.sql"))),
        serving=tuple(pipeline.SERVING_TABLES),
        derived=tuple(pipeline.DERIVED_TABLES),
        producer_topic=ProducerSettings.model_fields["topic"].default,
        api_dead_letter_topic=Settings.model_fields["dead_letter_topic"].default,
    )


def disagreements(f: Facts) -> list[str]:
    """What is named in one place but missing from another, one sentence each."""
    out = []
    written = set(f.writes.values())
    read = set(f.reads.values())
    dead = set(f.dead_letters.values())
    readers: dict[str, list[str]] = {}
    for name, topics in f.connectors.items():
        for t in topics:
            readers.setdefault(t, []).append(name)

    # how the names map: a Flink table, its topic, its PostgreSQL table are one name
    for table, topic in sorted(f.writes.items()):
        if table != topic:
            out.append(f"table '{table}' of {f.script} writes topic '{topic}': a table is named after its topic")
    for table in f.unprefixed:
        out.append(f"table '{table}' of {f.script} names its topic without {PREFIX} (tests run on their own topics)")
    for name, fmt in sorted(f.table_names.items()):
        if fmt != "${topic}":
            out.append(f"{name} names its tables '{fmt}', not after their topics ('${{topic}}')")

    # every output the script writes is in every other place
    for topic in sorted(written):
        if topic not in f.topics:
            out.append(f"topic '{topic}' is written by {f.script} but not created by {TOPICS_FILE}")
        if topic not in readers:
            out.append(f"topic '{topic}' is written by {f.script} but read by no connector (connectors/*.json)")
        if topic not in f.db_tables:
            out.append(f"topic '{topic}' is written by {f.script} but db/*.sql creates no table '{topic}' for the sink")
        if topic not in f.serving:
            out.append(f"table '{topic}' is written by {f.script} but not in {SERVING}")

    # and nothing is elsewhere that the script does not write
    for topic in sorted(set(f.topics) - written - read - dead):
        out.append(
            f"topic '{topic}' is created by {TOPICS_FILE} but neither written nor read by {f.script}"
            " nor a connector's dead-letter topic"
        )
    for topic, names in sorted(readers.items()):
        if topic not in written:
            out.extend(f"topic '{topic}' is read by {name} but not written by {f.script}" for name in names)
        if len(names) > 1:
            out.append(f"topic '{topic}' is read by {' and '.join(names)}: its table would be written twice")
    for table in f.serving:
        if table not in written:
            out.append(f"table '{table}' is in {SERVING} but not written by {f.script}")
    for table in f.derived:
        if table not in f.db_tables:
            out.append(f"table '{table}' is in {DERIVED} but not created by db/*.sql")
        if table in written:
            out.append(f"table '{table}' is in {DERIVED} but written by {f.script} (the sink would write it too)")
    for table, file in sorted(f.db_tables.items()):
        if table not in written and table not in f.derived and table not in DB_OWN_TABLES:
            out.append(
                f"table '{table}' is created by {file} but is neither written by {f.script} (through the sink)"
                f" nor in {DERIVED} nor one of the database's own (DB_OWN_TABLES in {Path(__file__).name})"
            )

    for table in DB_OWN_TABLES:
        if table not in f.db_tables:
            out.append(f"table '{table}' is in DB_OWN_TABLES ({Path(__file__).name}) but not created by db/*.sql")

    # the inputs and the dead letters
    for topic in sorted(read):
        if topic not in f.topics:
            out.append(f"topic '{topic}' is read by {f.script} but not created by {TOPICS_FILE}")
    if f.producer_topic not in read:
        out.append(
            f"the producer writes topic '{f.producer_topic}' (producer.config.ProducerSettings.topic)"
            f" but {f.script} reads {sorted(read)}"
        )
    for name, topic in sorted(f.dead_letters.items()):
        if topic not in f.topics:
            out.append(f"dead-letter topic '{topic}' of {name} is not created by {TOPICS_FILE}")
    if f.dead_letters and f.api_dead_letter_topic not in dead:
        out.append(
            f"the API reports dead letters of topic '{f.api_dead_letter_topic}' (api.core.config.Settings.dead_letter_topic)"
            f" but the connectors send theirs to {sorted(dead)}"
        )
    return out


# --------------------------------------------------------------------------- the repository


FACTS = read_facts()


def test_the_outputs_agree():
    problems = disagreements(FACTS)
    assert not problems, "\n".join(problems)


def test_the_facts_are_read():
    """The parsers find what the files hold (a parser that found nothing would agree with itself)."""
    assert FACTS.writes == {t: t for t in pipeline.SERVING_TABLES}
    assert FACTS.reads == {"tweets": "tweets"}
    assert set(FACTS.dead_letters.values()) == {"dlq_sink"}
    assert sorted(FACTS.connectors) == ["connectors/rejected-posts-sink.json", "connectors/serving-tables-sink.json"]
    assert {*pipeline.SERVING_TABLES, *pipeline.DERIVED_TABLES, *DB_OWN_TABLES} == set(FACTS.db_tables)
    assert "trending_hashtags" not in FACTS.db_tables  # a view


# --------------------------------------------------------------------------- broken facts


def broken(**changes) -> list[str]:
    return disagreements(dataclasses.replace(FACTS, **changes))


def without(items, item) -> tuple:
    assert item in items
    return tuple(i for i in items if i != item)


def test_a_topic_topics_json_does_not_create():
    assert broken(topics=without(FACTS.topics, "post_stats")) == [
        "topic 'post_stats' is written by sql/v4_counts.sql but not created by stack/kafka/topics.json"
    ]


def test_a_topic_no_connector_reads():
    connectors = dict(FACTS.connectors)
    name = "connectors/serving-tables-sink.json"
    connectors[name] = without(connectors[name], "unigram_tops")
    assert broken(connectors=connectors) == [
        "topic 'unigram_tops' is written by sql/v4_counts.sql but read by no connector (connectors/*.json)"
    ]


def test_a_topic_without_its_table():
    tables = {t: f for t, f in FACTS.db_tables.items() if t != "rejected_posts"}
    assert broken(db_tables=tables) == [
        "topic 'rejected_posts' is written by sql/v4_counts.sql but db/*.sql creates no table 'rejected_posts' for the sink"
    ]


def test_a_written_table_not_served():
    assert broken(serving=without(FACTS.serving, "hashtag_minute_counts")) == [
        "table 'hashtag_minute_counts' is written by sql/v4_counts.sql but not in stack.pipeline.SERVING_TABLES"
    ]


def test_a_topic_nothing_writes():
    connectors = dict(FACTS.connectors)
    connectors["connectors/old.json"] = ("trending_hashtags",)
    assert broken(
        topics=(*FACTS.topics, "trending_hashtags"),
        connectors=connectors,
        serving=(*FACTS.serving, "trending_hashtags"),
        db_tables={**FACTS.db_tables, "trending_hashtags": "db/001_serving_tables.sql"},
    ) == [
        "topic 'trending_hashtags' is created by stack/kafka/topics.json but neither written nor read by"
        " sql/v4_counts.sql nor a connector's dead-letter topic",
        "topic 'trending_hashtags' is read by connectors/old.json but not written by sql/v4_counts.sql",
        "table 'trending_hashtags' is in stack.pipeline.SERVING_TABLES but not written by sql/v4_counts.sql",
        "table 'trending_hashtags' is created by db/001_serving_tables.sql but is neither written by"
        " sql/v4_counts.sql (through the sink) nor in stack.pipeline.DERIVED_TABLES nor one of the database's"
        " own (DB_OWN_TABLES in test_outputs_agree.py)",
    ]


def test_a_topic_two_connectors_read():
    connectors = dict(FACTS.connectors)
    connectors["connectors/rejected-posts-sink.json"] += ("post_stats",)
    assert broken(connectors=connectors) == [
        "topic 'post_stats' is read by connectors/rejected-posts-sink.json and connectors/serving-tables-sink.json:"
        " its table would be written twice"
    ]


def test_a_table_of_the_database_s_own():
    tables = {t: f for t, f in FACTS.db_tables.items() if t != "sink_rejects"}
    assert broken(db_tables=tables) == [
        "table 'sink_rejects' is in DB_OWN_TABLES (test_outputs_agree.py) but not created by db/*.sql"
    ]


def test_a_derived_table():
    tables = {t: f for t, f in FACTS.db_tables.items() if t != "unigram_counts"}
    assert broken(db_tables=tables) == [
        "table 'unigram_counts' is in stack.pipeline.DERIVED_TABLES but not created by db/*.sql"
    ]
    assert broken(derived=(*FACTS.derived, "post_stats")) == [
        "table 'post_stats' is in stack.pipeline.DERIVED_TABLES but written by sql/v4_counts.sql (the sink would write it too)"
    ]


def test_the_input_and_the_dead_letters():
    assert broken(topics=without(FACTS.topics, "tweets")) == [
        "topic 'tweets' is read by sql/v4_counts.sql but not created by stack/kafka/topics.json"
    ]
    assert broken(topics=without(FACTS.topics, "dlq_sink")) == [
        "dead-letter topic 'dlq_sink' of connectors/rejected-posts-sink.json is not created by stack/kafka/topics.json",
        "dead-letter topic 'dlq_sink' of connectors/serving-tables-sink.json is not created by stack/kafka/topics.json",
    ]
    assert broken(producer_topic="posts") == [
        "the producer writes topic 'posts' (producer.config.ProducerSettings.topic) but sql/v4_counts.sql reads ['tweets']"
    ]
    assert broken(api_dead_letter_topic="dlq") == [
        "the API reports dead letters of topic 'dlq' (api.core.config.Settings.dead_letter_topic)"
        " but the connectors send theirs to ['dlq_sink']"
    ]


def test_names_that_do_not_map():
    assert broken(writes={**FACTS.writes, "hashtag_counts": "hashtags"}) == [
        "table 'hashtag_counts' of sql/v4_counts.sql writes topic 'hashtags': a table is named after its topic",
        "topic 'hashtags' is written by sql/v4_counts.sql but not created by stack/kafka/topics.json",
        "topic 'hashtags' is written by sql/v4_counts.sql but read by no connector (connectors/*.json)",
        "topic 'hashtags' is written by sql/v4_counts.sql but db/*.sql creates no table 'hashtags' for the sink",
        "table 'hashtags' is written by sql/v4_counts.sql but not in stack.pipeline.SERVING_TABLES",
        "topic 'hashtag_counts' is created by stack/kafka/topics.json but neither written nor read by"
        " sql/v4_counts.sql nor a connector's dead-letter topic",
        "topic 'hashtag_counts' is read by connectors/serving-tables-sink.json but not written by sql/v4_counts.sql",
        "table 'hashtag_counts' is in stack.pipeline.SERVING_TABLES but not written by sql/v4_counts.sql",
        "table 'hashtag_counts' is created by db/001_serving_tables.sql but is neither written by"
        " sql/v4_counts.sql (through the sink) nor in stack.pipeline.DERIVED_TABLES nor one of the database's"
        " own (DB_OWN_TABLES in test_outputs_agree.py)",
    ]
    assert broken(table_names={**FACTS.table_names, "connectors/rejected-posts-sink.json": "db.${topic}"}) == [
        "connectors/rejected-posts-sink.json names its tables 'db.${topic}', not after their topics ('${topic}')"
    ]


# --------------------------------------------------------------------------- broken files


@pytest.fixture
def copy(tmp_path) -> Path:
    """The files the facts are read from, copied (the tests break the copy)."""
    for d in ("sql", "db", "connectors"):
        shutil.copytree(REPO / d, tmp_path / d)
    (tmp_path / TOPICS_FILE).parent.mkdir(parents=True)
    shutil.copy(REPO / TOPICS_FILE, tmp_path / TOPICS_FILE)
    return tmp_path


def test_a_topic_dropped_from_topics_json(copy):
    path = copy / TOPICS_FILE
    topics = json.loads(path.read_text())
    del topics["unigram_minute_tops"]
    path.write_text(json.dumps(topics))
    assert disagreements(read_facts(copy)) == [
        "topic 'unigram_minute_tops' is written by sql/v4_counts.sql but not created by stack/kafka/topics.json"
    ]


def test_an_output_added_to_the_script_only(copy):
    path = copy / "sql" / pipeline.latest().path.name
    sql = path.read_text()
    table = sql[sql.index("CREATE TABLE post_stats") : sql.index(");", sql.index("CREATE TABLE post_stats")) + 2]
    insert = "  INSERT INTO post_stats_2 SELECT 'all', COUNT(*), MAX(event_ms) FROM unique_posts;\nEND;"
    sql = sql.replace(table, table + "\n\n" + table.replace("post_stats", "post_stats_2")).replace("END;", insert)
    path.write_text(sql)
    assert disagreements(read_facts(copy)) == [
        "topic 'post_stats_2' is written by sql/v4_counts.sql but not created by stack/kafka/topics.json",
        "topic 'post_stats_2' is written by sql/v4_counts.sql but read by no connector (connectors/*.json)",
        "topic 'post_stats_2' is written by sql/v4_counts.sql but db/*.sql creates no table 'post_stats_2' for the sink",
        "table 'post_stats_2' is written by sql/v4_counts.sql but not in stack.pipeline.SERVING_TABLES",
    ]


def test_a_table_dropped_from_the_database(copy):
    path = copy / "db" / "003_rejected_posts.sql"
    path.write_text(path.read_text().replace("CREATE TABLE IF NOT EXISTS rejected_posts", "CREATE VIEW rejected_posts"))
    assert disagreements(read_facts(copy)) == [
        "topic 'rejected_posts' is written by sql/v4_counts.sql but db/*.sql creates no table 'rejected_posts' for the sink"
    ]
