"""HostPassthroughPolicy through `kubectl` and the running operator: deletionPolicy, drainTimeout,
a Secret that is missing or wrong, and the Events `kubectl describe` shows for each transition."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pyVmomi import vim
from tests.e2e.conftest import apply, get, kubectl, secret_for
from tests.integration.vsphere.helpers import connect, eventually, find

from dpio_sandbox import install, manifests
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = pytest.mark.sandbox

A100 = "0000:3b:00.0"
T4 = "0000:af:00.0"


def policy(name: str, secret: str, hosts: list[str], address: str, **spec: Any) -> dict[str, Any]:
    """The device at `address` on `hosts`; `spec` adds fields, or replaces the devices."""
    spec.setdefault("devices", [{"address": address}])
    return manifests.policy(name, secret=secret, hosts=hosts, **spec)


def condition(body: dict[str, Any], type_: str) -> dict[str, Any]:
    found = [c for c in body.get("status", {}).get("conditions", []) if c["type"] == type_]
    return found[0] if found else {}


def when(box: Sandbox, name: str, type_: str, status: str, reason: str = "") -> Callable[[], Any]:
    def check() -> dict[str, Any] | None:
        body = get(box, "hpp", name)
        found = condition(body, type_)
        if found.get("status") != status or (reason and found.get("reason") != reason):
            return None
        return body

    return check


def events(box: Sandbox, name: str) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the Events about policy `name`, oldest first."""
    raw = kubectl(box, "get", "events", "-n", "default", "-o", "json",
                  f"--field-selector=involvedObject.name={name}")  # fmt: skip
    items = sorted(json.loads(raw)["items"], key=lambda e: e["metadata"]["creationTimestamp"])
    return [(e["type"], e["reason"], e["message"]) for e in items]


def passthru(sim: Simulator, host_name: str, address: str) -> tuple[bool, bool]:
    """(passthruEnabled, passthruActive) of one device, read straight from the simulator."""
    with connect(sim) as si:
        host = find(si, vim.HostSystem, host_name)
        info = next(i for i in host.config.pciPassthruInfo if i.id == address)
        return bool(info.passthruEnabled), bool(info.passthruActive)


@pytest.mark.parametrize(
    ("deletion_policy", "after_delete"),
    [("Retain", (True, True)), ("Disable", (False, False))],
)
def test_deletion_policy_decides_what_stays_on_the_host(
    operator: Sandbox,
    vcsim_factory: Callable[..., Simulator],
    deletion_policy: str,
    after_delete: tuple[bool, bool],
) -> None:
    sim = vcsim_factory()
    name, secret = (
        f"e2e-delete-{deletion_policy.lower()}",
        f"vcsim-delete-{deletion_policy.lower()}",
    )
    secret_for(operator, sim, secret)
    host = "esx-standalone-01.lab.local"  # 8.0.2, rebinds without reboot
    apply(operator, policy(name, secret, [host], A100, deletionPolicy=deletion_policy))
    eventually(when(operator, name, "Ready", "True"))
    assert passthru(sim, host, A100) == (True, True)
    enabled = [e for e in events(operator, name) if e[1] == "PassthroughUpdated"]
    assert enabled == [("Normal", "PassthroughUpdated", f"Passthrough on {host}: enabled {A100}")]

    kubectl(operator, "delete", "hpp", name, "--timeout=30s")  # returns once the finalizer is off

    assert passthru(sim, host, A100) == after_delete
    assert "NotFound" in kubectl_failure(operator, "get", "hpp", name)


def kubectl_failure(box: Sandbox, *args: str) -> str:
    try:
        kubectl(box, *args)
    except RuntimeError as err:
        return str(err)
    raise AssertionError(f"kubectl {' '.join(args)} succeeded")


# A cluster of one host, DRS fully automated: web-01 is a VM DRS may move, but there is no
# other host to move it to, so maintenance mode is never reached (a drain the operator can't
# foresee failing: DrainBlocked covers only VMs DRS may not move).
LONE_HOST_INVENTORY = """
datacenters:
  - name: DC1
    clusters:
      - name: Lone-Cluster
        drs: {enabled: true, automationLevel: fullyAutomated}
        hosts:
          - name: esx-lone-01.lab.local
            version: "8.0.2"
            deviceRebindWithoutReboot: true
            pciDevices:
              - {address: "0000:af:00.0", vendorId: "10de", deviceId: "1eb8", classId: "0302",
                 name: "TU104GL [Tesla T4]", vendorName: NVIDIA Corporation}
    vms:
      - {name: web-01, host: esx-lone-01.lab.local, powerState: poweredOn, memoryMB: 2048}
"""


def test_a_host_that_cannot_drain_in_time_is_left_running_and_degraded(
    operator: Sandbox, vcsim_factory: Callable[..., Simulator]
) -> None:
    # applyNow: Never makes enabling the T4 wait for a reboot.
    sim = vcsim_factory(LONE_HOST_INVENTORY)
    secret_for(operator, sim, "vcsim-drain")
    host = "esx-lone-01.lab.local"
    reboot = {"policy": "Rolling", "maxUnavailable": 1, "drainTimeout": "3s"}
    apply(operator, policy("e2e-drain", "vcsim-drain", [host], T4, applyNow="Never", reboot=reboot))

    body = eventually(when(operator, "e2e-drain", "Degraded", "True", "DrainTimeout"), timeout=60)

    assert (
        "could not enter maintenance mode within 3s; left running"
        in condition(body, "Degraded")["message"]
    )
    assert condition(body, "RebootRequired")["status"] == "True"
    (status,) = body["status"]["hosts"]
    assert status["rollingReboot"]["phase"] == "Draining"  # kept: not drained again and again
    # Its task is over: a maintenance mode entered from now on is someone else's.
    assert status["rollingReboot"]["enteredByOperator"] is False
    assert status["devices"][0]["state"] == "PendingReboot"
    counts: Any = sim.admin("GET", "/counters")
    assert counts["counts"].get("RebootHost_Task", 0) == 0
    with connect(sim) as si:
        assert find(si, vim.HostSystem, host).runtime.inMaintenanceMode is False
    reasons = [(e[0], e[1]) for e in events(operator, "e2e-drain")]
    assert ("Normal", "RollingReboot") in reasons  # reboot needed
    assert ("Normal", "EnteringMaintenanceMode") in reasons
    assert ("Warning", "DrainTimeout") in reasons
    kubectl(operator, "delete", "hpp", "e2e-drain", "--timeout=30s")


def test_device_refused_and_reboot_needed_are_events(
    operator: Sandbox, vcsim_factory: Callable[..., Simulator]
) -> None:
    sim = vcsim_factory()
    secret_for(operator, sim, "vcsim-events")
    spec = {"devices": [{"address": "0000:18:00.0"}, {"namePattern": "Tesla T4"}]}
    body = policy("e2e-events", "vcsim-events", ["esx-gpu-01.lab.local", "esx-legacy-01.lab.local"],
                  A100, **spec)  # fmt: skip
    apply(operator, body)
    eventually(when(operator, "e2e-events", "RebootRequired", "True"))

    found = eventually(lambda: _having(events(operator, "e2e-events"), "PendingReboot"))
    # Told once, by Ready turning False for it (the first problem), not again per device.
    (refused,) = [e for e in found if e[1] == "DeviceInUse"]
    assert refused[0] == "Warning"
    assert "esx-gpu-01.lab.local 0000:18:00.0: Used by ESXi" in refused[2]
    (reboot,) = [e for e in found if e[1] == "PendingReboot"]
    assert reboot[0] == "Normal"
    assert "esx-legacy-01.lab.local" in reboot[2]
    kubectl(operator, "delete", "hpp", "e2e-events", "--timeout=30s")


def _having(found: list[tuple[str, str, str]], reason: str) -> list[tuple[str, str, str]] | None:
    return found if any(e[1] == reason for e in found) else None


def test_a_missing_or_wrong_secret_stalls_until_it_is_fixed_and_others_keep_working(
    operator: Sandbox, vcsim_factory: Callable[..., Simulator]
) -> None:
    sim = vcsim_factory()
    host = "esx-standalone-01.lab.local"
    apply(operator, policy("e2e-nosecret", "vcsim-later", [host], A100))
    secret_for(operator, sim, "vcsim-wrong")
    kubectl(operator, "patch", "secret", "vcsim-wrong", "-n", install.NAMESPACE, "--type=merge",
            "-p", json.dumps({"stringData": {"password": "not-the-password"}}))  # fmt: skip
    apply(operator, policy("e2e-wrongpw", "vcsim-wrong", [host], A100))

    missing = eventually(when(operator, "e2e-nosecret", "Stalled", "True", "SecretNotFound"))
    wrong = eventually(when(operator, "e2e-wrongpw", "Stalled", "True", "InvalidCredentials"))
    assert (
        f"Secret {install.NAMESPACE}/vcsim-later not found"
        in condition(missing, "Ready")["message"]
    )
    assert f"Secret {install.NAMESPACE}/vcsim-wrong" in condition(wrong, "Stalled")["message"]
    assert "not-the-password" not in json.dumps(wrong)
    assert condition(missing, "Reconciling")["status"] == "False"  # kstatus: not retrying
    # Meanwhile the operator keeps serving others: this one goes Ready on the same simulator.
    secret_for(operator, sim, "vcsim-good")
    apply(operator, policy("e2e-goodsecret", "vcsim-good", [host], A100))
    eventually(when(operator, "e2e-goodsecret", "Ready", "True"))

    secret_for(operator, sim, "vcsim-later")  # create the missing Secret
    secret_for(operator, sim, "vcsim-wrong")  # put the right password in
    # Stalled policies are re-checked every 30 s (STALLED_RECHECK_SECONDS).
    eventually(when(operator, "e2e-nosecret", "Ready", "True"), timeout=60)
    eventually(when(operator, "e2e-wrongpw", "Ready", "True"), timeout=60)
    reasons = [(e[0], e[1]) for e in events(operator, "e2e-wrongpw")]
    assert ("Warning", "InvalidCredentials") in reasons
    assert ("Normal", "Reconciled") in reasons
    for name in ("e2e-nosecret", "e2e-wrongpw", "e2e-goodsecret"):
        kubectl(operator, "delete", "hpp", name, "--timeout=30s")
