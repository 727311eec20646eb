"""The local control plane: versions, TLS, KCM controllers, ServiceAccount tokens under RBAC, stop.

It runs its own control plane (not the session sandbox) because the last test stops it.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dpio_sandbox import controlplane, procs
from dpio_sandbox.build import module_release
from dpio_sandbox.paths import CONTROLPLANE_MODULE

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[controlplane.ControlPlane]:
    state_dir = tmp_path_factory.mktemp("controlplane")
    try:
        yield controlplane.start(state_dir)
    finally:
        controlplane.stop(state_dir)


def kubectl(
    plane: controlplane.ControlPlane, *args: str, token: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the built kubectl as the admin, or with only a bearer token (no client cert)."""
    if token is None:
        auth = [f"--kubeconfig={plane.kubeconfig}"]
    else:
        auth = ["--kubeconfig=/dev/null", f"--server={plane.server}"]
        auth += [f"--certificate-authority={plane.ca_file}", f"--token={token}"]
    return subprocess.run(
        [str(plane.kubectl), *auth, *args], capture_output=True, text=True, check=check, timeout=60
    )


def eventually(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.3)


def test_readyz_answers_ok_over_tls_with_the_admin_kubeconfig(
    plane: controlplane.ControlPlane,
) -> None:
    assert kubectl(plane, "get", "--raw", "/readyz").stdout == "ok"
    assert plane.server.startswith("https://127.0.0.1:")


def test_client_and_server_report_the_pinned_release(plane: controlplane.ControlPlane) -> None:
    release, _ = module_release(CONTROLPLANE_MODULE, "k8s.io/kubernetes")

    versions = json.loads(kubectl(plane, "version", "-o", "json").stdout)

    assert versions["clientVersion"]["gitVersion"] == release == "v1.34.4"
    assert versions["serverVersion"]["gitVersion"] == release


def test_start_again_reuses_the_running_control_plane(plane: controlplane.ControlPlane) -> None:
    again = controlplane.start(plane.state_dir)

    assert again.pids == plane.pids
    assert again.server == plane.server


def test_namespace_gets_its_service_account_and_ca_then_deletion_completes(
    plane: controlplane.ControlPlane,
) -> None:
    kubectl(plane, "create", "namespace", "doomed")
    kubectl(plane, "-n", "doomed", "create", "configmap", "payload", "--from-literal=a=b")

    # serviceaccount-controller and root-ca-certificate-publisher-controller at work.
    eventually(
        lambda: kubectl(plane, "-n", "doomed", "get", "sa/default", check=False).returncode == 0
    )
    eventually(
        lambda: (
            kubectl(plane, "-n", "doomed", "get", "cm/kube-root-ca.crt", check=False).returncode
            == 0
        )
    )
    # namespace-controller empties the namespace and removes its finalizer.
    kubectl(plane, "delete", "namespace", "doomed", "--wait=true", "--timeout=60s")

    gone = kubectl(plane, "get", "namespace", "doomed", check=False)
    assert gone.returncode != 0
    assert "NotFound" in gone.stderr


def test_service_account_token_is_authenticated_and_bound_by_rbac(
    plane: controlplane.ControlPlane,
) -> None:
    kubectl(plane, "create", "namespace", "rbac")
    kubectl(plane, "-n", "rbac", "create", "serviceaccount", "reader")
    token = kubectl(plane, "-n", "rbac", "create", "token", "reader").stdout.strip()

    whoami = json.loads(kubectl(plane, "auth", "whoami", "-o", "json", token=token).stdout)
    denied = kubectl(plane, "-n", "rbac", "get", "secrets", token=token, check=False)

    assert whoami["status"]["userInfo"]["username"] == "system:serviceaccount:rbac:reader"
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr

    kubectl(
        plane, "-n", "rbac", "create", "role", "secret-reader", "--verb=list", "--resource=secrets"
    )
    kubectl(
        plane,
        "-n",
        "rbac",
        "create",
        "rolebinding",
        "reader",
        "--role=secret-reader",
        "--serviceaccount=rbac:reader",
    )

    # The RBAC authorizer reads bindings from an informer: allow a moment to propagate.
    eventually(
        lambda: (
            kubectl(plane, "-n", "rbac", "get", "secrets", token=token, check=False).returncode == 0
        )
    )


def test_stop_leaves_no_process_and_no_listening_port(plane: controlplane.ControlPlane) -> None:
    controlplane.stop(plane.state_dir)

    assert not [n for n in plane.pids if procs.running(plane.state_dir, n)]
    assert not [p for p in plane.ports.values() if not procs.port_closed(p)]
    assert not [pid for pid in plane.pids.values() if Path(f"/proc/{pid}").exists()]
