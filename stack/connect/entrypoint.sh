#!/bin/bash
# The worker's configuration is stack/connect/worker.properties (mounted), with
# the few keys that differ in a container appended: a later key wins.
set -euo pipefail
{
  cat /etc/tweetstream/worker.properties
  echo "bootstrap.servers=${CONNECT_BOOTSTRAP_SERVERS:-kafka:9092}"
  echo "listeners=http://0.0.0.0:8083"
  echo "rest.advertised.host.name=${HOSTNAME}"
  echo "plugin.path=/opt/connect-plugins"
} > /tmp/worker.properties
exec /opt/kafka/bin/connect-distributed.sh /tmp/worker.properties
