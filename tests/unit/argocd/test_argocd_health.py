"""The Argo CD health check (deploy/argocd/health.lua) and kstatus over the status the operator
really writes, judged by the engines' own code.

Samples come from the planner's own status functions, dumped the way the reconcilers write them
(`model_dump(mode="json", by_alias=True, exclude_none=True)`). Every object goes through
dpio-gitops-health (sandbox/gitops): Argo CD v3.6's `util/settings` reads
deploy/argocd/argocd-cm-patch.yaml, its `util/lua` runs the script (gopher-lua, with only the
libraries Argo CD opens for an argocd-cm customization) and gitops-engine's
`health.GetResourceHealth` has the last word (deletion); cli-utils' `kstatus/status.Compute`
says what Flux, `kubectl wait` and kpt see. All objects of a module go through one helper process
(the `verdicts` fixture); the helper is built through the Go module proxy on first use and cached,
hence the `sandbox` marker (`make test` runs these; a failed build fails them, it never skips).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from tests.unit.planner import builders as hpp
from tests.unit.planner.vm import builders as vmda

from dpio.api.assignment import VMDeviceAssignmentStatus
from dpio.api.conditions import DRY_RUN, SECRET_NOT_FOUND, SUSPENDED
from dpio.api.policy import (
    DeviceSelector,
    DeviceState,
    HostPassthroughPolicySpec,
    HostPassthroughPolicyStatus,
    RebootPolicy,
)
from dpio.planner.attention import NEEDS_A_HUMAN, WAITING
from dpio.planner.conditions import (
    Problem,
    compute_conditions,
    kstatus_wants,
    observing_status,
)
from dpio.planner.host.plan import plan_policy
from dpio.planner.host.status import policy_status, stalled_status, vcenter_unreachable_status
from dpio.planner.observed import ObservedHost, ObservedInventory
from dpio.planner.suspension import Suspension
from dpio.planner.vm.observed import ConfigTarget, PolicyView, VMObservation
from dpio.planner.vm.status import assignment_status
from dpio.planner.vm.suspend import held_plan
from dpio_sandbox import gitops

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = (ROOT / "deploy/argocd/health.lua").read_text()
PATCH = ROOT / "deploy/argocd/argocd-cm-patch.yaml"
KINDS = ("HostPassthroughPolicy", "VMDeviceAssignment")
GENERATION = 3

#: Every object a test below asks about, evaluated together by the `verdicts` fixture.
ASKED: list[dict[str, Any]] = []


def key(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True)


def ask(obj: dict[str, Any]) -> dict[str, Any]:
    """Register ``obj`` for the batch (at collection time) and return it."""
    ASKED.append(obj)
    return obj


@pytest.fixture(scope="module")
def verdicts() -> dict[str, gitops.Verdicts]:
    """Argo CD's and kstatus' verdict on every registered object: one helper run."""
    answers = gitops.evaluate(ASKED, argocd_cm=PATCH)
    return {key(obj): answer for obj, answer in zip(ASKED, answers, strict=True)}


def argo(verdicts: dict[str, gitops.Verdicts], obj: dict[str, Any]) -> tuple[str, str]:
    got = verdicts[key(obj)]["argo"]
    assert "error" not in got, got
    return got["status"], got["message"]


def kstatus(verdicts: dict[str, gitops.Verdicts], obj: dict[str, Any]) -> tuple[str, str]:
    got = verdicts[key(obj)]["kstatus"]
    assert "error" not in got, got
    return got["status"], got["message"]


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
    *hosts: ObservedHost,
    reboot: str = "Manual",
    chosen: HostPassthroughPolicySpec | None = None,
    suspension: Suspension | None = None,
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
        suspension=suspension,
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
    pytest.param(policy(hpp.gpu_host(), suspension=Suspension(SUSPENDED)), "Suspended",
                 "Would: update passthrough on esx01", id="suspended-changes-pending"),
    pytest.param(policy(hpp.gpu_host(enabled=True, active=True), suspension=Suspension(SUSPENDED)),
                 "Suspended", "nothing is pending", id="suspended-converged"),
    pytest.param(policy(hpp.gpu_host(), suspension=Suspension(DRY_RUN)), "Suspended",
                 "dry-run", id="dry-run-changes-pending"),
    pytest.param(stalled_status(policy(hpp.gpu_host(), suspension=Suspension(SUSPENDED)),
                                Problem(SECRET_NOT_FOUND, "Secret dpio-system/vc not found"),
                                GENERATION, hpp.NOW),
                 "Degraded", "not found", id="suspended-but-stalled"),
    pytest.param(policy(hpp.gpu_host(enabled=True, cluster="gpu"),
                        hpp.gpu_host("esx09", enabled=True, active=True, cluster="gpu",
                                     in_maintenance_mode=True),
                        reboot="Rolling", chosen=hpp.spec(reboot={"policy": "Rolling"})),
                 "Progressing", "unavailable in cluster gpu: 1 (esx09)",
                 id="rolling-reboot-waits-for-cluster"),
    pytest.param(policy(hpp.gpu_host(enabled=True), reboot="Rolling",
                        chosen=hpp.spec(reboot={"policy": "Rolling", "windows": [
                            {"days": ["Sun"], "start": "02:00", "duration": "1h"}]})),
                 "Progressing", "no reboot window is open", id="rolling-reboot-waits-for-window"),
]  # fmt: skip


POLICY_OBJECTS = [
    pytest.param(ask(wire("HostPassthroughPolicy", p.values[0])), *p.values[1:], id=p.id)
    for p in POLICY_SAMPLES
]


@pytest.mark.parametrize(("obj", "expected", "words"), POLICY_OBJECTS)
def test_policy_health(
    verdicts: dict[str, gitops.Verdicts], obj: dict[str, Any], expected: str, words: str
) -> None:
    got, message = argo(verdicts, obj)
    assert got == expected, message
    assert words in message


# VMDeviceAssignment: plan_assignment + assignment_status, as the assignment reconciler does.


def assignment(observed: VMObservation, **spec: Any) -> Any:
    chosen = vmda.assignment(**spec) if spec else None
    plan = vmda.plan(observed, chosen)
    if chosen is not None and chosen.suspend:
        plan = held_plan(plan, Suspension(SUSPENDED), VMDeviceAssignmentStatus())
    return assignment_status(plan, previous=None, generation=GENERATION, now=vmda.NOW)


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
    pytest.param(vmda.observe(), {"suspend": True}, "Suspended", "reconfigure the VM",
                 id="suspended-changes-pending"),
    pytest.param(vmda.observe(vmda.converged_vm()), {"suspend": True}, "Suspended",
                 "nothing is pending", id="suspended-converged"),
]  # fmt: skip


ASSIGNMENT_OBJECTS = [
    pytest.param(
        ask(wire("VMDeviceAssignment", assignment(p.values[0], **p.values[1]))),
        *p.values[2:],
        id=p.id,
    )
    for p in ASSIGNMENT_SAMPLES
]


@pytest.mark.parametrize(("obj", "expected", "words"), ASSIGNMENT_OBJECTS)
def test_assignment_health(
    verdicts: dict[str, gitops.Verdicts], obj: dict[str, Any], expected: str, words: str
) -> None:
    got, message = argo(verdicts, obj)
    assert got == expected, message
    assert words.lower() in message.lower()


def _ready(status: str, reason: str = "Reconciled", message: str = "", **more: Any) -> Any:
    condition = {"type": "Ready", "status": status, "reason": reason, **more}
    if message:
        condition["message"] = message
    return condition


def edge(metadata: dict[str, Any], status: dict[str, Any] | None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "dpio.io/v1alpha1",
        "kind": "VMDeviceAssignment",
        "metadata": {"name": "sample", **metadata},
    }
    if status is not None:
        obj["status"] = status
    return ask(obj)


EDGE_CASES = [
    pytest.param(edge(*p.values[:2]), *p.values[2:], id=p.id)
    for p in [
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
            _ready("False", "SomethingNew", "vSphere said so")]}, "Progressing", "vSphere said so",
            id="not-ready-without-stalled-waits"),
    ]
]  # fmt: skip


@pytest.mark.parametrize(("obj", "expected", "words"), EDGE_CASES)
def test_edge_cases(
    verdicts: dict[str, gitops.Verdicts], obj: dict[str, Any], expected: str, words: str
) -> None:
    got, message = argo(verdicts, obj)
    assert got == expected, message
    assert words in message


# kstatus (cli-utils `status.Compute`: Flux `wait: true`, `kubectl wait`, kpt) on the same objects.
# Current = done, InProgress = wait on, Failed = stop waiting (only `Stalled=True` gives it).

KSTATUS = [
    # HostPassthroughPolicy
    ("HostPassthroughPolicy", "converged", "Current", None),
    ("HostPassthroughPolicy", "updating", "InProgress", None),
    ("HostPassthroughPolicy", "manual-reboot-pending", "InProgress", None),  # waits for a human
    ("HostPassthroughPolicy", "rolling-reboot", "InProgress", None),
    ("HostPassthroughPolicy", "device-in-use", "Failed", None),
    ("HostPassthroughPolicy", "not-capable", "Failed", None),
    ("HostPassthroughPolicy", "invalid-spec-stalled", "Failed", None),
    ("HostPassthroughPolicy", "vcenter-outage", "InProgress", None),  # retried with backoff
    ("HostPassthroughPolicy", "secret-missing", "Failed", None),
    # Suspended: Ready=False while changes are held back, so not done; True when none are.
    ("HostPassthroughPolicy", "suspended-changes-pending", "InProgress", None),
    ("HostPassthroughPolicy", "suspended-converged", "Current", None),
    ("HostPassthroughPolicy", "dry-run-changes-pending", "InProgress", None),
    ("HostPassthroughPolicy", "suspended-but-stalled", "Failed", None),
    ("HostPassthroughPolicy", "rolling-reboot-waits-for-cluster", "InProgress", None),
    ("HostPassthroughPolicy", "rolling-reboot-waits-for-window", "InProgress", None),
    # VMDeviceAssignment
    ("VMDeviceAssignment", "converged", "Current", None),
    ("VMDeviceAssignment", "attaching", "InProgress", None),
    ("VMDeviceAssignment", "wait-for-power-off", "InProgress", None),  # waits for a human
    ("VMDeviceAssignment", "operator-powers-off", "InProgress", None),
    ("VMDeviceAssignment", "pending-host-reboot", "InProgress", None),  # waits for the host
    ("VMDeviceAssignment", "snapshots-block", "Failed", None),
    ("VMDeviceAssignment", "forbidden", "Failed", None),
    ("VMDeviceAssignment", "in-use-by-vm", "Failed", None),
    ("VMDeviceAssignment", "vm-not-found", "Failed", None),  # VMOutOfScope is Stalled already
    ("VMDeviceAssignment", "vm-out-of-scope", "Failed", None),
    ("VMDeviceAssignment", "suspended-changes-pending", "InProgress", None),
    ("VMDeviceAssignment", "suspended-converged", "Current", None),
    # Hand-written edge cases: kstatus' own rules, which differ from the Argo CD script's.
    ("edge", "no-status", "Current", None),  # no status is Current: the operator writes one first
    ("edge", "empty-status", "Current", None),  # no observedGeneration: generation not checked
    ("edge", "stale-observed-generation", "InProgress", None),
    ("edge", "stale-ready-condition", "Current", None),  # kstatus ignores a condition's own
    ("edge", "no-conditions", "Current", None),
    ("edge", "empty-conditions", "Current", None),
    ("edge", "no-generation-default-message", "Current", None),
    ("edge", "stalled-wins-without-message", "Failed", None),
    ("edge", "ready-unknown", "InProgress", None),
    ("edge", "not-ready-without-stalled-waits", "InProgress", None),  # Ready=False: not done
]

_SAMPLES = {
    "HostPassthroughPolicy": POLICY_OBJECTS,
    "VMDeviceAssignment": ASSIGNMENT_OBJECTS,
    "edge": EDGE_CASES,
}


def _sample(group: str, case: str) -> dict[str, Any]:
    (obj,) = [p.values[0] for p in _SAMPLES[group] if p.id == case]
    return obj  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(_sample(group, case), expected, id=f"{group}-{case}", marks=marks or ())
        for group, case, expected, marks in KSTATUS
    ],
)
def test_kstatus(verdicts: dict[str, gitops.Verdicts], obj: dict[str, Any], expected: str) -> None:
    got, message = kstatus(verdicts, obj)
    assert got == expected, message


def test_the_kstatus_table_covers_every_sample() -> None:
    table = {(group, case) for group, case, _, _ in KSTATUS}
    assert table == {(group, p.id) for group, params in _SAMPLES.items() for p in params}


# Every reason, as Ready=False with nothing under way: what docs/observability.md ("Who acts
# next") says Argo CD and kstatus make of it, judged by their own code.

DOC_ROW = re.compile(r"^\| `(?P<reason>[A-Za-z0-9]+)` \| (?P<kstatus>[^|]+) \| (?P<argo>[^|]+) \|",
                     re.MULTILINE)  # fmt: skip
WHO_ACTS_NEXT = {
    m["reason"]: (m["argo"].strip(), m["kstatus"].strip())
    for m in DOC_ROW.finditer((ROOT / "docs/observability.md").read_text())
}


def not_ready(reason: str) -> dict[str, Any]:
    wants = kstatus_wants(stalled=None, progressing=None, not_ready=Problem(reason, "the why"))
    conditions = compute_conditions([], wants, GENERATION, vmda.NOW)
    status = VMDeviceAssignmentStatus(observed_generation=GENERATION, conditions=list(conditions))
    return wire("VMDeviceAssignment", status)


REASONS = {reason: ask(not_ready(reason)) for reason in sorted({*NEEDS_A_HUMAN, *WAITING})}


@pytest.mark.parametrize("reason", sorted(REASONS))
def test_every_reason_is_judged_as_documented(
    verdicts: dict[str, gitops.Verdicts], reason: str
) -> None:
    obj = REASONS[reason]
    assert (argo(verdicts, obj)[0], kstatus(verdicts, obj)[0]) == WHO_ACTS_NEXT[reason]
    assert argo(verdicts, obj)[1] == "the why"
    if reason in NEEDS_A_HUMAN:
        assert kstatus(verdicts, obj)[1] == "the why"


FIRST = {kind: ask(wire(kind, observing_status(model, GENERATION, vmda.NOW)))
         for kind, model in (("HostPassthroughPolicy", HostPassthroughPolicyStatus),
                             ("VMDeviceAssignment", VMDeviceAssignmentStatus))}  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_the_first_status_is_in_progress_to_both(
    verdicts: dict[str, gitops.Verdicts], kind: str
) -> None:
    """What the operator writes before it asks vCenter anything (no status at all is Current
    to kstatus: see the edge case no-status)."""
    assert argo(verdicts, FIRST[kind]) == ("Progressing", "Observing vCenter")
    assert kstatus(verdicts, FIRST[kind]) == ("InProgress", "Observing vCenter")


def test_configmap_patch_carries_the_script_for_both_kinds() -> None:
    patch = yaml.safe_load(PATCH.read_text())
    assert (patch["kind"], patch["metadata"]["name"]) == ("ConfigMap", "argocd-cm")
    keys = {f"resource.customizations.health.dpio.io_{kind}" for kind in KINDS}
    assert set(patch["data"]) == keys
    for key_ in keys:
        assert patch["data"][key_] == SCRIPT, f"{key_} differs from deploy/argocd/health.lua"


AHEAD = ask(wire("HostPassthroughPolicy", CONVERGED, generation=GENERATION + 1))


def test_every_sample_generation_is_checked(verdicts: dict[str, gitops.Verdicts]) -> None:
    """A sample one generation ahead of its status must not pass as Healthy."""
    assert argo(verdicts, AHEAD)[0] == "Progressing"
    assert kstatus(verdicts, AHEAD)[0] == "InProgress"


# Deletion: gitops-engine answers for a terminating object, whatever the script says.

DELETING = {
    kind: ask(
        {
            **wire(kind, CONVERGED if kind == "HostPassthroughPolicy" else None),
            "metadata": {
                "name": "sample",
                "generation": GENERATION,
                "deletionTimestamp": "2026-01-01T00:00:00Z",
                "finalizers": ["dpio.io/finalizer"],
            },
        }
    )
    for kind in KINDS
}


@pytest.mark.parametrize("kind", KINDS)
def test_an_object_being_deleted_is_pending_deletion(
    verdicts: dict[str, gitops.Verdicts], kind: str
) -> None:
    obj = DELETING[kind]
    assert argo(verdicts, obj) == (
        "Progressing",
        "Pending deletion; blocked by finalizers: dpio.io/finalizer",
    )
    assert kstatus(verdicts, obj) == ("Terminating", "Resource scheduled for deletion")


# The engine is Argo CD's: what it does not open fails, what it opens works, what it does not
# accept is Unknown. Each probe script is a customization of a kind of its own, in one argocd-cm.

PROBES = {
    "string.format": 'return {status = string.format("%s", "Healthy")}',
    "string-method": 'local s = "Healthy"; return {status = s:lower()}',
    "math": "return {status = tostring(math.floor(1))}",
    "io": "io.write('x'); return {status = 'Healthy'}",
    # argo-cd util/lua's OpenSafeOs registers time and date under the name of the *table* library
    # (oslib_safe.go: `l.RegisterModule(lua.TabLibName, osFuncs)`): no global `os`, only require.
    "os-global": "os.time(); return {status = 'Healthy'}",
    "os-clock": 'local os = require("os"); os.clock(); return {status = "Healthy"}',
    "opened": 'local t = {}; table.insert(t, "Heal" .. "thy")\n'
    'local os = require("os"); os.time(); os.date()\n'
    'return {status = t[1], message = "ok"}',
    "invalid-status": 'return {status = "Fine"}',
    "nil-message": 'return {status = "Healthy"}',
}


def probe_kind(name: str) -> str:
    return "Probe" + "".join(part.capitalize() for part in name.replace(".", "-").split("-"))


@pytest.fixture(scope="module")
def probes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, gitops.Verdicts]:
    configmap = yaml.safe_load(PATCH.read_text())
    configmap["data"] = {
        f"resource.customizations.health.probe.dpio.io_{probe_kind(name)}": script
        for name, script in PROBES.items()
    }
    path = tmp_path_factory.mktemp("argocd") / "argocd-cm.yaml"
    path.write_text(yaml.safe_dump(configmap))
    objects = [
        {"apiVersion": "probe.dpio.io/v1", "kind": probe_kind(name), "metadata": {"name": "p"}}
        for name in PROBES
    ]
    return dict(zip(PROBES, gitops.evaluate(objects, argocd_cm=path), strict=True))


@pytest.mark.parametrize(
    "name", ["string.format", "string-method", "math", "io", "os-global", "os-clock"]
)
def test_libraries_argo_cd_does_not_open_fail(
    probes: dict[str, gitops.Verdicts], name: str
) -> None:
    got = probes[name]["argo"]
    assert got["status"] == "Unknown", got
    assert "error" in got, got


def test_what_argo_cd_opens_works(probes: dict[str, gitops.Verdicts]) -> None:
    assert probes["opened"]["argo"] == {"status": "Healthy", "message": "ok"}


def test_an_invalid_status_is_unknown_and_a_nil_message_empty(
    probes: dict[str, gitops.Verdicts],
) -> None:
    assert probes["invalid-status"]["argo"]["status"] == "Unknown"
    assert probes["nil-message"]["argo"] == {"status": "Healthy", "message": ""}


def test_the_helper_is_built_from_the_engines_named_in_the_docs() -> None:
    assert gitops.versions() == {
        "github.com/argoproj/argo-cd/v3": "v3.6.2",
        "github.com/argoproj/argo-cd/gitops-engine/v3": "v3.6.2",
        "sigs.k8s.io/cli-utils": "v0.37.2",
    }
