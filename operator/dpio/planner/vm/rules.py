"""Per-device rules: does the policy offer the device on the VM's host, is the device free, and
how many devices a VM may have. Who may use the policy for which VM: vm.tenancy.

Each check returns a domain outcome (`Problem` with a reason from `dpio.api.conditions`), never
raises for something vSphere or the cluster can be in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dpio.api.conditions import (
    CLAIMED_BY_ASSIGNMENT,
    IN_USE_BY_VM,
    NOT_ENABLED,
    NOT_FOUND,
    NOT_IN_POLICY,
    PENDING_HOST_REBOOT,
)
from dpio.api.policy import DeviceState, DeviceStatus
from dpio.planner.conditions import Problem
from dpio.planner.observed import HostPciDevice, parse_version
from dpio.planner.selection import InvalidSpecError, compile_device_selectors
from dpio.planner.vm.devices import DesiredDevice
from dpio.planner.vm.observed import Age, AssignmentClaim, ObservedVM, VMObservation
from dpio.planner.vm.tenancy import host_selected

# Passthrough devices per VM by ESXi version, newest first (vSphere configuration maximums;
# Broadcom KB 309986). Used when QueryConfigOption has no numPCIPassthroughDevices.
_LIMITS: tuple[tuple[tuple[int, ...], int], ...] = (
    ((8, 0, 2), 128),
    ((8, 0, 1), 64),
    ((8, 0), 32),
    ((6, 0), 16),
    ((5, 0), 6),
    ((4, 0), 2),
)
UNKNOWN_VERSION_LIMIT = 2  # the smallest maximum: safe when the version can't be read


def passthrough_limit(max_from_config_option: int | None, version: str) -> int:
    """`QueryConfigOption` `numPCIPassthroughDevices` if vSphere says, else the version table."""
    if max_from_config_option is not None and max_from_config_option > 0:
        return max_from_config_option
    parsed = parse_version(version)
    return next((n for since, n in _LIMITS if parsed >= since), UNKNOWN_VERSION_LIMIT)


@dataclass(frozen=True, slots=True)
class DeviceCheck:
    """A device that can't be attached now, and whether only a human can change that."""

    name: str
    problem: Problem
    stalled: bool = False

    @property
    def claimed(self) -> bool:
        """Another assignment has it: it won't be added for this one."""
        return self.problem.reason in (CLAIMED_BY_ASSIGNMENT, IN_USE_BY_VM)


def _row(rows: Sequence[DeviceStatus], address: str | None) -> DeviceStatus | None:
    return next((r for r in rows if address is not None and r.address == address), None)


def in_policy(want: DesiredDevice, observed: VMObservation, vm: ObservedVM) -> bool:
    """The policy offers this device: its host and device selectors cover it (docs/design.md,
    "VM side: devices and claims")."""
    policy = observed.policy
    if policy is None or not host_selected(policy.spec, vm):
        return False
    try:
        matchers = compile_device_selectors(policy.spec.devices)
    except InvalidSpecError:
        return False  # the policy reports its own bad spec (Stalled); it offers nothing
    if want.address is not None:  # static: the host device, as the host or the policy sees it
        target = observed.config_target.pci(want.address)
        row = _row(policy.host_devices, want.address)
        if row is not None:
            return True  # the policy's own status lists it: its selectors picked it
        if target is None:
            return any(m.address == want.address for m in matchers)
        device = HostPciDevice(
            target.id, target.vendor_id, target.device_id, device_name=target.name
        )
        return any(m.matches(device) for m in matchers)
    ids = (want.vendor_id, want.device_id)
    by_selector = any(
        (m.vendor_id, m.device_id) == ids and (want.label in (None, m.hardware_label))
        for m in matchers
    )
    by_status = any(
        (int(r.vendor_id or "0", 16), int(r.device_id or "0", 16)) == ids
        and want.label in (None, r.hardware_label)
        for r in policy.host_devices
    )
    return by_selector or by_status


def static_unavailable(
    want: DesiredDevice, observed: VMObservation, vm: ObservedVM
) -> Problem | None:
    """Enabled AND active on the VM's host (ConfigTarget lists only active devices, vSphere API
    reference), else say why from the policy's status row (docs/design.md,
    "VM side: devices and claims")."""
    address = want.address or ""
    if observed.config_target.pci(address) is not None:
        return None
    rows = observed.policy.host_devices if observed.policy else ()
    row = _row(rows, address)
    where = f"{want.name}: {address} on {vm.host}"
    if row is None and observed.policy is not None and not observed.policy.host_reported:
        return _not_reported(where, observed.policy.name)
    if row is None or row.state is DeviceState.NOT_FOUND:
        return Problem(NOT_FOUND, f"{where} is not an active passthrough device")
    if row.state is DeviceState.PENDING_REBOOT:
        return Problem(PENDING_HOST_REBOOT, f"{where} is enabled; active after a host reboot")
    return Problem(NOT_ENABLED, f"{where} is not enabled for passthrough ({row.state})")


def dynamic_unavailable(
    want: DesiredDevice, observed: VMObservation, vm: ObservedVM
) -> Problem | None:
    ids = (want.vendor_id, want.device_id)
    offered = observed.config_target.dynamic_passthrough
    if any(
        (d.vendor_id, d.device_id) == ids and want.label in (None, d.custom_label or None)
        for d in offered
    ):
        return None
    rows = observed.policy.host_devices if observed.policy else ()
    same = [r for r in rows if (int(r.vendor_id or "0", 16), int(r.device_id or "0", 16)) == ids]
    where = f"{want.name}: {want.vendor_id:04x}:{want.device_id:04x} on {vm.host}"
    if any(r.state is DeviceState.PENDING_REBOOT for r in same):
        return Problem(PENDING_HOST_REBOOT, f"{where} is enabled; active after a host reboot")
    if same:
        return Problem(NOT_ENABLED, f"{where} is not enabled for passthrough")
    if observed.policy is not None and not observed.policy.host_reported:
        return _not_reported(where, observed.policy.name)
    return Problem(NOT_FOUND, f"{where}: no such passthrough device")


def _not_reported(where: str, policy: str) -> Problem:
    """The policy has not looked at the host for its current spec yet: the device may well be
    there. It waits (NotFound would need a human, and Stalled would fail a GitOps run)."""
    return Problem(
        NOT_ENABLED, f"{where}: waiting for HostPassthroughPolicy {policy} to report on the host"
    )


def claimed(
    want: DesiredDevice,
    observed: VMObservation,
    vm: ObservedVM,
    me: Age,
) -> Problem | None:
    """InUseByVM (another VM's backing uses it) or ClaimedByAssignment (an OLDER assignment asks
    for it; oldest creationTimestamp, then namespace/name, wins whatever the input order), on
    this VM as on any other of the host (vm.claims)."""
    address = want.address or ""
    others = [n for n in observed.attached_to_vms.get(address, ()) if n != vm.name]
    if others:  # which VM is not the tenant's business (it may be another team's)
        return Problem(IN_USE_BY_VM, f"{want.name}: {address} is attached to another VM")
    rivals: list[AssignmentClaim] = sorted(
        (
            c
            for c in observed.claims
            if c.host == vm.host and address in c.device_ids and c.age < me
        ),
        key=lambda c: c.age,
    )
    if rivals:
        return Problem(
            CLAIMED_BY_ASSIGNMENT,
            f"{want.name}: {address} is claimed by an older VMDeviceAssignment "
            f"({rivals[0].shown_to(me.namespace)})",
        )
    return None


def check_device(
    want: DesiredDevice,
    observed: VMObservation,
    vm: ObservedVM,
    me: Age,
) -> DeviceCheck | None:
    """The first rule a device not yet attached breaks, or None if it can be attached now."""
    if not in_policy(want, observed, vm):
        policy = observed.policy.name if observed.policy else "?"
        message = f"{want.name}: not offered on {vm.host} by HostPassthroughPolicy {policy}"
        return DeviceCheck(want.name, Problem(NOT_IN_POLICY, message), stalled=True)
    if want.address is not None:
        problem = static_unavailable(want, observed, vm) or claimed(want, observed, vm, me)
    else:
        problem = dynamic_unavailable(want, observed, vm)
    return DeviceCheck(want.name, problem) if problem is not None else None
