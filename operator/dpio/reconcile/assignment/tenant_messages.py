"""What a tenant's status may say about a failed vCenter call.

A VMDeviceAssignment belongs to an application team; the vCenter behind its policy belongs to
the platform team. Errors about the connection (which Secret, which server, which account,
which certificate) name things the tenant must not learn and can't fix: the tenant gets the
reason and a generic message; the reconciler puts the details in the policy's Events and the
log (docs/design.md, "Tenancy").
"""

from __future__ import annotations

from dpio.api.conditions import (
    INVALID_CREDENTIALS,
    NOT_PERMITTED,
    SECRET_INVALID,
    SECRET_NOT_FOUND,
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


def tenant_problem(err: PortError, policy: str) -> Problem:
    """`err` as the tenant may read it: connection problems in general words, the rest as is
    (a task fault about the tenant's own VM is what the tenant needs to act)."""
    if err.reason not in CONNECTION_REASONS and not err.retryable:
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
