"""Pure planning: observed vSphere inventory + spec -> plan and status. No I/O, no clock.

The shared core is here (conditions, the observed inventory, selection, MMIO sizes of known
devices); `dpio.planner.host` plans a HostPassthroughPolicy, `dpio.planner.vm` a
VMDeviceAssignment, and neither imports the other (import-linter checks it).

HostPassthroughPolicy (re-exported here from `dpio.planner.host`):
`plan_policy` -> `PolicyPlan` (apply `updates`, then `reboot_actions`),
`policy_status` / `vcenter_unreachable_status` -> status, `status_changed` before writing,
`plan_deletion` on delete. The adapter fills `ObservedInventory`.
"""

from dpio.planner.conditions import (
    Problem,
    Want,
    compute_conditions,
    conditions_changed,
    status_changed,
)
from dpio.planner.host.deletion import deletion_touches_hosts, plan_deletion
from dpio.planner.host.host_plan import PassthruChange
from dpio.planner.host.plan import PolicyPlan, UpdatePassthruConfig, plan_policy
from dpio.planner.host.reboot import (
    EnterMaintenanceMode,
    ExitMaintenanceMode,
    RebootAction,
    RebootHost,
)
from dpio.planner.host.rules import OtherPolicy, OthersIndex
from dpio.planner.host.status import policy_status, vcenter_unreachable_status
from dpio.planner.observed import (
    HostPciDevice,
    HostPciPassthruInfo,
    ObservedHost,
    ObservedInventory,
    mask_pci_id,
    normalize_pci_address,
)

__all__ = [
    "EnterMaintenanceMode",
    "ExitMaintenanceMode",
    "HostPciDevice",
    "HostPciPassthruInfo",
    "ObservedHost",
    "ObservedInventory",
    "OtherPolicy",
    "OthersIndex",
    "PassthruChange",
    "PolicyPlan",
    "Problem",
    "RebootAction",
    "RebootHost",
    "UpdatePassthruConfig",
    "Want",
    "compute_conditions",
    "conditions_changed",
    "deletion_touches_hosts",
    "mask_pci_id",
    "normalize_pci_address",
    "plan_deletion",
    "plan_policy",
    "policy_status",
    "status_changed",
    "vcenter_unreachable_status",
]
