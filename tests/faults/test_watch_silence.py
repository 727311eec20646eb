"""A Kubernetes watch that stays open and silent (issue 15): the operator reaches the API server
through a TCP proxy that, at one moment, freezes every connection open then (no byte forwarded
either way, no socket closed) while new connections pass. Changes made meanwhile (a new policy,
an edited one) must still be seen and converged: the operator gives up on its silent watches
after DPIO_WATCH_INACTIVITY_SECONDS and resumes them on new connections, and a status write
stuck on a frozen pooled connection times out and is retried, without a restart.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from tests.conftest import SimulatorFactory
from tests.faults.conftest import DEVICES, every_device, host_name, inventory
from tests.faults.freezing_proxy import FreezingProxy
from tests.faults.harness import OperatorProcess, apply, get_json, hpp, summary
from tests.faults.invariants import after_faults, logins, wait_ready

from dpio_sandbox.sandbox import Sandbox

pytestmark = [pytest.mark.faults, pytest.mark.sandbox]

HOSTS = 4
INACTIVITY_SECONDS = 10


@pytest.fixture
def proxy(sandbox: Sandbox) -> Iterator[FreezingProxy]:
    server = json.loads(sandbox.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    url = urlparse(server)
    assert url.hostname, server
    assert url.port, server
    running = FreezingProxy(url.hostname, url.port)
    running.start()
    try:
        yield running
    finally:
        running.close()


def test_a_silent_watch_is_noticed_and_nothing_is_missed(
    sandbox: Sandbox,
    vcsim_factory: SimulatorFactory,
    proxy: FreezingProxy,  # before the operator: it is torn down after the operator's cleanup
    fault_operator: Callable[..., OperatorProcess],
    tmp_path: Path,
) -> None:
    sim = vcsim_factory(inventory=inventory(HOSTS, DEVICES))
    kubeconfig = proxy.kubeconfig(sandbox.kubeconfig, tmp_path / "kubeconfig-via-proxy")
    operator = fault_operator(
        sim,
        extra_env={
            "KUBECONFIG": str(kubeconfig),
            "DPIO_WATCH_INACTIVITY_SECONDS": str(INACTIVITY_SECONDS),
        },
    )
    operator.start()
    apply(sandbox, hpp("before-freeze", [host_name(0)]))
    wait_ready(sandbox, ["before-freeze"], timeout=120)
    accepted = proxy.accepted

    frozen = proxy.freeze()
    started = time.monotonic()
    # Both changes are made while every connection the operator has is frozen.
    apply(sandbox, hpp("before-freeze", [host_name(0), host_name(1)]))
    apply(sandbox, hpp("during-freeze", [host_name(2), host_name(3)]))
    wait_ready(
        sandbox,
        ["before-freeze", "during-freeze"],
        timeout=180,
        what="both changes made during the freeze converged",
    )
    converged_s = time.monotonic() - started
    forwarding, still_frozen = proxy.connections()
    sessions = logins(sim)
    violations = after_faults(sim, every_device(range(HOSTS)), operator, sessions)
    if not operator.alive or operator.runs != 1:
        violations.append(f"the operator restarted ({operator.runs} runs) or died")
    active = sum(
        get_json(sandbox, "hpp", name)["status"]["summary"]["active"]
        for name in ("before-freeze", "during-freeze")
    )
    summary(
        "kube-watch-silence",
        faults=1,
        frozen_connections=frozen,
        still_frozen=still_frozen,
        new_connections=proxy.accepted - accepted,
        inactivity_s=INACTIVITY_SECONDS,
        converged_s=round(converged_s),
        devices_active=f"{active}/{HOSTS * DEVICES}",
        logins=sessions,
        violations=len(violations),
    )
    # The fault was real: the operator's connections were frozen and stayed so, and it went on
    # over new ones.
    assert frozen >= 1
    assert still_frozen >= 1
    assert proxy.accepted > accepted
    assert forwarding >= 1
    assert violations == []
