"""Leader election on a Lease (client-go's rules) and the gate that keeps a follower's work
queues stopped: who acquires, when a dead leader's Lease may be taken, that a race has one
winner, and that a follower never starts its queues while another replica holds the Lease."""

from __future__ import annotations

import asyncio
import datetime
import time
from dataclasses import dataclass, field, replace

import pytest

from dpio.handlers.lifecycle import LeaderElection, lead_then_stop
from dpio.kube.lease import LeaderElector, LeaseConflictError, LeaseRecord, Timing

T0 = datetime.datetime(2026, 11, 25, 22, 0, tzinfo=datetime.UTC)
TIMING = Timing(lease_duration=15, renew_deadline=10, retry_period=2)


@dataclass
class FakeStore:
    """An API server's view of one Lease: resourceVersion checked on every replace."""

    record: LeaseRecord | None = None
    version: int = 0
    writes: list[str] = field(default_factory=list)

    async def get(self) -> LeaseRecord | None:
        record = self.record
        await asyncio.sleep(0)  # a round trip: another replica may read the same version
        return record

    async def create(self, record: LeaseRecord) -> LeaseRecord:
        if self.record is not None:
            raise LeaseConflictError("AlreadyExists")
        return self._store(record)

    async def replace(self, record: LeaseRecord) -> LeaseRecord:
        assert self.record is not None
        if record.resource_version != self.record.resource_version:
            raise LeaseConflictError("Conflict")
        return self._store(record)

    async def close(self) -> None:
        pass  # nothing to give back: no connections

    def _store(self, record: LeaseRecord) -> LeaseRecord:
        self.version += 1
        self.record = replace(record, resource_version=str(self.version))
        self.writes.append(record.holder)
        return self.record


@dataclass
class Clock:
    t: float = 100.0

    def __call__(self) -> float:
        return self.t


def elector(store: FakeStore, name: str, clock: Clock) -> LeaderElector:
    return LeaderElector(store, name, TIMING, clock=clock, now=lambda: T0)


def held_by(holder: str, transitions: int = 1) -> FakeStore:
    store = FakeStore()
    store._store(LeaseRecord(holder, 15, T0, T0, transitions))
    return store


@pytest.mark.parametrize(
    ("store", "waited", "acquired"),
    [
        (FakeStore(), 0, True),  # no Lease yet: created with us as holder
        (held_by("other"), 0, False),  # a live leader is respected
        (held_by("other"), 14.9, False),  # ... for the whole lease duration
        (held_by("other"), 15, True),  # no renewal seen for 15 s on our clock: taken over
        (held_by(""), 0, True),  # released on a graceful stop: taken at once
        (held_by("me"), 0, True),  # our own (a renewal)
    ],
)
def test_acquire_depends_on_holder_and_time_since_the_record_last_changed(
    store: FakeStore, waited: float, acquired: bool
) -> None:
    clock = Clock()
    me = elector(store, "me", clock)

    async def scenario() -> bool:
        first = await me.try_acquire_or_renew()
        if waited == 0:
            return first
        clock.t += waited
        return await me.try_acquire_or_renew()

    assert asyncio.run(scenario()) is acquired
    assert store.record is not None
    assert (store.record.holder == "me") is acquired


def test_a_renewing_leader_is_never_taken_over() -> None:
    store, clock = FakeStore(), Clock()
    leader, follower = elector(store, "a", clock), elector(store, "b", clock)

    async def scenario() -> list[bool]:
        seen = []
        for _ in range(20):  # 40 s, far past the 15 s lease, with a renewal every 2 s
            seen.append(await leader.try_acquire_or_renew())
            seen.append(not await follower.try_acquire_or_renew())
            clock.t += TIMING.retry_period
        return seen

    assert all(asyncio.run(scenario()))
    assert store.record is not None
    assert store.record.holder == "a"


@pytest.mark.parametrize(
    ("holder", "transitions", "acquire_time"),
    [("me", 1, T0 - datetime.timedelta(minutes=5)), ("other", 2, T0)],
)
def test_renewal_keeps_acquire_time_and_a_takeover_counts_a_transition(
    holder: str, transitions: int, acquire_time: datetime.datetime
) -> None:
    store = FakeStore()
    before = T0 - datetime.timedelta(minutes=5)
    store._store(LeaseRecord(holder, 15, before, before, 1))
    clock = Clock()
    me = elector(store, "me", clock)

    async def scenario() -> None:
        await me.try_acquire_or_renew()
        clock.t += 15
        await me.try_acquire_or_renew()

    asyncio.run(scenario())
    assert store.record is not None
    assert (store.record.holder, store.record.transitions) == ("me", transitions)
    assert store.record.acquire_time == acquire_time
    assert store.record.renew_time == T0


def test_two_followers_taking_over_at_once_make_one_leader() -> None:
    store, clock = held_by("dead"), Clock()
    b, c = elector(store, "b", clock), elector(store, "c", clock)

    async def scenario() -> list[bool]:
        await b.try_acquire_or_renew()
        await c.try_acquire_or_renew()
        clock.t += 15
        # Both read the expired Lease before either writes: the second write is a conflict.
        read = await store.get()
        results = await asyncio.gather(b.try_acquire_or_renew(), c.try_acquire_or_renew())
        assert read is not None
        return list(results)

    assert sorted(asyncio.run(scenario())) == [False, True]
    assert store.writes[-1:] == ["b"] or store.writes[-1:] == ["c"]
    assert len(store.writes) == 2  # the seed and exactly one takeover


@pytest.mark.parametrize(("since_renewal", "expired"), [(0, False), (9.9, False), (10, True)])
def test_a_leader_that_cannot_renew_stops_before_the_lease_could_be_taken(
    since_renewal: float, expired: bool
) -> None:
    clock = Clock()
    me = elector(FakeStore(), "me", clock)
    assert asyncio.run(me.try_acquire_or_renew())
    clock.t += since_renewal
    assert me.renew_expired() is expired
    assert TIMING.renew_deadline < TIMING.lease_duration


# The Lease's own duration counts (whole seconds on the wire): 1 s here.
FAST = Timing(lease_duration=1, renew_deadline=0.6, retry_period=0.05)


def test_the_gate_starts_the_queues_only_once_leading_and_stops_them_when_taken() -> None:
    store = FakeStore()
    store._store(LeaseRecord("leader", 1, T0, T0, 1))
    events: list[str] = []
    me = LeaderElector(store, "me", FAST)

    async def stop() -> None:
        events.append("stop")

    async def scenario() -> None:
        task = asyncio.create_task(
            lead_then_stop(
                me,
                start=lambda: events.append("start"),
                stop=stop,
                end_process=lambda: events.append("exit"),
            )
        )
        # The leader renews for 2 s (two lease durations), then dies.
        for i in range(40):
            assert store.record is not None
            renewed = T0 + datetime.timedelta(seconds=i)
            store._store(replace(store.record, renew_time=renewed))
            await asyncio.sleep(FAST.retry_period)
        assert events == []  # a follower: queues never started while the leader lived
        await asyncio.sleep(FAST.takeover + 0.1)
        assert events == ["start"]
        assert me.leading
        # Someone else writes the Lease (e.g. after a long pause of ours): stop at once.
        assert store.record is not None
        store._store(replace(store.record, holder="usurper"))
        await asyncio.wait_for(task, timeout=1)

    asyncio.run(scenario())
    assert events == ["start", "stop", "exit"]
    assert not me.leading


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"DPIO_LEASE": " "}, None),
        ({"DPIO_LEASE": "dpio-leader"}, ("dpio-leader", 15.0, 19.0)),
        ({"DPIO_LEASE": "l", "DPIO_LEASE_DURATION": "30"}, ("l", 30.0, 38.0)),
    ],
)
def test_leader_election_settings_from_the_environment(
    env: dict[str, str], expected: tuple[str, float, float] | None
) -> None:
    election = LeaderElection.from_env(env)
    if expected is None:
        assert election is None
        return
    assert election is not None
    got = (election.lease, election.timing.lease_duration, election.timing.takeover)
    assert got == expected


@pytest.mark.parametrize("raw", ["soon", "1", "-5"])
def test_bad_lease_durations_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match=r"lease duration|DPIO_LEASE_DURATION"):
        LeaderElection.from_env({"DPIO_LEASE": "l", "DPIO_LEASE_DURATION": raw})


class UnreachableError(Exception):
    """Like urllib3's MaxRetryError: not an OSError, not an ApiException."""


@dataclass
class BrokenStore(FakeStore):
    """Works until `broken`, then every read fails one way or another."""

    broken: str = ""
    renewed_at: float = 0.0

    async def replace(self, record: LeaseRecord) -> LeaseRecord:
        stored = await super().replace(record)
        self.renewed_at = time.monotonic()
        return stored

    async def get(self) -> LeaseRecord | None:
        if self.broken == "unreachable":
            raise UnreachableError("connection refused")
        if self.broken == "hangs":
            await asyncio.sleep(3600)
        return await super().get()


@pytest.mark.parametrize("failure", ["unreachable", "hangs"])
def test_a_leader_cut_off_from_the_api_server_stops_at_its_renew_deadline(failure: str) -> None:
    store = BrokenStore()
    events: list[tuple[str, float]] = []
    # A request may hang for half the renew deadline: the last one must still be cut at it.
    timing = Timing(lease_duration=4, renew_deadline=2, retry_period=0.1)
    me = LeaderElector(store, "me", timing)
    loop_time = time.monotonic

    async def stop() -> None:
        events.append(("stop", loop_time()))

    async def scenario() -> float:
        task = asyncio.create_task(
            lead_then_stop(me, lambda: events.append(("start", loop_time())), stop, lambda: None)
        )
        await asyncio.sleep(3 * timing.retry_period)
        store.broken = failure
        cut = loop_time()
        await asyncio.wait_for(task, timeout=timing.lease_duration)  # stopped before a takeover
        return cut

    cut = asyncio.run(scenario())
    assert [name for name, _ in events] == ["start", "stop"]
    # Not at the first failed renewal, but at the renew deadline counted from the last renewal
    # that got through, long before a follower could take the Lease.
    assert events[1][1] - cut >= timing.renew_deadline - timing.retry_period
    assert events[1][1] - store.renewed_at <= timing.renew_deadline + 0.1
