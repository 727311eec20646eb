"""The chart's objects on the sandbox API server, and what its RBAC allows.

The rendered manifests are really applied (server-side apply, not a dry run) in a namespace that
enforces Pod Security "restricted", and the ServiceAccount is denied what the operator doesn't
need (SubjectAccessReviews, what `kubectl auth can-i --as=...` sends, over a table). That the
RBAC is enough, by running the operator under it, is tests/integration/chart/test_chart_operator.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.e2e.conftest import apply, get, kubectl
from tests.integration.chart.helpers import NAMESPACE, by_kind, install_default, kubectl_run, render

from dpio_sandbox.sandbox import Sandbox

pytestmark = pytest.mark.sandbox

ACCOUNT = f"system:serviceaccount:{NAMESPACE}:dpio-dpio-operator"


def can_i(box: Sandbox, account: str, verb: str, resource: str, namespace: str | None) -> bool:
    """What `kubectl auth can-i --as=<account>` asks, as the SubjectAccessReview itself, so that
    resources the server doesn't serve (kopf.dev without its CRD) and subresources are exact.
    ``resource`` reads ``plural[.group][/subresource][:name]``."""
    rest, _, name = resource.partition(":")
    rest, _, subresource = rest.partition("/")
    plural, _, group = rest.partition(".")
    _, _, sa_namespace, _ = account.split(":")
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": account,
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{sa_namespace}",
                "system:authenticated",
            ],
            "resourceAttributes": {
                "verb": verb,
                "group": group,
                "resource": plural,
                "subresource": subresource,
                "name": name,
                "namespace": namespace or "",
            },
        },
    }
    out = kubectl(box, "create", "-o", "json", "-f", "-", stdin=json.dumps(review))
    return bool(json.loads(out)["status"].get("allowed", False))


@pytest.fixture(scope="module")
def chart(sandbox: Sandbox) -> list[dict[str, Any]]:
    return install_default(sandbox)


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
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {"kind": "ServiceMonitor", "plural": "servicemonitors"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


def test_a_second_release_with_every_option_is_accepted(sandbox: Sandbox) -> None:
    """Secure metrics with their Service, ServiceMonitor and scrapers' ClusterRole, a
    NetworkPolicy with addresses, peering RBAC, several Secrets, the CRDs left to the first
    release (`crds.install=false`: only one release may own them)."""
    namespace = "dpio-chart-opts"
    objects = render(
        "metrics.enabled=true",
        "metrics.tls.secretName=opts-metrics-tls",
        "metrics.serviceMonitor.enabled=true",
        "peering.enabled=true",
        "vcenter.extraSecretNames={vc-lab,vc-prod}",
        "crds.install=false",
        "networkPolicy.apiServer.cidrs={192.0.2.10/32,2001:db8::10/128}",
        "networkPolicy.vcenter[0].cidr=198.51.100.7/32",
        "networkPolicy.metrics.podSelector.matchLabels.app=prometheus",
        namespace=namespace,
        release="opts",
    )
    assert {"NetworkPolicy", "ServiceMonitor", "Service"} <= {obj["kind"] for obj in objects}
    apply(sandbox, SERVICE_MONITOR_CRD)
    kubectl(
        sandbox,
        "wait",
        "--for=condition=Established",
        "--timeout=30s",
        "crd/servicemonitors.monitoring.coreos.com",
    )
    # Pod Security "restricted" judges this pod template too (the metrics Secret's volume).
    labels = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn")}
    apply(
        sandbox,
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": labels},
        },
    )
    manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    proc = kubectl_run(sandbox, "apply", "--server-side", "-f", "-", stdin=manifest)
    assert proc.returncode == 0, proc.stderr
    assert "would violate PodSecurity" not in proc.stderr
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
        # Secure metrics: who sent a scrape, and may they read /metrics.
        ("create", "tokenreviews.authentication.k8s.io", None, True),
        ("create", "subjectaccessreviews.authorization.k8s.io", None, True),
        ("create", "localsubjectaccessreviews.authorization.k8s.io", namespace, False),
        ("create", "serviceaccounts/token", namespace, False),
    ]:
        assert can_i(sandbox, account, verb, resource, ns) is allowed, (verb, resource, ns)
    # The scrapers' role is bound to nobody by the chart, the operator included.
    assert not may_get_metrics(sandbox, account)


def test_plain_metrics_get_no_review_permissions(sandbox: Sandbox) -> None:
    """`metrics.secure=false`: plain HTTP, no reviews asked, so no right to ask for them."""
    namespace = "dpio-chart-plain"
    objects = render(
        "metrics.enabled=true",
        "metrics.secure=false",
        "crds.install=false",
        namespace=namespace,
        release="plain",
    )
    apply(sandbox, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    proc = kubectl_run(sandbox, "apply", "--server-side", "-f", "-", stdin=manifest)
    assert proc.returncode == 0, proc.stderr
    account = f"system:serviceaccount:{namespace}:plain-dpio-operator"
    assert can_i(sandbox, account, "get", "secrets:vcenter", namespace)  # applied and bound
    assert not can_i(sandbox, account, "create", "tokenreviews.authentication.k8s.io", None)
    assert not can_i(sandbox, account, "create", "subjectaccessreviews.authorization.k8s.io", None)
    assert not [
        r for r in by_kind(objects, "ClusterRole") if "metrics-reader" in r["metadata"]["name"]
    ]


def may_get_metrics(box: Sandbox, account: str) -> bool:
    """A SubjectAccessReview for `get` on the non-resource URL /metrics, as the operator's
    metrics filter sends it."""
    _, _, sa_namespace, _ = account.split(":")
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": account,
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{sa_namespace}",
                "system:authenticated",
            ],
            "nonResourceAttributes": {"verb": "get", "path": "/metrics"},
        },
    }
    out = kubectl(box, "create", "-o", "json", "-f", "-", stdin=json.dumps(review))
    return bool(json.loads(out)["status"].get("allowed", False))


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
    # Metrics are off by default: no reviews either.
    ("create", "tokenreviews.authentication.k8s.io", None, False),
    ("create", "subjectaccessreviews.authorization.k8s.io", None, False),
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
