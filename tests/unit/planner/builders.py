"""Small builders for observed inventories and policy specs, so test tables read as data."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dpio.api.policy import HostPassthroughPolicySpec
from dpio.planner.observed import HostPciDevice, HostPciPassthruInfo, ObservedHost

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
GPU = "0000:3b:00.0"
GPU_AUDIO = "0000:3b:00.1"
NIC = "0000:18:00.0"
HBA = "0000:02:00.0"

A100 = (0x10DE, 0x20B5, "GA100 [A100]")
T4 = (0x10DE, 0x1EB8, "Tesla T4")
X710 = (0x8086, 0x1572, "Ethernet Controller X710")


def dev(pci_id: str, kind: tuple[int, int, str] = A100) -> HostPciDevice:
    vendor, device, name = kind
    return HostPciDevice(id=pci_id, vendor_id=vendor, device_id=device, device_name=name)


def info(
    pci_id: str,
    *,
    enabled: bool = False,
    active: bool = False,
    capable: bool = True,
    dependent: str = "",
    label: str = "",
) -> HostPciPassthruInfo:
    return HostPciPassthruInfo(
        id=pci_id,
        dependent_device=dependent or pci_id,
        passthru_enabled=enabled,
        passthru_capable=capable,
        passthru_active=active,
        hardware_label=label,
    )


def host(
    name: str = "esx01",
    devices: tuple[HostPciDevice, ...] = (),
    infos: tuple[HostPciPassthruInfo, ...] = (),
    **fields: Any,
) -> ObservedHost:
    fields.setdefault("version", "8.0.2")
    fields.setdefault("device_rebind_without_reboot_supported", False)
    return ObservedHost(
        moref=f"host-{name}",
        name=name,
        pci_devices=devices,
        pci_passthru_info=infos,
        **fields,
    )


def gpu_host(name: str = "esx01", **state: Any) -> ObservedHost:
    """A host with one A100 at GPU, in the passthrough state given (enabled/active/...)."""
    extra = {k: state.pop(k) for k in list(state) if k not in ("enabled", "active", "capable")}
    return host(name, (dev(GPU),), (info(GPU, **state),), **extra)


def spec(**fields: Any) -> HostPassthroughPolicySpec:
    """A spec from wire-style (camelCase) fields; defaults: host esx01, the A100 by address."""
    body: dict[str, Any] = {"hosts": {"names": ["esx01"]}, "devices": [{"address": GPU}]}
    body.update(fields)
    return HostPassthroughPolicySpec.model_validate(body)
