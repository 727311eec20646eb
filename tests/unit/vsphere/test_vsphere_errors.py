"""Fault translation table: each pyVmomi fault or socket error -> one typed, retry-aware error."""

from __future__ import annotations

import http.client
import socket
import ssl

import pytest
from pyVmomi import vim, vmodl

from dpio.vsphere import errors
from dpio.vsphere.credentials import ThumbprintMismatch


@pytest.mark.parametrize(
    ("raised", "expected", "retryable"),
    [
        (vim.fault.NotAuthenticated(msg="session gone"), errors.NotAuthenticated, True),
        (vim.fault.InvalidLogin(msg="bad login"), errors.InvalidCredentials, False),
        (vim.fault.NoPermission(msg="no"), errors.NotPermitted, False),
        (vmodl.fault.SecurityError(msg="no"), errors.NotPermitted, False),
        (vmodl.fault.ManagedObjectNotFound(msg="gone"), errors.ObjectNotFound, False),
        (vim.fault.NotFound(msg="gone"), errors.ObjectNotFound, False),
        (vim.fault.InvalidPowerState(msg="on"), errors.InvalidPowerState, True),
        (vim.fault.ConcurrentAccess(msg="changeVersion"), errors.ConcurrentModification, True),
        (vim.fault.HostConfigFault(msg="refused"), errors.HostConfigFault, False),
        (vim.fault.PlatformConfigFault(text="x"), errors.HostConfigFault, False),
        (vmodl.fault.HostNotConnected(msg="down"), errors.HostUnreachable, True),
        (vim.fault.InvalidHostState(msg="mm"), errors.InvalidState, True),
        (vim.fault.TaskInProgress(msg="busy"), errors.InvalidState, True),
        (vim.fault.Timedout(msg="slow"), errors.VCenterUnreachable, True),
        (vmodl.fault.InvalidArgument(msg="bad"), errors.InvalidRequest, False),
        (vmodl.fault.NotSupported(msg="no"), errors.InvalidRequest, False),
        (vmodl.fault.SystemError(msg="vpxd"), errors.VSphereError, True),
        (vim.fault.VimFault(msg="other"), errors.VSphereError, False),
        (ConnectionRefusedError(111, "Connection refused"), errors.VCenterUnreachable, True),
        (ConnectionResetError(104, "reset"), errors.VCenterUnreachable, True),
        (TimeoutError("timed out"), errors.VCenterUnreachable, True),
        (socket.gaierror(-2, "Name or service not known"), errors.VCenterUnreachable, True),
        (http.client.RemoteDisconnected("closed"), errors.VCenterUnreachable, True),
        (http.client.HTTPException("503 Service Unavailable"), errors.VCenterUnreachable, True),
        (ssl.SSLCertVerificationError(1, "unknown ca"), errors.TLSVerificationFailed, False),
        (ThumbprintMismatch("fingerprint differs"), errors.TLSVerificationFailed, False),
        (ssl.SSLError(1, "handshake reset"), errors.VCenterUnreachable, True),
        (ValueError("a bug"), errors.VSphereError, False),
    ],
)
def test_translate(
    raised: BaseException, expected: type[errors.VSphereError], retryable: bool
) -> None:
    err = errors.translate(raised)
    assert type(err) is expected
    assert err.retryable is retryable


def test_translated_chains_the_cause_and_keeps_the_fault_name() -> None:
    fault = vim.fault.HostConfigFault(msg="Device 0000:3b:00.0 was not found")
    with pytest.raises(errors.HostConfigFault) as info, errors.translated():
        raise fault
    assert info.value.__cause__ is fault
    assert info.value.fault == "HostConfigFault"
    assert "Device 0000:3b:00.0 was not found" in str(info.value)


def test_translated_passes_adapter_errors_through() -> None:
    original = errors.SessionExpired("expired")
    with pytest.raises(errors.SessionExpired) as info, errors.translated():
        raise original
    assert info.value is original


@pytest.mark.parametrize(
    "raised",
    [
        vim.fault.InvalidLogin(msg="login failed for hunter2"),
        ConnectionRefusedError(111, "cannot reach user:hunter2@vc"),
    ],
)
def test_secrets_are_redacted(raised: BaseException) -> None:
    err = errors.translate(raised, secrets=["hunter2", ""])
    assert "hunter2" not in str(err)
    assert "***" in str(err)


def test_fault_message_falls_back_to_localizable_messages() -> None:
    fault = vim.fault.HostConfigFault(
        faultMessage=[vmodl.LocalizableMessage(key="k", message="IOMMU is off")]
    )
    assert errors.fault_message(fault) == "IOMMU is off"
    assert errors.fault_message(vim.fault.HostConfigFault()) == "HostConfigFault"


def test_task_failed_retryable_is_explicit() -> None:
    assert errors.TaskFailed("x", retryable=True).retryable is True
    assert errors.TaskFailed("x").retryable is False
    assert issubclass(errors.SessionExpired, errors.NotAuthenticated)
