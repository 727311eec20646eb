"""Rolling reboots an operations team would allow (issue 15, item 4): `maxUnavailable` is a
budget per vSphere cluster across all policies, and `reboot.windows` keep maintenance mode to
agreed hours; through `kubectl apply`, the running operator and the simulator.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pyVmomi import vim
from tests.e2e.conftest import apply, get, kubectl, secret_for
from tests.e2e.test_host_policy_lifecycle import condition, when
from tests.e2e.test_host_policy_safety import counts, in_maintenance_mode
from tests.integration.vsphere.helpers import connect, eventually, find, wait_task

from dpio_sandbox import manifests
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = pytest.mark.sandbox

T4 = {"namePattern": "Tesla T4"}
EVERY_DAY = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
HOSTS = ("esx-m-01.lab.local", "esx-m-02.lab.local", "esx-m-03.lab.local")
_T4 = (
    'vendorId: "10de", deviceId: "1eb8", classId: "0302", name: "TU104GL [Tesla T4]", '
    "vendorName: NVIDIA Corporation"
)
# One DRS cluster of three ESXi 8.0.2 hosts that can't rebind without a reboot, each with a T4
# that is not enabled yet (so enabling it needs a reboot) and no VMs (so drains are quick).
CLUSTER_INVENTORY = "datacenters:\n  - name: DC1\n    clusters:\n      - name: Maint-Cluster\n" + (
    "        drs: {enabled: true, automationLevel: fullyAutomated}\n        hosts:\n"
    + "".join(
        f'          - name: {h}\n            version: "8.0.2"\n'
        f"            deviceRebindWithoutReboot: false\n"
        f'            pciDevices:\n              - {{address: "0000:af:00.0", {_T4}}}\n'
        for h in HOSTS
    )
)


def rolling(**fields: Any) -> dict[str, Any]:
    return {"policy": "Rolling", "maxUnavailable": 1, "drainTimeout": "2m", **fields}


def unavailable(sim: Simulator, host: str) -> bool:
    with connect(sim) as si:
        runtime = find(si, vim.HostSystem, host).runtime
        return bool(runtime.inMaintenanceMode) or runtime.connectionState != "connected"


def test_two_policies_on_one_cluster_share_its_budget(
    operator: Sandbox, vcsim_factory: Callable[..., Simulator]
) -> None:
    sim = vcsim_factory(CLUSTER_INVENTORY, reboot_delay="2s")
    secret_for(operator, sim, "vcsim-budget")
    m01, m02, m03 = HOSTS
    with connect(sim) as si:  # an administrator works on the third host, no policy selects it
        wait_task(find(si, vim.HostSystem, m03).EnterMaintenanceMode_Task(timeout=0))
    for name, host in (("e2e-budget-a", m01), ("e2e-budget-b", m02)):
        apply(
            operator,
            manifests.policy(name, secret="vcsim-budget", hosts=[host], devices=[T4],
                             reboot=rolling()),
        )  # fmt: skip

    for name in ("e2e-budget-a", "e2e-budget-b"):
        body = eventually(
            when(operator, name, "RebootRequired", "True", "ClusterBudgetExhausted"), timeout=90
        )
        message = condition(body, "RebootRequired")["message"]
        assert f"unavailable in cluster Maint-Cluster: 1 ({m03})" in message
        assert condition(body, "Degraded")["status"] == "False"  # waiting is not a fault
    assert counts(sim)["EnterMaintenanceMode_Task"] == 1  # the administrator's only

    with connect(sim) as si:  # the administrator is done: one slot frees for both policies
        wait_task(find(si, vim.HostSystem, m03).ExitMaintenanceMode_Task(timeout=0))

    def both_ready() -> bool:
        # Sampled while the reboots run: the two policies never have their hosts down at once.
        assert not (unavailable(sim, m01) and unavailable(sim, m02)), "two hosts down"
        return all(
            when(operator, name, "Ready", "True")() for name in ("e2e-budget-a", "e2e-budget-b")
        )

    eventually(both_ready, timeout=240, interval=0.1)
    got = counts(sim)
    assert (got["EnterMaintenanceMode_Task"], got["RebootHost_Task"]) == (3, 2)
    assert not any(unavailable(sim, h) for h in HOSTS)
    for name in ("e2e-budget-a", "e2e-budget-b"):
        kubectl(operator, "delete", "hpp", name, "--timeout=30s")


def test_no_maintenance_mode_outside_the_windows_and_the_reboot_runs_inside_one(
    operator: Sandbox, vcsim_factory: Callable[..., Simulator]
) -> None:
    sim = vcsim_factory(CLUSTER_INVENTORY, reboot_delay="300ms")
    secret_for(operator, sim, "vcsim-windows")
    host = HOSTS[0]
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    # Every day, opening in six hours for one hour: closed now whatever the time of day.
    later = now + timedelta(hours=6)
    closed = {"days": EVERY_DAY, "start": later.strftime("%H:%M"), "duration": "1h",
              "timeZone": "UTC"}  # fmt: skip
    apply(
        operator,
        manifests.policy("e2e-windows", secret="vcsim-windows", hosts=[host], devices=[T4],
                         reboot=rolling(windows=[closed])),
    )  # fmt: skip

    body = eventually(
        when(operator, "e2e-windows", "RebootRequired", "True", "OutsideRebootWindow"), timeout=90
    )
    expected = later.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert body["status"]["reboot"] == {"windowOpen": False, "nextWindow": expected}
    assert f"the next opens at {expected}" in condition(body, "RebootRequired")["message"]
    assert "Rolling reboot waits: no reboot window is open" in body["status"]["hosts"][0]["message"]
    assert condition(body, "Degraded")["status"] == "False"
    time.sleep(5)  # several reconciles: still nothing
    assert counts(sim).get("EnterMaintenanceMode_Task", 0) == 0
    assert not in_maintenance_mode(sim, host)

    # A window open now, an hour ago to two hours from now, in Berlin's wall-clock time.
    berlin = (now - timedelta(hours=1)).astimezone(ZoneInfo("Europe/Berlin"))
    open_now = {"days": EVERY_DAY, "start": berlin.strftime("%H:%M"), "duration": "3h",
                "timeZone": "Europe/Berlin"}  # fmt: skip
    kubectl(
        operator, "patch", "hpp", "e2e-windows", "--type=merge",
        "-p", json.dumps({"spec": {"reboot": {"windows": [open_now]}}}),
    )  # fmt: skip
    kubectl(operator, "wait", "--for=condition=Ready", "hpp/e2e-windows", "--timeout=120s")
    got = counts(sim)
    assert (got["EnterMaintenanceMode_Task"], got["RebootHost_Task"]) == (1, 1)
    assert got["ExitMaintenanceMode_Task"] == 1
    body = get(operator, "hpp", "e2e-windows")
    assert "reboot" not in body["status"]  # nothing waits for a reboot any more
    kubectl(operator, "delete", "hpp", "e2e-windows", "--timeout=30s")


def test_an_unknown_time_zone_stalls_the_policy(
    operator: Sandbox, vcsim_factory: Callable[..., Simulator]
) -> None:
    sim = vcsim_factory(CLUSTER_INVENTORY)
    secret_for(operator, sim, "vcsim-zone")
    window = {"days": ["Mon"], "start": "22:00", "duration": "4h", "timeZone": "Europe/Atlantis"}
    apply(
        operator,
        manifests.policy("e2e-zone", secret="vcsim-zone", hosts=[HOSTS[0]], devices=[T4],
                         reboot=rolling(windows=[window])),
    )  # fmt: skip
    body = eventually(when(operator, "e2e-zone", "Stalled", "True", "InvalidSpec"), timeout=90)
    assert "unknown time zone 'Europe/Atlantis'" in condition(body, "Stalled")["message"]
    assert counts(sim).get("UpdatePassthruConfig", 0) == 0
    kubectl(operator, "delete", "hpp", "e2e-zone", "--timeout=30s")
