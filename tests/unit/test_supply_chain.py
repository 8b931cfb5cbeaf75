"""What the install fetches is what was pinned: Maven checks every checksum,
the Compose images' downloads are checked against pinned SHA-256 sums, Python
installs from a hash-locked set, and the jars with known CVEs are past their
fixes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stack.common import REPO

MAVEN = REPO / "stack" / "maven.sh"
DOCKERFILES = sorted((REPO / "stack").glob("*/Dockerfile"))


def test_every_maven_run_checks_checksums_strictly():
    install = (REPO / "stack" / "install.sh").read_text()
    assert re.findall(r"^\s*mvn ", install, re.M) == []  # only through stack/maven.sh
    assert 'bash "$repo/stack/maven.sh"' in install
    assert "--strict-checksums" in MAVEN.read_text()
    runs = [line for f in DOCKERFILES for line in f.read_text().splitlines() if re.search(r"\bmvn ", line)]
    assert runs and all("--strict-checksums" in line for line in runs), runs


def test_every_download_of_a_dockerfile_is_checked_against_a_pinned_sum():
    dockerfile = (REPO / "stack" / "flink" / "Dockerfile").read_text()
    downloads = re.findall(r"curl -fsSLO \S+/([^/\s]+\.jar)", dockerfile)
    sums = {
        Path(path).name: digest
        for digest, path in (
            line.split() for line in (REPO / "stack" / "flink" / "jars.sha256").read_text().splitlines()
        )
    }
    assert downloads and sorted(downloads) == sorted(sums)
    assert "sha256sum --check --strict jars.sha256" in dockerfile
    for f in DOCKERFILES:  # no other file fetched unchecked
        other = [line for line in f.read_text().splitlines() if re.search(r"\b(curl|wget)\b.*https?://", line)]
        assert f.name == "Dockerfile" and (f.parent.name == "flink" or not other), (f, other)


def _pip_installs() -> list[str]:
    files = [REPO / "stack" / "install.sh", *DOCKERFILES, REPO / "api" / "Dockerfile", REPO / "producer" / "Dockerfile"]
    text = "\n".join(f.read_text().replace("\\\n", " ") for f in files)
    return [run for line in text.splitlines() for run in re.split(r"&&", line) if re.search(r"pip\"? install", run)]


def test_every_pip_install_is_hash_locked_or_takes_no_dependencies():
    installs = _pip_installs()
    assert len(installs) >= 8, installs
    for run in installs:
        assert "--require-hashes" in run or "--no-deps" in run, run
        assert "--upgrade" not in run, run


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-dev.lock", "stack/flink/requirements.lock"])
def test_every_locked_package_is_pinned_with_its_hashes(lock):
    text = (REPO / lock).read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", re.sub(r"(?m)^\s*#.*\n", "", text).strip())
    assert len(entries) >= 2
    for entry in entries:
        assert re.match(r"^[A-Za-z0-9_.\-]+==\S+ \\", entry), entry
        assert "--hash=sha256:" in entry, entry


def test_the_dev_lock_holds_the_image_lock():
    def pins(name):
        return dict(re.findall(r"(?m)^([A-Za-z0-9_.\-]+)==(\S+)", (REPO / name).read_text()))

    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    assert runtime.items() <= dev.items()
    assert {"fastapi", "confluent-kafka", "setuptools"} <= set(runtime) and "pytest" in dev and "pytest" not in runtime


def test_the_compose_postgres_image_is_past_the_2024_fixes():
    tag = re.search(r"image: postgres:15\.(\d+)", (REPO / "docker-compose.yml").read_text())
    assert tag and int(tag.group(1)) >= 15, "postgres:15.10 has published CVEs fixed in later 15.x releases"
