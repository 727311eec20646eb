"""Python names are snake_case; the wire names are docs/api.md's, including ID/UUID spellings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from tests.unit.api.samples import ASSIGNMENT, POLICY

from dpio.api import (
    Condition,
    ConditionStatus,
    HostPassthroughPolicy,
    VMDeviceAssignment,
)

CEST = timezone(timedelta(hours=2))


def keys(value: Any) -> set[str]:
    """Every mapping key anywhere in a JSON-like value."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys(v)}
    return set()


@pytest.mark.parametrize(
    ("model", "body"),
    [(HostPassthroughPolicy, POLICY), (VMDeviceAssignment, ASSIGNMENT)],
    ids=["hpp", "vmda"],
)
def test_dump_by_alias_gives_back_the_wire_object(
    model: type[HostPassthroughPolicy] | type[VMDeviceAssignment], body: dict[str, Any]
) -> None:
    dumped = model.model_validate(body).model_dump(by_alias=True, exclude_unset=True, mode="json")

    assert (dumped["apiVersion"], dumped["kind"]) == (body["apiVersion"], body["kind"])
    assert dumped["spec"] == body["spec"]
    assert dumped["status"] == body["status"]
    assert "managedFields" not in dumped["metadata"]  # ignored, not kept


@pytest.mark.parametrize(
    "name",
    [
        "vendorID", "deviceID", "namePattern", "hardwareLabel", "allowDevicesInUse",
        "deletionPolicy", "maxUnavailable", "drainTimeout", "applyNow", "secretRef",
        "namespaceSelector", "observedGeneration", "passthroughSupported", "rebootRequired",
        "pendingReboot", "lastTransitionTime", "dependentDevices", "rollingReboot",
        "enteredByOperator", "resourcePools", "powerPolicies", "conflictPolicies", "maxDevices",
    ],
)  # fmt: skip
def test_policy_wire_names(name: str) -> None:
    dumped = HostPassthroughPolicy.model_validate(POLICY).model_dump(by_alias=True, mode="json")

    assert name in keys(dumped)
    assert name.lower() not in {k.lower() for k in keys(dumped) - {name}}  # no vendorId twin


@pytest.mark.parametrize(
    "name",
    [
        "policyRef", "instanceUUID", "networkDirectPath", "powerPolicy", "restorePowerState",
        "conflictPolicy", "unavailableFeatures", "featureConflicts", "memoryReservationLockedToMax",
        "cpuHotAddEnabled", "memoryHotAddEnabled", "nestedHVEnabled", "drsOverride", "dasOverride",
        "powerState", "hardwareVersion", "gen2Active", "vendorID", "deviceID", "shutdownTimeout",
    ],
)  # fmt: skip
def test_assignment_wire_names(name: str) -> None:
    # Unset optional fields are dumped as None, so every alias of the example's parts shows.
    dumped = VMDeviceAssignment.model_validate(ASSIGNMENT).model_dump(by_alias=True, mode="json")

    assert name in keys(dumped)


@pytest.mark.parametrize(
    ("moment", "wire"),
    [
        (datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), "2025-01-02T03:04:05Z"),
        (datetime(2025, 1, 2, 3, 4, 5, 999999, tzinfo=UTC), "2025-01-02T03:04:05Z"),
        (datetime(2025, 1, 2, 5, 4, 5, tzinfo=CEST), "2025-01-02T03:04:05Z"),
    ],
    ids=["utc", "sub-second", "offset"],
)
def test_times_are_written_as_metav1_time(moment: datetime, wire: str) -> None:
    condition = Condition(
        type="Ready", status=ConditionStatus.TRUE, reason="Ready", message="",
        last_transition_time=moment,
    )  # fmt: skip

    assert condition.model_dump(by_alias=True, mode="json")["lastTransitionTime"] == wire


def test_python_names_populate_the_same_model_as_wire_names() -> None:
    by_wire = HostPassthroughPolicy.model_validate(POLICY)
    by_name = HostPassthroughPolicy.model_validate(by_wire.model_dump())

    assert by_name == by_wire
