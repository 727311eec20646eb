"""Typed errors of the vSphere adapter: each pyVmomi fault and socket or TLS error maps to one.

Faults are translated once, here, at the client boundary (like the vmware.vmware Ansible
collection); nothing above `dpio.vsphere` ever sees a `vmodl.MethodFault`. Each error says whether
retrying the same call later can help (`retryable`), the way vm-operator's errors say whether to
requeue. Messages carry vCenter's own text, never credentials: `translate` blanks out any secret
it is given, as a second line of defence.
"""

# The names are vSphere's own words (VCenterUnreachable is also a condition reason), not *Error.
# ruff: noqa: N818

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from pyVmomi import vim, vmodl


class VSphereError(Exception):
    """Base of all adapter errors. `fault` is vSphere's fault name (e.g. `HostConfigFault`)."""

    retryable: bool = False

    def __init__(self, message: str, *, fault: str = "", retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fault = fault
        if retryable is not None:
            self.retryable = retryable


class VCenterUnreachable(VSphereError):
    """No answer from vCenter: refused, reset, timed out, DNS, HTTP 5xx without a SOAP fault."""

    retryable = True


class TLSVerificationFailed(VSphereError):
    """The server certificate does not chain to the CA bundle or does not match the thumbprint.

    Not retryable: a human must fix the Secret (or the vCenter certificate).
    """


class NotAuthenticated(VSphereError):
    """The session is not logged in (vim.fault.NotAuthenticated)."""

    retryable = True


class SessionExpired(NotAuthenticated):
    """The session was logged in and vCenter dropped it; one re-login fixes it."""


class InvalidCredentials(VSphereError):
    """vim.fault.InvalidLogin: wrong user name or password. Needs a human."""


class NotPermitted(VSphereError):
    """vim.fault.NoPermission / vmodl.fault.SecurityError: the account lacks a privilege."""


class ObjectNotFound(VSphereError):
    """vmodl.fault.ManagedObjectNotFound / vim.fault.NotFound: the object is gone."""


class InvalidPowerState(VSphereError):
    """vim.fault.InvalidPowerState: the VM is in the wrong power state for the call."""

    retryable = True


class InvalidState(VSphereError):
    """vim.fault.InvalidState and kin: the object is busy or in a state that may change."""

    retryable = True


class ConcurrentModification(VSphereError):
    """vim.fault.ConcurrentAccess: `changeVersion` did not match, someone else edited first.

    Retryable: re-read the object and plan again (vSphere API reference, VirtualMachineConfigSpec
    .changeVersion).
    """

    retryable = True


class HostConfigFault(VSphereError):
    """vim.fault.HostConfigFault, e.g. from UpdatePassthruConfig: the host refused the change."""


class HostUnreachable(VSphereError):
    """vmodl.fault.HostCommunication: vCenter can't reach the ESXi host right now."""

    retryable = True


class InvalidRequest(VSphereError):
    """vmodl.fault.InvalidArgument / NotSupported / InvalidRequest: the call itself is wrong."""


class TaskFailed(VSphereError):
    """A task ended in `error`; `retryable` follows the task's own fault."""

    def __init__(self, message: str, *, fault: str = "", retryable: bool = False) -> None:
        super().__init__(message, fault=fault, retryable=retryable)


class TaskTimedOut(VSphereError):
    """We stopped waiting for a task that is still queued or running; it may yet finish."""

    retryable = True


# First match wins, so subclasses come before their bases (NotAuthenticated is a NoPermission,
# InvalidPowerState an InvalidState, HostNotConnected a HostCommunication; pyVmomi type info).
FAULT_TABLE: tuple[tuple[type[BaseException], type[VSphereError]], ...] = (
    (vim.fault.NotAuthenticated, NotAuthenticated),
    (vim.fault.InvalidLogin, InvalidCredentials),
    (vim.fault.NoPermission, NotPermitted),
    (vmodl.fault.SecurityError, NotPermitted),
    (vmodl.fault.ManagedObjectNotFound, ObjectNotFound),
    (vim.fault.NotFound, ObjectNotFound),
    (vim.fault.InvalidPowerState, InvalidPowerState),
    (vim.fault.ConcurrentAccess, ConcurrentModification),
    (vim.fault.HostConfigFault, HostConfigFault),
    (vmodl.fault.HostCommunication, HostUnreachable),
    (vim.fault.InvalidState, InvalidState),
    (vim.fault.TaskInProgress, InvalidState),
    (vim.fault.Timedout, VCenterUnreachable),
    (vmodl.fault.RequestCanceled, VCenterUnreachable),
    (vmodl.fault.InvalidArgument, InvalidRequest),
    (vmodl.fault.NotSupported, InvalidRequest),
    (vmodl.fault.InvalidRequest, InvalidRequest),
)


def fault_name(err: BaseException) -> str:
    """vSphere's WSDL name of a fault (`HostConfigFault`), or the Python class name."""
    return str(getattr(type(err), "_wsdlName", type(err).__name__))


def fault_message(err: BaseException) -> str:
    """The human text of a fault: `msg`, else its localizable messages, else its name."""
    text = getattr(err, "msg", None)
    if not text:
        parts = [getattr(m, "message", "") for m in getattr(err, "faultMessage", None) or ()]
        text = "; ".join(p for p in parts if p)
    if not text and not isinstance(err, vmodl.MethodFault):
        text = str(err)
    return str(text or fault_name(err))


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _socket_error(err: BaseException) -> type[VSphereError] | None:
    # SSLCertVerificationError is an OSError: test it first. A plain SSLError (handshake reset,
    # protocol mismatch) says nothing about trust, so it counts as unreachable.
    if isinstance(err, ssl.SSLCertVerificationError):
        return TLSVerificationFailed
    if isinstance(err, OSError | socket.timeout | http.client.HTTPException | EOFError):
        return VCenterUnreachable
    return None


def translate(err: BaseException, *, secrets: Iterable[str] = ()) -> VSphereError:
    """The adapter error for `err` (an already translated error is returned as it is)."""
    if isinstance(err, VSphereError):
        return err
    name = fault_name(err)
    message = _redact(f"{name}: {fault_message(err)}", secrets)
    for fault_type, error_type in FAULT_TABLE:
        if isinstance(err, fault_type):
            return error_type(message, fault=name)
    socket_error = _socket_error(err)
    if socket_error is not None:
        return socket_error(message, fault=name)
    # Any other vSphere fault (SystemError, RuntimeFault, ...): vCenter may recover; an unknown
    # Python error is a bug and not worth retrying in a loop.
    return VSphereError(message, fault=name, retryable=isinstance(err, vmodl.RuntimeFault))


@contextmanager
def translated(*, secrets: Iterable[str] = ()) -> Iterator[None]:
    """`with translated(): ...` raises the adapter error `from` the original one."""
    try:
        yield
    except VSphereError:
        raise
    except Exception as err:
        raise translate(err, secrets=secrets) from err
