"""Which hosts and which PCI devices a policy selects.

Hosts: `names`, plus every host of `clusters`, plus hosts with a match of `namePattern` (RE2)
anywhere in their name.
Devices, per host: the first selector (in spec order) that matches a device picks it and gives it
its `hardwareLabel`. Matching is by identity (PCI address, vendor/device id, device name), never by
list position; results are ordered by host name and PCI address so plans are deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dpio.api.patterns import SYNTAX_URL, Pattern, PatternError, compile_pattern
from dpio.api.policy import DeviceSelector, HostSelector
from dpio.planner.observed import (
    HostPciDevice,
    ObservedHost,
    ObservedInventory,
    normalize_pci_address,
    parse_pci_id,
)


class InvalidSpecError(ValueError):
    """The spec says something the planner can't act on (a pattern RE2 refuses, a bad hex id).

    Admission rejects most of these; what gets through ends as Stalled, never as a crash.
    """


def compile_name_pattern(pattern: str, what: str) -> Pattern:
    """`what` (the field, e.g. "hosts.namePattern") compiled; InvalidSpecError if RE2 refuses it.

    Neither the CRD nor the model can check RE2 syntax, so this is where a pattern that only
    Python's `re` knew (a backreference, a lookahead) is refused.
    """
    try:
        return compile_pattern(pattern)
    except PatternError as err:
        # RE2's reason quotes the part it refuses; the pattern itself is in the spec.
        message = f"{what} is not RE2 syntax: {err} (see {SYNTAX_URL})"
        raise InvalidSpecError(message) from err


@dataclass(frozen=True, slots=True)
class HostSelection:
    hosts: tuple[ObservedHost, ...]
    missing_names: tuple[str, ...]  # named in spec.hosts.names (or a cluster) but not in vCenter


def select_hosts(selector: HostSelector, inventory: ObservedInventory) -> HostSelection:
    pattern = (
        compile_name_pattern(selector.name_pattern, "hosts.namePattern")
        if selector.name_pattern
        else None
    )
    wanted = set(selector.names)
    for cluster in selector.clusters:
        wanted.update(inventory.clusters.get(cluster, ()))
    chosen: dict[str, ObservedHost] = {}
    for host in inventory.hosts:
        in_cluster = host.cluster is not None and host.cluster in selector.clusters
        by_pattern = pattern is not None and pattern.search(host.name)
        if host.name in wanted or in_cluster or by_pattern:
            chosen.setdefault(host.name, host)
    missing = sorted(wanted - chosen.keys())
    return HostSelection(tuple(chosen[n] for n in sorted(chosen)), tuple(missing))


@dataclass(frozen=True, slots=True)
class DeviceMatcher:
    """One `spec.devices[]` entry, checked and compiled once."""

    address: str | None = None
    vendor_id: int | None = None
    device_id: int | None = None
    name_pattern: Pattern | None = None
    hardware_label: str | None = None
    mmio_size_gb: int | None = None  # the selector's mmioSizeGB (planner/mmio.py)

    def matches(self, device: HostPciDevice) -> bool:
        if self.address is not None:
            return device.id == self.address
        if self.vendor_id is not None:
            return device.vendor_id == self.vendor_id and device.device_id == self.device_id
        if self.name_pattern is not None:
            return self.name_pattern.search(device.device_name)
        return False


def _hex_id(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    value = parse_pci_id(text)
    if value is None:
        raise InvalidSpecError(f"{what} {text!r} is not 4 hex digits")
    return value


def compile_device_selector(selector: DeviceSelector, index: int) -> DeviceMatcher:
    where = f"devices[{index}]"
    given = [
        selector.address is not None,
        selector.vendor_id is not None or selector.device_id is not None,
        selector.name_pattern is not None,
    ]
    if sum(given) != 1:
        message = f"{where}: set exactly one of address, vendorID+deviceID, namePattern"
        raise InvalidSpecError(message)
    if (selector.vendor_id is None) != (selector.device_id is None):
        raise InvalidSpecError(f"{where}: vendorID and deviceID go together")
    return DeviceMatcher(
        address=normalize_pci_address(selector.address) if selector.address else None,
        vendor_id=_hex_id(selector.vendor_id, f"{where}.vendorID"),
        device_id=_hex_id(selector.device_id, f"{where}.deviceID"),
        name_pattern=(
            compile_name_pattern(selector.name_pattern, f"{where}.namePattern")
            if selector.name_pattern is not None
            else None
        ),
        hardware_label=selector.hardware_label or None,
        mmio_size_gb=selector.mmio_size_gb,
    )


def compile_device_selectors(
    selectors: Iterable[DeviceSelector],
) -> tuple[DeviceMatcher, ...]:
    return tuple(compile_device_selector(s, i) for i, s in enumerate(selectors))


@dataclass(frozen=True, slots=True)
class DeviceMatch:
    device: HostPciDevice
    matcher: DeviceMatcher


def match_devices(
    matchers: Sequence[DeviceMatcher], host: ObservedHost
) -> tuple[tuple[DeviceMatch, ...], tuple[str, ...]]:
    """The devices of `host` the selectors pick (by address), and addresses selected but absent.

    Only an address selector can be "not found": a vendor/device or name selector that matches
    nothing on a host just means the host has no such card (common in mixed clusters).
    """
    devices = sorted(host.pci_device().values(), key=lambda d: d.id)
    picked: list[DeviceMatch] = []
    for device in devices:
        matcher = next((m for m in matchers if m.matches(device)), None)
        if matcher is not None:
            picked.append(DeviceMatch(device, matcher))
    present = {d.id for d in devices}
    absent = sorted({m.address for m in matchers if m.address and m.address not in present})
    return tuple(picked), tuple(absent)
