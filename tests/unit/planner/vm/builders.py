"""Builders for the VM planner tests (no tests here): an A100 host, a VM, a policy, a plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from dpio.api.assignment import VMDeviceAssignmentSpec, VMDeviceAssignmentStatus
from dpio.api.policy import DeviceState, DeviceStatus, HostPassthroughPolicySpec
from dpio.planner.vm.observed import (
    ConfigTarget,
    ConfigTargetDynamic,
    ConfigTargetPci,
    ObservedNic,
    ObservedPciDevice,
    ObservedVM,
    PolicyView,
    StaticBacking,
    VMObservation,
)
from dpio.planner.vm.plan import VMPlan, plan_assignment
from dpio.planner.vm.power import PowerTracking

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
GPU = "0000:3b:00.0"
GPU2 = "0000:af:00.0"
A100_VENDOR, A100_DEVICE = 0x10DE, 0x20B5
NS = "ml-team"
FOLDER = "/DC1/vm/ml-team"
POOL = "/DC1/host/GPU-Cluster/Resources/ml-team"
ALL_POWER = ["WaitForPowerOff", "ShutdownGuest", "PowerOff"]
ALL_CONFLICT = ["Block", "Resolve"]


def consumer(**fields: Any) -> dict[str, Any]:
    """A consumers[] entry for NS on FOLDER that allows every action unless told otherwise."""
    entry: dict[str, Any] = {
        "namespaces": [NS],
        "vms": {"folders": [FOLDER]},
        "powerPolicies": ALL_POWER,
        "conflictPolicies": ALL_CONFLICT,
    }
    entry.update(fields)
    return entry


def target_pci(address: str = GPU) -> ConfigTargetPci:
    return ConfigTargetPci(address, "sys-1", A100_VENDOR, A100_DEVICE, "GA100 [A100]")


def attached(key: int = 13000, address: str = GPU) -> ObservedPciDevice:
    return ObservedPciDevice(
        key, f"PCI device {key}", StaticBacking(address, "20b5", "sys-1", A100_VENDOR)
    )


def vm(**fields: Any) -> ObservedVM:
    fields.setdefault("host_version", "8.0.2")
    fields.setdefault("memory_mb", 16384)
    fields.setdefault("change_version", "cv-1")
    fields.setdefault("folder", FOLDER)
    fields.setdefault("resource_pool", POOL)
    fields.setdefault("firmware", "efi")
    fields.setdefault("hardware_version", "vmx-19")
    return ObservedVM(moref="vm-42", name="ml-trainer-01", host="esx01", **fields)


def converged_vm(**fields: Any) -> ObservedVM:
    fields.setdefault("pci_devices", (attached(),))
    fields.setdefault("memory_reservation_locked_to_max", True)
    # The A100 80GB maps 128 GB (known_devices): a converged VM has its 64-bit MMIO window.
    fields.setdefault("use64bit_mmio", "TRUE")
    fields.setdefault("mmio_size_gb", "128")
    return vm(**fields)


def vmxnet3(label: str = "Network adapter 1", **fields: Any) -> ObservedNic:
    fields.setdefault("kind", "vmxnet3")
    return ObservedNic(key=4000, label=label, **fields)


def row(address: str = GPU, state: DeviceState = DeviceState.ACTIVE, **f: Any) -> DeviceStatus:
    enabled = state in (DeviceState.ACTIVE, DeviceState.PENDING_REBOOT)
    return DeviceStatus.model_validate(
        {
            "address": address,
            "vendorID": "10de",
            "deviceID": "20b5",
            "enabled": enabled,
            "active": state is DeviceState.ACTIVE,
            "state": state,
            **f,
        }
    )


def policy(**fields: Any) -> HostPassthroughPolicySpec:
    body: dict[str, Any] = {
        "hosts": {"names": ["esx01"]},
        "devices": [{"vendorID": "10de", "deviceID": "20b5", "hardwareLabel": "a100"}],
        "consumers": [consumer()],
    }
    body.update(fields)
    return HostPassthroughPolicySpec.model_validate(body)


def observe(the_vm: ObservedVM | None = None, **fields: Any) -> VMObservation:
    fields.setdefault(
        "config_target",
        ConfigTarget(
            pci_passthrough=(target_pci(),),
            dynamic_passthrough=(ConfigTargetDynamic(A100_VENDOR, A100_DEVICE, "a100"),),
        ),
    )
    fields.setdefault("policy", PolicyView("gpu-hosts", policy(), (row(),)))
    return VMObservation(vm=the_vm if the_vm is not None else vm(), **fields)


def assignment(**fields: Any) -> VMDeviceAssignmentSpec:
    body: dict[str, Any] = {
        "policyRef": {"name": "gpu-hosts"},
        "vm": {"name": "ml-trainer-01"},
        "devices": [{"name": "gpu0", "pci": {"address": GPU}}],
    }
    body.update(fields)
    return VMDeviceAssignmentSpec.model_validate(body)


def plan(
    observed: VMObservation,
    spec: VMDeviceAssignmentSpec | None = None,
    *,
    previous: VMDeviceAssignmentStatus | None = None,
    tracking: PowerTracking | None = None,
    name: str = "trainer-gpu",
    namespace: str = NS,
    age: timedelta = timedelta(0),
    now: datetime = NOW,
) -> VMPlan:
    return plan_assignment(
        namespace=namespace,
        name=name,
        creation_timestamp=NOW - timedelta(days=1) + age,
        spec=spec or assignment(),
        observed=observed,
        now=now,
        previous=previous,
        tracking=tracking,
    )
