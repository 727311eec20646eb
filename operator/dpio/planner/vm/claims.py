"""Several VMDeviceAssignments naming ONE VM: who owns which of its devices (docs/design.md,
"VM side: devices and claims").

A host device can be attached once, and a VM device belongs to one assignment: otherwise two
assignments both report Ready for one GPU, and deleting either takes it from the other. As for
rivals on other VMs, the older assignment wins (oldest creationTimestamp, then namespace/name):

- the VM's passthrough devices are shared out oldest first, each assignment taking the devices
  that match its spec by backing identity, as its own planner matches them (`holdings`); what an
  older one takes, a newer one neither counts as attached nor removes;
- a static device an older assignment on the same VM names is ClaimedByAssignment for the newer
  (vm.rules.claimed, as for a rival on another VM of the host);
- a Dynamic DirectPath device gets a host device only at power-on (vSphere API reference,
  VirtualPCIPassthroughDynamicBackingInfo.assignedId; power-on fails when no matching device is
  free), so the VM must not ask for more devices of one vendor/device/label than its host has:
  older assignments' devices come first, then this assignment's in spec order; the one that
  would not fit is ClaimedByAssignment (`dynamic_claimed`), or NotFound when the assignment's
  own earlier devices already take them. A static entry counts as well: an older static device
  takes one such host device, and a newer static entry may not take the host device an older
  assignment's dynamic entries need (else power-on finds none free and the older one loses it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dpio.api.assignment import DeviceKind
from dpio.api.conditions import CLAIMED_BY_ASSIGNMENT, IN_USE_BY_VM, NOT_FOUND
from dpio.planner.conditions import Problem
from dpio.planner.observed import normalize_pci_address
from dpio.planner.vm.devices import DesiredDevice, match_devices
from dpio.planner.vm.observed import (
    Age,
    AssignmentClaim,
    ObservedPciDevice,
    ObservedVM,
    VMObservation,
)


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


_Identity = tuple[int, int, str]  # a Dynamic DirectPath entry: vendorId, deviceId, label or ""


def _identity(want: DesiredDevice) -> _Identity:
    return want.vendor_id, want.device_id, want.label or ""


def _host_devices(same: _Identity, observed: VMObservation) -> frozenset[str]:
    """Active passthrough devices of the VM's host that could back a dynamic device: its
    vendor/device ids, and its label where the policy's status row says the device's label."""
    vendor, device, label = same
    rows = observed.policy.host_devices if observed.policy else ()
    labels = {normalize_pci_address(r.address): r.hardware_label or "" for r in rows if r.address}
    return frozenset(
        p.id
        for p in observed.config_target.pci_passthrough
        if (p.vendor_id, p.device_id) == (vendor, device)
        and (not label or labels.get(p.id, label) == label)
    )


def used_elsewhere(observed: VMObservation, vm: ObservedVM) -> frozenset[str]:
    """Host devices other VMs hold (static backings, and dynamic ones while running:
    vsphere.vm.map) or other assignments claim for other VMs of the host: not free for a new
    dynamic device."""
    claimed = (
        a for c in observed.claims if c.host == vm.host and not c.names_vm(vm) for a in c.device_ids
    )
    return frozenset(observed.attached_to_vms) | frozenset(claimed)


def _demand(
    same: _Identity,
    earlier: Sequence[DesiredDevice],
    older: Sequence[AssignmentClaim],
    devices: frozenset[str],
) -> tuple[list[AssignmentClaim], int]:
    """Who takes the host devices that could back `same` first: the older assignments on the
    VM (once per device) and how many of this assignment's earlier entries."""
    takers = [
        c
        for c in older
        for _ in range(c.dynamic.count(same) + sum(1 for a in c.device_ids if a in devices))
    ]
    mine = sum(
        1
        for d in earlier
        if (d.kind is DeviceKind.DYNAMIC and _identity(d) == same) or d.address in devices
    )
    return takers, mine


def _what(prefix: str, same: _Identity, host: str, count: int) -> str:
    vendor, device, label = same
    what = f"{prefix} {vendor:04x}:{device:04x}" + (f" ({label})" if label else "")
    return f"{what}: {host} has {count} such device{'s' if count != 1 else ''}"


def _claimed(what: str, older: Sequence[AssignmentClaim], namespace: str) -> Problem:
    names = ", ".join(dict.fromkeys(c.shown_to(namespace) for c in older))
    message = f"{what}, claimed by an older VMDeviceAssignment on the same VM ({names})"
    return Problem(CLAIMED_BY_ASSIGNMENT, message)


def dynamic_claimed(
    want: DesiredDevice,
    desired: Sequence[DesiredDevice],
    observed: VMObservation,
    vm: ObservedVM,
    me: Age,
) -> Problem | None:
    """An entry that would leave a dynamic device on the VM without a host device at power-on,
    once the older assignments on the VM and this assignment's earlier entries have theirs;
    None if it fits. A static entry is checked here after vm.rules.claimed."""
    older = [c for c in rivals_on_vm(observed, vm) if c.age < me]
    earlier = desired[: next(i for i, d in enumerate(desired) if d.name == want.name)]
    if want.kind is DeviceKind.DYNAMIC:
        same = _identity(want)
        devices = _host_devices(same, observed)
        free = devices - used_elsewhere(observed, vm)
        takers, mine = _demand(same, earlier, older, free)
        # No device to count (the policy's rows don't say the labels): ConfigTarget offers at
        # least one (dynamic_unavailable checked), so one is assumed, as vSphere would try.
        capacity = len(free) if devices else 1
        if len(takers) + mine < capacity:
            return None
        what = _what(f"{want.name}:", same, vm.host, len(devices))
        if takers:
            return _claimed(what, takers, me.namespace)
        if mine:
            return Problem(NOT_FOUND, f"{what}, taken by this assignment's earlier devices")
        # Attaching it anyway would power-cycle the VM into a power-on vSphere refuses.
        return Problem(IN_USE_BY_VM, f"{what}, none free: other VMs use or claim them")
    # Static: not the host device the dynamic entries before it need, for an identity whose
    # every host device the older assignments and this one's earlier entries already take.
    mine_dynamic = (_identity(d) for d in earlier if d.kind is DeviceKind.DYNAMIC)
    wanted = [*(i for c in older for i in c.dynamic), *mine_dynamic]
    for same in dict.fromkeys(wanted):
        devices = _host_devices(same, observed)
        takers, mine = _demand(same, earlier, older, devices)
        if want.address not in devices or len(takers) + mine < len(devices):
            continue
        prefix = f"{want.name}: {want.address} is needed for Dynamic DirectPath"
        what = _what(prefix, same, vm.host, len(devices))
        if needs := [c for c in older if same in c.dynamic]:
            return _claimed(what, needs, me.namespace)
        return Problem(NOT_FOUND, f"{what}, taken by this assignment's earlier devices")
    return None
