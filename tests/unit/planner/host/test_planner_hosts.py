"""The per-host plan: device states, the rules of docs/design.md, "Host side: passthrough rules",
one call per host or none."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.planner.builders import (
    GPU,
    GPU_AUDIO,
    HBA,
    NIC,
    NOW,
    T4,
    X710,
    dev,
    gpu_host,
    host,
    info,
    spec,
)

from dpio.api.conditions import (
    DEVICE_IN_USE,
    DEVICE_NOT_CAPABLE,
    DEVICE_NOT_FOUND,
    HOST_UNREACHABLE,
    PASSTHROUGH_UNSUPPORTED,
)
from dpio.api.policy import DeviceState
from dpio.planner.host.host_plan import PassthruChange
from dpio.planner.host.plan import PolicyPlan, plan_policy
from dpio.planner.observed import ObservedHost, ObservedInventory


def plan(*hosts: ObservedHost, **spec_fields: Any) -> PolicyPlan:
    return plan_policy(
        name="gpu-hosts",
        creation_timestamp=NOW,
        spec=spec(**spec_fields),
        inventory=ObservedInventory(hosts=hosts),
        now=NOW,
    )


def states(result: PolicyPlan) -> dict[str, DeviceState]:
    return {row.id: row.state for h in result.hosts for row in h.devices}


def reasons(result: PolicyPlan) -> list[str]:
    return [p.reason for p in result.problems]


@pytest.mark.parametrize(
    ("observed", "state", "change"),
    [
        # Converged: nothing to do.
        (gpu_host(enabled=True, active=True), DeviceState.ACTIVE, None),
        (gpu_host(enabled=True, active=False), DeviceState.PENDING_REBOOT, None),
        # Needs enabling; without rebind support it waits for a reboot (KB 309986).
        (gpu_host(), DeviceState.PENDING_REBOOT, PassthruChange(GPU, True, False)),
        # Host can rebind without reboot (7.0): applyNow, active at once.
        (
            gpu_host(device_rebind_without_reboot_supported=True),
            DeviceState.ACTIVE,
            PassthruChange(GPU, True, True),
        ),
        # Disabled by hand but still active: enable again, active already.
        (gpu_host(active=True), DeviceState.ACTIVE, PassthruChange(GPU, True, False)),
        (gpu_host(capable=False), DeviceState.NOT_CAPABLE, None),
    ],
)
def test_selected_device(
    observed: ObservedHost, state: DeviceState, change: PassthruChange | None
) -> None:
    capable_other = host(
        observed.name,
        (*observed.pci_devices, dev(NIC, X710)),
        (*observed.pci_passthru_info, info(NIC)),
        device_rebind_without_reboot_supported=observed.device_rebind_without_reboot_supported,
    )
    result = plan(capable_other)
    assert states(result) == {GPU: state}
    expected = () if change is None else (change,)
    assert tuple(c for u in result.updates for c in u.changes) == expected
    assert result.empty is (change is None)


@pytest.mark.parametrize("rebind", [False, True])
def test_exclusive_disables_unselected(rebind: bool) -> None:
    # The policy selects only the NIC; exclusive takes passthrough off the GPU.
    both = host(
        "esx01",
        (dev(GPU), dev(NIC, X710)),
        (info(GPU, enabled=True, active=True), info(NIC, enabled=True, active=True)),
        device_rebind_without_reboot_supported=rebind,
    )
    result = plan(both, devices=[{"address": NIC}], exclusive=True)
    assert [c for u in result.updates for c in u.changes] == [PassthruChange(GPU, False, rebind)]
    expected = DeviceState.DISABLED if rebind else DeviceState.PENDING_DISABLE_REBOOT
    assert states(result) == {NIC: DeviceState.ACTIVE, GPU: expected}
    assert result.hosts[0].reboot_required is (not rebind)


def test_exclusive_never_disables_a_device_attached_to_a_vm() -> None:
    observed = host(
        "esx01",
        (dev(GPU), dev(NIC, X710)),
        (info(GPU, enabled=True, active=True), info(NIC, enabled=True, active=True)),
        attached_to_vms={GPU: ("ml-trainer-01",)},
    )
    result = plan(observed, devices=[{"address": NIC}], exclusive=True)
    assert result.empty
    row = next(r for r in result.hosts[0].devices if r.id == GPU)
    assert row.state is DeviceState.ACTIVE
    assert row.attached_to == ("ml-trainer-01",)
    assert "ml-trainer-01" in row.message


def test_not_exclusive_leaves_unselected_devices_alone() -> None:
    observed = host(
        "esx01",
        (dev(GPU), dev(NIC, X710)),
        (info(GPU, enabled=True, active=True), info(NIC)),
    )
    result = plan(observed, devices=[{"address": NIC}])
    assert [c.id for u in result.updates for c in u.changes] == [NIC]
    assert GPU not in states(result)


@pytest.mark.parametrize(
    ("allow", "state", "changes"),
    [
        (False, DeviceState.IN_USE_BY_HOST, []),
        (True, DeviceState.PENDING_REBOOT, [PassthruChange(NIC, True, False)]),
    ],
)
def test_device_used_by_esxi(
    allow: bool, state: DeviceState, changes: list[PassthruChange]
) -> None:
    observed = host(
        "esx01",
        (dev(NIC, X710),),
        (info(NIC),),
        in_use_by_host={NIC: "vmnic0 carries vmkernel port vmk0"},
    )
    result = plan(observed, devices=[{"address": NIC}], allowDevicesInUse=allow)
    assert states(result) == {NIC: state}
    assert [c for u in result.updates for c in u.changes] == changes
    assert (DEVICE_IN_USE in reasons(result)) is not allow
    if not allow:
        assert "vmk0" in result.hosts[0].devices[0].message


def test_host_without_iommu_reports_the_bios_setting() -> None:
    observed = host("esx01", (dev(GPU), dev(HBA, X710)), (info(GPU, capable=False),))
    result = plan(observed)
    assert result.empty
    assert result.hosts[0].passthrough_supported is False
    assert states(result) == {GPU: DeviceState.NOT_CAPABLE}
    assert reasons(result) == [PASSTHROUGH_UNSUPPORTED]
    assert "VT-d" in result.problems[0].message
    assert "AMD-Vi" in result.problems[0].message


def test_single_not_capable_device_on_capable_host() -> None:
    observed = host("esx01", (dev(GPU), dev(NIC, X710)), (info(GPU, capable=False), info(NIC)))
    result = plan(observed)
    assert result.hosts[0].passthrough_supported is True
    assert reasons(result) == [DEVICE_NOT_CAPABLE]


def test_address_that_matches_nothing_is_not_found() -> None:
    result = plan(gpu_host(enabled=True, active=True), devices=[{"address": GPU}, {"address": HBA}])
    assert states(result) == {GPU: DeviceState.ACTIVE, HBA: DeviceState.NOT_FOUND}
    assert reasons(result) == [DEVICE_NOT_FOUND]


def test_vendor_selector_that_matches_nothing_is_not_an_error() -> None:
    result = plan(gpu_host(), devices=[{"vendorID": "10de", "deviceID": "1eb8"}])
    assert states(result) == {}
    assert result.problems == ()


@pytest.mark.parametrize(
    ("selector", "selected"),
    [
        ({"vendorID": "10de", "deviceID": "20b5"}, [GPU]),
        ({"vendorID": "10DE", "deviceID": "1EB8"}, [HBA]),
        ({"namePattern": "^Tesla"}, [HBA]),
        ({"namePattern": "A100|X710"}, [NIC, GPU]),  # ordered by address
        ({"address": "0000:18:00.0"}, [NIC]),
    ],
)
def test_device_selectors(selector: dict[str, str], selected: list[str]) -> None:
    observed = host(
        "esx01",
        (dev(NIC, X710), dev(GPU), dev(HBA, T4)),
        (info(NIC), info(GPU), info(HBA)),
    )
    result = plan(observed, devices=[selector])
    assert [r.id for r in result.hosts[0].devices] == selected
    assert [c.id for u in result.updates for c in u.changes] == selected


def test_one_call_per_host_carrying_all_changes_and_none_for_converged_hosts() -> None:
    two = host("esx01", (dev(GPU), dev(HBA, T4)), (info(GPU), info(HBA)))
    done = host(
        "esx02",
        (dev(GPU), dev(HBA, T4)),
        (info(GPU, enabled=True, active=True), info(HBA, enabled=True, active=True)),
    )
    selectors = [{"vendorID": "10de", "deviceID": "20b5"}, {"namePattern": "T4"}]
    result = plan(two, done, hosts={"names": ["esx01", "esx02"]}, devices=selectors)
    assert [(u.host, [c.id for c in u.changes]) for u in result.updates] == [
        ("esx01", [HBA, GPU])  # by address: 02:00.0 before 3b:00.0
    ]


@pytest.mark.parametrize(
    ("dependent_state", "expected_changes"),
    [
        ({}, [GPU, GPU_AUDIO]),  # the audio function comes along
        ({"enabled": True, "active": True}, [GPU]),  # already there
    ],
)
def test_dependent_devices_change_together(
    dependent_state: dict[str, bool], expected_changes: list[str]
) -> None:
    observed = host(
        "esx01",
        (dev(GPU), dev(GPU_AUDIO, (0x10DE, 0x1AEF, "GA100 HD Audio"))),
        (info(GPU, dependent=GPU_AUDIO), info(GPU_AUDIO, dependent=GPU, **dependent_state)),
    )
    result = plan(observed)
    assert [c.id for u in result.updates for c in u.changes] == expected_changes
    assert result.hosts[0].devices[0].dependent_devices == (GPU_AUDIO,)


def test_dependent_device_used_by_esxi_refuses_the_group() -> None:
    observed = host(
        "esx01",
        (dev(GPU), dev(GPU_AUDIO)),
        (info(GPU, dependent=GPU_AUDIO), info(GPU_AUDIO)),
        in_use_by_host={GPU_AUDIO: "boot HBA vmhba0"},
    )
    result = plan(observed)
    assert result.empty
    assert states(result) == {GPU: DeviceState.IN_USE_BY_HOST}
    assert "vmhba0" in result.hosts[0].devices[0].message


def test_exclusive_keeps_a_group_whose_member_is_attached() -> None:
    observed = host(
        "esx01",
        (dev(GPU), dev(GPU_AUDIO), dev(NIC, X710)),
        (
            info(GPU, enabled=True, active=True, dependent=GPU_AUDIO),
            info(GPU_AUDIO, enabled=True, active=True),
            info(NIC),
        ),
        attached_to_vms={GPU: ("vm-a",)},
    )
    result = plan(observed, devices=[{"address": NIC}], exclusive=True)
    assert [c.id for u in result.updates for c in u.changes] == [NIC]


@pytest.mark.parametrize(
    ("version", "current", "changes"),
    [
        ("8.0.2", "", [PassthruChange(GPU, True, False, "a100")]),
        ("7.0.2", "old", [PassthruChange(GPU, True, False, "a100")]),
        ("8.0.2", "a100", []),
        ("7.0.1", "", []),  # hardwareLabel arrived in 7.0.2: not sent, noted on the device
    ],
)
def test_hardware_label(version: str, current: str, changes: list[PassthruChange]) -> None:
    observed = host(
        "esx01",
        (dev(GPU),),
        (info(GPU, enabled=True, active=True, label=current),),
        version=version,
    )
    result = plan(
        observed, devices=[{"vendorID": "10de", "deviceID": "20b5", "hardwareLabel": "a100"}]
    )
    assert [c for u in result.updates for c in u.changes] == changes
    if version == "7.0.1":
        assert "7.0.2" in result.hosts[0].devices[0].message


@pytest.mark.parametrize(
    ("apply_now", "rebind", "expected"),
    [("Auto", True, True), ("Auto", False, False), ("Never", True, False), ("Never", False, False)],
)
def test_apply_now(apply_now: str, rebind: bool, expected: bool) -> None:
    result = plan(gpu_host(device_rebind_without_reboot_supported=rebind), applyNow=apply_now)
    assert [c.apply_now for u in result.updates for c in u.changes] == [expected]
    assert result.hosts[0].reboot_required is (not expected)


@pytest.mark.parametrize("state", ["disconnected", "notResponding"])
def test_unreachable_host_gets_no_call(state: str) -> None:
    result = plan(gpu_host(connection_state=state))
    assert result.updates == ()
    assert reasons(result) == [HOST_UNREACHABLE]
    assert state in result.hosts[0].message


def test_host_selection_union_and_missing_names() -> None:
    hosts = (
        host("esx01", cluster="GPU-Cluster"),
        host("esx-gpu-07"),
        host("esx03"),
        host("other"),
    )
    result = plan_policy(
        name="p",
        creation_timestamp=NOW,
        spec=spec(
            hosts={
                "names": ["esx03", "ghost"],
                "clusters": ["GPU-Cluster"],
                "namePattern": "^esx-gpu-",
            }
        ),
        inventory=ObservedInventory(hosts=hosts, clusters={"GPU-Cluster": ("esx01",)}),
        now=NOW,
    )
    assert [h.host.name for h in result.hosts] == ["esx-gpu-07", "esx01", "esx03"]
    assert result.missing_hosts == ("ghost",)
    assert HOST_UNREACHABLE in reasons(result)


def test_exclusive_disables_a_dependent_group_together() -> None:
    observed = host(
        "esx01",
        (dev(GPU), dev(GPU_AUDIO), dev(NIC, X710)),
        (
            info(GPU, enabled=True, active=True, dependent=GPU_AUDIO),
            # The audio function names no dependent of its own; the GPU ties them together.
            info(GPU_AUDIO, enabled=False, active=True),
            info(NIC, enabled=True, active=True),
        ),
    )
    result = plan(observed, devices=[{"address": NIC}], exclusive=True)
    assert [(c.id, c.passthru_enabled) for u in result.updates for c in u.changes] == [
        (GPU, False),
    ]
    observed_both_on = host(
        "esx01",
        (dev(GPU), dev(GPU_AUDIO), dev(NIC, X710)),
        (
            info(GPU, enabled=True, active=True, dependent=GPU_AUDIO),
            info(GPU_AUDIO, enabled=True, active=True),
            info(NIC, enabled=True, active=True),
        ),
    )
    result = plan(observed_both_on, devices=[{"address": NIC}], exclusive=True)
    assert [(c.id, c.passthru_enabled) for u in result.updates for c in u.changes] == [
        (GPU, False),
        (GPU_AUDIO, False),
    ]
