"""Dry-run's second lock (dpio.app.dry_run): the ports the reconcilers get in dry-run pass reads
through and refuse every write, so a call that slipped past the planner never reaches vCenter."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.unit.planner.builders import NOW, gpu_host
from tests.unit.planner.vm.builders import observe
from tests.unit.reconcile.assignment.fakes import FakeVMs
from tests.unit.reconcile.policy.test_policy_reconciler import (
    FakeHosts,
    FakeObjects,
    FakeVCenter,
    body,
    conditions,
)

from dpio.app.dry_run import ReadOnlyVCenter, ReadOnlyVMCenters
from dpio.planner import ObservedInventory
from dpio.planner.vm.changes import ReconfigureCluster, ReconfigVM, UpgradeVM
from dpio.planner.vm.power import PowerAction
from dpio.reconcile.policy.reconciler import PolicyReconciler
from dpio.reconcile.ports import PortError


def test_a_policy_reconciler_that_tried_to_write_is_refused_and_stalls() -> None:
    # The reconciler is NOT told about dry-run here: as if the planner's hold had a hole.
    hosts = FakeHosts(ObservedInventory(hosts=(gpu_host(enabled=False),)))
    objects = FakeObjects()
    reconciler = PolicyReconciler(
        ReadOnlyVCenter(FakeVCenter(hosts)), objects, lambda: [], clock=lambda: NOW
    )

    asyncio.run(reconciler(body(None)))

    assert hosts.updates == []  # never reached the adapter
    assert conditions(objects)["Stalled"] == ("True", "DryRun")


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("reconfigure", (ReconfigVM(moref="vm-1", change_version="1"),)),
        ("reconfigure_cluster", (ReconfigureCluster(cluster_moref="c-1", vm_moref="vm-1"),)),
        ("upgrade", (UpgradeVM(moref="vm-1", version="vmx-17", previous="vmx-15"),)),
        ("power", ("vm-1", PowerAction.POWER_OFF)),
    ],
)
def test_every_vm_write_is_refused_and_reads_pass_through(method: str, args: Any) -> None:
    log: list[Any] = []
    inner = FakeVMs(log, observe())
    vms = asyncio.run(ReadOnlyVMCenters(inner).vms_for(None))

    assert asyncio.run(vms.observe_vm(name="ml-trainer-01")) is inner.observation
    with pytest.raises(PortError) as refused:
        asyncio.run(getattr(vms, method)(*args))

    assert (refused.value.reason, refused.value.retryable) == ("DryRun", False)
    assert [c[0] for c in log] == ["vms_for", "observe_vm"]  # no write reached the fake
