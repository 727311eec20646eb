"""HostPassthroughPolicy status: per host, per device, as vSphere reports it (docs/design.md,
"HostPassthroughPolicy").

Mirrors HostPciDevice + HostPciPassthruInfo per matched host, the rolling-reboot record that lets
the reboot state machine survive operator restarts, and the counts `kubectl get hpp` shows.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from dpio.api.common import HexId, PciAddress, StatusModel, Timestamp
from dpio.api.conditions import Condition


class DeviceState(StrEnum):
    """Passthrough state of one device on one host."""

    ACTIVE = "Active"
    PENDING_REBOOT = "PendingReboot"  # enabled, not yet active (KB 309986)
    PENDING_DISABLE_REBOOT = "PendingDisableReboot"  # disabled, still active
    DISABLED = "Disabled"
    NOT_CAPABLE = "NotCapable"
    IN_USE_BY_HOST = "InUseByHost"
    NOT_FOUND = "NotFound"


class MmioSource(StrEnum):
    """Where a device's mmioSizeGB comes from."""

    SPEC = "Spec"  # the device selector's mmioSizeGB
    KNOWN_DEVICES = "KnownDevices"  # the operator's table of well-known devices (docs/mmio.md)


class DeviceStatus(StatusModel):
    """One matched PCI device on one host (HostPciDevice + HostPciPassthruInfo)."""

    address: PciAddress | None = Field(
        None, description="PCI address; unset when a selector matched nothing on the host."
    )
    vendor_id: HexId | None = Field(None, alias="vendorID", description="PCI vendor id.")
    device_id: HexId | None = Field(None, alias="deviceID", description="PCI device id.")
    name: str | None = Field(None, description="Device name as vSphere reports it.")
    capable: bool = Field(False, description="passthruCapable: the device supports passthrough.")
    enabled: bool = Field(False, description="passthruEnabled: passthrough is configured.")
    active: bool = Field(False, description="passthruActive: enabled and in effect (rebooted).")
    hardware_label: str | None = Field(None, description="Dynamic DirectPath hardware label.")
    mmio_size_gb: int | None = Field(
        None,
        alias="mmioSizeGB",
        description="Memory the device maps (its PCI BARs), in GB; unset when unknown.",
    )
    mmio_size_source: MmioSource | None = Field(
        None, description="Where mmioSizeGB comes from: Spec (the selector) or KnownDevices."
    )
    state: DeviceState = Field(description="Summary of the passthrough state of the device.")
    dependent_devices: list[str] = Field(
        default_factory=list,
        description="Devices that change together with this one (dependentDevice).",
    )
    attached_to: list[str] = Field(
        default_factory=list, description="Names of the VMs the device is attached to."
    )
    message: str | None = Field(None, description="Why the device is in this state.")


class RebootPhase(StrEnum):
    """Where a host is in a rolling reboot."""

    DRAINING = "Draining"
    REBOOTING = "Rebooting"
    EXITING = "Exiting"


class RollingRebootStatus(StatusModel):
    """Progress of a rolling reboot on one host."""

    phase: RebootPhase = Field(description="Draining, Rebooting or Exiting maintenance mode.")
    since: Timestamp = Field(description="When the phase began.")
    entered_by_operator: bool = Field(
        False,
        description="The operator put the host in maintenance mode (and takes it out); false "
        "once its drain timed out: a maintenance mode entered later is someone else's, and the "
        "operator neither reboots the host nor takes it out.",
    )


class HostStatus(StatusModel):
    """Observed passthrough state of one matched host."""

    name: str = Field(description="Host name.")
    passthrough_supported: bool = Field(
        False, description="The host has an IOMMU (Intel VT-d / AMD-Vi) enabled in the BIOS."
    )
    reboot_required: bool = Field(
        False, description="Some device has enabled != active: a reboot is needed (KB 309986)."
    )
    devices: list[DeviceStatus] = Field(default_factory=list, description="Matched devices.")
    rolling_reboot: RollingRebootStatus | None = Field(
        None, description="Set while the host is in a rolling reboot."
    )
    message: str | None = Field(None, description="Why the host can't follow the spec, if so.")


class RebootWindowStatus(StatusModel):
    """Where the policy stands against `spec.reboot.windows`, while a host waits for a reboot."""

    window_open: bool = Field(description="A reboot window is open now.")
    next_window: Timestamp | None = Field(
        None, description="When the next reboot window opens; unset while one is open."
    )
    window_closes: Timestamp | None = Field(
        None, description="When the open reboot window closes; unset while none is open."
    )


class PolicySummary(StatusModel):
    """Counts over all matched hosts, for kubectl get."""

    hosts: int = Field(0, ge=0, description="Matched hosts.")
    devices: int = Field(0, ge=0, description="Matched devices, over all hosts.")
    active: int = Field(0, ge=0, description="Devices with passthrough active.")
    pending_reboot: int = Field(0, ge=0, description="Hosts waiting for a reboot.")


class HostPassthroughPolicyStatus(StatusModel):
    """Observed state of a HostPassthroughPolicy."""

    observed_generation: int | None = Field(
        None, ge=0, description="The .metadata.generation the status was computed from."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Reconciling, Stalled, RebootRequired, Degraded.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    hosts: list[HostStatus] = Field(
        default_factory=list,
        description="Matched hosts.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    summary: PolicySummary = Field(default_factory=PolicySummary, description="Counts.")
    reboot: RebootWindowStatus | None = Field(
        None,
        description="Reboot windows: set while spec.reboot.windows is set, the policy is "
        "Rolling and a host needs a reboot.",
    )
