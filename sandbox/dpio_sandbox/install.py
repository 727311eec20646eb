"""Prepare a sandbox API server for the operator: CRDs, its namespace, the vCenter Secret."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from dpio_sandbox.paths import REPO_ROOT
from dpio_sandbox.sandbox import Sandbox

NAMESPACE = "dpio-system"
SECRET = "vcenter"


def install(box: Sandbox, namespace: str = NAMESPACE, secret: str = SECRET) -> None:
    """Apply ``crds/`` and wait until they are served; create the namespace and the Secret
    with the simulator's URL, credentials and CA (keys as in docs/design.md, "vCenter access")."""
    kubectl(box, "apply", "--server-side", "-f", str(REPO_ROOT / "crds"))
    kubectl(
        box,
        "wait",
        "--for=condition=Established",
        "--timeout=180s",  # a loaded machine: seen failing at 60 s in the fault suite
        "crd/hostpassthroughpolicies.dpio.io",
        "crd/vmdeviceassignments.dpio.io",
    )
    manifest = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": secret, "namespace": namespace},
                "stringData": {
                    "server": box.vcsim.sdk_url,
                    "username": box.vcsim.username,
                    "password": box.vcsim.password,
                    "caBundle": Path(box.vcsim.ca_file).read_text(),
                },
            },
        ],
    }
    kubectl(box, "apply", "-f", "-", stdin=json.dumps(manifest))


def kubectl(box: Sandbox, *args: str, stdin: str | None = None) -> str:
    out = subprocess.run(
        [str(box.kubectl), f"--kubeconfig={box.kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout
