"""Objects in wire form (camelCase), shared by the unit tests and the API-server tests.

Each bad case is rejected with the same words by pydantic and by the API server (CEL rules carry
one message), or, where the two phrase a schema error differently, with ``server_message``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

# A HostPassthroughPolicy with every spec field set (docs/api.md), and the status a reconcile
# would write.
POLICY: dict[str, Any] = yaml.safe_load(
    """
apiVersion: dpio.io/v1alpha1
kind: HostPassthroughPolicy
metadata: {name: gpu-hosts, generation: 3, resourceVersion: "4711",
           uid: 0c4f5e2a-1b1e-4f00-9d57-6c1b5d4a9e10, creationTimestamp: "2025-01-02T03:04:05Z",
           finalizers: [dpio.io/finalizer],
           managedFields: [{manager: kubectl, operation: Apply}]}
spec:
  vcenter:
    secretRef: {name: vcenter-prod}
  hosts:
    names: [esx01.lab.local]
    clusters: [GPU-Cluster]
    namePattern: "^esx-gpu-"
  devices:
    - address: "0000:3b:00.0"
    - vendorID: "10de"
      deviceID: "20b5"
      hardwareLabel: a100
    - namePattern: "^Tesla T4$"
  exclusive: false
  applyNow: Auto
  reboot:
    policy: Manual
    maxUnavailable: 1
    drainTimeout: 30m
  allowDevicesInUse: false
  deletionPolicy: Retain
  suspend: false
  consumers:
    - namespaces: [ml-team]
      namespaceSelector:
        matchLabels: {dpio.io/consumer: "true"}
        matchExpressions: [{key: team, operator: In, values: [ml, vision]}]
      vms:
        folders: [/DC1/vm/ml-team]
        resourcePools: [/DC1/host/GPU-Cluster/Resources/ml-team]
      powerPolicies: [WaitForPowerOff, ShutdownGuest, PowerOff]
      conflictPolicies: [Block, Resolve]
      maxDevices: 8
    - namespaces: [web]
      vms: {folders: [/DC1/vm/web]}
      powerPolicies: [WaitForPowerOff]   # the defaults, spelled out: the API server stores them
      conflictPolicies: [Block]
status:
  observedGeneration: 3
  conditions:
    - {type: Ready, status: "False", reason: PendingHostReboot, message: "1 host needs a reboot",
       lastTransitionTime: "2025-01-02T03:05:00Z", observedGeneration: 3}
    - {type: RebootRequired, status: "True", reason: PendingHostReboot,
       message: "esx01.lab.local: enabled != active", lastTransitionTime: "2025-01-02T03:05:00Z",
       observedGeneration: 3}
  hosts:
    - name: esx01.lab.local
      passthroughSupported: true
      rebootRequired: true
      devices:
        - {address: "0000:3b:00.0", vendorID: "10de", deviceID: "20b5", name: "GA100 [A100]",
           capable: true, enabled: true, active: false, hardwareLabel: a100, state: PendingReboot,
           dependentDevices: ["0000:3b:00.1"]}
      rollingReboot: {phase: Draining, since: "2025-01-02T03:06:00Z", enteredByOperator: true}
  summary: {hosts: 2, devices: 4, active: 2, pendingReboot: 1}
"""
)

# A VMDeviceAssignment with every spec field set (docs/api.md), and the status a reconcile
# would write.
ASSIGNMENT: dict[str, Any] = yaml.safe_load(
    """
apiVersion: dpio.io/v1alpha1
kind: VMDeviceAssignment
metadata: {name: trainer-gpu, namespace: ml-team, generation: 1}
spec:
  policyRef: {name: gpu-hosts}
  vm:
    name: ml-trainer-01
  devices:
    - name: gpu0
      pci: {address: "0000:3b:00.0"}
    - name: gpu1
      dynamic: {vendorID: "10de", deviceID: "20b5", label: a100}
  networkDirectPath:
    - adapter: "Network adapter 1"
  powerPolicy: WaitForPowerOff
  restorePowerState: true
  shutdownTimeout: 10m
  conflictPolicy: Block
  upgradeHardwareVersion: false
  suspend: false
status:
  observedGeneration: 1
  conditions:
    - {type: Ready, status: "False", reason: FeatureConflict, message: "VM has 2 snapshots",
       lastTransitionTime: "2025-01-02T03:05:00Z", observedGeneration: 1}
    - {type: FeatureConflict, status: "True", reason: Snapshots, message: "VM has 2 snapshots",
       lastTransitionTime: "2025-01-02T03:05:00Z", observedGeneration: 1}
  vm: {moref: vm-42, instanceUUID: 5003a1b2-0000-4000-8000-000000000042,
       vcenter: 8b5bd3c1-6a3c-4c5d-9d3e-0a1b2c3d4e5f, host: esx01.lab.local,
       powerState: poweredOff, hardwareVersion: vmx-19}
  attached: "1/3"
  devices:
    - {name: gpu0, kind: pci, address: "0000:3b:00.0", host: esx01.lab.local, attached: true,
       key: 13000, added: true}
  unavailableFeatures: [vMotion, Snapshots, HotPlug, FaultTolerance, HighAvailability,
                        RecordReplay, Suspend]
  featureConflicts:
    - {feature: Snapshots, message: "VM has 2 snapshots", resolvable: false}
  vmotion: {compatible: false, reason: StaticPassthrough}
  previous: {memoryReservationLockedToMax: false, cpuHotAddEnabled: true}
"""
)


def consumer(**changes: Any) -> dict[str, Any]:
    """A valid spec.consumers entry with fields replaced (None removes one)."""
    entry = {"namespaces": ["ml-team"], "vms": {"folders": ["/DC1/vm/ml-team"]}}
    return _changed(entry, changes)


def policy_spec(**changes: Any) -> dict[str, Any]:
    """A small valid policy spec with top-level fields replaced (None removes one)."""
    spec = {"hosts": {"names": ["esx01.lab.local"]}, "devices": [{"address": "0000:3b:00.0"}]}
    return _changed(spec, changes)


def assignment_spec(**changes: Any) -> dict[str, Any]:
    """A small valid assignment spec with top-level fields replaced (None removes one)."""
    spec = {
        "policyRef": {"name": "gpu-hosts"},
        "vm": {"name": "ml-trainer-01"},
        "devices": [{"name": "gpu0", "pci": {"address": "0000:3b:00.0"}}],
    }
    return _changed(spec, changes)


def _changed(spec: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    spec.update(changes)
    return {key: value for key, value in spec.items() if value is not None}


@dataclass(frozen=True)
class Bad:
    """A spec both pydantic and the API server must refuse."""

    id: str
    kind: str  # "HostPassthroughPolicy" or "VMDeviceAssignment"
    spec: dict[str, Any]
    message: str  # in pydantic's error, and in the API server's unless server_message is set
    server_message: str | None = None


HPP, VMDA = "HostPassthroughPolicy", "VMDeviceAssignment"
ADDRESS = "0000:3b:00.0"
SEL_NEEDS_ONE = "a device selector needs exactly one of address, vendorID+deviceID or namePattern"
OBJECT_NAME = "must be a Kubernetes object name: lower case letters, digits, '-' and '.'"
ADDRESS_TWICE = "each pci.address can be assigned once: two devices name the same PCI device"

BAD = [
    Bad("hosts-empty", HPP, policy_spec(hosts={}), "hosts needs at least one of names, "
        "clusters or namePattern"),
    Bad("hosts-empty-lists", HPP, policy_spec(hosts={"names": [], "clusters": []}),
        "hosts needs at least one of names, clusters or namePattern"),
    Bad("selector-empty", HPP, policy_spec(devices=[{}]), SEL_NEEDS_ONE),
    Bad("selector-address-and-ids", HPP,
        policy_spec(devices=[{"address": ADDRESS, "vendorID": "10de", "deviceID": "20b5"}]),
        SEL_NEEDS_ONE),
    Bad("selector-address-and-pattern", HPP,
        policy_spec(devices=[{"address": ADDRESS, "namePattern": "A100"}]), SEL_NEEDS_ONE),
    Bad("selector-vendor-without-device", HPP, policy_spec(devices=[{"vendorID": "10de"}]),
        "vendorID and deviceID must be set together"),
    Bad("selector-label-with-address", HPP,
        policy_spec(devices=[{"address": ADDRESS, "hardwareLabel": "a100"}]),
        "hardwareLabel can only be set with vendorID and deviceID"),
    Bad("address-without-domain", HPP, policy_spec(devices=[{"address": "3b:00.0"}]),
        "should match"),
    Bad("address-function-8", HPP, policy_spec(devices=[{"address": "0000:3b:00.8"}]),
        "should match"),
    Bad("vendor-id-3-digits", HPP, policy_spec(devices=[{"vendorID": "10d", "deviceID": "20b5"}]),
        "should match"),
    Bad("vendor-id-not-hex", HPP, policy_spec(devices=[{"vendorID": "10dg", "deviceID": "20b5"}]),
        "should match"),
    Bad("too-many-selectors", HPP,
        policy_spec(devices=[{"address": f"0000:{i:02x}:00.0"} for i in range(65)]),
        "at most 64 items"),
    Bad("max-unavailable-0", HPP, policy_spec(reboot={"maxUnavailable": 0}),
        "greater than or equal to 1"),
    Bad("drain-timeout-words", HPP, policy_spec(reboot={"drainTimeout": "30 minutes"}),
        "should match"),
    Bad("drain-timeout-no-unit", HPP, policy_spec(reboot={"drainTimeout": "30"}), "should match"),
    Bad("reboot-policy-unknown", HPP, policy_spec(reboot={"policy": "Sometimes"}),
        "'Manual' or 'Rolling'", server_message='supported values: "Manual", "Rolling"'),
    Bad("apply-now-unknown", HPP, policy_spec(applyNow="Always"), "'Auto' or 'Never'",
        server_message='supported values: "Auto", "Never"'),
    Bad("consumer-namespace-upper-case", HPP,
        policy_spec(consumers=[consumer(namespaces=["ML"])]), "should match"),
    Bad("selector-in-without-values", HPP,
        policy_spec(consumers=[consumer(namespaces=None, namespaceSelector={"matchExpressions": [
            {"key": "team", "operator": "In"}]})]),
        "values must be non-empty for In and NotIn"),
    Bad("consumer-without-namespaces", HPP, policy_spec(consumers=[consumer(namespaces=None)]),
        "a consumer needs namespaces or a namespaceSelector"),
    Bad("consumer-namespaces-empty", HPP, policy_spec(consumers=[consumer(namespaces=[])]),
        "a consumer needs namespaces or a namespaceSelector"),
    Bad("consumer-without-vms", HPP, policy_spec(consumers=[consumer(vms=None)]),
        "Field required", server_message="spec.consumers[0].vms: Required value"),
    Bad("consumer-vms-empty", HPP, policy_spec(consumers=[consumer(vms={})]),
        "vms needs at least one folder or resource pool"),
    Bad("consumer-vms-empty-lists", HPP,
        policy_spec(consumers=[consumer(vms={"folders": [], "resourcePools": []})]),
        "vms needs at least one folder or resource pool"),
    Bad("scope-folder-relative", HPP,
        policy_spec(consumers=[consumer(vms={"folders": ["DC1/vm/ml-team"]})]), "should match"),
    Bad("scope-pool-trailing-slash", HPP,
        policy_spec(consumers=[consumer(vms={"resourcePools": ["/DC1/host/GPU/Resources/"]})]),
        "should match"),
    Bad("consumer-power-policy-unknown", HPP,
        policy_spec(consumers=[consumer(powerPolicies=["Reboot"])]),
        "'WaitForPowerOff', 'ShutdownGuest' or 'PowerOff'",
        server_message='supported values: "WaitForPowerOff", "ShutdownGuest", "PowerOff"'),
    Bad("consumer-power-policies-empty", HPP,
        policy_spec(consumers=[consumer(powerPolicies=[])]), "at least 1 item"),
    Bad("consumer-conflict-policy-unknown", HPP,
        policy_spec(consumers=[consumer(conflictPolicies=["Ignore"])]),
        "'Block' or 'Resolve'", server_message='supported values: "Block", "Resolve"'),
    Bad("consumer-max-devices-negative", HPP,
        policy_spec(consumers=[consumer(maxDevices=-1)]), "greater than or equal to 0"),
    Bad("no-devices", VMDA, assignment_spec(devices=None),
        "an assignment needs at least one of devices or networkDirectPath"),
    Bad("empty-devices-and-networks", VMDA, assignment_spec(devices=[], networkDirectPath=[]),
        "an assignment needs at least one of devices or networkDirectPath"),
    Bad("vm-name-and-uuid", VMDA, assignment_spec(vm={
        "name": "a", "instanceUUID": "42a1b2c3-0000-4000-8000-000000000001"}),
        "vm needs exactly one of name or instanceUUID"),
    Bad("vm-neither", VMDA, assignment_spec(vm={}), "vm needs exactly one of name or instanceUUID"),
    Bad("vm-uuid-malformed", VMDA, assignment_spec(vm={"instanceUUID": "vm-42"}), "should match"),
    Bad("device-pci-and-dynamic", VMDA, assignment_spec(devices=[{
        "name": "gpu0", "pci": {"address": ADDRESS},
        "dynamic": {"vendorID": "10de", "deviceID": "20b5"}}]),
        "a device needs exactly one of pci or dynamic"),
    Bad("device-neither", VMDA, assignment_spec(devices=[{"name": "gpu0"}]),
        "a device needs exactly one of pci or dynamic"),
    Bad("device-names-repeat", VMDA, assignment_spec(devices=[
        {"name": "gpu0", "pci": {"address": ADDRESS}},
        {"name": "gpu0", "pci": {"address": "0000:3c:00.0"}}]),
        "device names must be unique"),
    Bad("device-name-upper-case", VMDA, assignment_spec(devices=[
        {"name": "GPU0", "pci": {"address": ADDRESS}}]), "should match"),
    Bad("dynamic-device-id-not-hex", VMDA, assignment_spec(devices=[
        {"name": "gpu0", "dynamic": {"vendorID": "10de", "deviceID": "xyzw"}}]), "should match"),
    Bad("too-many-devices", VMDA, assignment_spec(devices=[
        {"name": f"d{i}", "pci": {"address": f"0000:{i:02x}:00.0"}} for i in range(129)]),
        "at most 128 items"),
    Bad("adapters-repeat", VMDA, assignment_spec(devices=None, networkDirectPath=[
        {"adapter": "Network adapter 1"}, {"adapter": "Network adapter 1"}]),
        "networkDirectPath adapters must be unique"),
    Bad("shutdown-timeout-over-a-day", VMDA, assignment_spec(shutdownTimeout="25h"),
        "shutdownTimeout must be between 0s and 24h"),
    Bad("shutdown-timeout-words", VMDA, assignment_spec(shutdownTimeout="5 minutes"),
        "should match"),
    Bad("power-policy-unknown", VMDA, assignment_spec(powerPolicy="Reboot"),
        "'WaitForPowerOff', 'ShutdownGuest' or 'PowerOff'",
        server_message='supported values: "WaitForPowerOff", "ShutdownGuest", "PowerOff"'),
    Bad("policy-ref-missing", VMDA, assignment_spec(policyRef=None), "Field required",
        server_message="spec.policyRef: Required value"),
    Bad("secret-ref-not-a-name", HPP, policy_spec(vcenter={"secretRef": {"name": "vCenter_Prod"}}),
        OBJECT_NAME),
    Bad("secret-ref-trailing-dot", HPP, policy_spec(vcenter={"secretRef": {"name": "vcenter."}}),
        OBJECT_NAME),
    Bad("policy-ref-not-a-name", VMDA, assignment_spec(policyRef={"name": "GPU_Hosts"}),
        OBJECT_NAME),
    Bad("dynamic-label-longer-than-a-policy-allows", VMDA, assignment_spec(devices=[
        {"name": "gpu0", "dynamic": {"vendorID": "10de", "deviceID": "20b5", "label": "a" * 65}}]),
        "at most 64 characters", server_message="Too long: may not be more than 64 bytes"),
    Bad("pci-address-twice", VMDA, assignment_spec(devices=[
        {"name": "gpu0", "pci": {"address": ADDRESS}},
        {"name": "gpu1", "pci": {"address": ADDRESS}}]), ADDRESS_TWICE),
    Bad("pci-address-twice-in-another-case", VMDA, assignment_spec(devices=[
        {"name": "gpu0", "pci": {"address": "0000:3B:00.0"}},
        {"name": "gpu1", "dynamic": {"vendorID": "10de", "deviceID": "20b5"}},
        {"name": "gpu2", "pci": {"address": ADDRESS}}]), ADDRESS_TWICE),
]  # fmt: skip

# What neither a CRD schema nor the models can check (CEL compiles no RE2): the API server admits
# these and the models read them; the planner refuses them, so the policy ends Stalled with
# InvalidSpec and this message (tests/unit/planner/host/test_planner_patterns.py).
PLANNER_ONLY = [
    Bad("host-pattern-unbalanced", HPP, policy_spec(hosts={"namePattern": "esx-(gpu"}),
        "hosts.namePattern is not RE2 syntax: missing ): esx-(gpu"),
    Bad("device-pattern-unbalanced", HPP, policy_spec(devices=[{"namePattern": "[A100"}]),
        "devices[0].namePattern is not RE2 syntax: missing ]: [A100"),
    # Python's re knew these; RE2 has no backtracking, so no backreference, no lookaround.
    Bad("host-pattern-backreference", HPP, policy_spec(hosts={"namePattern": r"^(esx)-\1"}),
        r"hosts.namePattern is not RE2 syntax: invalid escape sequence: \1"),
    Bad("device-pattern-lookahead", HPP,
        policy_spec(devices=[{"address": ADDRESS}, {"namePattern": "Tesla(?! T4)"}]),
        "devices[1].namePattern is not RE2 syntax: invalid perl operator: (?!"),
]  # fmt: skip
