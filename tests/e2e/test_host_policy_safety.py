"""Rolling reboots and device removal an operations team would allow (issue 15, items 4 and 5),
through `kubectl apply`, the running operator and the simulator.

- A host someone else put in maintenance mode is neither rebooted nor taken out of it.
- A drain that powered-on VMs would block is not started; the VMs are named (`DrainBlocked`).
- `exclusive: true` and `deletionPolicy: Disable` leave enabled the devices a powered-off VM's
  Dynamic DirectPath device needs (the VM still powers on afterwards) and the devices an
  assignment still waits to attach.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from pyVmomi import vim
from tests.e2e.assignments import EVERY_VM
from tests.e2e.conftest import apply, get, kubectl, secret_for
from tests.e2e.test_host_policy_lifecycle import condition, when
from tests.integration.vsphere.helpers import connect, eventually, find, wait_task

from dpio_sandbox import manifests
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = pytest.mark.sandbox

T4 = {"namePattern": "Tesla T4"}
ROLLING = {"policy": "Rolling", "maxUnavailable": 2, "drainTimeout": "2m"}


def counts(sim: Simulator) -> dict[str, int]:
    counters: Any = sim.admin("GET", "/counters")
    return dict(counters["counts"])


def in_maintenance_mode(sim: Simulator, host: str) -> bool:
    with connect(sim) as si:
        return bool(find(si, vim.HostSystem, host).runtime.inMaintenanceMode)


def host_status(box: Sandbox, policy: str, host: str) -> dict[str, Any]:
    hosts = get(box, "hpp", policy).get("status", {}).get("hosts", [])
    return next((h for h in hosts if h["name"] == host), {})


def test_a_host_someone_else_put_in_maintenance_mode_is_neither_rebooted_nor_taken_out(
    operator: Sandbox, vcsim_factory: Callable[..., Simulator]
) -> None:
    sim = vcsim_factory(reboot_delay="300ms")
    secret_for(operator, sim, "vcsim-theirs")
    host = "esx-legacy-01.lab.local"  # ESXi 6.7: enabling the T4 needs a reboot
    with connect(sim) as si:  # an administrator's maintenance window, before the policy
        wait_task(find(si, vim.HostSystem, host).EnterMaintenanceMode_Task(timeout=0))
    apply(
        operator,
        manifests.policy(
            "e2e-theirs", secret="vcsim-theirs", hosts=[host], devices=[T4], reboot=ROLLING
        ),
    )

    body = eventually(when(operator, "e2e-theirs", "Degraded", "True", "MaintenanceModeByOthers"))
    assert "entered by someone else" in condition(body, "Degraded")["message"]
    assert condition(body, "RebootRequired")["status"] == "True"
    assert "Rolling reboot waits" in host_status(operator, "e2e-theirs", host)["message"]
    time.sleep(5)  # several reconciles (the policy is looked at again on every change)
    assert in_maintenance_mode(sim, host)
    assert counts(sim).get("RebootHost_Task", 0) == 0
    assert counts(sim).get("ExitMaintenanceMode_Task", 0) == 0

    with connect(sim) as si:  # the administrator is done: now the operator drains it itself
        wait_task(find(si, vim.HostSystem, host).ExitMaintenanceMode_Task(timeout=0))
    kubectl(operator, "wait", "--for=condition=Ready", "hpp/e2e-theirs", "--timeout=90s")
    got = counts(sim)
    assert (got["EnterMaintenanceMode_Task"], got["RebootHost_Task"]) == (2, 1)
    assert got["ExitMaintenanceMode_Task"] == 2  # the administrator's, then the operator's own
    assert not in_maintenance_mode(sim, host)
    kubectl(operator, "delete", "hpp", "e2e-theirs", "--timeout=30s")


def test_a_drain_powered_on_vms_would_block_is_not_started_and_names_them(
    operator: Sandbox, vcsim_factory: Callable[..., Simulator]
) -> None:
    # esx-gpu-01 runs ml-inference-01 (A100 attached), web-01 and vmfex-gen2-01 (DRS moves
    # those two); esx-gpu-03 runs ft-vm-01 (FT primary) and batch-01 (DRS override: manual).
    sim = vcsim_factory(reboot_delay="300ms")
    secret_for(operator, sim, "vcsim-blocked")
    gpu01, gpu03 = "esx-gpu-01.lab.local", "esx-gpu-03.lab.local"
    devices = [T4, {"vendorID": "10de", "deviceID": "20b5"}]  # the A100s: on esx-gpu-03 too
    apply(
        operator,
        manifests.policy(
            "e2e-blocked",
            secret="vcsim-blocked",
            hosts=[gpu01, gpu03],
            devices=devices,
            applyNow="Never",
            reboot=ROLLING,
        ),
    )

    def both_named() -> dict[str, Any] | None:
        body = when(operator, "e2e-blocked", "Degraded", "True", "DrainBlocked")()
        message = condition(body, "Degraded")["message"] if body else ""
        return body if gpu01 in message and gpu03 in message else None

    body = eventually(both_named)
    message = condition(body, "Degraded")["message"]
    assert "ml-inference-01 (PCI passthrough device)" in message
    assert "batch-01 (DRS manual)" in message
    assert "ft-vm-01 (Fault Tolerance)" in message
    assert "web-01" not in message  # DRS moves it, and vmfex-gen2-01
    assert "vmfex-gen2-01" not in message
    assert counts(sim).get("EnterMaintenanceMode_Task", 0) == 0  # no drain that can only time out
    assert all(h.get("rollingReboot") is None for h in body["status"]["hosts"])

    with connect(sim) as si:  # the owner of the GPU VM powers it off: esx-gpu-01 can drain now
        wait_task(find(si, vim.VirtualMachine, "ml-inference-01").PowerOffVM_Task())

    def rebooted() -> bool:
        devices = host_status(operator, "e2e-blocked", gpu01).get("devices", [])
        return bool(devices) and all(d["state"] == "Active" for d in devices)

    eventually(rebooted, timeout=90)
    assert not in_maintenance_mode(sim, gpu01)
    assert counts(sim)["RebootHost_Task"] == 1  # esx-gpu-03 is still blocked: not drained
    body = get(operator, "hpp", "e2e-blocked")
    assert condition(body, "Degraded")["reason"] == "DrainBlocked"
    assert "ft-vm-01 (Fault Tolerance)" in condition(body, "Degraded")["message"]
    kubectl(operator, "delete", "hpp", "e2e-blocked", "--timeout=30s")


# One host with two enabled A100s (label a100) and a T4, and a powered-off VM whose Dynamic
# DirectPath device takes an A100 labelled a100 at power-on (no 64-bit MMIO: mmioSizeGB 0).
_A100 = (
    'vendorId: "10de", deviceId: "20b5", classId: "0302", name: "GA100 [A100 PCIe 80GB]", '
    "vendorName: NVIDIA Corporation, enabled: true, active: true, hardwareLabel: a100"
)
DYNAMIC_INVENTORY = f"""
datacenters:
  - name: DC1
    hosts:
      - name: esx-dyn-01.lab.local
        version: "8.0.2"
        deviceRebindWithoutReboot: true
        pciDevices:
          - {{address: "0000:3b:00.0", {_A100}}}
          - {{address: "0000:5e:00.0", {_A100}}}
          - {{address: "0000:af:00.0", vendorId: "10de", deviceId: "1eb8", classId: "0302",
             name: "TU104GL [Tesla T4]", vendorName: NVIDIA Corporation}}
    vms:
      - {{name: dyn-off-01, host: esx-dyn-01.lab.local, powerState: poweredOff, memoryMB: 4096,
         memoryReservationLockedToMax: true, firmware: efi,
         pciPassthrough: [{{vendorId: "10de", deviceId: "20b5", label: a100}}]}}
"""
DYN_HOST = "esx-dyn-01.lab.local"


def enabled(sim: Simulator) -> dict[str, bool]:
    with connect(sim) as si:
        infos = find(si, vim.HostSystem, DYN_HOST).config.pciPassthruInfo
        return {
            i.id: bool(i.passthruEnabled) for i in infos if i.id in ("0000:3b:00.0", "0000:5e:00.0")
        }


def power_cycle(sim: Simulator, vm_name: str) -> None:
    """Power on (vSphere picks an enabled A100 for the dynamic device) and off again."""
    with connect(sim) as si:
        vm = find(si, vim.VirtualMachine, vm_name)
        wait_task(vm.PowerOnVM_Task())
        wait_task(vm.PowerOffVM_Task())


def test_exclusive_and_deletion_keep_what_a_powered_off_dynamic_directpath_vm_needs(
    operator: Sandbox, vcsim_factory: Callable[..., Simulator]
) -> None:
    sim = vcsim_factory(DYNAMIC_INVENTORY)
    secret_for(operator, sim, "vcsim-dynamic")
    # exclusive: only the T4 is selected; one A100 goes, the one dyn-off-01 needs stays.
    apply(
        operator,
        manifests.policy(
            "e2e-exclusive", secret="vcsim-dynamic", hosts=[DYN_HOST], devices=[T4], exclusive=True
        ),
    )
    kubectl(operator, "wait", "--for=condition=Ready", "hpp/e2e-exclusive", "--timeout=60s")
    assert sorted(enabled(sim).values()) == [False, True]
    kept = host_status(operator, "e2e-exclusive", DYN_HOST)["devices"]
    assert any("powered-off VM dyn-off-01" in (d.get("message") or "") for d in kept)
    power_cycle(sim, "dyn-off-01")
    kubectl(operator, "delete", "hpp", "e2e-exclusive", "--timeout=30s")

    # deletionPolicy: Disable of a policy that selects both A100s: one stays for dyn-off-01.
    a100s = [{"vendorID": "10de", "deviceID": "20b5", "hardwareLabel": "a100"}]
    apply(
        operator,
        manifests.policy(
            "e2e-disable",
            secret="vcsim-dynamic",
            hosts=[DYN_HOST],
            devices=a100s,
            deletionPolicy="Disable",
        ),
    )
    kubectl(operator, "wait", "--for=condition=Ready", "hpp/e2e-disable", "--timeout=60s")
    assert enabled(sim) == {"0000:3b:00.0": True, "0000:5e:00.0": True}
    kubectl(operator, "delete", "hpp", "e2e-disable", "--timeout=30s")
    assert sorted(enabled(sim).values()) == [False, True]
    power_cycle(sim, "dyn-off-01")


def test_deletion_leaves_a_device_an_assignment_still_waits_to_attach(
    operator: Sandbox, vcsim_factory: Callable[..., Simulator]
) -> None:
    # web-01 runs on esx-gpu-01 in GPU-Cluster, where HA and DRS conflict with passthrough: with
    # conflictPolicy Block the assignment waits (FeatureConflict), so the T4 is claimed but not
    # attached when the policy (deletionPolicy: Disable) goes.
    sim = vcsim_factory()
    secret_for(operator, sim, "vcsim-claims")
    gpu01, t4 = "esx-gpu-01.lab.local", "0000:af:00.0"
    apply(operator, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "claims"}})
    entry = manifests.consumer(["claims"], folders=[EVERY_VM])
    apply(
        operator,
        manifests.policy(
            "e2e-claims",
            secret="vcsim-claims",
            hosts=[gpu01],
            devices=[{"address": t4}],
            deletionPolicy="Disable",
            consumers=[entry],
        ),
    )
    kubectl(operator, "wait", "--for=condition=Ready", "hpp/e2e-claims", "--timeout=60s")
    apply(
        operator,
        manifests.assignment("web", "claims", "e2e-claims", "web-01", [manifests.pci_device(t4)]),
    )

    def observed() -> dict[str, Any] | None:  # pinned on its host, the T4 not attached
        status = get(operator, "vmda", "web", "claims").get("status", {})
        return status if status.get("vm", {}).get("host") == gpu01 else None

    status = eventually(observed, timeout=60)
    assert not any(d.get("attached") for d in status.get("devices", []))

    kubectl(operator, "delete", "hpp", "e2e-claims", "--timeout=30s")

    with connect(sim) as si:
        infos = find(si, vim.HostSystem, gpu01).config.pciPassthruInfo
        assert next(i for i in infos if i.id == t4).passthruEnabled is True
    assert counts(sim).get("ReconfigVM_Task", 0) == 0  # the VM never got it: still converging
    kubectl(operator, "delete", "vmda", "-n", "claims", "web", "--timeout=30s")
