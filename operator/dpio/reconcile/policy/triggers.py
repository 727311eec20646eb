"""Which HostPassthroughPolicies to look at again when vCenter reports a change.

A policy depends on more than its own object: the hosts it selects, as vCenter reports them.
Reconciling every policy on every report would make convergence O(N²) (docs/benchmarks.md,
findings 4 and 13), so a report is matched against what each policy last planned on
(`Selections`): a report that names hosts queues the policies that selected one of them; a report
that names none is resolved by one whole read (`dpio.app.resync`), after which only the policies
whose hosts differ in it are queued, as an informer's relist hands on only what changed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from dpio.planner.observed import ObservedInventory
from dpio.reconcile.constants import VM_SETTLE_SECONDS
from dpio.reconcile.controller import Controller
from dpio.reconcile.policy.selections import Selections

_log = logging.getLogger(__name__)


@dataclass
class PolicyTriggers:
    """Fed by vCenter change notification (on the event loop, never a watcher thread)."""

    policies: Controller
    #: The reconciler's record of what each policy last planned on.
    selections: Selections

    def hosts_changed(self, hosts: frozenset[str]) -> None:
        """vCenter says these hosts changed: queue the policies they concern."""
        self.policies.enqueue_keys(self.selections.concerned(hosts))

    def vm_hosts_changed(self, hosts: frozenset[str]) -> None:
        """VMs on these hosts changed (their devices, their power): queue the policies they
        concern, a burst coalesced into one run per policy, within `VM_SETTLE_SECONDS` or
        twice the policy's last run, whichever is longer: a policy over 625 hosts takes
        seconds a run, and VMs converging kept it running back to back, 28% of the operator's
        samples at 5,000 assignments (docs/benchmarks.md, finding 26). So such runs take at
        most a third of a worker's time."""
        for key in self.selections.concerned(hosts):
            within = max(VM_SETTLE_SECONDS, 2 * self.policies.last_seconds(key))
            self.policies.enqueue_keys((key,), within=within)

    def inventory_read(self, inventory: ObservedInventory | None) -> None:
        """A whole read after a report that named no hosts (None: the read failed, so every
        policy is queued: missing a change would be worse than a pass too many)."""
        queued = self.policies.enqueue_where(
            lambda key: inventory is None or self.selections.differs(key[1], inventory)
        )
        _log.info(
            "vCenter reported changes of unnamed hosts: policies queued",
            extra={"queued": queued, "policies": len(self.policies.cache)},
        )
