"""Security (docs/design.md, "vCenter access"; issue #7): TLS verified by default, the password
never sent to a server we don't trust, credentials in no log, Event or status, and a namespaced
user who can neither read Secrets nor point an assignment at a vCenter.

The TLS cases use dpio.vsphere.credentials + session directly against the sandbox's simulator:
the same code the operator runs, without kopf in between. The simulator's counters show what
reached vCenter's SOAP API: a refused certificate must leave them at zero (no Login at all).
"""

from __future__ import annotations

import hashlib
import json
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from tests.faults.harness import (
    OperatorProcess,
    apply,
    condition,
    counters,
    get_json,
    hpp,
    kubectl,
    reset_counters,
    secrets_in,
    vcenter_secret,
)
from tests.waiting import eventually

from dpio.vsphere.credentials import CredentialsError, from_secret_data
from dpio.vsphere.errors import TLSVerificationFailed
from dpio.vsphere.session import VCenterClient
from dpio_sandbox import certs, install, manifests, vcsim
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = pytest.mark.sandbox


def _server_der(sim: Simulator) -> bytes:
    parts = urlsplit(sim.sdk_url)
    pem = ssl.get_server_certificate((parts.hostname or "127.0.0.1", parts.port or 443))
    return ssl.PEM_cert_to_DER_cert(pem)


def _trust(sim: Simulator, how: str, foreign_ca: Path) -> dict[str, str]:
    der = _server_der(sim)
    return {
        "ca": {"caBundle": Path(sim.ca_file).read_text()},
        "foreign-ca": {"caBundle": foreign_ca.read_text()},
        "sha256": {"thumbprint": hashlib.sha256(der).hexdigest()},
        "sha1-colons": {"thumbprint": ":".join(f"{b:02X}" for b in hashlib.sha1(der).digest())},
        "wrong-thumbprint": {"thumbprint": hashlib.sha256(der + b"x").hexdigest()},
        "insecure": {"insecure": "true"},
    }[how]


@pytest.fixture(scope="module")
def foreign_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA that never signed the simulator's certificate (made like the sandbox's own)."""
    return certs.ensure_ca(tmp_path_factory.mktemp("foreign"), name="foreign-ca").cert


def _login(sim: Simulator, trust: dict[str, str]) -> None:
    credentials = from_secret_data(
        {"server": sim.sdk_url, "username": sim.username, "password": sim.password, **trust}
    )
    client = VCenterClient(credentials, max_workers=1, timeout=10)
    try:
        client.connection()
    finally:
        client.close()


@pytest.mark.parametrize(
    ("how", "accepted"),
    [
        ("ca", True),
        ("sha256", True),
        ("sha1-colons", True),
        ("insecure", True),  # only because the Secret says insecure: "true"
        ("foreign-ca", False),
        ("wrong-thumbprint", False),
    ],
)
def test_tls_trust_decides_whether_the_password_is_ever_sent(
    sandbox: Sandbox, foreign_ca: Path, how: str, accepted: bool
) -> None:
    sim = sandbox.vcsim
    reset_counters(sim)
    if accepted:
        _login(sim, _trust(sim, how, foreign_ca))
        assert counters(sim).get("Login") == 1
        return
    with pytest.raises(TLSVerificationFailed) as refused:
        _login(sim, _trust(sim, how, foreign_ca))
    assert sim.password not in str(refused.value)
    # The handshake failed before the first SOAP request: no Login, nothing at all.
    assert counters(sim) == {}


@pytest.mark.parametrize(
    ("trust", "message"),
    [
        ({}, "Secret needs 'caBundle' (PEM) or 'thumbprint'"),
        ({"insecure": "false"}, "Secret needs 'caBundle' (PEM) or 'thumbprint'"),
        ({"insecure": "yes"}, 'must be "true" or "false"'),
        ({"insecure": "true", "thumbprint": "ab" * 32}, "set exactly one"),
    ],
)
def test_without_a_trust_anchor_nothing_is_attempted(
    sandbox: Sandbox, trust: dict[str, str], message: str
) -> None:
    """TLS verification is on by default: no CA and no thumbprint is an error, not "insecure"."""
    sim = sandbox.vcsim
    reset_counters(sim)
    with pytest.raises(CredentialsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _login(sim, trust)
    assert counters(sim) == {}


# --- credentials never in logs (DEBUG), Events or status ---------------------------------


@pytest.fixture(scope="module")
def leaky_world(
    sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[OperatorProcess, Simulator, str]]:
    """The operator at DEBUG on a simulator of its own; one policy on good credentials, one on
    a wrong password. Both select a device no host has, so nothing is written to vCenter."""
    install.install(sandbox)
    state = tmp_path_factory.mktemp("sec")
    sim = vcsim.start(state, name="vcsim-sec")
    wrong = f"Wr0ng-{uuid.uuid4().hex}"
    vcenter_secret(sandbox, sim, "sec-good")
    vcenter_secret(sandbox, sim, "sec-wrong", password=wrong)
    # JSON logs carry every `extra=` field, so they would show more than text logs do.
    operator = OperatorProcess(
        sandbox, state, secret="sec-good", verbose=True, extra_env={"DPIO_LOG_FORMAT": "json"}
    )
    operator.start()
    nothing = {"devices": [{"address": "0000:ff:1f.7"}]}
    policies = {
        "sec-good": hpp("sec-good", ["esx-gpu-01.lab.local"], **nothing),
        "sec-wrong": hpp(
            "sec-wrong",
            ["esx-gpu-01.lab.local"],
            **nothing,
            vcenter={"secretRef": {"name": "sec-wrong"}},
        ),
    }
    try:
        for manifest in policies.values():
            apply(sandbox, manifest)
        yield operator, sim, wrong
    finally:
        try:
            for name in policies:
                _force_delete(sandbox, name)
        finally:
            operator.stop()
            vcsim.stop(state, "vcsim-sec")


def _force_delete(box: Sandbox, name: str) -> None:
    """Delete, and strip the finalizer if the operator could not release it in time."""
    try:
        kubectl(box, "delete", "hpp", name, "--ignore-not-found", "--timeout=20s")
    except RuntimeError:
        kubectl(box, "patch", "hpp", name, "--type=merge", "-p", '{"metadata":{"finalizers":[]}}')


def test_a_wrong_password_is_reported_without_the_password(
    sandbox: Sandbox, leaky_world: tuple[OperatorProcess, Simulator, str]
) -> None:
    operator, sim, wrong = leaky_world

    def refused() -> dict[str, Any] | None:
        ready = condition(get_json(sandbox, "hpp", "sec-wrong"), "Ready")
        return ready if ready.get("reason") == "InvalidCredentials" else None

    ready = eventually(refused, timeout=60, what="hpp/sec-wrong Ready=False InvalidCredentials")
    assert ready["status"] == "False"
    assert "sec-wrong" in ready["message"]  # it says which Secret to fix
    # The good one got in (Login, then the inventory read that names the missing device).
    eventually(
        lambda: get_json(sandbox, "hpp", "sec-good").get("status", {}).get("hosts"),
        timeout=60,
        what="hpp/sec-good read from vCenter next to the refused one",
    )
    places = [
        ("operator log (DEBUG)", operator.logs()),
        ("status", json.dumps([get_json(sandbox, "hpp", n) for n in ("sec-good", "sec-wrong")])),
        ("events", kubectl(sandbox, "get", "events", "-A", "-o", "json")),
    ]
    assert '"DEBUG"' in places[0][1]  # the log really is at debug level (JSON)
    assert secrets_in(places, [wrong, sim.password]) == []


def test_a_retain_policy_with_a_wrong_password_can_still_be_deleted(
    sandbox: Sandbox, leaky_world: tuple[OperatorProcess, Simulator, str]
) -> None:
    """Retain touches no host: deleting it needs no vCenter, so a bad Secret must not block it."""
    kubectl(sandbox, "delete", "hpp", "sec-wrong", "--wait=false")

    eventually(
        lambda: "sec-wrong" not in kubectl(sandbox, "get", "hpp", "-o", "name"),
        timeout=30,
        what="hpp/sec-wrong gone (finalizer released)",
    )


# --- a namespaced user: RBAC and the assignment's schema ----------------------------------

TEAM, USER = "sec-team", "alice"


@pytest.fixture(scope="module")
def tenant(sandbox: Sandbox) -> str:
    """`alice` may do anything with VMDeviceAssignments in her namespace, and nothing else."""
    install.install(sandbox)
    apply(sandbox, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": TEAM}})
    apply(
        sandbox,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "vmda-editor", "namespace": TEAM},
            "rules": [
                {
                    "apiGroups": ["dpio.io"],
                    "resources": ["vmdeviceassignments"],
                    "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
                }
            ],
        },
    )
    apply(
        sandbox,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "alice-vmda", "namespace": TEAM},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "vmda-editor",
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}],
        },
    )
    return TEAM


def _as_alice(box: Sandbox, *args: str, stdin: str | None = None) -> tuple[bool, str]:
    try:
        return True, kubectl(box, f"--as={USER}", *args, stdin=stdin)
    except RuntimeError as err:
        return False, str(err)


@pytest.mark.parametrize(
    "args",
    [
        ("get", "secrets", "-n", TEAM),
        ("get", "secret", install.SECRET, "-n", install.NAMESPACE),
        ("get", "hpp"),
        ("create", "secret", "generic", "mine", "-n", TEAM, "--from-literal=password=x"),
        ("get", "vmda", "-n", install.NAMESPACE),
    ],
    ids=["secrets-own-ns", "operator-secret", "policies", "create-secret", "vmda-other-ns"],
)
def test_a_tenant_is_forbidden_outside_her_assignments(
    sandbox: Sandbox, tenant: str, args: tuple[str, ...]
) -> None:
    allowed, output = _as_alice(sandbox, *args)

    assert not allowed
    assert "Forbidden" in output or "forbidden" in output


def test_a_tenant_may_manage_her_assignments(sandbox: Sandbox, tenant: str) -> None:
    """The control for the refusals above: the Role does work for what it grants."""
    allowed, output = _as_alice(sandbox, "auth", "can-i", "create", "vmda", "-n", tenant)

    assert allowed, output
    assert output.strip() == "yes"


def _assignment(**extra: Any) -> dict[str, Any]:
    devices = [manifests.pci_device("0000:3b:00.0")]
    return manifests.assignment("sneaky", TEAM, "gpu-hosts", "ml-trainer-01", devices, **extra)


@pytest.mark.parametrize(
    "extra",
    [
        {"vcenter": {"secretRef": {"name": install.SECRET}}},
        {"secretRef": {"name": install.SECRET}},
        {"server": "https://evil.example/sdk"},
    ],
    ids=["vcenter", "secretRef", "server"],
)
def test_an_assignment_cannot_name_a_vcenter_or_secret(
    sandbox: Sandbox, tenant: str, extra: dict[str, Any]
) -> None:
    """An assignment inherits its policy's vCenter (docs/design.md#tenancy). kubectl refuses the
    field; sent without validation, the API server prunes it: it is never stored."""
    field = next(iter(extra))
    manifest = json.dumps(_assignment(**extra))
    strict_ok, strict = _as_alice(sandbox, "apply", "--dry-run=server", "-f", "-", stdin=manifest)
    assert not strict_ok
    assert f'unknown field "spec.{field}"' in strict

    loose_ok, loose = _as_alice(
        sandbox,
        "create",
        "--dry-run=server",
        "--validate=false",
        "-o",
        "json",
        "-f",
        "-",
        stdin=manifest,
    )
    assert loose_ok, loose
    stored = json.loads(loose)
    assert field not in stored["spec"]
    assert stored["spec"]["policyRef"] == {"name": "gpu-hosts"}


def test_a_tenant_cannot_write_an_assignments_status(sandbox: Sandbox, tenant: str) -> None:
    """Status is the operator's word (Ready, devices attached): the Role doesn't reach it."""
    allowed, output = _as_alice(
        sandbox,
        "auth",
        "can-i",
        "patch",
        "vmdeviceassignments",
        "--subresource=status",
        "-n",
        tenant,
    )

    assert output.strip() == "no" or not allowed
