"""A policy's spec compiled into what the host planner checks, and the other policies it shares
hosts with (DESIGN.md §3.1.8: the older policy wins a device both want in opposite states)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dpio.api.policy import ApplyNow, HostPassthroughPolicySpec
from dpio.planner.observed import HostPciDevice, ObservedHost, ObservedInventory
from dpio.planner.selection import (
    DeviceMatcher,
    InvalidSpecError,
    compile_device_selectors,
    select_hosts,
)


@dataclass(frozen=True, slots=True)
class PolicyRules:
    matchers: tuple[DeviceMatcher, ...]
    exclusive: bool = False
    apply_now_auto: bool = True
    allow_devices_in_use: bool = False

    @classmethod
    def from_spec(cls, spec: HostPassthroughPolicySpec) -> PolicyRules:
        """Raises InvalidSpecError for what admission could not reject."""
        return cls(
            matchers=compile_device_selectors(spec.devices),
            exclusive=spec.exclusive,
            apply_now_auto=spec.apply_now is ApplyNow.AUTO,
            allow_devices_in_use=spec.allow_devices_in_use,
        )


@dataclass(frozen=True, slots=True)
class OtherPolicy:
    """Another HostPassthroughPolicy on the same vCenter, as the reconciler lists it.

    Policies being deleted should be left out: they no longer claim anything.
    """

    name: str
    creation_timestamp: datetime
    spec: HostPassthroughPolicySpec


@dataclass(frozen=True, slots=True)
class _Rival:
    name: str
    age: tuple[datetime, str]
    host_names: frozenset[str]
    rules: PolicyRules

    def wants(self, host: ObservedHost, device: HostPciDevice | None, pci_id: str) -> bool | None:
        """True: enabled, False: disabled, None: no opinion about this device."""
        if host.name not in self.host_names:
            return None
        if device is not None and any(m.matches(device) for m in self.rules.matchers):
            return True
        if self.rules.exclusive and not host.attached_to_vms.get(pci_id):
            return False
        return None


@dataclass(frozen=True, slots=True)
class Rivals:
    """The other policies, seen from the policy being planned (`age`: creationTimestamp, name)."""

    age: tuple[datetime, str]
    rivals: tuple[_Rival, ...] = ()

    @classmethod
    def build(
        cls,
        name: str,
        creation_timestamp: datetime,
        others: tuple[OtherPolicy, ...],
        inventory: ObservedInventory,
    ) -> Rivals:
        rivals = []
        for other in others:
            if other.name == name:
                continue
            try:
                rules = PolicyRules.from_spec(other.spec)
                hosts = select_hosts(other.spec.hosts, inventory).hosts
            except InvalidSpecError:
                continue  # a policy that can't be planned claims nothing; it reports Stalled
            age = (other.creation_timestamp, other.name)
            rivals.append(_Rival(other.name, age, frozenset(h.name for h in hosts), rules))
        return cls((creation_timestamp, name), tuple(sorted(rivals, key=lambda r: r.age)))

    def older_opposite(
        self, host: ObservedHost, device: HostPciDevice | None, pci_id: str, enabled: bool
    ) -> str | None:
        """The oldest older policy that wants this device the other way, if any."""
        for rival in self.rivals:
            if rival.age >= self.age:
                return None
            if rival.wants(host, device, pci_id) is (not enabled):
                return rival.name
        return None

    def claimed_by(
        self, host: ObservedHost, device: HostPciDevice | None, pci_id: str
    ) -> str | None:
        """Any other policy, old or new, that wants this device enabled."""
        return next((r.name for r in self.rivals if r.wants(host, device, pci_id) is True), None)
