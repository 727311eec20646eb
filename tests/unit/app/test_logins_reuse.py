"""A Secret whose login worked is reused for a few seconds instead of a GET per reconcile; one
that failed is read again every time, so a fixed Secret is seen at the next look."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from dpio.app.logins import SECRET_REUSE_SECONDS, Logins
from dpio.kube.client import NotFoundError
from dpio.reconcile.ports import PortError
from dpio.vsphere.errors import InvalidCredentials

GOOD = {"server": "vc.lab", "username": "admin", "password": "s3cret-Pw!", "insecure": "true"}


@dataclass
class CountingKube:
    data: dict[str, str] | None = None
    reads: int = 0

    async def read_secret(self, namespace: str, name: str) -> dict[str, str]:
        self.reads += 1
        if self.data is None:
            raise NotFoundError("404 Not Found", status=404)
        return self.data


@dataclass
class FakeClient:
    error: Exception | None

    async def run(self, fn: Any) -> None:
        if self.error is not None:
            raise self.error


@dataclass
class FakeSessions:
    refuse: set[str] = field(default_factory=set)  # passwords vCenter refuses

    async def get_async(self, credentials: Any) -> FakeClient:
        refused = credentials.password in self.refuse
        return FakeClient(InvalidCredentials("Cannot complete login") if refused else None)


def attempt(hub: Logins) -> str:
    try:
        asyncio.run(hub.client("vc"))
    except PortError as err:
        return err.reason
    return "ok"


@pytest.mark.parametrize(
    ("data", "refuse", "first", "reads_after_three"),
    [
        pytest.param(GOOD, set(), "ok", 1, id="working-secret-is-reused"),
        pytest.param(None, set(), "SecretNotFound", 3, id="missing-secret-is-read-each-time"),
        pytest.param(GOOD, {"s3cret-Pw!"}, "InvalidCredentials", 3,
                     id="refused-secret-is-read-each-time"),
    ],
)  # fmt: skip
def test_which_secrets_are_reused(
    data: dict[str, str] | None, refuse: set[str], first: str, reads_after_three: int
) -> None:
    kube = CountingKube(data)
    clock = [100.0]
    hub = Logins(kube, FakeSessions(refuse), "dpio-system", monotonic=lambda: clock[0])  # type: ignore[arg-type]

    assert [attempt(hub) for _ in range(3)] == [first] * 3
    assert kube.reads == reads_after_three


def test_a_changed_secret_is_seen_once_the_reuse_window_has_passed() -> None:
    kube = CountingKube(GOOD)
    clock = [100.0]
    sessions = FakeSessions()
    hub = Logins(kube, sessions, "dpio-system", monotonic=lambda: clock[0])  # type: ignore[arg-type]
    assert attempt(hub) == "ok"

    kube.data = {**GOOD, "password": "rotated"}
    sessions.refuse.add("rotated")
    clock[0] += SECRET_REUSE_SECONDS - 1
    assert attempt(hub) == "ok"  # still the credentials read a moment ago
    assert kube.reads == 1

    clock[0] += 2
    assert attempt(hub) == "InvalidCredentials"
    assert kube.reads == 2
