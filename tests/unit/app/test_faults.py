"""The reasons users see for vSphere faults are pinned here: they are API (conditions, Events,
alerts), so renaming an error class must not change them, and a new error class needs a reason."""

from __future__ import annotations

import asyncio

import pytest

from dpio.app.faults import REASONS, port_error, translate_faults
from dpio.reconcile.ports import PortError
from dpio.vsphere import errors

PINNED = {
    errors.VSphereError: "VSphereError",
    errors.VCenterUnreachable: "VCenterUnreachable",
    errors.TLSVerificationFailed: "TLSVerificationFailed",
    errors.NotAuthenticated: "NotAuthenticated",
    errors.SessionExpired: "SessionExpired",
    errors.InvalidCredentials: "InvalidCredentials",
    errors.NotPermitted: "NotPermitted",
    errors.ObjectNotFound: "ObjectNotFound",
    errors.InvalidPowerState: "InvalidPowerState",
    errors.InvalidState: "InvalidState",
    errors.ConcurrentModification: "ConcurrentModification",
    errors.HostConfigFault: "HostConfigFault",
    errors.HostUnreachable: "HostUnreachable",
    errors.InvalidRequest: "InvalidRequest",
    errors.TaskFailed: "TaskFailed",
    errors.TaskTimedOut: "TaskTimedOut",
}


def _subclasses(cls: type[errors.VSphereError]) -> set[type[errors.VSphereError]]:
    direct = set(cls.__subclasses__())
    return direct.union(*(_subclasses(c) for c in direct))


@pytest.mark.parametrize(("cls", "reason"), PINNED.items(), ids=lambda v: getattr(v, "__name__", v))
def test_each_error_has_its_pinned_reason(cls: type[errors.VSphereError], reason: str) -> None:
    err = port_error(cls("vCenter said no"))
    assert (err.reason, err.message, err.retryable) == (reason, "vCenter said no", cls.retryable)


def test_every_error_class_of_the_adapter_has_a_reason() -> None:
    declared = {c for c in _subclasses(errors.VSphereError) if c.__module__ == errors.__name__}
    assert declared | {errors.VSphereError} == set(REASONS) == set(PINNED)


def test_a_renamed_or_unlisted_subclass_keeps_its_base_reason() -> None:
    class Renamed(errors.HostConfigFault):
        pass

    assert port_error(Renamed("refused")).reason == "HostConfigFault"


def test_where_names_the_secret_only_when_a_human_must_act() -> None:
    assert port_error(errors.NotPermitted("no"), "Secret ns/vc").message == "Secret ns/vc: no"
    assert port_error(errors.VCenterUnreachable("down"), "Secret ns/vc").message == "down"


def test_translate_faults_raises_a_chained_port_error_and_passes_results() -> None:
    class Adapter:
        @translate_faults
        async def fails(self) -> None:
            raise errors.TaskFailed("task error", retryable=True)

        @translate_faults
        async def works(self, value: int) -> int:
            return value + 1

    with pytest.raises(PortError) as info:
        asyncio.run(Adapter().fails())
    assert (info.value.reason, info.value.retryable) == ("TaskFailed", True)
    assert isinstance(info.value.__cause__, errors.TaskFailed)
    assert asyncio.run(Adapter().works(1)) == 2
