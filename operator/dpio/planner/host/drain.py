"""Which powered-on VMs `EnterMaintenanceMode_Task` could not evacuate from a host.

Maintenance mode is reached only once no powered-on VM is left on the host. vCenter moves VMs
off by itself only through DRS, and only those for which DRS is fully automated; for the others
it makes recommendations a human must apply (vSphere Resource Management, "Placing a Host in
Maintenance Mode" and "DRS Automation Level"). A drain that must wait for one of these VMs can
only end in `drainTimeout`, so the rolling reboot does not start it and names the VMs instead
(docs/design.md, "Host side: rolling reboots").
"""

from __future__ import annotations

from dpio.planner.observed import FULLY_AUTOMATED, ObservedHost, ObservedVM


def why_not_evacuable(vm: ObservedVM) -> str | None:
    """The first reason this powered-on VM stays on its host, or None if DRS can move it."""
    if vm.passthrough:
        # A VM with a PCI passthrough device can't be vMotioned (vSphere Virtual Machine
        # Administration, "Add a PCI Device to a Virtual Machine").
        return "PCI passthrough device"
    if vm.fault_tolerance:
        # DRS moves FT VMs only in clusters with EVC (vSphere Availability, "Using vSphere
        # Fault Tolerance with DRS"), which is not read here: a human places them.
        return "Fault Tolerance"
    if vm.drs_behavior is None:
        return "host is in no DRS cluster"
    if vm.drs_behavior != FULLY_AUTOMATED:
        return f"DRS {vm.drs_behavior}"
    return None


def drain_blockers(host: ObservedHost) -> tuple[str, ...]:
    """`vm-name (reason)` for every powered-on VM that would hold the host out of maintenance."""
    blocked = []
    for vm in sorted(host.vms, key=lambda v: v.name):
        if not vm.powered_on:
            continue  # EnterMaintenanceMode(evacuatePoweredOffVms=False) leaves them registered
        reason = why_not_evacuable(vm)
        if reason is not None:
            blocked.append(f"{vm.name} ({reason})")
    return tuple(blocked)
