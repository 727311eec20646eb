"""HostPassthroughPolicy settings: the vCenter, how changes apply, reboots, deletion, consumers.

The knobs besides host and device selection (docs/design.md, "HostPassthroughPolicy"); each
is a small model or enum with its default, so `spec` stays readable in `dpio.api.policy`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints

from dpio.api.assignment import ConflictPolicy, PowerPolicy
from dpio.api.common import ApiModel, DnsLabel, Duration, LabelSelector, Rule, SecretRef

# vSphere 8 configuration maximums: 2,500 hosts per vCenter Server.
MAX_HOSTS = 2500


class VCenterRef(ApiModel):
    """The vCenter to use instead of the operator's default one."""

    secret_ref: SecretRef = Field(
        description="Secret in the operator's namespace with keys server, username, password and "
        'caBundle or thumbprint (or insecure: "true").'
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


# An inventory path as `govc ls` prints it: "/DC1/vm/ml-team", "/DC1/host/GPU-Cluster/Resources/ml".
# Absolute, no empty segment, no trailing slash (vCenter's own path syntax,
# SearchIndex.FindByInventoryPath); names are up to 80 characters, paths nest a few levels.
INVENTORY_PATH_PATTERN = r"^(/[^/]+)+$"
InventoryPath = Annotated[
    str, StringConstraints(pattern=INVENTORY_PATH_PATTERN, min_length=2, max_length=1024)
]
MAX_CONSUMERS = 64
MAX_SCOPE_PATHS = 64


class VMScope(ApiModel):
    """The VMs a consumer entry's namespaces may act on: those in these folders or resource
    pools (or below them). vSphere administrators control both, with vCenter permissions."""

    rules = (
        Rule(
            cel="(has(self.folders) && size(self.folders) > 0) || "
            "(has(self.resourcePools) && size(self.resourcePools) > 0)",
            message="vms needs at least one folder or resource pool",
            check=lambda s: bool(s.folders) or bool(s.resource_pools),
        ),
    )

    folders: list[InventoryPath] = Field(
        default_factory=list,
        max_length=MAX_SCOPE_PATHS,
        description='VM folders as inventory paths, e.g. "/DC1/vm/ml-team"; VMs in subfolders '
        "count.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    resource_pools: list[InventoryPath] = Field(
        default_factory=list,
        max_length=MAX_SCOPE_PATHS,
        description='Resource pools as inventory paths, e.g. "/DC1/host/GPU-Cluster/Resources/'
        'ml-team"; VMs in child pools count.',
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class Consumer(ApiModel):
    """Some namespaces, the VMs they may act on, and the actions they may ask for."""

    rules = (
        Rule(
            cel="(has(self.namespaces) && size(self.namespaces) > 0) || "
            "has(self.namespaceSelector)",
            message="a consumer needs namespaces or a namespaceSelector",
            check=lambda s: bool(s.namespaces) or s.namespace_selector is not None,
        ),
    )

    namespaces: list[DnsLabel] = Field(
        default_factory=list,
        max_length=256,
        description="Namespace names.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    namespace_selector: LabelSelector | None = Field(
        None,
        description="Namespaces with matching labels; {} selects every namespace. A namespace "
        "whose labels the operator has not read yet matches no selector.",
    )
    vms: VMScope = Field(description="The VMs these namespaces may act on.")
    power_policies: list[PowerPolicy] = Field(
        default_factory=lambda: [PowerPolicy.WAIT_FOR_POWER_OFF],
        min_length=1,
        max_length=3,
        description="powerPolicy values their assignments may use; ShutdownGuest falls back to "
        "a hard power-off after shutdownTimeout only if PowerOff is listed too.",
        json_schema_extra={"x-kubernetes-list-type": "set", "default": ["WaitForPowerOff"]},
    )
    conflict_policies: list[ConflictPolicy] = Field(
        default_factory=lambda: [ConflictPolicy.BLOCK],
        min_length=1,
        max_length=2,
        description="conflictPolicy values their assignments may use (Resolve edits the "
        "cluster's HA and DRS settings for the VM).",
        json_schema_extra={"x-kubernetes-list-type": "set", "default": ["Block"]},
    )
    max_devices: int | None = Field(
        None,
        ge=0,
        le=100000,
        description="Quota: PCI and dynamic devices all these namespaces' assignments may hold "
        "from this policy together; unset: no limit. The oldest assignments are served first.",
    )
