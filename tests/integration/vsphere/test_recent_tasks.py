"""`HostAdapter.recent_tasks` against dpio-vcsim: each host's `recentTask`, read fresh in one
PropertyCollector call, with vCenter's descriptionIds, states and queue times; what the policy
reconciler asks before sending a recorded rolling-reboot step again (planner/host/steps.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from dpio.api.policy import RebootPhase
from dpio.planner.host.steps import (
    ENTER_MAINTENANCE_MODE,
    REBOOT,
    HostTask,
    UnconfirmedStep,
    step_sent,
)
from dpio.vsphere import errors
from dpio.vsphere.credentials import from_secret_data
from dpio.vsphere.host.adapter import HostAdapter
from dpio.vsphere.session import VCenterClient
from dpio_sandbox import vcsim

pytestmark = pytest.mark.sandbox

GPU01, GPU02 = "esx-gpu-01.lab.local", "esx-gpu-02.lab.local"


@pytest.fixture
def sim(vcsim_factory: Callable[..., vcsim.Simulator]) -> vcsim.Simulator:
    return vcsim_factory()


@pytest.fixture
def adapter(sim: vcsim.Simulator) -> Iterator[HostAdapter]:
    data = {"server": sim.sdk_url, "username": sim.username, "password": sim.password,
            "caBundle": sim.ca_file.read_text()}  # fmt: skip
    client = VCenterClient(from_secret_data(data), max_workers=2, timeout=15)
    try:
        yield HostAdapter(client)
    finally:
        client.close()


def _moref(adapter: HostAdapter, name: str) -> str:
    host = asyncio.run(adapter.read_inventory(names=[name])).host(name)
    assert host is not None
    return host.moref


def _reads(sim: vcsim.Simulator) -> int:
    answer = sim.admin("GET", "/counters")
    assert isinstance(answer, dict)
    return int(answer["counts"].get("RetrievePropertiesEx", 0))


def _steps(tasks: tuple[HostTask, ...]) -> list[tuple[str, str]]:
    return sorted(
        (t.description_id, t.state)
        for t in tasks
        if t.description_id in (ENTER_MAINTENANCE_MODE, REBOOT)
    )


def test_recent_tasks_name_the_steps_sent_to_each_host(
    sim: vcsim.Simulator, adapter: HostAdapter
) -> None:
    gpu01, gpu02 = _moref(adapter, GPU01), _moref(adapter, GPU02)
    before = datetime.now(UTC) - timedelta(seconds=1)
    nothing = asyncio.run(adapter.recent_tasks([gpu01, gpu02]))
    assert set(nothing) == {gpu01, gpu02}
    assert _steps(nothing[gpu02]) == []

    async def steps() -> None:
        await adapter.wait_for_task(await adapter.enter_maintenance_mode(gpu02, 60), 60)
        await adapter.wait_for_task(await adapter.reboot_host(gpu02), 60)
        # Outside maintenance mode vCenter refuses it: the task ends in error.
        with contextlib.suppress(errors.TaskFailed):
            await adapter.wait_for_task(await adapter.reboot_host(gpu01), 60)

    asyncio.run(steps())
    reads = _reads(sim)
    tasks = asyncio.run(adapter.recent_tasks([gpu01, gpu02]))

    assert _reads(sim) - reads == 1  # one call for every host asked about
    assert _steps(tasks[gpu02]) == [(ENTER_MAINTENANCE_MODE, "success"), (REBOOT, "success")]
    assert _steps(tasks[gpu01]) == [(REBOOT, "error")]
    queued = [t.queue_time for t in tasks[gpu02] if t.description_id == REBOOT]
    assert queued[0] is not None
    assert queued[0] >= before
    # What the planner makes of it: the step recorded before the task was sent; one recorded
    # later than the task (plus the clock-skew allowance) was not.
    recorded = UnconfirmedStep(GPU02, gpu02, RebootPhase.REBOOTING, before)
    assert step_sent(recorded, tasks[gpu02])
    later = UnconfirmedStep(GPU02, gpu02, RebootPhase.REBOOTING, before + timedelta(minutes=5))
    assert not step_sent(later, tasks[gpu02])


def test_a_host_that_does_not_exist_fails_the_read(adapter: HostAdapter) -> None:
    with pytest.raises(errors.VSphereError):
        asyncio.run(adapter.recent_tasks(["host-does-not-exist"]))
