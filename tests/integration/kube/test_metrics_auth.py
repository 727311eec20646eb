"""Secure metrics against the sandbox's real kube-apiserver: TokenReview, SubjectAccessReview and
the chart's RBAC, with ServiceAccount tokens from the TokenRequest API (as a pod's projected
token, or Prometheus', would be).

The operator runs as the chart renders it with `metrics.enabled` (secure by default), under a
token of the chart's ServiceAccount: the certificate a Secret would hold is issued by a CA of this
module. A scrape without a token is 401, with the token of a ServiceAccount not bound to the
chart's `<fullname>-metrics-reader` 403, with one bound to it 200 and the metrics. The reviewer
is also run in this process, to count how many reviews the cache saves and to see what a missing
RBAC grant does (500, not a silent pass).
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.e2e.conftest import apply, kubectl, purge_dpio_objects
from tests.integration.chart.helpers import (
    by_kind,
    env_of,
    install_default,
    render,
    run_operator,
    token_kubeconfig,
)
from tests.integration.vsphere.helpers import eventually

from dpio.kube import credentials
from dpio.kube.reviews import KubeReviewer
from dpio.observability import metrics
from dpio.observability.metrics_auth import AuthFilter, User
from dpio.observability.tls import CertFiles
from dpio_sandbox import certs, procs
from dpio_sandbox.sandbox import Sandbox

pytestmark = pytest.mark.sandbox

NAMESPACE, RELEASE = "dpio-chart-mauth", "mauth"
FULLNAME = f"{RELEASE}-dpio-operator"
SERVICE_DNS = f"{FULLNAME}-metrics.{NAMESPACE}.svc"


@dataclass(frozen=True)
class Release:
    box: Sandbox
    objects: list[dict[str, Any]]
    ca: certs.KeyPair
    tls: CertFiles
    state: Path

    def token(self, account: str) -> str:
        return kubectl(
            self.box, "create", "token", account, "-n", NAMESPACE, "--duration=1h"
        ).strip()

    def service_account(self, name: str, *, reader: bool) -> str:
        """A ServiceAccount of the release namespace, bound to the scrapers' role if ``reader``;
        returns a token of it."""
        apply(
            self.box,
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": NAMESPACE},
            },
        )
        if reader:
            bind_reader(self.box, name)
        return self.token(name)


def bind_reader(box: Sandbox, account: str) -> None:
    """What the chart README tells users to do for their Prometheus."""
    apply(
        box,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"{FULLNAME}-metrics-reader-{account}"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": f"{FULLNAME}-metrics-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}],
        },
    )


@pytest.fixture(scope="module")
def release(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Release:
    """The chart with secure metrics, applied to the sandbox API server (RBAC and all)."""
    install_default(sandbox)  # the CRDs, which this release leaves to the first one
    objects = render(
        "metrics.enabled=true",
        f"metrics.tls.secretName={RELEASE}-metrics-tls",
        "crds.install=false",
        namespace=NAMESPACE,
        release=RELEASE,
    )
    apply(sandbox, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    apply(sandbox, {"apiVersion": "v1", "kind": "List", "items": objects})
    state = tmp_path_factory.mktemp("metrics-auth")
    ca = certs.ensure_ca(state / "ca")
    pair = certs.issue_serving_cert(ca, "metrics", state / "tls", dns_names=[SERVICE_DNS])
    return Release(sandbox, objects, ca, CertFiles(str(pair.cert), str(pair.key)), state)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: str


def scrape(port: int, ca: certs.KeyPair, token: str | None = None) -> Reply:
    """GET /metrics over HTTPS, the certificate verified against ``ca``."""
    context = ssl.create_default_context(cafile=str(ca.cert))
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=15, context=context)
    try:
        conn.request(
            "GET", "/metrics", headers={"Authorization": f"Bearer {token}"} if token else {}
        )
        response = conn.getresponse()
        return Reply(response.status, dict(response.getheaders()), response.read().decode())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def operator_port(release: Release) -> Iterator[int]:
    """The operator with the rendered Deployment's environment; the Secret's mount point is
    replaced by this module's files. Yields its metrics port."""
    env = env_of(release.objects)
    assert env["DPIO_METRICS_SECURE"] == "true"
    assert env["DPIO_METRICS_CERT_FILE"] == "/etc/dpio/metrics-tls/tls.crt"
    port = procs.free_port()
    overrides = {
        "DPIO_METRICS_PORT": str(port),
        "DPIO_METRICS_CERT_FILE": release.tls.cert,
        "DPIO_METRICS_KEY_FILE": release.tls.key,
    }
    # The operator watches every dpio object of the shared API server: none may be left over.
    purge_dpio_objects(release.box)
    state = release.state / "operator"
    state.mkdir()
    with run_operator(release.box, release.objects, state, overrides) as log:
        eventually(lambda: not procs.port_closed(port))
        yield port
        assert "Could not authenticate" not in log.read_text()  # every review was allowed


def test_no_token_is_401(release: Release, operator_port: int) -> None:
    reply = scrape(operator_port, release.ca)
    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert "dpio_" not in reply.body


def test_a_token_the_api_server_does_not_accept_is_401(
    release: Release, operator_port: int
) -> None:
    assert scrape(operator_port, release.ca, "not-a-token").status == 401
    # A real token, tampered with: its signature no longer holds.
    token = release.token(by_kind(release.objects, "ServiceAccount")[0]["metadata"]["name"])
    assert scrape(operator_port, release.ca, token[:-4] + "AAAA").status == 401


def test_a_service_account_not_bound_to_the_reader_role_is_403(
    release: Release, operator_port: int
) -> None:
    token = release.service_account("stranger", reader=False)
    reply = scrape(operator_port, release.ca, token)
    assert reply.status == 403
    assert f"system:serviceaccount:{NAMESPACE}:stranger" in reply.body
    assert "dpio_" not in reply.body
    # The operator's own account may create reviews, not read its metrics.
    operator_account = by_kind(release.objects, "ServiceAccount")[0]["metadata"]["name"]
    assert scrape(operator_port, release.ca, release.token(operator_account)).status == 403


def test_a_service_account_bound_to_the_reader_role_gets_the_metrics(
    release: Release, operator_port: int
) -> None:
    token = release.service_account("scraper", reader=True)
    # RBAC reaches the API server's authorizer through its informers: soon, not at once.
    reply = eventually(lambda: (r := scrape(operator_port, release.ca, token)).status == 200 and r)
    names = {family.name for family in text_string_to_metric_families(reply.body)}
    assert {"dpio_leader", "dpio_reconcile", "dpio_objects"} <= names
    assert reply.headers["Content-Type"].startswith("text/plain")


def test_the_certificate_is_the_one_for_the_service_name(
    release: Release, operator_port: int
) -> None:
    context = ssl.create_default_context(cafile=str(release.ca.cert))
    with (
        socket.create_connection(("127.0.0.1", operator_port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=SERVICE_DNS) as tls,
    ):
        assert tls.version() in {"TLSv1.2", "TLSv1.3"}
    # Plain HTTP gets no metrics.
    conn = http.client.HTTPConnection("127.0.0.1", operator_port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        status: int | None = conn.getresponse().status
    except (http.client.HTTPException, OSError):
        status = None
    finally:
        conn.close()
    assert status != 200


class CountingReviewer:
    """The real reviewer, counting the reviews it sends to the API server."""

    def __init__(self, reviewer: KubeReviewer) -> None:
        self.reviewer = reviewer
        self.authentications = self.authorizations = 0

    def authenticate(self, token: str) -> User | None:
        self.authentications += 1
        return self.reviewer.authenticate(token)

    def authorize(self, user: User, verb: str, path: str) -> bool:
        self.authorizations += 1
        return self.reviewer.authorize(user, verb, path)


def _reviewer_as(release: Release, account: dict[str, Any], name: str) -> KubeReviewer:
    """A reviewer sending its reviews with a token of ``account`` (not the admin's)."""
    path = token_kubeconfig(release.box, account, release.state / f"{name}.kubeconfig")
    return KubeReviewer.of(credentials.from_kubeconfig([path]))


@pytest.fixture
def served(release: Release) -> Iterator[tuple[int, CountingReviewer]]:
    """/metrics in this process, reviewed under the chart's operator account."""
    (account,) = by_kind(release.objects, "ServiceAccount")
    reviewer = CountingReviewer(_reviewer_as(release, account, "operator"))
    server = metrics.serve(
        procs.free_port(), "127.0.0.1", tls=release.tls, auth=AuthFilter(reviewer)
    )
    assert server is not None
    try:
        yield server.port, reviewer
    finally:
        server.stop()
        reviewer.reviewer.close()


def test_an_allowed_token_is_reviewed_once_then_remembered(
    release: Release, served: tuple[int, CountingReviewer]
) -> None:
    port, reviewer = served
    token = release.service_account("cached-scraper", reader=True)
    eventually(lambda: scrape(port, release.ca, token).status == 200)
    before = reviewer.authentications, reviewer.authorizations
    for _ in range(5):
        assert scrape(port, release.ca, token).status == 200
    assert (reviewer.authentications, reviewer.authorizations) == before  # no review at all


def test_a_refusal_is_not_remembered_so_a_new_binding_counts_at_once(
    release: Release, served: tuple[int, CountingReviewer]
) -> None:
    port, reviewer = served
    token = release.service_account("newcomer", reader=False)
    assert scrape(port, release.ca, token).status == 403
    assert scrape(port, release.ca, token).status == 403
    assert reviewer.authentications == reviewer.authorizations == 2  # asked each time
    bind_reader(release.box, "newcomer")
    eventually(lambda: scrape(port, release.ca, token).status == 200)


def test_without_the_review_permissions_every_scrape_is_500(
    release: Release, sandbox: Sandbox
) -> None:
    """The default release's operator may not create reviews (metrics off): a reviewer under its
    account fails loudly, it never lets a scrape through."""
    default_objects = install_default(sandbox)
    (account,) = by_kind(default_objects, "ServiceAccount")
    reviewer = _reviewer_as(release, account, "default-operator")
    server = metrics.serve(
        procs.free_port(), "127.0.0.1", tls=release.tls, auth=AuthFilter(reviewer)
    )
    assert server is not None
    try:
        token = release.service_account("scraper", reader=True)
        reply = scrape(server.port, release.ca, token)
    finally:
        server.stop()
        reviewer.close()
    assert reply.status == 500
    assert reply.body.strip() == "Authentication failed"
    assert "dpio_" not in reply.body
