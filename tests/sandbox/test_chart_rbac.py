"""The chart's objects on the sandbox API server, and the operator under the chart's RBAC.

The rendered manifests are really applied (server-side apply, not a dry run) in a namespace that
enforces Pod Security "restricted"; then the operator runs locally with the chart's own arguments
and environment and a kubeconfig holding only a token of the chart's ServiceAccount (TokenRequest
API). It must do its job (a HostPassthroughPolicy reaches Ready, its finalizer comes off on delete)
and be denied what it doesn't need (SubjectAccessReviews, what `kubectl auth can-i --as=...`
sends, over a table).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import apply, get, kubectl
from tests.sandbox.test_chart import NAMESPACE, by_kind, container, render
from tests.sandbox.vsphere_helpers import eventually

from dpio_sandbox import procs, vcsim
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = pytest.mark.sandbox

ACCOUNT = f"system:serviceaccount:{NAMESPACE}:dpio-dpio-operator"


def _kubectl(box: Sandbox, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(box.kubectl), f"--kubeconfig={box.kubeconfig}", *args],
        input=stdin, capture_output=True, text=True, check=False,
    )  # fmt: skip


def can_i(box: Sandbox, account: str, verb: str, resource: str, namespace: str | None) -> bool:
    """What `kubectl auth can-i --as=<account>` asks, as the SubjectAccessReview itself, so that
    resources the server doesn't serve (kopf.dev without its CRD) and subresources are exact.
    ``resource`` reads ``plural[.group][/subresource][:name]``."""
    rest, _, name = resource.partition(":")
    rest, _, subresource = rest.partition("/")
    plural, _, group = rest.partition(".")
    _, _, sa_namespace, _ = account.split(":")
    review = {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {
            "user": account,
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{sa_namespace}",
                       "system:authenticated"],
            "resourceAttributes": {"verb": verb, "group": group, "resource": plural,
                                   "subresource": subresource, "name": name,
                                   "namespace": namespace or ""},
        },
    }  # fmt: skip
    out = kubectl(box, "create", "-o", "json", "-f", "-", stdin=json.dumps(review))
    return bool(json.loads(out)["status"].get("allowed", False))


@pytest.fixture(scope="module")
def chart(sandbox: Sandbox) -> list[dict[str, Any]]:
    """The default rendering, applied into a namespace where PodSecurity enforces "restricted"."""
    objects = render()
    labels = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn")}
    namespace = {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": NAMESPACE, "labels": labels}}  # fmt: skip
    apply(sandbox, namespace)
    manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    proc = _kubectl(sandbox, "apply", "--server-side", "--force-conflicts",
                    "--field-manager=helm-test", "-f", "-", stdin=manifest)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # The API server's PodSecurity admission judges the Deployment's pod template on apply.
    assert "would violate PodSecurity" not in proc.stderr
    return objects


def test_every_rendered_object_is_stored_by_the_api_server(
    sandbox: Sandbox, chart: list[dict[str, Any]]
) -> None:
    for obj in chart:
        namespace = obj["metadata"].get("namespace")
        stored = get(sandbox, obj["kind"], obj["metadata"]["name"], namespace)
        assert stored["metadata"]["labels"]["app.kubernetes.io/instance"] == "dpio"
    for crd in by_kind(chart, "CustomResourceDefinition"):
        stored = get(sandbox, "crd", crd["metadata"]["name"])
        assert stored["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


# A stand-in for the Prometheus Operator's CRD, so the ServiceMonitor is really stored.
SERVICE_MONITOR_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
             "names": {"kind": "ServiceMonitor", "plural": "servicemonitors"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                 "openAPIV3Schema": {"type": "object",
                                     "x-kubernetes-preserve-unknown-fields": True}}}]},
}  # fmt: skip


def test_a_second_release_with_every_option_is_accepted(sandbox: Sandbox) -> None:
    """Metrics Service and ServiceMonitor, peering RBAC, several Secrets, the CRDs left to the
    first release (`crds.install=false`: only one release may own them)."""
    namespace = "dpio-chart-opts"
    objects = render(
        "metrics.enabled=true", "metrics.serviceMonitor.enabled=true", "peering.enabled=true",
        "vcenter.extraSecretNames={vc-lab,vc-prod}", "crds.install=false",
        namespace=namespace, release="opts",
    )  # fmt: skip
    apply(sandbox, SERVICE_MONITOR_CRD)
    kubectl(sandbox, "wait", "--for=condition=Established", "--timeout=30s",
            "crd/servicemonitors.monitoring.coreos.com")  # fmt: skip
    apply(sandbox, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    proc = _kubectl(sandbox, "apply", "--server-side", "-f", "-", stdin=manifest)
    assert proc.returncode == 0, proc.stderr
    for obj in objects:
        stored = get(sandbox, obj["kind"], obj["metadata"]["name"], namespace)
        assert stored["metadata"]["labels"]["app.kubernetes.io/instance"] == "opts"
    account = f"system:serviceaccount:{namespace}:opts-dpio-operator"
    for verb, resource, ns, allowed in [
        ("patch", "clusterkopfpeerings.kopf.dev", None, True),
        ("get", "secrets:vc-prod", namespace, True),
        ("get", "secrets:vc-lab", namespace, True),
        ("get", "secrets:vcenter", namespace, True),
        ("get", "secrets:vcenter", NAMESPACE, False),  # the first release's Secret
    ]:
        assert can_i(sandbox, account, verb, resource, ns) is allowed, (verb, resource, ns)


# (verb, resource, namespace or None for cluster-wide, allowed?)
CAN_I = [
    # What the operator does.
    ("list", "hostpassthroughpolicies.dpio.io", None, True),
    ("watch", "vmdeviceassignments.dpio.io", None, True),
    ("patch", "hostpassthroughpolicies.dpio.io", None, True),  # its finalizer
    ("patch", "hostpassthroughpolicies.dpio.io/status", None, True),
    ("patch", "vmdeviceassignments.dpio.io/status", "ml-team", True),
    ("create", "events", "default", True),
    ("create", "events", "ml-team", True),
    ("list", "namespaces", None, True),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io", None, True),
    ("get", "secrets:vcenter", NAMESPACE, True),
    # What it must not do.
    ("get", "secrets:other", NAMESPACE, False),  # only the Secrets it is pointed at
    ("list", "secrets", NAMESPACE, False),
    ("watch", "secrets", NAMESPACE, False),
    ("get", "secrets:vcenter", "dpio-system", False),
    ("get", "secrets:vcenter", "default", False),
    ("list", "secrets", None, False),
    ("update", "secrets:vcenter", NAMESPACE, False),
    ("create", "hostpassthroughpolicies.dpio.io", None, False),
    ("delete", "hostpassthroughpolicies.dpio.io", None, False),
    ("update", "hostpassthroughpolicies.dpio.io", None, False),
    ("delete", "vmdeviceassignments.dpio.io", "ml-team", False),
    ("get", "hostpassthroughpolicies.dpio.io", None, False),  # it watches; never reads one
    ("create", "customresourcedefinitions.apiextensions.k8s.io", None, False),
    ("delete", "customresourcedefinitions.apiextensions.k8s.io", None, False),
    ("patch", "customresourcedefinitions.apiextensions.k8s.io", None, False),
    ("create", "namespaces", None, False),
    ("patch", "namespaces", None, False),
    ("delete", "events", "default", False),
    ("list", "pods", NAMESPACE, False),
    ("create", "pods", NAMESPACE, False),
    ("get", "deployments.apps", NAMESPACE, False),
    ("patch", "deployments.apps", NAMESPACE, False),
    ("list", "configmaps", NAMESPACE, False),
    ("list", "nodes", None, False),
    ("create", "serviceaccounts/token", NAMESPACE, False),
    ("impersonate", "serviceaccounts", NAMESPACE, False),
    ("escalate", "clusterroles.rbac.authorization.k8s.io", None, False),
    ("bind", "clusterroles.rbac.authorization.k8s.io", None, False),
    ("create", "rolebindings.rbac.authorization.k8s.io", NAMESPACE, False),
    ("patch", "clusterkopfpeerings.kopf.dev", None, False),  # peering is off by default
    ("create", "leases.coordination.k8s.io", NAMESPACE, False),
]


@pytest.mark.parametrize(
    ("verb", "resource", "namespace", "allowed"),
    CAN_I,
    ids=[f"{v} {r} in {n or 'cluster'}" for v, r, n, _ in CAN_I],
)
def test_service_account_may_do_exactly_its_job(
    sandbox: Sandbox,
    chart: list[dict[str, Any]],
    verb: str,
    resource: str,
    namespace: str | None,
    allowed: bool,
) -> None:
    assert can_i(sandbox, ACCOUNT, verb, resource, namespace) is allowed


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """A simulator of this module's own (default inventory): its hosts change here."""
    state_dir = tmp_path_factory.mktemp("chart-vcsim")
    try:
        yield vcsim.start(state_dir)
    finally:
        vcsim.stop(state_dir)


@pytest.fixture(scope="module")
def operator_as_chart(
    sandbox: Sandbox, chart: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """The operator with the Deployment's args and env, as the chart's ServiceAccount; yields
    its log file. Only the liveness address changes (a free loopback port)."""
    tmp_path = tmp_path_factory.mktemp("chart-operator")
    (account,) = by_kind(chart, "ServiceAccount")
    token = kubectl(sandbox, "create", "token", account["metadata"]["name"],
                    "-n", NAMESPACE, "--duration=1h").strip()  # fmt: skip
    admin = json.loads(sandbox.kubeconfig.read_text())
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "chart",
        "clusters": admin["clusters"],
        "users": [{"name": "chart", "user": {"token": token}}],
        "contexts": [{"name": "chart", "context": {
            "cluster": admin["clusters"][0]["name"], "user": "chart", "namespace": NAMESPACE}}],
    }  # fmt: skip
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps(config))
    operator = container(chart)
    port = procs.free_port()
    args = [arg.replace("0.0.0.0:8080", f"127.0.0.1:{port}") for arg in operator["args"]]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBERNETES_", "DPIO_"))}
    env.update({e["name"]: e["value"] for e in operator["env"]}, KUBECONFIG=str(kubeconfig))
    log = procs.log_file(tmp_path, "operator")
    log.parent.mkdir(parents=True)
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dpio.handlers.main", *args],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        procs.wait_for_url(tmp_path, "operator", proc.pid, f"http://127.0.0.1:{port}/healthz")
        yield log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        print(log.read_text()[-4000:])


def _secret(box: Sandbox, name: str, sim: Simulator) -> None:
    apply(box, {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NAMESPACE},
        "stringData": {"server": sim.sdk_url, "username": sim.username,
                       "password": sim.password, "caBundle": Path(sim.ca_file).read_text()},
    })  # fmt: skip


def _policy(name: str, secret: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "hosts": {"names": ["esx-gpu-03.lab.local"]},  # rebinds without reboot: Ready at once
        "devices": [{"address": "0000:3b:00.0"}],
    }
    if secret:
        spec["vcenter"] = {"secretRef": {"name": secret}}
    return {"apiVersion": "dpio.io/v1alpha1", "kind": "HostPassthroughPolicy",
            "metadata": {"name": name}, "spec": spec}  # fmt: skip


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
    states = [d["state"] for h in get(sandbox, "hpp", "chart-ready")["status"]["hosts"]
              for d in h["devices"]]  # fmt: skip
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
    # The operator keeps its finalizer while it can't reach the policy's vCenter, even under
    # deletionPolicy Retain (dpio.reconcile.policy); not this test's subject, so the admin lets go.
    kubectl(sandbox, "delete", "hpp", "chart-denied", "--wait=false")
    kubectl(sandbox, "patch", "hpp", "chart-denied", "--type=merge",
            "-p", '{"metadata": {"finalizers": null}}')  # fmt: skip
    kubectl(sandbox, "wait", "--for=delete", "hpp/chart-denied", "--timeout=30s")
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
    policy["spec"]["consumers"] = {"namespaces": ["chart-ml"]}
    apply(sandbox, policy)
    apply(sandbox, {"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": "chart-outsider"}})  # fmt: skip
    apply(sandbox, {
        "apiVersion": "dpio.io/v1alpha1", "kind": "VMDeviceAssignment",
        "metadata": {"name": "gpu", "namespace": "chart-outsider"},
        "spec": {"policyRef": {"name": "chart-gpus"}, "vm": {"name": "e1000-vm-01"},
                 "devices": [{"name": "gpu0", "pci": {"address": "0000:3b:00.0"}}]},
    })  # fmt: skip
    kubectl(sandbox, "wait", "--for=condition=Forbidden", "vmda/gpu", "-n", "chart-outsider",
            "--timeout=60s")  # fmt: skip
    kubectl(sandbox, "delete", "vmda", "gpu", "-n", "chart-outsider", "--timeout=30s")
    kubectl(sandbox, "delete", "hpp", "chart-gpus", "--timeout=30s")
    _assert_never_refused(operator_as_chart, allowed="not-listed")
