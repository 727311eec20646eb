"""Devices a VM needs although no VM reads as attached to them: Dynamic DirectPath demand.

A Dynamic DirectPath device (`VirtualPCIPassthroughDynamicBackingInfo`, vSphere 7.0) names no
host device: vSphere picks a free enabled device matching `allowedDevice[]` and `customLabel`
at power-on and records it in `assignedId`, which is set only while the VM runs (vSphere API
reference). A powered-off VM therefore holds no device, yet disabling the devices it could use
makes its next power-on fail. Rules that disable devices (`exclusive: true`, `deletionPolicy:
Disable`) keep as many matching devices enabled as the host's not-running VMs need.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from dpio.planner.observed import DynamicPassthrough, ObservedHost


def _demand(host: ObservedHost) -> list[tuple[str, DynamicPassthrough]]:
    """(VM name, backing) for every dynamic device without a host device assigned; labelled
    ones first, so a device with a label is not used up by a backing that takes any."""
    wanted = [(vm.name, d) for vm in host.vms for d in vm.dynamic if not d.assigned_id]
    return sorted(wanted, key=lambda w: (not w[1].label, w[0]))


def dynamic_keep(
    host: ObservedHost, staying: Collection[str], leaving: Collection[str]
) -> Mapping[str, str]:
    """Which of `leaving` (devices about to be disabled) must stay enabled: PCI id -> the VM.

    `staying` are the devices that stay enabled anyway; those already serve demand first.
    Devices attached to a VM serve that VM, not this demand."""
    info, devices = host.passthru_info(), host.pci_device()
    free = [i for i in sorted(staying) if not host.attached_to_vms.get(i)]
    spare = [i for i in sorted(leaving) if not host.attached_to_vms.get(i)]
    keep: dict[str, str] = {}
    for vm, backing in _demand(host):
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


def keep_message(vm: str) -> str:
    return f"Kept enabled: powered-off VM {vm} has a Dynamic DirectPath device that may use it"
