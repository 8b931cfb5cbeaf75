#!/bin/bash
# Docker Compose only: the official postgres image runs this once at initdb.
# Same settings as the local stack; listen_addresses is overridden on the
# command line (a container must accept its network).
set -euo pipefail
cat /etc/tweetstream/postgresql.conf >> "$PGDATA/postgresql.conf"
echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
