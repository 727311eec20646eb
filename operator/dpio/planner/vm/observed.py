"""What the vSphere adapter reads for one VMDeviceAssignment, in vSphere's own words.

A converged VM may cost at most 3 vCenter calls (docs/design.md, "vCenter access"): one
PropertyCollector read of the VM, its host and cluster (config.hardware.device, config.*,
runtime, snapshot, cluster configurationEx), one `EnvironmentBrowser.QueryConfigTarget(host)` and
one `QueryConfigOption`. Everything else (other VMs' devices, other assignments, the policy's
status) comes from caches the operator already keeps. Everything here is frozen; PCI addresses
are lower case and PCI ids masked to 16 bits on construction, so the planner compares values
without caring where they came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import NamedTuple

from dpio.api.policy import DeviceStatus, HostPassthroughPolicySpec
from dpio.planner.observed import mask_pci_id, normalize_pci_address, parse_version


class Age(NamedTuple):
    """Who came first among assignments: compared as a tuple, older first, ties broken by
    namespace/name so every reconciler picks the same winner whatever order they run in."""

    creation_timestamp: datetime
    namespace: str
    name: str


# VirtualMachinePowerState (vSphere API reference).
POWERED_ON = "poweredOn"
POWERED_OFF = "poweredOff"
SUSPENDED = "suspended"
# ClusterDasVmSettingsRestartPriority "disabled": HA does not restart this VM.
RESTART_PRIORITY_DISABLED = "disabled"
# DrsBehavior (vSphere API reference).
FULLY_AUTOMATED = "fullyAutomated"
MANUAL = "manual"
VMXNET3 = "vmxnet3"


@dataclass(frozen=True, slots=True)
class StaticBacking:
    """`VirtualPCIPassthroughDeviceBackingInfo`, built from `ConfigTarget.pciPassthrough`.

    `device_id` is the LOWER-CASE HEX string of the device id: a decimal string is accepted by
    ReconfigVM but makes power-on fail (govmomi #2248/#2249). `vendor_id` is kept masked to 16
    bits; the backing's `vendorId` is an xsd:short on the wire, see `vendor_id_short`.
    """

    id: str
    device_id: str
    system_id: str
    vendor_id: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", normalize_pci_address(self.id))
        object.__setattr__(self, "device_id", self.device_id.strip().lower())
        object.__setattr__(self, "vendor_id", mask_pci_id(self.vendor_id))

    @property
    def vendor_id_short(self) -> int:
        """The signed int16 the WSDL wants (0x8086 -> -32634; vSphere WSDL, govmomi #2248)."""
        return self.vendor_id - 0x10000 if self.vendor_id >= 0x8000 else self.vendor_id


@dataclass(frozen=True, slots=True)
class DynamicBacking:
    """`VirtualPCIPassthroughDynamicBackingInfo`: `allowedDevice[]` + `customLabel` (7.0+)."""

    allowed_devices: tuple[tuple[int, int], ...]  # (vendorId, deviceId) pairs
    custom_label: str = ""

    def __post_init__(self) -> None:
        pairs = tuple((mask_pci_id(v), mask_pci_id(d)) for v, d in self.allowed_devices)
        object.__setattr__(self, "allowed_devices", pairs)


Backing = StaticBacking | DynamicBacking


@dataclass(frozen=True, slots=True)
class ObservedPciDevice:
    """One `VirtualPCIPassthrough` in `config.hardware.device`.

    `assigned_id`: the host PCI id a dynamic device runs on, from `runtime.device`/`assignedId`
    when the VM is powered on; None if unknown.
    """

    key: int
    label: str
    backing: Backing | None
    assigned_id: str | None = None


@dataclass(frozen=True, slots=True)
class ObservedNic:
    """One `VirtualEthernetCard` (+ its port's `vmDirectPathGen2Allowed` and runtime state)."""

    key: int
    label: str  # deviceInfo.label, e.g. "Network adapter 1"
    kind: str  # vmxnet3, e1000e, ... (the VirtualEthernetCard subtype, lower case)
    upt_compatibility_enabled: bool = False
    portgroup: str = ""
    gen2_allowed: bool = False  # DVPortSetting.vmDirectPathGen2Allowed of its port group
    gen2_active: bool = False  # runtime vmDirectPathGen2Active
    gen2_inactive_reasons: tuple[str, ...] = ()  # as vSphere words them (network + VM reasons)


@dataclass(frozen=True, slots=True)
class ObservedCluster:
    """The VM's cluster: HA/DRS settings and this VM's own overrides (None: no override)."""

    name: str
    moref: str
    ha_enabled: bool = False
    drs_enabled: bool = False
    drs_automation: str = FULLY_AUTOMATED  # defaultVmBehavior
    vm_das_restart_priority: str | None = None  # ClusterDasVmConfigInfo.dasSettings
    vm_drs_enabled: bool | None = None  # ClusterDrsVmConfigInfo.enabled
    vm_drs_behavior: str | None = None  # ClusterDrsVmConfigInfo.behavior


@dataclass(frozen=True, slots=True)
class ObservedVM:
    """One `VirtualMachine`, with exactly the properties the VM planner needs."""

    moref: str
    name: str
    host: str
    instance_uuid: str = ""
    host_moref: str = ""
    host_version: str = ""  # HostSystem.config.product.version, e.g. "8.0.2"
    host_system_id: str = ""  # the systemId a static backing carries
    power_state: str = POWERED_OFF
    memory_mb: int = 0
    memory_reservation_mb: int = 0
    memory_reservation_locked_to_max: bool = False
    cpu_hot_add_enabled: bool = False
    memory_hot_add_enabled: bool = False
    nested_hv_enabled: bool = False
    ft_configured: bool = False  # config.ftInfo is set (primary or secondary)
    ft_role: int | None = None
    snapshot_count: int = 0
    hardware_version: str = ""  # config.version, e.g. "vmx-19"
    change_version: str = ""  # config.changeVersion, sent back so a concurrent edit fails
    pci_devices: tuple[ObservedPciDevice, ...] = ()
    nics: tuple[ObservedNic, ...] = ()
    cluster: ObservedCluster | None = None
    # Where vSphere administrators put the VM, as inventory paths (`govc ls` spelling):
    # its folder ("/DC1/vm/ml-team") and resource pool ("/DC1/host/GPU-Cluster/Resources/ml").
    # Tenancy scopes VMs by these (vm.tenancy); "" when unknown, which matches no scope.
    folder: str = ""
    resource_pool: str = ""
    # config.firmware ("bios" / "efi"; "" unknown) and the two 64-bit MMIO advanced settings of
    # config.extraConfig as written (None: absent), for large-BAR devices (vm.mmio).
    firmware: str = ""
    use64bit_mmio: str | None = None
    mmio_size_gb: str | None = None

    @property
    def powered_on(self) -> bool:
        return self.power_state == POWERED_ON

    def nic(self, label: str) -> ObservedNic | None:
        return next((n for n in self.nics if n.label == label), None)


@dataclass(frozen=True, slots=True)
class ConfigTargetPci:
    """`ConfigTarget.pciPassthrough[]` (VirtualMachinePciPassthroughInfo): ACTIVE devices only."""

    id: str
    system_id: str
    vendor_id: int
    device_id: int
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", normalize_pci_address(self.id))
        object.__setattr__(self, "vendor_id", mask_pci_id(self.vendor_id))
        object.__setattr__(self, "device_id", mask_pci_id(self.device_id))

    def backing(self) -> StaticBacking:
        return StaticBacking(self.id, f"{self.device_id:x}", self.system_id, self.vendor_id)


@dataclass(frozen=True, slots=True)
class ConfigTargetDynamic:
    """`ConfigTarget.dynamicPassthrough[]` (VirtualMachineDynamicPassthroughInfo)."""

    vendor_id: int
    device_id: int
    custom_label: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "vendor_id", mask_pci_id(self.vendor_id))
        object.__setattr__(self, "device_id", mask_pci_id(self.device_id))


@dataclass(frozen=True, slots=True)
class ConfigTarget:
    """`EnvironmentBrowser.QueryConfigTarget(host)`: what the VM's host offers right now."""

    pci_passthrough: tuple[ConfigTargetPci, ...] = ()
    dynamic_passthrough: tuple[ConfigTargetDynamic, ...] = ()

    def pci(self, address: str) -> ConfigTargetPci | None:
        wanted = normalize_pci_address(address)
        return next((p for p in self.pci_passthrough if p.id == wanted), None)


@dataclass(frozen=True, slots=True)
class AssignmentClaim:
    """Another VMDeviceAssignment's devices (from the operator's cache): its static devices on a
    host, and which VM it names with what Dynamic DirectPath devices (`spec.vm`, so known before
    it has reconciled even once)."""

    namespace: str
    name: str
    creation_timestamp: datetime
    host: str
    device_ids: tuple[str, ...]
    vm_name: str = ""
    vm_instance_uuid: str = ""
    dynamic: tuple[tuple[int, int, str], ...] = ()  # (vendorId, deviceId, label or "")

    def __post_init__(self) -> None:
        ids = tuple(normalize_pci_address(i) for i in self.device_ids)
        object.__setattr__(self, "device_ids", ids)
        object.__setattr__(self, "vm_instance_uuid", self.vm_instance_uuid.lower())
        dynamic = tuple((mask_pci_id(v), mask_pci_id(d), label) for v, d, label in self.dynamic)
        object.__setattr__(self, "dynamic", dynamic)

    def names_vm(self, vm: ObservedVM) -> bool:
        """Whether its `spec.vm` is this VM (by instance UUID, or name), on the host its status
        last saw (an assignment not reconciled yet claims on every host: reconcile.claims)."""
        if self.host != vm.host:
            return False
        if self.vm_instance_uuid:
            return self.vm_instance_uuid == vm.instance_uuid.lower()
        return bool(self.vm_name) and self.vm_name == vm.name

    def shown_to(self, namespace: str) -> str:
        """How this claim is named in a status of `namespace`: by name in the same namespace;
        another tenant's objects are not named (docs/design.md, "Tenancy")."""
        return self.name if self.namespace == namespace else "in another namespace"

    @property
    def age(self) -> Age:
        return Age(self.creation_timestamp, self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class QuotaUse:
    """Another VMDeviceAssignment of the same policy, for the consumers' maxDevices quota:
    who (its namespace's labels: None when not known yet), how old, how many devices."""

    namespace: str
    name: str
    creation_timestamp: datetime
    devices: int
    namespace_labels: Mapping[str, str] | None = None

    @property
    def age(self) -> Age:
        return Age(self.creation_timestamp, self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class PolicyView:
    """The referenced HostPassthroughPolicy: its spec and its status rows for the VM's host."""

    name: str
    spec: HostPassthroughPolicySpec
    host_devices: tuple[DeviceStatus, ...] = ()
    #: False while the policy's status does not cover the VM's host for its current spec (just
    #: created or changed): a device missing from `host_devices` is then not known to be absent.
    host_reported: bool = True


#: A VM as an assignment names it: (name, instance UUID), one of the two empty.
VMName = tuple[str, str]


@dataclass(frozen=True, slots=True)
class VMObservation:
    """Everything observed for one assignment. `vm` None: the VM does not exist in vCenter."""

    vm: ObservedVM | None
    config_target: ConfigTarget = field(default_factory=ConfigTarget)
    max_passthrough_devices: int | None = None  # QueryConfigOption numPCIPassthroughDevices
    gen2_supported: bool = False  # HostCapability.vmDirectPathGen2Supported
    gen2_unsupported_reasons: tuple[str, ...] = ()
    # Host PCI id -> names of OTHER VMs on the same host whose static backing uses it.
    attached_to_vms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    claims: tuple[AssignmentClaim, ...] = ()
    policy: PolicyView | None = None
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    # False while the operator has not read the namespace's labels: a namespaceSelector then
    # matches nothing (fails closed) instead of letting NotIn / DoesNotExist match.
    namespace_labels_known: bool = True
    # The other assignments of the same policy (vm.tenancy.quota_exceeded).
    quota_uses: tuple[QuotaUse, ...] = ()
    # The vCenter observed: ServiceContent.about.instanceUuid ("" when unknown).
    vcenter_uuid: str = ""

    def __post_init__(self) -> None:
        attached = {normalize_pci_address(k): tuple(v) for k, v in self.attached_to_vms.items()}
        object.__setattr__(self, "attached_to_vms", MappingProxyType(attached))
        object.__setattr__(self, "namespace_labels", MappingProxyType(dict(self.namespace_labels)))


def host_version(vm: ObservedVM) -> tuple[int, ...]:
    return parse_version(vm.host_version)
