"""vSphere's typed errors as the reconcilers' `PortError`s: the one place a fault becomes a reason.

The reason ends up in a condition and an Event, where alerts and health checks match on it, so it
is spelled by a constant of `dpio.api.conditions`, never derived from a class name: renaming an
error class in `dpio.vsphere.errors` must not change the API.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, ParamSpec, TypeVar

from dpio.api import conditions as reasons
from dpio.reconcile.ports import PortError
from dpio.vsphere import errors

P = ParamSpec("P")
R = TypeVar("R")

#: Every adapter error to its reason; a subclass not listed takes its nearest listed base's.
REASONS: Mapping[type[errors.VSphereError], str] = {
    errors.VSphereError: reasons.VSPHERE_ERROR,
    errors.VCenterUnreachable: reasons.VCENTER_UNREACHABLE,
    errors.TLSVerificationFailed: reasons.TLS_VERIFICATION_FAILED,
    errors.NotAuthenticated: reasons.NOT_AUTHENTICATED,
    errors.SessionExpired: reasons.SESSION_EXPIRED,
    errors.InvalidCredentials: reasons.INVALID_CREDENTIALS,
    errors.NotPermitted: reasons.NOT_PERMITTED,
    errors.ObjectNotFound: reasons.OBJECT_NOT_FOUND,
    errors.InvalidPowerState: reasons.INVALID_POWER_STATE,
    errors.InvalidState: reasons.INVALID_STATE,
    errors.ConcurrentModification: reasons.CONCURRENT_MODIFICATION,
    errors.HostConfigFault: reasons.HOST_CONFIG_FAULT,
    errors.HostUnreachable: reasons.HOST_UNREACHABLE,
    errors.InvalidRequest: reasons.INVALID_REQUEST,
    errors.TaskFailed: reasons.TASK_FAILED,
    errors.TaskTimedOut: reasons.TASK_TIMED_OUT,
}


def reason_of(err: errors.VSphereError) -> str:
    for cls in type(err).__mro__:
        reason = REASONS.get(cls)
        if reason is not None:
            return reason
    return reasons.VSPHERE_ERROR  # not reached: VSphereError itself is listed


def port_error(err: errors.VSphereError, where: str = "") -> PortError:
    """A vSphere error as a `PortError`; one a human must fix names the Secret it came through."""
    message = f"{where}: {err}" if where and not err.retryable else str(err)
    return PortError(reason_of(err), message, retryable=err.retryable)


def translate_faults(call: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Decorates a port adapter's method: a `VSphereError` leaves it as a `PortError`, chained."""

    @functools.wraps(call)
    async def translated(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await call(*args, **kwargs)
        except errors.VSphereError as err:
            raise port_error(err) from err

    return translated
