"""What a tenant's status may say about a failed vCenter call.

A VMDeviceAssignment belongs to an application team; the vCenter behind its policy belongs to
the platform team. Errors about the connection (which Secret, which server, which account,
which certificate) name things the tenant must not learn and can't fix: the tenant gets the
reason and a generic message; the reconciler puts the details in the policy's Events and the
log (docs/design.md, "Tenancy").
"""

from __future__ import annotations

from dpio.api.conditions import (
    CONCURRENT_MODIFICATION,
    INVALID_CREDENTIALS,
    INVALID_POWER_STATE,
    INVALID_STATE,
    NOT_PERMITTED,
    SECRET_INVALID,
    SECRET_NOT_FOUND,
    TASK_TIMED_OUT,
    TLS_VERIFICATION_FAILED,
    VCENTER_UNREACHABLE,
)
from dpio.planner.conditions import Problem
from dpio.reconcile.ports import PortError

#: Reasons whose messages describe the platform's vCenter connection, not the tenant's VM.
CONNECTION_REASONS = frozenset(
    {
        VCENTER_UNREACHABLE,
        SECRET_NOT_FOUND,
        SECRET_INVALID,
        INVALID_CREDENTIALS,
        TLS_VERIFICATION_FAILED,
        NOT_PERMITTED,
    }
)

#: Passing faults of the tenant's own VM (edited by someone else meanwhile, busy, powered on
#: when it should not be, a task still running): said as they are, reason and message, as
#: docs/troubleshooting.md lists them. They name the VM and the call, nothing of the connection.
VM_REASONS = frozenset(
    {CONCURRENT_MODIFICATION, INVALID_STATE, INVALID_POWER_STATE, TASK_TIMED_OUT}
)


def tenant_problem(err: PortError, policy: str) -> Problem:
    """`err` as the tenant may read it: connection problems in general words, the rest as is
    (a task fault about the tenant's own VM is what the tenant needs to act). A retryable
    fault not known to be about the VM is told as the vCenter being out of reach: its text
    may name the server."""
    if err.reason in VM_REASONS or (err.reason not in CONNECTION_REASONS and not err.retryable):
        return Problem(err.reason, err.message)
    if err.reason == VCENTER_UNREACHABLE or err.retryable:
        what = "cannot reach the vCenter"
        reason = VCENTER_UNREACHABLE
    else:
        what = "cannot use the vCenter"
        reason = err.reason
    return Problem(
        reason,
        f"The operator {what} of HostPassthroughPolicy {policy}; the platform team sees the "
        "details in the policy's Events and the operator's log",
    )
