#!/usr/bin/env bash
# Maven as the install runs it: batch mode, quiet, and --strict-checksums, so
# that an artifact whose checksum does not match the repository's fails the
# build instead of printing a warning nobody reads.
#   stack/maven.sh -f stack/pom.xml -Dstack.dist=.stack/dist package
set -euo pipefail
exec mvn -B -q --strict-checksums "$@"
