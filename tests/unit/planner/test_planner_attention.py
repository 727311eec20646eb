"""Every reason is classified (needs a human / waits / never blocks), the classification drives
Stalled, the docs show the same table, and Stalled clears once the human has acted."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.unit.planner import builders as hpp
from tests.unit.planner.vm import builders as vmda

from dpio.api import conditions as api
from dpio.api.assignment import VMDeviceAssignmentStatus
from dpio.api.conditions import READY, RECONCILING, STALLED, ConditionStatus
from dpio.api.docs import condition_groups
from dpio.api.policy import DeviceState, HostPassthroughPolicyStatus, RebootPolicy
from dpio.planner.attention import INFORMATIONAL, NEEDS_A_HUMAN, WAITING, awaited, needs_a_human
from dpio.planner.conditions import Problem, find, kstatus_wants
from dpio.planner.host.plan import plan_policy
from dpio.planner.host.status import policy_status
from dpio.planner.observed import ObservedHost, ObservedInventory
from dpio.planner.vm.observed import ConfigTarget, PolicyView, VMObservation
from dpio.planner.vm.status import assignment_status

ROOT = Path(__file__).resolve().parents[3]
T, F = ConditionStatus.TRUE, ConditionStatus.FALSE


def declared_reasons() -> set[str]:
    """Every reason dpio.api.conditions spells: its string constants but the condition types
    (grouped by the module's own comments, as docs/api.md lists them)."""
    reasons = {
        value
        for group in condition_groups()
        if not group.heading.startswith("Condition types")
        for _, value, _ in group.constants
    }
    # A type whose own comment line starts a group of its own there.
    return reasons - {api.INSECURE_CONNECTION}


def test_every_reason_is_classified_exactly_once() -> None:
    tables = [set(NEEDS_A_HUMAN), set(WAITING), set(INFORMATIONAL)]
    assert set.union(*tables) == declared_reasons()
    assert sum(len(t) for t in tables) == len(set.union(*tables)), "a reason in two tables"


@pytest.mark.parametrize("reason", sorted(NEEDS_A_HUMAN))
def test_a_reason_that_needs_a_human_stalls(reason: str) -> None:
    wants = {w.type: w for w in kstatus_wants(stalled=None, progressing=None,
                                              not_ready=Problem(reason, "why"))}  # fmt: skip
    assert (wants[STALLED].status, wants[STALLED].reason, wants[STALLED].message) == (
        T, reason, "why")  # fmt: skip
    assert (wants[READY].status, wants[READY].reason) == (F, reason)
    assert wants[RECONCILING].status is F  # kstatus: never both True


@pytest.mark.parametrize("reason", sorted(WAITING))
def test_a_waiting_reason_says_what_it_waits_for(reason: str) -> None:
    wants = {w.type: w for w in kstatus_wants(stalled=None, progressing=None,
                                              not_ready=Problem(reason, "why"))}  # fmt: skip
    assert wants[STALLED].status is F
    assert (wants[READY].status, wants[READY].reason) == (F, reason)
    assert wants[RECONCILING].message == awaited(reason) == f"Waiting for {WAITING[reason]}"


def test_work_under_way_is_never_stalled() -> None:
    """A human-needing problem next to changes in flight: Reconciling first, Stalled after."""
    in_use = Problem(api.DEVICE_IN_USE, "m")
    wants = {w.type: w for w in kstatus_wants(stalled=None, progressing="Up", not_ready=in_use)}
    assert (wants[RECONCILING].status, wants[STALLED].status) == (T, F)


def test_an_unknown_reason_waits() -> None:
    assert not needs_a_human("SomethingNew")
    assert awaited("SomethingNew") == "Nothing to do until the situation changes"


# The same table in docs/observability.md ("Who acts next"): reason -> kstatus.

DOC = (ROOT / "docs/observability.md").read_text()
ROW = re.compile(r"^\| `(?P<reason>[A-Za-z0-9]+)` \|(?P<rest>.*)\|$", re.MULTILINE)


def table() -> dict[str, list[str]]:
    """The rows of "Who acts next": reason -> [kstatus, Argo CD, who acts next]."""
    section = DOC[DOC.index("### Who acts next") :]
    section = section[: section.index("\n## ", 1) if "\n## " in section else len(section)]
    return {m["reason"]: [c.strip() for c in m["rest"].split("|")] for m in ROW.finditer(section)}


def documented() -> dict[str, str]:
    return {reason: cells[0] for reason, cells in table().items()}


def test_the_docs_table_says_what_the_code_says_of_each_reason() -> None:
    rows = table()
    for reason, what in NEEDS_A_HUMAN.items():
        assert rows[reason][2] == f"a human: {what}", reason
    for reason, what in WAITING.items():
        assert rows[reason][2].startswith(f"waits for {what}"), reason
    for reason, what in INFORMATIONAL.items():
        assert rows[reason][2] == f"never makes Ready False: {what}", reason


def test_the_docs_table_lists_every_reason_with_its_kstatus() -> None:
    expected = dict.fromkeys(NEEDS_A_HUMAN, "Failed")
    expected |= dict.fromkeys(WAITING, "InProgress")
    expected |= dict.fromkeys(INFORMATIONAL, "\N{EN DASH}")  # never Ready=False
    assert documented() == expected


# Stalled clears on the first reconcile after the human has acted: conditions are recomputed
# whole from what is observed, the previous Stalled=True included.


def policy_of(host: ObservedHost, previous: HostPassthroughPolicyStatus | None
              ) -> HostPassthroughPolicyStatus:  # fmt: skip
    spec = hpp.spec(hosts={"names": [host.name]}, reboot={"policy": "Manual"})
    plan = plan_policy(name="gpu-hosts", creation_timestamp=hpp.NOW, spec=spec,
                       inventory=ObservedInventory(hosts=(host,)), now=hpp.NOW,
                       previous=previous)  # fmt: skip
    return policy_status(plan, reboot_policy=RebootPolicy.MANUAL, previous=previous,
                         generation=1, now=hpp.NOW)  # fmt: skip


def test_device_in_use_stalls_and_clears_once_the_host_lets_it_go() -> None:
    in_use = hpp.host("esx01", (hpp.dev(hpp.GPU),), (hpp.info(hpp.GPU),),
                      in_use_by_host={hpp.GPU: "vmnic4 carries vmk1"})  # fmt: skip
    stalled = policy_of(in_use, None)
    assert (find(stalled.conditions, STALLED).status, find(stalled.conditions, STALLED).reason) \
        == (T, api.DEVICE_IN_USE)  # type: ignore[union-attr]  # fmt: skip
    freed = policy_of(hpp.gpu_host(), stalled)  # the admin moved vmk1 off the NIC
    assert find(freed.conditions, STALLED).status is F  # type: ignore[union-attr]
    assert find(freed.conditions, RECONCILING).status is T  # type: ignore[union-attr]
    done = policy_of(hpp.gpu_host(enabled=True, active=True), freed)
    assert find(done.conditions, READY).status is T  # type: ignore[union-attr]
    assert find(done.conditions, STALLED).status is F  # type: ignore[union-attr]


def assignment_of(observed: VMObservation, previous: VMDeviceAssignmentStatus | None
                  ) -> VMDeviceAssignmentStatus:  # fmt: skip
    return assignment_status(vmda.plan(observed, previous=previous), previous=previous,
                             generation=1, now=vmda.NOW)  # fmt: skip


@pytest.mark.parametrize(
    ("blocked", "reason"),
    [
        pytest.param(vmda.observe(vmda.vm(snapshot_count=2)), api.SNAPSHOTS, id="snapshots"),
        pytest.param(vmda.observe(attached_to_vms={vmda.GPU: ("other-vm",)}), api.IN_USE_BY_VM,
                     id="in-use-by-vm"),
    ],
)  # fmt: skip
def test_an_assignment_stalls_and_clears_once_the_obstacle_is_gone(
    blocked: VMObservation, reason: str
) -> None:
    stalled = assignment_of(blocked, None)
    condition = find(stalled.conditions, STALLED)
    assert condition is not None
    assert (condition.status, condition.reason) == (T, reason)
    assert find(stalled.conditions, RECONCILING).status is F  # type: ignore[union-attr]
    cleared = assignment_of(vmda.observe(), stalled)  # snapshots deleted / device detached
    assert find(cleared.conditions, STALLED).status is F  # type: ignore[union-attr]
    assert find(cleared.conditions, RECONCILING).status is T  # type: ignore[union-attr]
    done = assignment_of(vmda.observe(vmda.converged_vm()), cleared)
    assert find(done.conditions, READY).status is T  # type: ignore[union-attr]
    assert find(done.conditions, STALLED).status is F  # type: ignore[union-attr]


def test_a_waiting_device_does_not_hide_one_that_needs_a_human() -> None:
    """Two devices: one waits for its host's reboot, the other is on another VM. The second
    decides: waiting would never end on its own."""
    spec = vmda.assignment(devices=[{"name": "gpu0", "pci": {"address": vmda.GPU}},
                                    {"name": "gpu1", "pci": {"address": vmda.GPU2}}])  # fmt: skip
    rows = (vmda.row(vmda.GPU, DeviceState.PENDING_REBOOT), vmda.row(vmda.GPU2))
    observed = vmda.observe(
        policy=PolicyView("gpu-hosts", vmda.policy(), rows),
        attached_to_vms={vmda.GPU2: ("other-vm",)},
        config_target=ConfigTarget(pci_passthrough=(vmda.target_pci(vmda.GPU2),)),
    )
    status = assignment_status(vmda.plan(observed, spec), previous=None, generation=1,
                               now=vmda.NOW)  # fmt: skip
    stalled = find(status.conditions, STALLED)
    assert stalled is not None
    assert (stalled.status, stalled.reason) == (T, api.IN_USE_BY_VM)
    assert "gpu0" in stalled.message
    assert "gpu1" in stalled.message
