"""`dpio inventory` rows: the vSphere Client's PCI Devices view, from an ObservedInventory."""

from __future__ import annotations

import json

import pytest
from tests.unit.planner.builders import GPU, GPU_AUDIO, HBA, NIC, T4, X710, dev, host, info

from dpio.api.policy import DeviceState
from dpio.cli.inventory import host_rows, missing, render
from dpio.cli.output import Format
from dpio.planner.observed import ObservedHost, ObservedInventory

ESX = host(
    "esx01",
    (dev(GPU), dev(GPU_AUDIO, T4), dev(NIC, X710), dev(HBA, X710)),
    (
        info(GPU, enabled=True, active=True, label="a100", dependent=GPU_AUDIO),
        info(GPU_AUDIO, dependent=GPU),
        info(NIC, enabled=True, active=False),
        info(HBA, capable=False),
    ),
    in_use_by_host={NIC: "vmnic0 carries vmkernel port vmk0"},
    attached_to_vms={GPU: ("ml-01",)},
)


def by_address(h: ObservedHost) -> dict[str, object]:
    return {row.address: row for row in host_rows(h)}


@pytest.mark.parametrize(
    ("address", "state", "capable", "enabled", "active"),
    [
        (GPU, DeviceState.ACTIVE, True, True, True),
        (GPU_AUDIO, DeviceState.DISABLED, True, False, False),
        # KB 309986: enabled but not active until the host reboots.
        (NIC, DeviceState.PENDING_REBOOT, True, True, False),
        (HBA, DeviceState.NOT_CAPABLE, False, False, False),
    ],
)
def test_state_follows_passthru_info(
    address: str, state: DeviceState, capable: bool, enabled: bool, active: bool
) -> None:
    row = host_rows(ESX)[[r.address for r in host_rows(ESX)].index(address)]

    assert (row.state, row.capable, row.enabled, row.active) == (state, capable, enabled, active)


@pytest.mark.parametrize(
    ("address", "used_by", "dependent", "label"),
    [
        (GPU, "ml-01", (GPU_AUDIO,), "a100"),
        (GPU_AUDIO, "", (GPU,), ""),
        (NIC, "ESXi: vmnic0 carries vmkernel port vmk0", (), ""),
    ],
)
def test_usage_dependents_and_label(
    address: str, used_by: str, dependent: tuple[str, ...], label: str
) -> None:
    row = next(r for r in host_rows(ESX) if r.address == address)

    assert (row.used_by, row.dependent_devices, row.hardware_label) == (used_by, dependent, label)


def test_ids_are_hex_and_rows_sorted_by_address() -> None:
    rows = host_rows(ESX)

    assert [r.address for r in rows] == sorted(r.address for r in rows)
    assert {(r.vendor_id, r.device_id) for r in rows} >= {("10de", "20b5"), ("8086", "1572")}


def test_passthru_info_without_a_pci_device_still_gets_a_row() -> None:
    h = host("esx02", (), (info(GPU, enabled=True, active=True),))

    assert [(r.address, r.state, r.vendor_id) for r in host_rows(h)] == [
        (GPU, DeviceState.ACTIVE, "0000")
    ]


def test_json_lists_hosts_with_host_facts_in_api_words() -> None:
    inventory = ObservedInventory(hosts=(ESX, host("esx00", (dev(GPU),), (info(GPU),))))

    data = json.loads(render(inventory, Format.JSON))

    assert [h["name"] for h in data["hosts"]] == ["esx00", "esx01"]
    esx01 = data["hosts"][1]
    assert (esx01["rebootRequired"], esx01["passthroughSupported"]) == (True, True)
    assert esx01["devices"][0]["vendorID"] == "8086"  # HBA at 0000:02:00.0 sorts first


@pytest.mark.parametrize(
    ("names", "hosts_shown"),
    [((), ["esx00", "esx01"]), (("esx01",), ["esx01"])],
)
def test_host_filter(names: tuple[str, ...], hosts_shown: list[str]) -> None:
    inventory = ObservedInventory(hosts=(ESX, host("esx00", (dev(GPU),), (info(GPU),))))

    lines = render(inventory, Format.TABLE, names).splitlines()

    assert lines[0].split()[:3] == ["HOST", "ADDRESS", "ID"]
    assert sorted({line.split()[0] for line in lines[1:]}) == hosts_shown


def test_missing_names_hosts_vcenter_does_not_know() -> None:
    inventory = ObservedInventory(hosts=(ESX,))

    assert missing(inventory, ["esx01", "esx09"]) == ["esx09"]


def test_no_hosts() -> None:
    assert render(ObservedInventory(), Format.TABLE) == "No hosts found.\n"


def test_each_device_shows_what_it_maps_from_the_known_device_table() -> None:
    rows = by_address(ESX)
    sizes = {a: r.mmio_size_gb for a, r in rows.items()}  # type: ignore[attr-defined]
    assert sizes == {GPU: 128, GPU_AUDIO: 1, NIC: None, HBA: None}
    listing = json.loads(render(ObservedInventory(hosts=(ESX,)), Format.JSON))
    assert [d["mmioSizeGB"] for d in listing["hosts"][0]["devices"]] == [None, None, 128, 1]
    assert "MMIO GB" in render(ObservedInventory(hosts=(ESX,)), Format.TABLE)
