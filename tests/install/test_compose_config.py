"""Both Compose files pass a real Compose implementation's configuration check
(docker-compose, installed by `make install`). No Docker engine runs here:
nothing is started."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from stack.common import REPO

KAFKA_FILE, APPS_FILE = REPO / "docker-compose.kafka.yml", REPO / "docker-compose.yml"
PASSWORDS = {n: "x" for n in ("POSTGRES_PASSWORD", "PIPELINE_DB_PASSWORD", "REGISTRY_DB_PASSWORD", "API_DB_PASSWORD")}


@pytest.mark.parametrize("path", [KAFKA_FILE, APPS_FILE], ids=lambda p: p.name)
def test_compose_configuration_check_passes(path, tmp_path):
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose is missing: run `make install`"
    out = subprocess.run(
        [tool, "-f", str(path), "config", "-q"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **PASSWORDS},
    )
    assert out.returncode == 0, out.stderr


def test_apps_refuse_to_start_without_passwords():
    out = subprocess.run(
        [shutil.which("docker-compose"), "-f", str(APPS_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert out.returncode != 0 and "set POSTGRES_PASSWORD in .env" in out.stderr
