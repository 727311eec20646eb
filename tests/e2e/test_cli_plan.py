"""`dpio plan` shows the changes the operator then makes: the same UpdatePassthruConfig calls,
on the same hosts, with the same devices, and nothing left to do afterwards (issue #5)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.e2e.conftest import apply, get, kubectl, secret_for
from tests.integration.vsphere.helpers import eventually
from tests.integration.vsphere.test_cli import dpio

from dpio_sandbox import manifests
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = pytest.mark.sandbox

NAME, SECRET, NAMESPACE = "e2e-cli-plan", "vcsim-cli-plan", "e2e-cli"
HOSTS = ["esx-gpu-01.lab.local", "esx-gpu-02.lab.local", "esx-gpu-03.lab.local",
         "esx-standalone-01.lab.local"]  # fmt: skip
POLICY = manifests.policy(
    NAME,
    secret=SECRET,
    hosts=HOSTS,
    devices=[
        {"vendorID": "10de", "deviceID": "20b5", "hardwareLabel": "a100"},  # A100s
        {"namePattern": "Quadro RTX 6000"},  # with its audio function (dependentDevice)
        {"address": "0000:18:00.0"},  # esx-gpu-01's vmk0 NIC: refused
    ],
    # standalone-vm-01 is in the root VM folder, powered off: the defaults are enough.
    consumers=[manifests.consumer([NAMESPACE])],
)
# standalone-vm-01: powered off, on esx-standalone-01 (no cluster)
ASSIGNMENT = manifests.assignment(
    "e2e-cli-vm", NAMESPACE, NAME, "standalone-vm-01", [manifests.pci_device("0000:3b:00.0")]
)


def converged(
    box: Sandbox, kind: str = "hpp", name: str = NAME, namespace: str | None = None
) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        body = get(box, kind, name, namespace)
        status = body.get("status", {})
        reconciling = [c for c in status.get("conditions", []) if c["type"] == "Reconciling"]
        done = reconciling and reconciling[0]["status"] == "False"
        return body if done and status.get("observedGeneration") == 1 else None

    return check


def changes_of(plan: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(host, address) -> the planned HostPciPassthruConfig."""
    (obj,) = plan["objects"]
    return {(h["name"], c["address"]): c for h in obj["hosts"] for c in h["updatePassthruConfig"]}


@pytest.fixture
def sim(operator: Sandbox, vcsim_factory: Callable[..., Simulator]) -> Iterator[Simulator]:
    """A simulator of our own, and the objects of this module deleted while the operator runs."""
    yield vcsim_factory()
    kubectl(operator, "delete", "vmda", "--all", "-n", NAMESPACE, "--ignore-not-found",
            "--timeout=60s")  # fmt: skip
    kubectl(operator, "delete", "hpp", NAME, "--ignore-not-found", "--timeout=60s")


def test_plan_shows_exactly_what_the_operator_then_does(
    operator: Sandbox, sim: Simulator, tmp_path: Path
) -> None:
    secret_for(operator, sim, SECRET)
    manifest = tmp_path / "policy.yaml"
    manifest.write_text(yaml.safe_dump(POLICY))
    env = operator.env()  # the policy's secretRef, not $VSPHERE_URL, says which vCenter
    sim.admin("POST", "/counters/reset")

    code, out, err = dpio(env, "plan", "-f", str(manifest), "-o", "json")

    assert code == 2, err  # changes pending
    plan = json.loads(out)
    planned = changes_of(plan)
    assert set(planned) == {
        ("esx-gpu-02.lab.local", "0000:5e:00.0"),
        ("esx-gpu-02.lab.local", "0000:5e:00.1"),
        ("esx-gpu-03.lab.local", "0000:3b:00.0"),
        ("esx-standalone-01.lab.local", "0000:3b:00.0"),
    }
    assert any(p["reason"] == "DeviceInUse" for p in plan["objects"][0]["problems"])
    counts: Any = sim.admin("GET", "/counters")
    assert counts["counts"].get("UpdatePassthruConfig", 0) == 0  # plan changed nothing

    apply(operator, POLICY)
    eventually(converged(operator), timeout=60)

    counts = sim.admin("GET", "/counters")
    calls = {h["name"] for h in plan["objects"][0]["hosts"] if h["updatePassthruConfig"]}
    assert counts["counts"].get("UpdatePassthruConfig", 0) == len(calls)
    code, out, err = dpio(
        env, "inventory", "-o", "json", "--vcenter-secret", f"dpio-system/{SECRET}"
    )
    assert code == 0, err
    now = {(h["name"], d["address"]): d for h in json.loads(out)["hosts"] for d in h["devices"]}
    for key, change in planned.items():
        device = now[key]
        assert device["enabled"] == change["passthruEnabled"], key
        assert device["active"] == (change["passthruEnabled"] if change["applyNow"] else False), key
        assert device["hardwareLabel"] == (change["hardwareLabel"] or device["hardwareLabel"]), key

    code, out, err = dpio(env, "plan", "-f", str(manifest))
    assert code == 0, out + err  # nothing left to do
    assert "Plan: 0 UpdatePassthruConfig call(s)" in out
    code, out, _ = dpio(env, "status")
    assert any(line.split()[:3] == ["hpp", "-", NAME] for line in out.splitlines()), out

    # The VM side, against the policy now in the cluster (--cluster): one ReconfigVM_Task.
    apply(operator, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    vm_manifest = tmp_path / "assignment.yaml"
    vm_manifest.write_text(yaml.safe_dump(ASSIGNMENT))
    sim.admin("POST", "/counters/reset")

    code, out, err = dpio(env, "plan", "-f", str(vm_manifest), "--cluster", "-o", "json")

    assert code == 2, out + err
    (vm_plan,) = json.loads(out)["objects"]
    assert vm_plan["reconfigVM"]["adds"] == [
        {"name": "gpu0", "backing": "PCI 0000:3b:00.0 (deviceId 20b5)"}
    ]
    assert (vm_plan["powerBefore"], vm_plan["forbidden"], vm_plan["unavailable"]) == (
        None,
        None,
        [],
    )
    apply(operator, ASSIGNMENT)
    eventually(converged(operator, "vmda", "e2e-cli-vm", NAMESPACE), timeout=60)
    counts = sim.admin("GET", "/counters")
    assert counts["counts"].get("ReconfigVM_Task", 0) == 1
    code, out, err = dpio(env, "inventory", "-o", "json", "--host", "esx-standalone-01.lab.local",
                          "--vcenter-secret", f"dpio-system/{SECRET}")  # fmt: skip
    (standalone,) = json.loads(out)["hosts"]
    assert standalone["devices"][0]["attachedTo"] == ["standalone-vm-01"]
    code, out, err = dpio(env, "plan", "-f", str(vm_manifest), "--cluster")
    assert code == 0, out + err
    assert "= no change" in out
