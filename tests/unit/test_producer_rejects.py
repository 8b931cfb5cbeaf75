"""The rejects file takes whatever the input held, and a replay of malformed lines through the CLI
ends with exit 0 (a stand-in writer instead of Kafka: no services)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from producer import cli
from producer.avro import make_encoder
from producer.config import ProducerSettings
from producer.post import Post
from producer.writer import DeliveryStats, RejectLog


def read_rejects(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_rejects_writer_never_raises_on_what_the_input_holds(tmp_path):
    log = RejectLog(tmp_path / "r" / "x.rejects.jsonl", preview_bytes=100)
    log.add("f.jsonl", 1, "invalid text: lone surrogate", '{"text": "a\ud800b"}')  # a str with a lone surrogate
    log.add("f.jsonl", 2, "invalid UTF-8: byte 0xe9 at position 3", b"caf\xe9 \xff")  # bytes that are not UTF-8
    log.add("f.jsonl", 3, "line too large", b"x" * 1000)  # over the preview
    log.add("f.jsonl", 4, "line too large: 5000000 bytes", b"y" * 100, 5_000_000)  # a preview given with its size
    log.add("f.jsonl", 5, "cannot encode", {"deep": [[[]]]})  # not text at all
    log.add("f\udc80.jsonl", 6, "reason \udc81", "é")  # even the origin and reason
    log.close()
    lines = (tmp_path / "r" / "x.rejects.jsonl").read_bytes().splitlines()
    assert len(lines) == 6 and all(line.decode("utf-8") for line in lines)  # one UTF-8 JSON line each
    got = [json.loads(line) for line in lines]
    assert got[0] == {
        "source": "f.jsonl",
        "line": 1,
        "reason": "invalid text: lone surrogate",
        "raw": '{"text": "a\\ud800b"}',
        "bytes": 20,
        "truncated": False,
    }
    assert (got[1]["raw"], got[1]["bytes"]) == ("caf\\xe9 \\xff", 6)
    assert (got[2]["raw"], got[2]["bytes"], got[2]["truncated"]) == ("x" * 100, 1000, True)
    assert (got[3]["raw"], got[3]["bytes"], got[3]["truncated"]) == ("y" * 100, 5_000_000, True)
    assert got[4]["raw"] == "{'deep': [[[]]]}"
    assert (got[5]["source"], got[5]["reason"], got[5]["raw"]) == ("f\\udc80.jsonl", "reason \\udc81", "é")
    assert log.count == 6 and log.by_reason["line too large"] == 2


class FakeWriter:
    """PostWriter's interface, encoding for real (the compiled Avro encoder) and keeping what it is given."""

    def __init__(self, settings: ProducerSettings):
        self.topic = settings.topic
        self._encode = make_encoder(Path(settings.schema_file).read_text(), 1, Post._fields)
        self.stats = DeliveryStats()
        self.sent: list[bytes] = []

    def fast_path(self):
        return self._encode, lambda topic, value, key: self.sent.append(key), self.topic

    def produce_when_room(self, value: bytes, key: bytes) -> None:
        self.sent.append(key)

    def poll(self, timeout: float = 0) -> None:
        pass

    def flush(self, timeout: float = 60.0) -> int:
        return 0


def test_cli_replay_of_malformed_lines_exits_0_and_keeps_every_reject(tmp_path, monkeypatch):
    writers: list[FakeWriter] = []
    monkeypatch.setattr(cli, "PostWriter", lambda settings: writers.append(FakeWriter(settings)) or writers[-1])
    monkeypatch.setenv("PRODUCER_REJECTS_DIR", str(tmp_path / "rejects"))
    monkeypatch.setenv("PRODUCER_METRICS_PORT", "-1")
    monkeypatch.setenv("PRODUCER_LOG_INTERVAL_S", "0")
    monkeypatch.setenv("PRODUCER_MAX_LINE_BYTES", "100000")
    good = '{"id": "%d", "text": "ok #covid"}'
    path = tmp_path / "bad.jsonl"
    path.write_bytes(
        b"\n".join(
            [
                (good % 1).encode(),
                b'{"id": "2", "text": "t", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
                b'{"id": "3", "text": "t", "n": ' + b"9" * 5000 + b"}",
                b'{"id": "4", "text": "bad \\ud800"}',
                b'{"id": "5", "text": "caf\xe9"}',
                b'{"id": "6", "text": "' + b"x" * 200_000 + b'"}',
                b'{"id": "7", "text": "t", "[/x]": "\\udfff"}',  # a reason that looks like markup
                (good % 8).encode(),
            ]
        )
        + b"\n"
    )

    result = CliRunner().invoke(cli.app, ["replay", str(path)])

    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "sent 2 posts to 'tweets'" in output and "rejected 6 lines" in output
    assert writers[0].sent == [b"1", b"8"]
    rejects_file = Path(re.search(r"rejected lines kept in (\S+)", output).group(1))
    rejects = read_rejects(rejects_file)
    assert [(r["line"], r["reason"], r["bytes"], r["truncated"]) for r in rejects] == [
        (2, "invalid JSON: nested deeper than 1024 levels (column 1055)", 10_031, True),
        (3, "invalid JSON: number with more than 4300 digits", 5_031, False),
        (4, "invalid text: lone surrogate", 33, False),
        (5, "invalid UTF-8: byte 0xe9 at position 24", 27, False),
        (6, "line too large: 200023 bytes (limit 100000)", 200_023, True),
        (7, "invalid JSON: lone surrogate in [/x]", 42, False),
    ]
    assert rejects[2]["raw"] == '{"id": "4", "text": "bad \\ud800"}'  # the line as it is: a JSON escape
    assert rejects[3]["raw"] == '{"id": "5", "text": "caf\\xe9"}'  # an invalid byte, escaped
    assert all(r["source"] == str(path) for r in rejects)
    for line_no in (2, 3, 4, 5, 6):
        assert f"rejected bad.jsonl line {line_no}:" in output
    assert "rejected bad.jsonl line 7: invalid JSON: lone surrogate in [/x]" in output
