"""`helm install`, `helm upgrade` and `helm uninstall` against the sandbox API server: what the
chart README promises about CRDs holds (adoption of CRDs applied by kubectl, upgrade with the
release, kept on uninstall together with the objects in them)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.conftest import apply, get, kubectl
from tests.integration.chart.helpers import CHART, require_fresh_crd_copy

from dpio_sandbox import helm, manifests
from dpio_sandbox.sandbox import Sandbox

pytestmark = pytest.mark.sandbox

RELEASE, NAMESPACE = "h", "dpio-chart-helm"
CRDS = ("hostpassthroughpolicies.dpio.io", "vmdeviceassignments.dpio.io")
OWNER = (f"meta.helm.sh/release-name={RELEASE}", f"meta.helm.sh/release-namespace={NAMESPACE}")


@pytest.fixture
def helm_env(sandbox: Sandbox, tmp_path: Path) -> Iterator[dict[str, str]]:
    """helm's state in tmp_path, talking to the sandbox; the CRDs given back to nobody after."""
    env = {**os.environ, "KUBECONFIG": str(sandbox.kubeconfig)}
    env.update({f"HELM_{kind}_HOME": str(tmp_path / kind) for kind in ("CACHE", "CONFIG", "DATA")})
    apply(sandbox, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    try:
        yield env
    finally:
        helm.run("uninstall", RELEASE, "-n", NAMESPACE, "--ignore-not-found", env=env)
        for crd in CRDS:
            kubectl(sandbox, "annotate", "crd", crd, *(o.split("=")[0] + "-" for o in OWNER))
            kubectl(sandbox, "label", "crd", crd, "app.kubernetes.io/managed-by-")


def test_install_adopts_the_crds_upgrades_them_and_uninstall_keeps_them(
    sandbox: Sandbox, helm_env: dict[str, str]
) -> None:
    require_fresh_crd_copy()
    kubectl(
        sandbox, "apply", "--server-side", "--force-conflicts", "-f", str(CHART.parents[1] / "crds")
    )
    apply(
        sandbox,
        manifests.policy(
            "helm-survivor", hosts=["esx-gpu-03.lab.local"], devices=[{"address": "0000:3b:00.0"}]
        ),
    )
    refused = helm.run("install", RELEASE, str(CHART), "-n", NAMESPACE, check=False, env=helm_env)
    assert refused.returncode != 0  # Helm does not silently take over objects it didn't make
    assert "invalid ownership metadata" in refused.stderr

    # README "CRDs and upgrades": label and annotate, then Helm adopts them.
    for crd in CRDS:
        kubectl(sandbox, "label", "crd", crd, "app.kubernetes.io/managed-by=Helm", "--overwrite")
        kubectl(sandbox, "annotate", "crd", crd, *OWNER, "--overwrite")
    installed = helm.run("install", RELEASE, str(CHART), "-n", NAMESPACE, env=helm_env)
    # NOTES.txt: where the credentials go, and that uninstall keeps the CRDs.
    assert f"the Secret {NAMESPACE}/vcenter" in installed.stdout
    assert "helm.sh/resource-policy: keep" in installed.stdout
    # The NetworkPolicy's notes: no vCenter listed, API server ports open to any address.
    assert "networkPolicy.vcenter is empty: the operator can't reach vCenter" in installed.stdout
    assert "networkPolicy.apiServer.cidrs is empty" in installed.stdout
    policy = get(sandbox, "networkpolicy", f"{RELEASE}-dpio-operator", NAMESPACE)
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    crd = get(sandbox, "crd", CRDS[0])
    assert crd["metadata"]["labels"]["helm.sh/chart"] == "dpio-operator-0.1.0"

    upgraded = helm.run(
        "upgrade",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--set",
        "operator.workers=8",
        "--set-json",
        'networkPolicy.vcenter=[{"cidr": "198.51.100.7/32"}]',
        "--set",
        "networkPolicy.apiServer.cidrs={192.0.2.10/32}",
        env=helm_env,
    )
    assert "the vCenters at 198.51.100.7/32" in upgraded.stdout
    assert "is empty" not in upgraded.stdout
    policy = get(sandbox, "networkpolicy", f"{RELEASE}-dpio-operator", NAMESPACE)
    assert {"ipBlock": {"cidr": "198.51.100.7/32"}} in policy["spec"]["egress"][2]["to"]
    deployment = get(sandbox, "deployment", f"{RELEASE}-dpio-operator", NAMESPACE)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert {"name": "DPIO_WORKERS", "value": "8"} in container["env"]

    out = helm.run("uninstall", RELEASE, "-n", NAMESPACE, env=helm_env)
    assert "kept due to the resource policy" in out.stdout
    for name in CRDS:
        get(sandbox, "crd", name)  # still there
    assert get(sandbox, "hpp", "helm-survivor")["metadata"]["name"] == "helm-survivor"
    gone = json.loads(kubectl(sandbox, "get", "clusterroles", "-o", "json"))["items"]
    assert f"{RELEASE}-dpio-operator" not in {r["metadata"]["name"] for r in gone}
    kubectl(sandbox, "delete", "hpp", "helm-survivor", "--timeout=30s")
