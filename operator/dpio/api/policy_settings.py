"""HostPassthroughPolicy settings: the vCenter, how changes apply, reboots, deletion, consumers.

The knobs besides host and device selection (docs/design.md, "HostPassthroughPolicy"); each
is a small model or enum with its default, so `spec` stays readable in `dpio.api.policy`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints

from dpio.api.assignment import ConflictPolicy, PowerPolicy
from dpio.api.common import (
    ApiModel,
    DnsLabel,
    Duration,
    LabelSelector,
    Rule,
    SecretRef,
    parse_duration,
)

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


class Weekday(StrEnum):
    """A day of the week, as `date` and cron spell them in English."""

    MON = "Mon"
    TUE = "Tue"
    WED = "Wed"
    THU = "Thu"
    FRI = "Fri"
    SAT = "Sat"
    SUN = "Sun"


# 00:00 to 23:59, wall-clock time in the window's time zone.
WINDOW_START_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
# An IANA zone name's shape ("Europe/Berlin", "UTC", "America/Argentina/Buenos_Aires",
# "Etc/GMT+1"); whether the zone exists is checked when the policy is planned (tzdata), and an
# unknown one stalls the policy (InvalidSpec) instead of being guessed.
TIME_ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$"
MAX_WINDOW_HOURS = 168  # a week: a longer window is always open
MAX_REBOOT_WINDOWS = 16


def _window_duration_ok(value: str) -> bool:
    try:
        duration = parse_duration(value)
    except ValueError:
        return False
    return 60 <= duration.total_seconds() <= MAX_WINDOW_HOURS * 3600


class RebootWindow(ApiModel):
    """When maintenance mode may be entered and hosts rebooted: from `start` on each of `days`
    (in `timeZone`), for `duration`. A window may cross midnight (22:00 for 4h)."""

    rules = (
        Rule(
            cel=f"duration(self.duration) >= duration('1m') && "
            f"duration(self.duration) <= duration('{MAX_WINDOW_HOURS}h')",
            message=f"duration must be between 1m and {MAX_WINDOW_HOURS}h",
            check=lambda s: _window_duration_ok(s.duration),
            field_path=".duration",
        ),
    )

    days: list[Weekday] = Field(
        min_length=1,
        max_length=7,
        description="Days of the week the window starts on: Mon, Tue, Wed, Thu, Fri, Sat, Sun.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    start: Annotated[str, StringConstraints(pattern=WINDOW_START_PATTERN, max_length=5)] = Field(
        description='Wall-clock start, "HH:MM" (24h) in timeZone. A start that does not exist '
        "on a day (skipped by a daylight-saving change) opens as much later as the clock "
        "skips (one hour in most zones); one that happens twice opens at the first."
    )
    duration: Duration = Field(
        description='How long the window stays open, elapsed time, e.g. "4h" or "90m" (1m to '
        f"{MAX_WINDOW_HOURS}h)."
    )
    time_zone: Annotated[
        str, StringConstraints(pattern=TIME_ZONE_PATTERN, min_length=1, max_length=64)
    ] = Field(
        "UTC",
        description='IANA time zone, e.g. "Europe/Berlin"; an unknown zone stalls the policy '
        "(InvalidSpec).",
    )


class RebootSpec(ApiModel):
    """Host reboots needed to activate passthrough changes (Broadcom KB 309986)."""

    policy: RebootPolicy = Field(
        RebootPolicy.MANUAL,
        description="Manual: only report RebootRequired. Rolling: enter maintenance mode, "
        "reboot, exit, a few hosts at a time.",
    )
    max_unavailable: int = Field(
        1,
        ge=1,
        le=MAX_HOSTS,
        description="Per vSphere cluster, across all policies: a rolling reboot takes a host of "
        "a cluster down only while fewer than this many of the cluster's hosts are unavailable "
        "(in maintenance mode or not connected, whoever caused it). A host in no cluster is a "
        "budget of its own.",
    )
    drain_timeout: Duration = Field(
        "30m",
        description="How long a host may take to enter maintenance mode before it is left "
        'running and reported Degraded (DrainTimeout); a duration such as "30m" or "1h30m".',
    )
    windows: list[RebootWindow] = Field(
        default_factory=list,
        max_length=MAX_REBOOT_WINDOWS,
        description="When a rolling reboot may enter maintenance mode and reboot hosts; empty: "
        "at any time. Outside every window no host is drained; a host the operator already "
        "put in maintenance mode is rebooted and taken out even after its window closed.",
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
