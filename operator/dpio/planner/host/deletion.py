"""What happens to host configuration when a HostPassthroughPolicy is deleted (`deletionPolicy`).

Retain: nothing. Disable: disable passthrough on the devices this policy selects, except devices
attached to a VM (taking them would break the VM at its next power-on), devices powered-off VMs'
Dynamic DirectPath devices or assignments still converging need (`dpio.planner.host.in_use`) and
devices another policy still selects. Dependent devices go with them
(HostPciPassthruInfo.dependentDevice).
"Enabled by this policy" is read as "selected by its spec": vSphere does not record who enabled a
device, so a device that was enabled before the policy existed is disabled too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from dpio.api.policy import DeletionPolicy, HostPassthroughPolicySpec
from dpio.planner.host.dependents import dependent_groups
from dpio.planner.host.host_plan import PassthruChange
from dpio.planner.host.in_use import DeviceClaim, claimed_addresses, dynamic_keep
from dpio.planner.host.plan import UpdatePassthruConfig
from dpio.planner.host.rules import OtherPolicy, PolicyRules, Rivals
from dpio.planner.host.suspend import describe_update
from dpio.planner.observed import ObservedHost, ObservedInventory
from dpio.planner.selection import InvalidSpecError, match_devices, select_hosts
from dpio.planner.suspension import Held, Suspension, held_calls


def deletion_touches_hosts(spec: HostPassthroughPolicySpec) -> bool:
    """Whether deleting the policy changes anything in vCenter (and so needs to reach it).

    Retain does not: its finalizer goes without a login, so a policy whose Secret or vCenter is
    gone can still be deleted."""
    return spec.deletion_policy is not DeletionPolicy.RETAIN


def held_deletion(
    suspension: Suspension | None, updates: Sequence[UpdatePassthruConfig]
) -> Held | None:
    """A deletion with cleanup to do while suspended (spec.suspend or dry-run) is held back
    and its finalizer stays. With nothing to clean up (deletionPolicy Retain, nothing left
    enabled) the object just goes: that needs no write."""
    if suspension is None or not updates:
        return None
    return held_calls(suspension, [describe_update(u.host, u.changes) for u in updates])


def plan_deletion(
    *,
    name: str,
    spec: HostPassthroughPolicySpec,
    inventory: ObservedInventory,
    others: Sequence[OtherPolicy] = (),
    claims: Sequence[DeviceClaim] = (),
) -> tuple[UpdatePassthruConfig, ...]:
    if not deletion_touches_hosts(spec):
        return ()
    try:
        rules = PolicyRules.from_spec(spec)
        hosts = select_hosts(spec.hosts, inventory).hosts
    except InvalidSpecError:
        return ()  # a spec that never selected anything enabled nothing
    # Age does not matter on delete (any other policy that selects a device keeps it): the
    # policy being deleted is treated as the newest.
    rivals = Rivals.build(name, datetime.max.replace(tzinfo=UTC), tuple(others), inventory)
    updates = []
    for host in hosts:
        changes = _disable(host, rules, rivals, tuple(c for c in claims if c.host == host.name))
        if changes and host.connected:
            updates.append(UpdatePassthruConfig(host.name, host.moref, changes))
    return tuple(updates)


def _disable(
    host: ObservedHost, rules: PolicyRules, rivals: Rivals, claims: Sequence[DeviceClaim]
) -> tuple[PassthruChange, ...]:
    info = host.passthru_info()
    devices = host.pci_device()
    groups = dependent_groups(info.values())
    apply_now = rules.apply_now_auto and host.device_rebind_without_reboot_supported
    matches, _ = match_devices(rules.matchers, host)
    off: set[str] = set()
    for match in matches:
        group = groups.get(match.device.id, frozenset({match.device.id}))
        keep = any(
            host.attached_to_vms.get(m) or rivals.claimed_by(host, devices.get(m), m) for m in group
        )
        if not keep:
            off.update(m for m in group if m in info and info[m].passthru_enabled)
    claimed = set(claimed_addresses(claims))
    for pci_id in claimed:
        off -= groups.get(pci_id, frozenset({pci_id}))
    enabled = {i for i, state in info.items() if state.passthru_enabled}
    for pci_id in dynamic_keep(host, enabled - off - claimed, off, claims):
        off -= groups.get(pci_id, frozenset({pci_id}))
    return tuple(PassthruChange(i, False, apply_now) for i in sorted(off))
