#!/usr/bin/env bash
# Re-pin the Python dependencies with their hashes (`make lock`), after a change
# of pyproject.toml's dependencies:
#   requirements.lock              the project's dependencies and its build
#                                  backend, each version pinned with the SHA-256
#                                  of every file PyPI has for it (the images)
#   requirements-dev.lock          the same plus the test extra (make install)
#   stack/flink/requirements.lock  the Flink runtime wheels (installed without
#                                  their Python dependencies: SQL jobs need only
#                                  the JVM runtime they carry)
# stack/install.sh installs from the last two with `pip install --require-hashes`.
# Versions already installed in .venv are kept (-c), so a re-lock moves only
# what pyproject.toml asks to move.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/pip" install -q "pip-tools==7.7.0"
constraints=$tools/installed.txt
if [ -x "$repo/.venv/bin/pip" ]; then
  "$repo/.venv/bin/pip" freeze --exclude-editable | grep -v '^apache-flink' > "$constraints" || true
else
  : > "$constraints"
fi
compile() { (cd "$repo" && "$tools/venv/bin/pip-compile" -q --generate-hashes --allow-unsafe --all-build-deps \
  --strip-extras --no-header --no-emit-find-links -c "$constraints" "$@" pyproject.toml); }
compile -o requirements.lock
compile --extra test -c requirements.lock -o requirements-dev.lock
for lock in requirements.lock requirements-dev.lock; do
  { echo "# Written by stack/lock.sh (make lock) from pyproject.toml: every package pinned with its hashes."
    grep -v '^$' "$repo/$lock"; } > "$tools/lock" && mv "$tools/lock" "$repo/$lock"
done

flink_version=2.2.1
"$tools/venv/bin/python" - "$flink_version" > "$repo/stack/flink/requirements.lock" <<'PY'
import json, sys, urllib.request
version = sys.argv[1]
print("# The Flink runtime (stack/lock.sh writes this file; install: pip install --no-deps --require-hashes)")
for name in ("apache-flink", "apache-flink-libraries"):
    req = urllib.request.Request(f"https://pypi.org/simple/{name}/",
                                 headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    files = json.load(urllib.request.urlopen(req, timeout=60))["files"]
    prefixes = tuple(f"{n}-{version}" for n in (name, name.replace("-", "_")))
    hashes = sorted(f["hashes"]["sha256"] for f in files
                    if f["filename"].startswith(prefixes) and f["filename"][len(prefixes[0])] in ".-")
    if not hashes:
        sys.exit(f"{name} {version}: no file on PyPI")
    print(f"{name}=={version} \\")
    print(" \\\n".join(f"    --hash=sha256:{h}" for h in hashes))
PY
echo "wrote requirements.lock, requirements-dev.lock and stack/flink/requirements.lock"
