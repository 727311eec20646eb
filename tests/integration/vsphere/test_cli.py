"""`dpio` against the sandbox, run as a user runs it (a subprocess with `.sandbox/env`'s variables):
inventory lists the simulator's inventory as the vSphere Client would, status shows the objects
in the API server, and nothing the CLI does changes vCenter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.e2e.conftest import apply, kubectl

from dpio_sandbox import install, manifests, vcsim
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import DEFAULT_INVENTORY, Simulator

pytestmark = pytest.mark.sandbox
GPU = "0000:3b:00.0"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def dpio(env: dict[str, str], *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """Run the `dpio` console entry (as `python -m`, same code) with `env` over os.environ."""
    out = subprocess.run(
        [sys.executable, "-m", "dpio.cli.main", *args],
        env={**os.environ, **env}, input=stdin, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    return out.returncode, out.stdout, out.stderr


def sim_env(box: Sandbox, sim: Simulator) -> dict[str, str]:
    """`.sandbox/env`, pointing at `sim` instead of the session's simulator."""
    return {
        **box.env(),
        "VSPHERE_URL": sim.sdk_url,
        "VSPHERE_USER": sim.username,
        "VSPHERE_PASSWORD": sim.password,
        "VSPHERE_CA_FILE": str(sim.ca_file),
    }


def expected_devices() -> dict[tuple[str, str], dict[str, Any]]:
    """(host, address) -> the device as sandbox/vcsim/inventory/default.yaml declares it."""
    inventory = yaml.safe_load(Path(DEFAULT_INVENTORY).read_text())
    found = {}
    for dc in inventory["datacenters"]:
        hosts = [h for c in dc.get("clusters", []) for h in c["hosts"]] + dc.get("hosts", [])
        for h in hosts:
            for d in h.get("pciDevices", []):
                found[(h["name"], d["address"])] = {**d, "iommu": h.get("iommu", True)}
    return found


@pytest.fixture(scope="module")
def inventory_json(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # A simulator of our own: the session's may have been changed by the end-to-end tests.
    state = tmp_path_factory.mktemp("cli-vcsim")
    sim = vcsim.start(state, name="cli", inventory=DEFAULT_INVENTORY)
    try:
        sim.admin("POST", "/counters/reset")
        code, out, err = dpio(sim_env(sandbox, sim), "inventory", "-o", "json")
        counts: Any = sim.admin("GET", "/counters")
    finally:
        vcsim.stop(state, "cli")
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    data["_counts"] = counts["counts"]
    return data


def test_inventory_lists_every_declared_device_with_its_passthrough_state(
    inventory_json: dict[str, Any],
) -> None:
    listed = {(h["name"], d["address"]): d for h in inventory_json["hosts"] for d in h["devices"]}
    for key, declared in expected_devices().items():
        device = listed[key]
        capable = declared.get("capable", True) and declared["iommu"]
        assert (device["vendorID"], device["deviceID"], device["name"]) == (
            declared["vendorId"], declared["deviceId"], declared["name"],
        ), key  # fmt: skip
        assert (device["capable"], device["enabled"], device["active"]) == (
            capable, declared.get("enabled", False), declared.get("active", False),
        ), key  # fmt: skip
        assert device["hardwareLabel"] == declared.get("hardwareLabel", ""), key


@pytest.mark.parametrize(
    ("host", "address", "field", "value"),
    [
        ("esx-gpu-01.lab.local", "0000:18:00.0", "inUseByHost",
         "vmnic0 carries vmkernel port vmk0"),
        ("esx-gpu-01.lab.local", "0000:3b:00.0", "attachedTo", ["ml-inference-01"]),
        ("esx-gpu-02.lab.local", "0000:5e:00.0", "dependentDevices", ["0000:5e:00.1"]),
        ("esx-gpu-02.lab.local", "0000:3b:00.0", "state", "PendingReboot"),
        ("esx-noiommu-01.lab.local", "0000:3b:00.0", "state", "NotCapable"),
        # Intel's vendor id is negative as an int16 on the wire (govmomi #2248): shown as 8086.
        ("esx-gpu-01.lab.local", "0000:18:00.1", "vendorID", "8086"),
    ],
)  # fmt: skip
def test_inventory_shows_what_the_vsphere_client_shows(
    inventory_json: dict[str, Any], host: str, address: str, field: str, value: object
) -> None:
    (found,) = [h for h in inventory_json["hosts"] if h["name"] == host]
    (device,) = [d for d in found["devices"] if d["address"] == address]

    assert device[field] == value


def test_inventory_is_one_read_and_logs_out(inventory_json: dict[str, Any]) -> None:
    counts = inventory_json["_counts"]

    assert counts.get("RetrievePropertiesEx") == 1
    assert (counts.get("Login"), counts.get("Logout")) == (1, 1)
    assert counts.get("UpdatePassthruConfig", 0) == 0


def test_inventory_table_and_host_filter(sandbox: Sandbox) -> None:
    code, out, err = dpio(sandbox.env(), "inventory", "--host", "esx-legacy-01.lab.local")

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["HOST", "ADDRESS", "ID", "NAME"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["esx-legacy-01.lab.local", "0000:3b:00.0", "10de:1eb8"]
    ]


def test_inventory_of_an_unknown_host_fails(sandbox: Sandbox) -> None:
    code, out, err = dpio(sandbox.env(), "inventory", "--host", "esx-nope.lab.local")

    assert (code, out) == (1, "")
    assert "no such host in vCenter: esx-nope.lab.local" in err


def test_inventory_through_the_operators_secret(sandbox: Sandbox) -> None:
    install.install(sandbox)
    env = {k: v for k, v in sandbox.env().items() if not k.startswith("VSPHERE_")}

    code, out, err = dpio(env, "inventory", "-o", "json", "--vcenter-secret", "dpio-system/vcenter")

    assert code == 0, err
    assert len(json.loads(out)["hosts"]) == 6


@pytest.fixture
def objects(sandbox: Sandbox) -> Iterator[Callable[[dict[str, Any]], None]]:
    """Apply objects (no operator runs here) and delete them afterwards."""
    install.install(sandbox)
    made: list[tuple[str, str, str | None]] = []

    def make(body: dict[str, Any]) -> None:
        apply(sandbox, body)
        made.append((body["kind"], body["metadata"]["name"], body["metadata"].get("namespace")))

    yield make
    for kind, name, namespace in made:
        ns = ["-n", namespace] if namespace else []
        kubectl(sandbox, "delete", kind, name, "--ignore-not-found", "--wait=false", *ns)


def test_status_shows_policies_and_assignments(
    sandbox: Sandbox, objects: Callable[[dict[str, Any]], None]
) -> None:
    apply(sandbox, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cli-ml"}})
    objects(manifests.policy("cli-status", hosts=["esx-gpu-03.lab.local"],
                             devices=[{"address": GPU}]))  # fmt: skip
    objects(manifests.assignment("cli-vmda", "cli-ml", "cli-status", "ml-trainer-01",
                                 [manifests.pci_device(GPU)]))  # fmt: skip
    ready = {"type": "Ready", "status": "False", "reason": "RebootRequired", "message": "m",
             "lastTransitionTime": "2025-01-01T00:00:00Z"}  # fmt: skip
    kubectl(sandbox, "patch", "hpp", "cli-status", "--subresource=status", "--type=merge", "-p",
            json.dumps({"status": {"observedGeneration": 1, "conditions": [ready],
                                   "summary": {"hosts": 1, "devices": 1}}}))  # fmt: skip

    code, out, err = dpio(sandbox.env(), "status", "-o", "json")
    in_ns = dpio(sandbox.env(), "status", "-n", "cli-ml")[1]
    other_ns = dpio(sandbox.env(), "status", "-n", "default")[1]

    assert code == 0, err
    items = {(i["kind"], i["name"]): i for i in json.loads(out)["items"]}
    policy = items[("HostPassthroughPolicy", "cli-status")]
    assert (policy["ready"], policy["reason"], policy["summary"]) == (
        "False", "RebootRequired", "1 hosts, 1 devices, 0 active, 0 pending reboot",
    )  # fmt: skip
    assignment = items[("VMDeviceAssignment", "cli-vmda")]
    assert (assignment["namespace"], assignment["ready"]) == ("cli-ml", None)
    assert "cli-vmda" in in_ns
    assert "cli-vmda" not in other_ns
    assert "cli-status" in other_ns  # policies are cluster-scoped: always shown


def test_plan_of_the_examples_changes_nothing(
    sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # A fresh simulator: the examples' plan against the default inventory, as in `make demo`.
    state = tmp_path_factory.mktemp("cli-examples")
    sim = vcsim.start(state, name="examples", inventory=DEFAULT_INVENTORY)
    try:
        sim.admin("POST", "/counters/reset")
        code, out, err = dpio(sim_env(sandbox, sim), "plan", "-f", str(EXAMPLES), "-o", "json")
        counts: Any = sim.admin("GET", "/counters")
    finally:
        vcsim.stop(state, "examples")

    declared = [
        (doc["kind"], doc["metadata"]["name"])
        for path in sorted(EXAMPLES.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("apiVersion") == "dpio.io/v1alpha1"
    ]
    planned = [(o["kind"], o["name"]) for o in json.loads(out)["objects"]]
    assert sorted(planned) == sorted(declared), err
    # A fresh inventory needs changes (2), but examples/60 is refused on purpose: Stalled is 1.
    assert code == 1, err
    stalled = {
        o["name"]: o["stalled"]["reason"] for o in json.loads(out)["objects"] if o.get("stalled")
    }
    assert stalled == {"bios-a100": "FirmwareNotEFI"}
    writes = ("UpdatePassthruConfig", "ReconfigVM_Task", "ReconfigureComputeResource_Task",
              "PowerOffVM_Task", "EnterMaintenanceMode_Task")  # fmt: skip
    assert {w: counts["counts"].get(w, 0) for w in writes} == dict.fromkeys(writes, 0)
