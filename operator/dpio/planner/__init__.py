"""Pure planning: observed vSphere inventory + spec -> plan and status. No I/O, no clock.

HostPassthroughPolicy: `plan_policy` -> `PolicyPlan` (apply `updates`, then `reboot_actions`),
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
from dpio.planner.deletion import deletion_touches_hosts, plan_deletion
from dpio.planner.hosts import PassthruChange
from dpio.planner.observed import (
    HostPciDevice,
    HostPciPassthruInfo,
    ObservedHost,
    ObservedInventory,
    mask_pci_id,
    normalize_pci_address,
)
from dpio.planner.policy import PolicyPlan, UpdatePassthruConfig, plan_policy
from dpio.planner.reboot import EnterMaintenanceMode, ExitMaintenanceMode, RebootAction, RebootHost
from dpio.planner.rules import OtherPolicy
from dpio.planner.status import policy_status, vcenter_unreachable_status

__all__ = [
    "EnterMaintenanceMode",
    "ExitMaintenanceMode",
    "HostPciDevice",
    "HostPciPassthruInfo",
    "ObservedHost",
    "ObservedInventory",
    "OtherPolicy",
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
