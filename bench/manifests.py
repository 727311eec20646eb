"""The objects a benchmark applies, written as a user would write them (docs/api.md), with the
builders the tests use (dpio_sandbox.manifests)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.inventory import device_address
from dpio_sandbox import manifests

NAMESPACE = "bench"
Body = dict[str, Any]


def policy(
    name: str,
    *,
    addresses: Sequence[str],
    host_names: Sequence[str] = (),
    name_pattern: str | None = None,
    consumers: Sequence[str] = (),
) -> Body:
    hosts: Body = {}
    if host_names:
        hosts["names"] = list(host_names)
    if name_pattern:
        hosts["namePattern"] = name_pattern
    # The benchmark's VMs are powered off and conflict-free: the default power and conflict
    # policies (WaitForPowerOff, Block) are all their assignments use. `dpio-vcsim generate`
    # without --folders puts every VM in the root VM folder, manifests.EVERY_VM.
    entries = [manifests.consumer(consumers)] if consumers else []
    devices = [{"address": a} for a in addresses]
    return manifests.policy(name, hosts=hosts, devices=devices, consumers=entries)


def fleet_policy(name: str, devices: int, consumers: Sequence[str] = ()) -> Body:
    """One policy for every generated host, enabling its first ``devices`` GPUs."""
    return policy(
        name,
        addresses=[device_address(i) for i in range(devices)],
        name_pattern=r"\.bench\.local$",
        consumers=consumers,
    )


def per_device_policies(hosts: Sequence[str], devices_per_host: int, count: int) -> list[Body]:
    """``count`` small policies, each enabling one device on one host (host-major order)."""
    bodies = []
    for i in range(count):
        host = hosts[i // devices_per_host]
        address = device_address(i % devices_per_host)
        bodies.append(policy(f"p-{i:05d}", addresses=[address], host_names=[host]))
    return bodies


def assignment(name: str, vm: str, address: str, policy_name: str) -> Body:
    """One static PCI device for a powered-off VM (nothing to power-cycle)."""
    devices = [manifests.pci_device(address)]
    return manifests.assignment(name, NAMESPACE, policy_name, vm, devices)
