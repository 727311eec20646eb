"""What the reconcilers need from the outside world, as protocols.

The adapters (`dpio.vsphere`, `dpio.kube`) are wired to these in `dpio.app`; reconcilers
never import them (import-linter checks it), so they are tested against in-memory fakes of
exactly this surface as well as end to end against the sandbox.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

from dpio.api.policy import HostPassthroughPolicySpec, VCenterRef
from dpio.planner import ObservedInventory, RebootAction, UpdatePassthruConfig
from dpio.planner.host.steps import HostTask
from dpio.planner.vm.changes import ReconfigureCluster, ReconfigVM, UpgradeVM
from dpio.planner.vm.observed import VMName, VMObservation
from dpio.planner.vm.power import PowerAction


class PortError(Exception):
    """A call through a port failed.

    ``reason`` is the condition reason to report (e.g. ``VCenterUnreachable``, ``NotPermitted``);
    ``retryable`` says whether the same call may succeed later without a human.
    """

    def __init__(self, reason: str, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retryable = retryable


class HostsPort(Protocol):
    """The host side of one vCenter."""

    #: The Secret turns certificate verification off (insecure: "true").
    @property
    def insecure(self) -> bool: ...

    async def read_inventory(self) -> ObservedInventory:
        """Every host, in one PropertyCollector round trip (docs/design.md#vcenter-access)."""
        ...

    async def update_passthru_config(self, update: UpdatePassthruConfig) -> None:
        """One ``UpdatePassthruConfig`` carrying all of a host's changes."""
        ...

    async def start(self, action: RebootAction) -> None:
        """Start a maintenance-mode or reboot task; its progress is observed, not awaited."""
        ...

    async def recent_tasks(
        self, host_morefs: Collection[str]
    ) -> Mapping[str, tuple[HostTask, ...]]:
        """Each host's recent tasks (`recentTask`), by moref, read fresh in one call: whether a
        recorded rolling-reboot step was ever sent (planner/host/steps.py)."""
        ...


class VCenterPort(Protocol):
    """Resolves which vCenter a policy talks to (its Secret, or the operator's default)."""

    async def hosts_for(self, spec: HostPassthroughPolicySpec) -> HostsPort: ...


class VMsPort(Protocol):
    """The VM side of one vCenter: at most 3 calls to observe a converged VM (docs/design.md,
    "vCenter access")."""

    async def observe_vm(
        self, *, name: str = "", instance_uuid: str = "", ahead: Sequence[VMName] = ()
    ) -> VMObservation:
        """The VM, its host's ConfigTarget and ConfigOption; `vm` None if it does not exist.
        `claims`, `policy` and `namespace_labels` are left empty: they come from caches.
        `ahead`: the VMs likely observed next, which the read may include (a hint: it changes
        no answer, only how many calls they cost)."""
        ...

    async def reconfigure(self, change: ReconfigVM) -> None:
        """One `ReconfigVM_Task` carrying every change; returns when the task has finished."""
        ...

    async def reconfigure_cluster(self, change: ReconfigureCluster) -> None:
        """One `ReconfigureComputeResource_Task` with this VM's DRS/HA overrides."""
        ...

    async def upgrade(self, change: UpgradeVM) -> None:
        """`UpgradeVM_Task(version)` of a powered-off VM; returns when the task has finished."""
        ...

    async def power(self, vm_moref: str, action: PowerAction) -> None:
        """`ShutdownGuest` (returns at once), `PowerOffVM_Task` or `PowerOnVM_Task`."""
        ...


class VCenterVMsPort(Protocol):
    """Resolves the vCenter an assignment talks to: its policy's, else the operator's default."""

    async def vms_for(self, vcenter: VCenterRef | None) -> VMsPort: ...


class ObjectsPort(Protocol):
    """Writes to the Kubernetes object being reconciled."""

    async def patch_status(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> None: ...

    async def set_finalizers(self, body: Mapping[str, Any], finalizers: list[str]) -> None: ...

    async def event(
        self, body: Mapping[str, Any], type_: str, reason: str, message: str
    ) -> None: ...
