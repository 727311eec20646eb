"""The pure parts of the metrics endpoint's authentication: the Authorization header, a token's
expiry, the cache of allowed tokens (on a clock of the test's own: nothing here waits), and the
answers the filter gives before any review is needed. Against the real API server (TokenReview,
SubjectAccessReview, RBAC): tests/integration/kube/test_metrics_auth.py."""

from __future__ import annotations

import base64
import json
import wsgiref.util
from collections.abc import Iterable
from typing import Any

import pytest

from dpio.observability.metrics_auth import (
    AuthFilter,
    DecisionCache,
    User,
    bearer_token,
    token_expiry,
)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc", "abc"),  # the scheme is case-insensitive (RFC 7235), as for the API server
        ("BEARER abc", "abc"),
        ("  Bearer   abc  ", "abc"),
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer abc def", None),  # a token has no spaces: not ours to guess which part it is
        ("Token abc", None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def _jwt(claims: Any) -> str:
    def part(value: Any) -> str:
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part(claims)}.signature"


@pytest.mark.parametrize(
    ("token", "expiry"),
    [
        (
            _jwt({"exp": 1_900_000_000, "sub": "system:serviceaccount:monitoring:prometheus"}),
            1_900_000_000.0,
        ),
        (_jwt({"exp": 1_900_000_000.5}), 1_900_000_000.5),
        (_jwt({"sub": "no expiry"}), None),
        (_jwt({"exp": "tomorrow"}), None),
        (_jwt({"exp": True}), None),
        (_jwt(["not", "an", "object"]), None),
        (_jwt(b"\xff\xfe not json"), None),
        ("a.!!!.c", None),
        ("opaque-static-token", None),
        ("", None),
    ],
)
def test_token_expiry(token: str, expiry: float | None) -> None:
    assert token_expiry(token) == expiry


class Clocks:
    """A monotonic and a wall clock that move only when the test says so."""

    def __init__(self) -> None:
        self.monotonic, self.wall = 1000.0, 1_800_000_000.0

    def advance(self, seconds: float) -> None:
        self.monotonic += seconds
        self.wall += seconds

    def cache(self, ttl: float = 60, size: int = 8) -> DecisionCache:
        return DecisionCache(ttl, size, clock=lambda: self.monotonic, wall_clock=lambda: self.wall)


def test_an_allowed_token_is_remembered_for_the_ttl_then_forgotten() -> None:
    clocks = Clocks()
    cache = clocks.cache(ttl=60)
    assert not cache.allowed("t1", "get", "/metrics")
    cache.remember("t1", "get", "/metrics")
    assert cache.allowed("t1", "get", "/metrics")
    clocks.advance(59.9)
    assert cache.allowed("t1", "get", "/metrics")
    clocks.advance(0.1)
    assert not cache.allowed("t1", "get", "/metrics")
    assert len(cache) == 0  # an expired entry is dropped when met


def test_the_decision_is_for_that_verb_and_path_only() -> None:
    cache = Clocks().cache()
    cache.remember("t1", "get", "/metrics")
    assert not cache.allowed("t1", "post", "/metrics")
    assert not cache.allowed("t1", "get", "/debug")
    assert not cache.allowed("t2", "get", "/metrics")


def test_a_token_that_expires_sooner_is_remembered_only_until_it_expires() -> None:
    clocks = Clocks()
    cache = clocks.cache(ttl=60)
    soon = _jwt({"exp": clocks.wall + 10})
    cache.remember(soon, "get", "/metrics")
    clocks.advance(9.9)
    assert cache.allowed(soon, "get", "/metrics")
    clocks.advance(0.1)
    assert not cache.allowed(soon, "get", "/metrics")
    # Already expired (the API server accepted it just in time): not remembered at all.
    cache.remember(_jwt({"exp": clocks.wall - 1}), "get", "/metrics")
    assert len(cache) == 0
    # Expiring later than the TTL changes nothing: the TTL still bounds it.
    late = _jwt({"exp": clocks.wall + 3600})
    cache.remember(late, "get", "/metrics")
    clocks.advance(60)
    assert not cache.allowed(late, "get", "/metrics")


def test_the_cache_is_bounded_and_forgets_the_oldest_first() -> None:
    cache = Clocks().cache(size=3)
    for token in ("t1", "t2", "t3"):
        cache.remember(token, "get", "/metrics")
    cache.remember("t1", "get", "/metrics")  # renewed: now the newest
    cache.remember("t4", "get", "/metrics")
    assert len(cache) == 3
    assert not cache.allowed("t2", "get", "/metrics")
    assert all(cache.allowed(t, "get", "/metrics") for t in ("t1", "t3", "t4"))


def test_the_cache_keeps_no_token() -> None:
    cache = Clocks().cache()
    cache.remember("secret-token-value", "get", "/metrics")
    assert "secret-token-value" not in repr(vars(cache))


@pytest.mark.parametrize(("ttl", "size"), [(0, 8), (60, 0)])
def test_a_zero_ttl_or_size_remembers_nothing(ttl: float, size: int) -> None:
    cache = Clocks().cache(ttl=ttl, size=size)
    cache.remember("t1", "get", "/metrics")
    assert not cache.allowed("t1", "get", "/metrics")


class NoReviews:
    """A reviewer the filter must not reach: what it answers needs no API server."""

    def authenticate(self, token: str) -> User | None:
        raise AssertionError("no TokenReview expected")

    def authorize(self, user: User, verb: str, path: str) -> bool:
        raise AssertionError("no SubjectAccessReview expected")


def _request(app: Any, authorization: str | None = None) -> tuple[str, dict[str, str], bytes]:
    environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics"}
    wsgiref.util.setup_testing_defaults(environ)
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    started: list[Any] = []
    body: Iterable[bytes] = app(environ, lambda status, headers: started.append((status, headers)))
    status, headers = started[0]
    return status, dict(headers), b"".join(body)


def _metrics_app(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"dpio_leader 1.0\n"]


@pytest.mark.parametrize("header", [None, "", "Basic dXNlcjpwYXNz", "Bearer"])
def test_no_bearer_token_is_401_without_asking_the_api_server(header: str | None) -> None:
    app = AuthFilter(NoReviews()).wrap(_metrics_app)
    status, headers, body = _request(app, header)
    assert status == "401 Unauthorized"
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert body == b"Unauthorized\n"


def test_a_remembered_token_is_let_through_without_asking_the_api_server() -> None:
    auth = AuthFilter(NoReviews(), Clocks().cache())
    auth.cache.remember("t1", "get", "/metrics")
    status, _, body = _request(auth.wrap(_metrics_app), "Bearer t1")
    assert status == "200 OK"
    assert body == b"dpio_leader 1.0\n"
