"""charts/dpio-operator offline: `helm lint --strict`, `helm template` with defaults and options,
the values schema, Pod Security "restricted", and the CRD copy kept equal to crds/.

helm is built from Go modules (sandbox/helm, dpio_sandbox.helm), hence the `sandbox` marker: the
first run costs a Go build. What the API server says of the rendered objects, and whether the
operator can work under the chart's RBAC, is tests/integration/chart/test_chart_rbac.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from tests.integration.chart.helpers import (
    CHART,
    NAMESPACE,
    REPO,
    by_kind,
    container,
    env_of,
    render,
)

from dpio_sandbox import helm

pytestmark = pytest.mark.sandbox


def rules(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [rule for role in by_kind(objects, kind) for rule in role["rules"]]


@pytest.mark.parametrize(
    "sets",
    [
        pytest.param((), id="defaults"),
        pytest.param(
            (
                "metrics.enabled=true",
                "metrics.tls.secretName=dpio-metrics-tls",
                "metrics.serviceMonitor.enabled=true",
                "peering.enabled=true",
                "vcenter.extraSecretNames={vc-lab,vc-prod}",
                "operator.logLevel=debug",
                "dryRun=true",
                "crds.keep=false",
                "networkPolicy.apiServer.cidrs={192.0.2.10/32,2001:db8::10/128}",
                "networkPolicy.vcenter[0].cidr=198.51.100.7/32",
                "networkPolicy.metrics.podSelector.matchLabels.app=prometheus",
            ),
            id="options",
        ),
        pytest.param(
            ("metrics.enabled=true", "metrics.secure=false", "networkPolicy.enabled=false"),
            id="plain-metrics-no-networkpolicy",
        ),
    ],
)
def test_helm_lint_strict_passes(sets: tuple[str, ...]) -> None:
    args = [arg for value in sets for arg in ("--set", value)]
    proc = helm.run("lint", "--strict", str(CHART), *args, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[WARNING]" not in proc.stdout
    assert "[ERROR]" not in proc.stdout


def test_defaults_render_the_operator_with_its_namespace_secret_and_standalone() -> None:
    objects = render()
    kinds = sorted(obj["kind"] for obj in objects)
    assert kinds == sorted(
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "Deployment",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "NetworkPolicy",
        ]
    )
    operator = container(objects)
    assert operator["image"] == "dpio-operator:0.1.0"  # appVersion
    assert operator["args"] == ["--liveness=http://0.0.0.0:8080/healthz", "--standalone"]
    assert env_of(objects) == {
        "DPIO_NAMESPACE": NAMESPACE,
        "DPIO_VCENTER_SECRET": "vcenter",
        "DPIO_WORKERS": "4",
        "DPIO_METRICS_PORT": "0",  # the operator's default is 9090: off unless asked for
        "DPIO_LOG_LEVEL": "INFO",
        "DPIO_LOG_FORMAT": "json",
    }
    (deployment,) = by_kind(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # never two operators at once
    (role,) = by_kind(objects, "Role")
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["vcenter"],
            "verbs": ["get"],
        }
    ]


REVIEWS = [
    {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
    {
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["subjectaccessreviews"],
        "verbs": ["create"],
    },
]
PLAIN_METRICS = "metrics.enabled=true,metrics.secure=false"
SECURE_METRICS = "metrics.enabled=true,metrics.tls.secretName=dpio-metrics-tls"


def _no_reviews(objects: list[dict[str, Any]]) -> bool:
    names = {role["metadata"]["name"] for role in by_kind(objects, "ClusterRole")}
    return not any(rule in rules(objects, "ClusterRole") for rule in REVIEWS) and names == {
        "dpio-dpio-operator"
    }


# (--set values, what must then hold of the rendered objects)
OPTIONS = [
    ("", _no_reviews),  # metrics off: no reviews, no role for scrapers
    (
        PLAIN_METRICS,
        lambda o: (
            env_of(o)["DPIO_METRICS_PORT"] == "9090"
            and env_of(o)["DPIO_METRICS_SECURE"] == "false"
            and "DPIO_METRICS_CERT_FILE" not in env_of(o)
            and by_kind(o, "Service")[0]["spec"]["ports"][0]["port"] == 9090
            and "appProtocol" not in by_kind(o, "Service")[0]["spec"]["ports"][0]
            and _no_reviews(o)
            and not by_kind(o, "ServiceMonitor")
        ),
    ),
    (
        f"{PLAIN_METRICS},metrics.serviceMonitor.enabled=true",
        lambda o: (
            by_kind(o, "ServiceMonitor")[0]["spec"]["endpoints"]
            == [{"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}]
        ),
    ),
    (
        f"{SECURE_METRICS},metrics.serviceMonitor.enabled=true",
        lambda o: (
            by_kind(o, "ServiceMonitor")[0]["spec"]["endpoints"][0]
            == {
                "port": "metrics",
                "path": "/metrics",
                "interval": "30s",
                "scrapeTimeout": "10s",
                "scheme": "https",
                "bearerTokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token",
                "tlsConfig": {
                    "serverName": f"dpio-dpio-operator-metrics.{NAMESPACE}.svc",
                    "ca": {"secret": {"name": "dpio-metrics-tls", "key": "ca.crt"}},
                },
            }
        ),
    ),
    (
        f"{SECURE_METRICS},metrics.serviceMonitor.enabled=true,"
        "metrics.serviceMonitor.tlsConfig.insecureSkipVerify=true",
        lambda o: (
            by_kind(o, "ServiceMonitor")[0]["spec"]["endpoints"][0]["tlsConfig"]
            == {"insecureSkipVerify": True}
        ),
    ),
    (
        f"{SECURE_METRICS},rbac.create=false",
        lambda o: not by_kind(o, "ClusterRole") and env_of(o)["DPIO_METRICS_SECURE"] == "true",
    ),
    (
        "peering.enabled=true",
        lambda o: (
            "--standalone" not in container(o)["args"]
            and {
                "apiGroups": ["kopf.dev"],
                "resources": ["clusterkopfpeerings"],
                "verbs": ["list", "watch", "patch"],
            }
            in rules(o, "ClusterRole")
        ),
    ),
    (
        "operator.logLevel=debug,operator.logFormat=text",
        lambda o: env_of(o)["DPIO_LOG_LEVEL"] == "DEBUG" and env_of(o)["DPIO_LOG_FORMAT"] == "text",
    ),
    (
        "operator.healthPort=8081",
        lambda o: (
            container(o)["args"][0] == "--liveness=http://0.0.0.0:8081/healthz"
            and container(o)["ports"][0]["containerPort"] == 8081
        ),
    ),
    (
        "vcenter.secretName=vc-prod,vcenter.extraSecretNames={vc-lab,vc-prod}",
        lambda o: (
            rules(o, "Role")[0]["resourceNames"] == ["vc-prod", "vc-lab"]
            and env_of(o)["DPIO_VCENTER_SECRET"] == "vc-prod"
        ),
    ),
    ("crds.install=false", lambda o: not by_kind(o, "CustomResourceDefinition")),
    ("dryRun=true", lambda o: env_of(o)["DPIO_DRY_RUN"] == "true"),
    ("dryRun=false", lambda o: "DPIO_DRY_RUN" not in env_of(o)),  # the operator's default
    (
        "crds.keep=false",
        lambda o: all(
            "annotations" not in c["metadata"] for c in by_kind(o, "CustomResourceDefinition")
        ),
    ),
    (
        "rbac.create=false",
        lambda o: (
            not {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
            & {x["kind"] for x in o}
        ),
    ),
    (
        "serviceAccount.create=false,serviceAccount.name=existing",
        lambda o: (
            not by_kind(o, "ServiceAccount")
            and by_kind(o, "Deployment")[0]["spec"]["template"]["spec"]["serviceAccountName"]
            == "existing"
            and by_kind(o, "ClusterRoleBinding")[0]["subjects"][0]["name"] == "existing"
        ),
    ),
    (
        "image.digest=sha256:" + "ab" * 32,
        lambda o: container(o)["image"] == "dpio-operator@sha256:" + "ab" * 32,
    ),
    (
        "image.repository=registry.example/dpio,image.tag=0.1.1",
        lambda o: container(o)["image"] == "registry.example/dpio:0.1.1",
    ),
]


@pytest.mark.parametrize(("sets", "holds"), OPTIONS, ids=[s or "defaults" for s, _ in OPTIONS])
def test_options_render_what_they_say(sets: str, holds: Any) -> None:
    assert holds(render(*filter(None, [sets])))


def test_secure_metrics_mount_the_secret_and_grant_reviews_and_a_role_for_scrapers() -> None:
    objects = render(SECURE_METRICS)
    env = env_of(objects)
    assert {k: v for k, v in env.items() if k.startswith("DPIO_METRICS")} == {
        "DPIO_METRICS_PORT": "9090",
        "DPIO_METRICS_SECURE": "true",
        "DPIO_METRICS_CERT_FILE": "/etc/dpio/metrics-tls/tls.crt",
        "DPIO_METRICS_KEY_FILE": "/etc/dpio/metrics-tls/tls.key",
    }
    (deployment,) = by_kind(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert {"name": "metrics-tls", "mountPath": "/etc/dpio/metrics-tls", "readOnly": True} in (
        container(objects)["volumeMounts"]
    )
    assert {
        "name": "metrics-tls",
        "secret": {"secretName": "dpio-metrics-tls", "defaultMode": 0o440},
    } in pod["volumes"]
    (service,) = by_kind(objects, "Service")
    assert service["spec"]["ports"][0]["appProtocol"] == "https"
    operator_role, reader = sorted(
        by_kind(objects, "ClusterRole"), key=lambda r: r["metadata"]["name"]
    )
    assert all(rule in operator_role["rules"] for rule in REVIEWS)
    assert reader["metadata"]["name"] == "dpio-dpio-operator-metrics-reader"
    assert reader["rules"] == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
    # Only the operator's own ServiceAccount is bound; scrapers are bound by the user.
    (binding,) = by_kind(objects, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == "dpio-dpio-operator"


def network_policy(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (policy,) = by_kind(objects, "NetworkPolicy")
    return dict(policy["spec"])


def _tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"port": port, "protocol": "TCP"} for port in ports]


DNS_RULE = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
}


def test_network_policy_by_default_allows_dns_the_api_server_and_probes_only() -> None:
    spec = network_policy(render())
    selector = {"app.kubernetes.io/name": "dpio-operator", "app.kubernetes.io/instance": "dpio"}
    assert spec["podSelector"] == {"matchLabels": selector}
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"] == [{"ports": _tcp(8080)}]  # the probes; no metrics port
    # No API server address given: its ports to any address; no vCenter rule at all.
    assert spec["egress"] == [DNS_RULE, {"ports": _tcp(443, 6443)}]


def test_network_policy_with_addresses_metrics_and_selectors() -> None:
    spec = network_policy(
        render(
            SECURE_METRICS,
            "metrics.port=9443",
            "operator.healthPort=8081",
            "networkPolicy.apiServer.cidrs={192.0.2.10/32,2001:db8::10/128}",
            "networkPolicy.apiServer.ports={6443}",
            "networkPolicy.vcenter[0].cidr=198.51.100.7/32",
            "networkPolicy.vcenter[1].cidr=203.0.113.0/28",
            "networkPolicy.vcenter[1].ports={443,8443}",
            "networkPolicy.dns.namespaceSelector.matchLabels.name=dns",
            "networkPolicy.dns.podSelector.matchLabels.app=coredns",
            "networkPolicy.metrics.namespaceSelector.matchLabels.team=observability",
            "networkPolicy.metrics.podSelector.matchLabels.app\\.kubernetes\\.io/name=prometheus",
        )
    )
    assert spec["ingress"] == [
        {"ports": _tcp(8081)},
        {
            "from": [
                {
                    "namespaceSelector": {
                        "matchLabels": {
                            "kubernetes.io/metadata.name": "monitoring",
                            "team": "observability",
                        }
                    },
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
                }
            ],
            "ports": _tcp(9443),
        },
    ]
    assert spec["egress"] == [
        {
            "to": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "kube-system", "name": "dns"}
                    },
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns", "app": "coredns"}},
                }
            ],
            "ports": DNS_RULE["ports"],
        },
        {
            "ports": _tcp(6443),
            "to": [
                {"ipBlock": {"cidr": "192.0.2.10/32"}},
                {"ipBlock": {"cidr": "2001:db8::10/128"}},
            ],
        },
        {"to": [{"ipBlock": {"cidr": "198.51.100.7/32"}}], "ports": _tcp(443)},  # 443 by default
        {"to": [{"ipBlock": {"cidr": "203.0.113.0/28"}}], "ports": _tcp(443, 8443)},
    ]


def test_network_policy_takes_extra_rules_as_they_are() -> None:
    proxy = {"to": [{"ipBlock": {"cidr": "192.0.2.80/32"}}], "ports": _tcp(3128)}
    nodelocal = {
        "to": [{"ipBlock": {"cidr": "169.254.20.10/32"}}],
        "ports": [{"port": 53, "protocol": "UDP"}],
    }
    scraper = {"from": [{"ipBlock": {"cidr": "192.0.2.0/24"}}], "ports": _tcp(9090)}
    args = [
        "template",
        "dpio",
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--set-json",
        f"networkPolicy.extraEgress={json.dumps([proxy, nodelocal])}",
        "--set-json",
        f"networkPolicy.extraIngress={json.dumps([scraper])}",
    ]
    objects = [doc for doc in yaml.safe_load_all(helm.run(*args).stdout) if doc]
    spec = network_policy(objects)
    assert spec["egress"][-2:] == [proxy, nodelocal]
    assert spec["ingress"][-1] == scraper


def test_network_policy_can_be_left_out() -> None:
    assert not by_kind(render("networkPolicy.enabled=false"), "NetworkPolicy")


# (--set values, a piece of helm's error message)
REJECTED = [
    ("replicaCount=2", "maximum"),  # kopf has no leader election
    ("vcenter.secretNme=x", "additional properties 'secretNme' not allowed"),
    ("vcenter.secretName=Not_A_Name", "/vcenter/secretName"),
    ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
    ("image.digest=latest", "/image/digest"),
    ("operator.logLevel=trace", "/operator/logLevel"),
    ("dryRun=maybe", "/dryRun"),
    ("operator.logFormat=xml", "/operator/logFormat"),
    ("metrics.serviceMonitor.enabled=true", "/metrics/enabled"),  # a monitor of nothing
    (f"{PLAIN_METRICS},metrics.port=8080", "metrics.port and operator.healthPort must differ"),
    ("metrics.serviceMonitor.interval=often", "/metrics/serviceMonitor/interval"),
    # Secure metrics (the default once enabled) need their certificate.
    ("metrics.enabled=true", "metrics.secure needs metrics.tls.secretName"),
    ("metrics.secure=maybe", "/metrics/secure"),
    ("metrics.tls.secretName=Not_A_Name", "/metrics/tls/secretName"),
    ("networkPolicy.enabled=yes", "/networkPolicy/enabled"),
    ("networkPolicy.vcenter[0].cidr=vcenter.example.com", "/networkPolicy/vcenter/0/cidr"),
    ("networkPolicy.vcenter[0].cidr=10.0.0.300/32", "/networkPolicy/vcenter/0/cidr"),
    ("networkPolicy.vcenter[0].cidr=10.0.0.10/33", "/networkPolicy/vcenter/0/cidr"),
    ("networkPolicy.vcenter[0].ports={443}", "missing property 'cidr'"),
    (
        "networkPolicy.vcenter[0].cidr=10.0.0.10/32,networkPolicy.vcenter[0].ports={0}",
        "/networkPolicy/vcenter/0/ports/0",
    ),
    (
        "networkPolicy.vcenter[0].cidr=10.0.0.10/32,networkPolicy.vcenter[0].host=vc",
        "additional properties 'host' not allowed",
    ),
    ("networkPolicy.apiServer.cidrs={10.0.0.1}", "/networkPolicy/apiServer/cidrs/0"),
    ("networkPolicy.apiServer.ports={70000}", "/networkPolicy/apiServer/ports/0"),
    (
        "networkPolicy.dns.podSelector.matchLabel.app=dns",
        "additional properties 'matchLabel' not allowed",
    ),
    (
        "networkPolicy.metrics.namespaceSelector.matchExpressions[0].key=team,"
        "networkPolicy.metrics.namespaceSelector.matchExpressions[0].operator=Is",
        "/networkPolicy/metrics/namespaceSelector/matchExpressions/0/operator",
    ),
    ("networkPolicy.egress=[]", "additional properties 'egress' not allowed"),
]


@pytest.mark.parametrize(("sets", "message"), REJECTED, ids=[s for s, _ in REJECTED])
def test_bad_values_are_refused_with_a_message(sets: str, message: str) -> None:
    proc = helm.run("template", "dpio", str(CHART), "--set", sets, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_pod_meets_pod_security_restricted() -> None:
    """The fields the "restricted" profile checks (kubernetes.io/docs/concepts/security/
    pod-security-standards); test_chart_rbac.py also has the API server's PodSecurity judge it."""
    (deployment,) = by_kind(render(), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container(render())["securityContext"]
    assert security == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert not pod.get("hostNetwork")
    assert not pod.get("hostPID")
    operator = container(render())
    probes = {operator[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe")}
    assert probes == {"/healthz"}  # kopf's endpoint: never depends on vCenter


def test_chart_crds_equal_the_generated_crds_plus_labels_and_keep_policy() -> None:
    """files/crds/ is a copy of crds/ (a chart can't read outside its folder): it must not drift.
    After `make crds`: cp crds/*.yaml charts/dpio-operator/files/crds/"""
    rendered = {c["metadata"]["name"]: c for c in by_kind(render(), "CustomResourceDefinition")}
    generated = {}
    for path in sorted((REPO / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        generated[crd["metadata"]["name"]] = crd
        copy = CHART / "files" / "crds" / path.name
        assert copy.read_text() == path.read_text(), f"{copy} differs from {path}"
    assert rendered.keys() == generated.keys()
    for name, crd in rendered.items():
        meta = crd["metadata"]
        assert meta["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        assert {**crd, "metadata": {"name": name}} == generated[name]


def _leaves(values: dict[str, Any], prefix: str = "") -> list[str]:
    paths = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        # `resources` and label selectors are one value each (their keys are the user's own).
        nested = (
            isinstance(value, dict)
            and value
            and key != "resources"
            and not key.endswith("Selector")
        )
        paths += _leaves(value, f"{path}.") if nested else [path]
    return paths


def test_readme_documents_every_value() -> None:
    readme = (CHART / "README.md").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = [path for path in _leaves(values) if f"`{path}`" not in readme]
    assert not missing


def test_readme_names_only_files_that_exist() -> None:
    """Paths in the chart README (the repository's, or the chart's own) must not go stale."""
    readme = (CHART / "README.md").read_text()
    paths = set(re.findall(r"`((?:deploy|crds|tests|sandbox|files|templates)/[\w./-]*)`", readme))
    assert "deploy/argocd/health.lua" in paths
    missing = [p for p in sorted(paths) if not (REPO / p).exists() and not (CHART / p).exists()]
    assert not missing


@pytest.mark.parametrize(("kube_version", "accepted"), [("1.28.9", False), ("1.29.0", True)])
def test_kubernetes_older_than_the_crds_cel_rules_is_refused(
    kube_version: str, accepted: bool
) -> None:
    """The CRDs' CEL rules (x-kubernetes-validations, some with fieldPath) are GA in 1.29."""
    proc = helm.run("template", "dpio", str(CHART), "--kube-version", kube_version, check=False)
    assert (proc.returncode == 0) is accepted, proc.stderr
