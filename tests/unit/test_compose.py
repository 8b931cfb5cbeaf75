"""Docker Compose mirrors the local stack: what the two files name (services, ports,
configuration files, versions, connector variables, scripts) matches the local
stack. (Compose's own configuration check: tests/install/test_compose_config.py.)"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
import yaml

from stack.common import REPO, SERVING_DB, service_env
from stack.services import SERVICES

KAFKA_FILE, APPS_FILE = REPO / "docker-compose.kafka.yml", REPO / "docker-compose.yml"


def compose(path):
    return yaml.safe_load(path.read_text())["services"]


def all_services() -> dict:
    return compose(KAFKA_FILE) | compose(APPS_FILE)


def pom_versions() -> dict[str, str]:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    props = ET.parse(REPO / "stack" / "pom.xml").getroot().find("m:properties", ns)
    return {el.tag.split("}")[1]: el.text for el in props}


def test_every_local_service_is_in_compose():
    # the local supervisor's job is Compose's restart policy
    assert set(SERVICES) - {"supervisor"} | {"producer", "init"} == set(all_services())


def test_compose_restarts_what_crashes():
    policies = {name: svc.get("restart") for name, svc in all_services().items()}
    assert policies == {
        **{n: "unless-stopped" for n in set(SERVICES) - {"supervisor"}},
        "producer": "on-failure",
        "init": "no",
    }


def test_published_ports_match_the_local_stack_on_loopback():
    published = {name: svc.get("ports", []) for name, svc in all_services().items()}
    for name, svc in SERVICES.items():
        if svc.port and name != "kafka":  # the broker advertises kafka:9092, reachable in the network only
            assert f"127.0.0.1:{svc.port}:{svc.port}" in published[name], name
    assert all(p.startswith("127.0.0.1:") for ports in published.values() for p in ports)


@pytest.mark.parametrize(
    "service, config",
    [
        ("kafka", "stack/kafka/server.properties"),
        ("registry", "stack/registry/application.properties"),
        ("connect", "stack/connect/worker.properties"),
        ("postgres", "stack/postgres/postgresql.conf"),
    ],
)
def test_services_mount_the_local_configuration_file(service, config):
    volumes = all_services()[service]["volumes"]
    assert any(v.startswith(f"./{config}:") for v in volumes)
    assert (REPO / config).exists()


def local_flink_jars() -> list[str]:
    """The jars the local stack puts in Flink's lib/ and opt/, by name: those stack/pom.xml copies
    from Maven Central (its flink-jars execution) and the project's own Flink modules."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    versions = pom_versions()
    root = ET.parse(REPO / "stack" / "pom.xml").getroot()
    execution = next(
        e for e in root.iterfind(".//m:execution", ns) if e.findtext("m:id", namespaces=ns) == "flink-jars"
    )
    jars = []
    for item in execution.iterfind(".//m:artifactItem", ns):
        version = re.sub(r"\$\{([^}]+)\}", lambda m: versions[m.group(1)], item.findtext("m:version", namespaces=ns))
        jars.append(f"{item.findtext('m:artifactId', namespaces=ns)}-{version}.jar")
    for module in ("lenient-format", "tokenizer"):
        pom = ET.parse(REPO / "stack" / "flink" / module / "pom.xml").getroot()
        jars.append(f"{pom.findtext('m:artifactId', namespaces=ns)}-{pom.findtext('m:version', namespaces=ns)}.jar")
    return jars


def test_flink_image_carries_the_local_config_and_the_pinned_jars():
    dockerfile = (REPO / "stack" / "flink" / "Dockerfile").read_text()
    versions = pom_versions()
    assert f"FROM flink:{versions['flink.version']}-" in dockerfile
    assert "COPY stack/flink/config.yaml" in dockerfile
    jars = local_flink_jars()
    assert len(jars) == 5, jars  # three from Maven Central, two of the project's
    assert [jar for jar in jars if jar not in dockerfile] == []


def test_images_have_the_pinned_versions():
    versions, services = pom_versions(), all_services()
    assert services["kafka"]["image"] == f"apache/kafka:{versions['kafka.version']}"
    assert services["registry"]["image"] == f"apicurio/apicurio-registry:{versions['apicurio.version']}"
    assert f"FROM apache/kafka:{versions['kafka.version']}" in (REPO / "stack" / "connect" / "Dockerfile").read_text()


def test_connector_variables_are_set_in_both_stacks():
    used = {m for f in (REPO / "connectors").glob("*.json") for m in re.findall(r"\$\{env:(\w+)\}", f.read_text())}
    assert used == {"SINK_JDBC_URL", "PIPELINE_DB_PASSWORD", "REGISTRY_V2_URL"}
    assert used <= set(all_services()["connect"]["environment"])
    assert used <= set(service_env("connect"))
    assert all_services()["connect"]["environment"]["SINK_JDBC_URL"].endswith(f"/{SERVING_DB}")


def test_init_runs_the_same_scripts_and_set_up_code():
    dockerfile = (REPO / "stack" / "init" / "Dockerfile").read_text()
    for folder in ("sql", "db", "connectors", "stack"):
        assert f"COPY {folder} {folder}" in dockerfile
    assert "stack.compose_init" in dockerfile


def test_both_files_join_the_external_kafka_network():
    for path in (KAFKA_FILE, APPS_FILE):
        assert yaml.safe_load(path.read_text())["networks"]["default"] == {"name": "kafka-network", "external": True}
