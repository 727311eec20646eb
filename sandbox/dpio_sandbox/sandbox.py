"""The whole sandbox: control plane + vSphere simulator, and the ``env`` file describing it."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from dpio_sandbox import controlplane, vcsim


@dataclass(frozen=True)
class Sandbox:
    """Everything a test or ``make run`` needs to reach the sandbox."""

    state_dir: Path
    kubeconfig: Path
    kubectl: Path
    vcsim: vcsim.Simulator

    def env(self) -> dict[str, str]:
        """The variables ``.sandbox/env`` holds (absolute paths)."""
        return {
            "KUBECONFIG": str(self.kubeconfig),
            "KUBECTL": str(self.kubectl),
            "VSPHERE_URL": self.vcsim.sdk_url,
            "VSPHERE_USER": self.vcsim.username,
            "VSPHERE_PASSWORD": self.vcsim.password,
            "VSPHERE_CA_FILE": str(self.vcsim.ca_file),
            "SIM_ADMIN_URL": self.vcsim.admin_url,
        }


def up(state_dir: Path, inventory: Path = vcsim.DEFAULT_INVENTORY) -> Sandbox:
    """Start (or reuse) everything; idempotent. Writes ``<state_dir>/env``."""
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    plane = controlplane.start(state_dir)
    sim = vcsim.start(state_dir, inventory=inventory)
    box = Sandbox(state_dir, plane.kubeconfig, plane.kubectl, sim)
    lines = [f"{key}={shlex.quote(value)}" for key, value in box.env().items()]
    (state_dir / "env").write_text("\n".join(lines) + "\n")
    return box


def down(state_dir: Path) -> None:
    """Stop every simulator and the control plane of ``state_dir``; data and certs stay."""
    state_dir = state_dir.resolve()
    for info in sorted(state_dir.glob("*.json")):
        if info.stem != "controlplane":
            vcsim.stop(state_dir, info.stem)
    controlplane.stop(state_dir)
    (state_dir / "env").unlink(missing_ok=True)
