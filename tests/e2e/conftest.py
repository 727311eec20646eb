"""End-to-end fixtures: the operator itself, run as `make run` runs it, against the sandbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dpio_sandbox import install
from dpio_sandbox import operator as dpio_operator
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

DPIO_KINDS = ("vmdeviceassignments.dpio.io", "hostpassthroughpolicies.dpio.io")


def purge_dpio_objects(box: Sandbox) -> None:
    """Every HostPassthroughPolicy and VMDeviceAssignment gone, finalizers and all.

    The API server is shared by the whole session: an object a module left behind (its operator
    and simulator stopped) would otherwise be reconciled by the next module's operator against
    a vCenter that no longer exists, and counted in its metrics."""
    install.install(box)  # the CRDs must exist to list their objects
    for kind in DPIO_KINDS:
        listed = json.loads(kubectl(box, "get", kind, "-A", "-o", "json"))
        for item in listed["items"]:
            meta = item["metadata"]
            ns = ["-n", meta["namespace"]] if meta.get("namespace") else []
            # Delete first: once deletion has started no operator can add its finalizer back.
            kubectl(box, "delete", kind, meta["name"], *ns, "--ignore-not-found", "--wait=false")
            try:
                kubectl(box, "patch", kind, meta["name"], *ns, "--type=merge",
                        "-p", '{"metadata":{"finalizers":null}}')  # fmt: skip
            except RuntimeError as err:
                if "NotFound" not in str(err):  # gone already: it had no finalizer
                    raise
    for kind in DPIO_KINDS:
        kubectl(box, "wait", "--for=delete", kind, "--all", "-A", "--timeout=60s")


@pytest.fixture(scope="module", autouse=True)
def _clean_api_server(sandbox: Sandbox) -> None:
    """Each end-to-end module starts with no dpio objects in the shared API server."""
    purge_dpio_objects(sandbox)


@pytest.fixture(scope="module")
def operator(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """CRDs, namespace and default Secret installed; the operator running in a subprocess.

    Per module, so that it is gone before other tests use the shared API server."""
    install.install(sandbox)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    try:
        with dpio_operator.running(sandbox, log):
            yield sandbox
    finally:
        print(log.read_text()[-4000:])


def kubectl(box: Sandbox, *args: str, stdin: str | None = None) -> str:
    return install.kubectl(box, *args, stdin=stdin)


def apply(box: Sandbox, manifest: dict[str, Any]) -> None:
    kubectl(box, "apply", "-f", "-", stdin=json.dumps(manifest))


def get(box: Sandbox, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    ns = ["-n", namespace] if namespace else []
    result: dict[str, Any] = json.loads(kubectl(box, "get", kind, name, "-o", "json", *ns))
    return result


def secret_for(box: Sandbox, sim: Simulator, name: str) -> None:
    """A vCenter Secret in the operator's namespace pointing at ``sim`` (keys: docs/design.md,
    "vCenter access")."""
    apply(box, {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": install.NAMESPACE},
        "stringData": {"server": sim.sdk_url, "username": sim.username,
                       "password": sim.password, "caBundle": Path(sim.ca_file).read_text()},
    })  # fmt: skip
