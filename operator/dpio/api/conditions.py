"""Condition types and reasons, and the Condition model (metav1.Condition; docs/design.md,
"Status contract").

The strings are part of the API: ``kubectl wait --for=condition=Ready``, Flux and Argo CD
health checks (kstatus) and alerts match on them, so they are spelled once, here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints

from dpio.api.common import StatusModel, Timestamp

# Condition types, both kinds.
READY = "Ready"
RECONCILING = "Reconciling"  # kstatus: work in progress
STALLED = "Stalled"  # kstatus: an error that needs a human

# Condition type, both kinds (True: no vCenter write is made; False: reason AsExpected).
SUSPENDED = "Suspended"  # also its reason when spec.suspend is true

# Suspended reason when the operator runs with --dry-run (DPIO_DRY_RUN=true).
DRY_RUN = "DryRun"

# Event reason: a deletion that would write to vCenter waits while writes are suspended.
CLEANUP_SUSPENDED = "CleanupSuspended"

# Condition types, HostPassthroughPolicy.
REBOOT_REQUIRED = "RebootRequired"
DEGRADED = "Degraded"
# True while the policy's vCenter Secret says insecure: "true" (no certificate verification).
INSECURE_CONNECTION = "InsecureConnection"

# Condition types, VMDeviceAssignment.
POWER_OFF_REQUIRED = "PowerOffRequired"
FEATURE_CONFLICT = "FeatureConflict"
DEVICES_UNAVAILABLE = "DevicesUnavailable"
VMOTION_COMPATIBLE = "VMotionCompatible"
FORBIDDEN = "Forbidden"

# Degraded reasons (HostPassthroughPolicy); VCENTER_UNREACHABLE is also Ready's reason on an outage.
PASSTHROUGH_UNSUPPORTED = "PassthroughUnsupported"
DEVICE_IN_USE = "DeviceInUse"
DEVICE_NOT_CAPABLE = "DeviceNotCapable"
DEVICE_NOT_FOUND = "DeviceNotFound"
HOST_UNREACHABLE = "HostUnreachable"
VCENTER_UNREACHABLE = "VCenterUnreachable"
DRAIN_TIMEOUT = "DrainTimeout"
DRAIN_BLOCKED = "DrainBlocked"  # powered-on VMs maintenance mode can't evacuate: not drained
MAINTENANCE_MODE_BY_OTHERS = "MaintenanceModeByOthers"  # not the operator's: it waits
POLICY_CONFLICT = "PolicyConflict"

# PowerOffRequired reason.
VM_POWERED_ON = "VMPoweredOn"

# FeatureConflict reasons: the VM uses a feature that passthrough rules out.
FAULT_TOLERANCE = "FaultTolerance"
SNAPSHOTS = "Snapshots"
HOT_ADD = "HotAdd"
NESTED_HV = "NestedHV"  # KB 437651: nested HV is refused with a passthrough device
HIGH_AVAILABILITY = "HighAvailability"
DRS_AUTOMATION = "DrsAutomation"

# DevicesUnavailable reasons.
NOT_ENABLED = "NotEnabled"
PENDING_HOST_REBOOT = "PendingHostReboot"
NOT_FOUND = "NotFound"
IN_USE_BY_VM = "InUseByVM"
CLAIMED_BY_ASSIGNMENT = "ClaimedByAssignment"
NOT_IN_POLICY = "NotInPolicy"

# VMotionCompatible reasons.
DIRECT_PATH_GEN2 = "DirectPathGen2"  # True: Gen2 under VM-FEX keeps vMotion
STATIC_PASSTHROUGH = "StaticPassthrough"  # False: a PCI passthrough device pins the VM
DYNAMIC_PASSTHROUGH = "DynamicPassthrough"  # False: a Dynamic DirectPath device pins it too
GEN2_UNSUPPORTED_HOST = "Gen2UnsupportedHost"  # False: HostCapability.vmDirectPathGen2Supported
GEN2_NOT_ALLOWED_BY_PORT_GROUP = "Gen2NotAllowedByPortGroup"  # DVPortSetting says no
NO_NETWORK_DIRECT_PATH = "NoNetworkDirectPath"  # no passthrough at all: vMotion not restricted

# Stalled reason: a networkDirectPath adapter is missing or not vmxnet3.
INVALID_NETWORK_ADAPTER = "InvalidNetworkAdapter"

# Forbidden reasons (True), and its reason when False.
POLICY_NOT_FOUND = "PolicyNotFound"
NOT_A_CONSUMER = "NotAConsumer"
VM_OUT_OF_SCOPE = "VMOutOfScope"  # also a VM not found: a tenant can't tell the two apart
POWER_POLICY_NOT_ALLOWED = "PowerPolicyNotAllowed"
CONFLICT_POLICY_NOT_ALLOWED = "ConflictPolicyNotAllowed"
HOST_NOT_IN_POLICY = "HostNotInPolicy"  # the VM runs on a host the policy does not select
VM_REPLACED = "VMReplaced"  # spec.vm now finds another VM than the one pinned in status
VCENTER_CHANGED = "VCenterChanged"  # the policy now points at another vCenter than the pin
ALLOWED = "Allowed"

# DevicesUnavailable reason: the consumer entry's maxDevices is used up by older assignments.
QUOTA_EXCEEDED = "QuotaExceeded"

# Ready=False reasons of a VMDeviceAssignment.
VM_NOT_FOUND = "VMNotFound"  # the VM does not exist (yet) in vCenter
RECONFIGURE_FAILED = "ReconfigureFailed"  # vCenter refused a change (task fault)
# Event reason: an assignment was deleted without touching its VM (policy gone, VM out of scope).
CLEANUP_SKIPPED = "CleanupSkipped"

# Stalled reason when the VM is over its passthrough device maximum.
TOO_MANY_DEVICES = "TooManyDevices"  # the maximum: QueryConfigOption, else the version table
# Stalled=True: the VM's devices map more memory than its default MMIO window and it boots
# with BIOS: 64-bit MMIO needs EFI, and changing firmware breaks the guest's boot.
FIRMWARE_NOT_EFI = "FirmwareNotEFI"
# Stalled=True: Dynamic DirectPath needs hardware version 17+ (upgradeHardwareVersion not set).
HARDWARE_VERSION_TOO_OLD = "HardwareVersionTooOld"

# Reasons besides the kind-specific ones above. They are on the wire too, so they are spelled
# here as well; the planner, reconcilers, handlers and CLI import them from here.

# Reasons of the kstatus conditions themselves, both kinds (the usual Kubernetes spellings).
RECONCILED = "Reconciled"  # Ready=True: all of the spec is in effect
PROGRESSING = "Progressing"  # Reconciling=True: changes were just made or are under way
INVALID_SPEC = "InvalidSpec"  # Stalled=True: the spec can't be acted on
AWAITING_RECONCILE = "AwaitingReconcile"  # Ready=Unknown before anything was observed

# RebootRequired reasons (HostPassthroughPolicy).
PENDING_REBOOT = "PendingReboot"  # True, reboot.policy Manual: a human reboots
ROLLING_REBOOT = "RollingReboot"  # True, reboot.policy Rolling: under way
# True, Rolling, nothing under way: waiting, nothing wrong (not Degraded).
CLUSTER_BUDGET_EXHAUSTED = "ClusterBudgetExhausted"  # maxUnavailable hosts of the cluster down
OUTSIDE_REBOOT_WINDOW = "OutsideRebootWindow"  # no reboot window open: waits for the next

# InsecureConnection reasons.
TLS_VERIFICATION_DISABLED = "TLSVerificationDisabled"  # True: insecure: "true" in the Secret
CERTIFICATE_VERIFIED = "CertificateVerified"  # False: caBundle or thumbprint is checked

# Reason of a problem condition that is False: nothing wrong (OpenShift operators' spelling).
AS_EXPECTED = "AsExpected"  # Degraded, RebootRequired, DevicesUnavailable, FeatureConflict, ...

# VCenterUnreachable stays the retryable case (an outage); these Stalled reasons say what to fix.
# Stalled reasons of the vCenter connection, both kinds (an assignment uses its policy's vCenter).
SECRET_NOT_FOUND = "SecretNotFound"  # the Secret named by the policy (or the default) is absent
SECRET_INVALID = "SecretInvalid"  # a key is missing or malformed (docs/design.md#vcenter-access)
INVALID_CREDENTIALS = "InvalidCredentials"  # vCenter refused the login (vim.fault.InvalidLogin)
TLS_VERIFICATION_FAILED = "TLSVerificationFailed"  # certificate vs caBundle / thumbprint
NOT_PERMITTED = "NotPermitted"  # vim.fault.NoPermission, or RBAC forbids reading the Secret

# Reasons of a vCenter call that failed, both kinds: vSphere's fault, as the adapter names it.
# A retryable one keeps the object Reconciling (backoff); the others make it Stalled.
VSPHERE_ERROR = "VSphereError"  # a fault the adapter has no closer name for
NOT_AUTHENTICATED = "NotAuthenticated"  # retryable: the session is not logged in
SESSION_EXPIRED = "SessionExpired"  # retryable: vCenter dropped the session; one re-login fixes it
OBJECT_NOT_FOUND = "ObjectNotFound"  # vmodl.fault.ManagedObjectNotFound / vim.fault.NotFound
INVALID_POWER_STATE = "InvalidPowerState"  # retryable: wrong power state for the call
INVALID_STATE = "InvalidState"  # retryable: the object is busy or in a passing state
CONCURRENT_MODIFICATION = "ConcurrentModification"  # retryable: changeVersion did not match
HOST_CONFIG_FAULT = "HostConfigFault"  # the host refused the change (UpdatePassthruConfig)
INVALID_REQUEST = "InvalidRequest"  # InvalidArgument / NotSupported: the call itself is wrong
TASK_FAILED = "TaskFailed"  # a task ended in error; retryable as the task's own fault
TASK_TIMED_OUT = "TaskTimedOut"  # retryable: still queued or running when we stopped waiting

# Reason of a Kubernetes API call that failed (a status or finalizer write), both kinds.
KUBERNETES_API_ERROR = "KubernetesAPIError"

# metav1.Condition's own limits, so a condition the API server would refuse fails here first.
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"

ConditionType = Annotated[str, StringConstraints(pattern=CONDITION_TYPE_PATTERN, max_length=316)]
ConditionReason = Annotated[
    str, StringConstraints(pattern=CONDITION_REASON_PATTERN, min_length=1, max_length=1024)
]


class ConditionStatus(StrEnum):
    """metav1.ConditionStatus."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(StatusModel):
    """One aspect of the object's state, as metav1.Condition."""

    type: ConditionType = Field(description="Type of condition in CamelCase, e.g. Ready.")
    status: ConditionStatus = Field(description="Status of the condition: True, False or Unknown.")
    reason: ConditionReason = Field(
        description="Why the condition has this status, in CamelCase; for machines."
    )
    message: Annotated[str, StringConstraints(max_length=32768)] = Field(
        description="Details of the transition, for humans."
    )
    last_transition_time: Timestamp = Field(
        description="When the status last changed from one value to another."
    )
    observed_generation: Annotated[int, Field(ge=0)] | None = Field(
        None, description="The .metadata.generation the condition was computed from."
    )
