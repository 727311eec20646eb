"""Tenancy through `kubectl apply` and the running operator: two teams on one policy.

Team red (namespace e2e-red) may act on the VMs in folder red, team blue (e2e-blue) on those in
folder blue, each with the actions its consumer entry allows. Each team attaches devices to its
own VMs; every attempt on another team's VM, or with an action not granted, is refused with its
reason and ZERO vCenter writes (the simulator's call counters), and no status names anything
that is not the tenant's own. The tests run in file order: the last one deletes the policy.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pyVmomi import vim
from tests.e2e.assignments import (
    A100_IDS,
    TIMEOUT,
    a100s_yaml,
    backings_of,
    condition,
    condition_message,
    simulator_fixture,
    until,
    writes,
)
from tests.e2e.conftest import apply, get, kubectl
from tests.integration.vsphere.helpers import connect, eventually, find, wait_task

from dpio_sandbox.manifests import assignment, consumer, pci_device, policy
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = pytest.mark.sandbox

RED, BLUE, OUTSIDER = "e2e-red", "e2e-blue", "e2e-outsider"
POLICY, SIM, HOST = "e2e-tenancy", "vcsim-tenancy", "esx-t1.lab.local"
HA_HOST = "esx-ha.lab.local"


INVENTORY = f"""
datacenters:
  - name: DC1
    dvs:
      - name: vmfex-dvs
        portgroups:
          - {{name: vmfex-gen2, vmDirectPathGen2Allowed: true}}
    clusters:
      - name: GPU
        ha: {{enabled: false}}
        drs: {{enabled: true, automationLevel: manual}}
        hosts:
          - name: {HOST}
            version: "8.0.2"
            deviceRebindWithoutReboot: true
            gen2: {{supported: true}}
            pciDevices:
{a100s_yaml(("3b", "3c", "3d", "3e", "3f", "40"))}
      # HA restarts and DRS moves VMs here: what conflictPolicy Resolve overrides per VM.
      - name: HA
        ha: {{enabled: true, restartPriority: medium}}
        drs: {{enabled: true, automationLevel: fullyAutomated}}
        hosts:
          - name: {HA_HOST}
            version: "8.0.2"
            deviceRebindWithoutReboot: true
            pciDevices:
{a100s_yaml(("3b",))}
    hosts:
      - name: esx-far.lab.local
        version: "8.0.2"
        gen2: {{supported: true}}
    vms:
      - {{name: red-01, host: {HOST}, folder: red, resourcePool: red,
          firmware: efi, memoryMB: 4096}}
      - {{name: red-02, host: {HOST}, folder: red/prod, firmware: efi, memoryMB: 4096}}
      - {{name: red-move, host: {HOST}, folder: red, firmware: efi, memoryMB: 4096}}
      - {{name: red-swap, host: {HOST}, folder: red, firmware: efi, memoryMB: 4096}}
      - {{name: red-spare, host: {HOST}, folder: red, firmware: efi, memoryMB: 4096}}
      - {{name: red-run, host: {HA_HOST}, folder: red, powerState: poweredOn,
          firmware: efi, memoryMB: 4096}}
      - {{name: red-far, host: esx-far.lab.local, folder: red, firmware: efi, memoryMB: 4096,
          nics: [{{type: vmxnet3, network: vmfex-gen2}}]}}
      - {{name: blue-01, host: {HOST}, folder: blue, resourcePool: blue,
          firmware: efi, memoryMB: 4096}}
      - {{name: blue-gpu, host: {HOST}, folder: blue, firmware: efi, memoryMB: 4096,
          memoryReservationLockedToMax: true, pciPassthrough: [{{address: "0000:40:00.0"}}]}}
      - {{name: blue-net, host: {HOST}, folder: blue, firmware: efi, memoryMB: 4096,
          nics: [{{type: vmxnet3, network: vmfex-gen2}}]}}
"""

POLICY_BODY = policy(
    POLICY,
    secret=SIM,
    hosts=[HOST, HA_HOST],
    devices=[A100_IDS],
    consumers=[
        consumer(
            [RED],
            folders=["/DC1/vm/red"],
            power_policies=["WaitForPowerOff", "PowerOff"],
            conflict_policies=["Block", "Resolve"],
            maxDevices=4,
        ),
        {"namespaces": [BLUE], "vms": {"resourcePools": ["/DC1/host/GPU/Resources/blue"]}},
    ],
)
sim = simulator_fixture(SIM, INVENTORY, POLICY_BODY, namespaces=(RED, BLUE, OUTSIDER))


def _gpu(bus: str, name: str = "gpu0") -> dict[str, Any]:
    return pci_device(f"0000:{bus}:00.0", name)


def _forbidden(box: Sandbox, namespace: str, name: str, reason: str) -> dict[str, Any]:
    body = until(box, namespace, name, "Forbidden", ("True", reason))
    assert condition(body, "Stalled")[0] == "True"
    assert condition(body, "Ready")[0] == "False"
    return body


def _foreign(body: dict[str, Any], sim: Simulator, own: tuple[str, ...] = ()) -> list[str]:
    """What the status names that is not the tenant's own: other teams' VMs and objects, hosts,
    the vCenter's address, its user and Secret."""
    text = json.dumps(body.get("status", {}))
    for word in own:
        text = text.replace(word, "")
    server = re.sub(r"^https://|/sdk$", "", sim.sdk_url)
    leaks = ["blue-", RED if BLUE in own else BLUE, "esx-", server, sim.username, SIM]
    return [w for w in leaks if w and w in text]


def test_each_team_attaches_devices_to_its_own_vms(operator: Sandbox, sim: Simulator) -> None:
    apply(operator, assignment("red-gpu", RED, POLICY, "red-01", [_gpu("3b")]))
    apply(operator, assignment("blue-gpu", BLUE, POLICY, "blue-01", [_gpu("3c")]))
    red = until(operator, RED, "red-gpu", "Ready", ("True", "Reconciled"))
    blue = until(operator, BLUE, "blue-gpu", "Ready", ("True", "Reconciled"))
    assert backings_of(sim, "red-01") == ["0000:3b:00.0"]
    assert backings_of(sim, "blue-01") == ["0000:3c:00.0"]
    for body in (red, blue):
        vm = body["status"]["vm"]
        assert re.fullmatch(r"[0-9a-f-]{36}", vm["instanceUUID"])
        assert vm["vcenter"]
        assert body["status"]["devices"][0]["added"] is True
    assert _foreign(red, sim, own=(HOST,)) == []


ATTACKS = [
    # (namespace, name, VM, devices, extra spec, reason)
    (RED, "takes-blue-vm", "blue-01", [_gpu("3d")], {}, "VMOutOfScope"),
    (RED, "no-such-vm", "red-nothing", [_gpu("3d")], {}, "VMOutOfScope"),
    (RED, "adopts-blue-gpu", "blue-gpu", [_gpu("40")], {}, "VMOutOfScope"),
    (RED, "gen2-on-blue", "blue-net", [], {"networkDirectPath": [{"adapter": "Network adapter 1"}]},
     "VMOutOfScope"),
    (RED, "gen2-far-host", "red-far", [], {"networkDirectPath": [{"adapter": "Network adapter 1"}]},
     "HostNotInPolicy"),
    (BLUE, "power-off", "blue-01", [_gpu("3e")], {"powerPolicy": "PowerOff"},
     "PowerPolicyNotAllowed"),
    (BLUE, "resolve", "blue-01", [_gpu("3e")], {"conflictPolicy": "Resolve"},
     "ConflictPolicyNotAllowed"),
    (OUTSIDER, "not-a-consumer", "red-01", [_gpu("3e")], {}, "NotAConsumer"),
]  # fmt: skip


def test_every_attempt_outside_the_grant_is_refused_with_no_vcenter_write(
    operator: Sandbox, sim: Simulator
) -> None:
    sim.admin("POST", "/counters/reset")
    for namespace, name, vm, devices, extra, _ in ATTACKS:
        apply(operator, assignment(name, namespace, POLICY, vm, devices, **extra))
    bodies = {
        name: _forbidden(operator, namespace, name, reason)
        for namespace, name, _, _, _, reason in ATTACKS
    }
    assert writes(sim) == {}
    # Someone else's VM and no VM at all read the same: the tenant can't probe for names.
    taken = condition_message(bodies["takes-blue-vm"], "Forbidden").replace("blue-01", "X")
    missing = condition_message(bodies["no-such-vm"], "Forbidden").replace("red-nothing", "X")
    assert taken == missing
    for namespace, name, vm, *_ in ATTACKS:
        body = bodies[name]
        assert "vm" not in body["status"], f"{name} shows a VM it may not use"
        # The VM name is the tenant's own input; nothing else of the VM may show.
        assert _foreign(body, sim, own=(vm, namespace)) == [], name
    # The adopted GPU stays where it was.
    assert backings_of(sim, "blue-gpu") == ["0000:40:00.0"]


def test_the_quota_is_shared_oldest_first(operator: Sandbox, sim: Simulator) -> None:
    """red may hold 4 devices; red-gpu holds 1, so 4 more do not fit but 3 would."""
    sim.admin("POST", "/counters/reset")
    four = [_gpu(b, f"gpu{i}") for i, b in enumerate(("3d", "3e", "3f", "40"))]
    apply(operator, assignment("too-many", RED, POLICY, "red-02", four))
    body = until(operator, RED, "too-many", "DevicesUnavailable", ("True", "QuotaExceeded"))
    assert condition(body, "Stalled")[0] == "True"
    assert writes(sim) == {}
    assert backings_of(sim, "red-02") == []
    # Over its quota it claims nothing: a newer assignment that fits gets the device.
    apply(operator, assignment("fits", RED, POLICY, "red-02", [_gpu("3d")]))
    until(operator, RED, "fits", "Ready", ("True", "Reconciled"))
    kubectl(operator, "delete", "vmda", "fits", "too-many", "-n", RED, "--wait=true",
            "--timeout=60s")  # fmt: skip


def test_spec_vm_and_policy_ref_cannot_be_edited(operator: Sandbox, sim: Simulator) -> None:
    for patch in ({"vm": {"name": "red-02"}}, {"policyRef": {"name": "another-policy"}}):
        with pytest.raises(RuntimeError, match="immutable"):
            kubectl(
                operator,
                "patch", "vmda", "red-gpu", "-n", RED, "--type=merge",
                "-p", json.dumps({"spec": patch}),
            )  # fmt: skip
    assert get(operator, "vmda", "red-gpu", RED)["spec"]["vm"] == {"name": "red-01"}


def test_resolve_waits_with_the_cluster_until_the_vm_is_off(
    operator: Sandbox, sim: Simulator
) -> None:
    """A running VM under WaitForPowerOff: HA/DRS overrides are not applied while it waits."""
    sim.admin("POST", "/counters/reset")
    apply(operator, assignment("red-resolve", RED, POLICY, "red-run", [_gpu("3b")],
                         conflictPolicy="Resolve"))  # fmt: skip
    until(operator, RED, "red-resolve", "PowerOffRequired", ("True", "VMPoweredOn"))
    assert writes(sim) == {}
    kubectl(operator, "delete", "vmda", "red-resolve", "-n", RED, "--wait=true", "--timeout=60s")


def test_a_vm_that_takes_the_name_of_the_pinned_one_is_left_alone(
    operator: Sandbox, sim: Simulator
) -> None:
    apply(operator, assignment("red-pinned", RED, POLICY, "red-swap", [_gpu("3e")]))
    until(operator, RED, "red-pinned", "Ready", ("True", "Reconciled"))
    sim.admin("POST", "/counters/reset")
    with connect(sim) as si:
        wait_task(find(si, vim.VirtualMachine, "red-swap").Rename_Task("red-swap-old"))
        wait_task(find(si, vim.VirtualMachine, "red-spare").Rename_Task("red-swap"))
    until(operator, RED, "red-pinned", "Stalled", ("True", "VMReplaced"))
    assert writes(sim) == {}
    assert backings_of(sim, "red-swap") == []  # the newcomer got nothing
    # Deleting acts on the pinned VM only: its device goes, the newcomer is untouched.
    kubectl(operator, "delete", "vmda", "red-pinned", "-n", RED, "--wait=true", "--timeout=60s")
    assert backings_of(sim, "red-swap-old") == []
    assert backings_of(sim, "red-swap") == []


def test_a_vm_moved_out_of_scope_after_attach_is_left_alone(
    operator: Sandbox, sim: Simulator
) -> None:
    apply(operator, assignment("red-moving", RED, POLICY, "red-move", [_gpu("3f")]))
    until(operator, RED, "red-moving", "Ready", ("True", "Reconciled"))
    sim.admin("POST", "/counters/reset")
    with connect(sim) as si:
        blue = find(si, vim.Folder, "blue")
        wait_task(blue.MoveIntoFolder_Task([find(si, vim.VirtualMachine, "red-move")]))
    _forbidden(operator, RED, "red-moving", "VMOutOfScope")
    kubectl(operator, "delete", "vmda", "red-moving", "-n", RED, "--wait=true", "--timeout=60s")
    assert writes(sim) == {}
    assert backings_of(sim, "red-move") == ["0000:3f:00.0"]  # blue's VM now: untouched


def test_deleting_after_the_policy_is_gone_touches_nothing(
    operator: Sandbox, sim: Simulator
) -> None:
    """Without its policy the operator can't tell which vCenter or whether the team may still
    act: it releases the finalizer, says so in an Event, and writes nothing anywhere."""
    kubectl(operator, "delete", "hpp", POLICY, "--wait=true", f"--timeout={int(TIMEOUT)}s")
    sim.admin("POST", "/counters/reset")
    kubectl(operator, "delete", "vmda", "red-gpu", "-n", RED, "--wait=true", "--timeout=60s")
    assert writes(sim) == {}
    assert backings_of(sim, "red-01") == ["0000:3b:00.0"]

    def skipped() -> bool:
        raw = kubectl(operator, "get", "events", "-n", RED, "-o", "json",
                      "--field-selector", "involvedObject.name=red-gpu")  # fmt: skip
        return any(e["reason"] == "CleanupSkipped" for e in json.loads(raw)["items"])

    eventually(skipped, timeout=TIMEOUT)
