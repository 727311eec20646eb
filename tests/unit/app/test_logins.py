"""How the vCenter Secret and the login turn into PortErrors: which ones stall, which retry, and
that a refused password is not tried again (vCenter SSO would lock the account)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from dpio.app.logins import REFUSED_LOGIN_RETRY_SECONDS, Logins
from dpio.kube.client import KubeError, NotFoundError
from dpio.reconcile.ports import PortError
from dpio.vsphere.errors import InvalidCredentials, TLSVerificationFailed, VCenterUnreachable

GOOD = {"server": "vc.lab", "username": "admin", "password": "s3cret-Pw!", "insecure": "true"}


@dataclass
class FakeKube:
    data: dict[str, str | bytes] | None = None
    error: KubeError | None = None

    async def read_secret(self, namespace: str, name: str) -> dict[str, str | bytes]:
        if self.error is not None:
            raise self.error
        assert self.data is not None
        return self.data


@dataclass
class FakeClient:
    error: Exception | None
    server: str = "vc.lab:443"

    async def run(self, fn: Any) -> None:
        if self.error is not None:
            raise self.error


@dataclass
class FakeSessions:
    error: Exception | None = None
    logins: list[str] = field(default_factory=list)

    async def get_async(self, credentials: Any) -> FakeClient:
        self.logins.append(credentials.password)
        return FakeClient(self.error)


def logins(kube: FakeKube, sessions: FakeSessions | None = None, **kw: Any) -> Logins:
    return Logins(kube, sessions or FakeSessions(), "dpio-system", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kube", "reason", "retryable", "words"),
    [
        pytest.param(FakeKube(error=NotFoundError("404 Not Found", status=404)),
                     "SecretNotFound", False, "Secret dpio-system/vc not found", id="missing"),
        pytest.param(FakeKube(error=KubeError("403 Forbidden", status=403)),
                     "NotPermitted", False, "may not read Secret dpio-system/vc", id="forbidden"),
        pytest.param(FakeKube(error=KubeError("503 Unavailable", status=503)),
                     "VCenterUnreachable", True, "503", id="api-server-down"),
        pytest.param(FakeKube({**GOOD, "password": ""}),
                     "SecretInvalid", False, "'password' is missing", id="no-password"),
        pytest.param(FakeKube({"username": "admin", "password": "s3cret-Pw!", "insecure": "true"}),
                     "SecretInvalid", False, "'server' is missing", id="no-server"),
        pytest.param(FakeKube({k: v for k, v in GOOD.items() if k != "insecure"}),
                     "SecretInvalid", False, "caBundle", id="no-trust"),
        pytest.param(FakeKube({**GOOD, "username": b"adm\xffin"}),
                     "SecretInvalid", False, "'username' is not UTF-8", id="not-text"),
    ],
)  # fmt: skip
def test_secret_problems(kube: FakeKube, reason: str, retryable: bool, words: str) -> None:
    with pytest.raises(PortError) as caught:
        asyncio.run(logins(kube).credentials("vc", "Secret dpio-system/vc"))

    assert (caught.value.reason, caught.value.retryable) == (reason, retryable)
    assert words in caught.value.message
    assert "s3cret-Pw!" not in caught.value.message


@pytest.mark.parametrize(
    ("error", "reason", "retryable"),
    [
        (InvalidCredentials("Cannot complete login"), "InvalidCredentials", False),
        (TLSVerificationFailed("certificate verify failed"), "TLSVerificationFailed", False),
        (VCenterUnreachable("connection refused"), "VCenterUnreachable", True),
    ],
)
def test_login_problems(error: Exception, reason: str, retryable: bool) -> None:
    hub = logins(FakeKube(GOOD), FakeSessions(error))
    credentials = asyncio.run(hub.credentials("vc", "Secret dpio-system/vc"))

    with pytest.raises(PortError) as caught:
        asyncio.run(hub.client_for("Secret dpio-system/vc", credentials))

    assert (caught.value.reason, caught.value.retryable) == (reason, retryable)
    if not retryable:
        assert "Secret dpio-system/vc" in caught.value.message


def test_a_refused_password_is_not_tried_again_until_the_secret_changes_or_time_passes() -> None:
    clock = [1000.0]
    sessions = FakeSessions(InvalidCredentials("Cannot complete login"))
    kube = FakeKube(GOOD)
    hub = logins(kube, sessions, monotonic=lambda: clock[0])

    def attempt() -> str:
        credentials = asyncio.run(hub.credentials("vc", "Secret dpio-system/vc"))
        with pytest.raises(PortError) as caught:
            asyncio.run(hub.client_for("Secret dpio-system/vc", credentials))
        return caught.value.reason

    assert [attempt() for _ in range(5)] == ["InvalidCredentials"] * 5
    assert sessions.logins == ["s3cret-Pw!"]  # one login attempt, four answers from memory

    kube.data = {**GOOD, "password": "new"}  # the Secret is fixed (still wrong here)
    attempt()
    assert sessions.logins == ["s3cret-Pw!", "new"]

    clock[0] += REFUSED_LOGIN_RETRY_SECONDS + 1  # or the password was fixed in vCenter
    kube.data = GOOD
    attempt()
    assert sessions.logins == ["s3cret-Pw!", "new", "s3cret-Pw!"]
