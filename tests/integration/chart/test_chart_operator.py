"""The operator run under the chart's RBAC: enough to do its job, refused the rest.

The operator runs locally with the rendered Deployment's own arguments and environment and a
kubeconfig holding only a token of the chart's ServiceAccount (TokenRequest API, as a pod's
projected token would). It must do its job: a HostPassthroughPolicy reaches Ready, Events are
posted, finalizers come off on delete, assignments from namespaces a policy doesn't serve are
refused in their status; and nothing it asks for is refused, except a Secret it wasn't given.
With `peering.enabled` it keeps its entry in kopf's ClusterKopfPeering.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.e2e.conftest import apply, get, kubectl
from tests.integration.chart.helpers import (
    CHART,
    NAMESPACE,
    container,
    install_default,
    render,
    run_operator,
)
from tests.integration.vsphere.helpers import eventually

from dpio_sandbox import manifests, vcsim
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """A simulator of this module's own (default inventory): its hosts change here."""
    state_dir = tmp_path_factory.mktemp("chart-vcsim")
    try:
        yield vcsim.start(state_dir)
    finally:
        vcsim.stop(state_dir)


@pytest.fixture(scope="module")
def operator_as_chart(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The default chart's operator, for this module; yields its log file."""
    objects = install_default(sandbox)
    with run_operator(sandbox, objects, tmp_path_factory.mktemp("chart-operator")) as log:
        yield log


def _secret(box: Sandbox, name: str, sim: Simulator) -> None:
    apply(
        box,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "stringData": {
                "server": sim.sdk_url,
                "username": sim.username,
                "password": sim.password,
                "caBundle": Path(sim.ca_file).read_text(),
            },
        },
    )


def _policy(name: str, secret: str | None) -> dict[str, Any]:
    # esx-gpu-03 rebinds without a reboot: Ready at once
    devices = [{"address": "0000:3b:00.0"}]
    return manifests.policy(name, hosts=["esx-gpu-03.lab.local"], devices=devices, secret=secret)


def _ready(box: Sandbox, name: str) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        conditions = get(box, "hpp", name).get("status", {}).get("conditions", [])
        ready = next((c for c in conditions if c["type"] == "Ready"), None)
        return ready if ready and ready["status"] != "Unknown" else None

    return check


def test_operator_under_the_chart_account_makes_a_policy_ready(
    sandbox: Sandbox, operator_as_chart: Path, sim: Simulator
) -> None:
    _secret(sandbox, "vcenter", sim)  # the chart's default vcenter.secretName
    _secret(sandbox, "not-listed", sim)  # in its namespace, but not in vcenter.*SecretNames
    apply(sandbox, _policy("chart-ready", None))
    apply(sandbox, _policy("chart-denied", "not-listed"))

    kubectl(sandbox, "wait", "--for=condition=Ready", "hpp/chart-ready", "--timeout=60s")
    states = [
        d["state"]
        for h in get(sandbox, "hpp", "chart-ready")["status"]["hosts"]
        for d in h["devices"]
    ]
    assert states == ["Active"]
    denied = eventually(_ready(sandbox, "chart-denied"))
    assert denied["status"] == "False"
    # Refused by RBAC (403), not missing (404): the reason word is the operator's business
    # (NotPermitted or VCenterUnreachable), the cause must be in the message.
    assert denied["reason"] in {"NotPermitted", "VCenterUnreachable"}
    assert "not-listed" in denied["message"]
    assert "403" in denied["message"]

    events = json.loads(kubectl(sandbox, "get", "events", "-A", "-o", "json"))["items"]
    about = {
        e["involvedObject"]["name"]
        for e in events
        if e["involvedObject"]["kind"] == "HostPassthroughPolicy"
    }
    assert about >= {"chart-ready"}, about  # Events are posted (`kubectl describe` shows them)

    # Removing the finalizer on delete is a patch the chart's role allows.
    kubectl(sandbox, "delete", "hpp", "chart-ready", "--timeout=30s")
    # deletionPolicy Retain (the default) changes nothing in vCenter, so the operator lets go of
    # the policy without reading the Secret it may not read.
    kubectl(sandbox, "delete", "hpp", "chart-denied", "--timeout=30s")
    _assert_never_refused(operator_as_chart, allowed="not-listed")


def _assert_never_refused(log_file: Path, allowed: str) -> None:
    """Nothing the operator asked the API server for was refused, but reading ``allowed``."""
    log = log_file.read_text()
    assert "Not enough permissions" not in log  # kopf's own needs (CRDs, namespaces) are met
    assert "Could not post Event" not in log
    refused = [line for line in log.splitlines() if " 403" in line or "Forbidden" in line]
    assert all(allowed in line for line in refused), refused


@pytest.mark.skipif(
    importlib.util.find_spec("dpio.handlers.assignment") is None,
    reason="the VMDeviceAssignment handler is not part of the operator yet",
)
def test_operator_under_the_chart_account_reports_on_assignments(
    sandbox: Sandbox, operator_as_chart: Path, sim: Simulator
) -> None:
    """An assignment from a namespace the policy doesn't serve: watched, refused in its status
    (Forbidden=True), its finalizer released on delete: the namespaced half of the RBAC."""
    _secret(sandbox, "vcenter", sim)
    policy = _policy("chart-gpus", None)
    policy["spec"]["consumers"] = [manifests.consumer(["chart-ml"])]
    apply(sandbox, policy)
    apply(
        sandbox, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "chart-outsider"}}
    )
    apply(
        sandbox,
        manifests.assignment(
            "gpu",
            "chart-outsider",
            "chart-gpus",
            "e1000-vm-01",
            [manifests.pci_device("0000:3b:00.0")],
        ),
    )
    kubectl(
        sandbox,
        "wait",
        "--for=condition=Forbidden",
        "vmda/gpu",
        "-n",
        "chart-outsider",
        "--timeout=60s",
    )
    kubectl(sandbox, "delete", "vmda", "gpu", "-n", "chart-outsider", "--timeout=30s")
    kubectl(sandbox, "delete", "hpp", "chart-gpus", "--timeout=30s")
    _assert_never_refused(operator_as_chart, allowed="not-listed")


def _readme_peering() -> list[dict[str, Any]]:
    """The kopf peering CRD and object exactly as the chart README tells users to apply them."""
    readme = (CHART / "README.md").read_text()
    section = readme.split("## Peering", 1)[1]
    block = section.split("```yaml", 1)[1].split("```", 1)[0]
    return [doc for doc in yaml.safe_load_all(block) if doc]


def test_with_peering_the_operator_keeps_its_entry_in_the_peering_object(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    namespace = "dpio-chart-peer"
    objects = render(
        "peering.enabled=true", "crds.install=false", namespace=namespace, release="peer"
    )
    assert "--standalone" not in container(objects)["args"]
    apply(sandbox, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    apply(sandbox, {"apiVersion": "v1", "kind": "List", "items": objects})
    crd, peering = _readme_peering()
    apply(sandbox, crd)
    kubectl(
        sandbox,
        "wait",
        "--for=condition=Established",
        "--timeout=30s",
        "crd/clusterkopfpeerings.kopf.dev",
    )
    eventually(lambda: _applied(sandbox, peering))
    try:
        with run_operator(sandbox, objects, tmp_path) as log:

            def peers() -> dict[str, Any]:
                body = get(sandbox, "clusterkopfpeering", "default")
                return dict(body.get("status") or {})

            assert eventually(peers)  # its own entry: list, watch and patch suffice
            assert "Not enough permissions" not in log.read_text()
            assert "403" not in log.read_text()
    finally:
        # Other tests' operators must not find a peering they don't expect.
        kubectl(sandbox, "delete", "crd", "clusterkopfpeerings.kopf.dev", "--wait=true")


def _applied(box: Sandbox, manifest: dict[str, Any]) -> bool:
    """Apply once the API server serves the kind (its discovery lags the CRD a little)."""
    try:
        apply(box, manifest)
    except RuntimeError:
        return False
    return True
