"""VMDeviceAssignment (namespaced, short name vmda): which passthrough devices one VM should have.

docs/design.md, "VMDeviceAssignment". Devices are matched by name (list map key), never by
position; each is a static DirectPath device (a PCI address on the VM's host) or a Dynamic
DirectPath device (vendor/device).
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from dpio.api.common import (
    UUID_PATTERN,
    ApiModel,
    DnsLabel,
    Duration,
    HardwareLabel,
    HexId,
    ObjectMeta,
    ObjectName,
    PciAddress,
    Rule,
    StatusModel,
    Timestamp,
    normalize_pci_address,
    parse_duration,
)
from dpio.api.conditions import Condition
from dpio.api.vm_settings import PreviousSettings

# Passthrough devices per VM, largest maximum: 128 on vSphere 8.0U2 (config maximums, KB 309986).
MAX_DEVICES = 128
# How long a guest may take to shut down (ShutdownGuest) before the operator hard powers it
# off, where the consumer entry allows PowerOff; bounded so a typo can't mean "never".
DEFAULT_SHUTDOWN_TIMEOUT = "5m"
MAX_SHUTDOWN_TIMEOUT = timedelta(hours=24)
# A VM has at most 10 virtual NICs (vSphere configuration maximums).
MAX_NETWORK_ADAPTERS = 10
VMName = Annotated[str, StringConstraints(min_length=1, max_length=80)]  # vCenter's limit
InstanceUuid = Annotated[str, StringConstraints(pattern=UUID_PATTERN, max_length=36)]
DeviceLabel = Annotated[str, StringConstraints(min_length=1, max_length=80)]


# Transition rules (`oldSelf`) only run on update, in the API server; a Python check can't see
# the old object, so `check` accepts and the e2e tests prove the refusal through kubectl.
def _immutable(what: str) -> Rule:
    message = (
        f"is immutable: delete this VMDeviceAssignment and create a new one to use another {what}"
    )
    return Rule(cel="self == oldSelf", message=message, check=lambda _: True)


class PolicyRef(ApiModel):
    """A HostPassthroughPolicy; it provides the devices and the vCenter. Immutable: the VM is
    pinned to what the policy's vCenter and consumer entry allowed."""

    rules = (_immutable("policy"),)

    name: ObjectName = Field(description="Name of the HostPassthroughPolicy.")


class VMRef(ApiModel):
    """The virtual machine: exactly one of name or instanceUUID. Immutable: the operator pins
    the VM it first found (status.vm) and never acts on another one."""

    rules = (
        Rule(
            cel="has(self.name) != has(self.instanceUUID)",
            message="vm needs exactly one of name or instanceUUID",
            check=lambda s: (s.name is None) != (s.instance_uuid is None),
        ),
        _immutable("VM"),
    )

    name: VMName | None = Field(None, description="VM name in vCenter; must be unique there.")
    instance_uuid: InstanceUuid | None = Field(
        None,
        alias="instanceUUID",
        description="vCenter instance UUID of the VM (config.instanceUuid).",
    )


class PciDeviceRef(ApiModel):
    """A static DirectPath device: a passthrough-enabled PCI device of the VM's host."""

    address: PciAddress = Field(description='PCI address on the host, e.g. "0000:3b:00.0".')


class DynamicDeviceRef(ApiModel):
    """A Dynamic DirectPath device (vSphere 7.0+): any matching device of the host at power-on."""

    vendor_id: HexId = Field(alias="vendorID", description='PCI vendor id, e.g. "10de".')
    device_id: HexId = Field(alias="deviceID", description='PCI device id, e.g. "20b5".')
    label: HardwareLabel | None = Field(
        None, description="Hardware label the device must carry (customLabel)."
    )


class AssignedDevice(ApiModel):
    """One passthrough device of the VM: name + exactly one of pci or dynamic."""

    rules = (
        Rule(
            cel="has(self.pci) != has(self.dynamic)",
            message="a device needs exactly one of pci or dynamic",
            check=lambda s: (s.pci is None) != (s.dynamic is None),
        ),
    )

    name: DnsLabel = Field(description="Name of the device in this assignment, e.g. gpu0.")
    pci: PciDeviceRef | None = Field(None, description="Static DirectPath device.")
    dynamic: DynamicDeviceRef | None = Field(None, description="Dynamic DirectPath device.")


class NetworkDirectPath(ApiModel):
    """VMDirectPath Gen2 (Cisco UCS VM-FEX) on an existing vmxnet3 adapter; claims no device."""

    adapter: DeviceLabel = Field(
        description='Label of the VM\'s vmxnet3 network adapter, e.g. "Network adapter 1".'
    )


class PowerPolicy(StrEnum):
    """How to get a powered-on VM to power-off, the state PCI devices change in."""

    WAIT_FOR_POWER_OFF = "WaitForPowerOff"
    SHUTDOWN_GUEST = "ShutdownGuest"
    POWER_OFF = "PowerOff"


class ConflictPolicy(StrEnum):
    """What to do with VM features that passthrough rules out."""

    BLOCK = "Block"
    RESOLVE = "Resolve"


def _unique(names: list[str]) -> bool:
    return len(names) == len(set(names))


def _pci_addresses(devices: list[AssignedDevice]) -> list[str]:
    return [normalize_pci_address(d.pci.address) for d in devices if d.pci is not None]


class VMDeviceAssignmentSpec(ApiModel):
    """Desired passthrough devices of one VM."""

    rules = (
        Rule(
            cel="(has(self.devices) && size(self.devices) > 0) || "
            "(has(self.networkDirectPath) && size(self.networkDirectPath) > 0)",
            message="an assignment needs at least one of devices or networkDirectPath",
            check=lambda s: bool(s.devices) or bool(s.network_direct_path),
        ),
        Rule(
            cel="!has(self.devices) || "
            "self.devices.all(d, self.devices.exists_one(e, e.name == d.name))",
            message="device names must be unique",
            check=lambda s: _unique([d.name for d in s.devices]),
            field_path=".devices",
        ),
        Rule(
            # One PCI device backs one VirtualPCIPassthrough device: a second entry could never
            # be attached (the planner adds the address once). Compared as normalize_pci_address.
            cel="!has(self.devices) || self.devices.all(d, !has(d.pci) || self.devices.exists_one("
            "e, has(e.pci) && e.pci.address.lowerAscii() == d.pci.address.lowerAscii()))",
            message="each pci.address can be assigned once: two devices name the same PCI device",
            check=lambda s: _unique(_pci_addresses(s.devices)),
            field_path=".devices",
        ),
        Rule(
            cel="!has(self.networkDirectPath) || self.networkDirectPath.all("
            "a, self.networkDirectPath.exists_one(b, b.adapter == a.adapter))",
            message="networkDirectPath adapters must be unique",
            check=lambda s: _unique([n.adapter for n in s.network_direct_path]),
            field_path=".networkDirectPath",
        ),
    )

    policy_ref: PolicyRef = Field(description="The policy that provides the devices.")
    vm: VMRef = Field(description="The virtual machine.")
    devices: list[AssignedDevice] = Field(
        default_factory=list,
        max_length=MAX_DEVICES,
        description="PCI passthrough devices; the per-VM maximum depends on the ESXi version "
        "(16 on 7.x, 32 on 8.0, 64 on 8.0U1, 128 on 8.0U2).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    network_direct_path: list[NetworkDirectPath] = Field(
        default_factory=list,
        max_length=MAX_NETWORK_ADAPTERS,
        description="Network adapters to run in DirectPath Gen2 (VM-FEX) mode.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["adapter"],
        },
    )
    power_policy: PowerPolicy = Field(
        PowerPolicy.WAIT_FOR_POWER_OFF,
        description="Devices change only while the VM is powered off. WaitForPowerOff: report "
        "PowerOffRequired and wait. ShutdownGuest: shut the guest down (hard power-off after a "
        "timeout). PowerOff: hard power-off.",
    )
    restore_power_state: bool = Field(
        True, description="Power the VM back on if the operator powered it off."
    )
    shutdown_timeout: Annotated[
        Duration,
        Rule(
            cel="duration(self) >= duration('0s') && duration(self) <= duration('24h')",
            message="shutdownTimeout must be between 0s and 24h",
            check=lambda v: parse_duration(v) <= MAX_SHUTDOWN_TIMEOUT,
        ),
    ] = Field(
        DEFAULT_SHUTDOWN_TIMEOUT,
        description="ShutdownGuest: how long the guest may take to shut down. Then the VM is "
        "powered off hard if the policy's consumer entry allows PowerOff; otherwise the "
        'operator keeps waiting and says so. A duration such as "5m"; at most 24h.',
    )
    upgrade_hardware_version: bool = Field(
        False,
        description="Dynamic DirectPath needs virtual hardware version 17 or later (vSphere "
        "7.0). true: upgrade an older VM to vmx-17 while it is powered off (under powerPolicy), "
        "recorded in status.previous.hardwareVersion. Not undone on delete: vSphere cannot "
        "downgrade. false: report HardwareVersionTooOld and change nothing.",
    )
    conflict_policy: ConflictPolicy = Field(
        ConflictPolicy.BLOCK,
        description="Block: change nothing while the VM uses a feature passthrough rules out. "
        "Resolve: turn off hot add and nested HV, set DRS/HA overrides; still block on Fault "
        "Tolerance and snapshots.",
    )
    suspend: bool = Field(
        False,
        description="Pause: true stops every vCenter write for this assignment (reconfigure, "
        "power, hardware upgrade, DRS/HA overrides, deletion cleanup). Observation and status "
        "go on; condition Suspended=True names what would be done, and a deletion waits for "
        "false.",
    )


class PowerState(StrEnum):
    """VirtualMachinePowerState, in vSphere's spelling."""

    POWERED_ON = "poweredOn"
    POWERED_OFF = "poweredOff"
    SUSPENDED = "suspended"


class VMStatus(StatusModel):
    """The VM as last observed in vCenter."""

    moref: str | None = Field(None, description="Managed object id, e.g. vm-42.")
    instance_uuid: str | None = Field(
        None,
        alias="instanceUUID",
        description="config.instanceUuid of the VM pinned on first observation: the operator "
        "acts on no other VM.",
    )
    vcenter: str | None = Field(
        None,
        description="The vCenter the VM was pinned in (its instance UUID, "
        "ServiceContent.about.instanceUuid).",
    )
    host: str | None = Field(None, description="Name of the host the VM is registered on.")
    power_state: PowerState | None = Field(None, description="runtime.powerState.")
    hardware_version: str | None = Field(None, description="config.version, e.g. vmx-19.")
    firmware: str | None = Field(None, description="config.firmware: bios or efi.")
    mmio_size_gb: int | None = Field(
        None,
        alias="mmioSizeGB",
        description="The 64-bit MMIO space the VM's passthrough devices need, in GB: the sum "
        "of their mmioSizeGB (HostPassthroughPolicy). Above 32, or one device above 16, needs EFI "
        "and pciPassthru.64bitMMIOSizeGB, which the operator sets.",
    )


class DeviceKind(StrEnum):
    """How a device is backed."""

    PCI = "pci"  # VirtualPCIPassthroughDeviceBackingInfo
    DYNAMIC = "dynamic"  # VirtualPCIPassthroughDynamicBackingInfo


class DeviceAssignmentStatus(StatusModel):
    """One device of the spec, as found on the VM."""

    name: str = Field(description="Name of the device in the spec.")
    kind: DeviceKind = Field(description="pci (static) or dynamic.")
    address: str | None = Field(None, description="PCI address of the backing device.")
    host: str | None = Field(None, description="Host the device belongs to.")
    attached: bool = Field(False, description="The device is in the VM's configuration.")
    key: int | None = Field(None, description="Virtual device key in the VM.")
    added: bool = Field(
        False,
        description="The operator added this device itself; only such devices are removed "
        "when the assignment is deleted (one found attached is left).",
    )
    message: str | None = Field(None, description="Why the device is not attached, if so.")


class FeatureConflictStatus(StatusModel):
    """A VM feature in use that passthrough rules out."""

    feature: str = Field(description="The feature, e.g. Snapshots or FaultTolerance.")
    message: str = Field(description="What was found, e.g. VM has 2 snapshots.")
    resolvable: bool = Field(False, description="conflictPolicy: Resolve can fix it.")


class VMotionStatus(StatusModel):
    """Whether the VM can still be migrated with vMotion."""

    compatible: bool = Field(False, description="vMotion remains possible.")
    reason: str | None = Field(None, description="Why, e.g. StaticPassthrough or DirectPathGen2.")
    message: str | None = Field(None, description="Details, e.g. Gen2 deprecation on 8.0+.")
    gen2_active: bool | None = Field(None, description="runtime vmDirectPathGen2Active.")
    gen2_inactive_reasons: list[str] = Field(
        default_factory=list, description="Why vSphere reports Gen2 inactive, as it words them."
    )


class PowerStatus(StatusModel):
    """What the operator did to the VM's power state, so a restart keeps its promises: the VM it
    powered off is powered back on (restorePowerState), the guest shutdown timeout keeps running."""

    powered_off_by_operator: bool = Field(
        False, description="The operator powered the VM off (or asked the guest to shut down)."
    )
    shutdown_requested_at: Timestamp | None = Field(
        None, description="When the operator asked the guest to shut down (ShutdownGuest)."
    )


class VMDeviceAssignmentStatus(StatusModel):
    """Observed state of a VMDeviceAssignment."""

    observed_generation: int | None = Field(
        None, ge=0, description="The .metadata.generation the status was computed from."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Reconciling, Stalled, PowerOffRequired, FeatureConflict, "
        "DevicesUnavailable, VMotionCompatible, Forbidden.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    vm: VMStatus | None = Field(None, description="The VM as last observed.")
    attached: str | None = Field(
        None,
        pattern=r"^[0-9]+/[0-9]+$",
        description='Attached/desired devices (PCI and network), e.g. "1/2", for kubectl get.',
    )
    devices: list[DeviceAssignmentStatus] = Field(
        default_factory=list,
        description="The spec's devices as found on the VM.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    unavailable_features: list[str] = Field(
        default_factory=list,
        description="What the VM loses with its current devices, e.g. vMotion, Snapshots.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    feature_conflicts: list[FeatureConflictStatus] = Field(
        default_factory=list, description="VM features in use that passthrough rules out."
    )
    vmotion: VMotionStatus | None = Field(None, description="vMotion compatibility.")
    previous: PreviousSettings | None = Field(
        None, description="Settings before the operator's changes, restored on delete."
    )
    power: PowerStatus | None = Field(
        None, description="Power actions the operator took and has yet to finish."
    )


class VMDeviceAssignment(BaseModel):
    """A VMDeviceAssignment object as the API server returns it."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore"
    )

    api_version: Literal["dpio.io/v1alpha1"] = "dpio.io/v1alpha1"
    kind: Literal["VMDeviceAssignment"] = "VMDeviceAssignment"
    metadata: ObjectMeta
    spec: VMDeviceAssignmentSpec
    status: VMDeviceAssignmentStatus = Field(default_factory=VMDeviceAssignmentStatus)
