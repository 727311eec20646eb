"""Hypothesis strategies for the property tests: raw specs as users type them, and vSphere
inventory shapes as odd as the wire allows (no tests here).

Specs are generated as wire dicts (camelCase, fields left out, odd values) and go through the
pydantic models exactly as the API server's objects do; the planner only ever sees what validates.
Inventories are built from the planner's own observed types with values vSphere can send:
signed int16 ids, duplicate addresses, empty hosts, missing versions, disconnected hosts.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from dpio.api.policy import DeviceState, DeviceStatus
from dpio.planner.observed import HostPciDevice, HostPciPassthruInfo, ObservedHost
from dpio.planner.vm.observed import (
    AssignmentClaim,
    ConfigTarget,
    ConfigTargetDynamic,
    ConfigTargetPci,
    DynamicBacking,
    ObservedCluster,
    ObservedNic,
    ObservedPciDevice,
    ObservedVM,
    StaticBacking,
)

# `make test` keeps the default modest; `DPIO_HYPOTHESIS_PROFILE=deep` (or the fault suite) digs.
# Specs are filtered down to what admission accepts, which can reject many draws in a row:
# filter_too_much is about generation speed, not about the property, so it is not a failure.
# `make test` runs derandomized (the same examples every run: CI is reproducible); deep explores.
_SLOW_OR_FILTERED = [HealthCheck.too_slow, HealthCheck.filter_too_much]
settings.register_profile(
    "fast",
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=_SLOW_OR_FILTERED,
)
settings.register_profile(
    "deep", max_examples=1000, deadline=None, suppress_health_check=_SLOW_OR_FILTERED
)
PROFILE = settings.get_profile(os.environ.get("DPIO_HYPOTHESIS_PROFILE", "fast"))

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)

# A small id space, so devices, selectors, claims and attachments collide often; some spellings
# are the same device (upper case, no domain), some are not addresses at all.
ADDRESSES = ["0000:3b:00.0", "0000:3b:00.1", "0000:af:00.0", "0000:3B:00.0", "3b:00.0", "zz", ""]
HEX_IDS = ["10de", "20b5", "8086", "1572", "ffff", "0000", "10DE", "0x10de", "1", "xyz1", ""]
HOST_NAMES = ["esx01", "esx02", "ESX01", "esx-gpu-01", ""]
VERSIONS = ["", "4.0", "5.5.0", "6.7.0", "7.0.2", "8.0", "8.0.1", "8.0.2", "9.9.9", "weird", "8.x"]

addresses = st.sampled_from(ADDRESSES)
# HostPciDevice.vendorId is an xsd:short: negative on the wire above 0x7fff (govmomi #2248).
int16 = st.sampled_from([0x10DE, 0x20B5, 0x8086, -32634, -1, 0, 0xFFFF]) | st.integers(
    -(2**15), 2**16 - 1
)
maybe = st.booleans()


def _drop_none(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


# --- HostPassthroughPolicy specs -----------------------------------------------------------

# Mostly one selector kind per entry (what admission lets through), sometimes a raw mix.
_raw_selectors = st.builds(
    lambda address, vendor, device, pattern, label: _drop_none(
        {
            "address": address,
            "vendorID": vendor,
            "deviceID": device,
            "namePattern": pattern,
            "hardwareLabel": label,
        }
    ),
    _optional(addresses),
    _optional(st.sampled_from(HEX_IDS)),
    _optional(st.sampled_from(HEX_IDS)),
    _optional(st.sampled_from(["^Tesla T4$", "A100", "(", ".*", ""])),
    _optional(st.sampled_from(["a100", "", "x" * 70])),
)
_labels = _optional(st.sampled_from(["a100", "x"]))
device_selectors = st.one_of(
    st.builds(lambda a: {"address": a}, addresses),
    st.builds(
        lambda v, d, label: _drop_none({"vendorID": v, "deviceID": d, "hardwareLabel": label}),
        st.sampled_from(HEX_IDS),
        st.sampled_from(HEX_IDS),
        _labels,
    ),
    st.builds(lambda p: {"namePattern": p}, st.sampled_from(["^Tesla T4$", "A100", "(", ".*"])),
    _raw_selectors,
)
host_selectors = st.builds(
    lambda names, clusters, pattern: _drop_none(
        {"names": names, "clusters": clusters, "namePattern": pattern}
    ),
    _optional(st.lists(st.sampled_from(HOST_NAMES), min_size=1, max_size=3)),
    _optional(st.lists(st.sampled_from(["GPU-Cluster", "nope", ""]), max_size=2)),
    _optional(st.sampled_from(["^esx", "[", "gpu"])),
)
# Inventory paths (`govc ls` spelling): the team's folder and pool, a subfolder, the root vm
# folder (a scope wider than the team's), and spellings admission refuses (relative, trailing /).
FOLDERS = ["/DC1/vm/ml-team", "/DC1/vm/ml-team/prod", "/DC1/vm", "/DC1/vm/web", ""]
POOLS = ["/DC1/host/GPU-Cluster/Resources/ml-team", "/DC1/host/GPU-Cluster/Resources", ""]
_scope_paths = st.sampled_from([*FOLDERS, *POOLS, "DC1/vm", "/DC1/vm/"])
_power_policies = st.sampled_from(["WaitForPowerOff", "ShutdownGuest", "PowerOff", "Reboot"])
consumer_entries = st.fixed_dictionaries(
    {},
    optional={
        "namespaces": st.lists(st.sampled_from(["ml-team", "x", "ML"]), max_size=2),
        "namespaceSelector": st.sampled_from([{}, {"matchLabels": {"team": "ml"}}]),
        "vms": st.fixed_dictionaries(
            {},
            optional={
                "folders": st.lists(_scope_paths, max_size=2, unique=True),
                "resourcePools": st.lists(_scope_paths, max_size=2, unique=True),
            },
        ),
        "powerPolicies": st.lists(_power_policies, max_size=3, unique=True),
        "conflictPolicies": st.lists(st.sampled_from(["Block", "Resolve"]), unique=True),
        "maxDevices": st.integers(-1, 3),
    },
)
policy_specs = st.builds(
    lambda hosts, devices, rest: {"hosts": hosts, "devices": devices, **rest},
    host_selectors,
    st.lists(device_selectors, max_size=4),
    st.fixed_dictionaries(
        {},
        optional={
            "exclusive": maybe,
            "applyNow": st.sampled_from(["Auto", "Never", "Sometimes"]),
            "reboot": st.fixed_dictionaries(
                {},
                optional={
                    "policy": st.sampled_from(["Manual", "Rolling", "manual"]),
                    "maxUnavailable": st.integers(-1, 3),
                    "drainTimeout": st.sampled_from(["30m", "0s", "1h30m", "10", "forever"]),
                },
            ),
            "allowDevicesInUse": maybe,
            "deletionPolicy": st.sampled_from(["Retain", "Disable", "Delete"]),
            "consumers": st.lists(consumer_entries, max_size=2),
        },
    ),
)

# --- vSphere inventory: hosts --------------------------------------------------------------

host_pci_devices = st.builds(
    HostPciDevice,
    id=addresses,
    vendor_id=int16,
    device_id=int16,
    class_id=int16,
    device_name=st.sampled_from(["GA100 [A100]", "Tesla T4", "", "\u00e9\u00e9"]),
)
passthru_infos = st.builds(
    HostPciPassthruInfo,
    id=addresses,
    dependent_device=addresses,
    passthru_enabled=maybe,
    passthru_capable=maybe,
    passthru_active=maybe,
    hardware_label=st.sampled_from(["", "a100", "x"]),
)
observed_hosts = st.builds(
    ObservedHost,
    moref=st.sampled_from(["host-1", "host-2", ""]),
    name=st.sampled_from(HOST_NAMES),
    cluster=st.sampled_from([None, "GPU-Cluster", ""]),
    version=st.sampled_from(VERSIONS),
    api_version=st.sampled_from(VERSIONS),
    connection_state=st.sampled_from(["connected", "disconnected", "notResponding", ""]),
    in_maintenance_mode=maybe,
    reboot_required=maybe,
    boot_time=st.sampled_from([None, NOW - timedelta(days=1), NOW + timedelta(days=1)]),
    device_rebind_without_reboot_supported=maybe,
    pci_devices=st.lists(host_pci_devices, max_size=4).map(tuple),
    pci_passthru_info=st.lists(passthru_infos, max_size=4).map(tuple),
    in_use_by_host=st.dictionaries(addresses, st.sampled_from(["vmk0", "vmhba0"]), max_size=2),
    attached_to_vms=st.dictionaries(addresses, st.just(("vm-a", "vm-b")), max_size=2),
)

# --- VMDeviceAssignment specs --------------------------------------------------------------

_odd_devices = st.builds(
    lambda name, pci, dynamic: _drop_none({"name": name, "pci": pci, "dynamic": dynamic}),
    st.sampled_from(["gpu0", "gpu1", "GPU", "-x", ""]),
    _optional(st.builds(lambda a: {"address": a}, addresses)),
    _optional(
        st.builds(
            lambda v, d, label: _drop_none({"vendorID": v, "deviceID": d, "label": label}),
            st.sampled_from(HEX_IDS),
            st.sampled_from(HEX_IDS),
            _optional(st.sampled_from(["a100", ""])),
        )
    ),
)
# Entries admission accepts (valid address or 4-hex-digit ids), with every odd value the
# schema can't rule out: devices the host lacks, upper-case hex, the same device twice.
_VALID_ADDRESSES = ["0000:3b:00.0", "0000:3b:00.1", "0000:af:00.0", "0000:3B:00.0"]
_VALID_HEX = ["10de", "20b5", "8086", "1572", "ffff", "0000", "10DE"]
_devices = st.one_of(
    st.builds(
        lambda name, a: {"name": name, "pci": {"address": a}},
        st.sampled_from(["gpu0", "gpu1", "gpu2", "nic0"]),
        st.sampled_from(_VALID_ADDRESSES),
    ),
    st.builds(
        lambda name, v, d, label: {
            "name": name,
            "dynamic": _drop_none({"vendorID": v, "deviceID": d, "label": label}),
        },
        st.sampled_from(["gpu0", "gpu1", "gpu2", "nic0"]),
        st.sampled_from(_VALID_HEX),
        st.sampled_from(_VALID_HEX),
        _optional(st.sampled_from(["a100", "t4"])),
    ),
)
_device_lists = st.lists(_devices, min_size=1, max_size=4, unique_by=lambda d: d["name"]) | (
    st.lists(_odd_devices, max_size=3)
)
_adapters = st.sampled_from(
    [
        [],
        [{"adapter": "Network adapter 1"}],
        [{"adapter": "Network adapter 2"}],
        [{"adapter": "Network adapter 1"}, {"adapter": "Network adapter 2"}],
    ]
)
assignment_specs = st.builds(
    lambda vm, devices, rest: {"policyRef": {"name": "gpu-hosts"}, "vm": vm, **rest, **devices},
    st.sampled_from(
        [
            {"name": "ml-trainer-01"},
            {"name": "ml-trainer-01"},
            {"instanceUUID": "5012a4b6-0000-4000-8000-000000000001"},
            {"name": "a", "instanceUUID": "5012a4b6-0000-4000-8000-000000000001"},
        ]
    ),
    st.fixed_dictionaries({"devices": _device_lists}, optional={"networkDirectPath": _adapters})
    | st.fixed_dictionaries({"networkDirectPath": _adapters.filter(bool)}),
    st.fixed_dictionaries(
        {},
        optional={
            "powerPolicy": st.sampled_from(["WaitForPowerOff", "ShutdownGuest", "PowerOff", "X"]),
            "restorePowerState": maybe,
            "conflictPolicy": st.sampled_from(["Block", "Resolve", "Ignore"]),
        },
    ),
)

# --- vSphere inventory: one VM and what its host offers ------------------------------------

backings = (
    st.none()
    | st.builds(
        StaticBacking,
        id=addresses,
        device_id=st.sampled_from(["20b5", "8373", "20B5", "", "zz"]),
        system_id=st.sampled_from(["sys-1", ""]),
        vendor_id=int16,
    )
    | st.builds(
        DynamicBacking,
        allowed_devices=st.lists(st.tuples(int16, int16), max_size=2).map(tuple),
        custom_label=st.sampled_from(["", "a100"]),
    )
)
vm_pci_devices = st.builds(
    ObservedPciDevice,
    key=st.sampled_from([13000, 13001, 13000, -1, 0]),
    label=st.just("PCI device 0"),
    backing=backings,
    assigned_id=_optional(addresses),
)
vm_nics = st.builds(
    ObservedNic,
    key=st.sampled_from([4000, 4001]),
    label=st.sampled_from(["Network adapter 1", "Network adapter 2"]),
    kind=st.sampled_from(["vmxnet3", "e1000e", ""]),
    upt_compatibility_enabled=maybe,
    gen2_allowed=maybe,
    gen2_active=maybe,
    gen2_inactive_reasons=st.lists(st.sampled_from(["vmNptIncompatibleGuest", "x"])).map(tuple),
)
clusters = st.builds(
    ObservedCluster,
    name=st.just("gpu"),
    moref=st.just("domain-c1"),
    ha_enabled=maybe,
    drs_enabled=maybe,
    drs_automation=st.sampled_from(["fullyAutomated", "manual", "partiallyAutomated", ""]),
    vm_das_restart_priority=st.sampled_from([None, "disabled", "high"]),
    vm_drs_enabled=st.sampled_from([None, True, False]),
    vm_drs_behavior=st.sampled_from([None, "manual", "fullyAutomated"]),
)
observed_vms = st.builds(
    ObservedVM,
    moref=st.just("vm-42"),
    name=st.just("ml-trainer-01"),
    host=st.sampled_from(["esx01", ""]),
    host_version=st.sampled_from(VERSIONS),
    power_state=st.sampled_from(["poweredOn", "poweredOff", "suspended", ""]),
    memory_mb=st.sampled_from([0, 16384, -1]),
    memory_reservation_mb=st.sampled_from([0, 16384]),
    memory_reservation_locked_to_max=maybe,
    cpu_hot_add_enabled=maybe,
    memory_hot_add_enabled=maybe,
    nested_hv_enabled=maybe,
    ft_configured=maybe,
    snapshot_count=st.integers(0, 3),
    hardware_version=st.sampled_from(["vmx-19", "vmx-7", "", "vmx-x"]),
    change_version=st.sampled_from(["cv-1", ""]),
    pci_devices=st.lists(vm_pci_devices, max_size=4).map(tuple),
    nics=st.lists(vm_nics, max_size=2).map(tuple),
    cluster=st.none() | clusters,
    folder=st.sampled_from(FOLDERS),
    resource_pool=st.sampled_from(POOLS),
)
config_targets = st.builds(
    ConfigTarget,
    pci_passthrough=st.lists(
        st.builds(
            ConfigTargetPci,
            id=addresses,
            system_id=st.sampled_from(["sys-1", ""]),
            vendor_id=int16,
            device_id=int16,
        ),
        max_size=3,
    ).map(tuple),
    dynamic_passthrough=st.lists(
        st.builds(
            ConfigTargetDynamic,
            vendor_id=int16,
            device_id=int16,
            custom_label=st.sampled_from(["", "a100"]),
        ),
        max_size=2,
    ).map(tuple),
)
device_rows = st.builds(
    lambda address, state, vendor, device: DeviceStatus.model_validate(
        {
            "address": address,
            "vendorID": vendor,
            "deviceID": device,
            "enabled": state in (DeviceState.ACTIVE, DeviceState.PENDING_REBOOT),
            "active": state is DeviceState.ACTIVE,
            "state": state,
        }
    ),
    st.sampled_from(["0000:3b:00.0", "0000:3b:00.1", "0000:af:00.0", "0000:3B:00.0"]),
    st.sampled_from(list(DeviceState)),
    st.sampled_from(["10de", "8086", "ffff"]),
    st.sampled_from(["20b5", "1572"]),
)
claims = st.builds(
    AssignmentClaim,
    namespace=st.sampled_from(["ml-team", "other"]),
    name=st.sampled_from(["a", "trainer-gpu", "z"]),
    creation_timestamp=st.sampled_from([NOW - timedelta(days=2), NOW]),
    host=st.sampled_from(["esx01", "esx02"]),
    device_ids=st.lists(addresses, max_size=2).map(tuple),
)
