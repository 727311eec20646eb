"""Rolling-reboot steps whose task this process sent, or saw in vCenter's recent tasks.

A record that shows no effect after a while is asked about (`dpio.planner.host.steps`); a step
this process started itself, or already found in vCenter, needs no second question. Keyed by
the record (phase and `since`, at the whole second status keeps), so a new record of the same
host is asked about afresh. Only in this process: after a restart or a leader change the first
reconcile asks vCenter, which is the point.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime

from dpio.api.policy import RebootPhase, RollingRebootStatus
from dpio.planner.host.steps import TaskSeen


def _key(phase: RebootPhase, since: datetime) -> tuple[RebootPhase, datetime]:
    return phase, since.astimezone(UTC).replace(microsecond=0)


class SentSteps:
    """(policy, host) -> the record whose step's task is known to have been sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: dict[tuple[str, str], tuple[RebootPhase, datetime]] = {}

    def seen(self, policy: str, records: Mapping[str, RollingRebootStatus]) -> dict[str, TaskSeen]:
        """`TaskSeen.SENT` for each of `records` (host -> record) known to have been sent."""
        with self._lock:
            return {
                host: TaskSeen.SENT
                for host, record in records.items()
                if self._sent.get((policy, host)) == _key(record.phase, record.since)
            }

    def remember(self, policy: str, host: str, phase: RebootPhase, since: datetime) -> None:
        with self._lock:
            self._sent[(policy, host)] = _key(phase, since)

    def forget(self, policy: str) -> None:
        with self._lock:
            for key in [k for k in self._sent if k[0] == policy]:
                del self._sent[key]
