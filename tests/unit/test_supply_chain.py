"""What the install fetches is what was pinned: Maven checks every checksum,
the Compose images' downloads are checked against pinned SHA-256 sums, Python
installs from a hash-locked set, and the jars with known CVEs are past their
fixes."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stack.common import DIST, REPO

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


def test_the_pinned_sums_are_those_of_the_jars_maven_installed():
    installed = {p.name: p for p in (DIST / "flink-jars").glob("*.jar")}
    if not installed:
        pytest.skip("run `make install` first")
    for line in (REPO / "stack" / "flink" / "jars.sha256").read_text().splitlines():
        digest, path = line.split()
        assert hashlib.sha256(installed[Path(path).name].read_bytes()).hexdigest() == digest, path


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


@pytest.mark.parametrize("library, fixed", [("commons-lang3", (3, 18, 0)), ("avro", (1, 12, 1))])
def test_the_connect_plugins_carry_no_jar_with_a_known_cve(library, fixed):
    if not (DIST / "connect-plugins").is_dir():
        pytest.skip("run `make install` first")
    jars = list((DIST / "connect-plugins").glob(f"*/{library}-[0-9]*.jar"))
    assert jars, library
    for jar in jars:
        version = tuple(int(x) for x in re.match(rf"{library}-(\d+)\.(\d+)\.(\d+)", jar.name).groups())
        assert version >= fixed, jar.name


def test_the_compose_postgres_image_is_past_the_2024_fixes():
    tag = re.search(r"image: postgres:15\.(\d+)", (REPO / "docker-compose.yml").read_text())
    assert tag and int(tag.group(1)) >= 15, "postgres:15.10 has published CVEs fixed in later 15.x releases"


@pytest.fixture
def tampered_repo(tmp_path):
    """A repository (a plain folder) holding one artifact whose .sha1 is not its own."""
    group = "test.tweetstream.tampered"
    folder = tmp_path / "repo" / Path(*group.split(".")) / "lib" / "1.0"
    folder.mkdir(parents=True)
    (folder / "lib-1.0.pom").write_text(
        f"<project><modelVersion>4.0.0</modelVersion><groupId>{group}</groupId>"
        "<artifactId>lib</artifactId><version>1.0</version></project>"
    )
    (folder / "lib-1.0.jar").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    (folder / "lib-1.0.pom.sha1").write_text(hashlib.sha1((folder / "lib-1.0.pom").read_bytes()).hexdigest())
    (folder / "lib-1.0.jar.sha1").write_text("0" * 40)
    cached = Path.home() / ".m2" / "repository" / "test" / "tweetstream"
    shutil.rmtree(cached, ignore_errors=True)
    yield group, tmp_path / "repo"
    shutil.rmtree(cached, ignore_errors=True)


@pytest.mark.skipif(shutil.which("mvn") is None, reason="Maven is installed by `make install`")
def test_maven_as_the_install_runs_it_refuses_an_artifact_whose_checksum_does_not_match(tmp_path, tampered_repo):
    group, repo = tampered_repo
    (tmp_path / "pom.xml").write_text(f"""<project>
      <modelVersion>4.0.0</modelVersion>
      <groupId>test</groupId><artifactId>consumer</artifactId><version>1</version>
      <repositories><repository><id>tampered</id><url>{repo.as_uri()}</url></repository></repositories>
      <dependencies><dependency><groupId>{group}</groupId><artifactId>lib</artifactId><version>1.0</version></dependency></dependencies>
    </project>""")
    # the dependency plugin's version stack/pom.xml uses: already in the local repository
    resolve = ["-f", str(tmp_path / "pom.xml"), "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:resolve"]
    cached = Path.home() / ".m2" / "repository" / Path(*group.split(".")) / "lib" / "1.0" / "lib-1.0.jar"
    run = subprocess.run(["bash", str(MAVEN), *resolve], capture_output=True, text=True, timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert f"Could not transfer artifact {group}:lib:jar:1.0" in out, out[-3000:]
    assert f"Checksum validation failed, expected {'0' * 40} but is" in out
    assert not cached.exists()
    # what the flag changes: Maven's default only warns, and takes the jar
    lenient = subprocess.run(["mvn", "-B", "-q", *resolve], capture_output=True, text=True, timeout=300)
    assert lenient.returncode == 0, lenient.stdout + lenient.stderr
    assert cached.exists()


def _wheel(folder: Path) -> Path:
    """A minimal pure-Python wheel, built here (no index needed)."""
    import zipfile

    info = "tampered_pkg-1.0.dist-info"
    files = {
        "tampered_pkg/__init__.py": "",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: tampered-pkg\nVersion: 1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    folder.mkdir()
    wheel = folder / "tampered_pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return wheel


def test_pip_as_the_install_runs_it_refuses_a_package_whose_hash_does_not_match(tmp_path):
    """stack/install.sh's `pip install --require-hashes -r <lock>`, pointed at a local folder
    instead of PyPI and installing into a folder of its own: a wheel whose SHA-256 is not
    the locked one is refused and nothing is installed; the right hash installs it."""
    wheel = _wheel(tmp_path / "wheels")
    real = hashlib.sha256(wheel.read_bytes()).hexdigest()

    def install(sha256: str) -> subprocess.CompletedProcess:
        lock = tmp_path / "requirements.lock"
        lock.write_text(f"tampered-pkg==1.0 \\\n    --hash=sha256:{sha256}\n")
        target = tmp_path / f"target-{sha256[:8]}"
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--require-hashes",
                "-r",
                str(lock),
                "--no-index",
                "--find-links",
                str(wheel.parent),
                "--target",
                str(target),
                "--disable-pip-version-check",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )

    refused = install("0" * 64)
    assert refused.returncode != 0
    assert "THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE" in refused.stderr, refused.stderr
    assert f"Expected sha256 {'0' * 64}" in refused.stderr and f"Got        {real}" in refused.stderr
    assert not (tmp_path / f"target-{'0' * 8}" / "tampered_pkg").exists()
    taken = install(real)
    assert taken.returncode == 0, taken.stderr
    assert (tmp_path / f"target-{real[:8]}" / "tampered_pkg" / "__init__.py").exists()
