"""Conformance of the simulator to the clients vSphere administrators use (issue 18), with the
default inventory and a generated one: pyVmomi reads every property of every object whole, and
govc's read commands and passthrough writes succeed with the inventory's values."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pyVmomi import vim
from tests.integration.vsphere.conformance.conftest import Target
from tests.integration.vsphere.conformance.reading import Report, read_everything
from tests.integration.vsphere.helpers import connect, find

from dpio_sandbox import govc

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


@dataclass(frozen=True)
class Host:
    spec: dict[str, Any]
    path: str
    cluster: str | None

    @property
    def name(self) -> str:
        return str(self.spec["name"])


@dataclass(frozen=True)
class VM:
    spec: dict[str, Any]
    path: str

    @property
    def name(self) -> str:
        return str(self.spec["name"])


def hosts(inventory: dict[str, Any]) -> Iterator[Host]:
    for dc in inventory["datacenters"]:
        for cluster in dc.get("clusters") or []:
            for h in cluster.get("hosts") or []:
                yield Host(h, f"/{dc['name']}/host/{cluster['name']}/{h['name']}", cluster["name"])
        for h in dc.get("hosts") or []:
            yield Host(h, f"/{dc['name']}/host/{h['name']}/{h['name']}", None)


def vms(inventory: dict[str, Any]) -> Iterator[VM]:
    for dc in inventory["datacenters"]:
        for vm in dc.get("vms") or []:
            folder = f"/{dc['name']}/vm" + (f"/{vm['folder']}" if vm.get("folder") else "")
            yield VM(vm, f"{folder}/{vm['name']}")


def passthrough_ready(host: Host) -> set[str]:
    """Addresses of the host's devices a VM can be given: capable, enabled and active."""
    if host.spec.get("iommu") is False:
        return set()
    return {
        d["address"]
        for d in host.spec.get("pciDevices") or []
        if d.get("capable") is not False and d.get("enabled") and d.get("active")
    }


class Govc:
    """govc against one simulator, counting the commands it runs into the report."""

    def __init__(self, target: Target, report: Report) -> None:
        self._target, self._report = target, report

    def __call__(self, *args: str) -> str:
        self._report.govc_commands += 1
        try:
            return govc.run(self._target.sim, *args).stdout
        except govc.GovcError as err:
            self._report.failures.append(f"{self._target.name}: {err}")
            raise

    def json(self, *args: str) -> Any:
        command, *rest = args
        return json.loads(self(command, "-json", *rest))


@pytest.fixture
def run(target: Target, report: Report) -> Govc:
    return Govc(target, report)


def test_every_property_of_every_object_reads_whole(target: Target, report: Report) -> None:
    mine = Report()
    with connect(target.sim) as si:
        read_everything(si, mine)
    report.objects += mine.objects
    report.pc_reads += mine.pc_reads
    report.attribute_reads += mine.attribute_reads
    report.types |= mine.types
    report.failures += [f"{target.name}: {f}" for f in mine.failures]
    expected = {"HostSystem", "VirtualMachine", "ClusterComputeResource", "HostPciPassthruSystem"}
    assert expected <= mine.types
    assert mine.failures == []


def test_govc_inventory_reads(target: Target, run: Govc) -> None:
    inv = target.inventory
    all_hosts, all_vms = list(hosts(inv)), list(vms(inv))
    dcs = [dc["name"] for dc in inv["datacenters"]]
    assert sorted(run("ls", "/").split()) == sorted(f"/{dc}" for dc in dcs)
    for dc in inv["datacenters"]:
        top = {f"/{dc['name']}/host/{c['name']}" for c in dc.get("clusters") or []}
        top |= {f"/{dc['name']}/host/{h['name']}" for h in dc.get("hosts") or []}
        assert set(run("ls", f"/{dc['name']}/host").split()) == top
    found = run("find", "/", "-type", "h").split()
    assert sorted(p.rsplit("/", 1)[1] for p in found) == sorted(h.name for h in all_hosts)
    found = run("find", "/", "-type", "m").split()
    assert sorted(p.rsplit("/", 1)[1] for p in found) == sorted(v.name for v in all_vms)
    assert run("find", "/", "-type", "m", "-name", all_vms[0].name).split() == [all_vms[0].path]


def test_govc_host_reads(target: Target, run: Govc) -> None:
    for host in hosts(target.inventory):
        info = run.json("host.info", host.path)["hostSystems"][0]
        assert info["name"] == host.name
        spec = host.spec
        want_pci = {d["address"] for d in spec.get("pciDevices") or []}
        want_pci |= {n["pci"] for n in (spec.get("nics") or []) + (spec.get("hbas") or [])}
        assert {d["id"] for d in info["hardware"]["pciDevice"]} == want_pci, host.name
        assert info["summary"]["config"]["product"]["version"] == str(spec.get("version", "8.0.3"))

        vnics = run.json("host.vnic.info", "-host", host.path)["info"]
        switches = {
            s["name"]: s for s in run.json("host.vswitch.info", "-host", host.path)["vswitch"]
        }
        # Without vmkernelNics in the inventory a host has ESXi's management vmk0.
        want_vnics = spec.get("vmkernelNics") or [{"device": "vmk0"}]
        pnics = {n["device"] for n in spec.get("nics") or []}
        assert sorted(v["device"] for v in vnics) == sorted(v["device"] for v in want_vnics)
        for want in want_vnics:
            got = next(v for v in vnics if v["device"] == want["device"])
            if want.get("ip"):
                assert got["address"] == want["ip"]
            if want.get("vswitch"):
                assert got["switch"] == want["vswitch"]
            if want.get("portgroup"):
                assert got["network"] == want["portgroup"]
            uplinks = switches[got["switch"]]["spec"]["bridge"]["nicDevice"]
            if want.get("pnic"):
                assert want["pnic"] in uplinks, (host.name, want, uplinks)
            assert uplinks, (host.name, got)
            if pnics:
                assert set(uplinks) <= pnics, (host.name, uplinks)
            assert switches[got["switch"]]["mtu"] == 1500

        hbas = run.json("host.storage.info", "-t", "hba", "-host", host.path)
        got_hbas = {(a["device"], a["pci"]) for a in hbas["storageDeviceInfo"]["hostBusAdapter"]}
        if spec.get("hbas"):
            assert got_hbas == {(a["device"], a["pci"]) for a in spec["hbas"]}, host.name
        else:
            # Excluded (README "Fidelity"): a host whose inventory lists no HBAs keeps the
            # template's, whose PCI functions hardware.pciDevice does not list.
            assert got_hbas, host.name
        run("host.storage.info", "-host", host.path)
        run("events", "-n", "20", host.path)


def test_govc_vm_reads(target: Target, run: Govc) -> None:
    host_by_name = {h.name: h for h in hosts(target.inventory)}
    for vm in vms(target.inventory):
        spec = vm.spec
        info = run.json("vm.info", "-r", vm.path)["virtualMachines"][0]
        assert info["name"] == vm.name
        assert info["runtime"]["powerState"] == (spec.get("powerState") or "poweredOff")
        if spec.get("cpus"):
            assert info["config"]["hardware"]["numCPU"] == spec["cpus"]
        if spec.get("memoryMB"):
            assert info["config"]["hardware"]["memoryMB"] == spec["memoryMB"]
        ref = info["runtime"]["host"]
        on = run.json("object.collect", f"{ref['type']}:{ref['value']}", "name")
        assert on[0]["val"] == spec["host"], vm.name
        run("device.ls", "-vm", vm.path)
        devices = run.json("device.info", "-vm", vm.path)["devices"]
        passthrough = [d for d in devices if d["type"] == "VirtualPCIPassthrough"]
        want = spec.get("pciPassthrough") or []
        assert len(passthrough) == len(want), vm.name
        static = sorted(p["address"] for p in want if p.get("address"))
        assert sorted(d["backing"]["id"] for d in passthrough if "id" in d["backing"]) == static
        for d in passthrough:
            assert d["controllerKey"] == 100, d
            assert d["unitNumber"] >= 18, d
            assert d["deviceInfo"]["label"].startswith("PCI device ")
        listed = run.json("device.pci.ls", "-vm", vm.path)["pciDevices"] or []
        addresses = {d["pciDevice"]["id"] for d in listed}
        # govc asks the VM's compute resource (QueryConfigTarget without a host): the active
        # devices of every host of its cluster.
        cluster = host_by_name[spec["host"]].cluster
        peers = [h for h in host_by_name.values() if cluster and h.cluster == cluster]
        want_ready = set().union(
            *(passthrough_ready(h) for h in peers or [host_by_name[spec["host"]]])
        )
        assert addresses == want_ready, vm.name
        collected = run.json("object.collect", vm.path, "config.hardware.numCPU", "name")
        values = {c["name"]: c["val"] for c in collected}
        assert values["name"] == vm.name
        assert values["config.hardware.numCPU"] == info["config"]["hardware"]["numCPU"]


def test_govc_cluster_events_tasks(target: Target, run: Govc) -> None:
    for dc in target.inventory["datacenters"]:
        for cluster in dc.get("clusters") or []:
            path = f"/{dc['name']}/host/{cluster['name']}"
            got = list(
                (run.json("cluster.override.info", "-cluster", path)["overrides"] or {}).values()
            )
            want = {o["vm"]: o for o in cluster.get("vmOverrides") or []}
            assert sorted(o["name"] for o in got) == sorted(want)
            vm_host = {v.name: v.spec["host"] for v in vms(target.inventory)}
            for o in got:
                spec = want[o["name"]]
                assert o["host"] == vm_host[o["name"]]
                if spec.get("drsBehavior"):
                    assert o["drs"]["behavior"] == spec["drsBehavior"]
                    assert o["drs"]["enabled"] is spec.get("drsEnabled", True)
                if spec.get("restartPriority"):
                    assert o["das"]["dasSettings"]["restartPriority"] == spec["restartPriority"]
    events = run("events", "-n", "50", "/")
    assert events.strip()
    tasks = run.json("tasks", "-n", "20")["tasks"]
    assert tasks
    assert all(t["state"] in ("success", "error") for t in tasks)


def test_govc_passthrough_writes(target: Target, run: Govc) -> None:
    """What an administrator does to give a VM a GPU: add the device, reserve memory, power on
    and off, remove it; and put the host in maintenance mode and back."""
    all_vms = list(vms(target.inventory))
    vm, host, address = _passthrough_candidate(target)
    if address not in passthrough_ready(host):
        # govc has no command for it: the administrator enables passthrough in the vSphere
        # Client; here with pyVmomi (applyNow on a host that rebinds without a reboot).
        with connect(target.sim) as si:
            esx = find(si, vim.HostSystem, host.name)
            config = vim.host.PciPassthruConfig(id=address, passthruEnabled=True, applyNow=True)
            esx.configManager.pciPassthruSystem.UpdatePassthruConfig([config])
    listed = run.json("device.pci.ls", "-vm", vm.path)["pciDevices"] or []
    assert address in {d["pciDevice"]["id"] for d in listed}
    run("device.pci.add", "-vm", vm.path, address)
    devices = run.json("device.info", "-vm", vm.path, "pcipassthrough-*")["devices"]
    assert [d["backing"]["id"] for d in devices] == [address]
    memory = run.json("vm.info", vm.path)["virtualMachines"][0]["config"]["hardware"]["memoryMB"]
    mmio = {d["address"]: d.get("mmioSizeGB", 0) for d in host.spec.get("pciDevices") or []}
    change = ["vm.change", "-vm", vm.path, "-mem.reservation", str(memory)]
    if mmio.get(address, 0) > 16:
        change += ["-e", "pciPassthru.use64bitMMIO=TRUE"]
        change += ["-e", f"pciPassthru.64bitMMIOSizeGB={mmio[address]}"]
    run(*change)
    run("vm.power", "-on", vm.path)
    state = run.json("object.collect", vm.path, "runtime.powerState")
    assert state[0]["val"] == "poweredOn"
    run("vm.power", "-off", "-force", vm.path)
    # device.pci.remove takes the device's name (its usage text says the PCI address)
    run("device.pci.remove", "-vm", vm.path, devices[0]["name"])
    assert run.json("device.info", "-vm", vm.path)["devices"]
    left = [
        d for d in run.json("device.info", "-vm", vm.path)["devices"] if "passthrough" in d["name"]
    ]
    assert left == []

    idle = next(
        h
        for h in hosts(target.inventory)
        if not h.spec.get("inMaintenanceMode")
        and not any(
            v.spec["host"] == h.name and v.spec.get("powerState") == "poweredOn" for v in all_vms
        )
    )
    run("host.maintenance.enter", idle.path)
    assert run.json("object.collect", idle.path, "runtime.inMaintenanceMode")[0]["val"] is True
    run("host.maintenance.exit", idle.path)
    assert run.json("object.collect", idle.path, "runtime.inMaintenanceMode")[0]["val"] is False
    events = run("events", "-n", "10", idle.path)
    assert "maintenance mode" in events
    tasks = run.json("tasks", "-n", "10")["tasks"]
    mine = [t for t in tasks if t["name"] in ("EnterMaintenanceMode_Task", "EnterMaintenanceMode")]
    assert mine
    assert mine[0]["reason"]["userName"] == target.sim.username


def _passthrough_candidate(target: Target) -> tuple[VM, Host, str]:
    """A powered-off VM without devices and a capable device no VM has, on a host where it is
    ready or can be made ready without a reboot."""
    all_vms = list(vms(target.inventory))
    used = {
        (v.spec["host"], p.get("address"))
        for v in all_vms
        for p in v.spec.get("pciPassthrough") or []
    }
    for host in hosts(target.inventory):
        if host.spec.get("iommu") is False:
            continue
        free = [
            d["address"]
            for d in host.spec.get("pciDevices") or []
            if d.get("capable") is not False
            and d["classId"].startswith("03")
            and (host.name, d["address"]) not in used
            and (d["address"] in passthrough_ready(host) or not d.get("enabled"))
            and (
                d["address"] in passthrough_ready(host)
                or host.spec.get("deviceRebindWithoutReboot")
            )
        ]
        idle = [
            vm
            for vm in all_vms
            if vm.spec["host"] == host.name
            and (vm.spec.get("powerState") or "poweredOff") == "poweredOff"
            and not vm.spec.get("pciPassthrough")
            and not vm.spec.get("ft")
            and not vm.spec.get("snapshots")
        ]
        mmio = {d["address"]: d.get("mmioSizeGB") or 0 for d in host.spec.get("pciDevices") or []}
        for address in sorted(free, key=lambda a: a not in passthrough_ready(host)):
            for vm in idle:
                # a large-BAR device needs EFI, which vm.change cannot set
                if mmio[address] <= 16 or vm.spec.get("firmware") == "efi":
                    return vm, host, address
    raise AssertionError("the inventory has no VM and device for the passthrough writes")
