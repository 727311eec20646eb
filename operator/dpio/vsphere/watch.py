"""Change notification from vCenter, instead of polling: drift shows within seconds
(docs/design.md, "vCenter access").

A dedicated PropertyCollector (`CreatePropertyCollector`) holds one filter over a ContainerView of
hosts and VMs, for exactly the properties the planners depend on. A thread long-polls it with
`WaitForUpdatesEx(version, maxWaitSeconds)` and hands "these objects changed" to a callback.

- Session expiry: log in again (once, shared with the client) and recreate collector and filter.
- Outage: capped exponential backoff; the collector is recreated if vCenter lost it.
- After a (re)creation vCenter sends every object once ("enter"): after the first start that
  initial set is swallowed (the caller reads the inventory itself) unless `deliver_initial`;
  after a recovery it is delivered, since anything may have changed while we were away.
- The same filter follows `TaskManager.recentTask`: task states go to the client's
  `TaskStates` (task_states.py), not to the callback, so a caller waiting for its task makes
  no call of its own.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyVmomi import VmomiSupport, vim

from dpio.vsphere import properties
from dpio.vsphere.connect import Connection
from dpio.vsphere.errors import (
    InvalidCredentials,
    NotAuthenticated,
    ObjectNotFound,
    TLSVerificationFailed,
    VSphereError,
    translated,
)
from dpio.vsphere.session import VCenterClient
from dpio.vsphere.task_states import TaskStates

logger = logging.getLogger(__name__)

WATCH_PATHS: Mapping[type, tuple[str, ...]] = {
    vim.HostSystem: (
        "name",
        "config.pciPassthruInfo",
        "summary.rebootRequired",
        "runtime.connectionState",
        "runtime.inMaintenanceMode",
    ),
    # config.changeVersion moves on every reconfigure (hot add, nested HV, reservation lock, FT
    # settings: the feature conflicts, docs/design.md, "VM side: feature conflicts");
    # rootSnapshot on snapshots.
    vim.VirtualMachine: (
        "name",
        "config.hardware.device",
        "config.changeVersion",
        "rootSnapshot",
        "runtime.powerState",
        "runtime.host",
        # A VM moved to another folder or pool may have left (or entered) a tenant's scope.
        "parent",
        "resourcePool",
    ),
}


#: What the watch reads of each recent task (`TaskManager.recentTask`): enough to end a wait.
TASK_PATHS = ("info.state", "info.error", "info.descriptionId")
_TASK = "Task"


@dataclass(frozen=True, slots=True)
class Change:
    """One object that changed: `kind` is the vSphere type, `operation` enter/modify/leave.

    `startup`: part of the first full state after `start()` (delivered only with
    `deliver_initial`), which reports what is there rather than a change; a recovery's full
    state is not marked, since anything may have changed while the watch was down.

    `values` (VMs only): per changed property, its operation and a fingerprint of its value, so
    that a recovery's full state can be compared with what was seen before
    (`dpio.app.vm_resync`) instead of taken as a change of every VM."""

    kind: str
    moref: str
    operation: str
    paths: frozenset[str]
    startup: bool = False
    values: tuple[tuple[str, str, str], ...] = ()  # (path, op, fingerprint), sorted by path


#: The kinds whose `Change.values` are filled in (a fingerprint walks the whole value).
FINGERPRINTED = frozenset({"VirtualMachine"})


_SCALARS = (str, int, float, bool, bytes, type(None))


def _plain(value: Any) -> Any:
    """`value` as nested tuples of scalars: a data object by its type and every property in
    declared order, a managed object reference by its type and id (pyVmomi's own objects
    compare by identity). Eight times faster than `repr`: 500 VMs' devices in ~0.25 s."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, VmomiSupport.ManagedObject):
        return ("@", properties.moref_kind(value), properties.moref_id(value))
    if isinstance(value, VmomiSupport.DataObject):
        props = value._GetPropertyList()  # type: ignore[no-untyped-call]
        return (type(value).__name__, *(_plain(getattr(value, p.name)) for p in props))
    if isinstance(value, list | tuple):
        return tuple(_plain(v) for v in value)
    return repr(value)


def fingerprint(value: Any) -> str:
    """Equal for equal values (within one process: it is a hash)."""
    return format(hash(_plain(value)), "x")


Callback = Callable[[Sequence[Change]], None]


def changes_of(update_set: Any, *, startup: bool = False) -> list[Change]:
    """`UpdateSet` -> one `Change` per object update (pure, no calls)."""
    result: list[Change] = []
    for filter_update in update_set.filterSet or ():
        for update in filter_update.objectSet or ():
            kind = properties.moref_kind(update.obj)
            if kind == _TASK:
                continue  # task_updates
            changed = update.changeSet or ()
            values = (
                tuple(sorted((str(c.name), str(c.op), fingerprint(c.val)) for c in changed))
                if kind in FINGERPRINTED
                else ()
            )
            result.append(
                Change(
                    kind=kind,
                    moref=properties.moref_id(update.obj),
                    operation=str(update.kind),
                    paths=frozenset(c.name for c in changed),
                    startup=startup,
                    values=values,
                )
            )
    return result


def task_updates(update_set: Any) -> list[tuple[str, dict[str, Any]]]:
    """The tasks in `update_set`: (moref, changed properties) per task entering or changing
    (pure, no calls); a task leaving vCenter's recent list is not a change of its state."""
    result: list[tuple[str, dict[str, Any]]] = []
    for filter_update in update_set.filterSet or ():
        for update in filter_update.objectSet or ():
            if properties.moref_kind(update.obj) != _TASK or str(update.kind) == "leave":
                continue
            props = {str(c.name): c.val for c in update.changeSet or () if str(c.op) != "remove"}
            result.append((properties.moref_id(update.obj), props))
    return result


def with_recent_tasks(spec: Any, task_manager: Any) -> Any:
    """`spec` also following `TaskManager.recentTask`, reading `TASK_PATHS` of each task."""
    to_tasks = properties.PC.TraversalSpec(
        name="recentTask", type=vim.TaskManager, path="recentTask", skip=False
    )
    spec.objectSet.append(
        properties.PC.ObjectSpec(obj=task_manager, skip=True, selectSet=[to_tasks])
    )
    spec.propSet.append(properties.PC.PropertySpec(type=vim.Task, pathSet=list(TASK_PATHS)))
    return spec


def merged_paths(*path_sets: Mapping[type, Sequence[str]]) -> dict[type, tuple[str, ...]]:
    """One watch over what several readers read: per kind, every path any of them names."""
    result: dict[type, tuple[str, ...]] = {}
    for paths in path_sets:
        for kind, names in paths.items():
            result[kind] = tuple(dict.fromkeys([*result.get(kind, ()), *names]))
    return result


#: How long the watch's socket waits for a `WaitForUpdatesEx` answer. vCenter answers within
#: `maxWaitSeconds` when nothing changed, but computing and sending a large update set can take
#: longer; giving up then makes it worse (a new collector, and vCenter sends everything again).
#: pyVmomi and govmomi put no timeout on the long poll at all; the other calls keep the
#: client's (60 s). Measured: the simulator needs minutes for 1,000 accumulated updates of 625
#: hosts (docs/benchmarks.md, finding 14).
LONG_POLL_TIMEOUT_SECONDS = 600.0


@dataclass(slots=True)
class _Collector:
    conn: Connection
    collector: Any
    waiter: Any  # the same collector on `poll_stub`, which has the long poll's timeout
    poll_stub: Any
    version: str = ""
    initial: bool = True  # the next update set is the full initial state
    created: float = 0.0  # time.monotonic() just before its filter was created


class Watcher:
    """Runs on its own daemon thread between `start()` and `stop()`."""

    def __init__(
        self,
        client: VCenterClient,
        callback: Callback,
        *,
        paths: Mapping[type, Sequence[str]] = WATCH_PATHS,
        max_wait_seconds: int = 10,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        deliver_initial: bool = False,
        follow_tasks: bool = True,
    ) -> None:
        self.client = client
        #: Where task states go (the client's, so its callers' waits find them); None: the
        #: filter does not follow tasks.
        self.tasks: TaskStates | None = client.tasks if follow_tasks else None
        self.callback = callback
        self.paths = paths
        self.max_wait_seconds = max_wait_seconds
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        #: Deliver the first initial set too: a change made between the caller's first read and
        #: the initial set's arrival (e.g. the caller's own write) is otherwise never reported.
        self.deliver_initial = deliver_initial
        self.ready = threading.Event()  # set once the first full state was received
        self.recreated = 0  # how many times the collector was (re)created
        #: time.monotonic() from which every change is reported: set once a collector's initial
        #: state is in, infinite while the watch is down (a cached read must not be trusted).
        self.since = math.inf
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._current: _Collector | None = None
        self._relogin = False
        self._stale: Connection | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"vsphere-watch-{self.client.credentials.host}", daemon=True
        )
        self._thread.start()

    @property
    def alive(self) -> bool:
        """The watch thread runs (it ends after `stop()` or when vCenter refuses the login)."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        current = self._current
        if current is not None:
            try:  # wake the long poll up now rather than after maxWaitSeconds
                current.collector.CancelWaitForUpdates()
            except Exception:  # the poll ends by itself within maxWaitSeconds anyway
                logger.debug("CancelWaitForUpdates failed", exc_info=True)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        delay = self.backoff_initial
        while not self._stop.is_set():
            try:
                self._poll_once()
                delay = self.backoff_initial
            except NotAuthenticated:
                # Log in again on the next turn, inside the handlers, so an outage during the
                # re-login is retried with backoff like any other.
                stale = self._replace(None)
                self._stale = stale.conn if stale else None
                self._relogin = True
            except ObjectNotFound:
                self._replace(None)  # vCenter lost our collector: build a new one
            except (InvalidCredentials, TLSVerificationFailed) as err:
                # A human must fix the Secret. Logging in again every backoff step would lock
                # the account (vCenter SSO lockout policy); the reconciler starts a new watcher
                # once a login works again.
                logger.warning(
                    "Stopped watching vCenter: login refused",
                    extra={"server": self.client.server, "error": str(err)},
                )
                break
            except VSphereError as err:
                if self._stop.is_set():
                    break
                logger.warning(
                    "Watching vCenter failed; retrying",
                    extra={"server": self.client.server, "error": str(err), "delay": delay},
                )
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff_max)
            except Exception:
                logger.exception("Watching vCenter failed", extra={"server": self.client.server})
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff_max)
        self.since = math.inf
        self._tasks_live(False)
        self._destroy()

    def _collector(self) -> _Collector:
        if self._relogin:
            conn = self.client.relogin(self._stale)
            self._relogin, self._stale = False, None
        else:
            conn = self.client.connection()
        if self._current is not None and self._current.conn is conn:
            return self._current
        created = time.monotonic()
        with translated():
            view = properties.container_view(conn.content, list(self.paths))
            collector = conn.content.propertyCollector.CreatePropertyCollector()
            spec = properties.view_filter(view, self.paths)
            if self.tasks is not None:
                spec = with_recent_tasks(spec, conn.content.taskManager)
            collector.CreateFilter(spec, partialUpdates=True)
        stub = self.client.long_poll_stub(conn, LONG_POLL_TIMEOUT_SECONDS)
        waiter = properties.PC(properties.moref_id(collector), stub)
        self.recreated += 1
        current = _Collector(conn, collector, waiter, stub, created=created)
        self._replace(current)
        return current

    def _replace(self, current: _Collector | None) -> _Collector | None:
        """Make `current` the collector in use; the one before closes its long-poll socket
        (its collector dies with its session, or is destroyed in `_destroy`)."""
        old, self._current = self._current, current
        if old is not None and old is not current:
            old.poll_stub.DropConnections()
        return old

    def _poll_once(self) -> None:
        try:
            self._poll()
        except BaseException:
            self.since = math.inf  # changes may go unreported until a new initial state is in
            self._tasks_live(False)
            raise

    def _tasks_live(self, live: bool) -> None:
        if self.tasks is not None:
            self.tasks.set_live(live)

    def _poll(self) -> None:
        current = self._collector()
        options = properties.PC.WaitOptions(maxWaitSeconds=self.max_wait_seconds)
        with translated():
            update_set = current.waiter.WaitForUpdatesEx(current.version, options)
        if update_set is None or self._stop.is_set():
            return
        current.version = update_set.version
        startup = not self.ready.is_set()  # the first full state since start()
        changes = changes_of(update_set, startup=startup)
        if self.tasks is not None:
            self.tasks.report(task_updates(update_set))
        swallow = startup and not self.deliver_initial
        if current.initial and not update_set.truncated:
            current.initial = False
            self.since = current.created
            self.ready.set()
            self._tasks_live(True)
        if changes and not swallow:
            self.callback(changes)

    def _destroy(self) -> None:
        current = self._current
        if current is None:
            return
        try:
            current.collector.Destroy()
        except Exception:  # the session may be gone; the collector dies with it
            logger.debug("PropertyCollector.Destroy failed", exc_info=True)
        finally:
            self._replace(None)
