"""The pause switch end to end (docs/design.md#suspend-and-dry-run): `spec.suspend: true` on a
policy and on an assignment, and the operator run with `--dry-run`, against the simulator's call
counters. While suspended nothing is written to vCenter, yet the operator observes (a change
made by hand shows in status) and says what it would do; resumed, it converges. A deletion that
would write waits, finalizer kept, until writes are allowed again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim
from tests.e2e.assignments import (
    A100_YAML,
    TIMEOUT,
    WRITES,
    condition,
    condition_message,
    hpp,
    one_host,
    passthrough_of,
    until,
)
from tests.e2e.conftest import apply, get, kubectl, secret_for
from tests.integration.vsphere.helpers import connect, eventually, find

from dpio_sandbox import install, vcsim
from dpio_sandbox import operator as dpio_operator
from dpio_sandbox.manifests import pci_device
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = pytest.mark.sandbox

NS, SIM, HOST = "e2e-suspend", "vcsim-suspend", "esx-s.lab.local"
OFF, ON = "0000:3b:00.0", "0000:3c:00.0"  # an A100 passthrough is off for, one it is on for
#: Every SOAP method that changes vCenter: the VM side's and the rolling reboot's steps.
ALL_WRITES = WRITES  # host steps included (dpio_sandbox.vcsim.WRITE_METHODS)
INVENTORY = one_host(
    HOST,
    {
        OFF: A100_YAML.replace("enabled: true, active: true", "enabled: false, active: false"),
        ON: A100_YAML,
    },
    {"vm-s": "firmware: efi, memoryMB: 4096"},
)


@pytest.fixture(scope="module")
def sim(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """The module's simulator, its Secret and namespace; no operator (each test runs its own)."""
    install.install(sandbox)
    state = tmp_path_factory.mktemp(SIM)
    (state / "inventory.yaml").write_text(INVENTORY)
    simulator = vcsim.start(state, name=SIM, inventory=state / "inventory.yaml")
    try:
        secret_for(sandbox, simulator, SIM)
        apply(sandbox, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        yield simulator
    finally:
        vcsim.stop(state, SIM)


def writes(sim: Simulator) -> dict[str, int]:
    counters: Any = sim.admin("GET", "/counters")
    return {m: n for m, n in counters["counts"].items() if m in ALL_WRITES and n}


def policy(name: str, *, suspend: bool, **spec: Any) -> dict[str, Any]:
    body = hpp(name, SIM, [HOST], [{"address": OFF}, {"address": ON}], [NS])
    body["spec"].update(suspend=suspend, **spec)
    return body


def hpp_until(box: Sandbox, name: str, type_: str, want: tuple[str, str]) -> dict[str, Any]:
    """The policy once condition `type_` is `want` for its current generation."""

    def check() -> dict[str, Any] | None:
        body = get(box, "hpp", name)
        current = body.get("status", {}).get("observedGeneration") == body["metadata"]["generation"]
        return body if current and condition(body, type_) == want else None

    return eventually(check, timeout=TIMEOUT)


def device_state(body: dict[str, Any], address: str) -> str:
    rows = [d for h in body["status"]["hosts"] for d in h["devices"] if d.get("address") == address]
    return str(rows[0]["state"]) if rows else ""


def set_passthru(sim: Simulator, address: str, enabled: bool) -> None:
    """What an administrator does in the vSphere Client: one UpdatePassthruConfig."""
    with connect(sim) as si:
        host = find(si, vim.HostSystem, HOST)
        host.configManager.pciPassthruSystem.UpdatePassthruConfig(
            [vim.host.PciPassthruConfig(id=address, passthruEnabled=enabled)]
        )


def events(box: Sandbox, name: str, namespace: str) -> list[str]:
    listed = json.loads(
        kubectl(box, "get", "events", "-n", namespace, "-o", "json",
                "--field-selector", f"involvedObject.name={name}")
    )  # fmt: skip
    return [e["reason"] for e in listed["items"]]


def patch_suspend(box: Sandbox, kind: str, name: str, value: bool, *ns: str) -> None:
    patch = json.dumps({"spec": {"suspend": value}})
    kubectl(box, "patch", kind, name, *ns, "--type=merge", "-p", patch)


def test_a_suspended_policy_observes_writes_nothing_and_converges_when_resumed(
    sandbox: Sandbox, sim: Simulator, tmp_path: Path
) -> None:
    sim.admin("POST", "/counters/reset")
    with dpio_operator.running(sandbox, tmp_path / "operator.log"):
        apply(sandbox, policy("s-hosts", suspend=True))
        body = hpp_until(sandbox, "s-hosts", "Suspended", ("True", "Suspended"))
        assert condition(body, "Ready") == ("False", "Suspended")
        assert f"update passthrough on {HOST} (enable {OFF})" in condition_message(
            body, "Suspended"
        )
        assert device_state(body, OFF) == "Disabled"  # as vSphere has it: nothing projected
        assert device_state(body, ON) == "Active"
        assert writes(sim) == {}

        # Observation goes on: enabled by hand, the device shows Active and nothing is pending.
        set_passthru(sim, OFF, True)
        body = hpp_until(sandbox, "s-hosts", "Ready", ("True", "Reconciled"))
        assert device_state(body, OFF) == "Active"
        assert "nothing is pending" in condition_message(body, "Suspended")
        # ... and disabled by hand again, the operator does not put it back.
        set_passthru(sim, OFF, False)
        body = hpp_until(sandbox, "s-hosts", "Ready", ("False", "Suspended"))
        assert device_state(body, OFF) == "Disabled"
        assert writes(sim) == {"UpdatePassthruConfig": 2}  # both by hand, none by the operator

        # Resumed: the held-back call is made, once, and the policy is Ready.
        patch_suspend(sandbox, "hpp", "s-hosts", False)
        body = hpp_until(sandbox, "s-hosts", "Ready", ("True", "Reconciled"))
        assert condition(body, "Suspended") == ("False", "AsExpected")
        assert device_state(body, OFF) == "Active"
        assert writes(sim) == {"UpdatePassthruConfig": 3}

        # Suspended again, a deletion that would disable devices waits for suspend: false.
        sim.admin("POST", "/counters/reset")
        patch_suspend(sandbox, "hpp", "s-hosts", True)
        kubectl(sandbox, "patch", "hpp", "s-hosts", "--type=merge",
                "-p", '{"spec":{"deletionPolicy":"Disable"}}')  # fmt: skip
        hpp_until(sandbox, "s-hosts", "Suspended", ("True", "Suspended"))
        kubectl(sandbox, "delete", "hpp", "s-hosts", "--wait=false")
        eventually(
            lambda: (
                "Deletion waits" in condition_message(get(sandbox, "hpp", "s-hosts"), "Suspended")
            ),
            timeout=TIMEOUT,
        )
        assert "CleanupSuspended" in events(sandbox, "s-hosts", "default")
        assert writes(sim) == {}
        patch_suspend(sandbox, "hpp", "s-hosts", False)
        kubectl(sandbox, "wait", "--for=delete", "hpp/s-hosts", f"--timeout={int(TIMEOUT)}s")
        assert writes(sim) == {"UpdatePassthruConfig": 1}  # the cleanup, once resumed


def test_a_suspended_assignment_writes_nothing_and_its_deletion_waits(
    sandbox: Sandbox, sim: Simulator, tmp_path: Path
) -> None:
    devices = [pci_device(ON, "gpu0")]
    manifest = {
        "apiVersion": "dpio.io/v1alpha1",
        "kind": "VMDeviceAssignment",
        "metadata": {"name": "s-vm", "namespace": NS},
        "spec": {"policyRef": {"name": "s-gpus"}, "vm": {"name": "vm-s"}, "devices": devices},
    }
    with dpio_operator.running(sandbox, tmp_path / "operator.log"):
        apply(sandbox, policy("s-gpus", suspend=False))
        hpp_until(sandbox, "s-gpus", "Ready", ("True", "Reconciled"))
        sim.admin("POST", "/counters/reset")

        apply(sandbox, {**manifest, "spec": {**manifest["spec"], "suspend": True}})
        body = until(sandbox, NS, "s-vm", "Suspended", ("True", "Suspended"))
        assert condition(body, "Ready") == ("False", "Suspended")
        assert "reconfigure the VM (1 device(s) to add" in condition_message(body, "Suspended")
        assert body["status"]["vm"]["powerState"] == "poweredOff"  # observed
        assert passthrough_of(sim, "vm-s") == []
        assert writes(sim) == {}

        patch_suspend(sandbox, "vmda", "s-vm", False, "-n", NS)
        until(sandbox, NS, "s-vm", "Ready", ("True", "Reconciled"))
        assert len(passthrough_of(sim, "vm-s")) == 1
        assert writes(sim) == {"ReconfigVM_Task": 1}

        # Suspended, its deletion would take the device off: it waits, finalizer kept.
        sim.admin("POST", "/counters/reset")
        patch_suspend(sandbox, "vmda", "s-vm", True, "-n", NS)
        until(sandbox, NS, "s-vm", "Suspended", ("True", "Suspended"))
        kubectl(sandbox, "delete", "vmda", "s-vm", "-n", NS, "--wait=false")
        eventually(
            lambda: (
                "Deletion waits" in condition_message(get(sandbox, "vmda", "s-vm", NS), "Suspended")
            ),
            timeout=TIMEOUT,
        )
        assert "CleanupSuspended" in events(sandbox, "s-vm", NS)
        assert len(passthrough_of(sim, "vm-s")) == 1
        assert writes(sim) == {}

        patch_suspend(sandbox, "vmda", "s-vm", False, "-n", NS)
        kubectl(sandbox, "wait", "--for=delete", "vmda/s-vm", "-n", NS,
                f"--timeout={int(TIMEOUT)}s")  # fmt: skip
        assert passthrough_of(sim, "vm-s") == []
        kubectl(sandbox, "delete", "hpp", "s-gpus", f"--timeout={int(TIMEOUT)}s")


def test_dry_run_plans_and_reports_but_writes_nothing_then_a_real_run_converges(
    sandbox: Sandbox, sim: Simulator, tmp_path: Path
) -> None:
    set_passthru(sim, OFF, False)  # the tests before left it enabled
    sim.admin("POST", "/counters/reset")
    dry = {"DPIO_DRY_RUN": "true"}
    with dpio_operator.running(sandbox, tmp_path / "dry-run.log", env=dry):
        apply(sandbox, policy("d-hosts", suspend=False))
        body = hpp_until(sandbox, "d-hosts", "Suspended", ("True", "DryRun"))
        assert condition(body, "Ready") == ("False", "DryRun")
        assert f"enable {OFF}" in condition_message(body, "Suspended")
        assert device_state(body, OFF) == "Disabled"
        apply(
            sandbox,
            {
                "apiVersion": "dpio.io/v1alpha1",
                "kind": "VMDeviceAssignment",
                "metadata": {"name": "d-vm", "namespace": NS},
                "spec": {"policyRef": {"name": "d-hosts"}, "vm": {"name": "vm-s"},
                         "devices": [pci_device(ON, "gpu0")]},
            },
        )  # fmt: skip
        until(sandbox, NS, "d-vm", "Suspended", ("True", "DryRun"))
        assert writes(sim) == {}
    assert "Dry-run" in (tmp_path / "dry-run.log").read_text()

    # The same objects, the operator run for real: it converges.
    with dpio_operator.running(sandbox, tmp_path / "operator.log"):
        body = hpp_until(sandbox, "d-hosts", "Ready", ("True", "Reconciled"))
        assert condition(body, "Suspended") == ("False", "AsExpected")
        until(sandbox, NS, "d-vm", "Ready", ("True", "Reconciled"))
        assert writes(sim) == {"UpdatePassthruConfig": 1, "ReconfigVM_Task": 1}
        kubectl(sandbox, "delete", "vmda", "d-vm", "-n", NS, f"--timeout={int(TIMEOUT)}s")
        kubectl(sandbox, "delete", "hpp", "d-hosts", f"--timeout={int(TIMEOUT)}s")


ROLLING_HOST = "esx-r.lab.local"
# ESXi 8.0.2 that can't rebind: the A100, enabled but not active, waits for a reboot.
ROLLING_INVENTORY = f"""
datacenters:
  - name: DC1
    hosts:
      - name: {ROLLING_HOST}
        version: "8.0.2"
        deviceRebindWithoutReboot: false
        pciDevices:
          - {{address: "{OFF}", {A100_YAML.replace("active: true", "active: false")}}}
"""


def host_in_maintenance_mode(sim: Simulator) -> bool:
    with connect(sim) as si:
        return bool(find(si, vim.HostSystem, ROLLING_HOST).runtime.inMaintenanceMode)


def test_suspend_mid_rolling_reboot_stops_before_the_next_step(
    sandbox: Sandbox, vcsim_factory: Any, tmp_path: Path
) -> None:
    # The host stays down until /reboots/complete: the test, not a clock, decides when.
    rolling = vcsim_factory(ROLLING_INVENTORY, reboot_delay="1h")
    secret_for(sandbox, rolling, "vcsim-rolling")
    body = hpp("r-hosts", "vcsim-rolling", [ROLLING_HOST], [{"address": OFF}], [NS])
    body["spec"]["reboot"] = {"policy": "Rolling", "maxUnavailable": 1, "drainTimeout": "5m"}

    def phase() -> str:
        hosts = get(sandbox, "hpp", "r-hosts").get("status", {}).get("hosts", [])
        record = hosts[0].get("rollingReboot") if hosts else None
        return str(record["phase"]) if record else ""

    with dpio_operator.running(sandbox, tmp_path / "operator.log"):
        apply(sandbox, body)
        eventually(lambda: phase() == "Rebooting", timeout=TIMEOUT)
        patch_suspend(sandbox, "hpp", "r-hosts", True)
        hpp_until(sandbox, "r-hosts", "Suspended", ("True", "Suspended"))
        rolling.admin("POST", "/counters/reset")

        rolling.admin("POST", "/reboots/complete")  # back, still in maintenance mode
        held = eventually(
            lambda: (
                "take esx-r.lab.local out of maintenance mode"
                in condition_message(get(sandbox, "hpp", "r-hosts"), "Suspended")
            ),
            timeout=TIMEOUT,
        )
        assert held
        status = get(sandbox, "hpp", "r-hosts")["status"]
        assert "spec.suspend" in status["hosts"][0]["message"]  # the host says why it waits
        assert status["hosts"][0]["rollingReboot"]["phase"] == "Rebooting"  # not advanced
        assert host_in_maintenance_mode(rolling)
        assert writes(rolling) == {}

        patch_suspend(sandbox, "hpp", "r-hosts", False)
        hpp_until(sandbox, "r-hosts", "Ready", ("True", "Reconciled"))
        assert not host_in_maintenance_mode(rolling)
        assert writes(rolling) == {"ExitMaintenanceMode_Task": 1}
        kubectl(sandbox, "delete", "hpp", "r-hosts", f"--timeout={int(TIMEOUT)}s")
