"""Benchmark inventories from `dpio-vcsim generate` (sandbox/vcsim/sim/generate.go), so the
simulator and the benchmarks share one description of a large regular datacenter."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dpio_sandbox import vcsim


@dataclass(frozen=True)
class Shape:
    hosts: int
    devices_per_host: int
    vms: int = 0
    clusters: int = 1
    #: Every host reports deviceRebindWithoutRebootSupported (vSphere 7.0+ capability), so an
    #: enabled device becomes active at once and Ready is reachable without a reboot cycle.
    rebind_all: bool = True
    #: HA off and DRS partially automated in every cluster: with HA restart or DRS full
    #: automation a VM has a feature conflict (docs/design.md, "VM side: feature conflicts") and
    #: `conflictPolicy: Block` stops there. The VM benchmark measures the attach path, not
    #: conflict handling.
    no_conflicts: bool = True
    #: Every device already enabled and active for passthrough: the state a policy leaves, for a
    #: peer (the govc loop) that only does the VM side of the job.
    passthrough_ready: bool = False


def write(shape: Shape, path: Path) -> Path:
    """Generate the inventory of ``shape`` into ``path`` (JSON, which the YAML loader reads)."""
    out = subprocess.run(
        [
            str(vcsim.binary()),
            "generate",
            f"--hosts={shape.hosts}",
            f"--devices-per-host={shape.devices_per_host}",
            f"--vms={shape.vms}",
            f"--clusters={shape.clusters}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    inventory: dict[str, Any] = yaml.load(out.stdout, Loader=yaml.CSafeLoader)
    if shape.rebind_all:
        for host in hosts(inventory):
            host["deviceRebindWithoutReboot"] = True
    if shape.passthrough_ready:
        for host in hosts(inventory):
            for device in host.get("pciDevices") or []:
                device["enabled"] = device["active"] = True
    if shape.no_conflicts:
        for cluster in clusters(inventory):
            cluster["ha"] = {"enabled": False}
            cluster["drs"] = {"enabled": True, "automationLevel": "partiallyAutomated"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(inventory))
    return path


#: The datacenter `Generate` makes (VMs sit in its root vm folder unless folders are asked for).
DATACENTER = "DC1"


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def clusters(inventory: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for dc in inventory.get("datacenters", []) for c in dc.get("clusters") or []]


def hosts(inventory: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for dc in inventory.get("datacenters", []):
        for cluster in dc.get("clusters") or []:
            found += cluster.get("hosts") or []
        found += dc.get("hosts") or []
    return found


def vms(inventory: dict[str, Any]) -> list[dict[str, Any]]:
    return [vm for dc in inventory.get("datacenters", []) for vm in dc.get("vms") or []]


def host_names(count: int) -> list[str]:
    """The names `Generate` gives (esx-0001.bench.local, ...)."""
    return [f"esx-{i + 1:04d}.bench.local" for i in range(count)]


def vm_names(count: int) -> list[str]:
    return [f"vm-{i + 1:05d}" for i in range(count)]


def device_address(index: int) -> str:
    """Device ``index`` of a generated host: one GPU per bus from 0x20 up."""
    return f"0000:{0x20 + index:02x}:00.0"
