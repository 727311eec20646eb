"""HostPassthroughPolicy settings: the vCenter, how changes apply, reboots, deletion, consumers.

The knobs of DESIGN.md §2.1 besides host and device selection; each is a small model or enum
with its default, so `spec` stays readable in `dpio.api.policy`.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from dpio.api.common import ApiModel, DnsLabel, Duration, LabelSelector, SecretRef

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
