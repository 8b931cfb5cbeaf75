"""Each service starts with its own secrets only, and secret files are private from their first byte."""

from __future__ import annotations

import stat

import pytest

from stack import common
from stack.common import SERVICE_SECRETS, private_file, service_env

ALL_SECRET_VARIABLES = {v for own in SERVICE_SECRETS.values() for v, _ in own}


@pytest.fixture(autouse=True)
def no_secrets_in_the_environment(monkeypatch):
    # (secrets are generated under the unit tier's temporary stack home: conftest.py)
    for name in ("PIPELINE_DB_PASSWORD", "REGISTRY_DB_PASSWORD", "API_DB_PASSWORD", "POSTGRES_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("X_BEARER_TOKEN", "caller-token")
    monkeypatch.setenv("SOME_DB_PASSWORD", "caller-password")
    monkeypatch.setenv("STACK_TEST_SETTING", "kept")


@pytest.mark.parametrize(
    "service, own",
    [
        ("api", {"API_DB_PASSWORD"}),
        ("connect", {"PIPELINE_DB_PASSWORD"}),
        ("registry", {"APICURIO_DATASOURCE_PASSWORD"}),
        ("kafka", set()),
        ("flink-jobmanager", set()),
        ("postgres", set()),
    ],
)
def test_a_service_gets_its_own_secrets_and_none_of_the_callers(service, own):
    env = service_env(service)
    assert ALL_SECRET_VARIABLES & set(env) == own
    assert "X_BEARER_TOKEN" not in env and "SOME_DB_PASSWORD" not in env
    assert env["STACK_TEST_SETTING"] == "kept"
    # the addresses connectors/*.json name are not secrets
    assert env["SINK_JDBC_URL"].startswith("jdbc:postgresql://")


def test_the_secret_is_the_generated_password():
    env = service_env("api")
    assert env["API_DB_PASSWORD"] == (common.settings.secrets / "api_db_password").read_text()
    assert len(env["API_DB_PASSWORD"]) >= 24


def test_the_supervisor_keeps_the_callers_environment():
    env = service_env("supervisor")
    assert env["X_BEARER_TOKEN"] == "caller-token"


def test_generated_secrets_are_private(tmp_path):
    common.secret("pipeline_db_password")
    assert stat.S_IMODE(common.settings.secrets.stat().st_mode) == 0o700
    assert stat.S_IMODE((common.settings.secrets / "pipeline_db_password").stat().st_mode) == 0o600


def test_a_private_file_is_never_readable_by_others_and_never_overwritten(tmp_path):
    path = tmp_path / "pw"
    private_file(path, "s3cret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "s3cret"
    with pytest.raises(FileExistsError):
        private_file(path, "other")
