"""`dpio_leader` follows leader election (1 while this replica reconciles, 0 while it follows),
and the liveness probe reports both work queues by kind."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import kopf
import pytest

from dpio.handlers.lifecycle import lead_then_stop, queue_depth
from dpio.observability import metrics

Callback = Callable[[], Awaitable[None]]


def leader() -> float | None:
    return metrics.REGISTRY.get_sample_value("dpio_leader")


@dataclass
class ScriptedElector:
    """Stands in for LeaderElector.run: follows, then leads and/or loses as the script says,
    noting the gauge before each step (what a scrape would have seen then)."""

    script: tuple[str, ...]
    seen: list[tuple[str, float | None]] = field(default_factory=list)

    async def run(self, on_started_leading: Callback, on_stopped_leading: Callback) -> None:
        self.seen.append(("following", leader()))
        steps = {"lead": on_started_leading, "lose": on_stopped_leading}
        for step in self.script:
            await steps[step]()
            self.seen.append((step, leader()))


@pytest.mark.parametrize(
    ("script", "expected", "queues"),
    [
        ((), [("following", 0.0)], []),
        (("lead",), [("following", 0.0), ("lead", 1.0)], ["start at 1.0"]),
        (
            ("lead", "lose"),
            [("following", 0.0), ("lead", 1.0), ("lose", 0.0)],
            ["start at 1.0", "stop at 0.0", "exit"],
        ),
    ],
    ids=["never-leads", "leads", "leads-then-loses"],
)
def test_leader_gauge_follows_the_lease(
    script: tuple[str, ...], expected: list[tuple[str, float]], queues: list[str]
) -> None:
    metrics.set_leader(True)  # a value left by an earlier test must not hide the first step
    elector = ScriptedElector(script)
    events: list[str] = []

    async def stop() -> None:
        events.append(f"stop at {leader()}")

    gate = lead_then_stop(
        elector,  # type: ignore[arg-type]
        start=lambda: events.append(f"start at {leader()}"),
        stop=stop,
        end_process=lambda: events.append("exit"),
    )
    asyncio.run(gate)

    assert elector.seen == expected
    # The gauge says "leading" by the time the queues start, "following" before they stop.
    assert events == queues


@pytest.mark.parametrize(("leading", "value"), [(True, 1.0), (False, 0.0)])
def test_set_leader_is_exposed_as_one_or_zero(leading: bool, value: float) -> None:
    metrics.set_leader(not leading)
    metrics.set_leader(leading)

    assert leader() == value


def _runtime(policies: int, assignments: int) -> Any:
    def controller(kind: str, depth: int) -> SimpleNamespace:
        return SimpleNamespace(kind=kind, queue=[("", f"k{i}") for i in range(depth)])

    return SimpleNamespace(
        policies=controller("HostPassthroughPolicy", policies),
        assignments=controller("VMDeviceAssignment", assignments),
    )


@pytest.mark.parametrize(
    ("runtime", "expected"),
    [
        (None, {}),
        (_runtime(0, 0), {"HostPassthroughPolicy": 0, "VMDeviceAssignment": 0}),
        (_runtime(2, 0), {"HostPassthroughPolicy": 2, "VMDeviceAssignment": 0}),
        (_runtime(0, 3), {"HostPassthroughPolicy": 0, "VMDeviceAssignment": 3}),
    ],
    ids=["before-startup", "idle", "policies-queued", "assignments-queued"],
)
def test_liveness_probe_reports_each_queue_by_kind(runtime: Any, expected: dict[str, int]) -> None:
    memo = kopf.Memo()
    if runtime is not None:
        memo.runtime = runtime

    assert queue_depth(memo=memo) == expected
