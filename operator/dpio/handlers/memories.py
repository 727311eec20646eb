"""kopf's memory of each object, not kept between events.

kopf keeps a `ResourceMemory` for every object it has seen until the object is deleted: a copy
of the operator's memo, an error throttler, daemon and indexing state; ~0.86 KB each, 8.6 MiB
at 5,000 policies and 5,000 assignments (docs/benchmarks.md, finding 38). That state serves
handlers that resume, spawn daemons, index or patch the object. Ours only hand watch events on
to the reconcile queues (`kopf.on.event`), which keep their own state; all they read of the
memory is the operator's memo, which every recall copies afresh.

What is given up: kopf's throttle for errors outside handlers while it processes one object's
event (such as the API server refusing a patch kopf makes); each event is tried as it comes.
Ours make no kopf patches, and an event comes only when the object changes.
`test_handlers_memories.py` checks that no handler kind needing the memory is registered.
"""

from __future__ import annotations

from typing import Any

from kopf._core.reactor.inventory import ResourceMemories, ResourceMemory


class EventOnlyMemories(ResourceMemories):
    """Each recall a fresh memory (kopf's own `ephemeral` recall, as for admission webhooks);
    none is remembered, so none is to forget."""

    async def recall(
        self,
        raw_body: Any,
        *,
        memobase: Any = None,
        noticed_by_listing: bool = False,
        ephemeral: bool = False,
    ) -> ResourceMemory:
        return await super().recall(
            raw_body, memobase=memobase, noticed_by_listing=noticed_by_listing, ephemeral=True
        )
