"""The HostPassthroughPolicy reconciler against in-memory fakes of its ports: what it writes,
what it asks of the queue, and which Events it posts when vCenter can't be used."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from tests.unit.planner.builders import GPU, NOW, dev, gpu_host, host, info

from dpio.api.policy import HostPassthroughPolicySpec
from dpio.planner import ObservedInventory, RebootAction, UpdatePassthruConfig
from dpio.planner.host.steps import HostTask
from dpio.reconcile.finalizers import FINALIZER
from dpio.reconcile.policy.claims import pending_claims
from dpio.reconcile.policy.reconciler import STALLED_RECHECK_SECONDS, PolicyReconciler
from dpio.reconcile.ports import PortError
from dpio.reconcile.queue import Result


@dataclass
class FakeHosts:
    inventory: ObservedInventory
    updates: list[UpdatePassthruConfig] = field(default_factory=list)
    refuse: PortError | None = None  # what UpdatePassthruConfig raises, if anything
    insecure: bool = False  # the Secret says insecure: "true"

    async def read_inventory(self) -> ObservedInventory:
        return self.inventory

    async def update_passthru_config(self, update: UpdatePassthruConfig) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.updates.append(update)

    async def start(self, action: RebootAction) -> None:
        raise AssertionError(f"no reboot expected: {action}")

    async def recent_tasks(
        self, host_morefs: Collection[str]
    ) -> Mapping[str, tuple[HostTask, ...]]:
        raise AssertionError(f"no recent tasks expected: {host_morefs}")


@dataclass
class FakeVCenter:
    """Fails with `error` while it is set; otherwise hands out `hosts`."""

    hosts: FakeHosts
    error: PortError | None = None

    async def hosts_for(self, spec: HostPassthroughPolicySpec) -> FakeHosts:
        if self.error is not None:
            raise self.error
        return self.hosts


@dataclass
class FakeObjects:
    status: dict[str, Any] | None = None
    events: list[tuple[str, str]] = field(default_factory=list)

    async def patch_status(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        self.status = dict(status)

    async def set_finalizers(self, body: Mapping[str, Any], finalizers: list[str]) -> None:
        raise AssertionError("the body already has the finalizer")

    async def event(self, body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason))


def body(status: dict[str, Any] | None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "apiVersion": "dpio.io/v1alpha1",
        "kind": "HostPassthroughPolicy",
        "metadata": {"name": "gpu", "generation": 1, "finalizers": [FINALIZER],
                     "creationTimestamp": "2025-01-01T00:00:00Z", "resourceVersion": "7"},
        "spec": {"hosts": {"names": ["esx01"]}, "devices": [{"address": GPU}]},
    }  # fmt: skip
    if status is not None:
        result["status"] = status
    return result


class NewObjects(FakeObjects):
    """For a policy just created: the finalizer goes first (before any vCenter call)."""

    async def set_finalizers(self, body: Mapping[str, Any], finalizers: list[str]) -> None:
        self.events.append(("finalizers", ",".join(finalizers)))


def test_a_new_policy_gets_its_first_status_before_any_vcenter_call() -> None:
    refused = PortError("VCenterUnreachable", "must not be asked", retryable=True)
    hosts = FakeHosts(ObservedInventory(hosts=(gpu_host(),)))
    objects = NewObjects()
    reconciler = PolicyReconciler(FakeVCenter(hosts, refused), objects, lambda: [],
                                  clock=lambda: NOW)  # fmt: skip
    new = body(None)
    new["metadata"]["finalizers"] = []

    got = asyncio.run(reconciler(new))

    assert got == Result()
    assert objects.events == [("finalizers", FINALIZER)]
    assert objects.status is not None
    assert objects.status["observedGeneration"] == 1
    assert conditions(objects) == {
        "Ready": ("Unknown", "AwaitingReconcile"),
        "Reconciling": ("True", "AwaitingReconcile"),
        "Stalled": ("False", "AwaitingReconcile"),
    }


def conditions(objects: FakeObjects) -> dict[str, tuple[str, str]]:
    assert objects.status is not None
    return {c["type"]: (c["status"], c["reason"]) for c in objects.status["conditions"]}


SECRET_MISSING = PortError("SecretNotFound", "Secret dpio-system/vc not found", retryable=False)
LOGIN_REFUSED = PortError("InvalidCredentials", "vCenter refused the login", retryable=False)
OUTAGE = PortError("VCenterUnreachable", "connection refused", retryable=True)


@pytest.mark.parametrize(
    ("error", "result", "ready", "stalled"),
    [
        pytest.param(SECRET_MISSING, Result(requeue_after=STALLED_RECHECK_SECONDS),
                     ("False", "SecretNotFound"), ("True", "SecretNotFound"), id="secret-missing"),
        pytest.param(LOGIN_REFUSED, Result(requeue_after=STALLED_RECHECK_SECONDS),
                     ("False", "InvalidCredentials"), ("True", "InvalidCredentials"),
                     id="login-refused"),
        pytest.param(OUTAGE, Result(failed=True),
                     ("False", "VCenterUnreachable"), ("False", "Progressing"), id="outage"),
    ],
)  # fmt: skip
def test_a_connection_a_human_must_fix_stalls_and_an_outage_retries(
    error: PortError, result: Result, ready: tuple[str, str], stalled: tuple[str, str]
) -> None:
    hosts = FakeHosts(ObservedInventory(hosts=(gpu_host(enabled=True, active=True),)))
    objects = FakeObjects()
    reconciler = PolicyReconciler(FakeVCenter(hosts, error), objects, lambda: [], clock=lambda: NOW)

    got = asyncio.run(reconciler(body(None)))

    assert got == result
    assert conditions(objects)["Ready"] == ready
    assert conditions(objects)["Stalled"] == stalled
    assert ("Warning", error.reason) in objects.events


def test_a_fixed_secret_brings_the_policy_back_to_ready() -> None:
    hosts = FakeHosts(ObservedInventory(hosts=(gpu_host(enabled=True, active=True),)))
    vcenter, objects = FakeVCenter(hosts, SECRET_MISSING), FakeObjects()
    reconciler = PolicyReconciler(vcenter, objects, lambda: [], clock=lambda: NOW)
    asyncio.run(reconciler(body(None)))
    stalled_status = objects.status

    vcenter.error = None  # someone created the Secret
    got = asyncio.run(reconciler(body(stalled_status)))

    assert got == Result()
    assert conditions(objects)["Ready"] == ("True", "Reconciled")
    assert conditions(objects)["Stalled"] == ("False", "Reconciled")
    assert objects.events[-1] == ("Normal", "Reconciled")
    assert hosts.updates == []  # the A100 was already enabled and active


def test_a_stalled_policy_does_not_write_status_again_on_each_recheck() -> None:
    hosts = FakeHosts(ObservedInventory(hosts=()))
    objects = FakeObjects()
    reconciler = PolicyReconciler(FakeVCenter(hosts, SECRET_MISSING), objects, lambda: [])
    asyncio.run(reconciler(body(None)))
    first, events = objects.status, len(objects.events)
    objects.status = None

    asyncio.run(reconciler(body(first)))

    assert objects.status is None  # nothing changed: no write
    assert len(objects.events) == events


HOST_REFUSED = PortError(
    "HostConfigFault", "A specified parameter was not correct", retryable=False
)


@pytest.mark.parametrize(
    ("error", "result", "stalled"),
    [
        pytest.param(HOST_REFUSED, Result(requeue_after=STALLED_RECHECK_SECONDS),
                     ("True", "HostConfigFault"), id="host-refuses"),
        pytest.param(OUTAGE, Result(failed=True), ("False", "Progressing"), id="outage-mid-update"),
    ],
)  # fmt: skip
def test_a_failed_update_names_the_host(
    error: PortError, result: Result, stalled: tuple[str, str]
) -> None:
    hosts = FakeHosts(ObservedInventory(hosts=(gpu_host(enabled=False),)), refuse=error)
    objects = FakeObjects()
    reconciler = PolicyReconciler(FakeVCenter(hosts), objects, lambda: [], clock=lambda: NOW)

    got = asyncio.run(reconciler(body(None)))

    assert got == result
    assert conditions(objects)["Stalled"] == stalled
    assert objects.status is not None
    ready = next(c for c in objects.status["conditions"] if c["type"] == "Ready")
    assert ready["message"].startswith("esx01: UpdatePassthruConfig failed: ")
    assert ("Normal", "PassthroughUpdated") not in objects.events


@dataclass
class SlowHosts(FakeHosts):
    """Each UpdatePassthruConfig takes a round trip; counts how many are in flight at once."""

    in_flight: int = 0
    most_in_flight: int = 0

    async def update_passthru_config(self, update: UpdatePassthruConfig) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        await super().update_passthru_config(update)


def fleet_body(hosts: list[str]) -> dict[str, Any]:
    result = body(None)
    result["spec"]["hosts"] = {"names": hosts}
    return result


@pytest.mark.parametrize(
    ("refuse", "events"),
    [
        pytest.param(None, 8, id="all-hosts-change"),
        pytest.param(HOST_REFUSED, 0, id="every-host-refuses"),
    ],
)
def test_hosts_are_updated_at_once_with_an_event_each(
    refuse: PortError | None, events: int
) -> None:
    names = [f"esx{i:02}" for i in range(8)]
    inventory = ObservedInventory(hosts=tuple(gpu_host(n, enabled=False) for n in names))
    hosts = SlowHosts(inventory, refuse=refuse)
    objects = FakeObjects()
    reconciler = PolicyReconciler(FakeVCenter(hosts), objects, lambda: [], clock=lambda: NOW)

    asyncio.run(reconciler(fleet_body(names)))

    assert hosts.most_in_flight == 8  # not one after another
    assert sorted(u.host for u in hosts.updates) == (names if refuse is None else [])
    assert objects.events.count(("Normal", "PassthroughUpdated")) == events
    if refuse is not None:  # the first host in order names the failure
        assert objects.status is not None
        ready = next(c for c in objects.status["conditions"] if c["type"] == "Ready")
        assert ready["message"].startswith("esx00: UpdatePassthruConfig failed")


@pytest.mark.parametrize(
    ("changed", "concerned"),
    [
        pytest.param(frozenset({"host-esx01"}), {"gpu": True, "never-planned": True},
                     id="its-host"),
        pytest.param(frozenset({"host-esx09"}), {"gpu": False, "never-planned": True},
                     id="another-host"),
        pytest.param(frozenset(), {"gpu": False, "never-planned": True}, id="nothing"),
        pytest.param(None, {"gpu": True, "never-planned": True}, id="any-host"),
    ],
)  # fmt: skip
def test_a_vcenter_change_concerns_the_policies_that_selected_its_hosts(
    changed: frozenset[str] | None, concerned: dict[str, bool]
) -> None:
    hosts = FakeHosts(ObservedInventory(hosts=(gpu_host(enabled=True, active=True),)))
    reconciler = PolicyReconciler(FakeVCenter(hosts), FakeObjects(), lambda: [], clock=lambda: NOW)
    asyncio.run(reconciler(body(None)))  # plans esx01 (moref host-esx01)

    got = {name: reconciler.selections.concerns(name, changed) for name in concerned}

    assert got == concerned


PLANNED_ON = ObservedInventory(
    hosts=(gpu_host(enabled=True, active=True), gpu_host("esx02", enabled=False))
)


@pytest.mark.parametrize(
    ("inventory", "differs"),
    [
        pytest.param(PLANNED_ON, False, id="same"),
        pytest.param(ObservedInventory(hosts=(gpu_host(enabled=True, active=True),
                                              gpu_host("esx02", enabled=True))),
                     False, id="another-host-changed"),
        pytest.param(ObservedInventory(hosts=(gpu_host(enabled=False),
                                              gpu_host("esx02", enabled=False))),
                     True, id="its-host-changed"),
        pytest.param(ObservedInventory(hosts=(gpu_host("esx02", enabled=False),)),
                     True, id="its-host-gone"),
        pytest.param(ObservedInventory(hosts=(gpu_host(enabled=True, active=True, cluster="c1"),
                                              gpu_host("esx02", enabled=False))),
                     True, id="its-host-moved-to-a-cluster"),
    ],
)  # fmt: skip
def test_a_report_naming_no_hosts_queues_the_policies_whose_hosts_differ(
    inventory: ObservedInventory, differs: bool
) -> None:
    reconciler = PolicyReconciler(
        FakeVCenter(FakeHosts(PLANNED_ON)), FakeObjects(), lambda: [], clock=lambda: NOW
    )
    assert reconciler.selections.differs("gpu", PLANNED_ON)  # never planned: look
    asyncio.run(reconciler(body(None)))  # plans esx01 only

    assert reconciler.selections.differs("gpu", inventory) is differs


@pytest.mark.parametrize(
    ("insecure", "condition", "warned"),
    [
        (True, ("True", "TLSVerificationDisabled"), True),
        (False, ("False", "CertificateVerified"), False),
    ],
)
def test_an_insecure_vcenter_secret_is_a_condition_and_a_warning(
    insecure: bool, condition: tuple[str, str], warned: bool
) -> None:
    hosts = FakeHosts(
        ObservedInventory(hosts=(gpu_host(enabled=True, active=True),)), insecure=insecure
    )
    objects = FakeObjects()
    reconciler = PolicyReconciler(FakeVCenter(hosts), objects, lambda: [], clock=lambda: NOW)
    asyncio.run(reconciler(body(None)))
    assert conditions(objects)["InsecureConnection"] == condition
    assert conditions(objects)["Ready"] == ("True", "Reconciled")  # it works, but says so
    assert (("Warning", "TLSVerificationDisabled") in objects.events) is warned


@dataclass
class DeletingObjects(FakeObjects):
    finalizers: list[str] | None = None  # what the reconciler set, if anything

    async def set_finalizers(self, body: Mapping[str, Any], finalizers: list[str]) -> None:
        self.finalizers = finalizers


# Python's re selected the A100 with this lookbehind; RE2 has no lookaround (docs/upgrade.md).
LOOKBEHIND = {"namePattern": r"(?<=GA100 )\[A100\]"}


def test_a_pattern_re2_refuses_stalls_the_policy_without_a_vcenter_write() -> None:
    hosts = FakeHosts(ObservedInventory(hosts=(gpu_host(enabled=False),)))  # the A100, off
    objects = FakeObjects()
    reconciler = PolicyReconciler(FakeVCenter(hosts), objects, lambda: [], clock=lambda: NOW)
    policy = body(None)
    policy["spec"]["devices"] = [LOOKBEHIND]

    got = asyncio.run(reconciler(policy))

    assert got == Result()  # a human must fix the spec; its next change brings it back
    assert hosts.updates == []
    assert conditions(objects)["Stalled"] == ("True", "InvalidSpec")
    assert conditions(objects)["Ready"] == ("False", "InvalidSpec")
    assert objects.status is not None
    stalled = next(c for c in objects.status["conditions"] if c["type"] == "Stalled")
    assert stalled["message"].startswith(
        "devices[0].namePattern is not RE2 syntax: invalid perl operator: (?<"
    )
    assert objects.events == [("Warning", "InvalidSpec")]

    # Reconciled again (a resync), it writes nothing and tells nothing new.
    written, objects.status = objects.status, None
    policy["status"] = written
    assert asyncio.run(reconciler(policy)) == Result()
    assert (objects.status, objects.events, hosts.updates) == (
        None,
        [("Warning", "InvalidSpec")],
        [],
    )


def test_a_policy_with_a_pattern_re2_refuses_can_still_be_deleted() -> None:
    hosts = FakeHosts(ObservedInventory(hosts=(gpu_host(enabled=True, active=True),)))
    objects = DeletingObjects()
    reconciler = PolicyReconciler(FakeVCenter(hosts), objects, lambda: [], clock=lambda: NOW)
    policy = body(None)
    policy["spec"].update(devices=[LOOKBEHIND], deletionPolicy="Disable")
    policy["metadata"]["deletionTimestamp"] = "2025-01-02T00:00:00Z"

    assert asyncio.run(reconciler(policy)) == Result()

    assert objects.finalizers == []  # the object goes away, not stuck behind its finalizer
    assert hosts.updates == []  # it never selected the A100, so it does not disable it


class StaleObjects(FakeObjects):
    """Every finalizer write meets 409: the cached copy was stale."""

    async def set_finalizers(self, body: Mapping[str, Any], finalizers: list[str]) -> None:
        raise PortError("KubernetesAPIError", "409 the object has been modified", retryable=True)


@pytest.mark.parametrize("deleting", [False, True])
def test_a_finalizer_write_that_fails_is_retried_and_nothing_else_done(deleting: bool) -> None:
    hosts = FakeHosts(ObservedInventory(hosts=(gpu_host(enabled=True, active=True),)))
    objects = StaleObjects()
    reconciler = PolicyReconciler(FakeVCenter(hosts), objects, lambda: [], clock=lambda: NOW)
    policy = body(None)
    if deleting:  # Retain: nothing to clean up, the finalizer goes at once (and fails to)
        policy["spec"]["deletionPolicy"] = "Retain"
        policy["metadata"]["deletionTimestamp"] = "2025-01-02T00:00:00Z"
    else:  # a new policy: the finalizer comes first
        policy["metadata"]["finalizers"] = []

    assert asyncio.run(reconciler(policy)) == Result(failed=True)

    assert objects.status is None  # no first status on a copy that lacks our finalizer
    assert hosts.updates == []


@pytest.mark.parametrize(("claimed", "disabled"), [(False, ["0000:5e:00.0"]), (True, [])])
def test_exclusive_leaves_a_device_a_converging_assignment_claims(
    claimed: bool, disabled: list[str]
) -> None:
    other = "0000:5e:00.0"
    observed = host(
        "esx01",
        (dev(GPU), dev(other)),
        (info(GPU, enabled=True, active=True), info(other, enabled=True, active=True)),
    )
    hosts = FakeHosts(ObservedInventory(hosts=(observed,)))
    waiting = {
        "metadata": {"namespace": "ml", "name": "train"},
        "spec": {"devices": [{"name": "gpu0", "pci": {"address": other}}]},
        "status": {"vm": {"host": "esx01"}},  # e.g. waiting for the VM to power off
    }
    reconciler = PolicyReconciler(
        FakeVCenter(hosts),
        FakeObjects(),
        lambda: [],
        clock=lambda: NOW,
        pending_claims=lambda: pending_claims([waiting] if claimed else []),
    )
    exclusive = body(None)
    exclusive["spec"]["exclusive"] = True

    asyncio.run(reconciler(exclusive))

    assert [c.id for u in hosts.updates for c in u.changes] == disabled
