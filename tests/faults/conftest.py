"""Fault-suite fixtures: a simulator with a generated inventory, the operator as a process the
test owns, and cleanup that leaves the shared API server as it was.

Sizes and the outage length come from the environment so the suite can be made heavier by hand:
DPIO_FAULT_HOSTS (default 24), DPIO_FAULT_DEVICES (4 per host), DPIO_FAULT_OUTAGE_SECONDS (60).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
import yaml
from tests.faults.harness import SUMMARIES, OperatorProcess, kubectl, vcenter_secret

from dpio_sandbox import install, procs
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

HOSTS = int(os.environ.get("DPIO_FAULT_HOSTS", "24"))
DEVICES = int(os.environ.get("DPIO_FAULT_DEVICES", "4"))
OUTAGE_SECONDS = float(os.environ.get("DPIO_FAULT_OUTAGE_SECONDS", "60"))
CLUSTER = "Fault-Cluster"


def host_name(i: int) -> str:
    return f"esx-fault-{i:03d}.lab.local"


def address(d: int) -> str:
    """The PCI address of a host's `d`-th A100 in `inventory`: 0000:3b:00.0, 0000:3c:00.0, ..."""
    return f"0000:{0x3B + d:02x}:00.0"


def every_device(hosts: Iterable[int], devices: int = DEVICES) -> dict[str, set[str]]:
    """Host name -> the PCI ids of its `devices` A100s, for the hosts numbered `hosts`: what a
    policy for A100s on them must leave enabled and active (`invariants.vsphere_violations`)."""
    return {host_name(i): {address(d) for d in range(devices)} for i in hosts}


def inventory(hosts: int = HOSTS, devices: int = DEVICES, *, rebind: bool = True) -> str:
    """One DRS cluster of ESXi 8.0.2 hosts, each with `devices` A100s, none enabled yet.

    `rebind`: `deviceRebindWithoutReboot` (active at once); False: every change needs a reboot."""
    a100 = {
        "vendorId": "10de",
        "deviceId": "20b5",
        "classId": "0302",
        "name": "GA100 [A100 PCIe 80GB]",
        "vendorName": "NVIDIA Corporation",
    }
    members = [
        {
            "name": host_name(i),
            "version": "8.0.2",
            "deviceRebindWithoutReboot": rebind,
            "pciDevices": [{"address": address(d), **a100} for d in range(devices)],
        }
        for i in range(hosts)
    ]
    cluster = {
        "name": CLUSTER,
        "ha": {"enabled": False},
        "drs": {"enabled": True, "automationLevel": "fullyAutomated"},
        "hosts": members,
    }
    return yaml.safe_dump({"datacenters": [{"name": "DC-Faults", "clusters": [cluster]}]})


OperatorFactory = Callable[..., OperatorProcess]


@pytest.fixture
def fault_operator(
    sandbox: Sandbox, tmp_path: Path
) -> Iterator[Callable[[Simulator], OperatorProcess]]:
    """`fault_operator(sim)`: the operator (not started) with a default Secret for `sim`.

    At the end every HostPassthroughPolicy is deleted while an operator still runs (so its
    finalizer is honoured), then the operator is stopped."""
    install.install(sandbox)
    made: list[OperatorProcess] = []

    def make(sim: Simulator, **kwargs: object) -> OperatorProcess:
        vcenter_secret(sandbox, sim, "vcenter-faults")
        operator = OperatorProcess(sandbox, tmp_path, secret="vcenter-faults", **kwargs)  # type: ignore[arg-type]
        made.append(operator)
        return operator

    try:
        yield make
    finally:
        try:
            for operator in made:
                if not operator.alive and operator.runs:
                    operator.start()
            kubectl(sandbox, "delete", "vmda,hpp", "--all", "--all-namespaces", "--timeout=60s")
        except (RuntimeError, procs.ProcessError):
            _strip_finalizers(sandbox)
        finally:
            for operator in made:
                operator.stop()


def _strip_finalizers(box: Sandbox) -> None:
    """The operator could not clean up (it is the failing test's subject): force the objects
    out so the next test starts on an empty API server."""
    rows = "{range .items[*]}{.kind} {.metadata.name} {.metadata.namespace}\n{end}"
    listing = kubectl(box, "get", "vmda,hpp", "-A", "-o", f"jsonpath={rows}")
    for line in listing.splitlines():
        kind, name, *namespace = line.split()
        where = ["-n", namespace[0]] if namespace else []
        kubectl(
            box, "patch", kind, name, *where, "--type=merge", "-p", '{"metadata":{"finalizers":[]}}'
        )
    kubectl(box, "delete", "vmda,hpp", "--all", "--all-namespaces", "--wait=false")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The figures of every fault test that got as far as its summary line."""
    if SUMMARIES:
        terminalreporter.section("fault suite figures")
        for line in SUMMARIES:
            terminalreporter.write_line(line)
