"""The chart's `leaderElection` values: what they render (the operator's Lease settings, a Role
for that one Lease, a rolling update), the combinations the schema refuses, and that the Role is
enough: the operator under the chart's ServiceAccount takes, renews and releases its Lease.
helm is built from Go modules (dpio_sandbox.helm), hence the `sandbox` marker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.e2e.conftest import apply, kubectl
from tests.integration.chart.helpers import run_operator
from tests.integration.vsphere.helpers import eventually

from dpio_sandbox import helm, install
from dpio_sandbox.sandbox import Sandbox

pytestmark = pytest.mark.sandbox

CHART = Path(__file__).resolve().parents[3] / "charts" / "dpio-operator"


def render(*sets: str, namespace: str = "ha", release: str = "dpio") -> list[dict[str, Any]]:
    args = [arg for value in sets for arg in ("--set", value)]
    out = helm.run("template", release, str(CHART), "--namespace", namespace, *args).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = [obj for obj in objects if obj["kind"] == "Deployment"]
    return dict(found)


def operator_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    (container,) = deployment(objects)["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def lease_rules(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        rule
        for obj in objects
        if obj["kind"] == "Role"
        for rule in obj["rules"]
        if "coordination.k8s.io" in rule["apiGroups"]
    ]


@pytest.mark.parametrize(
    ("sets", "lease", "duration", "replicas", "strategy"),
    [
        ((), None, None, 1, "Recreate"),
        (
            ("leaderElection.enabled=true", "replicaCount=2"),
            "dpio-dpio-operator-leader",
            "15",
            2,
            "RollingUpdate",
        ),
        (
            (
                "leaderElection.enabled=true",
                "replicaCount=3",
                "leaderElection.leaseName=ha",
                "leaderElection.leaseDurationSeconds=30",
            ),
            "ha",
            "30",
            3,
            "RollingUpdate",
        ),
    ],
)
def test_leader_election_renders_the_lease_settings_and_a_rolling_update(
    sets: tuple[str, ...], lease: str | None, duration: str | None, replicas: int, strategy: str
) -> None:
    objects = render(*sets)
    env = operator_env(objects)
    assert (env.get("DPIO_LEASE"), env.get("DPIO_LEASE_DURATION")) == (lease, duration)
    spec = deployment(objects)["spec"]
    assert (spec["replicas"], spec["strategy"]["type"]) == (replicas, strategy)
    rules = lease_rules(objects)
    if lease is None:
        assert rules == []
        return
    # get/update only the one Lease; create can't be limited by name.
    assert {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "resourceNames": [lease],
        "verbs": ["get", "update"],
    } in rules
    assert all(rule.get("resourceNames") or rule["verbs"] == ["create"] for rule in rules)


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ("replicaCount=2", "maximum"),  # two reconciling replicas
        ("leaderElection.enabled=true,peering.enabled=true", "/peering/enabled"),
        ("leaderElection.enabled=true,leaderElection.leaseDurationSeconds=2", "minimum"),
        ("leaderElection.enabled=true,leaderElection.leaseName=Not_A_Name", "leaseName"),
        ("leaderElection.lease=x", "additional properties 'lease' not allowed"),
    ],
)
def test_the_schema_refuses_replicas_without_leader_election(sets: str, message: str) -> None:
    proc = helm.run("template", "dpio", str(CHART), "--set", sets, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr


HA_NAMESPACE = "dpio-ha-chart"


def _lease(box: Sandbox, name: str) -> dict[str, Any]:
    out = kubectl(box, "get", "lease", name, "-n", HA_NAMESPACE, "-o", "json", "--ignore-not-found")
    return dict(json.loads(out)["spec"]) if out.strip() else {}


def test_under_the_charts_rbac_the_operator_takes_renews_and_releases_its_lease(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    install.install(sandbox)  # the CRDs, which this rendering leaves out
    objects = render(
        "leaderElection.enabled=true",
        "replicaCount=2",
        "crds.install=false",
        namespace=HA_NAMESPACE,
        release="ha",
    )
    apply(sandbox, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": HA_NAMESPACE}})
    kubectl(
        sandbox,
        "apply",
        "--server-side",
        "-f",
        "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
    )
    name = "ha-dpio-operator-leader"  # a release of its own: the other chart tests' stay as is
    try:
        with run_operator(sandbox, objects, tmp_path) as log:
            first = eventually(
                lambda: _lease(sandbox, name).get("holderIdentity") and _lease(sandbox, name),
                timeout=30,
            )
            renewed = eventually(
                lambda: _lease(sandbox, name).get("renewTime") != first["renewTime"], timeout=15
            )
        assert renewed
        assert first["leaseDurationSeconds"] == 15
        assert _lease(sandbox, name).get("holderIdentity", "") == ""  # released on SIGTERM
        text = log.read_text()
        assert "Leading: this replica reconciles" in text
        assert "Forbidden" not in text
    finally:
        kubectl(sandbox, "delete", "namespace", HA_NAMESPACE, "--wait=false")
        kubectl(
            sandbox,
            "delete",
            "clusterrole,clusterrolebinding",
            "ha-dpio-operator",
            "--ignore-not-found",
        )
