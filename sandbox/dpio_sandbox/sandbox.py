"""The whole sandbox: control plane + vSphere simulator, and the ``env`` file describing it."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from dpio_sandbox import controlplane, helm, nodehost, procs, vcsim
from dpio_sandbox import node as node_mod


@dataclass(frozen=True)
class Sandbox:
    """Everything a test or ``make run`` needs to reach the sandbox."""

    state_dir: Path
    kubeconfig: Path
    kubectl: Path
    vcsim: vcsim.Simulator
    #: With ``make sandbox NODE=1``.
    node: node_mod.Node | None = None

    def env(self) -> dict[str, str]:
        """The variables ``.sandbox/env`` holds (absolute paths); with a node, ``HELM`` (the
        sandbox's helm) and ``NODE_VALUES`` (the chart's values for the node) too."""
        node = {}
        if self.node is not None:
            node = {"HELM": str(helm.binary()), "NODE_VALUES": str(self.node.values)}
        return {
            "KUBECONFIG": str(self.kubeconfig),
            "KUBECTL": str(self.kubectl),
            "VSPHERE_URL": self.vcsim.sdk_url,
            "VSPHERE_USER": self.vcsim.username,
            "VSPHERE_PASSWORD": self.vcsim.password,
            "VSPHERE_CA_FILE": str(self.vcsim.ca_file),
            "SIM_ADMIN_URL": self.vcsim.admin_url,
            **node,
        }


def up(
    state_dir: Path, inventory: Path = vcsim.DEFAULT_INVENTORY, *, node: bool = False
) -> Sandbox:
    """Start (or reuse) everything, with ``node`` a node as well (node.py; kept once started
    until ``down``); idempotent. Writes ``<state_dir>/env``."""
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    node = node or procs.running(state_dir, "kubelet") is not None
    if node:
        node_mod.prepare(state_dir)
    address = nodehost.NODE_IP if node else None
    plane = controlplane.start(state_dir, node_ip=address)
    sim = vcsim.start(state_dir, inventory=inventory, address=address or "127.0.0.1")
    the_node = node_mod.start(plane) if node else None
    box = Sandbox(state_dir, plane.kubeconfig, plane.kubectl, sim, the_node)
    lines = [f"{key}={shlex.quote(value)}" for key, value in box.env().items()]
    (state_dir / "env").write_text("\n".join(lines) + "\n")
    return box


def down(state_dir: Path) -> None:
    """Stop the node (cleaned up after), every simulator and the control plane of
    ``state_dir``; data and certs stay."""
    state_dir = state_dir.resolve()
    found = node_mod.stop(state_dir)
    if found:
        print(f"node of {state_dir}: removed {', '.join(found)}", file=sys.stderr)
    for info in sorted(state_dir.glob("*.json")):
        if info.stem != "controlplane":
            vcsim.stop(state_dir, info.stem)
    controlplane.stop(state_dir)
    (state_dir / "env").unlink(missing_ok=True)
