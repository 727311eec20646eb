"""Which hosts each policy's rolling reboot holds, so a cluster's budget counts them at once.

`maxUnavailable` is a budget per vSphere cluster across all policies (`planner/host/budget.py`).
vCenter shows a host in maintenance mode only once its drain has finished, and another
policy's status in the cache lags its write; so between one policy deciding to drain a host
and vCenter (or the cache) showing it, a second policy would see a free slot and take it too.

The operator runs one leader, so holding the decision in-process is enough: `decide` plans
under a lock with every other policy's held hosts, and keeps the plan's hosts under way
(draining, rebooting, exiting) as this policy's holds until its next decision replaces them.
So a slot is taken from the moment of the decision, through the status write and the start
of `EnterMaintenanceMode_Task`, until vCenter shows the host down and back. After a restart
(or a leader change) the holds are seeded once from the policies' statuses in the cache, where
each record was written before its task started.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from dpio.api.policy import RebootPhase
from dpio.planner import PolicyPlan


def _held_in_status(body: Mapping[str, Any]) -> frozenset[str]:
    """Hosts whose rolling reboot the body's status shows under way: rebooting or exiting, or
    draining with the operator's own maintenance mode (not a drain that timed out)."""
    hosts = (body.get("status") or {}).get("hosts") or []
    held = set()
    for host in hosts:
        record = host.get("rollingReboot") or {}
        phase = record.get("phase")
        if phase in (RebootPhase.REBOOTING, RebootPhase.EXITING) or (
            phase == RebootPhase.DRAINING and record.get("enteredByOperator")
        ):
            held.add(str(host.get("name", "")))
    return frozenset(held)


class RebootReservations:
    """Policy name -> the host names its rolling reboot holds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, frozenset[str]] = {}
        self._seeded = False

    def seed(self, bodies: Callable[[], Iterable[Mapping[str, Any]]]) -> None:
        """Once: the holds the cached statuses show, for policies that have not decided yet."""
        with self._lock:
            if self._seeded:
                return
            self._seeded = True
            for body in bodies():
                name = str(body.get("metadata", {}).get("name", ""))
                held = _held_in_status(body)
                if held:
                    self._held.setdefault(name, held)

    def decide(
        self, name: str, present: Collection[str], plan: Callable[[frozenset[str]], PolicyPlan]
    ) -> PolicyPlan:
        """`plan(hosts every other policy holds)`, atomically with keeping what it holds.

        `present`: the policies that exist; holds of any other are dropped (deleted policies).
        A plan that stalled observed nothing: the policy keeps what it held.
        """
        with self._lock:
            for gone in [n for n in self._held if n != name and n not in present]:
                del self._held[gone]
            others = frozenset().union(*(h for n, h in self._held.items() if n != name))
            result = plan(others)
            if result.stalled is None:
                # Only policies that hold hosts are kept: the walks above stay as short as the
                # rolling reboots under way, not as long as the list of policies (finding 27).
                holds = frozenset(result.reboot.in_progress)
                if holds:
                    self._held[name] = holds
                else:
                    self._held.pop(name, None)
            return result

    def forget(self, name: str) -> None:
        with self._lock:
            self._held.pop(name, None)

    def held(self, name: str) -> frozenset[str]:
        with self._lock:
            return self._held.get(name, frozenset())

    def __len__(self) -> int:
        """How many policies hold hosts now."""
        with self._lock:
            return len(self._held)
