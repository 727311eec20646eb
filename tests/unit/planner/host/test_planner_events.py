"""Events of a HostPassthroughPolicy: one per transition, and the vCenter-connection statuses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.unit.planner.builders import NOW

from dpio.api.conditions import (
    DEGRADED,
    DRAIN_TIMEOUT,
    INVALID_CREDENTIALS,
    READY,
    REBOOT_REQUIRED,
    RECONCILING,
    SECRET_NOT_FOUND,
    STALLED,
    VCENTER_UNREACHABLE,
    ConditionStatus,
)
from dpio.api.policy import (
    DeviceState,
    DeviceStatus,
    HostPassthroughPolicyStatus,
    HostStatus,
    RebootPhase,
    RollingRebootStatus,
)
from dpio.planner.conditions import (
    Problem,
    Want,
    compute_conditions,
    find,
)
from dpio.planner.host.events import (
    HOST_REBOOTED,
    NORMAL,
    PASSTHROUGH_ACTIVE,
    WARNING,
    PolicyEvent,
    transition_events,
)
from dpio.planner.host.status import stalled_status, vcenter_unreachable_status

T, F, U = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN


def status(
    *wants: tuple[str, ConditionStatus, str], hosts: Any = ()
) -> HostPassthroughPolicyStatus:
    conditions = compute_conditions((), [Want(t, s, r, f"{t} {r}") for t, s, r in wants], 1, NOW)
    return HostPassthroughPolicyStatus(conditions=list(conditions), hosts=list(hosts))


def host(
    name: str, *, reboot: bool = False, phase: RebootPhase | None = None, **states: Any
) -> HostStatus:
    record = RollingRebootStatus(phase=phase, since=NOW) if phase else None
    devices = [
        DeviceStatus(
            address=address.replace("_", ":").replace("d", "."), state=state, message="why"
        )
        for address, state in states.items()
    ]
    return HostStatus(name=name, reboot_required=reboot, devices=devices, rolling_reboot=record)


ADDR = "0000_3b_00d0"  # 0000:3b:00.0 as a keyword


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        pytest.param(
            status(), status((READY, T, "Reconciled")),
            [(NORMAL, "Reconciled")], id="ready",
        ),
        pytest.param(
            status((READY, T, "Reconciled")), status((READY, T, "Reconciled")),
            [], id="steady-state-no-event",
        ),
        pytest.param(
            status(), status((READY, U, "AwaitingReconcile")), [], id="unknown-is-not-news",
        ),
        pytest.param(
            status((READY, T, "Reconciled"), (REBOOT_REQUIRED, F, "AsExpected")),
            status((READY, F, "PendingReboot"), (REBOOT_REQUIRED, T, "PendingReboot")),
            [(WARNING, "PendingReboot"), (NORMAL, "PendingReboot")], id="reboot-needed",
        ),
        pytest.param(
            status((READY, F, "PendingReboot"), (REBOOT_REQUIRED, T, "PendingReboot")),
            status((READY, F, "RollingReboot"), (REBOOT_REQUIRED, T, "RollingReboot")),
            [(NORMAL, "RollingReboot")], id="reboot-reason-changes",
        ),
        pytest.param(
            status((READY, T, "Reconciled"), (STALLED, F, "Reconciled")),
            status((READY, F, SECRET_NOT_FOUND), (STALLED, T, SECRET_NOT_FOUND),
                   (DEGRADED, T, SECRET_NOT_FOUND)),
            [(WARNING, SECRET_NOT_FOUND)], id="stalled-told-once",
        ),
        pytest.param(
            status((READY, F, SECRET_NOT_FOUND), (STALLED, T, SECRET_NOT_FOUND)),
            status((READY, F, INVALID_CREDENTIALS), (STALLED, T, INVALID_CREDENTIALS)),
            [(WARNING, INVALID_CREDENTIALS)], id="stalled-for-another-reason",
        ),
        pytest.param(
            status((READY, F, "RollingReboot"), (DEGRADED, F, "AsExpected")),
            status((READY, F, DRAIN_TIMEOUT), (DEGRADED, T, DRAIN_TIMEOUT)),
            [(WARNING, DRAIN_TIMEOUT)], id="drain-timeout",
        ),
        pytest.param(
            status((READY, F, DRAIN_TIMEOUT), (DEGRADED, T, DRAIN_TIMEOUT)),
            status((READY, F, DRAIN_TIMEOUT), (DEGRADED, T, DRAIN_TIMEOUT)),
            [], id="drain-timeout-once",
        ),
    ],
)  # fmt: skip
def test_condition_transitions_make_one_event_each(
    before: HostPassthroughPolicyStatus,
    after: HostPassthroughPolicyStatus,
    expected: list[tuple[str, str]],
) -> None:
    assert [(e.type, e.reason) for e in transition_events(before, after)] == expected


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        pytest.param(
            [host("esx1", reboot=True, phase=RebootPhase.REBOOTING)], [host("esx1")],
            [PolicyEvent(NORMAL, HOST_REBOOTED,
                         "esx1 rebooted; its passthrough changes are active")],
            id="rolling-reboot-done",
        ),
        pytest.param(
            [host("esx1", reboot=True)], [host("esx1")],
            [PolicyEvent(NORMAL, PASSTHROUGH_ACTIVE, "Every passthrough change on esx1 is active")],
            id="manual-reboot-done",
        ),
        pytest.param(
            [host("esx1", reboot=True)], [host("esx1", reboot=True)], [], id="still-pending",
        ),
        pytest.param(
            [], [host("esx1", **{ADDR: DeviceState.IN_USE_BY_HOST})],
            [PolicyEvent(WARNING, "DeviceInUse", "Refused esx1 0000:3b:00.0: why")],
            id="refused-in-use",
        ),
        pytest.param(
            [host("esx1", **{ADDR: DeviceState.IN_USE_BY_HOST})],
            [host("esx1", **{ADDR: DeviceState.IN_USE_BY_HOST})],
            [], id="refused-once",
        ),
        pytest.param(
            [], [host(name, **{ADDR: DeviceState.NOT_CAPABLE}) for name in ("esx1", "esx2")],
            [PolicyEvent(WARNING, "DeviceNotCapable",
                         "Refused esx1 0000:3b:00.0: why; esx2 0000:3b:00.0: why")],
            id="refusals-grouped",
        ),
        pytest.param(
            [], [host("esx1", **{ADDR: DeviceState.ACTIVE})], [], id="enabled-is-told-by-the-call",
        ),
    ],
)  # fmt: skip
def test_host_transitions(
    before: list[HostStatus], after: list[HostStatus], expected: list[PolicyEvent]
) -> None:
    assert list(transition_events(status(hosts=before), status(hosts=after))) == expected


def test_a_refusal_ready_already_told_is_not_told_twice() -> None:
    after = status(
        (READY, F, "DeviceInUse"), hosts=[host("esx1", **{ADDR: DeviceState.IN_USE_BY_HOST})]
    )

    found = transition_events(status(), after)

    assert [(e.type, e.reason) for e in found] == [(WARNING, "DeviceInUse")]
    assert found[0].message == "Ready DeviceInUse"  # the condition's message


def test_many_refusals_are_counted_not_listed() -> None:
    hosts = [host(f"esx{i}", **{ADDR: DeviceState.IN_USE_BY_HOST}) for i in range(8)]

    (event,) = transition_events(status(), status(hosts=hosts))

    assert event.message.endswith("; and 3 more")


PREVIOUS = status(
    (READY, F, "PendingReboot"), (REBOOT_REQUIRED, T, "PendingReboot"),
    hosts=[host("esx1", reboot=True)],
)  # fmt: skip


@pytest.mark.parametrize(
    ("make", "ready", "reconciling", "stalled"),
    [
        pytest.param(
            lambda p: stalled_status(p, Problem(SECRET_NOT_FOUND, "Secret x/y not found"), 2, NOW),
            (F, SECRET_NOT_FOUND), (F, SECRET_NOT_FOUND), (T, SECRET_NOT_FOUND), id="stalled",
        ),
        pytest.param(
            lambda p: vcenter_unreachable_status(p, "connection refused", 2, NOW),
            (F, VCENTER_UNREACHABLE), (T, "Progressing"), (F, "Progressing"), id="outage",
        ),
    ],
)  # fmt: skip
def test_connection_problems_keep_what_was_observed(
    make: Any, ready: tuple[Any, str], reconciling: tuple[Any, str], stalled: tuple[Any, str]
) -> None:
    result: HostPassthroughPolicyStatus = make(PREVIOUS)
    conditions = {c.type: (c.status, c.reason) for c in result.conditions}

    assert conditions[READY] == ready
    assert conditions[RECONCILING] == reconciling
    assert conditions[STALLED] == stalled
    assert conditions[DEGRADED] == (T, ready[1])
    assert conditions[REBOOT_REQUIRED] == (T, "PendingReboot")  # as last observed
    assert result.hosts == PREVIOUS.hosts
    assert result.observed_generation == 2


def test_a_stalled_message_names_the_secret_and_keeps_its_transition_time() -> None:
    first = stalled_status(PREVIOUS, Problem(SECRET_NOT_FOUND, "Secret ns/vc not found"), 2, NOW)
    later = stalled_status(
        first, Problem(SECRET_NOT_FOUND, "Secret ns/vc not found"), 2, NOW + timedelta(minutes=5)
    )

    stalled = find(later.conditions, STALLED)
    assert stalled is not None
    assert "Secret ns/vc" in stalled.message
    assert stalled.last_transition_time == NOW.replace(microsecond=0)
