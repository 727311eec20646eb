"""Other assignments are summarized once per watch event and indexed by host and policy
(others.py): the quadratic re-parse that took 28% of the operator's CPU with 200 assignments,
and the walk of every assignment per reconcile after it, are gone; the answers are the same."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tests.unit.planner.vm.builders import converged_vm, observe
from tests.unit.reconcile.assignment.fakes import body, policy_body

from dpio.api.policy import HostPassthroughPolicy
from dpio.api.policy_status import HostStatus
from dpio.reconcile.assignment import inputs, others
from dpio.reconcile.assignment.others import AssignmentIndex, ObjectKey
from dpio.reconcile.cache import ObjectCache, key_of

ME = ObjectKey("ml-team", "trainer-gpu")


def _fleet(n: int) -> list[dict[str, Any]]:
    return [
        body(f"a{i}", status={"observedGeneration": 1, "vm": {"host": "esx01"}}) for i in range(n)
    ]


def test_each_watch_event_is_summarized_once_and_reconciles_only_read(monkeypatch: Any) -> None:
    parsed: list[str] = []
    derive = others.derive

    def counting(b: Any) -> others.Other:
        parsed.append(b["metadata"]["name"])
        return derive(b)

    monkeypatch.setattr(others, "derive", counting)
    index = AssignmentIndex()
    cache = ObjectCache(indexes=(index,))
    for b in _fleet(5):
        cache.put(b)
    for _ in range(3):  # reconciles read the index: nothing is parsed again
        index.near("esx01")
        index.of_policy("gpu-hosts")
    assert parsed == [f"a{i}" for i in range(5)]
    changed = _fleet(5)[2]
    changed["metadata"]["resourceVersion"] = "8"
    cache.put(changed)  # a new version is summarized when it arrives
    assert parsed[5:] == ["a2"]


def test_the_index_follows_the_cache_through_moves_and_deletions() -> None:
    index = AssignmentIndex()
    cache = ObjectCache(indexes=(index,))
    fleet = _fleet(3)
    for b in fleet:
        cache.put(b)
    assert [o.key.name for o in index.near("esx01")] == ["a0", "a1", "a2"]
    moved = copy.deepcopy(fleet[1])
    moved["status"]["vm"]["host"] = "esx02"  # its VM was migrated
    cache.put(moved)
    assert [o.key.name for o in index.near("esx01")] == ["a0", "a2"]
    assert [o.key.name for o in index.near("esx02")] == ["a1"]
    cache.delete(key_of(fleet[0]))
    assert [o.key.name for o in index.near("esx01")] == ["a2"]
    assert [o.key.name for o in index.of_policy("gpu-hosts")] == ["a1", "a2"]
    gone = copy.deepcopy(fleet[2])
    gone["metadata"]["deletionTimestamp"] = "2026-12-06T00:00:00Z"
    cache.put(gone)  # being deleted: no claim, no quota (its devices go with it)
    assert index.near("esx01") == []
    assert [o.key.name for o in index.of_policy("gpu-hosts")] == ["a1"]
    assert len(index) == 2
    assert len(cache) == 2


def test_claims_and_quota_are_the_same_from_the_index_and_from_a_walk() -> None:
    fleet = [*_fleet(4), body("gone", deleting=True), body("never-looked")]
    index = AssignmentIndex.of(fleet)
    labels = {"ml-team": {"team": "ml"}}.get
    for host in ("esx01", "esx02", ""):
        assert inputs.claims_of(index.near(host), ME, host) == inputs.claims(fleet, ME, host)
    assert inputs.quota_uses_of(index.of_policy("gpu-hosts"), ME, "gpu-hosts", labels) == (
        inputs.quota_uses(fleet, ME, "gpu-hosts", labels)
    )
    found, unknown = inputs.claims(fleet, ME, "esx01")
    assert [c.name for c in found] == ["a0", "a1", "a2", "a3", "never-looked"]
    assert [c.host for c in found][-1] == "esx01"  # never looked: counts on our host for now
    assert unknown is True


def test_claims_on_other_hosts_are_left_out() -> None:
    """The planner weighs only claims on the VM's host; one per assignment of the whole fleet
    was built on every reconcile before (inputs.claims_of)."""
    fleet = [*_fleet(4), body("never-looked")]
    found, unknown = inputs.claims(fleet, ME, "esx02")
    assert [(c.name, c.host) for c in found] == [("never-looked", "esx02")]
    assert unknown is True
    found, _ = inputs.claims(fleet, ME, "")  # no host of ours yet: all are kept
    assert [c.name for c in found] == ["a0", "a1", "a2", "a3", "never-looked"]


def _quota_policy(max_devices: int | None) -> HostPassthroughPolicy:
    consumer: dict[str, Any] = {"namespaces": ["ml-team"], "vms": {"folders": ["/dc1/vm/ml"]}}
    if max_devices is not None:
        consumer["maxDevices"] = max_devices
    return HostPassthroughPolicy.model_validate(
        {
            "metadata": {"name": "gpu-hosts"},
            "spec": {
                "hosts": {"names": ["esx01"]},
                "devices": [{"address": "0000:3b:00.0"}],
                "consumers": [consumer],
            },
        }
    )


def test_quota_uses_are_gathered_only_when_a_consumer_has_a_quota() -> None:
    fleet = _fleet(3)
    seen = observe(converged_vm())
    limited, _ = inputs.completed(seen, _quota_policy(5), {}.get, AssignmentIndex.of(fleet), ME)
    assert [u.name for u in limited.quota_uses] == ["a0", "a1", "a2"]
    unlimited, _ = inputs.completed(
        seen, _quota_policy(None), {}.get, AssignmentIndex.of(fleet), ME
    )
    assert unlimited.quota_uses == ()


def _policy_body(version: str, name: str = "gpu-hosts") -> dict[str, Any]:
    return {
        "apiVersion": "dpio.io/v1alpha1",
        "kind": "HostPassthroughPolicy",
        "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": version},
        "spec": {"hosts": {"names": ["esx01"]}, "devices": [{"address": "0000:3b:00.0"}]},
    }


def test_a_policy_is_parsed_once_per_version() -> None:
    parsed: list[str] = []

    def parse(b: Any) -> Any:
        parsed.append(b["metadata"]["resourceVersion"])
        return HostPassthroughPolicy.model_validate(b)

    memo = others.ParsedPolicies(parse)
    first = inputs.parse_policy(_policy_body("1"), memo)
    assert inputs.parse_policy(_policy_body("1"), memo) is first
    assert inputs.parse_policy(_policy_body("2"), memo) is not None
    assert parsed == ["1", "2"]
    deleting = _policy_body("3")
    deleting["metadata"]["deletionTimestamp"] = "2026-12-06T00:00:00Z"
    assert inputs.parse_policy(deleting, memo) is None  # offers nothing new, memo or not
    for v in range(4, 40):
        inputs.parse_policy(_policy_body(str(v)), memo)
    assert len(memo) == 1  # only the latest version of a policy is kept


def test_each_policy_keeps_its_latest_version_and_the_least_asked_for_go_first() -> None:
    parsed: list[tuple[str, str]] = []

    def parse(b: Any) -> Any:
        parsed.append((b["metadata"]["name"], b["metadata"]["resourceVersion"]))
        return HostPassthroughPolicy.model_validate(b)

    memo = others.ParsedPolicies(parse)
    for version in ("1", "2"):  # two policies, each rewritten: one entry each
        for name in ("gpu-hosts", "nic-hosts"):
            inputs.parse_policy(_policy_body(version, name), memo)
    assert len(memo) == 2
    inputs.parse_policy(_policy_body("2", "gpu-hosts"), memo)
    inputs.parse_policy(_policy_body("2", "nic-hosts"), memo)
    assert len(parsed) == 4  # both latest versions came from the memo
    memo.KEEP = 2
    inputs.parse_policy(_policy_body("1", "fpga-hosts"), memo)  # nic was asked for last...
    assert len(memo) == 2
    inputs.parse_policy(_policy_body("2", "nic-hosts"), memo)
    assert len(parsed) == 5  # ...so gpu went first and nic is still known


def test_an_invalid_policy_stays_none_through_the_memo() -> None:
    bad = _policy_body("1")
    bad["spec"] = {"hosts": "not a selector"}
    memo = inputs.policy_memo()
    assert inputs.parse_policy(bad, memo) is None
    assert inputs.parse_policy(bad, memo) is None


def _policy_on_hosts(version: str, hosts: list[str]) -> dict[str, Any]:
    body = policy_body()
    row = body["status"]["hosts"][0]
    body["metadata"].update(uid="uid-gpu-hosts", resourceVersion=version)
    body["status"]["observedGeneration"] = 1
    body["status"]["hosts"] = [{**copy.deepcopy(row), "name": h} for h in hosts]
    return body


@pytest.mark.parametrize("host", ["esx01", "esx03", "esx99", "", None])
def test_host_rows_parsed_on_demand_read_as_the_whole_policy_does(host: str | None) -> None:
    body = _policy_on_hosts("5", ["esx01", "esx02", "esx03"])
    memo = inputs.policy_memo()
    policy = inputs.parse_policy(body, memo)
    whole = inputs.parse_policy(body)
    assert policy is not None
    assert whole is not None
    assert policy.status.hosts == []  # set apart: rows are parsed per host when asked
    assert inputs.policy_view(policy, host, memo) == inputs.policy_view(whole, host)


def test_only_the_hosts_asked_for_are_parsed_and_a_bad_row_spoils_only_its_host(
    monkeypatch: Any,
) -> None:
    parsed: list[str] = []

    class Counting(HostStatus):
        @classmethod
        def model_validate(cls, obj: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            parsed.append(obj["name"])
            return HostStatus.model_validate(obj, **kwargs)

    monkeypatch.setattr(others, "HostStatus", Counting)
    body = _policy_on_hosts("5", [f"esx{i:03d}" for i in range(625)])
    body["status"]["hosts"][7]["devices"] = "not a list"
    memo = inputs.policy_memo()
    policy = inputs.parse_policy(body, memo)
    assert policy is not None
    for _ in range(3):  # many reconciles of VMs on two hosts
        assert len(inputs.policy_view(policy, "esx001", memo).host_devices) == 1
        assert inputs.policy_view(policy, "esx007", memo).host_reported is False
    assert parsed == ["esx001", "esx007"]  # two hosts of 625, each once
