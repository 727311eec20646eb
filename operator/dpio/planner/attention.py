"""Which reasons need a human and which wait: what kstatus, and so Flux, `kubectl wait` and kpt,
make of an object that is not Ready (docs/observability.md, "Who acts next").

kstatus (cli-utils `status.Compute`) calls an object `Failed` only when `Stalled=True`; any
other `Ready=False` is `InProgress`, which Flux's health check waits on until its timeout. So a
state nobody but a human can leave must say `Stalled=True`, and a state that ends by itself or
by a step the spec left to someone (a manual reboot, a power-off by the VM's owner) must not.

Every reason in dpio.api.conditions is in exactly one of the three tables below (a unit test
checks it, so a new reason cannot be forgotten). Each entry says what is awaited, or what the
human does; docs/observability.md shows the same table.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from dpio.api import conditions as c

__all__ = ["INFORMATIONAL", "NEEDS_A_HUMAN", "WAITING", "awaited", "needs_a_human"]

#: Ready=False for one of these reasons is Stalled=True (kstatus Failed, Argo CD Degraded):
#: nothing changes until someone edits the spec, the permissions or vSphere. Stalled clears on
#: the first reconcile after they have (the object is reconciled on every change it depends on).
NEEDS_A_HUMAN: Mapping[str, str] = MappingProxyType({
    # The spec or its admission.
    c.INVALID_SPEC: "fix the spec",
    c.INVALID_NETWORK_ADAPTER: "make the networkDirectPath adapter exist and be vmxnet3",
    c.TOO_MANY_DEVICES: "ask for fewer devices than the VM's maximum",
    c.FIRMWARE_NOT_EFI: "move the VM to EFI firmware (its guest must boot with it)",
    c.HARDWARE_VERSION_TOO_OLD: "upgrade the VM's hardware version (or set "
                                "upgradeHardwareVersion)",
    # Forbidden (multi-tenancy) and device offers.
    c.POLICY_NOT_FOUND: "create the HostPassthroughPolicy or fix policyRef",
    c.NOT_A_CONSUMER: "add the namespace to the policy's consumers",
    c.VM_OUT_OF_SCOPE: "name a VM that exists in the namespace's scope",
    c.POWER_POLICY_NOT_ALLOWED: "choose a powerPolicy the policy allows",
    c.CONFLICT_POLICY_NOT_ALLOWED: "choose a conflictPolicy the policy allows",
    c.HOST_NOT_IN_POLICY: "move the VM to a host the policy selects",
    c.VM_REPLACED: "delete the assignment and create one for the new VM",
    c.VCENTER_CHANGED: "point the policy back at its vCenter, or recreate the assignment",
    c.NOT_IN_POLICY: "ask for a device the policy offers on the VM's host",
    c.QUOTA_EXCEEDED: "raise the consumer's maxDevices or release devices",
    c.VM_NOT_FOUND: "create the VM or fix spec.vm",
    # Devices and hosts (HostPassthroughPolicy Degraded).
    c.PASSTHROUGH_UNSUPPORTED: "enable VT-d/AMD-Vi in the host's firmware, or drop the host",
    c.DEVICE_IN_USE: "free the device on the host (e.g. move the VMkernel adapter off the NIC)",
    c.DEVICE_NOT_CAPABLE: "drop the device from the selectors",
    c.DEVICE_NOT_FOUND: "fix the selector or install the device",
    c.POLICY_CONFLICT: "make the two policies agree on the device",
    c.DRAIN_TIMEOUT: "reboot the host by hand (the operator left it running)",
    # Devices of a VMDeviceAssignment (DevicesUnavailable).
    c.NOT_FOUND: "ask for a device the host has (and the policy enables)",
    c.IN_USE_BY_VM: "detach the device from the other VM, or ask for another",
    c.CLAIMED_BY_ASSIGNMENT: "delete the older assignment, or ask for another device",
    # Feature conflicts under conflictPolicy: Block.
    c.FAULT_TOLERANCE: "turn Fault Tolerance off (Resolve does not touch it)",
    c.SNAPSHOTS: "delete or consolidate the VM's snapshots",
    c.HOT_ADD: "turn CPU/memory hot add off, or conflictPolicy: Resolve",
    c.NESTED_HV: "turn nested hardware virtualization off, or conflictPolicy: Resolve",
    c.HIGH_AVAILABILITY: "exclude the VM from vSphere HA, or conflictPolicy: Resolve",
    c.DRS_AUTOMATION: "set the VM's DRS automation to manual, or conflictPolicy: Resolve",
    # The vCenter connection.
    c.SECRET_NOT_FOUND: "create the vCenter Secret",
    c.SECRET_INVALID: "fix the vCenter Secret's keys",
    c.INVALID_CREDENTIALS: "fix the username or password in the Secret",
    c.TLS_VERIFICATION_FAILED: "fix caBundle or thumbprint in the Secret",
    c.NOT_PERMITTED: "grant the vCenter role or the RBAC the operator lacks",
    # vSphere faults: in a condition only when permanent (a retryable one is VCenterUnreachable).
    c.VSPHERE_ERROR: "read the fault in the message",
    c.OBJECT_NOT_FOUND: "check that the vSphere object still exists",
    c.HOST_CONFIG_FAULT: "read the host's fault in the message",
    c.INVALID_REQUEST: "read the fault in the message (vCenter rejects the call itself)",
    c.TASK_FAILED: "read the task's fault in the message",
    c.KUBERNETES_API_ERROR: "read the API server's answer in the message",
})  # fmt: skip

#: Ready=False for one of these reasons stays kstatus InProgress (Argo CD Progressing or
#: Suspended): the operator, the host or the VM's owner gets there; the message says what is
#: awaited.
WAITING: Mapping[str, str] = MappingProxyType({
    c.AWAITING_RECONCILE: "the operator's first look at the object",
    c.PROGRESSING: "the operator's changes under way",
    c.PENDING_REBOOT: "a manual reboot of the hosts named (reboot.policy: Manual)",
    c.ROLLING_REBOOT: "the operator's rolling reboot",
    c.CLUSTER_BUDGET_EXHAUSTED: "a slot in the cluster's maxUnavailable (other hosts of the "
                                "cluster to come back)",
    c.OUTSIDE_REBOOT_WINDOW: "the next reboot window (status.reboot.nextWindow)",
    c.DRAIN_BLOCKED: "the powered-on VMs maintenance mode can't evacuate to be moved or "
                     "powered off by their owners",
    c.MAINTENANCE_MODE_BY_OTHERS: "whoever put the host in maintenance mode to take it out",
    c.HOST_UNREACHABLE: "vCenter to reconnect the host",
    c.VCENTER_UNREACHABLE: "vCenter to answer again (retried with capped backoff)",
    c.VM_POWERED_ON: "the VM to be powered off by its owner (powerPolicy: WaitForPowerOff)",
    c.NOT_ENABLED: "the HostPassthroughPolicy to enable the device",
    c.PENDING_HOST_REBOOT: "the reboot of the device's host",
    # Retried with backoff; a fault retrying won't fix also sets Stalled=True (reconcile/
    # assignment/report.py), with this reason.
    c.RECONFIGURE_FAILED: "vCenter to accept the change (retried with capped backoff)",
    # Faults the adapter calls retryable: the operator retries; conditions say
    # VCenterUnreachable, never these.
    c.NOT_AUTHENTICATED: "a new login (automatic)",
    c.SESSION_EXPIRED: "a new login (automatic)",
    c.INVALID_POWER_STATE: "the VM's power operation to end",
    c.INVALID_STATE: "the busy vSphere object to be free",
    c.CONCURRENT_MODIFICATION: "a retry on the new configuration",
    c.TASK_TIMED_OUT: "the vSphere task to end",
    # A pause someone chose (design.md, "Suspend and dry-run"): Argo CD shows Suspended.
    c.SUSPENDED: "spec.suspend: false (the object is paused; nothing is written to vCenter)",
    c.DRY_RUN: "the operator to run without --dry-run (nothing is written to vCenter)",
})  # fmt: skip

#: Reasons that never make Ready False: a True state, "nothing wrong", vMotion's verdict, or an
#: Event's reason.
INFORMATIONAL: Mapping[str, str] = MappingProxyType({
    c.RECONCILED: "Ready=True",
    c.AS_EXPECTED: "a problem condition that is False",
    c.ALLOWED: "Forbidden=False",
    c.CERTIFICATE_VERIFIED: "InsecureConnection=False",
    c.TLS_VERIFICATION_DISABLED: "InsecureConnection=True: a warning, the object works",
    c.DIRECT_PATH_GEN2: "VMotionCompatible=True",
    c.STATIC_PASSTHROUGH: "VMotionCompatible=False: a fact, not a fault",
    c.DYNAMIC_PASSTHROUGH: "VMotionCompatible=False: a fact, not a fault",
    c.GEN2_UNSUPPORTED_HOST: "VMotionCompatible=False: a fact, not a fault",
    c.GEN2_NOT_ALLOWED_BY_PORT_GROUP: "VMotionCompatible=False: a fact, not a fault",
    c.NO_NETWORK_DIRECT_PATH: "VMotionCompatible: no Gen2 adapter asked for",
    c.CLEANUP_SKIPPED: "an Event on deletion",
    c.CLEANUP_SUSPENDED: "an Event on a deletion that waits for writes to be allowed again",
})  # fmt: skip


def needs_a_human(reason: str) -> bool:
    """Whether Ready=False for `reason` is Stalled=True. An unknown reason waits: a unit test
    makes every reason the operator can write known."""
    return reason in NEEDS_A_HUMAN


def awaited(reason: str) -> str:
    """Reconciling=False's message while Ready=False for `reason` waits: what it waits for."""
    what = WAITING.get(reason)
    return f"Waiting for {what}" if what else "Nothing to do until the situation changes"
