"""Secrets stay secret.

- The X bearer token never shows in the producer's output, logs, error messages or
  rejects files, even when the X API (a local stand-in, tests/producer/mocks.py)
  answers 401/403/429/503, cuts the stream, and echoes the token back in its error
  documents the way a verbose gateway might.
- No secret-looking string is tracked by git, and the generated passwords
  (.stack/secrets, git-ignored) are in no tracked file, no service log, and no answer
  of the Connect REST API or of our API.

The read-only role and the loopback binding are tested in test_hashtags_e2e.py.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from stack.common import settings
from tests.conftest import REPO
from tests.producer.mocks import (
    CLIENT_NOT_ENROLLED,
    FAST_BACKOFF,
    TOO_MANY_CONNECTIONS,
    Connection,
    MockX,
    stream_frame,
    tweet,
)

BOOTSTRAP = "127.0.0.1:9092"
REGISTRY = "http://127.0.0.1:8081/apis/ccompat/v7"
OUR_RULE = "1500000000000000001"  # the id the stand-in gives the first rule added
SECRETS = settings.secrets

# shaped like a real X API bearer token (21 A's, then URL-encoded base64), made at run time so it is in no file
TOKEN = "AAAAAAAAAAAAAAAAAAAAA" + "FaKe" + uuid.uuid4().hex.upper() + "%3D" + uuid.uuid4().hex


class EchoingX(MockX):
    """The X API stand-in, refusing a wrong token with a 401 that quotes the Authorization header it got."""

    def _authorized(self, h) -> bool:
        got = h.headers.get("Authorization")
        if got != f"Bearer {self.token}":
            self._json(
                h,
                401,
                {
                    "title": "Unauthorized",
                    "type": "about:blank",
                    "status": 401,
                    "detail": f"Unauthorized: the credentials '{got}' are not valid",
                },
            )
            return False
        return True


@pytest.fixture
def topic(stack):
    """A topic of the test's own (the producer registers its schema under <topic>-value): deleted afterwards."""
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    name = f"secrets_test_{uuid.uuid4().hex[:10]}"
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(15)
    yield name
    admin.delete_topics([name])[name].result(15)
    for permanent in ("false", "true"):
        httpx.delete(f"{REGISTRY}/subjects/{name}-value", params={"permanent": permanent}, timeout=5)


def run_producer(args: list[str], mock: MockX, topic: str, tmp_path: Path, cwd: Path = REPO, **env: str):
    """The producer CLI against the stand-in, into the test's topic; rejects files in tmp_path/rejects."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PRODUCER_") and k != "X_BEARER_TOKEN"}
    base.update({f"PRODUCER_{k.upper()}": str(v) for k, v in FAST_BACKOFF.items()})
    base.update(
        PRODUCER_TOPIC=topic,
        PRODUCER_REJECTS_DIR=str(tmp_path / "rejects"),
        PRODUCER_METRICS_PORT="-1",
        PRODUCER_BOOTSTRAP_SERVERS=BOOTSTRAP,
        PRODUCER_REGISTRY_URL=REGISTRY,
        PRODUCER_X_API_URL=mock.url,
        PYTHONPATH=str(REPO),
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "producer.cli", *args], cwd=cwd, env=base, capture_output=True, text=True, timeout=30
    )


def one_line(text: str) -> str:
    return " ".join(text.split())


def assert_token_nowhere(out: subprocess.CompletedProcess, tmp_path: Path) -> None:
    assert TOKEN not in out.stdout
    assert TOKEN not in out.stderr
    assert TOKEN not in one_line(out.stderr)  # not even across a wrapped line
    for f in (tmp_path / "rejects").glob("*"):
        assert TOKEN not in f.read_text(encoding="utf-8", errors="replace"), f
    for f in settings.logs.glob("*"):
        assert TOKEN.encode() not in f.read_bytes(), f


def test_x_stream_errors_are_clear_and_never_show_the_token(topic, tmp_path):
    echo = f"(request had Authorization: Bearer {TOKEN})"
    script = [
        Connection(status=429, body={**TOO_MANY_CONNECTIONS, "detail": f"{TOO_MANY_CONNECTIONS['detail']} {echo}"}),
        Connection(
            frames=[
                stream_frame(tweet(1, "covid: nouvelles mesures"), [OUR_RULE]),
                b'{"data": {"id": "2", "text": "cut',
            ],
            ending="abort",
        ),  # malformed, then disconnected
        Connection(status=503, body={"title": "Service Unavailable", "detail": f"upstream refused {echo}"}),
        Connection(status=403, body={**CLIENT_NOT_ENROLLED, "detail": f"{CLIENT_NOT_ENROLLED['detail']} {echo}"}),
    ]
    with MockX(script, token=TOKEN) as mock:
        out = run_producer(["x-stream"], mock, topic, tmp_path, X_BEARER_TOKEN=TOKEN)
        used = [h.get("Authorization") for _, _, h in mock.requests]
    # the token was really used, on every request
    assert used and set(used) == {f"Bearer {TOKEN}"}
    assert mock.stream_connections == 4
    assert out.returncode == 1, out.stderr
    text = one_line(out.stderr)
    assert f"sent 1 posts to '{topic}'" in text and "rejected 1 messages" in text
    assert "HTTP 429 ConnectionException: TooManyConnections" in text and "reconnecting" in text
    assert "HTTP 503 Service Unavailable" in text
    assert "stopped on error: x: the stream refused: HTTP 403 Client Forbidden: client-not-enrolled" in text
    assert "try `x-search`" in text
    # what the server echoed is shown, masked
    assert "(request had Authorization: Bearer ***)" in text
    assert_token_nowhere(out, tmp_path)
    rejects = list((tmp_path / "rejects").glob("*.jsonl"))
    assert len(rejects) == 1 and len(rejects[0].read_text().splitlines()) == 1


def test_x_stream_wrong_token_is_a_clear_401_without_the_token(topic, tmp_path):
    with EchoingX(token="the-right-one") as mock:
        out = run_producer(["x-stream"], mock, topic, tmp_path, PRODUCER_X_BEARER_TOKEN=TOKEN)
        assert [h.get("Authorization") for _, _, h in mock.requests] == [f"Bearer {TOKEN}"]
    assert out.returncode == 1, out.stderr
    text = one_line(out.stderr)
    assert "stopped on error: x: the rules API refused: 401 Unauthorized" in text
    assert "the credentials 'Bearer ***' are not valid" in text
    assert f"sent 0 posts to '{topic}'" in text
    assert_token_nowhere(out, tmp_path)


def test_x_search_token_from_a_dotenv_file_never_shows(topic, tmp_path):
    """The token read from a .env file in the working directory; the search answers 429, then 401."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / ".env").write_text(f"X_BEARER_TOKEN={TOKEN}\n")
    script = [
        (
            429,
            {"title": "Too Many Requests", "detail": f"slow down, Bearer {TOKEN}", "status": 429},
            {"x-rate-limit-reset": str(int(time.time()))},
        ),
        (401, {"title": "Unauthorized", "detail": f"token {TOKEN} was revoked", "status": 401}, {}),
    ]
    with MockX(search_pages=script, token=TOKEN) as mock:
        out = run_producer(["x-search", "--interval", "1"], mock, topic, tmp_path, cwd=workdir)
        used = [h.get("Authorization") for _, _, h in mock.requests]
    assert used == [f"Bearer {TOKEN}"] * 2
    assert out.returncode == 1, out.stderr
    text = one_line(out.stderr)
    assert "429 Too Many Requests slow down, Bearer ***" in text and "reconnecting" in text
    assert "stopped on error: x: recent search refused: 401 Unauthorized" in text and "token *** was revoked" in text
    assert_token_nowhere(out, tmp_path)


# ---------------------------------------------------------------- the repository

# (what, pattern): shapes of real credentials
SECRET_SHAPES = [
    ("X API bearer token", re.compile(r"A{21}[A-Za-z0-9%]{30,}")),
    ("private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("AWS access key", re.compile(r"\bA(?:KIA|SIA)[0-9A-Z]{16}\b")),
    ("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    ("Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("URL with a password", re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:[^/\s@'\"$%{<]+@")),
]
# a password, secret or token given a literal value: key = "value", key: value, KEY=value
ASSIGNMENT = re.compile(
    r"""(?ix) (?:^|[\s{,("'])
        ([\w.-]*(?:password|passwd|secret|bearer[_-]?token|access[_-]?token|api[_-]?key|private[_-]?key)[\w.-]*)
        ["']?\s*(?:=|:)\s*
        (["']?)([^\s"',;)}\]]*)"""
)
# keys that name something about a secret, not the secret
NOT_A_SECRET = re.compile(r"(?i)(encryption|_file|_dir|_path|_name|_env)$")
# values that are no secret: references to the environment or to a file, format placeholders, masks
PLACEHOLDER = re.compile(r"^(?:[$%<{].*|\.\.\.|\*+|)$")


def tracked_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    return [REPO / n for n in names.decode().split("\0") if n and (REPO / n).is_file()]


def findings(text: str, code: bool = False) -> list[str]:
    """Secret-looking strings of a file. In code (`code`), an unquoted value is a name, not a literal."""
    found = [what for what, pattern in SECRET_SHAPES if pattern.search(text)]
    for m in ASSIGNMENT.finditer(text):
        key, quoted, value = m.groups()
        if NOT_A_SECRET.search(key) or (code and not quoted) or PLACEHOLDER.match(value):
            continue
        found.append(f"{key}={value}")
    return found


@pytest.mark.parametrize(
    "sample, code, caught",
    [
        ('db_password = "hunter2hunter2"', True, True),
        ("password='hunter2'", True, True),
        ("POSTGRES_PASSWORD=s3cr3t-v4lue", False, True),
        ("API_DB_PASSWORD: hunter2", False, True),
        ('"connection.password": "pl4in-text"', False, True),
        ("X_BEARER_TOKEN=" + "A" * 21 + "abcdefghijklmnopqrstuvwxyz0123456789%3D", False, True),
        ("-----BEGIN OPENSSH PRIVATE KEY-----", False, True),
        ("postgresql://pipeline:hunter2@127.0.0.1/tweetstream", False, True),
        ('"connection.password": "${env:PIPELINE_DB_PASSWORD}"', False, False),
        ("POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}", False, False),
        ("printf 'POSTGRES_PASSWORD=%s\\n' $(openssl rand -hex 16)", False, False),
        ("password=secret(pw), autocommit=True", True, False),
        ("X_BEARER_TOKEN=... .venv/bin/python -m producer.cli x-stream", False, False),
        ("db_password: SecretStr | None = None", True, False),
        ("password_encryption = scram-sha-256", False, False),
    ],
)
def test_the_secret_scan_catches_literals_and_lets_references_pass(sample, code, caught):
    assert bool(findings(sample, code)) == caught, findings(sample, code)


def test_no_tracked_file_holds_a_secret():
    found = {}
    for f in tracked_files():
        if f == Path(__file__):  # the scan's own samples, above
            continue
        text = f.read_bytes().decode("utf-8", errors="ignore")
        if hits := findings(text, code=f.suffix == ".py"):
            found[str(f.relative_to(REPO))] = hits
    assert found == {}


@pytest.mark.parametrize("path", [".stack/secrets/api_db_password", ".stack/secrets/any", ".env"])
def test_secret_files_are_git_ignored(path):
    assert subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=REPO).returncode == 0
    assert subprocess.run(["git", "ls-files", path], cwd=REPO, capture_output=True, text=True).stdout == ""


def test_the_generated_passwords_are_private_and_in_no_tracked_file():
    files = sorted(SECRETS.glob("*")) if SECRETS.is_dir() else []
    if not files:
        pytest.skip("no .stack/secrets yet (the stack was never started here)")
    assert stat.S_IMODE(SECRETS.stat().st_mode) == 0o700
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    values = [f.read_text().strip().encode() for f in files]
    assert all(len(v) >= 16 for v in values)
    for f in tracked_files():
        data = f.read_bytes()
        assert not [v for v in values if v in data], f


def test_the_generated_passwords_show_in_no_log_and_no_answer(stack):
    values = [f.read_text().strip() for f in SECRETS.glob("*")]
    assert values
    for f in settings.logs.glob("*"):
        data = f.read_bytes()
        assert not [v for v in values if v.encode() in data], f
    connect = httpx.get("http://127.0.0.1:8083/connectors/serving-tables-sink/config", timeout=10)
    assert connect.status_code == 200
    assert connect.json()["connection.password"] == "${env:PIPELINE_DB_PASSWORD}"
    answers = [connect.text] + [
        httpx.get(f"http://127.0.0.1:8000{p}", timeout=10).text
        for p in ("/api/stats", "/openapi.json", "/metrics", "/healthz")
    ]
    for text in answers:
        assert not [v for v in values if v in text]


@pytest.mark.parametrize(
    "service",
    ["api", "connect", "registry", "kafka", "flink-jobmanager", "flink-taskmanager", "flink-sql-gateway", "postgres"],
)
def test_each_running_service_holds_its_own_secrets_only(stack, service):
    """Each process of each service holds the secrets stack/common.py's SERVICE_SECRETS gives
    it (the database password of its own role, if any) and no other."""
    from stack.common import SERVICE_SECRETS
    from stack.processes import process_tree, running_pid

    own = {v for v, _ in SERVICE_SECRETS.get(service, ())}
    pid = running_pid(service)
    if pid is None:
        pytest.skip(f"{service} is not run by the local stack controller here")
    values = {f.read_text().strip() for f in SECRETS.glob("*")}
    secret_variables = {v for pairs in SERVICE_SECRETS.values() for v, _ in pairs}
    for p in process_tree(pid):
        try:
            environ = Path(f"/proc/{p}/environ").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        names = {e.split(b"=", 1)[0].decode() for e in environ if b"=" in e}
        assert names & secret_variables == own, (service, p)
        leaked = {v for v in values if any(v.encode() in e for e in environ)}
        assert len(leaked) == len(own), (service, p)
