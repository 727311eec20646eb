"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's `leaderelection` does it.

Several operator replicas watch the same objects (every cache stays warm), but only the holder
of the Lease runs reconciles, so only it writes to vCenter or to status. Why a Lease and not
kopf's peering: kopf pauses only its own handlers, not our work queue nor the vCenter watcher
threads, and exposes its paused state to no handler (it is an internal toggle of `kopf.run`).

The rules are client-go's (k8s.io/client-go/tools/leaderelection, `tryAcquireOrRenew`):
- a Lease held by someone else is respected until `lease_duration` has passed on OUR clock since
  we last saw its record change (no comparison of two machines' clocks, so no clock skew issue);
- every write carries the resourceVersion it read: of two replicas taking over at once, one gets
  409 Conflict and stays a follower;
- a leader that could not renew for `renew_deadline` (< lease_duration) stops leading before any
  follower may take over, so two leaders never overlap while both clocks run at the same rate.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from dpio.kube.rest import ApiServer, KubeError, path
from dpio.kube.times import micro_time, parse_time

_log = logging.getLogger(__name__)


class LeaseConflictError(RuntimeError):
    """Someone else created or changed the Lease first (409 Conflict / 409 AlreadyExists)."""


@dataclass(frozen=True)
class LeaseRecord:
    """The spec of a Lease, and the resourceVersion it was read at."""

    holder: str
    duration: int
    acquire_time: datetime.datetime | None = None
    renew_time: datetime.datetime | None = None
    transitions: int = 0
    #: Any write changes it, so a new version is a sign of life even with an unchanged spec.
    resource_version: str = ""


class LeaseStore(Protocol):
    async def get(self) -> LeaseRecord | None: ...
    async def create(self, record: LeaseRecord) -> LeaseRecord: ...
    async def replace(self, record: LeaseRecord) -> LeaseRecord: ...
    async def close(self) -> None: ...


@dataclass(frozen=True)
class Timing:
    """client-go's defaults for controllers (kube-controller-manager: 15 s / 10 s / 2 s)."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    @classmethod
    def for_duration(cls, seconds: float) -> Timing:
        """Renew deadline 2/3 and retry period 2/15 of the lease, as in client-go's defaults."""
        if seconds < 3:
            raise ValueError(f"the lease duration must be at least 3 seconds, not {seconds}")
        return cls(seconds, seconds * 2 / 3, max(0.5, seconds * 2 / 15))

    @property
    def takeover(self) -> float:
        """Worst case from the leader's death until a follower leads (one retry to notice the
        expiry, one more if its first look came just before the leader's last renewal)."""
        return self.lease_duration + 2 * self.retry_period


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class LeaderElector:
    """One replica's view of the Lease; `leading` is the gate for every write."""

    def __init__(
        self,
        store: LeaseStore,
        identity: str,
        timing: Timing | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime.datetime] = _utcnow,
    ) -> None:
        self.store = store
        self.identity = identity
        self.timing = timing or Timing()
        self._clock = clock
        self._now = now
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        self._renewed_at: float | None = None  # our clock, last successful acquire or renew
        self.leading = False
        self._failing = False

    async def try_acquire_or_renew(self, timeout: float | None = None) -> bool:
        """One round, given up after `timeout` (default: half the renew deadline); True when we
        hold the Lease afterwards. Never raises for API errors."""
        limit = self.timing.renew_deadline / 2 if timeout is None else max(0.0, timeout)
        try:
            held = await asyncio.wait_for(self._round(), timeout=limit)
        except LeaseConflictError:
            return False  # another replica was faster: the usual way to lose a race
        except Exception as err:  # any failure means "not held"
            # Once per streak, so that e.g. a missing RBAC rule is seen without flooding.
            level = logging.DEBUG if self._failing else logging.WARNING
            _log.log(level, "Leader Lease unreachable", extra={"error": repr(err)})
            self._failing = True
            return False
        self._failing = False
        if held:
            self._renewed_at = self._clock()
        return held

    async def _round(self) -> bool:
        current = await self.store.get()
        if current is None:
            self._observe(await self.store.create(self._claim(None)))
            return True
        if current != self._observed:
            self._observe(current)
        held_by_other = current.holder not in ("", self.identity)
        if held_by_other and self._observed_at + current.duration > self._clock():
            return False
        self._observe(await self.store.replace(self._claim(current)))
        return True

    def _observe(self, record: LeaseRecord) -> None:
        self._observed = record
        self._observed_at = self._clock()

    def _claim(self, current: LeaseRecord | None) -> LeaseRecord:
        now = self._now()
        ours = current is not None and current.holder == self.identity
        return LeaseRecord(
            holder=self.identity,
            duration=max(1, round(self.timing.lease_duration)),
            acquire_time=current.acquire_time if ours and current else now,
            renew_time=now,
            transitions=(current.transitions if current else 0) + (0 if ours else 1),
            resource_version=current.resource_version if current else "",
        )

    def renew_expired(self) -> bool:
        """A leader that has not renewed for `renew_deadline` must stop leading."""
        last = self._renewed_at
        return last is None or self._clock() - last >= self.timing.renew_deadline

    async def release(self) -> None:
        """On a graceful stop: hand the Lease over at once (client-go's ReleaseOnCancel)."""
        if not self.leading or self._observed is None:
            return
        self.leading = False
        record = replace(self._observed, holder="", duration=1, renew_time=self._now())
        try:
            await asyncio.wait_for(self.store.replace(record), timeout=self.timing.retry_period)
        except Exception as err:  # best effort: the Lease expires anyway
            _log.warning("Could not release the leader Lease", extra={"error": str(err)})

    async def run(
        self,
        on_started_leading: Callable[[], Awaitable[None]],
        on_stopped_leading: Callable[[], Awaitable[None]],
    ) -> None:
        """Follow until we lead, then renew until we can't; calls each callback once."""
        while not await self.try_acquire_or_renew():
            await asyncio.sleep(self.timing.retry_period)
        self.leading = True
        _log.info("Leading: this replica reconciles", extra={"identity": self.identity})
        try:
            await on_started_leading()
            await self._renew_until_lost()
        except asyncio.CancelledError:  # our own shutdown: cleanup releases the Lease
            raise
        except Exception:  # a leader that can't tell whether it still leads must stop
            _log.exception("Leader election failed")
        self.leading = False
        _log.warning("Leadership lost: this replica stops reconciling", extra=self._extra())
        await on_stopped_leading()

    async def _renew_until_lost(self) -> None:
        """Renew every retry period; return once the Lease is someone else's or the renew
        deadline has passed. A hung request is cut at the deadline (client-go bounds the whole
        renewal by it too), so a leader never acts past it while a follower may take over."""
        while True:
            await asyncio.sleep(self.timing.retry_period)
            if self.renew_expired():
                return
            assert self._renewed_at is not None  # renew_expired() is True without one
            left = self.timing.renew_deadline - (self._clock() - self._renewed_at)
            if await self.try_acquire_or_renew(timeout=left):
                continue
            if self._observed is not None and self._observed.holder not in ("", self.identity):
                return  # someone else holds it now: stop at once
            if self.renew_expired():
                return

    def _extra(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "holder": self._observed.holder if self._observed else "",
        }


class KubeLeaseStore:
    """The Lease `name` in `namespace`, on the event loop."""

    def __init__(self, api: ApiServer, namespace: str, name: str, *, timeout: float = 5.0) -> None:
        self._api = api
        self.namespace = namespace
        self.name = name
        # Per request: no call outlives a renew deadline for long.
        self._timeout = (timeout, timeout)

    async def close(self) -> None:
        await self._api.close()

    def _path(self, *name: str) -> str:
        return path(
            "apis", "coordination.k8s.io", "v1", "namespaces", self.namespace, "leases", *name
        )

    async def get(self) -> LeaseRecord | None:
        try:
            lease = await self._api.request("GET", self._path(self.name), timeout=self._timeout)
        except KubeError as err:
            if err.status == 404:
                return None
            raise
        return _record(lease)

    async def create(self, record: LeaseRecord) -> LeaseRecord:
        return await self._write("POST", self._path(), record)

    async def replace(self, record: LeaseRecord) -> LeaseRecord:
        return await self._write("PUT", self._path(self.name), record)

    async def _write(self, method: str, where: str, record: LeaseRecord) -> LeaseRecord:
        try:
            answer = await self._api.request(
                method, where, self._body(record), timeout=self._timeout
            )
        except KubeError as err:
            if err.status == 409:
                raise LeaseConflictError(f"lease {self.namespace}/{self.name}: {err}") from err
            raise
        return _record(answer)

    def _body(self, record: LeaseRecord) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if record.resource_version:
            metadata["resourceVersion"] = record.resource_version
        spec = {
            "holderIdentity": record.holder,
            "leaseDurationSeconds": record.duration,
            "acquireTime": micro_time(record.acquire_time),
            "renewTime": micro_time(record.renew_time),
            "leaseTransitions": record.transitions,
        }
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": metadata, "spec": spec}  # fmt: skip


def _record(lease: Any) -> LeaseRecord:
    spec = lease.get("spec") or {}
    return LeaseRecord(
        holder=str(spec.get("holderIdentity") or ""),
        duration=int(spec.get("leaseDurationSeconds") or 0),
        acquire_time=parse_time(spec.get("acquireTime")),
        renew_time=parse_time(spec.get("renewTime")),
        transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=str((lease.get("metadata") or {}).get("resourceVersion") or ""),
    )
