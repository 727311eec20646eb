"""`status.previous` of a VMDeviceAssignment: the VM settings as they were before the operator
changed them, recorded BEFORE the change and put back on delete (docs/design.md,
"VM side: deletion").

A setting appears here only once the operator is about to change it; a value recorded is never
overwritten by a later one (it would record the operator's own setting as the user's).
"""

from __future__ import annotations

from pydantic import Field

from dpio.api.common import StatusModel


class DrsVmOverride(StatusModel):
    """A VM's DRS override in its cluster (ClusterDrsVmConfigInfo)."""

    existed: bool = Field(description="The VM had its own override; if not, it is removed.")
    enabled: bool | None = Field(None, description="enabled.")
    behavior: str | None = Field(None, description="behavior, e.g. fullyAutomated.")


class DasVmOverride(StatusModel):
    """A VM's HA override in its cluster (ClusterDasVmConfigInfo)."""

    existed: bool = Field(description="The VM had its own override; if not, it is removed.")
    restart_priority: str | None = Field(None, description="dasSettings.restartPriority.")


class PreviousMmio(StatusModel):
    """The VM's 64-bit MMIO advanced settings (config.extraConfig); unset: the key was absent."""

    use64bit_mmio: str | None = Field(
        None, alias="use64bitMMIO", description="pciPassthru.use64bitMMIO, as it was."
    )
    size_gb: str | None = Field(
        None, alias="sizeGB", description="pciPassthru.64bitMMIOSizeGB, as it was."
    )


class PreviousSettings(StatusModel):
    """VM settings as they were before the operator changed them; restored on delete."""

    memory_reservation_locked_to_max: bool | None = Field(
        None, description="memoryReservationLockedToMax."
    )
    cpu_hot_add_enabled: bool | None = Field(None, description="cpuHotAddEnabled.")
    memory_hot_add_enabled: bool | None = Field(None, description="memoryHotAddEnabled.")
    nested_hv_enabled: bool | None = Field(
        None, alias="nestedHVEnabled", description="nestedHVEnabled."
    )
    drs_override: DrsVmOverride | None = Field(None, description="The VM's DRS override.")
    das_override: DasVmOverride | None = Field(None, description="The VM's HA override.")
    mmio: PreviousMmio | None = Field(
        None,
        description="The 64-bit MMIO settings a large-BAR device needs; put back on delete "
        "unless the devices left on the VM still need them.",
    )
    hardware_version: str | None = Field(
        None,
        description="config.version before the operator upgraded it (upgradeHardwareVersion). "
        "Recorded only: vSphere cannot downgrade a VM's hardware version.",
    )
