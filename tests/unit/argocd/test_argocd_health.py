"""The Argo CD health check (deploy/argocd/health.lua) over the status the operator really writes.

Samples come from the planner's own status functions, dumped the way the reconcilers write them
(`model_dump(mode="json", by_alias=True, exclude_none=True)`), and run in Lua 5.1 (gopher-lua,
Argo CD's interpreter, speaks 5.1) with only the libraries Argo CD opens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lupa.lua51 as lua51
import pytest
import yaml
from pydantic import BaseModel
from tests.unit.planner import builders as hpp
from tests.unit.planner.vm import test_vm_builders as vmda

from dpio.api.conditions import SECRET_NOT_FOUND
from dpio.api.policy import (
    DeviceSelector,
    DeviceState,
    HostPassthroughPolicySpec,
    HostPassthroughPolicyStatus,
    RebootPolicy,
)
from dpio.planner.conditions import Problem
from dpio.planner.host.plan import plan_policy
from dpio.planner.host.status import policy_status, stalled_status, vcenter_unreachable_status
from dpio.planner.observed import ObservedHost, ObservedInventory
from dpio.planner.vm.observed import ConfigTarget, PolicyView, VMObservation
from dpio.planner.vm.status import assignment_status

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = (ROOT / "deploy/argocd/health.lua").read_text()
PATCH = ROOT / "deploy/argocd/argocd-cm-patch.yaml"
KINDS = ("HostPassthroughPolicy", "VMDeviceAssignment")
GENERATION = 3


# What Argo CD accepts as a health status (gitops-engine `health.HealthStatusCode`).
VALID = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def health(obj: dict[str, Any], script: str = SCRIPT) -> tuple[str, str]:
    """Run the script as Argo CD v3 does with `useOpenLibs` off, the argocd-cm default.

    argo-cd `util/lua` opens only package, base, table and a safe os, so `string.*`, `math.*` and
    method calls on strings (`s:lower()`) fail there: they fail here too, the string metatable
    included. Argo CD turns a status it does not know into Unknown and a nil message into "", and
    gitops-engine answers for an object being deleted without running the script at all.
    """
    if obj.get("metadata", {}).get("deletionTimestamp"):
        finalizers = ", ".join(obj["metadata"].get("finalizers", []))
        return "Progressing", f"Pending deletion; blocked by finalizers: {finalizers}"
    lua = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    lua.execute('debug.setmetatable("", nil)')  # no string library: no string methods either
    env = lua.globals()
    for closed in ("io", "debug", "string", "math", "coroutine", "dofile", "loadfile"):
        env[closed] = None
    env.os = lua.table_from({"time": env.os.time, "date": env.os.date, "clock": env.os.clock})
    env.obj = lua.table_from(obj, recursive=True)
    result = lua.execute(script)
    status, message = result["status"], result["message"]
    if status not in VALID:
        return "Unknown", f"invalid health status {status!r}"
    return str(status), "" if message is None else str(message)


def wire(kind: str, status: BaseModel | None, generation: int = GENERATION) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "dpio.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "sample", "generation": generation},
        "spec": {},
    }
    if status is not None:
        obj["status"] = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    return obj


# HostPassthroughPolicy: what the reconciler writes, from plan_policy + policy_status.


def policy(
    *hosts: ObservedHost, reboot: str = "Manual", chosen: HostPassthroughPolicySpec | None = None
) -> HostPassthroughPolicyStatus:
    fields = {"hosts": {"names": [h.name for h in hosts]}, "reboot": {"policy": reboot}}
    chosen = chosen or hpp.spec(**fields)
    plan = plan_policy(
        name="gpu-hosts",
        creation_timestamp=hpp.NOW,
        spec=chosen,
        inventory=ObservedInventory(hosts=hosts),
        now=hpp.NOW,
        previous=None,
    )
    return policy_status(
        plan,
        reboot_policy=RebootPolicy(reboot),
        previous=None,
        generation=GENERATION,
        now=hpp.NOW,
    )


CONVERGED = policy(hpp.gpu_host(enabled=True, active=True))
# Admission rejects a bad pattern; one that slipped past an older CRD stalls the planner.
BAD_PATTERN = hpp.spec().model_copy(
    update={"devices": [DeviceSelector.model_construct(name_pattern="(")]}
)
IN_USE = hpp.host(
    "esx01",
    (hpp.dev(hpp.NIC, hpp.X710), hpp.dev(hpp.GPU)),
    (hpp.info(hpp.NIC), hpp.info(hpp.GPU)),
    in_use_by_host={hpp.GPU: "vmnic4 carries vmk1"},
)

POLICY_SAMPLES = [
    pytest.param(CONVERGED, "Healthy", "All of the spec is in effect", id="converged"),
    pytest.param(policy(hpp.gpu_host()), "Progressing", "Updating passthrough", id="updating"),
    pytest.param(policy(hpp.gpu_host(enabled=True, active=False)), "Suspended",
                 "after a reboot of esx01", id="manual-reboot-pending"),
    pytest.param(policy(hpp.gpu_host(enabled=True, active=False), reboot="Rolling"),
                 "Progressing", "esx01", id="rolling-reboot"),
    pytest.param(policy(IN_USE), "Degraded", "vmk1", id="device-in-use"),
    pytest.param(policy(hpp.gpu_host(capable=False)), "Degraded", "", id="not-capable"),
    pytest.param(policy(hpp.gpu_host(), chosen=BAD_PATTERN), "Degraded", "(",
                 id="invalid-spec-stalled"),
    pytest.param(vcenter_unreachable_status(CONVERGED, "connection refused", GENERATION, hpp.NOW),
                 "Progressing", "connection refused", id="vcenter-outage"),
    pytest.param(stalled_status(CONVERGED, Problem(SECRET_NOT_FOUND, "Secret dpio-system/vc "
                                                   "not found"), GENERATION, hpp.NOW),
                 "Degraded", "Secret dpio-system/vc not found", id="secret-missing"),
]  # fmt: skip


@pytest.mark.parametrize(("status", "expected", "words"), POLICY_SAMPLES)
def test_policy_health(status: HostPassthroughPolicyStatus, expected: str, words: str) -> None:
    got, message = health(wire("HostPassthroughPolicy", status))
    assert got == expected, message
    assert words in message


# VMDeviceAssignment: plan_assignment + assignment_status, as the assignment reconciler does.


def assignment(observed: VMObservation, **spec: Any) -> Any:
    chosen = vmda.assignment(**spec) if spec else None
    return assignment_status(
        vmda.plan(observed, chosen), previous=None, generation=GENERATION, now=vmda.NOW
    )


def pending_host_reboot() -> VMObservation:
    # Enabled on the host but not active yet: QueryConfigTarget does not offer it.
    rows = (vmda.row(state=DeviceState.PENDING_REBOOT),)
    return vmda.observe(
        config_target=ConfigTarget(), policy=PolicyView("gpu-hosts", vmda.policy(), rows)
    )


def vm_not_found() -> VMObservation:
    return VMObservation(vm=None, policy=PolicyView("gpu-hosts", vmda.policy(), (vmda.row(),)))


ASSIGNMENT_SAMPLES = [
    pytest.param(vmda.observe(vmda.converged_vm()), {}, "Healthy", "", id="converged"),
    pytest.param(vmda.observe(), {}, "Progressing", "Reconfiguring the VM", id="attaching"),
    pytest.param(vmda.observe(vmda.vm(power_state="poweredOn")), {}, "Suspended", "",
                 id="wait-for-power-off"),
    pytest.param(vmda.observe(vmda.vm(power_state="poweredOn")), {"powerPolicy": "PowerOff"},
                 "Progressing", "", id="operator-powers-off"),
    pytest.param(pending_host_reboot(), {}, "Suspended", "", id="pending-host-reboot"),
    pytest.param(vmda.observe(vmda.vm(snapshot_count=2)), {}, "Degraded", "snapshot",
                 id="snapshots-block"),
    pytest.param(vmda.observe(policy=None), {}, "Degraded", "gpu-hosts", id="forbidden"),
    pytest.param(vmda.observe(attached_to_vms={vmda.GPU: ("other-vm",)}), {}, "Degraded",
                 "attached to another VM", id="in-use-by-vm"),
    # A VM that is missing and one outside the namespace's scope read the same (VMOutOfScope).
    pytest.param(vm_not_found(), {}, "Degraded", "ml-trainer-01 is not among the VMs",
                 id="vm-not-found"),
    pytest.param(vmda.observe(vmda.vm(folder="/DC1/vm/web")), {}, "Degraded",
                 "ml-trainer-01 is not among the VMs", id="vm-out-of-scope"),
]  # fmt: skip


@pytest.mark.parametrize(("observed", "spec", "expected", "words"), ASSIGNMENT_SAMPLES)
def test_assignment_health(
    observed: VMObservation, spec: dict[str, Any], expected: str, words: str
) -> None:
    got, message = health(wire("VMDeviceAssignment", assignment(observed, **spec)))
    assert got == expected, message
    assert words.lower() in message.lower()


def _ready(status: str, reason: str = "Reconciled", message: str = "", **more: Any) -> Any:
    condition = {"type": "Ready", "status": status, "reason": reason, **more}
    if message:
        condition["message"] = message
    return condition


@pytest.mark.parametrize(
    ("metadata", "status", "expected", "words"),
    [
        pytest.param({"generation": 1}, None, "Progressing", "report status", id="no-status"),
        pytest.param({"generation": 1}, {}, "Progressing", "generation 1", id="empty-status"),
        pytest.param({"generation": 4}, {"observedGeneration": 3, "conditions": [_ready("True")]},
                     "Progressing", "generation 4", id="stale-observed-generation"),
        pytest.param({"generation": 4},
                     {"observedGeneration": 4,
                      "conditions": [_ready("True", observedGeneration=3)]},
                     "Progressing", "generation 4", id="stale-ready-condition"),
        pytest.param({"generation": 2}, {"observedGeneration": 2}, "Progressing",
                     "Ready condition", id="no-conditions"),
        pytest.param({"generation": 2}, {"observedGeneration": 2, "conditions": []},
                     "Progressing", "Ready condition", id="empty-conditions"),
        pytest.param({}, {"conditions": [_ready("True")]}, "Healthy", "in effect",
                     id="no-generation-default-message"),
        pytest.param({"generation": 1}, {"observedGeneration": 1, "conditions": [
            _ready("True"), {"type": "Stalled", "status": "True", "reason": "InvalidSpec"}]},
            "Degraded", "InvalidSpec", id="stalled-wins-without-message"),
        pytest.param({"generation": 1}, {"observedGeneration": 1, "conditions": [
            _ready("Unknown", "AwaitingReconcile")]}, "Progressing", "AwaitingReconcile",
            id="ready-unknown"),
        pytest.param({"generation": 1}, {"observedGeneration": 1, "conditions": [
            _ready("False", "SomethingNew", "vSphere said so")]}, "Degraded", "vSphere said so",
            id="unknown-reason-is-degraded"),
    ],
)  # fmt: skip
def test_edge_cases(
    metadata: dict[str, Any], status: dict[str, Any] | None, expected: str, words: str
) -> None:
    obj: dict[str, Any] = {"kind": "VMDeviceAssignment", "metadata": metadata}
    if status is not None:
        obj["status"] = status
    assert health(obj)[0] == expected
    assert words in health(obj)[1]


def test_configmap_patch_carries_the_script_for_both_kinds() -> None:
    patch = yaml.safe_load(PATCH.read_text())
    assert (patch["kind"], patch["metadata"]["name"]) == ("ConfigMap", "argocd-cm")
    keys = {f"resource.customizations.health.dpio.io_{kind}" for kind in KINDS}
    assert set(patch["data"]) == keys
    for key in keys:
        assert patch["data"][key] == SCRIPT, f"{key} differs from deploy/argocd/health.lua"


def test_every_sample_generation_is_checked() -> None:
    """A sample one generation ahead of its status must not pass as Healthy."""
    obj = wire("HostPassthroughPolicy", CONVERGED, generation=GENERATION + 1)
    assert health(obj)[0] == "Progressing"


# The harness is as strict as Argo CD, or the tests above prove less than they say.


@pytest.mark.parametrize(
    "line",
    [
        'return {status = string.format("%s", "Healthy")}',
        'local s = "Healthy"; return {status = s:lower()}',
        "return {status = tostring(math.floor(1))}",
        "io.write('x'); return {status = 'Healthy'}",
    ],
    ids=["string.format", "string-method", "math", "io"],
)
def test_libraries_argo_cd_does_not_open_fail_here_too(line: str) -> None:
    with pytest.raises(lua51.LuaError):
        health(wire("VMDeviceAssignment", None), script=line)


def test_what_argo_cd_opens_works_here() -> None:
    script = 'local t = {}; table.insert(t, "Heal" .. "thy"); os.time()\n'
    script += 'return {status = t[1], message = "ok"}'
    assert health(wire("VMDeviceAssignment", None), script=script) == ("Healthy", "ok")


def test_an_invalid_status_is_unknown_and_a_nil_message_empty_as_in_argo_cd() -> None:
    obj = wire("VMDeviceAssignment", None)
    assert health(obj, script='return {status = "Fine"}')[0] == "Unknown"
    assert health(obj, script='return {status = "Healthy"}') == ("Healthy", "")
