"""The deployment files as users apply them: the Kubernetes manifests against Kubernetes' own
schemas (kubernetes-validate, strict), the settings SPEC promises of a pod, the callmon config
inside them through `callmon check`, and the compose files' shared image and health checks.
(`deploy/test-image.sh` builds and runs the image and the compose files themselves.)"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from ruamel.yaml import YAML

from monitor import __version__
from tests.test_cli import callmon

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = sorted((ROOT / "deploy" / "kubernetes").glob("*/*.yaml"))
KUBERNETES_VERSION = "1.30.0"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in YAML(typ="safe").load_all(path.read_text()) if d]


def of_kind(path: Path, kind: str) -> list[dict[str, Any]]:
    return [d for d in documents(path) if d["kind"] == kind]


def pod_specs(path: Path) -> list[dict[str, Any]]:
    return [
        d["spec"]["template"]["spec"]
        for d in documents(path)
        if d["kind"] in ("Deployment", "StatefulSet")
    ]


def test_there_are_manifests_for_one_replica_and_for_several() -> None:
    assert [p.parent.name for p in KUBERNETES] == ["replicas", "single"]


@pytest.mark.parametrize("path", KUBERNETES, ids=lambda p: p.parent.name)
def test_each_manifest_passes_kubernetes_own_schema(path: Path) -> None:
    checked = 0
    for doc in documents(path):
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD's: checked against the Service below
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked >= 4


@pytest.mark.parametrize("path", KUBERNETES, ids=lambda p: p.parent.name)
def test_each_pod_is_locked_down_probed_and_sized(path: Path) -> None:
    (spec,) = pod_specs(path)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001
    (container,) = spec["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    resources = container["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}
    assert container["image"] == f"callmon:{__version__}"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/etc/callmon/config", "/etc/callmon/secrets", "/tmp"} <= mounts
    assert spec["terminationGracePeriodSeconds"] > 10  # the default shutdown_grace


def test_one_replica_keeps_its_sqlite_store_on_a_volume_claim() -> None:
    path = ROOT / "deploy" / "kubernetes" / "single" / "callmon.yaml"
    (stateful,) = of_kind(path, "StatefulSet")
    assert stateful["spec"]["replicas"] == 1
    (claim,) = stateful["spec"]["volumeClaimTemplates"]
    (container,) = stateful["spec"]["template"]["spec"]["containers"]
    state = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert state[claim["metadata"]["name"]] == "/var/lib/callmon"  # the image's STATE_DIR


def test_the_replicas_run_two_on_postgresql_with_a_disruption_budget() -> None:
    path = ROOT / "deploy" / "kubernetes" / "replicas" / "callmon.yaml"
    (deployment,) = of_kind(path, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    (budget,) = of_kind(path, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("path", KUBERNETES, ids=lambda p: p.parent.name)
def test_the_service_monitor_scrapes_the_service(path: Path) -> None:
    (monitor,) = of_kind(path, "ServiceMonitor")
    (service,) = of_kind(path, "Service")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    ports = {p["name"] for p in service["spec"]["ports"]}
    assert [(e["port"], e["path"]) for e in monitor["spec"]["endpoints"]] == [("http", "/metrics")]
    assert "http" in ports


@pytest.mark.parametrize("path", KUBERNETES, ids=lambda p: p.parent.name)
def test_the_config_inside_passes_callmon_check(path: Path, tmp_path: Path) -> None:
    """The ConfigMap's config, its `*_file` secrets from the Secret, laid out as the pod mounts
    them (/etc/callmon/config, /etc/callmon/secrets, the image's /etc/callmon/rules)."""
    (config_map,) = of_kind(path, "ConfigMap")
    (secret,) = of_kind(path, "Secret")
    (tmp_path / "config").mkdir()
    (tmp_path / "secrets").mkdir()
    (tmp_path / "config" / "callmon.yaml").write_text(config_map["data"]["callmon.yaml"])
    for name, value in secret["stringData"].items():
        (tmp_path / "secrets" / name).write_text(value)
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    result = callmon("check", "-c", "config/callmon.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: 1 providers, 1 notifiers")
    for name in secret["stringData"]:
        assert f"../secrets/{name}" in config_map["data"]["callmon.yaml"]


def test_the_dockerfile_labels_the_version_it_builds() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"ARG VERSION={__version__}\n" in dockerfile
    assert "# syntax=" not in dockerfile  # BuildKit would fetch a frontend from Docker Hub


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.replicas.yml"])
def test_compose_services_share_one_image(name: str) -> None:
    services = YAML(typ="safe").load((ROOT / "deploy" / name).read_text())["services"]
    built = {n: s for n, s in services.items() if "build" in s}
    assert built
    assert {s["image"] for s in built.values()} == {"callmon"}


def test_the_replicas_simulator_is_checked_where_it_serves() -> None:
    services = YAML(typ="safe").load((ROOT / "deploy" / "docker-compose.replicas.yml").read_text())[
        "services"
    ]
    listen = services["simulator"]["command"][-1]
    port = listen.rsplit(":", 1)[1]
    check = " ".join(services["simulator"]["healthcheck"]["test"])
    assert re.search(rf"\b{port}\b", check)
    assert "9464" not in check
