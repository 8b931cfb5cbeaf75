"""The install as it runs: Maven and pip refuse a download whose checksum does
not match, and what `make install` put in the stack's home is what was pinned
(runs Maven and pip; needs `make install`)."""

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


def test_the_pinned_sums_are_those_of_the_jars_maven_installed():
    installed = {p.name: p for p in (DIST / "flink-jars").glob("*.jar")}
    if not installed:
        pytest.skip("run `make install` first")
    for line in (REPO / "stack" / "flink" / "jars.sha256").read_text().splitlines():
        digest, path = line.split()
        assert hashlib.sha256(installed[Path(path).name].read_bytes()).hexdigest() == digest, path


@pytest.mark.parametrize("library, fixed", [("commons-lang3", (3, 18, 0)), ("avro", (1, 12, 1))])
def test_the_connect_plugins_carry_no_jar_with_a_known_cve(library, fixed):
    if not (DIST / "connect-plugins").is_dir():
        pytest.skip("run `make install` first")
    jars = list((DIST / "connect-plugins").glob(f"*/{library}-[0-9]*.jar"))
    assert jars, library
    for jar in jars:
        version = tuple(int(x) for x in re.match(rf"{library}-(\d+)\.(\d+)\.(\d+)", jar.name).groups())
        assert version >= fixed, jar.name


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
