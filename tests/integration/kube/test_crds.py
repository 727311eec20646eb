"""The generated CRDs on a real kube-apiserver: accepted, defaulted, validated, printed.

The bad-input table is the one the models are tested with (tests/unit/api/samples.py), so the API
server and pydantic are held to the same rules and the same messages.
"""

from __future__ import annotations

import copy
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client import ApiException
from tests.unit.api.samples import (
    ASSIGNMENT,
    BAD,
    HPP,
    PLANNER_ONLY,
    POLICY,
    Bad,
    assignment_spec,
    consumer,
    policy_spec,
)

from dpio.api import HostPassthroughPolicy, VMDeviceAssignment
from dpio_sandbox.sandbox import Sandbox

pytestmark = pytest.mark.sandbox

CRDS = Path(__file__).resolve().parents[3] / "crds"
GROUP, VERSION = "dpio.io", "v1alpha1"
NAMESPACE = "crd-test"


@pytest.fixture(scope="module")
def api(sandbox: Sandbox) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(str(sandbox.kubeconfig))
    try:
        _apply_crds(api_client)
        _ensure_namespace(api_client, NAMESPACE)
        yield api_client
    finally:
        api_client.close()


def _apply_crds(api_client: client.ApiClient) -> None:
    extensions = client.ApiextensionsV1Api(api_client)
    for path in sorted(CRDS.glob("*.yaml")):
        body = yaml.safe_load(path.read_text())
        try:
            extensions.create_custom_resource_definition(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            current = extensions.read_custom_resource_definition(body["metadata"]["name"])
            body["metadata"]["resourceVersion"] = current.metadata.resource_version
            extensions.replace_custom_resource_definition(body["metadata"]["name"], body)
        _wait_established(extensions, body["metadata"]["name"])


def _wait_established(extensions: client.ApiextensionsV1Api, name: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        crd = extensions.read_custom_resource_definition(name)
        conditions = {c.type: c.status for c in (crd.status.conditions or [])}
        if conditions.get("Established") == "True":
            return
        time.sleep(0.2)
    pytest.fail(f"CRD {name} not Established: {conditions}")


def _ensure_namespace(api_client: client.ApiClient, name: str) -> None:
    try:
        client.CoreV1Api(api_client).create_namespace({"metadata": {"name": name}})
    except ApiException as exc:
        if exc.status != 409:
            raise


def _create(api: client.ApiClient, kind: str, name: str, spec: dict[str, Any], **kw: Any) -> Any:
    objects = client.CustomObjectsApi(api)
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}}
    body["spec"] = spec
    if kind == HPP:
        return objects.create_cluster_custom_object(GROUP, VERSION, PLURALS[kind], body, **kw)
    return objects.create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURALS[kind], body, **kw
    )


PLURALS = {HPP: "hostpassthroughpolicies", "VMDeviceAssignment": "vmdeviceassignments"}


def _refusal(api: client.ApiClient, case: Bad) -> str:
    with pytest.raises(ApiException) as refused:
        _create(api, case.kind, f"bad-{case.id}", case.spec, dry_run="All")
    assert refused.value.status == 422, refused.value.body
    return str(json.loads(refused.value.body)["message"])


@pytest.mark.parametrize("case", BAD, ids=lambda case: case.id)
def test_api_server_refuses_bad_spec_with_its_message(api: client.ApiClient, case: Bad) -> None:
    message = _refusal(api, case)

    assert (case.server_message or case.message) in message


@pytest.mark.parametrize("case", PLANNER_ONLY, ids=lambda case: case.id)
def test_pattern_syntax_is_left_to_the_operator(api: client.ApiClient, case: Bad) -> None:
    # CEL can't compile RE2: the object is admitted, the operator reports it (InvalidSpec).
    created = _create(api, case.kind, f"gap-{case.id}", case.spec, dry_run="All")

    assert created["spec"] == {**case.spec, **created["spec"]}


def test_unknown_field_is_refused_under_strict_field_validation(api: client.ApiClient) -> None:
    with pytest.raises(ApiException) as refused:
        _create(api, HPP, "typo", policy_spec(exclusve=True), field_validation="Strict")

    assert refused.value.status == 400
    assert 'unknown field "spec.exclusve"' in json.loads(refused.value.body)["message"]


@pytest.mark.parametrize(
    ("kind", "spec", "defaults"),
    [
        (
            HPP,
            policy_spec(),
            {
                "exclusive": False,
                "applyNow": "Auto",
                "allowDevicesInUse": False,
                "deletionPolicy": "Retain",
                "reboot": {"policy": "Manual", "maxUnavailable": 1, "drainTimeout": "30m"},
                "suspend": False,
            },
        ),
        # A consumer entry that says no more than who and which VMs allows the least.
        (
            HPP,
            policy_spec(consumers=[consumer()]),
            {
                "exclusive": False,
                "applyNow": "Auto",
                "allowDevicesInUse": False,
                "deletionPolicy": "Retain",
                "reboot": {"policy": "Manual", "maxUnavailable": 1, "drainTimeout": "30m"},
                "suspend": False,
                "consumers": [
                    {
                        **consumer(),
                        "powerPolicies": ["WaitForPowerOff"],
                        "conflictPolicies": ["Block"],
                    }
                ],
            },
        ),
        (
            "VMDeviceAssignment",
            assignment_spec(),
            {
                "powerPolicy": "WaitForPowerOff",
                "restorePowerState": True,
                "shutdownTimeout": "5m",
                "conflictPolicy": "Block",
                "upgradeHardwareVersion": False,
                "suspend": False,
            },
        ),
    ],
    ids=["hpp", "hpp-consumer", "vmda"],
)
def test_api_server_fills_in_design_defaults(
    api: client.ApiClient, kind: str, spec: dict[str, Any], defaults: dict[str, Any]
) -> None:
    created = _create(api, kind, "defaults", spec, dry_run="All")

    assert created["spec"] == {**spec, **defaults}


@pytest.fixture(scope="module")
def examples(api: client.ApiClient) -> Iterator[dict[str, dict[str, Any]]]:
    """The two full examples of samples.py, stored with their status through the status
    subresource."""
    objects = client.CustomObjectsApi(api)
    policy = _create(api, HPP, "crd-test-gpu-hosts", POLICY["spec"])
    _create(api, "VMDeviceAssignment", "trainer-gpu", ASSIGNMENT["spec"])
    stored = {
        "hpp": objects.patch_cluster_custom_object_status(
            GROUP, VERSION, PLURALS[HPP], policy["metadata"]["name"], {"status": POLICY["status"]}
        ),
        "vmda": objects.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            NAMESPACE,
            PLURALS["VMDeviceAssignment"],
            "trainer-gpu",
            {"status": ASSIGNMENT["status"]},
        ),
    }
    try:
        yield stored
    finally:
        objects.delete_cluster_custom_object(GROUP, VERSION, PLURALS[HPP], "crd-test-gpu-hosts")
        objects.delete_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURALS["VMDeviceAssignment"], "trainer-gpu"
        )


def test_design_examples_are_stored_whole_and_parse(examples: dict[str, dict[str, Any]]) -> None:
    policy = HostPassthroughPolicy.model_validate(examples["hpp"])
    assignment = VMDeviceAssignment.model_validate(examples["vmda"])

    assert examples["hpp"]["spec"] == POLICY["spec"]
    assert examples["hpp"]["status"] == POLICY["status"]
    assert examples["vmda"]["spec"] == ASSIGNMENT["spec"]
    assert examples["vmda"]["status"] == ASSIGNMENT["status"]
    assert policy.status.summary.pending_reboot == 1
    assert assignment.status.attached == "1/3"


def test_status_the_schema_refuses_is_not_stored(
    api: client.ApiClient, examples: dict[str, dict[str, Any]]
) -> None:
    status = copy.deepcopy(POLICY["status"])
    status["hosts"][0]["devices"][0]["state"] = "Enabled"  # not a DeviceState

    with pytest.raises(ApiException) as refused:
        client.CustomObjectsApi(api).patch_cluster_custom_object_status(
            GROUP, VERSION, PLURALS[HPP], examples["hpp"]["metadata"]["name"], {"status": status}
        )

    assert refused.value.status == 422
    assert (
        'supported values: "Active", "PendingReboot"' in json.loads(refused.value.body)["message"]
    )


def _kubectl(sandbox: Sandbox, *args: str) -> str:
    command = [str(sandbox.kubectl), f"--kubeconfig={sandbox.kubeconfig}", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout


@pytest.mark.parametrize(
    ("args", "header", "row"),
    [
        (
            ["get", "hpp", "crd-test-gpu-hosts"],
            ["NAME", "HOSTS", "DEVICES", "ACTIVE", "PENDING REBOOT", "READY", "REASON", "AGE"],
            ["crd-test-gpu-hosts", "2", "4", "2", "1", "False", "PendingHostReboot"],
        ),
        (
            ["-n", NAMESPACE, "get", "vmda", "trainer-gpu"],
            ["NAME", "VM", "HOST", "DEVICES", "POWER", "READY", "REASON", "AGE"],
            [
                "trainer-gpu",
                "ml-trainer-01",
                "esx01.lab.local",
                "1/3",
                "poweredOff",
                "False",
                "FeatureConflict",
            ],
        ),
    ],
    ids=["hpp", "vmda"],
)
def test_kubectl_get_alone_tells_the_state(
    sandbox: Sandbox,
    examples: dict[str, dict[str, Any]],
    args: list[str],
    header: list[str],
    row: list[str],
) -> None:
    lines = _kubectl(sandbox, *args).splitlines()
    columns = [name for name in lines[0].split("  ") if name]

    assert [c.strip() for c in columns] == header
    assert lines[1].split()[: len(row)] == row


def test_category_lists_both_kinds(sandbox: Sandbox, examples: dict[str, dict[str, Any]]) -> None:
    names = _kubectl(sandbox, "get", "dpio", "-A", "-o", "name").split()

    assert "hostpassthroughpolicy.dpio.io/crd-test-gpu-hosts" in names
    assert "vmdeviceassignment.dpio.io/trainer-gpu" in names


@pytest.mark.parametrize(("policy", "found"), [("gpu-hosts", ["trainer-gpu"]), ("other", [])])
def test_assignments_are_selectable_by_policy(
    api: client.ApiClient, examples: dict[str, dict[str, Any]], policy: str, found: list[str]
) -> None:
    listed = client.CustomObjectsApi(api).list_namespaced_custom_object(
        GROUP,
        VERSION,
        NAMESPACE,
        PLURALS["VMDeviceAssignment"],
        field_selector=f"spec.policyRef.name={policy}",
    )

    assert [item["metadata"]["name"] for item in listed["items"]] == found


@pytest.mark.parametrize(
    ("field", "documented"),
    [
        ("hpp.spec.devices.vendorID", "PCI vendor id, 4 hex digits"),
        ("hpp.spec.reboot.drainTimeout", "DrainTimeout"),
        ("hpp.status.hosts.devices.state", "Summary of the passthrough state"),
        ("vmda.spec.vm.instanceUUID", "config.instanceUuid"),
        ("vmda.spec.powerPolicy", "WaitForPowerOff"),
    ],
)
def test_kubectl_explain_documents_the_api(
    api: client.ApiClient, sandbox: Sandbox, field: str, documented: str
) -> None:
    # kubectl explain reads the published OpenAPI, which follows the CRD within seconds.
    deadline = time.monotonic() + 30
    while documented not in (text := _explain(sandbox, field)) and time.monotonic() < deadline:
        time.sleep(0.5)

    assert documented in text


def _explain(sandbox: Sandbox, field: str) -> str:
    command = [str(sandbox.kubectl), f"--kubeconfig={sandbox.kubeconfig}", "explain", field]
    # Not check=True: until the OpenAPI is republished, explain may fail; the caller retries.
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
    return " ".join(done.stdout.split())  # explain wraps lines
