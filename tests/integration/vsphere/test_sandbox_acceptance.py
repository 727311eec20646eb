"""What the sandbox promises (issue "Foundation"): a real API server, and a vSphere simulator that
pyVmomi reaches over verified TLS and that follows vSphere's passthrough rules."""

from __future__ import annotations

import ssl
import subprocess
import threading
from collections.abc import Callable
from typing import Any

import pytest
from pyVmomi import vim, vmodl
from tests.integration.vsphere.helpers import (
    connect,
    eventually,
    find,
    host_properties,
    wait_task,
)

from dpio_sandbox import sandbox as sandbox_mod
from dpio_sandbox import vcsim
from dpio_sandbox.procs import port_closed

pytestmark = pytest.mark.sandbox

SimulatorFactory = Callable[..., vcsim.Simulator]

LEGACY = "esx-legacy-01.lab.local"  # 6.7: no rebind without reboot
T4 = "0000:3b:00.0"


def _info(si: Any, host: str, pci_id: str) -> Any:
    infos = host_properties(si, ["config.pciPassthruInfo"])[host]["config.pciPassthruInfo"]
    return next(i for i in infos if i.id == pci_id)


def test_kube_apiserver_answers_readyz(sandbox: sandbox_mod.Sandbox) -> None:
    out = subprocess.run(
        [str(sandbox.kubectl), f"--kubeconfig={sandbox.kubeconfig}", "get", "--raw", "/readyz"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert out.stdout.strip() == "ok"


def test_env_file_names_everything_with_absolute_paths(sandbox: sandbox_mod.Sandbox) -> None:
    lines = (sandbox.state_dir / "env").read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines)
    assert set(env) >= {
        "KUBECONFIG", "VSPHERE_URL", "VSPHERE_USER", "VSPHERE_PASSWORD", "VSPHERE_CA_FILE",
        "SIM_ADMIN_URL",
    }  # fmt: skip
    assert env["VSPHERE_URL"].startswith("https://127.0.0.1:")
    assert env["VSPHERE_URL"].endswith("/sdk")
    assert env["KUBECONFIG"].startswith("/")
    assert env["VSPHERE_CA_FILE"].startswith("/")


def test_pyvmomi_lists_hosts_and_passthrough_info_over_verified_tls(
    sandbox: sandbox_mod.Sandbox,
) -> None:
    with connect(sandbox.vcsim) as si:
        hosts = host_properties(si, ["config.pciPassthruInfo", "hardware.pciDevice"])
    assert LEGACY in hosts
    assert len(hosts) >= 6
    a100 = next(
        d for d in hosts["esx-gpu-01.lab.local"]["hardware.pciDevice"] if d.id == "0000:3b:00.0"
    )
    assert (a100.vendorId & 0xFFFF, a100.deviceId & 0xFFFF) == (0x10DE, 0x20B5)
    x710 = next(
        d for d in hosts["esx-gpu-01.lab.local"]["hardware.pciDevice"] if d.id == "0000:18:00.0"
    )
    assert x710.vendorId < 0  # 0x8086 is a negative int16 on the wire, as on real ESXi
    noiommu = hosts["esx-noiommu-01.lab.local"]["config.pciPassthruInfo"]
    assert noiommu
    assert not any(i.passthruCapable for i in noiommu)


def test_tls_is_verified_a_foreign_ca_is_refused(sandbox: sandbox_mod.Sandbox) -> None:
    foreign = ssl.create_default_context()  # system CAs only: the sandbox CA is not among them
    with pytest.raises(ssl.SSLError), connect(sandbox.vcsim, context=foreign):
        pass


def test_enable_then_active_only_after_reboot_through_maintenance_mode(
    vcsim_factory: SimulatorFactory,
) -> None:
    sim = vcsim_factory(reboot_delay="200ms")
    with connect(sim) as si:
        host = find(si, vim.HostSystem, LEGACY)
        config = vim.host.PciPassthruConfig(id=T4, passthruEnabled=True)
        host.configManager.pciPassthruSystem.UpdatePassthruConfig([config])
        info = _info(si, LEGACY, T4)
        assert (info.passthruEnabled, info.passthruActive) == (True, False)
        assert host_properties(si, ["summary.rebootRequired"])[LEGACY]["summary.rebootRequired"]

        with pytest.raises(vim.fault.InvalidState):
            wait_task(host.RebootHost_Task(force=False))  # not in maintenance mode

        wait_task(host.EnterMaintenanceMode_Task(timeout=30))
        wait_task(host.RebootHost_Task(force=False))
        eventually(lambda: _info(si, LEGACY, T4).passthruActive)
        props = host_properties(si, ["runtime.connectionState", "summary.rebootRequired"])[LEGACY]
        assert props["runtime.connectionState"] == "connected"
        assert props["summary.rebootRequired"] is False
        wait_task(host.ExitMaintenanceMode_Task(timeout=30))


def test_adding_a_pci_device_to_a_powered_on_vm_is_refused(
    vcsim_factory: SimulatorFactory,
) -> None:
    sim = vcsim_factory()
    with connect(sim) as si:
        vm = find(si, vim.VirtualMachine, "web-01")  # powered on, on esx-gpu-01
        backing = vim.vm.device.VirtualPCIPassthrough.DeviceBackingInfo(
            id="0000:3b:00.0", deviceId="20b5", systemId="x", vendorId=0x10DE, deviceName="A100"
        )
        change = vim.vm.device.VirtualDeviceSpec(
            operation="add",
            device=vim.vm.device.VirtualPCIPassthrough(key=-100, backing=backing),
        )
        spec = vim.vm.ConfigSpec(deviceChange=[change], memoryReservationLockedToMax=True)
        with pytest.raises(vim.fault.InvalidPowerState):
            wait_task(vm.ReconfigVM_Task(spec))


def test_wait_for_updates_sees_passthrough_and_maintenance_changes(
    vcsim_factory: SimulatorFactory,
) -> None:
    sim = vcsim_factory()
    with connect(sim) as watcher, connect(sim) as actor:
        host = find(watcher, vim.HostSystem, LEGACY)
        pc = watcher.content.propertyCollector.CreatePropertyCollector()
        pc.CreateFilter(
            vmodl.query.PropertyCollector.FilterSpec(
                objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=host)],
                propSet=[
                    vmodl.query.PropertyCollector.PropertySpec(
                        type=vim.HostSystem,
                        pathSet=["config.pciPassthruInfo", "runtime.inMaintenanceMode"],
                    )
                ],
            ),
            partialUpdates=False,
        )
        options = vmodl.query.PropertyCollector.WaitOptions(maxWaitSeconds=10)
        version = pc.WaitForUpdatesEx("", options).version  # initial contents

        changed: list[str] = []

        def act() -> None:
            target = find(actor, vim.HostSystem, LEGACY)
            target.configManager.pciPassthruSystem.UpdatePassthruConfig(
                [vim.host.PciPassthruConfig(id=T4, passthruEnabled=True)]
            )
            wait_task(target.EnterMaintenanceMode_Task(timeout=30))

        thread = threading.Thread(target=act)
        thread.start()
        while set(changed) < {"config.pciPassthruInfo", "runtime.inMaintenanceMode"}:
            update = pc.WaitForUpdatesEx(version, options)
            assert update is not None, f"no update within 10s; saw {changed}"
            version = update.version
            for filter_set in update.filterSet:
                for obj in filter_set.objectSet:
                    changed.extend(change.name for change in obj.changeSet)
        thread.join()
        pc.Destroy()


def test_stopping_a_simulator_leaves_no_process_or_port(tmp_path: Any) -> None:
    sim = vcsim.start(tmp_path, name="lonely")
    port = int(sim.sdk_url.split(":")[2].split("/")[0])
    admin_port = int(sim.admin_url.rsplit(":", 1)[1])
    vcsim.stop(tmp_path, "lonely")
    assert port_closed(port)
    assert port_closed(admin_port)
    assert vcsim.read(tmp_path, "lonely") is None
