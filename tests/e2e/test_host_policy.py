"""HostPassthroughPolicy through `kubectl apply` and the running operator (issue 3's checks)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from pyVmomi import vim
from tests.e2e.conftest import apply, get, kubectl, secret_for
from tests.integration.vsphere.helpers import connect, eventually, find

from dpio_sandbox import manifests
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = pytest.mark.sandbox


def _policy(name: str, secret: str) -> dict[str, Any]:
    return manifests.policy(
        name,
        secret=secret,
        hosts={
            "clusters": ["GPU-Cluster"],
            "names": ["esx-legacy-01.lab.local", "esx-noiommu-01.lab.local"],
        },
        devices=[
            {"vendorID": "10de", "deviceID": "20b5", "hardwareLabel": "a100"},
            {"namePattern": "Tesla T4"},
            {"address": "0000:18:00.0"},
            {"address": "0000:99:00.0"},
        ],
    )


def _states(body: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {
        (host["name"], device.get("address", "")): device["state"]
        for host in body.get("status", {}).get("hosts", [])
        for device in host.get("devices", [])
    }


def _condition(body: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in body["status"]["conditions"] if c["type"] == type_)


def _converged(box: Sandbox, name: str) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        body = get(box, "hpp", name)
        status = body.get("status", {})
        if status.get("observedGeneration") != body["metadata"]["generation"]:
            return None
        if not status.get("conditions") or _condition(body, "Reconciling")["status"] != "False":
            return None
        return body

    return check


def _counts(sim: Simulator) -> dict[str, int]:
    counters: Any = sim.admin("GET", "/counters")
    return dict(counters["counts"])


def test_policy_reaches_every_device_state_then_stays_quiet_and_reverts_drift(
    operator: Sandbox, vcsim_factory: Callable[..., Simulator]
) -> None:
    sim = vcsim_factory()
    secret_for(operator, sim, "vcsim-e2e-1")
    apply(operator, _policy("e2e-states", "vcsim-e2e-1"))
    body = eventually(_converged(operator, "e2e-states"))

    states = _states(body)
    assert states[("esx-gpu-01.lab.local", "0000:3b:00.0")] == "Active"
    assert states[("esx-gpu-01.lab.local", "0000:18:00.0")] == "InUseByHost"
    assert states[("esx-gpu-01.lab.local", "0000:99:00.0")] == "NotFound"
    assert states[("esx-gpu-02.lab.local", "0000:3b:00.0")] == "PendingReboot"
    assert states[("esx-gpu-03.lab.local", "0000:3b:00.0")] == "Active"  # rebind, no reboot
    assert states[("esx-legacy-01.lab.local", "0000:3b:00.0")] == "PendingReboot"
    assert states[("esx-noiommu-01.lab.local", "0000:3b:00.0")] == "NotCapable"
    hosts = {h["name"]: h for h in body["status"]["hosts"]}
    assert hosts["esx-noiommu-01.lab.local"]["passthroughSupported"] is False
    reboot = _condition(body, "RebootRequired")
    assert reboot["status"] == "True"
    assert "esx-gpu-02.lab.local" in reboot["message"]
    assert "esx-legacy-01.lab.local" in reboot["message"]
    assert _condition(body, "Degraded")["reason"] == "PassthroughUnsupported"
    assert _condition(body, "Ready")["status"] == "False"

    # Re-applying the same policy: no vCenter write, no status write.
    sim.admin("POST", "/counters/reset")
    version = get(operator, "hpp", "e2e-states")["metadata"]["resourceVersion"]
    apply(operator, _policy("e2e-states", "vcsim-e2e-1"))
    time.sleep(3)
    assert _counts(sim).get("UpdatePassthruConfig", 0) == 0
    assert get(operator, "hpp", "e2e-states")["metadata"]["resourceVersion"] == version

    # Someone disables the A100 on esx-gpu-03 in the vSphere Client: put back within seconds,
    # through vCenter change notification (no polling: the operator requeues nothing here).
    with connect(sim) as si:
        host = find(si, vim.HostSystem, "esx-gpu-03.lab.local")
        host.configManager.pciPassthruSystem.UpdatePassthruConfig(
            [vim.host.PciPassthruConfig(id="0000:3b:00.0", passthruEnabled=False)]
        )
        started = time.monotonic()

        def reverted() -> bool:
            infos = host.config.pciPassthruInfo
            info = next(i for i in infos if i.id == "0000:3b:00.0")
            return bool(info.passthruEnabled)

        eventually(reverted, timeout=5)
    assert time.monotonic() - started < 5
    assert _counts(sim)["UpdatePassthruConfig"] == 2  # the hand edit and the operator's fix

    kubectl(operator, "delete", "hpp", "e2e-states", "--timeout=30s")


def test_rolling_reboot_makes_the_policy_ready_and_kubectl_wait_returns(
    operator: Sandbox, vcsim_factory: Callable[..., Simulator]
) -> None:
    sim = vcsim_factory(reboot_delay="300ms")
    secret_for(operator, sim, "vcsim-e2e-2")
    policy = manifests.policy(
        "e2e-rolling",
        secret="vcsim-e2e-2",
        hosts=["esx-legacy-01.lab.local"],  # ESXi 6.7: enabling needs a reboot
        devices=[{"namePattern": "Tesla T4"}],
        reboot={"policy": "Rolling", "maxUnavailable": 1, "drainTimeout": "2m"},
    )
    apply(operator, policy)
    kubectl(operator, "wait", "--for=condition=Ready", "hpp/e2e-rolling", "--timeout=90s")

    body = get(operator, "hpp", "e2e-rolling")
    assert _states(body) == {("esx-legacy-01.lab.local", "0000:3b:00.0"): "Active"}
    assert _condition(body, "RebootRequired")["status"] == "False"
    counts = _counts(sim)
    assert counts["RebootHost_Task"] == 1
    assert counts["EnterMaintenanceMode_Task"] == 1
    assert counts["ExitMaintenanceMode_Task"] == 1
    with connect(sim) as si:
        host = find(si, vim.HostSystem, "esx-legacy-01.lab.local")
        assert host.runtime.inMaintenanceMode is False  # the operator took it out again

    def rebooted() -> list[str]:
        raw = kubectl(operator, "get", "events", "-n", "default", "-o", "json",
                      "--field-selector=involvedObject.name=e2e-rolling")  # fmt: skip
        return [e["message"] for e in json.loads(raw)["items"] if e["reason"] == "HostRebooted"]

    assert eventually(rebooted) == [
        "esx-legacy-01.lab.local rebooted; its passthrough changes are active"
    ]
    kubectl(operator, "delete", "hpp", "e2e-rolling", "--timeout=30s")


def test_a_redos_pattern_settles_and_a_backreference_stalls_with_invalid_spec(
    operator: Sandbox, vcsim_factory: Callable[..., Simulator]
) -> None:
    sim = vcsim_factory()
    secret_for(operator, sim, "vcsim-e2e-3")

    def policy(name: str, host: str, patterns: list[str]) -> dict[str, Any]:
        devices = [{"namePattern": p} for p in patterns]
        return manifests.policy(name, secret="vcsim-e2e-3", hosts=[host], devices=devices)

    # esx-gpu-01's X710s are "Ethernet Controller X710 for 10GbE SFP+": 38 word characters and
    # spaces, then "+". Python's re would try every split of those words before failing, and
    # the operator would stop answering; RE2 says "no match" at once. Its boot HBA, "Lewisburg
    # SATA AHCI Controller", is words and spaces only: it matches, and is refused because ESXi
    # uses it. The docs' own T4 pattern selects the T4, active without a reboot on vSphere 8.
    apply(operator, policy("e2e-redos", "esx-gpu-01.lab.local",
                           [r"^(\w+\s?)*$", r"^TU104GL \[Tesla T4\]$"]))  # fmt: skip
    body = eventually(_converged(operator, "e2e-redos"))
    assert _states(body) == {
        ("esx-gpu-01.lab.local", "0000:00:17.0"): "InUseByHost",
        ("esx-gpu-01.lab.local", "0000:af:00.0"): "Active",
    }
    # The pattern selects a device ESXi uses: only a human (a narrower pattern) helps, so the
    # policy is Stalled (kstatus Failed), not left InProgress until a GitOps timeout.
    stalled = _condition(body, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "DeviceInUse")
    assert (_condition(body, "Ready")["status"], _condition(body, "Ready")["reason"]) == (
        "False",
        "DeviceInUse",
    )

    # Python's re selected the A100 ("GA100 [A100 PCIe 80GB]") with this; RE2 has no
    # backreferences. The API server admits it (CEL can't compile RE2); the operator stalls it.
    sim.admin("POST", "/counters/reset")
    apply(operator, policy("e2e-backref", "esx-gpu-03.lab.local", [r"(A100).*\1"]))
    body = eventually(_converged(operator, "e2e-backref"))
    stalled = _condition(body, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "InvalidSpec")
    assert stalled["message"].startswith(
        r"devices[0].namePattern is not RE2 syntax: invalid escape sequence: \1"
    )
    assert _condition(body, "Ready")["reason"] == "InvalidSpec"
    assert _counts(sim).get("UpdatePassthruConfig", 0) == 0  # the A100 stays as it was
    with connect(sim) as si:
        host = find(si, vim.HostSystem, "esx-gpu-03.lab.local")
        a100 = next(i for i in host.config.pciPassthruInfo if i.id == "0000:3b:00.0")
        assert a100.passthruEnabled is False

    # Deleted as it is, it goes: no finalizer left behind.
    kubectl(operator, "delete", "hpp", "e2e-backref", "e2e-redos", "--timeout=30s")
