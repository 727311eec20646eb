"""Execute a host plan: passthrough configuration, refresh, maintenance mode and reboot.

All functions are blocking and take the `Connection` first, so they run through
`VCenterClient.call`/`run` (fault translation, re-login, the bounded thread pool).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from pyVmomi import vim

from dpio.planner.observed import parse_version
from dpio.vsphere.connect import Connection
from dpio.vsphere.host.reader import InventoryReader
from dpio.vsphere.properties import moref_id

logger = logging.getLogger(__name__)

# vSphere API reference: HostPciPassthruConfig.applyNow "Since vSphere API Release 7.0.0.0";
# HostPciPassthruConfig.hardwareLabel "Since vSphere API Release 7.0.2.0".
APPLY_NOW_SINCE = (7, 0)
HARDWARE_LABEL_SINCE = (7, 0, 2)

_config_type: Any = vim.host.PciPassthruConfig  # untyped pyVmomi constructor


class PassthruConfigChange(Protocol):
    """One device change; the planner's `PassthruChange` has exactly these attributes."""

    @property
    def id(self) -> str: ...
    @property
    def passthru_enabled(self) -> bool: ...
    @property
    def apply_now(self) -> bool | None: ...
    @property
    def hardware_label(self) -> str | None: ...


def passthru_configs(changes: Sequence[PassthruConfigChange], api_version: str) -> list[Any]:
    """`vim.host.PciPassthruConfig[]` for one call; fields the host's API lacks are left out.

    `applyNow` unset lets ESXi decide from `deviceRebindWithoutRebootSupported` (vSphere API
    reference, HostPciPassthruConfig.applyNow), so it is sent only when the plan chose a value.
    """
    version = parse_version(api_version)
    configs = []
    for change in changes:
        config = _config_type(id=change.id, passthruEnabled=change.passthru_enabled)
        if change.apply_now is not None and version >= APPLY_NOW_SINCE:
            config.applyNow = change.apply_now
        if change.hardware_label is not None and version >= HARDWARE_LABEL_SINCE:
            config.hardwareLabel = change.hardware_label
        configs.append(config)
    return configs


def update_passthru_config(
    conn: Connection,
    reader: InventoryReader,
    host_moref: str,
    changes: Sequence[PassthruConfigChange],
) -> None:
    """ONE `HostPciPassthruSystem.UpdatePassthruConfig` carrying every change for the host.

    Synchronous, not a task; needs `Host.Config.PciPassthru`; throws HostConfigFault (vSphere
    API reference). No changes: no call.
    """
    if not changes:
        return
    system, api_version = reader.passthru_system(conn, host_moref)
    system.UpdatePassthruConfig(passthru_configs(changes, api_version))
    logger.info(
        "Updated passthrough configuration on host",
        extra={"host": host_moref, "devices": [c.id for c in changes]},
    )


def refresh_passthru(conn: Connection, reader: InventoryReader, host_moref: str) -> None:
    """`HostPciPassthruSystem.Refresh()`: re-read passthrough state where it may be stale."""
    system, _ = reader.passthru_system(conn, host_moref)
    system.Refresh()


def enter_maintenance_mode(conn: Connection, host_moref: str, timeout_seconds: int) -> str:
    """Start `EnterMaintenanceMode_Task`; returns the task moref.

    With DRS fully automated, vCenter evacuates powered-on VMs; `timeout` makes the task fail
    instead of waiting for ever on a VM that can't move (a passthrough VM can't be vMotioned).
    """
    host = conn.ref(vim.HostSystem, host_moref)
    task = host.EnterMaintenanceMode_Task(timeout=timeout_seconds, evacuatePoweredOffVms=False)
    logger.info("Entering maintenance mode", extra={"host": host_moref, "task": moref_id(task)})
    return moref_id(task)


def reboot_host(conn: Connection, host_moref: str) -> str:
    """Start `RebootHost_Task(force=False)`: vCenter refuses it outside maintenance mode."""
    task = conn.ref(vim.HostSystem, host_moref).RebootHost_Task(force=False)
    logger.info("Rebooting host", extra={"host": host_moref, "task": moref_id(task)})
    return moref_id(task)


def exit_maintenance_mode(conn: Connection, host_moref: str, timeout_seconds: int) -> str:
    task = conn.ref(vim.HostSystem, host_moref).ExitMaintenanceMode_Task(timeout=timeout_seconds)
    logger.info("Exiting maintenance mode", extra={"host": host_moref, "task": moref_id(task)})
    return moref_id(task)
