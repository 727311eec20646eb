"""HostPassthroughPolicy (cluster-scoped, short name hpp): what ESXi hosts offer for passthrough.

DESIGN.md §2.1. Spec fields are what a vSphere administrator sets in the vSphere Client under
Host > Configure > Hardware > PCI Devices; status mirrors HostPciPassthruInfo per host.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from dpio.api.common import (
    ApiModel,
    DnsLabel,
    Duration,
    HexId,
    LabelSelector,
    NamePattern,
    ObjectMeta,
    PciAddress,
    Rule,
    SecretRef,
    StatusModel,
    Timestamp,
)
from dpio.api.conditions import Condition

# vSphere 8 configuration maximums: 2,500 hosts per vCenter Server.
MAX_HOSTS = 2500
MAX_DEVICE_SELECTORS = 64
HostName = Annotated[str, StringConstraints(min_length=1, max_length=255)]  # an FQDN or IP
ClusterName = Annotated[str, StringConstraints(min_length=1, max_length=80)]  # vCenter's limit
HardwareLabel = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class VCenterRef(ApiModel):
    """The vCenter to use instead of the operator's default one."""

    secret_ref: SecretRef = Field(
        description="Secret in the operator's namespace with keys server, username, password and "
        'caBundle or thumbprint (or insecure: "true").'
    )


def _set(values: list[str] | None) -> bool:
    return bool(values)


class HostSelector(ApiModel):
    """Which ESXi hosts the policy applies to: the union of names, clusters and namePattern."""

    rules = (
        Rule(
            cel="(has(self.names) && size(self.names) > 0) || "
            "(has(self.clusters) && size(self.clusters) > 0) || has(self.namePattern)",
            message="hosts needs at least one of names, clusters or namePattern",
            check=lambda s: _set(s.names) or _set(s.clusters) or s.name_pattern is not None,
        ),
    )

    names: list[HostName] = Field(
        default_factory=list,
        max_length=MAX_HOSTS,
        description="Host names as vCenter shows them (HostSystem.name).",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    clusters: list[ClusterName] = Field(
        default_factory=list,
        max_length=MAX_HOSTS,
        description="Cluster names; every host in these clusters is matched.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    name_pattern: NamePattern | None = Field(
        None,
        description="Regular expression (Python re syntax) searched for in host names: "
        '"^esx-gpu-" matches names that start with esx-gpu-.',
    )


class DeviceSelector(ApiModel):
    """Devices to enable: exactly one of address, vendorID+deviceID or namePattern."""

    rules = (
        Rule(
            cel="[has(self.address), has(self.vendorID) || has(self.deviceID), "
            "has(self.namePattern)].filter(x, x).size() == 1",
            message="a device selector needs exactly one of address, vendorID+deviceID or "
            "namePattern",
            check=lambda s: (
                [
                    s.address is not None,
                    s.vendor_id is not None or s.device_id is not None,
                    s.name_pattern is not None,
                ].count(True)
                == 1
            ),
        ),
        Rule(
            cel="has(self.vendorID) == has(self.deviceID)",
            message="vendorID and deviceID must be set together",
            check=lambda s: (s.vendor_id is None) == (s.device_id is None),
        ),
        Rule(
            cel="!has(self.hardwareLabel) || has(self.vendorID)",
            message="hardwareLabel can only be set with vendorID and deviceID",
            check=lambda s: s.hardware_label is None or s.vendor_id is not None,
        ),
    )

    address: PciAddress | None = Field(
        None, description='PCI address (HostPciDevice.id), e.g. "0000:3b:00.0".'
    )
    vendor_id: HexId | None = Field(
        None, alias="vendorID", description='PCI vendor id, 4 hex digits, e.g. "10de".'
    )
    device_id: HexId | None = Field(
        None, alias="deviceID", description='PCI device id, 4 hex digits, e.g. "20b5".'
    )
    name_pattern: NamePattern | None = Field(
        None,
        description="Regular expression (Python re syntax) searched for in the device name "
        '(HostPciDevice.deviceName), e.g. "^Tesla T4$".',
    )
    hardware_label: HardwareLabel | None = Field(
        None,
        description="Hardware label given to the matched devices, used by Dynamic DirectPath "
        "(HostPciPassthruConfig.hardwareLabel, vSphere 7.0.2+).",
    )


class ApplyNow(StrEnum):
    """Whether to rebind devices at once where the host can (HostPciPassthruConfig.applyNow)."""

    AUTO = "Auto"
    NEVER = "Never"


class RebootPolicy(StrEnum):
    """What to do when a host must reboot for passthrough changes to take effect."""

    MANUAL = "Manual"
    ROLLING = "Rolling"


class RebootSpec(ApiModel):
    """Host reboots needed to activate passthrough changes (Broadcom KB 309986)."""

    policy: RebootPolicy = Field(
        RebootPolicy.MANUAL,
        description="Manual: only report RebootRequired. Rolling: enter maintenance mode, "
        "reboot, exit, a few hosts at a time.",
    )
    max_unavailable: int = Field(
        1, ge=1, le=MAX_HOSTS, description="Hosts in a rolling reboot at the same time."
    )
    drain_timeout: Duration = Field(
        "30m",
        description="How long a host may take to enter maintenance mode before it is left "
        'running and reported Degraded (DrainTimeout); a duration such as "30m" or "1h30m".',
    )


class DeletionPolicy(StrEnum):
    """What happens to host configuration when the policy is deleted."""

    RETAIN = "Retain"
    DISABLE = "Disable"


class Consumers(ApiModel):
    """Namespaces whose VMDeviceAssignments may use the policy: listed or selected."""

    namespaces: list[DnsLabel] = Field(
        default_factory=list,
        max_length=256,
        description="Namespace names.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    namespace_selector: LabelSelector | None = Field(
        None, description="Namespaces with matching labels; {} selects every namespace."
    )


class HostPassthroughPolicySpec(ApiModel):
    """Desired passthrough configuration of a set of ESXi hosts."""

    vcenter: VCenterRef | None = Field(
        None, description="vCenter to use; default: the operator's configured vCenter."
    )
    hosts: HostSelector = Field(description="The ESXi hosts the policy applies to.")
    devices: list[DeviceSelector] = Field(
        default_factory=list,
        max_length=MAX_DEVICE_SELECTORS,
        description="PCI devices to enable for passthrough on the matched hosts.",
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )
    exclusive: bool = Field(
        False,
        description="Also disable passthrough on devices no selector matches (never on a "
        "device attached to a VM).",
    )
    apply_now: ApplyNow = Field(
        ApplyNow.AUTO,
        description="Auto: apply at once on hosts that can rebind devices without reboot "
        "(deviceRebindWithoutRebootSupported, vSphere 7.0). Never: wait for a reboot.",
    )
    reboot: RebootSpec = Field(
        default_factory=RebootSpec,
        description="How host reboots needed by the changes are handled.",
        json_schema_extra={"default": {}},
    )
    allow_devices_in_use: bool = Field(
        False,
        description="Enable devices ESXi itself uses (a NIC with a vmkernel port, a storage "
        "HBA); refused (state InUseByHost) unless true.",
    )
    deletion_policy: DeletionPolicy = Field(
        DeletionPolicy.RETAIN,
        description="On delete: Retain the host configuration, or Disable what this policy "
        "enabled (except devices attached to VMs).",
    )
    consumers: Consumers = Field(
        default_factory=Consumers,
        description="Namespaces whose VMDeviceAssignments may use this policy; none if unset.",
    )


class DeviceState(StrEnum):
    """Passthrough state of one device on one host."""

    ACTIVE = "Active"
    PENDING_REBOOT = "PendingReboot"  # enabled, not yet active (KB 309986)
    PENDING_DISABLE_REBOOT = "PendingDisableReboot"  # disabled, still active
    DISABLED = "Disabled"
    NOT_CAPABLE = "NotCapable"
    IN_USE_BY_HOST = "InUseByHost"
    NOT_FOUND = "NotFound"


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
        False, description="The operator put the host in maintenance mode (and takes it out)."
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


class HostPassthroughPolicy(BaseModel):
    """A HostPassthroughPolicy object as the API server returns it."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore"
    )

    api_version: Literal["dpio.io/v1alpha1"] = "dpio.io/v1alpha1"
    kind: Literal["HostPassthroughPolicy"] = "HostPassthroughPolicy"
    metadata: ObjectMeta
    spec: HostPassthroughPolicySpec
    status: HostPassthroughPolicyStatus = Field(default_factory=HostPassthroughPolicyStatus)
