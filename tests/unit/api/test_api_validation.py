"""Bad input is refused by the models with the message the API server gives (samples.BAD)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from tests.unit.api.samples import (
    BAD,
    PLANNER_ONLY,
    Bad,
    assignment_spec,
    consumer,
    policy_spec,
)

from dpio.api import (
    Condition,
    DeviceSelector,
    HostPassthroughPolicySpec,
    VMDeviceAssignmentSpec,
)

SPECS: dict[str, type[HostPassthroughPolicySpec] | type[VMDeviceAssignmentSpec]] = {
    "HostPassthroughPolicy": HostPassthroughPolicySpec,
    "VMDeviceAssignment": VMDeviceAssignmentSpec,
}


@pytest.mark.parametrize("case", BAD, ids=lambda case: case.id)
def test_bad_spec_is_refused_with_a_readable_message(case: Bad) -> None:
    with pytest.raises(ValidationError) as refused:
        SPECS[case.kind].model_validate(case.spec)

    assert case.message in str(refused.value)


@pytest.mark.parametrize("case", PLANNER_ONLY, ids=lambda case: case.id)
def test_a_pattern_re2_refuses_is_read_as_the_api_server_admitted_it(case: Bad) -> None:
    # Refused here, the object would be skipped unread: no InvalidSpec status, and on delete
    # a finalizer nobody removes. The planner refuses it instead (test_planner_patterns.py).
    parsed = SPECS[case.kind].model_validate(case.spec)

    assert parsed.model_dump(by_alias=True, exclude_unset=True) == case.spec


@pytest.mark.parametrize(
    "selector",
    [
        {"address": "0000:3B:00.0"},
        {"address": "0000:3b:1f.7"},
        {"vendorID": "10DE", "deviceID": "20b5"},
        {"vendorID": "8086", "deviceID": "1572", "hardwareLabel": "x710"},
        {"namePattern": "^Tesla T4$"},
    ],
)
def test_each_kind_of_device_selector_is_accepted(selector: dict[str, Any]) -> None:
    assert DeviceSelector.model_validate(selector).model_dump(by_alias=True, exclude_none=True) == (
        selector
    )


@pytest.mark.parametrize(
    "spec",
    [
        policy_spec(hosts={"clusters": ["GPU-Cluster"]}),
        policy_spec(hosts={"namePattern": "^esx-gpu-"}, devices=None),
        policy_spec(reboot={"policy": "Rolling", "maxUnavailable": 3, "drainTimeout": "1h30m"}),
        policy_spec(consumers=[{"namespaceSelector": {}, "vms": {"folders": ["/DC1/vm"]}}]),
        policy_spec(
            consumers=[
                consumer(),
                consumer(
                    namespaces=["web"],
                    vms={"resourcePools": ["/DC1/host/Web-Cluster/Resources/web"]},
                    maxDevices=0,
                ),
            ]
        ),
    ],
)
def test_good_policy_specs_are_accepted(spec: dict[str, Any]) -> None:
    parsed = HostPassthroughPolicySpec.model_validate(spec)

    assert parsed.model_dump(by_alias=True, exclude_unset=True) == spec


@pytest.mark.parametrize(
    "spec",
    [
        assignment_spec(vm={"instanceUUID": "42A1B2C3-0000-4000-8000-00000000000A"}),
        assignment_spec(devices=None, networkDirectPath=[{"adapter": "Network adapter 1"}]),
        assignment_spec(devices=[{"name": f"d{i}", "dynamic": {"vendorID": "10de",
                                                                  "deviceID": "20b5"}}
                                 for i in range(128)]),
        assignment_spec(devices=[{"name": f"d{i}", "pci": {"address": f"0000:{i:02x}:00.0"}}
                                 for i in range(128)]),
        assignment_spec(policyRef={"name": "gpu-hosts.team-a"}),
        assignment_spec(devices=[{"name": "gpu0", "dynamic": {
            "vendorID": "10de", "deviceID": "20b5", "label": "a" * 64}}]),
        assignment_spec(powerPolicy="ShutdownGuest", shutdownTimeout="24h"),
        assignment_spec(powerPolicy="ShutdownGuest", shutdownTimeout="0s"),
    ],
    ids=["by-uuid", "gen2-only", "128-devices", "128-addresses", "dotted-policy-name",
         "label-64", "shutdown-timeout-a-day", "shutdown-timeout-none"],
)  # fmt: skip
def test_good_assignment_specs_are_accepted(spec: dict[str, Any]) -> None:
    parsed = VMDeviceAssignmentSpec.model_validate(spec)

    assert parsed.model_dump(by_alias=True, exclude_unset=True) == spec


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "Not a type"}, "should match pattern"),
        ({"reason": "not camel case"}, "should match pattern"),
        ({"reason": ""}, "at least 1 character"),
        ({"status": "Yes"}, "'True', 'False' or 'Unknown'"),
        ({"lastTransitionTime": "2025-01-02T03:04:05"}, "timezone"),
        ({"observedGeneration": -1}, "greater than or equal to 0"),
    ],
)
def test_condition_refuses_what_metav1_condition_refuses(
    change: dict[str, Any], message: str
) -> None:
    good = {
        "type": "Ready",
        "status": "True",
        "reason": "Ready",
        "message": "",
        "lastTransitionTime": "2025-01-02T03:04:05Z",
    }

    with pytest.raises(ValidationError) as refused:
        Condition.model_validate({**good, **change})

    assert message in str(refused.value)


def test_unknown_spec_field_is_a_typo_not_silently_dropped() -> None:
    with pytest.raises(ValidationError, match="exclusve"):
        HostPassthroughPolicySpec.model_validate(policy_spec(exclusve=True))
