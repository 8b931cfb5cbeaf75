"""Kafka's storage is formatted whatever the random cluster id looks like: one in
64 began with "-" (seen: -BUf_LmbQEiey1ytVsr50g), and StorageTool read it as an
option (`argument --cluster-id/-t: expected one argument`). Runs the installed
Kafka's StorageTool."""

from __future__ import annotations

import subprocess

import pytest

from stack.common import CONF, DIST
from stack.provision import kafka_format_command


@pytest.mark.parametrize("cluster_id", ["-BUf_LmbQEiey1ytVsr50g", "--f_LmbQEiey1ytVsr50gA", "BUf_LmbQEiey1ytVsr50g-"])
def test_storage_is_formatted_with_any_cluster_id(tmp_path, cluster_id):
    if not (DIST / "kafka" / "libs").is_dir():
        pytest.fail("Kafka is not installed: run `make install`")
    config = tmp_path / "server.properties"
    lines = (CONF / "kafka" / "server.properties").read_text().splitlines()
    config.write_text("\n".join(f"log.dirs={tmp_path / 'data'}" if s.startswith("log.dirs=") else s for s in lines))
    out = subprocess.run(kafka_format_command(cluster_id, config), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"cluster.id={cluster_id}" in (tmp_path / "data" / "meta.properties").read_text().splitlines()
