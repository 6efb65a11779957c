"""The case a command's reply shows, without refolding the whole case at every command.

A reply shows the case as the store holds it, not as the workflow remembers it (a text erased since the
workflow loaded it reads as erased). Refolding the stream for each reply reads, parses and folds every event
of the case, so a command cost more the longer its case: at 450 events the refold took 15 ms of a note's 28
(``python -m bench --only api``). ``ReplyFolds`` keeps, per API process, the last fold of the cases it
answered for lately (a bounded, least-recently-used set) and reads only the events after it.

Stored events never change, so a kept fold stays true with one exception: an erasure destroys the subject's
keys, and texts a kept fold opened before it must now read as erased. So each read first counts the erased
keys of the case's subject, and a fold kept under another count is dropped and the case folded afresh. The
count is read before the events, so an erasure that commits in between is seen by the events' parse (they
read as erased) or by the next count; never missed by both.

A reply folded forward parses only the new events, so an older event tampered with in the database since its
fold was kept is not seen by replies; every read of the case (``GET``, its audit trail, ``escalations verify``,
the projector) and any fresh fold (another process, a fold evicted, an erasure) still reports it. A fold that
fails to read keeps nothing, so the failure repeats until the record is repaired.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import asyncpg

from events.store import EventStore
from workflows.core.events import RecordedEvent
from workflows.core.evolve import fold
from workflows.core.state import EscalationState

# The erased keys of the subject whose texts the stream seals (0 for a stream that seals none).
_ERASED_KEYS = (
    "SELECT count(*) FROM sealed_streams s JOIN personal_data_keys k ON k.subject = s.subject "
    "WHERE s.stream_id = $1 AND k.erased_at IS NOT NULL"
)


@dataclass(frozen=True)
class _Kept:
    state: EscalationState
    erased_keys: int


class ReplyFolds:
    """The last folds of recently answered cases; ``read`` brings one to the stream's head."""

    def __init__(self, pool: asyncpg.Pool, size: int = 512) -> None:
        self._pool = pool
        self._size = size
        self._kept: OrderedDict[str, _Kept] = OrderedDict()

    async def read(self, stream_id: str, from_version: int) -> tuple[list[RecordedEvent], EscalationState | None]:
        """The stream's stored events from ``from_version`` on (at least: a fresh fold returns them all), and
        the case folded to the head; ``None`` for a stream the store does not hold. ``CorruptEvent`` as any
        read of the events it parses."""
        store = EventStore(self._pool)
        erased_keys = await self._pool.fetchval(_ERASED_KEYS, stream_id)
        kept = self._kept.get(stream_id)
        if kept is None or kept.erased_keys != erased_keys:
            events = await store.read_stream(stream_id)
            state = fold(events)
        else:
            events = await store.read_stream(stream_id, min(from_version, kept.state.version + 1))
            state = fold((e for e in events if e.version > kept.state.version), kept.state)
        if state is not None:
            self._keep(stream_id, _Kept(state, erased_keys))
        return events, state

    def _keep(self, stream_id: str, fresh: _Kept) -> None:
        kept = self._kept.get(stream_id)
        # Two replies of one case may read at once. Erased-key counts only grow, so the larger count is the newer;
        # under the same count, the fold further along.
        if kept is None or (fresh.erased_keys, fresh.state.version) >= (kept.erased_keys, kept.state.version):
            self._kept[stream_id] = fresh
        self._kept.move_to_end(stream_id)
        while len(self._kept) > self._size:
            self._kept.popitem(last=False)
