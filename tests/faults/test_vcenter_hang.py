"""A vCenter that accepts connections and never answers (issue 15), unlike `/outage`, which
refuses them: the simulator reads every request and holds it (`POST /hang`). The operator's
calls must time out on their own socket timeouts, the policy say `VCenterUnreachable`, the
liveness probe stay green the whole time (it never depends on vCenter), and once vCenter answers
again everything converges in the same process, on the same session.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from tests.conftest import SimulatorFactory
from tests.faults.conftest import DEVICES, every_device, host_name, inventory
from tests.faults.harness import (
    OperatorProcess,
    apply,
    condition,
    counters,
    get_json,
    hang,
    hang_state,
    healthy,
    hpp,
    summary,
)
from tests.faults.invariants import after_faults, logins, wait_ready
from tests.waiting import eventually

from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = [pytest.mark.faults, pytest.mark.sandbox]

HOSTS = 4


class LivenessWatch:
    """Probes the operator's /healthz every second on a thread until `stop()`."""

    def __init__(self, operator: OperatorProcess) -> None:
        self.operator = operator
        self.probes = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.probes += 1
            if not self.operator.alive:
                self.failures.append("the operator process ended")
                return
            if not healthy(self.operator):
                self.failures.append(f"/healthz failed at probe {self.probes}")
            self._stop.wait(1)


def _unreachable(box: Sandbox, name: str) -> dict[str, Any] | None:
    ready = condition(get_json(box, "hpp", name), "Ready")
    return ready if ready.get("reason") == "VCenterUnreachable" else None


def test_a_vcenter_that_never_answers(
    sandbox: Sandbox,
    vcsim_factory: SimulatorFactory,
    fault_operator: Callable[[Simulator], OperatorProcess],
) -> None:
    sim = vcsim_factory(inventory=inventory(HOSTS, DEVICES))
    operator = fault_operator(sim)
    operator.start()
    apply(sandbox, hpp("before-hang", [host_name(0), host_name(1)]))
    wait_ready(sandbox, ["before-hang"], timeout=120)  # logged in, the change watch running

    liveness = LivenessWatch(operator)
    liveness.start()
    hang(sim, True)
    started = time.monotonic()
    try:
        apply(sandbox, hpp("during-hang", [host_name(2), host_name(3)]))
        ready = eventually(
            lambda: _unreachable(sandbox, "during-hang"),
            timeout=180,
            what="Ready=False VCenterUnreachable while vCenter hangs",
        )
        unreachable_s = time.monotonic() - started
        held = hang_state(sim)["held"]
    finally:
        hang(sim, False)
    wait_ready(sandbox, ["before-hang", "during-hang"], timeout=180)
    liveness.stop()

    sessions = logins(sim)
    updates = counters(sim).get("UpdatePassthruConfig", 0)
    violations = after_faults(sim, every_device(range(HOSTS)), operator, sessions)
    violations += liveness.failures
    if operator.runs != 1:
        violations.append(f"the operator was restarted ({operator.runs} runs)")
    summary(
        "vcenter-hang",
        faults=1,
        held_requests=held,
        unreachable_after_s=round(unreachable_s),
        liveness_probes=liveness.probes,
        liveness_failures=len(liveness.failures),
        update_calls=updates,
        logins=sessions,
        violations=len(violations),
    )
    assert ready["status"] == "False"
    assert held >= 1, "no request of the operator's reached the hung vCenter"
    assert liveness.probes >= 10
    assert violations == []
    # A call that timed out was never run by vCenter (the client hung up first): each host's
    # devices are enabled exactly once, before or after the hang.
    assert updates == HOSTS
