"""HostPassthroughPolicy (cluster-scoped, short name hpp): what ESXi hosts offer for passthrough.

docs/design.md, "HostPassthroughPolicy". Spec fields are what a vSphere administrator sets in
the vSphere Client under Host > Configure > Hardware > PCI Devices; status mirrors
HostPciPassthruInfo per host.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from dpio.api.common import (
    ApiModel,
    HardwareLabel,
    HexId,
    NamePattern,
    ObjectMeta,
    PciAddress,
    Rule,
)
from dpio.api.policy_settings import (
    MAX_CONSUMERS,
    MAX_HOSTS,
    ApplyNow,
    Consumer,
    DeletionPolicy,
    RebootPolicy,
    RebootSpec,
    RebootWindow,
    VCenterRef,
    VMScope,
    Weekday,
)
from dpio.api.policy_status import (
    DeviceState,
    DeviceStatus,
    HostPassthroughPolicyStatus,
    HostStatus,
    MmioSource,
    PolicySummary,
    RebootPhase,
    RebootWindowStatus,
    RollingRebootStatus,
)

# Settings and status models live in their own modules, re-exported here: `dpio.api.policy`
# is the kind's one import (`from dpio.api.policy import DeviceState`).
__all__ = [
    "MAX_DEVICE_SELECTORS",
    "MAX_HOSTS",
    "ApplyNow",
    "Consumer",
    "DeletionPolicy",
    "DeviceSelector",
    "DeviceState",
    "DeviceStatus",
    "HostPassthroughPolicy",
    "HostPassthroughPolicySpec",
    "HostPassthroughPolicyStatus",
    "HostSelector",
    "HostStatus",
    "MmioSource",
    "PolicySummary",
    "RebootPhase",
    "RebootPolicy",
    "RebootSpec",
    "RebootWindow",
    "RebootWindowStatus",
    "RollingRebootStatus",
    "VCenterRef",
    "VMScope",
    "Weekday",
]

MAX_DEVICE_SELECTORS = 64
# The largest 64-bit MMIO window a VM can be given (pciPassthru.64bitMMIOSizeGB) is far below this;
# the bound only keeps a typo from becoming a number no one meant.
MAX_MMIO_SIZE_GB = 16384
HostName = Annotated[str, StringConstraints(min_length=1, max_length=255)]  # an FQDN or IP
ClusterName = Annotated[str, StringConstraints(min_length=1, max_length=80)]  # vCenter's limit


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
        description="Regular expression in RE2 syntax (github.com/google/re2/wiki/Syntax), "
        'searched for in host names, case-sensitive: "^esx-gpu-" matches names that start '
        "with esx-gpu-. Backreferences and lookaround are not RE2: such a pattern stalls the "
        "policy with reason InvalidSpec.",
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
        description="Regular expression in RE2 syntax (github.com/google/re2/wiki/Syntax), "
        "searched for in the device name (HostPciDevice.deviceName), case-sensitive, e.g. "
        '"^Tesla T4$". Backreferences and lookaround are not RE2: such a pattern stalls the '
        "policy with reason InvalidSpec.",
    )
    hardware_label: HardwareLabel | None = Field(
        None,
        description="Hardware label given to the matched devices, used by Dynamic DirectPath "
        "(HostPciPassthruConfig.hardwareLabel, vSphere 7.0.2+).",
    )
    mmio_size_gb: int | None = Field(
        None,
        alias="mmioSizeGB",
        ge=0,
        le=MAX_MMIO_SIZE_GB,
        description="Memory the device maps (its PCI BARs), in GB, rounded up; vSphere does not "
        "report it. Unset: taken from the operator's table of well-known devices (docs/mmio.md), "
        "else unknown. A VM whose devices map more than 32 GB, or one more than 16 GB, gets "
        "64-bit MMIO settings and must boot with EFI.",
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
    consumers: list[Consumer] = Field(
        default_factory=list,
        max_length=MAX_CONSUMERS,
        description="Who may claim these devices: each entry grants some namespaces some VMs "
        "and some actions. No entry: no VMDeviceAssignment may use this policy.",
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )
    suspend: bool = Field(
        False,
        description="Pause: true stops every vCenter write for this policy (passthrough "
        "updates, maintenance mode, reboots, deletion cleanup); a rolling reboot stops before "
        "its next step. Observation and status go on; condition Suspended=True names what "
        "would be done, and a deletion that must disable devices waits for false.",
    )


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
