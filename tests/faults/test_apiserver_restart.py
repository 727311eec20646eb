"""The Kubernetes API server goes away and comes back on the same port (issue #7): the
operator stays up, its watches resume, a change made in vCenter while the API server was down
is corrected and reported, and an object created afterwards is reconciled.

The sandbox's kube-apiserver is stopped and started again with its own command line
(dpio_sandbox.procs, the same pidfile the sandbox uses), so etcd keeps every object.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pyVmomi import vim
from tests.conftest import SimulatorFactory
from tests.faults.conftest import CLUSTER, DEVICES, every_device, host_name, inventory
from tests.faults.harness import (
    OperatorProcess,
    apply,
    counters,
    get_json,
    hpp,
    kubectl,
    reset_counters,
    summary,
)
from tests.faults.invariants import converged_violations, logins, wait_ready
from tests.integration.vsphere.helpers import connect, find

from dpio_sandbox import certs, procs
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = [pytest.mark.faults, pytest.mark.sandbox]

APISERVER = "kube-apiserver"
DOWN_SECONDS = 20


def _argv(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").decode().split("\0")


def _restart_apiserver(box: Sandbox, while_down: Callable[[], None]) -> None:
    pid = procs.running(box.state_dir, APISERVER)
    assert pid is not None, "the sandbox's kube-apiserver is not running"
    argv = _argv(pid)
    port = next(a.split("=", 1)[1] for a in argv if a.startswith("--secure-port="))
    procs.stop(box.state_dir, APISERVER)
    try:
        while_down()
        time.sleep(DOWN_SECONDS)
    finally:
        new = procs.start(APISERVER, argv, box.state_dir)
        context = ssl.create_default_context(
            cafile=str(certs.ensure_ca(box.state_dir / "pki").cert)
        )
        procs.wait_for_url(
            box.state_dir,
            APISERVER,
            new,
            f"https://127.0.0.1:{port}/readyz",
            timeout=120,
            context=context,
        )


def test_apiserver_restart_operator_recovers(
    sandbox: Sandbox,
    vcsim_factory: SimulatorFactory,
    fault_operator: Callable[[Simulator], OperatorProcess],
) -> None:
    hosts = 4
    sim = vcsim_factory(inventory=inventory(hosts, DEVICES))
    operator = fault_operator(sim)
    operator.start()
    apply(sandbox, hpp("before-restart", {"names": [host_name(0), host_name(1)]}))
    wait_ready(sandbox, ["before-restart"], timeout=120)
    reset_counters(sim)

    def drift() -> None:  # someone disables a device by hand while Kubernetes is away
        with connect(sim) as si:
            host = find(si, vim.HostSystem, host_name(0))
            host.configManager.pciPassthruSystem.UpdatePassthruConfig(
                [vim.host.PciPassthruConfig(id="0000:3b:00.0", passthruEnabled=False)]
            )

    _restart_apiserver(sandbox, drift)
    alive = operator.alive
    apply(sandbox, hpp("after-restart", {"clusters": [CLUSTER]}))
    wait_ready(
        sandbox,
        ["before-restart", "after-restart"],
        timeout=180,
        what="both policies Ready after the restart",
    )
    seen = {"logins": logins(sim) - 1, "updates": counters(sim).get("UpdatePassthruConfig", 0)}
    violations = converged_violations(sim, every_device(range(hosts)))
    if not alive:
        violations.append("the operator exited while the API server was down")
    if seen["logins"] > 0:
        violations.append(f"{seen['logins']} new vCenter logins for a Kubernetes outage")
    summary(
        "apiserver-restart",
        faults=1,
        down_s=DOWN_SECONDS,
        policies_converged=2,
        update_calls=seen["updates"],
        violations=len(violations),
    )
    assert violations == []


def test_status_written_by_someone_else_is_corrected_without_vcenter_writes(
    sandbox: Sandbox,
    vcsim_factory: SimulatorFactory,
    fault_operator: Callable[[Simulator], OperatorProcess],
) -> None:
    """Another writer keeps overwriting the policy's status for a while (the operator's own
    writes meet 409 conflicts on resourceVersion meanwhile). Once it stops, the operator puts
    the true status back, and not a single vCenter write comes of it."""
    hosts = 4
    sim = vcsim_factory(inventory=inventory(hosts, DEVICES))
    operator = fault_operator(sim)
    operator.start()
    apply(sandbox, hpp("tampered", {"clusters": [CLUSTER]}))
    wait_ready(sandbox, ["tampered"], timeout=120)
    reset_counters(sim)
    ready = {
        "type": "Ready",
        "status": "False",
        "reason": "Tampered",
        "message": "not true",
        "lastTransitionTime": "2020-01-01T00:00:00Z",
    }
    nothing = {"hosts": 0, "devices": 0, "active": 0, "pendingReboot": 0}
    lie = json.dumps({"status": {"summary": nothing, "conditions": [ready]}})
    tampering = 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        kubectl(
            sandbox, "patch", "hpp", "tampered", "--subresource=status", "--type=merge", "-p", lie
        )
        tampering += 1
    wait_ready(
        sandbox, ["tampered"], timeout=30, what="hpp/tampered Ready again after the tampering"
    )
    status = get_json(sandbox, "hpp", "tampered")["status"]
    writes = {
        m: n
        for m, n in counters(sim).items()
        if m in ("UpdatePassthruConfig", "RebootHost_Task") and n
    }
    violations = [f"{n} {m} call(s) caused by a status write" for m, n in writes.items()]
    if status["summary"]["active"] != hosts * DEVICES:
        violations.append(f"summary not restored: {status['summary']}")
    summary(
        "status-tampering",
        faults=tampering,
        policies_converged=1,
        active=f"{status['summary']['active']}/{hosts * DEVICES}",
        violations=len(violations),
    )
    assert violations == []
