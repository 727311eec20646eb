"""How long kopf waits on the API server before it gives up on a request or a watch.

A watch that stays open and silent (a proxy or load balancer that keeps the TCP connection but
stopped forwarding, a half-dead node) delivers nothing and never ends by itself: the API
server's own `timeoutSeconds` can't reach us through it. kopf ends a watch that delivered no
event, not even a bookmark, for `inactivity_timeout` seconds and resumes it from the last
resource version it saw, on a new connection, so nothing that happened meanwhile is missed (410
Gone: it lists again). The API server sends a bookmark about every minute on a healthy idle
watch, so the default (70 s, kopf's) rarely cuts a healthy one; a cut costs one reconnection.

`DPIO_WATCH_INACTIVITY_SECONDS` sets it (the fault suite uses a few seconds to stay fast).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import kopf

INACTIVITY_ENV = "DPIO_WATCH_INACTIVITY_SECONDS"
DEFAULT_INACTIVITY_SECONDS = 70.0
#: The API server ends each watch after this; a new one resumes from the last resource version.
SERVER_TIMEOUT_SECONDS = 300
#: kopf's own requests (listing, Events) on a connection that went silent give up after this.
REQUEST_TIMEOUT_SECONDS = 60.0
CONNECT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class WatchTimeouts:
    inactivity: float = DEFAULT_INACTIVITY_SECONDS

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> WatchTimeouts:
        raw = (os.environ if env is None else env).get(INACTIVITY_ENV, "").strip()
        if not raw:
            return cls()
        try:
            seconds = float(raw)
        except ValueError as err:
            raise ValueError(f"{INACTIVITY_ENV} must be seconds, not {raw!r}") from err
        if not seconds > 0:
            raise ValueError(f"{INACTIVITY_ENV} must be more than 0 seconds, not {raw!r}")
        return cls(seconds)

    def apply(self, settings: kopf.OperatorSettings) -> None:
        settings.watching.server_timeout = SERVER_TIMEOUT_SECONDS
        settings.watching.inactivity_timeout = self.inactivity
        settings.watching.connect_timeout = CONNECT_TIMEOUT_SECONDS
        settings.networking.connect_timeout = CONNECT_TIMEOUT_SECONDS
        settings.networking.request_timeout = REQUEST_TIMEOUT_SECONDS
