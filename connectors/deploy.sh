#!/usr/bin/env bash
# Deploy (create or update) every connector in this folder with Kafka Connect's
# REST API. PUT .../config is idempotent: the same file twice changes nothing.
#   CONNECT_URL=http://127.0.0.1:8083 connectors/deploy.sh [file.json ...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
url=${CONNECT_URL:-http://127.0.0.1:8083}
files=("$@")
[ ${#files[@]} -gt 0 ] || files=("$here"/*.json)
for f in "${files[@]}"; do
  name=$(basename "$f" .json)
  echo "PUT $url/connectors/$name/config"
  curl -sS --fail-with-body --max-time 60 -X PUT -H 'Content-Type: application/json' \
       --data @"$f" "$url/connectors/$name/config"
  echo
done
