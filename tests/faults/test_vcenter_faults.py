"""vCenter faults while the operator works (issue #7): a 60 s outage in the middle of a large
convergence, injected latency, session expiry. Each ends converged, with the right condition
while the fault lasts, one session per operator process and no write once converged.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from pyVmomi import vim
from tests.conftest import SimulatorFactory
from tests.faults.conftest import (
    CLUSTER,
    DEVICES,
    HOSTS,
    OUTAGE_SECONDS,
    every_device,
    host_name,
    inventory,
)
from tests.faults.harness import (
    OperatorProcess,
    apply,
    condition,
    counters,
    get_json,
    hpp,
    reset_counters,
    summary,
)
from tests.faults.invariants import after_faults, logins, wait_ready
from tests.integration.vsphere.helpers import connect, find
from tests.waiting import eventually

from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = [pytest.mark.faults, pytest.mark.sandbox]


def _healthy(operator: OperatorProcess) -> bool:
    try:
        with urllib.request.urlopen(operator.healthz, timeout=5) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _ready_if(box: Sandbox, name: str, reason: str) -> dict[str, object] | None:
    ready = condition(get_json(box, "hpp", name), "Ready")
    return ready if ready.get("reason") == reason else None


def test_vcenter_outage_during_a_large_convergence(
    sandbox: Sandbox,
    vcsim_factory: SimulatorFactory,
    fault_operator: Callable[[Simulator], OperatorProcess],
) -> None:
    sim = vcsim_factory(inventory=inventory(HOSTS, DEVICES))
    operator = fault_operator(sim)
    sim.admin("PUT", "/latency", {"ms": 50})
    reset_counters(sim)
    operator.start()
    apply(sandbox, hpp("outage", {"clusters": [CLUSTER]}))
    eventually(
        lambda: counters(sim).get("UpdatePassthruConfig", 0) >= HOSTS // 3,
        timeout=120,
        what="a third of the hosts updated",
        every=0.05,
    )
    sim.admin("POST", "/outage", {"down": True})
    try:
        ready = eventually(
            lambda: _ready_if(sandbox, "outage", "VCenterUnreachable"),
            timeout=OUTAGE_SECONDS,
            what="Ready=False VCenterUnreachable during the outage",
        )
        alive_during = _healthy(operator)
        time.sleep(OUTAGE_SECONDS)  # the outage lasts, whatever the operator does
        alive_after = _healthy(operator) and operator.alive
    finally:
        sim.admin("POST", "/outage", {"down": False})
    sim.admin("PUT", "/latency", {"ms": 0})
    wait_ready(sandbox, ["outage"], timeout=180)
    seen = {"logins": logins(sim), "updates": counters(sim).get("UpdatePassthruConfig", 0)}
    violations = after_faults(sim, every_device(range(HOSTS)), operator, seen["logins"])
    if not (alive_during and alive_after):
        violations.append("liveness probe failed during the outage")
    active = get_json(sandbox, "hpp", "outage")["status"]["summary"]["active"]
    summary(
        "vcenter-outage",
        faults=1,
        outage_s=int(OUTAGE_SECONDS),
        hosts=HOSTS,
        devices_active=f"{active}/{HOSTS * DEVICES}",
        update_calls=seen["updates"],
        logins=seen["logins"],
        violations=len(violations),
    )
    assert ready["status"] == "False"
    assert violations == []
    assert seen["updates"] <= HOSTS + 1  # a call cut by the outage may be repeated once


@pytest.mark.parametrize("latency_ms", [200])
def test_convergence_under_latency(
    sandbox: Sandbox,
    vcsim_factory: SimulatorFactory,
    fault_operator: Callable[[Simulator], OperatorProcess],
    latency_ms: int,
) -> None:
    hosts = HOSTS // 2
    sim = vcsim_factory(inventory=inventory(hosts, DEVICES))
    operator = fault_operator(sim)
    sim.admin("PUT", "/latency", {"ms": latency_ms})
    reset_counters(sim)
    operator.start()
    apply(sandbox, hpp("latency", {"clusters": [CLUSTER]}))
    wait_ready(sandbox, ["latency"], timeout=240)
    seen = {"logins": logins(sim), "updates": counters(sim).get("UpdatePassthruConfig", 0)}
    violations = after_faults(sim, every_device(range(hosts)), operator, seen["logins"])
    sim.admin("PUT", "/latency", {"ms": 0})
    if seen["updates"] != hosts:
        violations.append(f"{seen['updates']} UpdatePassthruConfig for {hosts} hosts")
    summary(
        "vcenter-latency",
        faults=1,
        latency_ms=latency_ms,
        hosts=hosts,
        update_calls=seen["updates"],
        logins=seen["logins"],
        violations=len(violations),
    )
    assert violations == []


def test_session_expiry_then_drift_is_corrected_with_one_new_login(
    sandbox: Sandbox,
    vcsim_factory: SimulatorFactory,
    fault_operator: Callable[[Simulator], OperatorProcess],
) -> None:
    """Every session dies (a vCenter restart, the idle timeout); then someone disables a device
    by hand. The watcher and the reconciler log in again (once) and put the device back."""
    hosts = 4
    sim = vcsim_factory(inventory=inventory(hosts, DEVICES))
    operator = fault_operator(sim)
    operator.start()
    apply(sandbox, hpp("expiry", {"clusters": [CLUSTER]}))
    wait_ready(sandbox, ["expiry"], timeout=120)
    reset_counters(sim)
    sim.admin("POST", "/sessions/expire")
    with connect(sim) as si:  # our own session: one Login of ours in the counters
        host = find(si, vim.HostSystem, host_name(0))
        host.configManager.pciPassthruSystem.UpdatePassthruConfig(
            [vim.host.PciPassthruConfig(id="0000:3b:00.0", passthruEnabled=False)]
        )

    def put_back() -> bool:
        return counters(sim).get("UpdatePassthruConfig", 0) >= 2  # ours, then the operator's

    eventually(put_back, timeout=60, what="the operator re-enables the device")
    wait_ready(sandbox, ["expiry"], timeout=60)
    operator_logins = logins(sim) - 1
    seen = {"logins": operator_logins}
    violations = after_faults(sim, every_device(range(hosts)), operator, seen["logins"])
    if operator_logins != 1:
        violations.append(f"{operator_logins} operator logins after one expiry (want 1)")
    summary(
        "vcenter-session-expiry",
        faults=1,
        hosts=hosts,
        relogins=operator_logins,
        violations=len(violations),
    )
    assert violations == []


def test_failed_calls_are_retried_until_converged(
    sandbox: Sandbox,
    vcsim_factory: SimulatorFactory,
    fault_operator: Callable[[Simulator], OperatorProcess],
) -> None:
    """vCenter refuses some calls (HostConfigFault on UpdatePassthruConfig, a SystemError on the
    inventory read): the policy says so, the operator retries with backoff, and each failed call
    is repeated exactly once."""
    hosts, failures = 6, 3
    sim = vcsim_factory(inventory=inventory(hosts, DEVICES))
    operator = fault_operator(sim)
    operator.start()
    reset_counters(sim)
    sim.admin(
        "POST",
        "/faults",
        {
            "method": "UpdatePassthruConfig",
            "fault": "HostConfigFault",
            "count": failures,
            "message": "vmkernel busy",
        },
    )
    sim.admin(
        "POST",
        "/faults",
        {
            "method": "RetrievePropertiesEx",
            "fault": "SystemError",
            "count": 1,
            "message": "vpxd restarting",
        },
    )
    apply(sandbox, hpp("task-failures", {"clusters": [CLUSTER]}))
    wait_ready(sandbox, ["task-failures"], timeout=180)
    pending: Any = sim.admin("GET", "/faults")
    seen = {"logins": logins(sim), "updates": counters(sim).get("UpdatePassthruConfig", 0)}
    violations = after_faults(sim, every_device(range(hosts)), operator, seen["logins"])
    if pending["pending"]:
        violations.append(f"faults never met: {pending['pending']}")
    if seen["updates"] != hosts + failures:
        violations.append(
            f"{seen['updates']} UpdatePassthruConfig for {hosts} hosts and {failures} refusals"
        )
    summary(
        "vcenter-call-failures",
        faults=failures + 1,
        hosts=hosts,
        update_calls=seen["updates"],
        violations=len(violations),
    )
    assert violations == []
