"""Prometheus metrics of the operator, on a registry of its own (no process/GC noise by default).

What it counts:

- events, counted as they happen: reconciles per kind (`Controller` records them) and vCenter
  SOAP calls per method (`counted` wraps the pyVmomi stub's `InvokeMethod`, through which every
  round trip goes, property reads included as `Fetch`);
- state, computed at scrape time from what the controllers already cache (`track`): objects by
  condition, devices per policy from `status.summary`, queue depth. Nothing is kept twice, and a
  deleted object leaves no stale series behind.
- whether this replica leads (`set_leader`, from leader election), so a dashboard can pick
  the one replica whose queues and vCenter calls are live;
- `serve` exposes them over HTTP on threads of their own, so a stuck event loop still answers
  scrapes; with `tls` over HTTPS (the certificate reloaded when its files change, `tls.py`) and
  with `auth` only to whom the API server says may `get` /metrics (`metrics_auth.py`).

This module is a leaf (import-linter): it reads the objects' wire form (camelCase dicts), not
the API models, and knows nothing of kopf, Kubernetes or pyVmomi.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dpio.observability.metrics_auth import AuthFilter
from dpio.observability.status_facts import StatusFacts, counted_labels
from dpio.observability.tls import CertFiles, ReloadingContext

_log = logging.getLogger(__name__)

T = TypeVar("T")

#: The operator's registry; `serve` exposes this one, tests read it with `get_sample_value`.
REGISTRY = CollectorRegistry()

# Reconciles take milliseconds when nothing changes and up to minutes when a task runs.
_RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# One SOAP round trip; WaitForUpdatesEx long-polls, so the top buckets are for it.
_CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

RECONCILE_TOTAL = Counter(
    "dpio_reconcile_total", "Reconciles run, by kind", ["kind"], registry=REGISTRY
)
RECONCILE_ERRORS = Counter(
    "dpio_reconcile_errors_total",
    "Reconciles that failed and will be retried with backoff, by kind",
    ["kind"],
    registry=REGISTRY,
)
RECONCILE_DURATION = Histogram(
    "dpio_reconcile_duration_seconds",
    "Time one reconcile took, by kind",
    ["kind"],
    buckets=_RECONCILE_BUCKETS,
    registry=REGISTRY,
)
VCENTER_CALLS = Counter(
    "dpio_vcenter_calls_total",
    "SOAP calls sent to vCenter, by server and method (pyVmomi property reads are Fetch)",
    ["vcenter", "method"],
    registry=REGISTRY,
)
VCENTER_CALL_ERRORS = Counter(
    "dpio_vcenter_call_errors_total",
    "SOAP calls that raised (a vSphere fault or a connection error), by server and method",
    ["vcenter", "method"],
    registry=REGISTRY,
)
VCENTER_CALL_DURATION = Histogram(
    "dpio_vcenter_call_duration_seconds",
    "Round-trip time of one SOAP call, by server and method",
    ["vcenter", "method"],
    buckets=_CALL_BUCKETS,
    registry=REGISTRY,
)

LEADER = Gauge(
    "dpio_leader",
    "1 when this replica reconciles (it holds the Lease, or runs without leader election), "
    "0 while it follows",
    registry=REGISTRY,
)


def set_leader(leading: bool) -> None:
    """This replica started (True) or stopped (False) reconciling; with replicas on a Lease,
    `sum(dpio_leader)` is 1 in a healthy deployment (0: nobody leads, 2: a split brain)."""
    LEADER.set(1 if leading else 0)


def record_reconcile(kind: str, seconds: float, *, failed: bool) -> None:
    """One reconcile of `kind` finished (`failed`: it will be retried with backoff)."""
    RECONCILE_TOTAL.labels(kind).inc()
    RECONCILE_DURATION.labels(kind).observe(seconds)
    if failed:
        RECONCILE_ERRORS.labels(kind).inc()


def counted(invoke: Callable[..., T], vcenter: str) -> Callable[..., T]:
    """Wrap a pyVmomi stub's `InvokeMethod(mo, info, args, ...)` to count every SOAP call
    to `vcenter` (host:port, as the session names it).

    `info.wsdlName` is the method name on the wire (`RetrievePropertiesEx`,
    `UpdatePassthruConfig`, `Fetch` for a single property read), so the counts match the
    simulator's per-method counters.
    """

    def invoke_counted(mo: Any, info: Any, args: Any, *rest: Any, **kw: Any) -> T:
        method = str(getattr(info, "wsdlName", None) or "unknown")
        start = time.monotonic()
        try:
            return invoke(mo, info, args, *rest, **kw)
        except BaseException:
            VCENTER_CALL_ERRORS.labels(vcenter, method).inc()
            raise
        finally:
            VCENTER_CALLS.labels(vcenter, method).inc()
            VCENTER_CALL_DURATION.labels(vcenter, method).observe(time.monotonic() - start)

    invoke_counted.dpio_counted = True  # type: ignore[attr-defined]
    return invoke_counted


def is_counted(invoke: Callable[..., Any]) -> bool:
    return bool(getattr(invoke, "dpio_counted", False))


@dataclass(frozen=True)
class Source:
    """What one controller exposes at scrape time: its cached objects and its queue depth."""

    objects: Callable[[], Iterable[Mapping[str, Any]]]
    depth: Callable[[], int]


class _StateCollector(Collector):
    """Gauges computed from the tracked controllers' caches when Prometheus scrapes."""

    def __init__(self) -> None:
        self._sources: dict[str, Source] = {}
        self._lock = threading.Lock()
        #: Per kind, what the last scrape took of each status as kept (see `StatusFacts`).
        self._facts: dict[str, StatusFacts] = {}

    def track(self, kind: str, source: Source) -> None:
        with self._lock:
            self._sources[kind] = source  # the newest controller of a kind replaces the old

    def untrack(self, kind: str, source: Source | None = None) -> None:
        with self._lock:
            if source is None or self._sources.get(kind) is source:
                self._sources.pop(kind, None)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            sources = dict(self._sources)
        objects = GaugeMetricFamily("dpio_objects", "Objects seen by the operator", labels=["kind"])
        conditions = GaugeMetricFamily(
            "dpio_object_conditions",
            "Objects by condition type, status and reason (Ready=False by reason says why)",
            labels=["kind", "type", "status", "reason"],
        )
        depth = GaugeMetricFamily(
            "dpio_queue_depth", "Keys waiting for or in a reconcile", labels=["kind"]
        )
        devices = GaugeMetricFamily(
            "dpio_policy_devices",
            "Devices of a HostPassthroughPolicy from status.summary (matched, active, "
            "pendingReboot)",
            labels=["policy", "state"],
        )
        hosts = GaugeMetricFamily(
            "dpio_policy_hosts", "Hosts a HostPassthroughPolicy matches", labels=["policy"]
        )
        for kind, source in sorted(sources.items()):
            try:
                bodies = list(source.objects())
            except RuntimeError:  # the cache changed under us: this kind waits for the next scrape
                _log.debug("Skipped a changing cache in a scrape", extra={"kind": kind})
                continue
            objects.add_metric([kind], len(bodies))
            depth.add_metric([kind], source.depth())
            facts = self._facts.get(kind) or StatusFacts()
            self._facts[kind] = facts = facts.renewed()
            found = [(body, facts.of(body)) for body in bodies]
            for labels, count in sorted(counted_labels(f[0] for _, f in found).items()):
                conditions.add_metric([kind, *labels], count)
            for body, (_, summary) in found:
                if summary is not None:
                    _add_summary(body, summary, devices, hosts)
        yield from (objects, conditions, depth, devices, hosts)


def _add_summary(
    body: Mapping[str, Any],
    summary: tuple[float, float, float, float],
    devices: GaugeMetricFamily,
    hosts: GaugeMetricFamily,
) -> None:
    name = str(body.get("metadata", {}).get("name", ""))
    hosts.add_metric([name], summary[0])
    for state, value in zip(("matched", "active", "pendingReboot"), summary[1:], strict=True):
        devices.add_metric([name, state], value)


_STATE = _StateCollector()
REGISTRY.register(_STATE)


def track(kind: str, source: Source) -> None:
    """Expose `source`'s objects and queue as the state of `kind` (one source per kind)."""
    _STATE.track(kind, source)


def untrack(kind: str, source: Source | None = None) -> None:
    _STATE.untrack(kind, source)


#: A connection that sends nothing for this long is closed (a TLS handshake included).
CONNECTION_TIMEOUT = 30.0


class _Handler(WSGIRequestHandler):
    timeout = CONNECTION_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no line per scrape


class _MetricsServer(ThreadingMixIn, WSGIServer):
    """A thread per connection; with `tls`, each accepted connection is wrapped in the context
    of the certificate as it is now, and its handshake runs on that connection's thread (a slow
    or silent client never holds up the others)."""

    daemon_threads = True
    tls: ReloadingContext | None = None

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = self.socket.accept()
        conn.settimeout(CONNECTION_TIMEOUT)
        if self.tls is None:
            return conn, address
        context = self.tls.current()
        return context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False), address

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            try:
                request.do_handshake()
            except OSError as err:  # ssl.SSLError is one: a port scan, plain HTTP, a bad client
                _log.debug("TLS handshake on the metrics port failed", extra={"error": str(err)})
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.debug("A metrics connection failed", exc_info=True)


def _server(
    addr: str, port: int, tls: ReloadingContext | None, auth: AuthFilter | None
) -> _MetricsServer:
    family, _, _, _, sockaddr = socket.getaddrinfo(
        addr, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]

    class Bound(_MetricsServer):
        address_family = family

    httpd = Bound((str(sockaddr[0]), port), _Handler)
    httpd.tls = tls
    app = make_wsgi_app(REGISTRY)
    httpd.set_app(app if auth is None else auth.wrap(app))
    return httpd


@dataclass
class Server:
    """The running /metrics endpoint; `stop()` on shutdown."""

    port: int
    _stop: Callable[[], None]

    def stop(self) -> None:
        self._stop()


def serve(
    port: int,
    addr: str = "0.0.0.0",
    *,
    tls: CertFiles | None = None,
    auth: AuthFilter | None = None,
) -> Server | None:
    """Start /metrics on `port` (0: disabled), over HTTPS with `tls`, only for requests `auth`
    lets through with `auth`. A port in use or a certificate that doesn't load is logged, not
    fatal: metrics must never take the operator down."""
    if port == 0:
        return None
    try:
        context = None if tls is None else ReloadingContext(tls)
        httpd = _server(addr, port, context, auth)
    except OSError as err:  # ssl.SSLError (a bad certificate or key) is one
        _log.error("Could not serve metrics", extra={"port": port, "error": str(err)})
        return None
    thread = threading.Thread(target=httpd.serve_forever, name="metrics", daemon=True)
    thread.start()

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)

    _log.info(
        "Serving metrics",
        extra={"port": httpd.server_port, "address": addr, "https": tls is not None,
               "authorized": auth is not None},
    )  # fmt: skip
    return Server(httpd.server_port, stop)
