"""`make demo` (`python -m dpio_sandbox demo --once`) on the test sandbox: the examples apply,
the operator brings both host policies to the states their comments promise, and the demo
returns once everything is settled."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim
from tests.e2e.assignments import passthrough
from tests.e2e.conftest import get
from tests.integration.vsphere.helpers import connect, find

from dpio_sandbox import demo, gitops, install, vcsim
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def ran(
    sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Sandbox, Simulator, int, str]]:
    """The demo run once (a simulator of its own, so the shared one is left as it was), then
    the examples deleted while an operator still runs to take the finalizers off."""
    state = tmp_path_factory.mktemp("demo")
    sim = vcsim.start(state, name="vcsim-demo", reboot_delay="300ms")  # the default inventory
    box = dataclasses.replace(sandbox, vcsim=sim, state_dir=state)
    out = io.StringIO()
    try:
        code = demo.run(box, once=True, seconds=240, out=out)
        yield box, sim, code, out.getvalue()
    finally:
        with demo.operator(box, state / "cleanup.log"):
            _delete_examples(box)
        vcsim.stop(state, "vcsim-demo")
        install.install(sandbox)  # the default Secret points at the shared simulator again


def _delete_examples(box: Sandbox) -> None:
    """demo.delete_examples, except that an assignment whose cleanup fails in vCenter has its
    finalizer taken off (after saying so): the VM path has tests of its own, and the shared
    API server must not keep objects that block the namespace."""
    for path in reversed(demo.example_files()):
        try:
            install.kubectl(box, "delete", "--ignore-not-found", "--timeout=60s", "-f", str(path))
        except RuntimeError as err:
            if "vmdeviceassignments/" not in str(err):
                raise
            print(f"finalizer removed by the test after: {err}")
            patch = json.dumps({"metadata": {"finalizers": None}})
            install.kubectl(box, "patch", "-f", str(path), "--type=merge", "-p", patch)


def states(body: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {
        (h["name"], d.get("address", "")): d["state"]
        for h in body["status"]["hosts"]
        for d in h["devices"]
    }


def condition(body: dict[str, Any], type_: str) -> tuple[str, str, str]:
    (found,) = [c for c in body["status"]["conditions"] if c["type"] == type_]
    return found["status"], found["reason"], found["message"]


def test_the_demo_settles_and_prints_the_tables(ran: tuple[Sandbox, Simulator, int, str]) -> None:
    _, _, code, output = ran

    assert code == 0, output
    assert output.rstrip().endswith("all settled")
    assert "NAME             HOSTS   DEVICES   ACTIVE   PENDING-REBOOT   READY   REASON" in output
    assert "gpu-cluster" in output
    assert "trainer-t4" in output


def test_rolling_policy_rebooted_the_host_that_needed_it_and_is_ready(
    ran: tuple[Sandbox, Simulator, int, str],
) -> None:
    box, sim, _, _ = ran
    body = get(box, "hpp", "gpu-cluster")

    assert condition(body, "Ready")[:2] == ("True", "Reconciled")
    assert condition(body, "RebootRequired")[0] == "False"
    assert states(body) == {
        ("esx-gpu-01.lab.local", "0000:3b:00.0"): "Active",
        ("esx-gpu-01.lab.local", "0000:af:00.0"): "Active",
        ("esx-gpu-02.lab.local", "0000:3b:00.0"): "Active",  # after the rolling reboot
        ("esx-gpu-03.lab.local", "0000:3b:00.0"): "Active",
    }
    labels = {
        h["name"]: d.get("hardwareLabel") for h in body["status"]["hosts"] for d in h["devices"]
    }
    assert labels["esx-gpu-03.lab.local"] == "a100"
    counts: Any = sim.admin("GET", "/counters")
    assert counts["counts"]["RebootHost_Task"] == 1  # esx-gpu-02 only


def test_manual_policy_reports_the_reboot_and_the_host_without_iommu(
    ran: tuple[Sandbox, Simulator, int, str],
) -> None:
    box, _, _, _ = ran
    body = get(box, "hpp", "compute-manual")

    assert states(body) == {
        ("esx-legacy-01.lab.local", "0000:3b:00.0"): "PendingReboot",
        ("esx-noiommu-01.lab.local", "0000:3b:00.0"): "NotCapable",
        ("esx-standalone-01.lab.local", "0000:3b:00.0"): "Active",
    }
    reboot = condition(body, "RebootRequired")
    assert reboot[:2] == ("True", "PendingReboot")
    assert "esx-legacy-01.lab.local" in reboot[2]
    assert condition(body, "Degraded")[1] == "PassthroughUnsupported"
    assert "BIOS" in condition(body, "Degraded")[2]
    assert body["status"]["summary"] == {"hosts": 3, "devices": 3, "active": 1, "pendingReboot": 1}


def test_every_example_file_was_accepted_by_the_api_server(
    ran: tuple[Sandbox, Simulator, int, str],
) -> None:
    box, _, _, _ = ran
    kinds = json.loads(install.kubectl(box, "get", "hpp,vmda", "-A", "-o", "json"))["items"]

    assert sorted(i["metadata"]["name"] for i in kinds) == [
        "batch-a100", "bios-a100", "compute-manual", "gpu-cluster", "trainer-t4", "vmfex-gen2",
    ]  # fmt: skip


def test_examples_are_numbered_so_that_namespaces_come_first() -> None:
    files = demo.example_files()

    assert files[0].name == "00-namespace.yaml"
    assert all(_kind(f) != "Namespace" for f in files[1:])


def _kind(path: Path) -> str:
    return str(path.read_text().split("\nkind: ", 1)[1].split("\n", 1)[0])


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        ("ml-team", "trainer-t4"),  # static T4 by PCI address
        ("ml-team", "batch-a100"),  # Dynamic DirectPath by vendor/device + label
        ("net-team", "vmfex-gen2"),  # a Gen2 (VM-FEX) network adapter, another team's VM
    ],
)
def test_every_example_assignment_is_ready_with_everything_attached(
    ran: tuple[Sandbox, Simulator, int, str], namespace: str, name: str
) -> None:
    box, _, _, _ = ran
    body = get(box, "vmda", name, namespace)

    assert condition(body, "Ready")[:2] == ("True", "Reconciled"), body.get("status")
    assert condition(body, "Forbidden")[:2] == ("False", "Allowed")
    done, wanted = body["status"]["attached"].split("/")
    assert done == wanted != "0"
    assert body["status"]["vm"]["instanceUUID"]  # the VM is pinned on first sight


def test_the_bios_example_is_refused_and_vcenter_left_alone(
    ran: tuple[Sandbox, Simulator, int, str],
) -> None:
    box, sim, _, _ = ran
    body = get(box, "vmda", "bios-a100", "ml-team")

    assert condition(body, "Ready")[:2] == ("False", "FirmwareNotEFI"), body.get("status")
    stalled = condition(body, "Stalled")
    assert stalled[:2] == ("True", "FirmwareNotEFI")
    assert "EFI" in stalled[2]
    assert body["status"]["vm"]["firmware"] == "bios"
    assert body["status"]["attached"] == "0/1"
    with connect(sim) as si:
        vm = find(si, vim.VirtualMachine, "bios-gpu-01")
        assert passthrough(vm) == []
        assert not vm.config.memoryReservationLockedToMax
        assert not [o for o in vm.config.extraConfig or () if o.key.startswith("pciPassthru")]


def test_the_dynamic_a100_example_sized_the_vms_mmio_window(
    ran: tuple[Sandbox, Simulator, int, str],
) -> None:
    _, sim, _, _ = ran
    with connect(sim) as si:
        vm = find(si, vim.VirtualMachine, "e1000-vm-01")
        settings = {o.key: str(o.value) for o in vm.config.extraConfig or ()}
    assert settings["pciPassthru.use64bitMMIO"] == "TRUE"
    assert settings["pciPassthru.64bitMMIOSizeGB"] == "128"  # one A100 80GB


# What Argo CD and kstatus make of the live objects: dpio-gitops-health runs Argo CD's own health
# code (argo-cd util/lua + gitops-engine GetResourceHealth, deploy/argocd/argocd-cm-patch.yaml)
# and cli-utils' kstatus over them, after the examples have converged.

OBSERVABILITY = Path(__file__).resolve().parents[2] / "docs" / "observability.md"


def documented_reasons() -> dict[str, set[str]]:
    """The `Ready=False` reasons that docs/observability.md's Semantics table lists per status."""
    table = OBSERVABILITY.read_text().split("### Semantics", 1)[1].split("\n\n**", 1)[0]
    reasons: dict[str, set[str]] = {}
    for row in table.splitlines():
        cells = [c.strip() for c in row.strip("|").split("|")]
        if len(cells) == 2 and "`Ready=False` with" in cells[1]:
            names = {t for t in cells[1].split("`")[1::2] if t.isidentifier() and t[0].isupper()}
            reasons[cells[0]] = names
    return reasons


def documented_health(obj: dict[str, Any], reasons: dict[str, set[str]]) -> str:
    """docs/observability.md's table, row by row."""
    status = obj.get("status")
    generation = obj["metadata"].get("generation")
    if status is None or status.get("observedGeneration", 0) < generation:
        return "Progressing"
    conditions = {c["type"]: c for c in status.get("conditions", [])}
    ready = conditions.get("Ready", {})
    if ready.get("observedGeneration", generation) < generation:
        return "Progressing"
    if conditions.get("Stalled", {}).get("status") == "True":
        return "Degraded"
    if ready.get("status") == "True":
        return "Healthy"
    if conditions.get("Reconciling", {}).get("status") == "True" or ready.get("status") != "False":
        return "Progressing"
    for health, names in reasons.items():
        if ready.get("reason") in names:
            return health
    return "Progressing"  # "any other reason": what needs a human is Stalled, above


def test_argo_cd_sees_every_example_as_docs_observability_says(
    ran: tuple[Sandbox, Simulator, int, str],
) -> None:
    box, _, _, _ = ran
    items = json.loads(install.kubectl(box, "get", "hpp,vmda", "-A", "-o", "json"))["items"]
    reasons = documented_reasons()
    assert set(reasons) == {"Suspended", "Progressing"}, reasons  # Degraded: Stalled only
    assert {"PendingReboot", "VMPoweredOn", "RollingReboot"} <= set().union(*reasons.values())

    verdicts = gitops.evaluate(items)

    seen = {
        i["metadata"]["name"]: (v["argo"]["status"], documented_health(i, reasons))
        for i, v in zip(items, verdicts, strict=True)
    }
    assert all(got == documented for got, documented in seen.values()), seen
    assert {name: got for name, (got, _) in seen.items()} == {
        "gpu-cluster": "Healthy",
        # esx-noiommu-01 cannot do passthrough (Stalled=True PassthroughUnsupported, as the
        # quickstart shows): Degraded, though esx-legacy-01 also waits for its manual reboot.
        "compute-manual": "Degraded",
        "trainer-t4": "Healthy",
        "batch-a100": "Healthy",
        "vmfex-gen2": "Healthy",
        "bios-a100": "Degraded",  # Stalled: FirmwareNotEFI
    }
    kstatus = {
        i["metadata"]["name"]: v["kstatus"]["status"] for i, v in zip(items, verdicts, strict=True)
    }
    assert kstatus["bios-a100"] == "Failed"  # Stalled=True
    assert kstatus["compute-manual"] == "Failed"  # Stalled=True: a human fixes the BIOS
    assert kstatus["gpu-cluster"] == "Current"
