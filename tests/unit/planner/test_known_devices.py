"""The table of well-known devices: lookups, and the copy printed in docs/mmio.md."""

from __future__ import annotations

import re
from pathlib import Path

from dpio.planner.known_devices import KNOWN_DEVICES, known_device

DOC = Path(__file__).resolve().parents[3] / "docs" / "mmio.md"
ROW = re.compile(r"^\| `([0-9a-f]{4}):([0-9a-f]{4})` \| (.+?) \| (\d+) \| (.+?) \|$")


def test_docs_print_the_same_table() -> None:
    printed = [m.groups() for line in DOC.read_text().splitlines() if (m := ROW.match(line))]
    expected = [
        (f"{d.vendor_id:04x}", f"{d.device_id:04x}", d.name, str(d.mmio_size_gb), d.source)
        for d in KNOWN_DEVICES
    ]
    assert printed == expected


def test_every_entry_is_unique_and_has_a_source() -> None:
    ids = [(d.vendor_id, d.device_id) for d in KNOWN_DEVICES]
    assert len(ids) == len(set(ids))
    assert all(d.source and d.mmio_size_gb > 0 for d in KNOWN_DEVICES)


def test_lookup_masks_ids_to_16_bits() -> None:
    # vSphere sends vendor ids as signed shorts: 0x10de stays, 0x8086 arrives negative.
    found = known_device(0x10DE, 0x20B5)
    assert found is not None
    assert found.mmio_size_gb == 128
    assert known_device(0x10DE | 0x10000, 0x20B5) == found
    assert known_device(0x8086, 0x1572) is None
