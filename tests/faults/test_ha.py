"""Two operator replicas with leader election on a Lease (issue #7, "High availability").

Both replicas watch everything; only the Lease holder reconciles. While the leader lives the
follower makes no vCenter call (one Login in the simulator's counters, the leader's) and no
reconcile (its own log says so). Then the leader dies (SIGKILL, or SIGTERM which releases the
Lease), a policy changes at once, and the follower applies it within the documented takeover
time (docs/high-availability.md), with exactly one UpdatePassthruConfig: the one host the change
adds. Nothing converged before is done twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import SimulatorFactory
from tests.faults.conftest import every_device, host_name, inventory
from tests.faults.harness import (
    OperatorProcess,
    apply,
    counters,
    get_json,
    hpp,
    kubectl,
    reset_counters,
    summary,
    vcenter_secret,
)
from tests.faults.invariants import vsphere_violations, wait_ready, writes_when_idle
from tests.waiting import eventually

from dpio.kube.lease import Timing
from dpio_sandbox import install
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = [pytest.mark.faults, pytest.mark.sandbox]

HOSTS = 6
DEVICES = 2
TIMING = Timing()  # the operator's defaults: 15 s lease, 2 s retry
#: docs/high-availability.md: a follower leads within lease + 2 retries (19 s) of the leader's
#: death; the change then takes one reconcile, for which 5 s is plenty for one host here.
BUDGET = {"sigkill": TIMING.takeover + 5, "sigterm": 2 * TIMING.retry_period + 5}


Replicas = Callable[[Simulator, str], tuple[OperatorProcess, OperatorProcess]]


@pytest.fixture
def replicas(sandbox: Sandbox, tmp_path: Path) -> Iterator[Replicas]:
    """`replicas(sim, lease)`: two operators (not started) electing on `lease`, each with a log
    directory of its own. At the end the policies are deleted while a replica still runs (so
    the finalizers are honoured), then both stop."""
    install.install(sandbox)
    made: list[OperatorProcess] = []

    def make(sim: Simulator, lease: str) -> tuple[OperatorProcess, OperatorProcess]:
        vcenter_secret(sandbox, sim, "vcenter-ha")
        kubectl(sandbox, "delete", "lease", "-n", install.NAMESPACE, lease, "--ignore-not-found")
        env = {"DPIO_LEASE": lease, "DPIO_LOG_FORMAT": "json"}
        for name in ("a", "b"):
            made.append(
                OperatorProcess(
                    sandbox, tmp_path / name, secret="vcenter-ha", verbose=True, extra_env=env
                )
            )
        return made[-2], made[-1]

    try:
        yield make
    finally:
        if made and not any(operator.alive for operator in made):
            made[-1].start()
        kubectl(sandbox, "delete", "hpp", "--all", "--timeout=90s")
        for operator in made:
            operator.stop()


def _lease_holder(box: Sandbox, lease: str) -> str:
    out = kubectl(
        box, "get", "lease", "-n", install.NAMESPACE, lease, "-o", "json", "--ignore-not-found"
    )
    return str(json.loads(out)["spec"].get("holderIdentity") or "") if out.strip() else ""


def _reconciles(operator: OperatorProcess) -> int:
    """Reconciles this replica ran, from its JSON log (the controller's DEBUG line)."""
    count = 0
    for line in operator.logs().splitlines():
        try:
            record: dict[str, Any] = json.loads(line)
        except ValueError:
            continue
        if record.get("logger") == "dpio.reconcile.controller" and str(
            record.get("message", "")
        ).startswith("Reconcile"):
            count += 1
    return count


def _updates(sim: Simulator) -> int:
    return counters(sim).get("UpdatePassthruConfig", 0)


@pytest.mark.parametrize("death", ["sigkill", "sigterm"])
def test_the_follower_takes_over_and_nothing_is_done_twice(
    sandbox: Sandbox,
    vcsim_factory: SimulatorFactory,
    replicas: Replicas,
    death: str,
) -> None:
    lease = f"dpio-ha-{death}"
    sim = vcsim_factory(inventory=inventory(HOSTS, DEVICES))
    leader, follower = replicas(sim, lease)
    reset_counters(sim)
    leader.start()
    eventually(lambda: _lease_holder(sandbox, lease), timeout=30, what=f"lease/{lease} held")
    follower.start()

    # Converge two policies with both replicas up: only the leader may act.
    apply(sandbox, hpp("ha-a", [host_name(0), host_name(1)]))
    apply(sandbox, hpp("ha-b", [host_name(2), host_name(3)]))
    wait_ready(sandbox, ["ha-a", "ha-b"], timeout=120)
    converged = _updates(sim)
    logins = counters(sim).get("Login", 0)  # the leader's session; the follower opened none
    idle = writes_when_idle(sim, 2 * TIMING.retry_period)  # resets the counters as well
    violations = [f"{n} {m} call(s) once converged" for m, n in idle.items()]
    follower_reconciles = _reconciles(follower)
    if converged != 4:
        violations.append(f"{converged} UpdatePassthruConfig for 4 hosts")
    if follower_reconciles:
        violations.append(f"the follower reconciled {follower_reconciles} times")
    if not _reconciles(leader):  # the same log reading sees the leader's: it can fail
        violations.append("no reconcile in the leader's log either")

    # The leader dies; a change lands at once and only the follower can apply it.
    killed = time.monotonic()
    if death == "sigkill":
        leader.kill()
    else:
        leader.stop()  # SIGTERM: kopf's cleanup releases the Lease
    apply(sandbox, hpp("ha-a", [host_name(0), host_name(1), host_name(4)]))
    wait_ready(
        sandbox,
        ["ha-a"],
        timeout=BUDGET[death] + 30,
        what="hpp/ha-a Ready for its new generation after the leader died",
        every=0.2,
    )
    takeover = time.monotonic() - killed
    after = counters(sim)
    violations += vsphere_violations(sim, every_device((0, 1, 2, 3, 4), DEVICES))
    if after.get("UpdatePassthruConfig", 0) != 1:
        violations.append(f"{after.get('UpdatePassthruConfig', 0)} UpdatePassthruConfig, not 1")
    if after.get("Login", 0) != 1:
        violations.append(f"{after.get('Login', 0)} logins after the takeover, not 1")
    if logins != 1:
        violations.append(f"{logins} logins by two replicas under one leader, not 1")
    summary(
        f"ha-takeover-{death}",
        faults=1,
        takeover_s=f"{takeover:.1f}",
        budget_s=f"{BUDGET[death]:.0f}",
        converged_updates=converged,
        updates_after=after.get("UpdatePassthruConfig", 0),
        logins_before=logins,
        follower_reconciles_before=follower_reconciles,
        violations=len(violations),
    )
    assert violations == []
    assert takeover <= BUDGET[death]
    ready_status = get_json(sandbox, "hpp", "ha-a")["status"]["summary"]
    assert ready_status["active"] == 3 * DEVICES
