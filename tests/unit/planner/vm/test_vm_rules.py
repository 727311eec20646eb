"""The VM-side rules of docs/design.md: consumers, policy coverage, availability, claims, limit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.unit.planner.vm.builders import (
    GPU,
    NOW,
    NS,
    assignment,
    attached,
    converged_vm,
    observe,
    plan,
    policy,
    row,
    vm,
)

from dpio.api.conditions import (
    CLAIMED_BY_ASSIGNMENT,
    HOST_NOT_IN_POLICY,
    IN_USE_BY_VM,
    NOT_ENABLED,
    NOT_FOUND,
    NOT_IN_POLICY,
    PENDING_HOST_REBOOT,
    POLICY_NOT_FOUND,
    TOO_MANY_DEVICES,
)
from dpio.api.policy import DeviceState
from dpio.planner.vm.observed import AssignmentClaim, ConfigTarget, ObservedCluster, PolicyView
from dpio.planner.vm.rules import passthrough_limit

NO_TARGET = ConfigTarget()


def test_missing_policy_is_forbidden_and_changes_nothing() -> None:
    result = plan(observe(policy=None))
    assert result.outcome.forbidden is not None
    assert result.outcome.forbidden.reason == POLICY_NOT_FOUND
    assert result.empty


@pytest.mark.parametrize(
    ("policy_fields", "rows", "target", "reason"),
    [
        # Device not among the policy's selectors and not in its status.
        ({"devices": [{"address": "0000:18:00.0"}]}, (), None, NOT_IN_POLICY),
        # Selected by address but not yet active: says why from the policy's status row.
        (
            {"devices": [{"address": GPU}]},
            (row(state=DeviceState.PENDING_REBOOT),),
            NO_TARGET,
            PENDING_HOST_REBOOT,
        ),
        (
            {"devices": [{"address": GPU}]},
            (row(state=DeviceState.DISABLED),),
            NO_TARGET,
            NOT_ENABLED,
        ),
        (
            {"devices": [{"address": GPU}]},
            (row(state=DeviceState.NOT_FOUND),),
            NO_TARGET,
            NOT_FOUND,
        ),
        ({"devices": [{"address": GPU}]}, (), NO_TARGET, NOT_FOUND),
        # Selected by cluster.
        ({"hosts": {"clusters": ["gpu"]}}, (row(),), None, None),
    ],
)
def test_static_device_rules(
    policy_fields: dict[str, Any],
    rows: tuple[Any, ...],
    target: ConfigTarget | None,
    reason: str | None,
) -> None:
    view = PolicyView("gpu-hosts", policy(**policy_fields), rows)
    extra = {"config_target": target} if target is not None else {}
    the_vm = vm(cluster=ObservedCluster("gpu", "domain-c1"))
    result = plan(observe(the_vm, policy=view, **extra))
    reasons = [c.problem.reason for c in result.outcome.unavailable]
    assert reasons == ([reason] if reason else [])
    if reason is not None:
        assert result.calls.reconfigure is None
    if reason == NOT_IN_POLICY:
        assert result.outcome.stalled is not None


@pytest.mark.parametrize(
    ("policy_fields", "forbidden", "unavailable"),
    [
        pytest.param({"hosts": {"names": [], "namePattern": "esx(?=01)"}}, HOST_NOT_IN_POLICY,
                     [], id="host-pattern-lookahead"),
        pytest.param({"devices": [{"namePattern": r"(A100).*\1"}]}, None, [NOT_IN_POLICY],
                     id="device-pattern-backreference"),
    ],
)  # fmt: skip
def test_a_policy_whose_pattern_re2_refuses_offers_nothing_and_takes_nothing_back(
    policy_fields: dict[str, Any], forbidden: str | None, unavailable: list[str]
) -> None:
    # The policy is Stalled (InvalidSpec); its status from before still lists the GPU.
    view = PolicyView("gpu-hosts", policy(**policy_fields), (row(),))

    wanted = plan(observe(vm(), policy=view))
    assert (wanted.outcome.forbidden.reason if wanted.outcome.forbidden else None) == forbidden
    assert [c.problem.reason for c in wanted.outcome.unavailable] == unavailable
    assert wanted.calls.reconfigure is None  # the GPU is not attached

    holding = plan(observe(converged_vm(), policy=view))
    assert holding.calls.reconfigure is None  # the GPU it has stays


@pytest.mark.parametrize(
    ("spec", "policy_fields"),
    [
        pytest.param(None, {"devices": [{"address": GPU}]}, id="static"),
        pytest.param(
            assignment(devices=[{"name": "g", "dynamic": {"vendorID": "10de",
                                                         "deviceID": "20b5"}}]),
            {}, id="dynamic",
        ),
    ],
)  # fmt: skip
def test_a_device_the_policy_has_not_reported_on_waits_instead_of_stalling(
    spec: Any, policy_fields: dict[str, Any]
) -> None:
    """Applied with (or right after) its policy, an assignment finds no status row for its
    device: not known to be absent. It waits (NotEnabled) rather than stall as NotFound, which
    would fail a Flux or Argo CD run; once the policy has reported, absent means NotFound."""
    waiting = PolicyView("gpu-hosts", policy(**policy_fields), (), host_reported=False)
    result = plan(observe(policy=waiting, config_target=NO_TARGET), spec)
    (check,) = result.outcome.unavailable
    assert check.problem.reason == NOT_ENABLED
    assert "to report on the host" in check.problem.message
    assert result.outcome.stalled is None

    reported = PolicyView("gpu-hosts", policy(**policy_fields), (), host_reported=True)
    result = plan(observe(policy=reported, config_target=NO_TARGET), spec)
    assert [c.problem.reason for c in result.outcome.unavailable] == [NOT_FOUND]


def test_dynamic_device_needs_label_offered() -> None:
    spec = assignment(
        devices=[{"name": "g", "dynamic": {"vendorID": "10de", "deviceID": "20b5", "label": "t4"}}]
    )
    result = plan(observe(), spec)
    assert [c.problem.reason for c in result.outcome.unavailable] == [NOT_IN_POLICY]
    ok = assignment(
        devices=[
            {"name": "g", "dynamic": {"vendorID": "10de", "deviceID": "20b5", "label": "a100"}}
        ]
    )
    result = plan(observe(), ok)
    assert result.outcome.unavailable == ()
    assert result.calls.reconfigure is not None
    assert result.calls.reconfigure.adds[0].backing.allowed_devices == ((0x10DE, 0x20B5),)  # type: ignore[union-attr]


def test_device_attached_to_another_vm_is_in_use() -> None:
    result = plan(observe(attached_to_vms={GPU.upper(): ("other-vm",)}))
    assert [c.problem.reason for c in result.outcome.unavailable] == [IN_USE_BY_VM]
    assert result.calls.reconfigure is None


def _claim(name: str, days_ago: int, namespace: str = NS) -> AssignmentClaim:
    return AssignmentClaim(namespace, name, NOW - timedelta(days=days_ago), "esx01", (GPU,))


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(
    ("claims", "winner"),
    [
        ((_claim("older", 5), _claim("oldest", 9)), "(oldest)"),
        # Same creationTimestamp: namespace/name decides, whatever the input order.
        ((_claim("b", 5), _claim("a", 5), _claim("c", 5)), "(a)"),
        # Another tenant's claim wins the same way, but is not named.
        ((_claim("b", 5), _claim("z", 5, "aa")), "(in another namespace)"),
        ((_claim("newer", 0),), None),  # a newer claim does not beat us (we are 1 day old)
    ],
)
def test_claimed_by_older_assignment_is_deterministic(
    claims: tuple[AssignmentClaim, ...], winner: str | None, reverse: bool
) -> None:
    ordered = tuple(reversed(claims)) if reverse else claims
    result = plan(observe(claims=ordered))
    if winner is None:
        assert result.outcome.unavailable == ()
        return
    (check,) = result.outcome.unavailable
    assert check.problem.reason == CLAIMED_BY_ASSIGNMENT
    assert winner in check.problem.message
    assert "aa/" not in check.problem.message
    assert " z" not in check.problem.message


def test_attached_device_is_not_rechecked() -> None:
    result = plan(
        observe(converged_vm(), attached_to_vms={GPU: ("other-vm",)}, claims=(_claim("o", 9),))
    )
    assert result.outcome.unavailable == ()
    assert result.empty


@pytest.mark.parametrize(
    ("from_option", "version", "limit"),
    [
        (None, "4.0.0", 2),
        (None, "5.5.0", 6),
        (None, "6.7.0", 16),
        (None, "7.0.3", 16),
        (None, "8.0.0", 32),
        (None, "8.0.1", 64),
        (None, "8.0.2", 128),
        (None, "8.0.3", 128),
        (None, "", 2),
        (24, "8.0.2", 24),  # QueryConfigOption wins over the table
        (0, "8.0.0", 32),
    ],
)
def test_passthrough_limit(from_option: int | None, version: str, limit: int) -> None:
    assert passthrough_limit(from_option, version) == limit


def test_too_many_devices_stalls() -> None:
    the_vm = vm(
        host_version="4.0.0",
        pci_devices=(attached(13000, "0000:01:00.0"), attached(13001, "0000:02:00.0")),
    )
    result = plan(observe(the_vm))
    assert result.outcome.stalled is not None
    assert result.outcome.stalled.reason == TOO_MANY_DEVICES
    assert result.empty
