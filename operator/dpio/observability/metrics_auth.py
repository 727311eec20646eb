"""Who may scrape /metrics: Kubernetes authentication and authorization of each request, as
controller-runtime's `filters.WithAuthenticationAndAuthorization` does it.

- The request's bearer token is checked by the API server (a TokenReview): none, or one it does
  not accept, is 401. A review that could not be made (the API server unreachable) is 500.
- The user it names must be allowed the request's verb on its path as a non-resource URL (a
  SubjectAccessReview; `GET /metrics` asks for `get` on `/metrics`, what the chart's
  `<fullname>-metrics-reader` ClusterRole grants): refused is 403.
- An allowed (token, verb, path) is remembered for `ttl` seconds (60), keyed by the token's
  SHA-256, never the token, in a bounded cache: a scraper every 15 s costs one TokenReview and
  one SubjectAccessReview a minute. Refusals are not remembered, so a new RoleBinding counts at
  the next scrape; a revoked one may still scrape for up to `ttl`.

The reviews themselves are a `Reviewer` (dpio.kube.reviews.KubeReviewer in the operator): this
module is a leaf (import-linter) and knows nothing of the Kubernetes client.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Protocol
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

_log = logging.getLogger(__name__)

#: How long an allowed token is remembered (controller-runtime's authentication cache TTL).
DEFAULT_TTL = 60.0
#: Distinct allowed (token, verb, path) remembered at most; the oldest goes first.
DEFAULT_SIZE = 256


@dataclass(frozen=True)
class User:
    """Who the API server says a token belongs to (a TokenReview's `status.user`)."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class ReviewError(RuntimeError):
    """A review could not be made (the API server did not answer, or refused us the review)."""


class Reviewer(Protocol):
    def authenticate(self, token: str) -> User | None:
        """The token's user, or None when the API server does not accept the token."""
        ...

    def authorize(self, user: User, verb: str, path: str) -> bool:
        """Whether ``user`` may ``verb`` the non-resource URL ``path``."""
        ...


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive, as the
    API server reads it), or None for no header, another scheme, or a malformed one."""
    parts = (authorization or "").split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    return parts[1]


def token_expiry(token: str) -> float | None:
    """The ``exp`` claim (seconds since the epoch) of a JWT, e.g. a ServiceAccount token; None
    for a token that is not one. Read without checking the signature: only ever used to forget
    a token the API server has just accepted sooner, never to accept one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):  # json's and base64's errors; UnicodeError is a ValueError
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp)


class DecisionCache:
    """Allowed (token, verb, path), each for `ttl` seconds or until its token expires if that is
    sooner; at most `size` of them. Thread-safe (the metrics server answers on many threads)."""

    def __init__(
        self,
        ttl: float = DEFAULT_TTL,
        size: int = DEFAULT_SIZE,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl < 0 or size < 0:
            raise ValueError("ttl and size must not be negative")
        self.ttl, self.size = ttl, size
        self._clock, self._wall_clock = clock, wall_clock
        self._until: OrderedDict[tuple[bytes, str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(token: str, verb: str, path: str) -> tuple[bytes, str, str]:
        return hashlib.sha256(token.encode()).digest(), verb, path

    def allowed(self, token: str, verb: str, path: str) -> bool:
        key = self._key(token, verb, path)
        with self._lock:
            until = self._until.get(key)
            if until is None:
                return False
            if self._clock() < until:
                return True
            del self._until[key]
            return False

    def remember(self, token: str, verb: str, path: str) -> None:
        ttl = self.ttl
        expiry = token_expiry(token)
        if expiry is not None:
            ttl = min(ttl, expiry - self._wall_clock())
        if ttl <= 0 or self.size == 0:
            return
        key = self._key(token, verb, path)
        with self._lock:
            self._until.pop(key, None)
            self._until[key] = self._clock() + ttl  # the newest last, so the oldest goes first
            while len(self._until) > self.size:
                self._until.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._until)


@dataclass(frozen=True)
class Verdict:
    """What to answer: `status` 200 lets the request through, otherwise `message` is the body."""

    status: int
    message: str = ""


class AuthFilter:
    """Authenticate, then authorize, each request; see the module's documentation."""

    def __init__(self, reviewer: Reviewer, cache: DecisionCache | None = None) -> None:
        self.reviewer = reviewer
        self.cache = DecisionCache() if cache is None else cache

    def check(self, authorization: str | None, verb: str, path: str) -> Verdict:
        token = bearer_token(authorization)
        if token is None:
            return Verdict(HTTPStatus.UNAUTHORIZED, "Unauthorized")
        if self.cache.allowed(token, verb, path):
            return Verdict(HTTPStatus.OK)
        try:
            user = self.reviewer.authenticate(token)
        except ReviewError as err:
            _log.error("Could not authenticate a metrics request", extra={"error": str(err)})
            return Verdict(HTTPStatus.INTERNAL_SERVER_ERROR, "Authentication failed")
        if user is None:
            _log.debug("Refused a metrics request: token not accepted", extra={"path": path})
            return Verdict(HTTPStatus.UNAUTHORIZED, "Unauthorized")
        try:
            allowed = self.reviewer.authorize(user, verb, path)
        except ReviewError as err:
            _log.error("Could not authorize a metrics request",
                       extra={"user": user.name, "error": str(err)})  # fmt: skip
            return Verdict(
                HTTPStatus.INTERNAL_SERVER_ERROR, f"Authorization for user {user.name} failed"
            )
        if not allowed:
            _log.debug("Refused a metrics request: not allowed",
                       extra={"user": user.name, "verb": verb, "path": path})  # fmt: skip
            return Verdict(HTTPStatus.FORBIDDEN, f"Authorization denied for user {user.name}")
        self.cache.remember(token, verb, path)
        return Verdict(HTTPStatus.OK)

    def wrap(self, app: WSGIApplication) -> WSGIApplication:
        """``app`` behind this filter: the request's lower-cased method is the verb and its path
        the non-resource URL (controller-runtime's attributes), so GET /metrics asks for `get`
        on `/metrics`."""

        def protected(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            verb = str(environ.get("REQUEST_METHOD", "GET")).lower()
            path = str(environ.get("PATH_INFO") or "/")
            verdict = self.check(environ.get("HTTP_AUTHORIZATION"), verb, path)
            if verdict.status == HTTPStatus.OK:
                return app(environ, start_response)
            body = f"{verdict.message}\n".encode()
            headers = [("Content-Type", "text/plain; charset=utf-8"),
                       ("Content-Length", str(len(body)))]  # fmt: skip
            if verdict.status == HTTPStatus.UNAUTHORIZED:
                headers.append(("WWW-Authenticate", 'Bearer realm="dpio-operator metrics"'))
            status = HTTPStatus(verdict.status)
            start_response(f"{status.value} {status.phrase}", headers)
            return [body]

        return protected
