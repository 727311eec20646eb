"""SIGKILL of the operator at random points, during a large host convergence and mid rolling
reboot; after the restart everything converges, no host is left in maintenance mode, there is
one vCenter session per operator process, and nothing is written once converged (issue #7).

The kill points are drawn from a seeded random generator; the seed is in the summary line so a
failing run can be repeated (DPIO_FAULT_SEED).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable

import pytest
from tests.conftest import SimulatorFactory
from tests.faults.conftest import CLUSTER, DEVICES, HOSTS, every_device, inventory
from tests.faults.harness import (
    OperatorProcess,
    apply,
    counters,
    get_json,
    hpp,
    reset_counters,
    summary,
)
from tests.faults.invariants import after_faults, logins, wait_ready
from tests.waiting import eventually

from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = [pytest.mark.faults, pytest.mark.sandbox]

SEED = int(os.environ.get("DPIO_FAULT_SEED", str(time.time_ns() % 100_000)))
KILLS = int(os.environ.get("DPIO_FAULT_KILLS", "5"))
LATENCY_MS = 50


def _updates(sim: Simulator) -> int:
    return counters(sim).get("UpdatePassthruConfig", 0)


def _kill_at_random_points(
    operator: OperatorProcess, sim: Simulator, rng: random.Random, hosts: int, kills: int
) -> int:
    """Start, SIGKILL once the convergence reached a random point, `kills` times.

    The points are numbers of UpdatePassthruConfig calls made so far (spread over the whole
    convergence), plus a random delay of up to half a second so the kill also lands between a
    call and its status write."""
    points = sorted(rng.sample(range(hosts), min(kills, hosts)))
    done = 0
    for point in points:
        operator.start()
        eventually(
            lambda p=point: _updates(sim) >= p,  # type: ignore[misc]
            timeout=120,
            what=f"{point} UpdatePassthruConfig calls",
            every=0.05,
        )
        time.sleep(rng.uniform(0, 0.5))
        operator.kill()
        done += 1
    return done


def test_sigkill_during_a_large_convergence(
    sandbox: Sandbox,
    vcsim_factory: SimulatorFactory,
    fault_operator: Callable[[Simulator], OperatorProcess],
) -> None:
    rng = random.Random(SEED)
    sim = vcsim_factory(inventory=inventory(HOSTS, DEVICES))
    operator = fault_operator(sim)
    apply(sandbox, hpp("crash-large", {"clusters": [CLUSTER]}))
    # Network latency makes the convergence long enough to be cut at many points.
    sim.admin("PUT", "/latency", {"ms": LATENCY_MS})
    reset_counters(sim)

    kills = _kill_at_random_points(operator, sim, rng, HOSTS, KILLS)
    operator.start()
    wait_ready(sandbox, ["crash-large"], timeout=300, what="hpp/crash-large Ready after the kills")
    sim.admin("PUT", "/latency", {"ms": 0})
    updates = _updates(sim)
    sessions = logins(sim)

    violations = after_faults(sim, every_device(range(HOSTS)), operator, sessions)
    status = get_json(sandbox, "hpp", "crash-large")["status"]["summary"]
    summary(
        "sigkill-large-convergence",
        seed=SEED,
        faults=kills,
        hosts=HOSTS,
        devices_active=f"{status['active']}/{HOSTS * DEVICES}",
        update_calls=updates,
        logins=sessions,
        processes=operator.runs,
        violations=len(violations),
    )
    assert violations == []
    assert status["active"] == HOSTS * DEVICES
    # A write interrupted by the kill may be repeated once, never more.
    assert updates <= HOSTS + kills


REBOOT_HOSTS = 6
PHASES = ("EnterMaintenanceMode_Task", "RebootHost_Task", "ExitMaintenanceMode_Task")


def test_sigkill_mid_rolling_reboot(
    sandbox: Sandbox,
    vcsim_factory: SimulatorFactory,
    fault_operator: Callable[[Simulator], OperatorProcess],
) -> None:
    """Hosts that can't rebind without a reboot: maintenance mode, reboot, exit, one at a time.
    The operator dies right after a random step of a random host's cycle."""
    rng = random.Random(SEED + 1)
    sim = vcsim_factory(inventory=inventory(REBOOT_HOSTS, 2, rebind=False), reboot_delay="1s")
    operator = fault_operator(sim)
    apply(
        sandbox,
        hpp(
            "crash-rolling",
            {"clusters": [CLUSTER]},
            reboot={"policy": "Rolling", "maxUnavailable": 1},
        ),
    )
    reset_counters(sim)
    cuts = sorted(
        ((rng.randrange(REBOOT_HOSTS) + 1, rng.choice(PHASES)) for _ in range(3)),
        key=lambda cut: (cut[0], PHASES.index(cut[1])),
    )
    kills = 0
    for count, phase in cuts:
        operator.start()
        eventually(
            lambda c=count, p=phase: counters(sim).get(p, 0) >= c,  # type: ignore[misc]
            timeout=120,
            what=f"{phase} #{count}",
            every=0.05,
        )
        operator.kill()
        kills += 1
    operator.start()
    wait_ready(
        sandbox, ["crash-rolling"], timeout=240, what="hpp/crash-rolling Ready after the kills"
    )
    calls = counters(sim)
    sessions = logins(sim)
    violations = after_faults(sim, every_device(range(REBOOT_HOSTS), 2), operator, sessions)
    reboots = calls.get("RebootHost_Task", 0)
    if reboots > REBOOT_HOSTS:
        violations.append(f"{reboots} reboots for {REBOOT_HOSTS} hosts: a host rebooted twice")
    summary(
        "sigkill-rolling-reboot",
        seed=SEED + 1,
        faults=kills,
        cuts="/".join(f"{p.split('_')[0]}#{c}" for c, p in cuts),
        hosts=REBOOT_HOSTS,
        reboots=reboots,
        logins=sessions,
        processes=operator.runs,
        violations=len(violations),
    )
    assert violations == []
