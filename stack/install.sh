#!/usr/bin/env bash
# Install everything the local stack needs, from the package registries only:
# Debian packages (Java 17, PostgreSQL 15, Maven, npm), PyPI (the project and
# the Flink 2.2.1 runtime), Maven Central (Kafka, Connect plugins, Apicurio,
# Flink jars; pinned in stack/pom.xml) and npm (Chart.js).
# Idempotent and cached: a step whose inputs did not change since its last
# success is skipped, so a second run does nothing.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
home=${STACK_HOME:-$repo/.stack}
dist=$home/dist
venv=$repo/.venv
stamps=$dist/stamps
mkdir -p "$stamps"
t_start=$(date +%s)

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
# fresh NAME FILES...: true when the step ran before with these exact inputs
fresh() { local name=$1; shift; [ -f "$stamps/$name" ] && [ "$(cat "$@" | sha256sum)" = "$(cat "$stamps/$name")" ]; }
done_() { local name=$1; shift; cat "$@" | sha256sum > "$stamps/$name"; }

# --- Debian packages -------------------------------------------------------
need=()
java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1 || true)
[ "${java_major:-0}" -ge 17 ] 2>/dev/null || need+=(openjdk-17-jre-headless)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
command -v mvn >/dev/null || need+=(maven)
command -v npm >/dev/null || need+=(npm)
command -v curl >/dev/null || need+=(curl)
# the dashboard's browser test drives Debian's Chromium (Playwright never downloads one)
[ -x /usr/bin/chromium ] || need+=(chromium)
# Docker Compose's configuration check of the two compose files (no engine needed)
command -v docker-compose >/dev/null || need+=(docker-compose)
if [ ${#need[@]} -gt 0 ]; then
  step "apt-get install ${need[*]}"
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# --- Python: the project and its dependencies ------------------------------
if [ ! -x "$venv/bin/python" ]; then
  step "python venv $venv"
  python3 -m venv "$venv"
fi
# Every package pinned with its hashes in requirements-dev.lock (`make lock`
# writes it; the images install requirements.lock, the same without the
# tests'): a file whose hash does not match is refused. The project itself is
# then installed on top, without dependencies and without fetching a build
# backend (setuptools is in the lock).
if ! fresh python "$repo/pyproject.toml" "$repo/requirements-dev.lock"; then
  step "pip install --require-hashes -r requirements-dev.lock; pip install -e . (no dependencies)"
  "$venv/bin/pip" install -q --require-hashes -r "$repo/requirements-dev.lock"
  "$venv/bin/pip" install -q --no-deps --no-build-isolation -e "$repo"
  done_ python "$repo/pyproject.toml" "$repo/requirements-dev.lock"
fi

# --- Flink 2.2.1 runtime from its PyPI wheels ------------------------------
# --no-deps: PyFlink's Python dependencies are only for Python jobs; SQL jobs
# need the JVM runtime the wheels carry (bin/, lib/, opt/).
flink_lock=$repo/stack/flink/requirements.lock
if ! fresh flink "$flink_lock"; then
  step "pip install --no-deps --require-hashes -r stack/flink/requirements.lock (Flink 2.2.1)"
  "$venv/bin/pip" install -q --no-deps --require-hashes -r "$flink_lock"
  done_ flink "$flink_lock"
fi

# --- JVM parts from Maven Central ------------------------------------------
# Inputs: the POMs and the sources of our modules (the Flink format
# stack/flink/lenient-format, the converter's manifest), sorted so that the
# stamp is stable.
mapfile -t maven_inputs < <(
  echo "$repo/stack/pom.xml"
  echo "$repo/stack/maven.sh"
  find "$repo/stack/connect/apicurio-converter" "$repo/stack/flink/lenient-format" "$repo/stack/flink/tokenizer" \
       -path '*/target' -prune -o -type f -print | LC_ALL=C sort
)
if ! fresh maven "${maven_inputs[@]}"; then
  step "mvn package (stack/pom.xml): Kafka, Connect plugins, Apicurio Registry, Flink jars, lenient format"
  rm -rf "$dist/kafka" "$dist/connect-plugins" "$dist/registry" "$dist/flink-jars" "$dist/markers"
  # also compiles and tests stack/flink/lenient-format, whose jar lands in flink-jars/
  bash "$repo/stack/maven.sh" -f "$repo/stack/pom.xml" -Dstack.dist="$dist" package
  done_ maven "${maven_inputs[@]}"
fi

# Flink loads connectors and formats from its lib/; the SQL client needs the gateway in opt/.
flink_home=$("$venv/bin/python" -c 'import pyflink, os; print(os.path.dirname(pyflink.__file__))')
for jar in "$dist"/flink-jars/*.jar; do
  case $(basename "$jar") in
    flink-sql-gateway-*) ln -sf "$jar" "$flink_home/opt/" ;;
    *) ln -sf "$jar" "$flink_home/lib/" ;;
  esac
done

# --- Chart.js from npm -----------------------------------------------------
if ! fresh npm "$repo/web/package.json" "$repo/web/package-lock.json" || [ ! -d "$repo/web/node_modules/chart.js" ]; then
  step "npm ci (web/)"
  (cd "$repo/web" && npm ci --no-audit --no-fund --loglevel=error)
  done_ npm "$repo/web/package.json" "$repo/web/package-lock.json"
fi

echo "install complete in $(( $(date +%s) - t_start ))s"
