"""What the reconcilers need from the outside world, as protocols.

The adapters (`dpio.vsphere`, `dpio.kube`) are wired to these in `dpio.handlers`; reconcilers
never import them (import-linter checks it), so they are tested against in-memory fakes of
exactly this surface as well as end to end against the sandbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from dpio.api.policy import HostPassthroughPolicySpec
from dpio.planner import ObservedInventory, RebootAction, UpdatePassthruConfig


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

    async def read_inventory(self) -> ObservedInventory:
        """Every host, in one PropertyCollector round trip (DESIGN.md §3.1.1)."""
        ...

    async def update_passthru_config(self, update: UpdatePassthruConfig) -> None:
        """One ``UpdatePassthruConfig`` carrying all of a host's changes."""
        ...

    async def start(self, action: RebootAction) -> None:
        """Start a maintenance-mode or reboot task; its progress is observed, not awaited."""
        ...


class VCenterPort(Protocol):
    """Resolves which vCenter a policy talks to (its Secret, or the operator's default)."""

    async def hosts_for(self, spec: HostPassthroughPolicySpec) -> HostsPort: ...


class ObjectsPort(Protocol):
    """Writes to the Kubernetes object being reconciled."""

    async def patch_status(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> None: ...

    async def set_finalizers(self, body: Mapping[str, Any], finalizers: list[str]) -> None: ...

    async def event(
        self, body: Mapping[str, Any], type_: str, reason: str, message: str
    ) -> None: ...
