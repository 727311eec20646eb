"""Properties over generated inventories: the planner is total, and converged means no calls."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.planner.builders import NOW

from dpio.api.policy import HostPassthroughPolicySpec
from dpio.planner.host.deletion import plan_deletion
from dpio.planner.host.plan import PolicyPlan, plan_policy
from dpio.planner.host.rules import OtherPolicy
from dpio.planner.host.status import policy_status
from dpio.planner.observed import (
    HostPciDevice,
    HostPciPassthruInfo,
    ObservedHost,
    ObservedInventory,
)

# A small id space, so devices, passthrough info, dependents and selectors collide often.
ADDRESSES = ["0000:3b:00.0", "0000:3b:00.1", "0000:18:00.0", "0000:3B:00.0", "3b:00.0", "junk", ""]
pci_ids = st.sampled_from(ADDRESSES)
int16 = st.integers(min_value=-(2**15), max_value=2**16)  # signed on the wire, or not

devices = st.builds(
    HostPciDevice,
    id=pci_ids,
    vendor_id=st.sampled_from([0x10DE, -32634, -1, 0]) | int16,
    device_id=st.sampled_from([0x20B5, 0x1572]) | int16,
    device_name=st.sampled_from(["GA100 [A100]", "Tesla T4", ""]),
)
infos = st.builds(
    HostPciPassthruInfo,
    id=pci_ids,
    dependent_device=pci_ids,
    passthru_enabled=st.booleans(),
    passthru_capable=st.booleans(),
    passthru_active=st.booleans(),
    hardware_label=st.sampled_from(["", "a100", "x"]),
)
hosts = st.builds(
    ObservedHost,
    moref=st.just("host-1"),
    name=st.sampled_from(["esx01", "esx02"]),
    cluster=st.sampled_from([None, "GPU-Cluster"]),
    version=st.sampled_from(["", "6.7.0", "7.0.2", "8.0.2", "weird"]),
    connection_state=st.sampled_from(["connected", "disconnected", "notResponding", ""]),
    in_maintenance_mode=st.booleans(),
    boot_time=st.none() | st.just(NOW - timedelta(days=1)),
    device_rebind_without_reboot_supported=st.booleans(),
    pci_devices=st.lists(devices, max_size=4).map(tuple),
    pci_passthru_info=st.lists(infos, max_size=4).map(tuple),
    in_use_by_host=st.dictionaries(pci_ids, st.just("vmk0"), max_size=2),
    attached_to_vms=st.dictionaries(pci_ids, st.just(("vm-a",)), max_size=2),
)
selectors = st.sampled_from(
    [
        {"address": "0000:3b:00.0"},
        {"address": "0000:18:00.0"},
        {"vendorID": "10de", "deviceID": "20b5", "hardwareLabel": "a100"},
        {"vendorID": "8086", "deviceID": "1572"},
        {"namePattern": "T4"},
    ]
)
specs = st.builds(
    lambda devs, exclusive, allow, apply_now, reboot, deletion: (
        HostPassthroughPolicySpec.model_validate(
            {
                "hosts": {"names": ["esx01"], "clusters": ["GPU-Cluster"]},
                "devices": devs,
                "exclusive": exclusive,
                "allowDevicesInUse": allow,
                "applyNow": apply_now,
                "reboot": {"policy": reboot, "maxUnavailable": 1},
                "deletionPolicy": deletion,
            }
        )
    ),
    st.lists(selectors, max_size=3),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["Auto", "Never"]),
    st.sampled_from(["Manual", "Rolling"]),
    st.sampled_from(["Retain", "Disable"]),
)


def _plan(spec: HostPassthroughPolicySpec, inventory: ObservedInventory, others=()) -> PolicyPlan:
    return plan_policy(
        name="p", creation_timestamp=NOW, spec=spec, inventory=inventory, now=NOW, others=others
    )


def _apply(host: ObservedHost, plan: PolicyPlan) -> ObservedHost:
    """What vSphere would report after UpdatePassthruConfig with these changes."""
    changes = {c.id: c for u in plan.updates if u.host == host.name for c in u.changes}
    infos = tuple(
        replace(
            i,
            passthru_enabled=changes[i.id].passthru_enabled,
            passthru_active=(
                changes[i.id].passthru_enabled if changes[i.id].apply_now else i.passthru_active
            ),
            hardware_label=changes[i.id].hardware_label or i.hardware_label,
        )
        if i.id in changes
        else i
        for i in host.pci_passthru_info
    )
    return replace(host, pci_passthru_info=infos)


@settings(max_examples=300, deadline=None)
@given(st.lists(hosts, max_size=3), specs, specs)
def test_planner_is_total(
    observed: list[ObservedHost], spec: HostPassthroughPolicySpec, other: HostPassthroughPolicySpec
) -> None:
    inventory = ObservedInventory(hosts=tuple(observed), clusters={"GPU-Cluster": ("esx02",)})
    others = (OtherPolicy("older", NOW - timedelta(days=1), other),)
    plan = _plan(spec, inventory, others)
    status = policy_status(
        plan, reboot_policy=spec.reboot.policy, previous=None, generation=1, now=NOW
    )
    assert status.conditions[0].type == "Ready"
    assert all(u.changes for u in plan.updates)  # never an empty call
    assert len({u.host for u in plan.updates}) == len(plan.updates)  # one call per host
    plan_deletion(name="p", spec=spec, inventory=inventory, others=others)


@settings(max_examples=300, deadline=None)
@given(st.lists(hosts, max_size=3, unique_by=lambda h: h.name), specs)
def test_applying_the_plan_converges(
    observed: list[ObservedHost], spec: HostPassthroughPolicySpec
) -> None:
    """Plan, apply the changes as vSphere would, plan again: nothing left to change."""
    inventory = ObservedInventory(hosts=tuple(observed), clusters={"GPU-Cluster": ("esx02",)})
    first = _plan(spec, inventory)
    after = ObservedInventory(
        hosts=tuple(_apply(h, first) for h in observed), clusters=inventory.clusters
    )
    second = _plan(spec, after)
    assert second.updates == ()
