"""`dpio plan` for VMDeviceAssignments: the operator's `plan_assignment` with the policy of the
files (its projected status), claims of the other assignments, and the VM as vCenter reports it
(replaced here by a fixed observation)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.unit.planner.builders import dev, host, info
from tests.unit.planner.vm.builders import GPU, NS, consumer, observe, vm

from dpio.cli import commands
from dpio.cli.main import build_parser
from dpio.planner.observed import ObservedInventory
from dpio.planner.vm.observed import ObservedVM, VMObservation
from dpio.vsphere.credentials import Credentials

ENV = {"VSPHERE_URL": "https://vc.lab/sdk", "VSPHERE_USER": "u", "VSPHERE_PASSWORD": "p"}
INVENTORY = ObservedInventory(
    hosts=(host("esx01", (dev(GPU),), (info(GPU, enabled=True, active=True, label="a100"),)),)
)
POLICY = {
    "apiVersion": "dpio.io/v1alpha1",
    "kind": "HostPassthroughPolicy",
    "metadata": {"name": "gpu-hosts"},
    "spec": {
        "hosts": {"names": ["esx01"]},
        "devices": [{"vendorID": "10de", "deviceID": "20b5", "hardwareLabel": "a100"}],
        "consumers": [consumer()],
    },
}


def vmda(name: str = "trainer", namespace: str = NS, **spec: Any) -> dict[str, Any]:
    body = {
        "policyRef": {"name": "gpu-hosts"},
        "vm": {"name": "ml-trainer-01"},
        "devices": [{"name": "gpu0", "pci": {"address": GPU}}],
        **spec,
    }
    return {
        "apiVersion": "dpio.io/v1alpha1",
        "kind": "VMDeviceAssignment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


class FakeVCenter(commands.Context):
    def __init__(self, the_vm: ObservedVM) -> None:
        super().__init__(env=dict(ENV), out=io.StringIO(), err=io.StringIO())
        self.the_vm = the_vm
        self.observed: list[str] = []

    def read_inventory(self, credentials: Credentials, names: Any = ()) -> ObservedInventory:
        return INVENTORY

    def observe_vm(self, credentials: Credentials, name: str, instance_uuid: str) -> VMObservation:
        self.observed.append(name)
        return observe(self.the_vm)


def run_plan(
    tmp_path: Path, the_vm: ObservedVM, *bodies: dict[str, Any], output: str = "text"
) -> tuple[int, str, FakeVCenter]:
    path = tmp_path / "objects.yaml"
    path.write_text(yaml.safe_dump_all(bodies))
    args = build_parser().parse_args(["plan", "-f", str(path), "-o", output, "--insecure"])
    ctx = FakeVCenter(the_vm)
    code = commands.plan(args, ctx)
    return code, ctx.out.getvalue(), ctx  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("the_vm", "spec", "code", "lines"),
    [
        # Powered off: one ReconfigVM_Task with the device and the full memory reservation.
        (
            vm(),
            {},
            2,
            [
                "~ ReconfigVM_Task (vm-42)",
                f"+ add gpu0: PCI {GPU} (deviceId 20b5)",
                "~ memoryReservationLockedToMax: true",
            ],
        ),
        # Dynamic DirectPath: allowedDevice and customLabel.
        (
            vm(),
            {
                "devices": [
                    {
                        "name": "g",
                        "dynamic": {"vendorID": "10de", "deviceID": "20b5", "label": "a100"},
                    }
                ]
            },
            2,
            ["+ add g: Dynamic DirectPath 10de:20b5 label a100"],
        ),
        # Powered on, WaitForPowerOff: nothing now, but the VM changes once powered off.
        (vm(power_state="poweredOn"), {}, 2, ["! PowerOffRequired"]),
        # PowerOff: the power steps around the reconfigure.
        (
            vm(power_state="poweredOn"),
            {"powerPolicy": "PowerOff"},
            2,
            [
                "> PowerOff first",
                "then, with the VM powered off, the device change",
                "! PowerOffRequired",
            ],
        ),
        # Resolve: hot add goes off in the same reconfigure, as docs/design.md says.
        (
            vm(cpu_hot_add_enabled=True),
            {"conflictPolicy": "Resolve"},
            2,
            ["~ cpuHotAddEnabled: false", "! conflict HotAdd: ", "(resolved by the change)"],
        ),
        # The A100 maps 128 GB: the 64-bit MMIO window goes in the same reconfigure.
        (
            vm(),
            {},
            2,
            [
                "firmware efi, vmx-19, devices map 128 GB (needs EFI and 64-bit MMIO)",
                "~ extraConfig pciPassthru.use64bitMMIO = 'TRUE'",
                "~ extraConfig pciPassthru.64bitMMIOSizeGB = '128'",
            ],
        ),
        # A BIOS VM is refused, nothing planned.
        (
            vm(firmware="bios"),
            {},
            1,
            ["! Stalled FirmwareNotEFI: VM ml-trainer-01 boots with bios firmware", "= no change"],
        ),
        # Dynamic DirectPath on vmx-15, opted in: the upgrade, alone.
        (
            vm(hardware_version="vmx-15"),
            {
                "upgradeHardwareVersion": True,
                "devices": [{"name": "g", "dynamic": {"vendorID": "10de", "deviceID": "20b5"}}],
            },
            2,
            ["~ UpgradeVM_Task vmx-15 -> vmx-17 (not undone on delete)"],
        ),
        # Snapshots block the change, even under Resolve.
        (
            vm(snapshot_count=2),
            {},
            0,
            ["! conflict Snapshots: VM has 2 snapshots (blocks the change)"],
        ),
    ],
)
def test_vm_plan_text_and_exit_code(
    tmp_path: Path, the_vm: ObservedVM, spec: dict[str, Any], code: int, lines: list[str]
) -> None:
    got, out, _ = run_plan(tmp_path, the_vm, POLICY, vmda(**spec))

    assert got == code, out
    assert "VM ml-trainer-01 (vm-42) on esx01, " in out
    for line in lines:
        assert line in out, out


@pytest.mark.parametrize(
    ("bodies", "message"),
    [
        # The namespace is not a consumer: Forbidden, and the VM is not even looked at.
        ((POLICY, vmda(namespace="web")), "! Forbidden NotAConsumer"),
        # The policy is not in the files (and --cluster not given).
        ((vmda(),), "! Forbidden PolicyNotFound"),
    ],
)
def test_forbidden_without_reading_the_vm(
    tmp_path: Path, bodies: tuple[dict[str, Any], ...], message: str
) -> None:
    code, out, ctx = run_plan(tmp_path, vm(), *bodies)

    assert (code, ctx.observed) == (0, [])
    assert message in out


def test_the_older_assignment_in_the_files_claims_the_device(tmp_path: Path) -> None:
    _, out, _ = run_plan(tmp_path, vm(), POLICY, vmda("first"), vmda("second"))

    second = out[out.index(f"VMDeviceAssignment/{NS}/second") :]
    assert "ClaimedByAssignment" in second
    assert "ClaimedByAssignment" not in out[: out.index(f"VMDeviceAssignment/{NS}/second")]


def test_json(tmp_path: Path) -> None:
    code, out, _ = run_plan(tmp_path, vm(), POLICY, vmda(), output="json")

    data = json.loads(out)
    (vm_plan,) = [o for o in data["objects"] if o["kind"] == "VMDeviceAssignment"]
    assert (code, data["changed"], vm_plan["changed"]) == (2, True, True)
    assert vm_plan["reconfigVM"]["adds"] == [
        {"name": "gpu0", "backing": f"PCI {GPU} (deviceId 20b5)"}
    ]
    assert vm_plan["reconfigVM"]["settings"] == {"memoryReservationLockedToMax": True}
    assert (vm_plan["forbidden"], vm_plan["stalled"]) == (None, None)
