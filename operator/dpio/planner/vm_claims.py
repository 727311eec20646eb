"""Several VMDeviceAssignments naming ONE VM (DESIGN.md §3.2.1): who owns which of its devices.

A host device can be attached once, and a VM device belongs to one assignment: otherwise two
assignments both report Ready for one GPU, and deleting either takes it from the other. As for
rivals on other VMs, the older assignment wins (oldest creationTimestamp, then namespace/name):

- the VM's passthrough devices are shared out oldest first, each assignment taking the devices
  that match its spec by backing identity, as its own planner matches them (`holdings`); what an
  older one takes, a newer one neither counts as attached nor removes;
- a static device an older assignment on the same VM names is ClaimedByAssignment for the newer
  (vm_rules.claimed, as for a rival on another VM of the host);
- a Dynamic DirectPath device gets a host device only at power-on (vSphere API reference,
  VirtualPCIPassthroughDynamicBackingInfo.assignedId; power-on fails when no matching device is
  free), so the VM must not ask for more devices of one vendor/device/label than its host has:
  older assignments' devices come first, the one that would not fit is ClaimedByAssignment
  (`dynamic_claimed`), or NotFound when the assignment's own earlier devices already take them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from dpio.api.assignment import DeviceKind
from dpio.api.conditions import CLAIMED_BY_ASSIGNMENT, NOT_FOUND
from dpio.planner.conditions import Problem
from dpio.planner.observed import normalize_pci_address
from dpio.planner.vm_devices import DesiredDevice, match_devices
from dpio.planner.vm_observed import AssignmentClaim, ObservedPciDevice, ObservedVM, VMObservation

Age = tuple[datetime, str, str]


@dataclass(frozen=True, slots=True)
class Holdings:
    """The VM's passthrough devices as one assignment sees them."""

    current: tuple[ObservedPciDevice, ...] = ()  # its own and nobody's: it may match or remove
    held: Mapping[int, AssignmentClaim] = field(default_factory=dict)  # key -> another's


def claim_wants(claim: AssignmentClaim) -> tuple[DesiredDevice, ...]:
    """Another assignment's devices as its own planner sees them (names only need be unique)."""
    who = f"{claim.namespace}/{claim.name}"
    static = tuple(
        DesiredDevice(f"{who}#pci{i}", DeviceKind.PCI, address=address)
        for i, address in enumerate(claim.device_ids)
    )
    dynamic = tuple(
        DesiredDevice(f"{who}#dyn{i}", DeviceKind.DYNAMIC, None, vendor, device, label or None)
        for i, (vendor, device, label) in enumerate(claim.dynamic)
    )
    return static + dynamic


def rivals_on_vm(observed: VMObservation, vm: ObservedVM) -> list[AssignmentClaim]:
    """The other assignments naming this VM, oldest first."""
    return sorted((c for c in observed.claims if c.names_vm(vm)), key=lambda c: c.age)


def holdings(
    observed: VMObservation, vm: ObservedVM, desired: Sequence[DesiredDevice], me: Age | None
) -> Holdings:
    """Share the VM's devices out oldest first; `me` None: after every rival (never takes)."""
    free = sorted(vm.pci_devices, key=lambda d: d.key)
    mine: list[ObservedPciDevice] = []
    held: dict[int, AssignmentClaim] = {}
    rivals = rivals_on_vm(observed, vm)
    turns: list[AssignmentClaim | None] = [c for c in rivals if me is None or c.age < me]
    turns += [None, *(c for c in rivals if me is not None and c.age > me)]
    for claim in turns:
        wants = desired if claim is None else claim_wants(claim)
        matched, _ = match_devices(wants, free)
        for device in matched.values():
            free.remove(device)
            if claim is None:
                mine.append(device)
            else:
                held[device.key] = claim
    return Holdings(tuple(sorted([*mine, *free], key=lambda d: d.key)), held)


def _host_devices(want: DesiredDevice, observed: VMObservation) -> set[str]:
    """Active passthrough devices of the VM's host that could back this dynamic device: its
    vendor/device ids, and its label where the policy's status row says the device's label."""
    rows = observed.policy.host_devices if observed.policy else ()
    labels = {normalize_pci_address(r.address): r.hardware_label or "" for r in rows if r.address}
    return {
        p.id
        for p in observed.config_target.pci_passthrough
        if (p.vendor_id, p.device_id) == (want.vendor_id, want.device_id)
        and (want.label is None or labels.get(p.id, want.label) == want.label)
    }


def _identity(vendor: int, device: int, label: str | None) -> tuple[int, int, str]:
    return vendor, device, label or ""


def dynamic_claimed(
    want: DesiredDevice,
    desired: Sequence[DesiredDevice],
    observed: VMObservation,
    vm: ObservedVM,
    me: Age,
) -> Problem | None:
    """A dynamic device the VM's host has no device left for, once the older assignments on
    the VM and this assignment's earlier devices have theirs; None if it fits (or is static)."""
    if want.kind is not DeviceKind.DYNAMIC:
        return None
    same = _identity(want.vendor_id, want.device_id, want.label)
    devices = _host_devices(want, observed)
    capacity = max(len(devices), 1)  # the caller checked the host offers at least one
    takers = [
        c
        for c in rivals_on_vm(observed, vm)
        if c.age < me
        for _ in range(
            sum(1 for d in c.dynamic if d == same) + sum(1 for a in c.device_ids if a in devices)
        )
    ]
    index = next(i for i, d in enumerate(desired) if d.name == want.name)
    mine = sum(
        1
        for d in desired[:index]
        if d.kind is DeviceKind.DYNAMIC and _identity(d.vendor_id, d.device_id, d.label) == same
    )
    if len(takers) + mine < capacity:
        return None
    what = f"{want.name}: {want.vendor_id:04x}:{want.device_id:04x}"
    what += f" ({want.label})" if want.label else ""
    where = f"{vm.host} has {capacity} such device{'s' if capacity > 1 else ''}"
    if takers:
        names = ", ".join(dict.fromkeys(f"{c.namespace}/{c.name}" for c in takers))
        return Problem(
            CLAIMED_BY_ASSIGNMENT,
            f"{what}: {where}, claimed by the older VMDeviceAssignment {names} on the same VM",
        )
    return Problem(NOT_FOUND, f"{what}: {where}, taken by this assignment's earlier devices")
