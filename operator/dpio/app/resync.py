"""When vCenter's change report names no hosts, look at what changed instead of at everything.

A report names no hosts when the watch came back after a gap (changes may have gone unreported:
vCenter sends its full state again), a host was added, removed or renamed, a cluster changed, or
a VM of unknown host changed. Reconciling every policy then costs a pass each (at 1,000
policies, a minute of CPU for nothing). Instead one whole read is taken after the report and
each policy compared with what it last planned on (`PolicyTriggers.inventory_read`): only those
whose hosts differ are queued, as an informer's relist hands on only the objects that changed.
If the read fails, every policy is queued: missing a change would be worse than a pass too many.
Policies of another vCenter find none of their hosts in this one's inventory and are queued too
(a cost only with several vCenters).

Reports that arrive while a resync runs make it run once more, not once each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable

from dpio.planner.observed import ObservedInventory

_log = logging.getLogger(__name__)
Read = Callable[[], Awaitable[ObservedInventory]]

#: Queue the policies whose hosts differ in `inventory` (None: every policy).
Enqueue = Callable[[ObservedInventory | None], None]


class Resyncs:
    """At most one resync per vCenter at a time, on the event loop."""

    def __init__(self, enqueue: Enqueue) -> None:
        self._enqueue = enqueue
        self._running: set[Hashable] = set()
        self._again: set[Hashable] = set()
        self.tasks: set[asyncio.Task[None]] = set()  # kept so they are not collected mid-run

    def request(self, server: Hashable, read: Read) -> None:
        """Called on the event loop for each report that names no hosts."""
        if server in self._running:
            self._again.add(server)
            return
        self._running.add(server)
        task = asyncio.get_running_loop().create_task(self._run(server, read))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, server: Hashable, read: Read) -> None:
        try:
            while True:
                self._again.discard(server)
                try:
                    inventory: ObservedInventory | None = await read()
                except Exception as err:  # vCenter went away again: look at everything
                    _log.info("Resync read failed; every policy is queued",
                              extra={"server": str(server), "error": str(err)})  # fmt: skip
                    inventory = None
                self._enqueue(inventory)
                if server not in self._again:
                    return
        finally:
            self._running.discard(server)
