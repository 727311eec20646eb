"""Devices a VM needs although no VM reads as attached to them: Dynamic DirectPath demand.

A Dynamic DirectPath device (`VirtualPCIPassthroughDynamicBackingInfo`, vSphere 7.0) names no
host device: vSphere picks a free enabled device matching `allowedDevice[]` and `customLabel`
at power-on and records it in `assignedId`, which is set only while the VM runs (vSphere API
reference). A powered-off VM therefore holds no device, yet disabling the devices it could use
makes its next power-on fail. Rules that disable devices (`exclusive: true`, `deletionPolicy:
Disable`) keep as many matching devices enabled as the host's not-running VMs need.

The same goes for devices a VMDeviceAssignment claims but has not attached yet (still
converging, or its reconfigure not yet in the host read): a `DeviceClaim`, built by the
reconciler from the assignments' spec and status.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from dpio.planner.observed import DynamicPassthrough, ObservedHost, normalize_pci_address


@dataclass(frozen=True, slots=True)
class DeviceClaim:
    """A device a VMDeviceAssignment wants on its VM and does not have yet: a static `address`
    or a `dynamic` backing, on the host its VM is registered on."""

    assignment: str  # namespace/name
    host: str
    address: str = ""
    dynamic: DynamicPassthrough | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", normalize_pci_address(self.address))


def claimed_addresses(claims: Sequence[DeviceClaim]) -> Mapping[str, str]:
    """PCI id -> the first assignment (by name) that claims it statically."""
    found: dict[str, str] = {}
    for claim in sorted(claims, key=lambda c: c.assignment):
        if claim.address:
            found.setdefault(claim.address, claim.assignment)
    return found


def claim_message(assignment: str) -> str:
    return f"Kept enabled: VMDeviceAssignment {assignment} claims it and has not attached it yet"


def _demand(
    host: ObservedHost, claims: Sequence[DeviceClaim]
) -> list[tuple[str, DynamicPassthrough]]:
    """(who, backing) for every dynamic device without a host device assigned; labelled ones
    first, so a device with a label is not used up by a backing that takes any."""
    wanted = [
        (f"powered-off VM {vm.name}", d) for vm in host.vms for d in vm.dynamic if not d.assigned_id
    ]
    wanted += [(f"VMDeviceAssignment {c.assignment}", c.dynamic) for c in claims if c.dynamic]
    return sorted(wanted, key=lambda w: (not w[1].label, w[0]))


def dynamic_keep(
    host: ObservedHost,
    staying: Collection[str],
    leaving: Collection[str],
    claims: Sequence[DeviceClaim] = (),
) -> Mapping[str, str]:
    """Which of `leaving` (devices about to be disabled) must stay enabled: PCI id -> who needs
    it ("powered-off VM x", "VMDeviceAssignment ns/name").

    `staying` are the devices that stay enabled anyway; those already serve demand first.
    Devices attached to a VM serve that VM, not this demand."""
    info, devices = host.passthru_info(), host.pci_device()
    free = [i for i in sorted(staying) if not host.attached_to_vms.get(i)]
    spare = [i for i in sorted(leaving) if not host.attached_to_vms.get(i)]
    keep: dict[str, str] = {}
    for vm, backing in _demand(host, claims):
        for pool in (free, spare):
            found = next(
                (
                    i
                    for i in pool
                    if i in info and i in devices and backing.can_use(devices[i], info[i])
                ),
                None,
            )
            if found is not None:
                pool.remove(found)
                if pool is spare:
                    keep[found] = vm
                break
    return keep


def keep_message(who: str) -> str:
    return f"Kept enabled: {who} has a Dynamic DirectPath device that may use it"
